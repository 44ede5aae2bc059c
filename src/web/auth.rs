//! Sign-in and sign-out for browsers, password → token for the CLI.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json as AxumJson, Router};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::extract::{Form, Json, Query, RequestMeta};
use super::middleware::{sent_csrf, SESSION_USER_KEY};
use crate::accounts;
use crate::app::AppState;
use crate::auth::{csrf, throttle, MaybeUser, Principal, Role, LOGIN_TOKEN_HOURS};
use crate::error::{AppError, AppResult};
use crate::repo::users::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/auth/token", post(password_token))
        .route("/cli/latest", get(cli_latest))
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
}

/// The one check for `next` (GET and POST /login, SPEC §1): a same-origin
/// path only. It starts with `/`, the next character is neither `/` nor `\`
/// (`//host` and `/\host` are other sites to a browser), and it holds no
/// control character or whitespace anywhere: browsers drop tabs and newlines
/// from URLs, so `/\t/evil.example` becomes `//evil.example`, and CR or NUL
/// cannot go into a `Location` header at all.
fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?;
    let mut chars = n.chars();
    let first_ok = chars.next() == Some('/');
    let second_ok = !matches!(chars.next(), Some('/' | '\\'));
    let clean = !n.chars().any(|c| c.is_control() || c.is_whitespace());
    // Non-ASCII is kept, percent-encoded, so the `Location` header is valid.
    (first_ok && second_ok && clean).then(|| {
        n.bytes()
            .map(|b| match b {
                0x80.. => format!("%{b:02X}"),
                _ => (b as char).to_string(),
            })
            .collect()
    })
}

/// Where a user lands after signing in.
pub fn landing(user: &User) -> &'static str {
    if user.role == Role::Admin {
        "/admin/activity"
    } else {
        "/me"
    }
}

async fn login_page(
    State(state): State<AppState>,
    session: Session,
    MaybeUser(principal): MaybeUser,
    Query(q): Query<LoginQuery>,
) -> AppResult<Response> {
    if let Some(p) = principal {
        return Ok(Redirect::to(
            &safe_next(q.next.as_deref()).unwrap_or_else(|| landing(&p.user).into()),
        )
        .into_response());
    }
    render_login(
        &state,
        &session,
        q.next.as_deref(),
        None,
        "",
        axum::http::StatusCode::OK,
    )
    .await
}

