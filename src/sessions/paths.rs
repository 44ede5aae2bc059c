//! The path guard: every transcript read or download goes through here.
//!
//! A request names a user directory and a file; both must be plain names
//! (`^[A-Za-z0-9._-]{1,200}$` and `^[A-Za-z0-9._-]+\.jsonl$`, neither a dot
//! name), and the file's canonical path (symlinks followed) must sit directly
//! in the canonical user directory, which itself must be the directory of that
//! name directly under `SESSION_DATA_DIR`. So `..`, absolute paths, encoded
//! separators, NUL, backslashes and symlinks that leave the directory (even to
//! another user's directory) are all refused before a byte is read.

use std::path::{Path, PathBuf};

/// Why a path was refused; the web layer maps these to 400 and 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The user directory is not a plain name (400).
    BadUserDir,
    /// The file name is not a plain `*.jsonl` basename (400).
    BadFileName,
    /// The resolved path leaves the user's directory (400).
    Escape,
    /// No such directory or file (404).
    NotFound,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathError::BadUserDir => {
                "user_dir: not a plain directory name (letters, digits, '.', '_', '-'; at most 200)"
            }
            PathError::BadFileName => {
                "file: not a plain transcript name (letters, digits, '.', '_', '-', ending in .jsonl)"
            }
            PathError::Escape => "path escape rejected",
            PathError::NotFound => "session file not found",
        })
    }
}

fn plain_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `^[A-Za-z0-9._-]{1,200}$`, and not a dot name (`.`, `..`, hidden
/// directories, which ingestion ignores too).
pub fn valid_user_dir(s: &str) -> bool {
    (1..=200).contains(&s.len()) && !s.starts_with('.') && plain_chars(s)
}

/// `^[A-Za-z0-9._-]+\.jsonl$`, and not a dot name (upload temp files are
/// hidden `.name.part` files).
pub fn valid_file_name(s: &str) -> bool {
    s.len() > ".jsonl".len()
        && s.len() <= 255
        && s.ends_with(".jsonl")
        && !s.starts_with('.')
        && plain_chars(s)
}

/// The canonical directory of `user_dir` under `root`, refusing one that is a
/// symlink leading anywhere but itself.
pub fn user_dir(root: &Path, user_dir: &str) -> Result<PathBuf, PathError> {
    if !valid_user_dir(user_dir) {
        return Err(PathError::BadUserDir);
    }
    let root = std::fs::canonicalize(root).map_err(|_| PathError::NotFound)?;
    let expected = root.join(user_dir);
    let dir = std::fs::canonicalize(&expected).map_err(|_| PathError::NotFound)?;
    if dir != expected {
        return Err(PathError::Escape);
    }
    if !dir.is_dir() {
        return Err(PathError::NotFound);
    }
    Ok(dir)
}

/// The canonical path of `file` inside the canonical directory `dir`
/// (from [`user_dir`]): it must resolve to a regular file directly in `dir`.
pub fn file_in(dir: &Path, file: &str) -> Result<PathBuf, PathError> {
    if !valid_file_name(file) {
        return Err(PathError::BadFileName);
    }
    let path = std::fs::canonicalize(dir.join(file)).map_err(|_| PathError::NotFound)?;
    if path.parent() != Some(dir) {
        return Err(PathError::Escape);
    }
    if !path.is_file() {
        return Err(PathError::NotFound);
    }
    Ok(path)
}

/// `SESSION_DATA_DIR/<user_dir>/<file>`, guarded. Names are checked before
/// the file system is touched.
pub fn resolve(root: &Path, user_dir_name: &str, file: &str) -> Result<PathBuf, PathError> {
    if !valid_file_name(file) {
        return Err(PathError::BadFileName);
    }
    let dir = user_dir(root, user_dir_name)?;
    file_in(&dir, file)
}

/// One transcript found in a user directory.
#[derive(Debug, Clone)]
pub struct DirFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime: Option<std::time::SystemTime>,
}

