//! `PageCtx`: what every page handler needs besides its query — the state,
//! the browser session, the signed-in user and how htmx asked — and the two
//! ways to answer: the whole page or some of its blocks, each with the base
//! context (`base.html`: user, CSRF token, active nav) merged in.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use minijinja::{context, Value};
use tower_sessions::Session;

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::repo::users::User;

pub struct PageCtx {
    pub state: AppState,
    pub session: Session,
    pub user: Option<Arc<User>>,
    /// htmx sent the request.
    pub htmx: bool,
    /// htmx is restoring history from the server: it needs the whole page.
    pub history_restore: bool,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("no session layer: {msg}")))?;
        let header = |name: &str| parts.headers.get(name).is_some_and(|v| v == "true");
        Ok(PageCtx {
            state: state.clone(),
            session,
            user: parts.extensions.get::<Principal>().map(|p| p.user.clone()),
            htmx: header("hx-request"),
            history_restore: header("hx-history-restore-request"),
        })
    }
}

impl PageCtx {
    /// htmx wants a fragment (not when it restores history: then it needs the
    /// whole page).
    pub fn wants_fragment(&self) -> bool {
        self.htmx && !self.history_restore
    }

    /// The context `base.html` needs, for the nav entry `nav`.
    pub async fn base(&self, nav: &str) -> AppResult<Value> {
        super::super::base_ctx(&self.session, self.user.as_deref(), nav).await
    }

    /// The whole page, `ctx` merged over the base context.
    pub async fn page(&self, template: &str, nav: &str, ctx: Value) -> AppResult<Html<String>> {
        let ctx = context! { ..ctx, ..self.base(nav).await? };
        self.state.templates.page(template, ctx)
    }

    /// Some blocks of the page, one after the other (a region and its
    /// out-of-band companions).
    pub async fn blocks(
        &self,
        template: &str,
        nav: &str,
        blocks: &[&str],
        ctx: Value,
    ) -> AppResult<Html<String>> {
        let ctx = context! { ..ctx, ..self.base(nav).await? };
        let mut html = String::new();
        for (i, b) in blocks.iter().enumerate() {
            if i > 0 {
                html.push('\n');
            }
            html.push_str(&self.state.templates.block(template, b, ctx.clone())?.0);
        }
        Ok(Html(html))
    }

    /// One block of the page.
    pub async fn block(
        &self,
        template: &str,
        nav: &str,
        block: &str,
        ctx: Value,
    ) -> AppResult<Html<String>> {
        self.blocks(template, nav, &[block], ctx).await
    }
}
