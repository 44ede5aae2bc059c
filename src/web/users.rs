//! People: `/admin/users` and `/admin/users/{id}` pages, and the admin APIs
//! `/api/admin/users…` and `/api/admin/tokens/{id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json as AxumJson, Router};
use minijinja::context;

use crate::templates::{compact_tokens, ser};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::extract::{Form, Htmx, Json, RequestMeta};
use super::kit::KpiCard;
use super::tokens::{self, CreatedToken, NewToken};
use crate::accounts::{self, CreateUser, UpdateUser};
use crate::app::AppState;
use crate::auth::{RequireAdmin, Role};
use crate::error::{AppError, AppResult};
use crate::repo::users::{self, User};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_page).post(create_from_page))
        .route("/admin/users/{id}", get(detail_page).post(update_from_page))
        .route("/admin/users/{id}/tokens", post(token_from_page))
        .route("/admin/tokens/{id}/revoke", post(revoke_from_page))
        .route("/api/admin/users", get(api_list).post(api_create))
        .route("/api/admin/users/{id}", get(api_get).patch(api_update))
        .route(
            "/api/admin/users/{id}/tokens",
            get(api_tokens).post(api_create_token),
        )
        .route("/api/admin/tokens/{id}", delete(api_revoke_token))
}

#[derive(Deserialize)]
struct NewUserBody {
    email: String,
    name: Option<String>,
    password: Option<String>,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::Analyst
}

async fn load_user(state: &AppState, id: &str) -> AppResult<User> {
    let id = id.to_string();
    state
        .db
        .run(move |c| users::by_id(c, &id))
        .await?
        .ok_or_else(|| AppError::not_found("user not found"))
}

async fn create(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    body: NewUserBody,
) -> AppResult<User> {
    let input = CreateUser {
        email: body.email,
        name: body.name,
        password: body.password.filter(|p| !p.is_empty()),
        role: body.role,
    };
    let user = state
        .db
        .run(move |c| Ok(accounts::create_user(c, input)))
        .await?
        .map_err(AppError::from)?;
    state
        .audit(
            meta.audit("user.create", Some(admin))
                .resource(format!("user:{}", user.id))
                .params(json!({"email": user.email, "role": user.role.as_str()}))
                .success(),
        )
        .await;
    Ok(user)
}

async fn update(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    id: String,
    body: UpdateUser,
) -> AppResult<User> {
    let before = load_user(state, &id).await?;
    let changes = json!({
        "name": body.name, "role": body.role.map(Role::as_str), "active": body.active,
        "password_reset": body.password.is_some(),
    });
    let by = admin.id().to_string();
    let id_c = id.clone();
    let user = state
        .db
        .run(move |c| Ok(accounts::update_user(c, &id_c, body, Some(&by))))
        .await?
        .map_err(AppError::from)?;
    // Authorisation reads the cache: drop it so the change applies at once.
    state.auth.invalidate_user(&id);
    let event = meta
        .audit("user.update", Some(admin))
        .resource(format!("user:{id}"))
        .params(changes)
        .params_before(
            json!({"name": before.name, "role": before.role.as_str(), "active": before.active}),
        )
        .success();
    state.audit(event).await;
    Ok(user)
}

// ---- pages ----

async fn render_list(
    state: &AppState,
    session: &Session,
    admin: &RequireAdmin,
    htmx: bool,
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let rows = state.db.run(|c| users::list(c)).await?;
    let base = super::base_ctx(session, Some(&admin.user), "users").await?;
    let ctx = context! { users => ser(&rows), notice => notice, title => "Users", ..base };
    state
        .templates
        .page_or_block(htmx, "users.html", "users", ctx)
}

async fn list_page(
    State(state): State<AppState>,
    session: Session,
    admin: RequireAdmin,
) -> AppResult<Html<String>> {
    render_list(&state, &session, &admin, false, None).await
}

async fn create_from_page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Htmx(htmx): Htmx,
    admin: RequireAdmin,
    Form(body): Form<NewUserBody>,
) -> AppResult<Html<String>> {
    let user = create(&state, &meta, &admin, body).await?;
    render_list(
        &state,
        &session,
        &admin,
        htmx,
        Some(format!("Created {}", user.email)),
    )
    .await
}

async fn render_detail(
    state: &AppState,
    session: &Session,
    admin: &RequireAdmin,
    user: User,
    htmx: bool,
    created: Option<CreatedToken>,
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let list = tokens::list(state, Some(user.id.clone())).await?;
    let id = user.id.clone();
    let usage = state.db.run(move |c| users::token_totals(c, &id)).await?;
    let base = super::base_ctx(session, Some(&admin.user), "users").await?;
    let ctx = context! {
        subject => ser(&user), tokens => ser(&list), usage_cards => ser(&usage_cards(&usage)), created => ser(&created), notice => notice,
        title => format!("User {}", user.email), ..base
    };
    state
        .templates
        .page_or_block(htmx, "user.html", "detail", ctx)
}

