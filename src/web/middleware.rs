//! The request pipeline: metrics → request meta → error shaping → (session) →
//! authentication → CSRF → the route.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use tower_sessions::Session;

use super::extract::RequestMeta;
use crate::app::AppState;
use crate::auth::extract::{AuthFailure, Principal, Via};
use crate::auth::{csrf, Role, TokenVerifyError};
use crate::error::{AppError, ErrorInfo};

pub const SESSION_USER_KEY: &str = "user_id";

/// Counts and times every request by its matched route.
pub async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    state.metrics.observe_request(
        method.as_str(),
        route.as_ref().map_or("unmatched", |p| p.as_str()),
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// Attaches [`RequestMeta`]: start time, client IP (X-Forwarded-For only from
/// trusted proxies), a correlation id (taken from `X-Request-Id` when sent), and
/// echoes the id back.
pub async fn request_meta(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client_ip = client_ip(peer, req.headers(), &state.config.trusted_proxies);
    let correlation_id = req
        .headers()
        .get("x-request-id")
        .or_else(|| req.headers().get("x-correlation-id"))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let htmx = req.headers().get("hx-request").is_some_and(|v| v == "true");
    req.extensions_mut().insert(RequestMeta {
        started: Instant::now(),
        client_ip,
        correlation_id: correlation_id.clone(),
        htmx,
    });
    // One span per request with the route and the correlation id, so an
    // "internal error" log line can be matched to its request and audit row.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()),
        correlation_id = %correlation_id,
    );
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        h.insert("x-request-id", v);
    }
    // Pages answer htmx with a fragment and browsers with the whole page:
    // caches must keep them apart.
    if h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        h.append(header::VARY, HeaderValue::from_static("HX-Request"));
    }
    resp
}

fn client_ip(
    peer: Option<IpAddr>,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    // Walk X-Forwarded-For from the right, skipping our own proxies: the first
    // untrusted hop is the client.
    let xff = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    xff.split(',')
        .rev()
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted.iter().any(|net| net.contains(ip)))
        .or(Some(peer))
}

/// True for paths answered in JSON (`{"detail": …}` on errors, never redirects).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/auth/")
        || path.starts_with("/cli/")
}

