//! `POST /api/upload/sessions`: a transcript into the uploader's directory.
//!
//! The body (multipart field `file`, or the raw body with `?filename=`) is
//! streamed to a temporary file beside the target, counted against
//! `GLASSBOX_UPLOAD_MAX_MB`, synced, then renamed over the target, so a
//! re-upload replaces the file atomically and a failed one leaves nothing.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::extract::{Query, RequestMeta};
use crate::app::AppState;
use crate::auth::AnyUser;
use crate::error::{AppError, AppResult};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/upload/sessions",
        // Our own streaming limit answers 413; axum's default would cut at 2 MB.
        post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

/// `^[A-Za-z0-9._-]+\.jsonl$`, and not a dot-file (no `..`, no hidden names).
pub fn valid_session_name(name: &str) -> bool {
    name.len() > ".jsonl".len()
        && name.len() <= 255
        && name.ends_with(".jsonl")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Deserialize)]
struct UploadQuery {
    filename: Option<String>,
}

async fn upload(
    State(state): State<AppState>,
    meta: RequestMeta,
    AnyUser(who): AnyUser,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> AppResult<impl IntoResponse> {
    let limit = state.config.upload_max_mb * 1024 * 1024;
    let dir = user_dir(&state.config.session_data_dir, who.id()).await?;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let (name, bytes) =
        if is_multipart {
            let mut mp = Multipart::from_request(req, &state)
                .await
                .map_err(|e| AppError::bad_request(format!("file: {e}")))?;
            let mut stored = None;
            while let Some(field) = mp.next_field().await.map_err(|e| {
                AppError::bad_request(format!("file: malformed multipart body ({e})"))
            })? {
                if field.name() != Some("file") {
                    continue;
                }
                let name = q
                    .filename
                    .clone()
                    .or_else(|| field.file_name().map(str::to_string))
                    .unwrap_or_default();
                check_name(&name)?;
                let stream = field.map(|c| c.map_err(|e| std::io::Error::other(e.to_string())));
                let bytes = store(&dir, &name, stream, limit, state.config.upload_max_mb).await?;
                stored = Some((name, bytes));
                break;
            }
            stored.ok_or_else(|| {
                AppError::unprocessable("file: the multipart body has no `file` field")
            })?
        } else {
            let name = q.filename.clone().ok_or_else(|| {
                AppError::unprocessable(
                    "filename: give ?filename=<name>.jsonl or send multipart field `file`",
                )
            })?;
            check_name(&name)?;
            let stream = Body::new(req.into_body())
                .into_data_stream()
                .map(|c| c.map_err(|e| std::io::Error::other(e.to_string())));
            let bytes = store(&dir, &name, stream, limit, state.config.upload_max_mb).await?;
            (name, bytes)
        };
    let session_file = format!("{}/{}", who.id(), name);
    let (sf, uid) = (session_file.clone(), who.id().to_string());
    state
        .db
        .run(move |c| crate::repo::usage::record_upload(c, &sf, &uid, bytes as i64))
        .await?;
    state
        .audit(
            meta.audit("session.upload", Some(&who))
                .resource(format!("session:{session_file}"))
                .params(json!({"filename": name, "bytes": bytes}))
                .success(),
        )
        .await;
    state.metrics.inc("glassbox_session_uploads_total", &[], 1);
    Ok((
        StatusCode::CREATED,
        Json(json!({"session_file": session_file, "bytes": bytes})),
    ))
}

/// The uploader's directory, created if needed and resolved. A user
/// directory that is a symlink is refused, most of all one leading out of
/// SESSION_DATA_DIR: ingest reads plain directories only, so the file would
/// be written where it is never read (and somewhere nobody chose).
async fn user_dir(root: &Path, user_id: &str) -> AppResult<PathBuf> {
    let dir = root.join(user_id);
    let io = |what: &Path, e: std::io::Error| {
        AppError::Internal(anyhow::anyhow!("while creating {}: {e}", what.display()))
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io(&dir, e))?;
    let real_root = tokio::fs::canonicalize(root)
        .await
        .map_err(|e| io(root, e))?;
    let real = tokio::fs::canonicalize(&dir)
        .await
        .map_err(|e| io(&dir, e))?;
    let linked = tokio::fs::symlink_metadata(&dir)
        .await
        .map_err(|e| io(&dir, e))?
        .is_symlink();
    let outside = !real.starts_with(&real_root) || real == real_root;
    if linked || outside {
        return Err(AppError::Forbidden(format!(
            "file: your upload directory {user_id} is a symlink{}; ingest reads plain directories \
             only: ask an admin to replace it with a directory",
            if outside {
                " leading outside SESSION_DATA_DIR"
            } else {
                ""
            }
        )));
    }
    Ok(real)
}

fn check_name(name: &str) -> AppResult<()> {
    if valid_session_name(name) {
        Ok(())
    } else {
        Err(AppError::bad_request(format!(
            "filename: {name:?} is not a plain transcript name (letters, digits, '.', '_', '-', ending in .jsonl)"
        )))
    }
}

/// Streams into a temp file, then renames it over `dir/name`. Returns the size.
async fn store(
    dir: &Path,
    name: &str,
    mut stream: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Unpin,
    limit: u64,
    limit_mb: u64,
) -> AppResult<u64> {
    // A short random name, whatever the length of `name` (≤ 255): a name
    // derived from it would pass the file system's 255-byte limit.
    let tmp: PathBuf = dir.join(format!(".{}.part", uuid::Uuid::new_v4().simple()));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(internal)?;
        let mut total: u64 = 0;
        let mut sniffed = false;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                AppError::bad_request(format!("file: the upload was interrupted ({e})"))
            })?;
            if !sniffed && !chunk.is_empty() {
                // NUL bytes never occur in JSONL text: refuse binaries early.
                if chunk[..chunk.len().min(8192)].contains(&0) {
                    return Err(AppError::bad_request(
                        "file: this is binary data, not a JSONL transcript",
                    ));
                }
                sniffed = true;
            }
            total += chunk.len() as u64;
            if total > limit {
                return Err(AppError::PayloadTooLarge(format!(
                    "file: larger than the upload limit of {limit_mb} MB (GLASSBOX_UPLOAD_MAX_MB)"
                )));
            }
            file.write_all(&chunk).await.map_err(internal)?;
        }
        if total == 0 {
            return Err(AppError::bad_request("file: the upload is empty (0 bytes)"));
        }
        file.sync_all().await.map_err(internal)?;
        drop(file);
        tokio::fs::rename(&tmp, dir.join(name))
            .await
            .map_err(internal)?;
        Ok(total)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

fn internal(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("while storing an upload: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_jsonl_basenames_are_accepted() {
        for ok in ["abc.jsonl", "5b0e6c1a-3f7d.jsonl", "a_b.c-d.jsonl"] {
            assert!(super::valid_session_name(ok), "{ok}");
        }
        for bad in [
            "../x.jsonl",
            "a/b.jsonl",
            ".jsonl",
            ".hidden.jsonl",
            "x.json",
            "x.jsonl ",
            "é.jsonl",
            "..jsonl",
            "a\\b.jsonl",
        ] {
            assert!(!super::valid_session_name(bad), "{bad}");
        }
    }
}
