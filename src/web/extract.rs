//! Request extractors whose failures are `AppError`s naming the parameter
//! (422), plus the per-request metadata the middleware attaches.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::audit::AuditEvent;
use crate::auth::Principal;
use crate::error::AppError;

/// Query string parameters; a bad one is a 422 that names it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                AppError::Unprocessable(describe(e.path().to_string(), e.inner().to_string()))
            })
    }
}

/// A JSON body; a bad one is a 422 that names the field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                AppError::PayloadTooLarge(format!(
                    "body: {e} (too large for this endpoint: send it in smaller requests)"
                ))
            })?;
        if bytes.is_empty() {
            return Err(AppError::Unprocessable(
                "body: expected a JSON object".into(),
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() {
                AppError::Unprocessable(format!("body: malformed JSON ({inner})"))
            } else {
                AppError::Unprocessable(describe(path, inner.to_string()))
            }
        })?;
        // One value per body: `{..} {..}` or NDJSON would otherwise be read
        // as its first object and the rest dropped without a word.
        de.end().map_err(|e| {
            AppError::Unprocessable(format!(
                "body: trailing data after the JSON value ({e}); send one object or a JSON array"
            ))
        })?;
        Ok(Json(value))
    }
}

/// A url-encoded form body; a bad field is a 422 that names it.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::PayloadTooLarge(format!("body: {e}")))?;
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&bytes));
        serde_path_to_error::deserialize(de).map(Form).map_err(|e| {
            AppError::Unprocessable(describe(e.path().to_string(), e.inner().to_string()))
        })
    }
}

fn describe(path: String, inner: String) -> String {
    if path.is_empty() || path == "." {
        inner
    } else {
        format!("{path}: {inner}")
    }
}

/// Facts about the request, attached by the `request_meta` middleware.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub started: Instant,
    pub client_ip: Option<IpAddr>,
    pub correlation_id: String,
    pub htmx: bool,
}

impl RequestMeta {
    /// An audit row pre-filled with who, from where, how, and how long so far.
    pub fn audit(&self, action: &str, who: Option<&Principal>) -> AuditEvent {
        let mut e = AuditEvent::new(action);
        e.client_ip = self.client_ip.map(|ip| ip.to_string());
        e.correlation_id = Some(self.correlation_id.clone());
        e.duration_ms = Some(self.started.elapsed().as_millis() as i64);
        match who {
            Some(p) => {
                e.user_id = Some(p.id().to_string());
                e.client_kind = Some(p.client_kind().to_string());
            }
            None => e.client_kind = Some("web".into()),
        }
        e
    }

    pub fn ip_string(&self) -> String {
        self.client_ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("request_meta middleware missing")))
    }
}

/// True when htmx sent the request (it wants a fragment).
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Htmx(
            parts.headers.get("hx-request").is_some_and(|v| v == "true"),
        ))
    }
}