/// Turns every error response into what the asker can use: JSON for APIs, a
/// sign-in redirect or `HX-Redirect` for anonymous pages, a toast for htmx, the
/// error page otherwise. Also catches axum's own rejections (405, 415, …).
pub async fn shape_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Kept cheaply (reference counts) and read only if an error comes back.
    let uri = req.uri().clone();
    let htmx = req.headers().get("hx-request").is_some_and(|v| v == "true");
    let hx_current = req.headers().get("hx-current-url").cloned();
    let principal = req.extensions().get::<Principal>().cloned();
    let session = req.extensions().get::<Session>().cloned();
    let resp = next.run(req).await;

    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return resp;
    }
    let path = uri.path().to_string();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let hx_current = hx_current
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(url_path);
    // A handler that rendered its own HTML for an error (the sign-in form with its
    // message) has said what it means: leave it be.
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if resp.extensions().get::<ErrorInfo>().is_none() && is_html {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let detail = match parts.extensions.get::<ErrorInfo>() {
        Some(info) => info.detail.clone(),
        None => {
            // axum's own rejections carry plain text.
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("Error").to_string()
            } else {
                text
            }
        }
    };
    let mut out = if is_api_path(&path) {
        let mut r = (status, axum::Json(serde_json::json!({ "detail": detail }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    } else if status == StatusCode::UNAUTHORIZED {
        let next_url = hx_current.unwrap_or(path_and_query);
        let login = format!("/login?next={}", urlencode(&next_url));
        if htmx {
            let mut r = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&login) {
                r.headers_mut().insert("hx-redirect", v);
            }
            r
        } else {
            Redirect::to(&login).into_response()
        }
    } else if htmx {
        let html = state
            .templates
            .block(
                "partials/toast.html",
                "toast",
                context! { message => detail, status => status.as_u16() },
            )
            .map(|h| h.0)
            .unwrap_or_else(|_| String::from("Error"));
        let mut r = (status, axum::response::Html(html)).into_response();
        r.headers_mut()
            .insert("hx-retarget", HeaderValue::from_static("#toasts"));
        r.headers_mut()
            .insert("hx-reswap", HeaderValue::from_static("beforeend"));
        r
    } else {
        let csrf_token = match &session {
            Some(s) if principal.is_some() => csrf::token(s).await.unwrap_or_default(),
            _ => String::new(),
        };
        let user = principal.as_ref().map(|p| super::user_ctx(&p.user));
        let html = state
            .templates
            .page(
                "error.html",
                context! { status => status.as_u16(), reason => status.canonical_reason().unwrap_or("Error"),
                           message => detail, user => user, csrf_token => csrf_token, nav => "" },
            )
            .map(|h| h.0)
            .unwrap_or_else(|e| {
                tracing::error!(error = ?e, "could not render the error page");
                format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"))
            });
        (status, axum::response::Html(html)).into_response()
    };
    // Keep headers that matter to the client (Retry-After, Allow).
    for name in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

fn url_path(url: &str) -> Option<String> {
    // HX-Current-URL is absolute; keep path and query only (never another host).
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let idx = rest.find('/')?;
    Some(rest[idx..].to_string())
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Resolves the [`Principal`]: a bearer token first, else the browser session.
/// Refused credentials leave an [`AuthFailure`] saying why.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    if let Some(token) = bearer {
        match state.auth.verify_token(&state.db, &token).await {
            Ok(user) => {
                req.extensions_mut().insert(Principal {
                    user,
                    via: Via::Token,
                });
            }
            Err(TokenVerifyError::Refused(e)) => {
                req.extensions_mut().insert(AuthFailure(e.to_string()));
            }
            Err(TokenVerifyError::Internal(e)) => return AppError::Internal(e).into_response(),
        }
        return next.run(req).await;
    }
    if let Some(session) = req.extensions().get::<Session>().cloned() {
        let uid = match session.get::<String>(SESSION_USER_KEY).await {
            Ok(v) => v,
            Err(e) => {
                return AppError::Internal(anyhow::anyhow!("session store: {e}")).into_response()
            }
        };
        if let Some(uid) = uid {
            match state.auth.user(&state.db, &uid).await {
                Ok(Some(user)) if user.active && user.role != Role::Service => {
                    req.extensions_mut().insert(Principal {
                        user,
                        via: Via::Session,
                    });
                }
                Ok(found) => {
                    // Deactivated (or deleted) while signed in: end the session now.
                    let _ = session.flush().await;
                    let why = if found.is_some() {
                        "Account deactivated: ask an admin to reactivate it."
                    } else {
                        "Your account no longer exists."
                    };
                    req.extensions_mut().insert(AuthFailure(why.into()));
                }
                Err(e) => return AppError::Internal(e).into_response(),
            }
        }
    }
    next.run(req).await
}

/// Every state-changing request authenticated by the cookie must carry the
/// session's CSRF token (header `X-CSRF-Token` or form field `csrf_token`).
/// Token-authenticated requests need none; `/login` checks its own.
pub async fn csrf_guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let cookie_user = req
        .extensions()
        .get::<Principal>()
        .is_some_and(|p| p.via == Via::Session);
    if !cookie_user {
        return next.run(req).await;
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return next.run(req).await;
    };
    let (req, sent) = match sent_csrf(req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let expected = session
        .get::<String>(csrf::SESSION_KEY)
        .await
        .ok()
        .flatten();
    match (expected, sent) {
        (Some(exp), Some(sent)) if csrf::matches(&exp, &sent) => next.run(req).await,
        (_, None) => {
            AppError::Forbidden("CSRF token missing: reload the page and try again.".into())
                .into_response()
        }
        _ => {
            AppError::Forbidden("CSRF token does not match: reload the page and try again.".into())
                .into_response()
        }
    }
}

/// The CSRF token sent with a request: the header, else a url-encoded form field
/// (the body is read and put back).
pub async fn sent_csrf(req: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(v) = req
        .headers()
        .get(csrf::HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.to_string();
        return Ok((req, Some(v)));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return Err(AppError::PayloadTooLarge("body: form too large".into()).into_response())
        }
    };
    let sent = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == csrf::FORM_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4, 10.0.0.7".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "5.6.7.8".parse().unwrap();
        assert_eq!(
            client_ip(Some(proxy), &h, &trusted),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(client_ip(Some(stranger), &h, &trusted), Some(stranger));
        assert_eq!(client_ip(Some(proxy), &h, &[]), Some(proxy));
    }

    #[test]
    fn only_paths_of_this_origin_are_kept_from_hx_current_url() {
        assert_eq!(
            url_path("http://h:1/admin/users?x=1").as_deref(),
            Some("/admin/users?x=1")
        );
        assert_eq!(url_path("nonsense"), None);
    }
}
