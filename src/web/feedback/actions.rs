//! An admin's actions on a report (assign to me, tag, resolve with text,
//! won't fix, reopen), each audited as `feedback.<action>` on `feedback:<id>`.

use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::repo::feedback::{self as repo, Change};
use crate::web::extract::RequestMeta;

pub const ACTIONS: [&str; 5] = ["assign", "tag", "resolve", "wontfix", "reopen"];
const MAX_TAGS: usize = 10;
const MAX_TAG_CHARS: usize = 40;
const MAX_RESOLUTION_CHARS: usize = 10_000;

/// An action as a form or JSON sends it. `tags` is comma-separated.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionReq {
    pub action: Option<String>,
    pub tags: Option<String>,
    pub resolution: Option<String>,
    /// The CSRF field of forms (checked by the middleware).
    #[allow(dead_code)]
    csrf_token: Option<String>,
}

/// Tags: lowercased, trimmed, deduplicated; letters, digits, `-`, `_`, `.`.
pub fn parse_tags(raw: &str) -> AppResult<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for t in raw.split(',').map(|t| t.trim().to_lowercase()) {
        if t.is_empty() || tags.contains(&t) {
            continue;
        }
        if t.chars().count() > MAX_TAG_CHARS
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(AppError::unprocessable(format!(
                "tags: {t:?} is not a tag (up to {MAX_TAG_CHARS} letters, digits, `-`, `_`, `.`)"
            )));
        }
        tags.push(t);
    }
    if tags.len() > MAX_TAGS {
        return Err(AppError::unprocessable(format!("tags: at most {MAX_TAGS}")));
    }
    Ok(tags)
}

fn change_of(action: &str, req: &ActionReq, admin: &RequireAdmin) -> AppResult<Change> {
    Ok(match action {
        "assign" => Change::Assign(admin.id().to_string()),
        "tag" => Change::Tags(parse_tags(req.tags.as_deref().unwrap_or(""))?),
        "resolve" | "wontfix" => {
            let text = req
                .resolution
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from);
            if action == "resolve" && text.is_none() {
                return Err(AppError::unprocessable(
                    "resolution: say how it was resolved",
                ));
            }
            if text
                .as_ref()
                .is_some_and(|t| t.chars().count() > MAX_RESOLUTION_CHARS)
            {
                return Err(AppError::unprocessable(format!(
                    "resolution: at most {MAX_RESOLUTION_CHARS} characters"
                )));
            }
            Change::Close {
                status: if action == "resolve" {
                    "resolved"
                } else {
                    "wontfix"
                },
                resolution: text,
                by: admin.id().to_string(),
            }
        }
        "reopen" => Change::Reopen,
        other => {
            return Err(AppError::unprocessable(format!(
                "action: must be one of {}, got {other:?}",
                ACTIONS.join(", ")
            )))
        }
    })
}

/// Validates and applies `action` to report `id`, and audits it.
pub async fn act(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    id: String,
    action: &str,
    req: &ActionReq,
) -> AppResult<()> {
    let change = change_of(action, req, admin)?;
    let rid = id.clone();
    let before = state
        .db
        .run(move |c| repo::get(c, &rid))
        .await?
        .ok_or_else(|| AppError::not_found(format!("id: no feedback report {id:?}")))?
        .report;
    let (rid, ch) = (id.clone(), change.clone());
    state.db.run(move |c| repo::apply(c, &rid, &ch)).await?;
    let params = match &change {
        Change::Assign(u) => json!({"assignee": u}),
        Change::Tags(t) => json!({"tags": t}),
        Change::Close {
            status, resolution, ..
        } => json!({"status": status, "resolution": resolution}),
        Change::Reopen => json!({"status": "open"}),
    };
    state
        .audit(
            meta.audit(&format!("feedback.{action}"), Some(admin))
                .resource(format!("feedback:{id}"))
                .params(params)
                .params_before(json!({
                    "status": before.status, "assignee": before.assignee,
                    "tags": before.tags, "resolution": before.resolution,
                }))
                .success(),
        )
        .await;
    Ok(())
}