async fn render_login(
    state: &AppState,
    session: &Session,
    next: Option<&str>,
    error: Option<&str>,
    email: &str,
    status: axum::http::StatusCode,
) -> AppResult<Response> {
    let csrf_token = csrf::token(session).await.map_err(AppError::Internal)?;
    let html = state.templates.page(
        "login.html",
        context! { csrf_token => csrf_token, next => safe_next(next), error => error, email => email,
                   user => (), nav => "" },
    )?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    req: Request,
) -> AppResult<Response> {
    // /login is not cookie-authenticated, so the CSRF layer leaves it to us: the
    // token rendered into the sign-in form must come back.
    let (req, sent) = sent_csrf(req)
        .await
        .map_err(|_| AppError::bad_request("form too large"))?;
    let expected = session
        .get::<String>(csrf::SESSION_KEY)
        .await
        .ok()
        .flatten();
    if !matches!((&expected, &sent), (Some(e), Some(s)) if csrf::matches(e, s)) {
        return Err(AppError::Forbidden(
            "CSRF token missing or expired: reload the sign-in page and try again.".into(),
        ));
    }
    let Form(form) = Form::<LoginForm>::from_request_inner(req, &state).await?;
    let email = form.email.trim().to_string();
    match check_login(&state, &meta, &email, &form.password).await {
        Ok(user) => {
            // A fresh session id on sign-in: a planted pre-login id is worthless.
            session
                .cycle_id()
                .await
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
            session
                .insert(SESSION_USER_KEY, &user.id)
                .await
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
            let target = safe_next(form.next.as_deref()).unwrap_or_else(|| landing(&user).into());
            Ok(Redirect::to(&target).into_response())
        }
        Err(LoginError::Throttled(secs)) => {
            let msg = format!(
                "Too many failed sign-ins. Try again in {}.",
                human_wait(secs)
            );
            let mut resp = render_login(
                &state,
                &session,
                form.next.as_deref(),
                Some(&msg),
                &email,
                axum::http::StatusCode::TOO_MANY_REQUESTS,
            )
            .await?;
            resp.headers_mut().insert("retry-after", secs.into());
            Ok(resp)
        }
        Err(LoginError::Refused(msg)) => {
            render_login(
                &state,
                &session,
                form.next.as_deref(),
                Some(&msg),
                &email,
                axum::http::StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(LoginError::Internal(e)) => Err(AppError::Internal(e)),
    }
}

impl<T: serde::de::DeserializeOwned> Form<T> {
    async fn from_request_inner(req: Request, state: &AppState) -> AppResult<Self> {
        <Form<T> as axum::extract::FromRequest<AppState>>::from_request(req, state).await
    }
}

enum LoginError {
    Throttled(u64),
    Refused(String),
    Internal(anyhow::Error),
}

/// Shared by the sign-in form and `/auth/token`: throttling, the check, and the
/// audit row for success and failure.
async fn check_login(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password: &str,
) -> Result<User, LoginError> {
    let keys = throttle::keys(email, &meta.ip_string());
    if let Some(secs) = state.auth.throttle.check(&keys, Instant::now()) {
        state
            .audit(
                meta.audit("auth.login", None)
                    .params(json!({"email": email, "reason": "throttled"}))
                    .result("blocked"),
            )
            .await;
        return Err(LoginError::Throttled(secs));
    }
    if email.is_empty() || password.is_empty() {
        return Err(LoginError::Refused("Enter your email and password.".into()));
    }
    let (e, p) = (email.to_string(), password.to_string());
    let found = state
        .db
        .run(move |c| accounts::check_credentials(c, &e, &p))
        .await
        .map_err(LoginError::Internal)?;
    match found {
        Some(user) if user.active => {
            state.auth.throttle.clear(&keys[0]);
            state
                .audit(
                    meta.audit("auth.login", None)
                        .user(&user.id)
                        .params(json!({"email": user.email}))
                        .success(),
                )
                .await;
            Ok(user)
        }
        Some(user) => {
            state.auth.throttle.record_failure(&keys, Instant::now());
            state
                .audit(
                    meta.audit("auth.login", None)
                        .user(&user.id)
                        .params(json!({"email": email}))
                        .result("deactivated"),
                )
                .await;
            Err(LoginError::Refused(
                "This account is deactivated. Ask an admin to reactivate it.".into(),
            ))
        }
        None => {
            state.auth.throttle.record_failure(&keys, Instant::now());
            state
                .audit(
                    meta.audit("auth.login", None)
                        .params(json!({"email": email}))
                        .result("invalid_password"),
                )
                .await;
            Err(LoginError::Refused("Wrong email or password.".into()))
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    MaybeUser(principal): MaybeUser,
) -> AppResult<Response> {
    if let Some(p) = &principal {
        state
            .audit(meta.audit("auth.logout", Some(p)).success())
            .await;
    }
    session
        .flush()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    if meta.htmx {
        let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(
            "hx-redirect",
            axum::http::HeaderValue::from_static("/login"),
        );
        return Ok(r);
    }
    Ok(Redirect::to("/login").into_response())
}

#[derive(Deserialize)]
struct TokenRequest {
    email: String,
    password: String,
}

/// `POST /auth/token {email, password}` → `{access_token, email}`: a revocable
/// 24 h token, as Agnes's `auth login --password` expects.
async fn password_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<TokenRequest>,
) -> AppResult<Response> {
    let user = match check_login(&state, &meta, body.email.trim(), &body.password).await {
        Ok(u) => u,
        Err(LoginError::Throttled(secs)) => {
            return Err(AppError::TooManyRequests(
                format!(
                    "Too many failed sign-ins. Try again in {}.",
                    human_wait(secs)
                ),
                secs,
            ))
        }
        Err(LoginError::Refused(m)) => return Err(AppError::Unauthorized(m)),
        Err(LoginError::Internal(e)) => return Err(AppError::Internal(e)),
    };
    let secret = state.auth.secret().to_vec();
    let u = user.clone();
    let issued = state
        .db
        .run(move |c| {
            accounts::issue_token(
                c,
                &secret,
                &u,
                "password sign-in",
                "login",
                chrono::Duration::hours(LOGIN_TOKEN_HOURS),
                Some(&u.id),
            )
            .map_err(anyhow::Error::from)
        })
        .await?;
    let who = Principal {
        user: std::sync::Arc::new(user.clone()),
        via: crate::auth::extract::Via::Token,
    };
    state
        .audit(
            meta.audit("token.create", Some(&who))
                .resource(format!("token:{}", issued.row.id))
                .params(json!({"name": issued.row.name, "kind": "login", "for_user": user.id}))
                .success(),
        )
        .await;
    Ok(AxumJson(json!({ "access_token": issued.token, "email": user.email })).into_response())
}

/// Agnes's CLI asks for a newer version on start; there is none to offer.
async fn cli_latest() -> AxumJson<serde_json::Value> {
    AxumJson(json!({ "version": null, "download_url_path": null }))
}

/// "40 seconds", "about 5 minutes".
fn human_wait(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} seconds")
    } else {
        let m = secs.div_ceil(60);
        format!("about {m} minute{}", if m == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_accepts_only_local_paths() {
        assert_eq!(
            super::safe_next(Some("/admin/users?x=1")).as_deref(),
            Some("/admin/users?x=1")
        );
        assert_eq!(super::safe_next(Some("/")).as_deref(), Some("/"));
        assert_eq!(
            super::safe_next(Some("/admin/activity?q=café")).as_deref(),
            Some("/admin/activity?q=caf%C3%A9")
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "admin",
            "",
            "/\t/evil.example",
            "/\r/evil.example",
            "/\0/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            " /admin",
            "/admin\u{85}",
            "/admin\u{2028}x",
        ] {
            assert_eq!(super::safe_next(Some(bad)), None, "{bad}");
        }
    }
}
