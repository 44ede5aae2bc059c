//! `/me/telegram`: an admin links the Telegram chat that gets feedback
//! notifications, by sending a one-time code to the bot (glassbox reads the
//! bot's updates to find it) or by pasting the chat id. Without
//! `TELEGRAM_BOT_TOKEN` the page does not exist and nothing is sent.

use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::repo::feedback as repo;
use crate::web::extract::{Form, RequestMeta};
use crate::web::kit::PageCtx;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/telegram", get(page))
        .route("/me/telegram/code", post(new_code))
        .route("/me/telegram/check", post(check))
        .route("/me/telegram/chat", post(paste))
        .route("/me/telegram/unlink", post(unlink))
}

fn enabled(state: &AppState) -> AppResult<()> {
    if state.telegram.enabled() {
        Ok(())
    } else {
        Err(AppError::not_found(
            "Telegram is not configured on this server (TELEGRAM_BOT_TOKEN)",
        ))
    }
}

async fn page(ctx: PageCtx, admin: RequireAdmin) -> AppResult<Html<String>> {
    render(&ctx, &admin, None).await
}

async fn render(
    ctx: &PageCtx,
    admin: &RequireAdmin,
    note: Option<&str>,
) -> AppResult<Html<String>> {
    enabled(&ctx.state)?;
    let uid = admin.id().to_string();
    let chat = ctx.state.db.run(move |c| repo::chat_of(c, &uid)).await?;
    ctx.page(
        "telegram.html",
        "me",
        context! {
            title => "Telegram notifications",
            chat => chat,
            code => ctx.state.telegram.code_of(admin.id()),
            note => note,
        },
    )
    .await
}

fn back() -> Response {
    Redirect::to("/me/telegram").into_response()
}

async fn new_code(ctx: PageCtx, admin: RequireAdmin) -> AppResult<Response> {
    enabled(&ctx.state)?;
    ctx.state.telegram.new_code(admin.id());
    Ok(back())
}

async fn link(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    chat: Option<String>,
    how: &str,
) -> AppResult<()> {
    let (uid, c) = (admin.id().to_string(), chat.clone());
    state
        .db
        .run(move |conn| repo::set_chat(conn, &uid, c.as_deref()))
        .await?;
    state.auth.invalidate_user(admin.id());
    state
        .audit(
            meta.audit(
                if chat.is_some() {
                    "telegram.link"
                } else {
                    "telegram.unlink"
                },
                Some(admin),
            )
            .resource(format!("user:{}", admin.id()))
            .params(json!({"how": how}))
            .success(),
        )
        .await;
    Ok(())
}

async fn check(ctx: PageCtx, meta: RequestMeta, admin: RequireAdmin) -> AppResult<Response> {
    enabled(&ctx.state)?;
    let Some(code) = ctx.state.telegram.code_of(admin.id()) else {
        return Err(AppError::bad_request("code: ask for a code first"));
    };
    let found = ctx.state.telegram.find_code(&code).await.map_err(|e| {
        AppError::bad_request(format!("telegram: could not read the bot's messages ({e})"))
    })?;
    match found {
        Some(chat) => {
            link(&ctx.state, &meta, &admin, Some(chat), "code").await?;
            ctx.state.telegram.forget_code(admin.id());
            Ok(back())
        }
        None => Ok(render(
            &ctx,
            &admin,
            Some("The bot has not received that code yet: send it, then check again."),
        )
        .await?
        .into_response()),
    }
}

#[derive(Deserialize)]
struct ChatForm {
    chat_id: String,
    #[allow(dead_code)]
    #[serde(default)]
    csrf_token: Option<String>,
}

/// Telegram chat ids are integers (groups are negative).
pub fn valid_chat_id(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

async fn paste(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Form(f): Form<ChatForm>,
) -> AppResult<Response> {
    enabled(&ctx.state)?;
    let chat = f.chat_id.trim().to_string();
    if !valid_chat_id(&chat) {
        return Err(AppError::unprocessable(
            "chat_id: a Telegram chat id is a number, like 123456789",
        ));
    }
    link(&ctx.state, &meta, &admin, Some(chat), "pasted").await?;
    Ok(back())
}

async fn unlink(ctx: PageCtx, meta: RequestMeta, admin: RequireAdmin) -> AppResult<Response> {
    enabled(&ctx.state)?;
    link(&ctx.state, &meta, &admin, None, "unlink").await?;
    Ok(back())
}
