//! Streamed exports (SPEC §5, §11): one helper serves every export. A
//! repository function streams Arrow batches from DuckDB on a blocking
//! thread into a [`writer`] for the format, which renders them on a second
//! thread ([`handoff`]), and whose bytes reach the response
//! body through a bounded channel ([`chunks`]): memory stays bounded at any
//! size, rows are never capped, and a client that goes away stops the
//! query. The audit row, with the row count, is written once the stream has
//! ended (before the body closes, so it is there when the client has the
//! whole file).

mod append;
mod bytescan;
mod cells;
mod chunks;
mod csv;
pub(crate) mod formula;
mod handoff;
mod ndjson;
mod timefmt;
mod writer;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::error::{AppError, AppResult};
use crate::repo::sql::BatchSink;
use chunks::ChunkSender;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// `json` and `ndjson` both mean NDJSON (Agnes's CLI sends `json`).
    Ndjson,
    Parquet,
}

impl Format {
    /// `format`, from those a route offers; blank is `default`.
    pub fn parse(v: Option<&str>, offered: &[Format], default: Format) -> AppResult<Format> {
        let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(default);
        };
        let f = match s.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" | "ndjson" => Some(Format::Ndjson),
            "parquet" => Some(Format::Parquet),
            _ => None,
        };
        match f {
            Some(f) if offered.contains(&f) => Ok(f),
            _ => {
                let names: Vec<&str> = offered.iter().map(|f| f.name()).collect();
                Err(AppError::unprocessable(format!(
                    "format: must be one of {}, got {s:?}",
                    names.join(", ")
                )))
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// What an export is: its format, its file name (without extension) and its
/// audit row (params are completed with `format` and `row_count`).
pub struct ExportSpec {
    pub format: Format,
    pub file_stem: String,
    pub event: AuditEvent,
    pub params: Map<String, Value>,
    pub started: std::time::Instant,
}

/// Streams what `produce` writes into the sink as the response. `produce`
/// runs on a blocking thread with its own connection and returns the rows
/// written.
pub fn stream<F>(state: &AppState, spec: ExportSpec, produce: F) -> Response
where
    F: FnOnce(&duckdb::Connection, &mut dyn BatchSink) -> anyhow::Result<u64> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<chunks::Chunk>(8);
    let db = state.db.clone();
    let ExportSpec {
        format,
        file_stem,
        event,
        mut params,
        started,
    } = spec;
    state.tracker.spawn_blocking(move || {
        let conn = match db.connect() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = ?e, "export: no connection");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                return;
            }
        };
        let writer = writer::Writer::new(format, ChunkSender::new(tx.clone()));
        let (outcome, rows) = handoff::produce_and_write(writer, |sink| produce(&conn, sink));
        let outcome = outcome.and_then(|(n, writer)| writer.finish().map(|_| n));
        params.insert("format".into(), json!(format.name()));
        let mut event = event;
        event.duration_ms = Some(started.elapsed().as_millis() as i64);
        let event = match &outcome {
            Ok(n) => {
                params.insert("row_count".into(), json!(n));
                event.params(Value::Object(params)).success()
            }
            Err(e) => {
                let gone = client_went_away(e);
                params.insert("row_count".into(), json!(rows));
                if !gone {
                    tracing::error!(error = ?e, "export failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                }
                let code = if gone { "client_closed" } else { "export" };
                event
                    .params(Value::Object(params))
                    .error(code, &format!("{e:#}"))
            }
        };
        if let Err(e) = crate::repo::audit::log(&conn, &event) {
            tracing::error!(error = ?e, action = %event.action, "could not write the export's audit row");
        }
        drop(tx);
    });

    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let filename = format!("{file_stem}.{}", format.extension());
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// True when the error is the client closing the connection (not a failure).
fn client_went_away(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = c.downcast_ref::<std::io::Error>();
        if io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return true;
        }
        matches!(c.downcast_ref::<parquet::errors::ParquetError>(),
            Some(parquet::errors::ParquetError::External(inner))
                if inner.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}
