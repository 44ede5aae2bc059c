//! Issuing and revoking tokens, shared by `/me` (own tokens) and the admin pages
//! and APIs (anyone's), with their audit rows.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::RequestMeta;
use crate::accounts;
use crate::app::AppState;
use crate::auth::{Principal, DEFAULT_TOKEN_DAYS};
use crate::error::{AppError, AppResult};
use crate::repo::tokens::{self, TokenRow};
use crate::repo::users::User;

/// A token as APIs and pages show it (never its text, except once on creation).
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub kind: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub active: bool,
}

pub fn iso(t: chrono::NaiveDateTime) -> String {
    t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl From<&TokenRow> for TokenView {
    fn from(t: &TokenRow) -> Self {
        TokenView {
            id: t.id.clone(),
            user_id: t.user_id.clone(),
            name: t.name.clone(),
            kind: t.kind.clone(),
            created_at: iso(t.created_at),
            expires_at: iso(t.expires_at),
            last_used_at: t.last_used_at.map(iso),
            revoked_at: t.revoked_at.map(iso),
            active: t.is_active(chrono::Utc::now().naive_utc()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewToken {
    #[serde(default)]
    pub name: String,
    pub days: Option<i64>,
}

/// The answer to a token creation: the token text, shown once, and its row.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

pub async fn list(state: &AppState, user_id: Option<String>) -> AppResult<Vec<TokenView>> {
    let rows = state
        .db
        .run(move |c| tokens::list(c, user_id.as_deref()))
        .await?;
    Ok(rows.iter().map(TokenView::from).collect())
}

pub async fn issue(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Principal,
    owner: User,
    req: NewToken,
) -> AppResult<CreatedToken> {
    let days = req.days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if !(1..=3650).contains(&days) {
        return Err(AppError::unprocessable("days: must be between 1 and 3650"));
    }
    if !owner.active {
        return Err(AppError::Conflict(
            "this user is deactivated: reactivate them first".into(),
        ));
    }
    let secret = state.auth.secret().to_vec();
    let actor_id = actor.id().to_string();
    let (name, owner_c) = (req.name, owner.clone());
    let issued = state
        .db
        .run(move |c| {
            Ok(accounts::issue_token(
                c,
                &secret,
                &owner_c,
                &name,
                "pat",
                chrono::Duration::days(days),
                Some(&actor_id),
            ))
        })
        .await?
        .map_err(AppError::from)?;
    state
        .audit(
            meta.audit("token.create", Some(actor))
                .resource(format!("token:{}", issued.row.id))
                .params(json!({"name": issued.row.name, "for_user": owner.id, "days": days}))
                .success(),
        )
        .await;
    Ok(CreatedToken {
        token: issued.token,
        view: TokenView::from(&issued.row),
    })
}

/// Revokes a token; with `owner` set, only a token of that user (404 otherwise,
/// so one user cannot probe another's token ids).
pub async fn revoke(
    state: &AppState,
    meta: &RequestMeta,
    actor: &Principal,
    id: String,
    owner: Option<String>,
) -> AppResult<()> {
    let actor_id = actor.id().to_string();
    let id_c = id.clone();
    let outcome = state
        .db
        .run(move |c| {
            let Some((row, _)) = tokens::get(c, &id_c)? else {
                return Ok(None);
            };
            if owner.as_deref().is_some_and(|o| o != row.user_id) {
                return Ok(None);
            }
            let changed = tokens::revoke(c, &id_c, Some(&actor_id))?;
            Ok(Some((row, changed)))
        })
        .await?;
    let Some((row, changed)) = outcome else {
        return Err(AppError::not_found("token not found"));
    };
    state.auth.invalidate_token(&id);
    if changed {
        state
            .audit(
                meta.audit("token.revoke", Some(actor))
                    .resource(format!("token:{id}"))
                    .params(json!({"name": row.name, "for_user": row.user_id}))
                    .success(),
            )
            .await;
    }
    Ok(())
}
