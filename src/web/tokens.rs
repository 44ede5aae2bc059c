//! Issuing and revoking tokens, shared by `/me` (own tokens) and the admin pages
//! and APIs (anyone's), with their audit rows.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::RequestMeta;
use crate::accounts;
use crate::app::AppState;
use crate::auth::{Principal, DEFAULT_TOKEN_DAYS};
use crate::error::{AppError, AppResult};
use crate::repo::tokens;
use crate::repo::users::User;

// The view lives beside the rows it shows, so the CLI shares it without
// depending on the web layer.
pub use crate::repo::tokens::TokenView;

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