/// The transcripts of a canonical user directory that pass the guard, by
/// name; files whose symlinks leave the directory and anything that is not a
/// plain `*.jsonl` regular file are skipped.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<DirFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(path) = file_in(dir, &name) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        out.push(DirFile {
            name,
            path,
            size: meta.len(),
            mtime: meta.modified().ok(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("user_sessions");
        std::fs::create_dir_all(root.join("alice")).unwrap();
        std::fs::create_dir_all(root.join("bob")).unwrap();
        std::fs::write(root.join("alice/a.jsonl"), "{}\n").unwrap();
        std::fs::write(root.join("bob/b.jsonl"), "{}\n").unwrap();
        std::fs::write(t.path().join("secret.jsonl"), "SECRET\n").unwrap();
        (t, root)
    }

    #[test]
    fn plain_names_pass_and_everything_else_is_refused() {
        for ok in ["a.jsonl", "5b0e-6c1a_x.y.jsonl", "A.jsonl"] {
            assert!(valid_file_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".jsonl",
            "..jsonl",
            ".a.jsonl",
            "a.json",
            "a.jsonl ",
            "a/b.jsonl",
            "a\\b.jsonl",
            "a\0.jsonl",
            "é.jsonl",
            "a%2F.jsonl",
            "../a.jsonl",
            "/etc/a.jsonl",
        ] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
        let long = format!("{}.jsonl", "a".repeat(300));
        assert!(!valid_file_name(&long));
        for ok in ["alice", "user-1", "a.b_c", &"x".repeat(200)] {
            assert!(valid_user_dir(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a\0",
            "ü",
            &"x".repeat(201),
            "a b",
        ] {
            assert!(!valid_user_dir(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_file_in_its_users_directory_resolves() {
        let (_t, root) = tree();
        let p = resolve(&root, "alice", "a.jsonl").unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), "{}\n");
        assert_eq!(
            resolve(&root, "alice", "nope.jsonl"),
            Err(PathError::NotFound)
        );
        assert_eq!(resolve(&root, "carol", "a.jsonl"), Err(PathError::NotFound));
        assert_eq!(resolve(&root, "alice", "b.jsonl"), Err(PathError::NotFound));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_that_leave_the_users_directory_are_refused() {
        let (t, root) = tree();
        let a = root.join("alice");
        std::os::unix::fs::symlink(t.path().join("secret.jsonl"), a.join("out.jsonl")).unwrap();
        std::os::unix::fs::symlink(root.join("bob/b.jsonl"), a.join("peer.jsonl")).unwrap();
        std::os::unix::fs::symlink(a.join("a.jsonl"), a.join("same.jsonl")).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("evil")).unwrap();
        std::os::unix::fs::symlink(root.join("bob"), root.join("bobby")).unwrap();
        assert_eq!(resolve(&root, "alice", "out.jsonl"), Err(PathError::Escape));
        assert_eq!(
            resolve(&root, "alice", "peer.jsonl"),
            Err(PathError::Escape)
        );
        assert!(resolve(&root, "alice", "same.jsonl").is_ok());
        assert_eq!(
            resolve(&root, "evil", "secret.jsonl"),
            Err(PathError::Escape)
        );
        assert_eq!(resolve(&root, "bobby", "b.jsonl"), Err(PathError::Escape));
        let names: Vec<String> = list_dir(&user_dir(&root, "alice").unwrap())
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a.jsonl", "same.jsonl"]);
    }

    #[test]
    fn hostile_names_never_reach_the_file_system() {
        let (_t, root) = tree();
        for (dir, file) in [
            ("..", "secret.jsonl"),
            ("alice", "../../secret.jsonl"),
            ("alice/..", "secret.jsonl"),
            ("/etc", "passwd.jsonl"),
            ("alice", "..%2Fsecret.jsonl"),
            ("alice\\..", "secret.jsonl"),
            ("alice\0", "a.jsonl"),
            (".", "secret.jsonl"),
        ] {
            assert!(resolve(&root, dir, file).is_err(), "{dir:?}/{file:?}");
        }
    }
}
