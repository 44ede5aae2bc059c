//! The one DuckDB file and the handle every unit of work clones a connection from.
//!
//! DuckDB's `Connection` is `Send` but not `Sync`: the handle keeps one base
//! connection behind a mutex and each unit of work gets its own clone inside
//! `spawn_blocking`, so no connection is ever held across an `.await`.

pub mod migrate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use duckdb::Connection;

/// Start-up options for the database, applied before the configuration is locked.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub memory_limit: String,
    pub threads: usize,
    /// WAL size, with what a commit adds to it, at which the commit
    /// checkpoints (256MB: see `finish_open`).
    pub checkpoint_threshold: String,
    /// A commit that checkpoints and adds at least this many bytes skips the
    /// WAL: the checkpoint writes its rows straight into the file (DuckDB's
    /// `auto_checkpoint_skip_wal_threshold`; None keeps DuckDB's default).
    pub skip_wal_bytes: Option<u64>,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            memory_limit: "2GB".into(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            checkpoint_threshold: "256MB".into(),
            skip_wal_bytes: None,
        }
    }
}

/// A shared handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    base: Arc<Mutex<Connection>>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// Raised when another process (normally a running server) holds the file.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {path} is in use by another glassbox process{holder} (is the server running?)"
)]
pub struct DbLocked {
    pub path: String,
    /// ` (PID 123, /usr/bin/glassbox)` when DuckDB names the holder, else empty.
    pub holder: String,
}

