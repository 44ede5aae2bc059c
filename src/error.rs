//! One error type for every handler.
//!
//! A handler's error becomes a bare response carrying an [`ErrorInfo`] extension;
//! the `shape_errors` middleware (web/errors.rs), which knows the request, turns it
//! into `{"detail": …}` JSON for APIs, a toast for htmx, a redirect to sign-in, or
//! the error page. So the handler never needs to know who is asking.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials (401; pages redirect to /login).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A well-formed request that cannot be served (400).
    #[error("{0}")]
    BadRequest(String),
    /// A parameter or body field failed validation (422).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many attempts; the number is the seconds to wait.
    #[error("{0}")]
    TooManyRequests(String, u64),
    #[error("{0}")]
    Unavailable(String),
    /// An upstream service (the Ask model) answered with something unusable (502).
    #[error("{0}")]
    BadGateway(String),
    /// Anything unexpected: logged once with its context, shown opaquely.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T, E = AppError> = std::result::Result<T, E>;

/// What the shaping middleware needs to render an error for the asker.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub status: StatusCode,
    pub detail: String,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn unauthorized() -> Self {
        AppError::Unauthorized("Not authenticated".into())
    }

    pub fn admin_only() -> Self {
        AppError::Forbidden("Admin access required".into())
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        AppError::BadRequest(msg.into())
    }

    pub fn unprocessable(msg: impl Into<String>) -> Self {
        AppError::Unprocessable(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }
}

/// Lets a `DbLocked` or other typed error travel through anyhow and come back.
impl From<duckdb::Error> for AppError {
    fn from(e: duckdb::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "Internal server error: the failure was logged. Try again, and tell an admin if it persists.".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = status.into_response();
        if let AppError::TooManyRequests(_, secs) = &self {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp.extensions_mut().insert(ErrorInfo { status, detail });
        resp
    }
}
