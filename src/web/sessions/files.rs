//! Which transcript files a request may reach: the path guard applied to a
//! named directory, or to the directories of a person (their id, and their
//! email's local-part when ingestion maps that directory to them).

use std::path::PathBuf;

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::repo::users::User;
use crate::sessions::paths::{self, DirFile, PathError};

pub fn path_error(e: PathError) -> AppError {
    match e {
        PathError::NotFound => AppError::not_found(e.to_string()),
        _ => AppError::bad_request(e.to_string()),
    }
}

/// `SESSION_DATA_DIR/<user_dir>/<file>` through the guard.
pub async fn resolve(state: &AppState, user_dir: &str, file: &str) -> AppResult<PathBuf> {
    let root = state.config.session_data_dir.clone();
    let (d, f) = (user_dir.to_string(), file.to_string());
    tokio::task::spawn_blocking(move || paths::resolve(&root, &d, &f))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(path_error)
}

/// The names of a person's directories under `SESSION_DATA_DIR`, theirs
/// first: the one named by their id, then any whose name is their email's
/// local-part (any case) and that ingestion maps to them.
pub async fn user_dirs(state: &AppState, user: &User) -> AppResult<Vec<String>> {
    let mapper = state
        .db
        .run(|c| crate::ingest::runner::DirMapper::load(c))
        .await?;
    let root = state.config.session_data_dir.clone();
    let (id, email) = (user.id.clone(), user.email.clone());
    tokio::task::spawn_blocking(move || {
        let local = email.split('@').next().unwrap_or("").to_lowercase();
        let mut dirs = Vec::new();
        if paths::user_dir(&root, &id).is_ok() {
            dirs.push(id.clone());
        }
        if let Ok(entries) = std::fs::read_dir(&root) {
            let mut others: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| *n != id && n.to_lowercase() == local)
                .filter(|n| mapper.map(n).1.as_deref() == Some(id.as_str()))
                .filter(|n| paths::user_dir(&root, n).is_ok())
                .collect();
            others.sort();
            dirs.extend(others);
        }
        dirs
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))
}

/// Every guarded transcript of a person, de-duplicated by file name (the
/// first directory wins), with the directory it is in.
pub async fn user_files(state: &AppState, dirs: &[String]) -> AppResult<Vec<(String, DirFile)>> {
    let root = state.config.session_data_dir.clone();
    let dirs = dirs.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for d in dirs {
            let Ok(dir) = paths::user_dir(&root, &d) else {
                continue;
            };
            for f in paths::list_dir(&dir).unwrap_or_default() {
                if seen.insert(f.name.clone()) {
                    out.push((d.clone(), f));
                }
            }
        }
        out
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))
}

/// A person's file by name: the first of their directories that holds it.
pub async fn user_file(
    state: &AppState,
    dirs: &[String],
    file: &str,
) -> AppResult<(String, PathBuf)> {
    if !paths::valid_file_name(file) {
        return Err(path_error(PathError::BadFileName));
    }
    let mut last = PathError::NotFound;
    for d in dirs {
        match resolve(state, d, file).await {
            Ok(p) => return Ok((d.clone(), p)),
            Err(AppError::NotFound(_)) => {}
            Err(e) => {
                last = PathError::Escape;
                tracing::warn!(dir = %d, %file, error = %e, "refused a session path");
            }
        }
    }
    Err(path_error(last))
}
