//! `GET /api/v1/usage/export?format=ndjson|csv&since=…&after_id=…` (admin):
//! every `app_events` row after the cursor, oldest first, streamed, so a SIEM
//! that passes the last row's `created_at` (and `id`) resumes without gaps.
//!
//! Written with the streaming pattern of the audit CSV export (a blocking
//! query feeding a bounded channel of chunks): the shared export helper was
//! not on main yet when this was built.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, value::RawValue};

use super::extract::{Query, RequestMeta};
use crate::app::AppState;
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::app_events::{self as repo, ExportRow};

#[derive(Deserialize)]
pub(crate) struct ExportParams {
    format: Option<String>,
    since: Option<String>,
    after_id: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Ndjson,
    Csv,
}

const CHUNK: usize = 64 * 1024;

/// Bytes handed to the response body in chunks through a bounded channel: a
/// slow client slows the query down instead of filling memory.
struct Chunks {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + 4096),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A text cell a spreadsheet would run as a formula gets a leading `'`.
pub(crate) fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    created_at: String,
    user_id: Option<&'a str>,
    event_type: &'a str,
    source: Option<&'a str>,
    metadata: &'a RawValue,
}

fn csv_row(w: &mut csv::Writer<Chunks>, r: &ExportRow) -> anyhow::Result<()> {
    w.write_record([
        r.id.as_str(),
        &isotime::format(&r.created_at),
        &neutralise(r.user_id.as_deref().unwrap_or("")),
        &neutralise(&r.event_type),
        &neutralise(r.source.as_deref().unwrap_or("")),
        &neutralise(r.metadata.as_deref().unwrap_or("{}")),
    ])?;
    Ok(())
}

fn ndjson_row(out: &mut Chunks, r: &ExportRow) -> anyhow::Result<()> {
    let meta = r.metadata.as_deref().unwrap_or("{}");
    let empty: &RawValue = serde_json::from_str("{}")?;
    let raw: &RawValue = serde_json::from_str(meta).unwrap_or(empty);
    serde_json::to_writer(
        &mut *out,
        &Line {
            id: &r.id,
            created_at: isotime::format(&r.created_at),
            user_id: r.user_id.as_deref(),
            event_type: &r.event_type,
            source: r.source.as_deref(),
            metadata: raw,
        },
    )?;
    std::io::Write::write_all(out, b"\n")?;
    Ok(())
}

pub(crate) async fn export(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<ExportParams>,
) -> AppResult<Response> {
    let format = match p.format.as_deref().map(str::trim).unwrap_or("ndjson") {
        "" | "ndjson" | "json" => Format::Ndjson,
        "csv" => Format::Csv,
        other => {
            return Err(AppError::unprocessable(format!(
                "format: ndjson (or json) or csv, got {other:?}"
            )))
        }
    };
    let since = match p.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(isotime::parse(s).ok_or_else(|| {
            AppError::unprocessable(format!("since: not an ISO 8601 date-time, got {s:?}"))
        })?),
    };
    let after_id = p.after_id.filter(|s| !s.is_empty());
    if after_id.is_some() && since.is_none() {
        return Err(AppError::unprocessable(
            "after_id: only with since (the cursor is created_at and id)",
        ));
    }
    if after_id.as_deref().is_some_and(|a| a.len() > 64) {
        return Err(AppError::unprocessable("after_id: at most 64 characters"));
    }
    let (ext, content_type) = match format {
        Format::Ndjson => ("ndjson", "application/x-ndjson"),
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
    };
    let filename = match &since {
        Some(s) => format!("app_events_after_{}.{ext}", isotime::compact(s)),
        None => format!("app_events.{ext}"),
    };
    let mut event = meta.audit("usage.export", Some(&admin));
    let started = meta.started;
    let params = json!({
        "format": ext,
        "since": since.map(|s| isotime::format(&s)),
        "after_id": after_id,
    });

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let db = state.db.clone();
    state.tracker.spawn_blocking(move || {
        let conn = match db.connect() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = ?e, "usage export: no connection");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                return;
            }
        };
        let mut sent = 0u64;
        let outcome = (|| -> anyhow::Result<u64> {
            let chunks = Chunks {
                buf: Vec::with_capacity(CHUNK + 4096),
                tx: tx.clone(),
            };
            let n = if format == Format::Csv {
                let mut w = csv::Writer::from_writer(chunks);
                w.write_record([
                    "id",
                    "created_at",
                    "user_id",
                    "event_type",
                    "source",
                    "metadata",
                ])?;
                let n = repo::export(&conn, since, after_id.as_deref(), &mut |r| {
                    csv_row(&mut w, &r)?;
                    sent += 1;
                    Ok(true)
                })?;
                let mut chunks = w
                    .into_inner()
                    .map_err(|e| std::io::Error::new(e.error().kind(), e.error().to_string()))?;
                chunks.send()?;
                n
            } else {
                let mut chunks = chunks;
                let n = repo::export(&conn, since, after_id.as_deref(), &mut |r| {
                    ndjson_row(&mut chunks, &r)?;
                    sent += 1;
                    Ok(true)
                })?;
                chunks.send()?;
                n
            };
            Ok(n)
        })();
        event.duration_ms = Some(started.elapsed().as_millis() as i64);
        let mut params = params;
        params["row_count"] = json!(sent);
        let event = match &outcome {
            Ok(_) => event.params(params).success(),
            Err(e) => {
                tracing::warn!(error = ?e, "usage export ended early");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                event.params(params).error("export", &format!("{e:#}"))
            }
        };
        if let Err(e) = crate::repo::audit::log(&conn, &event) {
            tracing::error!(error = ?e, "could not write the usage.export row");
        }
        drop(tx);
    });

    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn formula_looking_cells_get_a_quote() {
        for (raw, cell) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "'+1"),
            ("-x", "'-x"),
            ("@me", "'@me"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(neutralise(raw), cell);
        }
    }
}