/// Today's and the last 30 days' LLM tokens, as the kit's cards.
fn usage_cards(u: &users::TokenTotals) -> Vec<KpiCard> {
    let usd = |x: f64| format!("${x:.2}");
    vec![
        KpiCard::new(
            "tokens_today",
            "Tokens today (UTC)",
            compact_tokens(u.tokens_today),
        )
        .detail(usd(u.cost_usd_today)),
        KpiCard::new(
            "tokens_30d",
            "Tokens, last 30 days",
            compact_tokens(u.tokens_30d),
        )
        .detail(usd(u.cost_usd_30d)),
    ]
}

async fn detail_page(
    State(state): State<AppState>,
    session: Session,
    admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<Html<String>> {
    let user = load_user(&state, &id).await?;
    render_detail(&state, &session, &admin, user, false, None, None).await
}

/// The detail page's form: blank fields mean "leave as is".
#[derive(Deserialize)]
struct UpdateForm {
    name: Option<String>,
    role: Option<String>,
    active: Option<String>,
    password: Option<String>,
}

impl UpdateForm {
    fn into_update(self) -> AppResult<UpdateUser> {
        let role = match self.role.filter(|r| !r.is_empty()) {
            Some(r) => Some(
                r.parse::<Role>()
                    .map_err(|e| AppError::unprocessable(format!("role: {e}")))?,
            ),
            None => None,
        };
        let active = match self.active.as_deref() {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(AppError::unprocessable(format!(
                    "active: expected true or false, got {other:?}"
                )))
            }
        };
        Ok(UpdateUser {
            name: self.name,
            role,
            active,
            password: self.password.filter(|p| !p.is_empty()),
        })
    }
}

async fn update_from_page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Htmx(htmx): Htmx,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Form(form): Form<UpdateForm>,
) -> AppResult<Html<String>> {
    let user = update(&state, &meta, &admin, id, form.into_update()?).await?;
    render_detail(
        &state,
        &session,
        &admin,
        user,
        htmx,
        None,
        Some("Saved".into()),
    )
    .await
}

async fn token_from_page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Htmx(htmx): Htmx,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Form(req): Form<NewToken>,
) -> AppResult<Html<String>> {
    let user = load_user(&state, &id).await?;
    let created = tokens::issue(&state, &meta, &admin, user.clone(), req).await?;
    render_detail(&state, &session, &admin, user, htmx, Some(created), None).await
}

async fn revoke_from_page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Htmx(htmx): Htmx,
    admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<Html<String>> {
    let id_c = id.clone();
    let owner = state
        .db
        .run(move |c| crate::repo::tokens::get(c, &id_c))
        .await?
        .map(|(row, _)| row.user_id)
        .ok_or_else(|| AppError::not_found("token not found"))?;
    tokens::revoke(&state, &meta, &admin, id, None).await?;
    let user = load_user(&state, &owner).await?;
    render_detail(
        &state,
        &session,
        &admin,
        user,
        htmx,
        None,
        Some("Token revoked".into()),
    )
    .await
}

// ---- APIs ----

async fn api_list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> AppResult<AxumJson<serde_json::Value>> {
    let rows = state.db.run(|c| users::list(c)).await?;
    Ok(AxumJson(json!({ "users": rows })))
}

async fn api_get(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<AxumJson<User>> {
    Ok(AxumJson(load_user(&state, &id).await?))
}

async fn api_create(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Json(body): Json<NewUserBody>,
) -> AppResult<Response> {
    let user = create(&state, &meta, &admin, body).await?;
    Ok((StatusCode::CREATED, AxumJson(user)).into_response())
}

async fn api_update(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Json(body): Json<UpdateUser>,
) -> AppResult<AxumJson<User>> {
    Ok(AxumJson(update(&state, &meta, &admin, id, body).await?))
}

async fn api_tokens(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<AxumJson<serde_json::Value>> {
    let user = load_user(&state, &id).await?;
    Ok(AxumJson(
        json!({ "tokens": tokens::list(&state, Some(user.id)).await? }),
    ))
}

async fn api_create_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Json(req): Json<NewToken>,
) -> AppResult<Response> {
    let user = load_user(&state, &id).await?;
    let created = tokens::issue(&state, &meta, &admin, user, req).await?;
    Ok((StatusCode::CREATED, AxumJson(created)).into_response())
}

async fn api_revoke_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    tokens::revoke(&state, &meta, &admin, id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