impl DbLocked {
    /// From DuckDB's "Conflicting lock is held in PROGRAM (PID N) by user U".
    fn from_duckdb(path: &Path, msg: &str) -> Option<DbLocked> {
        if !(msg.contains("Could not set lock") || msg.contains("Conflicting lock")) {
            return None;
        }
        let program = msg
            .split("Conflicting lock is held in ")
            .nth(1)
            .and_then(|rest| rest.split(" (PID ").next())
            .map(str::trim);
        let pid = msg
            .split("(PID ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .map(str::trim);
        let holder = match (pid, program) {
            (Some(pid), Some(program)) => format!(" (PID {pid}, {program})"),
            (Some(pid), None) => format!(" (PID {pid})"),
            _ => String::new(),
        };
        Some(DbLocked {
            path: path.display().to_string(),
            holder,
        })
    }
}

/// Fails with `DbLocked` when another process holds the database at `path`;
/// a missing file is free. Opens read-only and changes nothing, so commands
/// that replace a data dir can ask before they touch it.
pub fn ensure_not_held(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
    match Connection::open_with_flags(path, config) {
        Ok(conn) => {
            drop(conn);
            Ok(())
        }
        Err(e) => Err(match DbLocked::from_duckdb(path, &e.to_string()) {
            Some(locked) => anyhow::Error::new(locked),
            None => anyhow::Error::new(e).context(format!("while opening {}", path.display())),
        }),
    }
}

/// How a database file is opened: the memory limit and threads of `opts`.
fn file_config(opts: &DbOptions) -> anyhow::Result<duckdb::Config> {
    Ok(duckdb::Config::default()
        .max_memory(&opts.memory_limit)?
        .threads(opts.threads as i64)?)
}

/// `<file>.wal`, where DuckDB keeps a database's write-ahead log.
fn wal_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

/// Makes a new database's schema in `<file>.init` and renames it into place
/// once checkpointed. DuckDB 1.5.6 cannot replay a WAL holding the
/// migrations' DDL, so a first start killed between their commits and the
/// checkpoint (a ~0.1 s window) used to leave a database that never opened
/// again; now it leaves only an `.init` file, replaced on the next start.
fn create_schema_aside(path: &Path, opts: &DbOptions) -> anyhow::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".init");
    let init = PathBuf::from(name);
    for stale in [&init, &wal_of(&init)] {
        match std::fs::remove_file(stale) {
            Ok(()) => {
                tracing::warn!(file = %stale.display(), "removed a half-made schema from an interrupted first start")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("while removing {}", stale.display())),
        }
    }
    let conn = Connection::open_with_flags(&init, file_config(opts)?)
        .with_context(|| format!("while creating {}", init.display()))?;
    conn.execute_batch("SET GLOBAL TimeZone = 'UTC';")?;
    migrate::apply(&conn, None).context("while applying migrations")?;
    conn.close()
        .map_err(|(_, e)| e)
        .with_context(|| format!("while closing {}", init.display()))?;
    if wal_of(&init).exists() {
        anyhow::bail!(
            "{} kept a write-ahead log after its checkpoint; not moved into place",
            init.display()
        );
    }
    std::fs::rename(&init, path)
        .with_context(|| format!("while moving {} to {}", init.display(), path.display()))?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database file, applies pending migrations,
    /// then turns off external access and locks the configuration.
    pub fn open(path: &Path, opts: &DbOptions) -> anyhow::Result<Db> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("while creating {}", parent.display()))?;
        }
        if !path.exists() && !wal_of(path).exists() {
            create_schema_aside(path, opts)?;
        }
        let conn = Connection::open_with_flags(path, file_config(opts)?).map_err(|e| {
            match DbLocked::from_duckdb(path, &e.to_string()) {
                Some(locked) => anyhow::Error::new(locked),
                None => anyhow::Error::new(e).context(format!("while opening {}", path.display())),
            }
        })?;
        Self::finish_open(conn, Some(path.to_path_buf()), opts)
    }

    /// An in-memory database with the same start-up sequence (unit tests).
    pub fn open_in_memory() -> anyhow::Result<Db> {
        let config = duckdb::Config::default().max_memory("512MB")?.threads(2)?;
        let conn = Connection::open_in_memory_with_flags(config)?;
        Self::finish_open(conn, None, &DbOptions::default())
    }

    fn finish_open(
        conn: Connection,
        path: Option<PathBuf>,
        opts: &DbOptions,
    ) -> anyhow::Result<Db> {
        // A plain `SET` reaches one connection only: cloned connections would get the
        // host's zone. GLOBAL options reach every clone.
        // A checkpoint compresses what the WAL holds and ran inside ingest's
        // commits at the default 16 MB, a third of its time; at 256 MB it runs
        // between batches' worth of work or at shutdown (a restart replays at
        // most 256 MB of WAL).
        conn.execute_batch(&format!(
            "SET GLOBAL TimeZone = 'UTC'; SET GLOBAL checkpoint_threshold = '{}';",
            opts.checkpoint_threshold.replace('\'', "")
        ))
        .context("while setting the time zone")?;
        if let Some(bytes) = opts.skip_wal_bytes {
            conn.execute_batch(&format!(
                "SET GLOBAL auto_checkpoint_skip_wal_threshold = {bytes};"
            ))?;
        }
        migrate::apply(&conn, None).context("while applying migrations")?;
        conn.execute_batch(
            "SET GLOBAL enable_external_access = false; SET GLOBAL lock_configuration = true;",
        )
        .context("while locking the database configuration")?;
        Ok(Db {
            base: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A fresh connection to the same database, for synchronous callers (CLI,
    /// dedicated writer threads). Never hold it across an `.await`.
    pub fn connect(&self) -> anyhow::Result<Connection> {
        let base = self
            .base
            .lock()
            .map_err(|_| anyhow::anyhow!("database handle poisoned"))?;
        Ok(base.try_clone()?)
    }

    /// Runs `f` on its own connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _guard = span.enter();
            // Bind the clone first so the mutex is released before the query runs.
            let mut conn = db.connect()?;
            f(&mut conn)
        })
        .await
        .context("database task panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first start killed while making the schema leaves only the
    /// `.init` files, which the next start replaces.
    #[test]
    fn a_half_made_schema_of_an_interrupted_first_start_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glassbox.duckdb");
        let init = dir.path().join("glassbox.duckdb.init");
        let init_wal = dir.path().join("glassbox.duckdb.init.wal");
        std::fs::write(&init, b"not a database").unwrap();
        std::fs::write(&init_wal, b"not a log").unwrap();
        let db = Db::open(&path, &DbOptions::default()).unwrap();
        let v: i32 = db
            .connect()
            .unwrap()
            .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, migrate::latest_version());
        assert!(!init.exists() && !init_wal.exists());
    }

    #[test]
    fn cloned_connections_cannot_read_files() {
        let db = Db::open_in_memory().unwrap();
        let conn = db.connect().unwrap();
        let err = conn
            .query_row("SELECT count(*) FROM read_csv('/etc/passwd')", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Permission Error") || err.contains("disabled"),
            "{err}"
        );
        let err = conn
            .execute_batch("SET GLOBAL enable_external_access = true")
            .unwrap_err()
            .to_string();
        assert!(err.to_lowercase().contains("lock"), "{err}");
    }

    #[test]
    fn cloned_connections_report_utc_whatever_the_host_zone() {
        // The suite also runs whole under TZ=America/New_York (see Makefile); this
        // checks the setting directly on a clone.
        let db = Db::open_in_memory().unwrap();
        let conn = db.connect().unwrap();
        let tz: String = conn
            .query_row("SELECT current_setting('TimeZone')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tz, "UTC");
        let same: bool = conn
            .query_row(
                "SELECT strftime(now()::TIMESTAMP, '%H') = strftime(current_timestamp AT TIME ZONE 'UTC', '%H')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(same);
    }

    /// Not a test of its own: the child process of the test below, which
    /// holds the database named by GLASSBOX_TEST_HOLD until its stdin closes.
    #[test]
    #[ignore = "run as a child by a_database_held_by_another_process_is_refused_naming_the_holder"]
    fn hold_a_database_until_stdin_closes() {
        let Some(path) = std::env::var_os("GLASSBOX_TEST_HOLD") else {
            return;
        };
        let _db = Db::open(Path::new(&path), &DbOptions::default()).unwrap();
        println!("holding the database");
        let mut sink = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
    }

    #[test]
    fn a_database_held_by_another_process_is_refused_naming_the_holder() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.duckdb");
        // This very test binary, running only the holder above.
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "db::tests::hold_a_database_until_stdin_closes",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GLASSBOX_TEST_HOLD", &path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Kept open until the child ends, so its last lines have somewhere to go.
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let held = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("holding the database"));
        assert!(held, "the child process took the database");

        for err in [
            Db::open(&path, &DbOptions::default()).unwrap_err(),
            ensure_not_held(&path).unwrap_err(),
        ] {
            let locked = err
                .downcast_ref::<DbLocked>()
                .unwrap_or_else(|| panic!("not a DbLocked: {err:#}"));
            let msg = locked.to_string();
            assert!(
                msg.contains("in use by another glassbox process")
                    && msg.contains(&format!("PID {}", child.id())),
                "{msg}"
            );
        }
        drop(child.stdin.take());
        lines.for_each(drop);
        child.wait().unwrap();
        ensure_not_held(&path).unwrap();
        assert!(Db::open(&path, &DbOptions::default()).is_ok());
    }
}
