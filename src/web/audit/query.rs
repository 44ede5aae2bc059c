//! The Audit log's filters, written once: the typed query every audit page
//! and API reads, validated into the repository's [`AuditFilter`]; its echo,
//! form values and links all derive from these two structs.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{RESULT_CLASSES, SOURCES};
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::audit::{AuditFilter, Cursor};
use crate::web::kit::params::{bool_param, int_param, one_of, present, text_param};
use crate::web::kit::{Window, WindowQuery, WindowRules};

/// Every filter of the Audit log, as sent; blank values count as absent.
/// Field order is URL order.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuditQuery {
    #[serde(flatten)]
    pub window: WindowQuery,
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub source: Option<String>,
    pub result_class: Option<String>,
    pub resource_prefix: Option<String>,
    pub q: Option<String>,
    pub include_self_reads: Option<String>,
    pub min_duration_ms: Option<String>,
    pub action_prefix: Option<String>,
    pub resource: Option<String>,
    pub result_pattern: Option<String>,
    pub correlation_id: Option<String>,
}

/// The API's parameters: the filters plus what each endpoint adds.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Params {
    #[serde(flatten)]
    pub filter: AuditQuery,
    pub cursor_ts: Option<String>,
    pub cursor_id: Option<String>,
    pub limit: Option<String>,
    pub status: Option<String>,
    pub format: Option<String>,
}

/// A validated filter and its echo (which is also the read-suppression key:
/// the cursor and the limit are not part of it).
pub struct Parsed {
    pub filter: AuditFilter,
    pub window: Window,
    pub echo: Map<String, Value>,
}

pub fn parse_filter(q: &AuditQuery, now: NaiveDateTime) -> AppResult<Parsed> {
    let window = Window::parse(&q.window, WindowRules::AUDIT, now)?;
    let filter = AuditFilter {
        since: Some(window.since),
        until: window.until,
        user_id: text_param("user_id", &q.user_id)?,
        action: text_param("action", &q.action)?,
        action_prefix: text_param("action_prefix", &q.action_prefix)?,
        action_in: None,
        resource: text_param("resource", &q.resource)?,
        resource_prefix: text_param("resource_prefix", &q.resource_prefix)?,
        result_pattern: text_param("result_pattern", &q.result_pattern)?,
        result_class: one_of("result_class", &q.result_class, &RESULT_CLASSES)?,
        source: one_of("source", &q.source, &SOURCES)?,
        correlation_id: text_param("correlation_id", &q.correlation_id)?,
        q: text_param("q", &q.q)?,
        include_self_reads: bool_param("include_self_reads", &q.include_self_reads)?
            .unwrap_or(false),
        min_duration_ms: int_param("min_duration_ms", &q.min_duration_ms, 0, i32::MAX as i64)?,
    };
    let mut echo = window.echo();
    if let Ok(Value::Object(dims)) = serde_json::to_value(&filter) {
        echo.extend(dims);
    }
    Ok(Parsed {
        filter,
        window,
        echo,
    })
}

/// `cursor_ts` + `cursor_id`, both or neither; one that does not decode is a 422.
pub fn parse_cursor(
    cursor_ts: &Option<String>,
    cursor_id: &Option<String>,
) -> AppResult<Option<Cursor>> {
    match (present(cursor_ts), present(cursor_id)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(AppError::unprocessable(
            "cursor_id: required with cursor_ts (pass the next_cursor's ts and id)",
        )),
        (None, Some(_)) => Err(AppError::unprocessable(
            "cursor_ts: required with cursor_id (pass the next_cursor's ts and id)",
        )),
        (Some(ts), Some(id)) => {
            let ts = isotime::parse(ts).ok_or_else(|| {
                AppError::unprocessable(format!(
                    "cursor_ts: not a timestamp from next_cursor, got {ts:?}"
                ))
            })?;
            let id = uuid::Uuid::parse_str(id)
                .map_err(|_| {
                    AppError::unprocessable(format!(
                        "cursor_id: not an audit row id from next_cursor, got {id:?}"
                    ))
                })?
                .hyphenated()
                .to_string();
            Ok(Some(Cursor { ts, id }))
        }
    }
}
