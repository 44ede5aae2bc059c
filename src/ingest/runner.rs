//! One run of the session processors over `SESSION_DATA_DIR`.
//!
//! Discovery costs one `stat` per file; only files whose size, mtime or the
//! processor's version changed are read. Those are parsed on worker threads
//! and written by the calling thread as they arrive, in batches of up to
//! `batch_bytes` of input per transaction (each file's rows are replaced
//! whole; a first backfill is one batch), and the last batch's transaction
//! rebuilds the rollups owed before it commits. A crash at any point
//! loses nothing: a file's rows, its state and the rollup work it owes commit
//! together, and the next run finishes what is pending.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Instant, UNIX_EPOCH};

use duckdb::Connection;
use serde::Serialize;

use super::parse::{self, ParsedFile};
use super::pricing::Prices;
use super::profile::{self, Phase};
use crate::repo::usage::{self, FileState, FileWrite, PROC_FAILURE_SCAN, PROC_USAGE};

/// Bump to re-extract every file with the usage processor.
pub const USAGE_VERSION: i32 = 1;
/// Bump to re-scan every file for findings.
pub const FAILURE_SCAN_VERSION: i32 = 1;

/// Which processors a run applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processors {
    pub usage: bool,
    pub failure_scan: bool,
}

impl Processors {
    pub const ALL: Processors = Processors {
        usage: true,
        failure_scan: true,
    };

    pub fn parse(name: &str) -> Option<Processors> {
        match name {
            "usage" => Some(Processors {
                usage: true,
                failure_scan: false,
            }),
            "failure_scan" => Some(Processors {
                usage: false,
                failure_scan: true,
            }),
            "all" => Some(Processors::ALL),
            _ => None,
        }
    }
}

pub struct RunOptions<'a> {
    pub session_dir: &'a Path,
    /// Input per transaction (group commit); a crash redoes at most this much.
    pub batch_bytes: i64,
    /// A first backfill (no processor has seen any file) is one transaction
    /// whatever `batch_bytes` says.
    pub one_batch_backfill: bool,
    pub prices: &'a Prices,
    pub retention_days: u32,
    pub processors: Processors,
    pub threads: usize,
}

/// What a run did, for the audit row, the CLI and the API.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunReport {
    pub files_seen: u64,
    pub files_changed: u64,
    pub files_failed: u64,
    pub bytes: u64,
    pub lines: u64,
    pub malformed_lines: u64,
    pub unknown_type_lines: u64,
    pub events: u64,
    pub responses: u64,
    pub findings: u64,
    pub rebuilt_users: u64,
    pub rebuilt_days: u64,
    pub unknown_models: BTreeSet<String>,
    pub errors: Vec<String>,
    pub seconds: f64,
}

impl RunReport {
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }
}

/// One transcript on disk.
#[derive(Debug, Clone)]
pub struct FoundFile {
    pub dir: String,
    pub name: String,
    pub path: PathBuf,
    pub size: i64,
    pub mtime_ns: i64,
}

impl FoundFile {
    pub fn session_file(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }
}

/// Top-level `*.jsonl` files of each user directory. Nested folders, symlinks
/// and names that are not UTF-8 are ignored (documented in docs/operations.md).
pub fn discover(root: &Path) -> std::io::Result<Vec<FoundFile>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for dir in entries {
        let dir = dir?;
        let Ok(dir_name) = dir.file_name().into_string() else {
            continue;
        };
        if !dir.file_type()?.is_dir() || dir_name.starts_with('.') {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files {
            let Ok(f) = f else { continue };
            let Ok(name) = f.file_name().into_string() else {
                continue;
            };
            if !name.ends_with(".jsonl") || name.starts_with('.') {
                continue;
            }
            // A file removed (or replaced by an upload's rename) between the
            // listing and the stat is simply not there this run.
            let meta = match std::fs::symlink_metadata(f.path()) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if !meta.is_file() {
                continue;
            }
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            out.push(FoundFile {
                dir: dir_name.clone(),
                name,
                path: f.path(),
                size: meta.len() as i64,
                mtime_ns,
            });
        }
    }
    out.sort_by(|a, b| (&a.dir, &a.name).cmp(&(&b.dir, &b.name)));
    Ok(out)
}

/// Maps a user directory to (username, user_id): the user whose id is the
/// directory name, else the newest user whose email local-part it is; an
/// unknown directory keeps its name as the username.
pub struct DirMapper {
    by_id: HashMap<String, String>,
    by_local: HashMap<String, (String, String)>,
}

impl DirMapper {
    pub fn load(conn: &Connection) -> anyhow::Result<DirMapper> {
        let people = crate::repo::users::for_dir_mapping(conn)?;
        let mut by_id = HashMap::new();
        let mut by_local = HashMap::new();
        // Newest first, so the first local-part seen wins.
        for (id, email) in people {
            let local = email.split('@').next().unwrap_or("").to_lowercase();
            by_local
                .entry(local)
                .or_insert_with(|| (id.clone(), email.clone()));
            by_id.insert(id, email);
        }
        Ok(DirMapper { by_id, by_local })
    }

    pub fn map(&self, dir: &str) -> (String, Option<String>) {
        if let Some(email) = self.by_id.get(dir) {
            return (email.clone(), Some(dir.to_string()));
        }
        if let Some((id, email)) = self.by_local.get(&dir.to_lowercase()) {
            return (email.clone(), Some(id.clone()));
        }
        (dir.to_string(), None)
    }
}

fn needs(state: &HashMap<String, FileState>, key: &str, f: &FoundFile, version: i32) -> bool {
    state
        .get(key)
        .is_none_or(|s| s.size != f.size || s.mtime_ns != f.mtime_ns || s.version != version)
}

fn parse_file(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<ParsedFile> {
    parse::parse_chunked(std::fs::File::open(path)?, buf)
}

/// A parsed file and what its rows need that the parser's thread can work
/// out, so the writer (the one thread the run waits on) does less.
struct Parsed {
    file: ParsedFile,
    /// `usage_events.id` of each event, when the usage processor runs.
    event_ids: Option<Vec<String>>,
    /// Its rows were appended and let go (`let_go`): only its counts are left.
    rows_gone: bool,
}

impl Parsed {
    /// Drops the rows once they are in the open transaction: the batch's end
    /// needs only the counts, and a first backfill is one batch, so keeping
    /// the rows would hold every event of the corpus in memory at once.
    fn let_go(&mut self) {
        self.file.events = Vec::new();
        self.file.responses = Vec::new();
        self.file.findings = Vec::new();
        self.event_ids = None;
        self.rows_gone = true;
    }
}

fn prepare(f: &FoundFile, do_usage: bool, buf: &mut Vec<u8>) -> std::io::Result<Parsed> {
    let file = parse_file(&f.path, buf)?;
    let event_ids = do_usage.then(|| {
        let session_id = usage::session_id(&f.session_file(), &file);
        usage::event_ids(&session_id, &file)
    });
    Ok(Parsed {
        file,
        event_ids,
        rows_gone: false,
    })
}

/// Adds the models of `file`'s responses that have no price to `into`.
fn note_unknown_models(file: &ParsedFile, prices: &Prices, into: &mut BTreeSet<String>) {
    for r in &file.responses {
        if prices.price(&r.model).is_none() {
            into.insert(r.model.clone());
        }
    }
}

/// A batch is committed at `RunOptions::batch_bytes` of input (default 256 MB,
/// GLASSBOX_INGEST_BATCH_MB) or this many files, whichever comes first;
/// except a first backfill, which is one batch (see `run`).
const BATCH_FILES: usize = 2000;
/// Parsed files waiting for the writer, at most. The writer is the slower
/// side, so a long queue only holds memory; a short one still lets parsers
/// work on while it commits a batch.
const PARSED_AHEAD: usize = 64;

struct WriteCtx<'a> {
    mapper: &'a DirMapper,
    prices: &'a Prices,
    horizon_ms: Option<i64>,
    usage_state: &'a HashMap<String, FileState>,
    scan_state: &'a HashMap<String, FileState>,
}

/// The key of a file: (session_file, username, user_id).
type Key = (String, String, Option<String>);

fn key_of(f: &FoundFile, ctx: &WriteCtx<'_>) -> Key {
    let (username, user_id) = ctx.mapper.map(&f.dir);
    (f.session_file(), username, user_id)
}

fn keys_of(
    work: &[(FoundFile, bool, bool)],
    files: &[(usize, Parsed)],
    ctx: &WriteCtx<'_>,
) -> Vec<Key> {
    files
        .iter()
        .map(|(i, _)| key_of(&work[*i].0, ctx))
        .collect()
}

fn write_of<'b>(
    (f, do_usage, do_scan): &'b (FoundFile, bool, bool),
    parsed: &'b Parsed,
    (key, username, user_id): &'b Key,
    ctx: &WriteCtx<'b>,
) -> FileWrite<'b> {
    FileWrite {
        session_file: key,
        username,
        user_id: user_id.as_deref(),
        parsed: &parsed.file,
        event_ids: parsed.event_ids.as_deref(),
        prices: ctx.prices,
        size: f.size,
        mtime_ns: f.mtime_ns,
        fallback_ms: f.mtime_ns / 1_000_000,
        horizon_ms: ctx.horizon_ms,
        usage_version: do_usage.then_some(USAGE_VERSION),
        failure_scan_version: do_scan.then_some(FAILURE_SCAN_VERSION),
        replaces_usage: ctx.usage_state.contains_key(key),
        replaces_findings: ctx.scan_state.contains_key(key),
    }
}

fn writes_of<'b>(
    work: &'b [(FoundFile, bool, bool)],
    files: &'b [(usize, Parsed)],
    keys: &'b [Key],
    ctx: &WriteCtx<'b>,
) -> Vec<FileWrite<'b>> {
    files
        .iter()
        .zip(keys)
        .map(|((i, parsed), key)| write_of(&work[*i], parsed, key, ctx))
        .collect()
}

/// Input appended per call inside a batch's transaction: the writer appends
/// as parsed files arrive instead of waiting for a whole batch, so it works
/// while the parsers do.
const APPEND_BYTES: i64 = 32 << 20;

/// A batch being written in one transaction (group commit). Its files' rows
/// are appended as they arrive; at the end come the summaries, processor
/// state and rollup work, and the commit. If anything fails, the transaction
/// is rolled back and the batch written file by file, so one bad file cannot
/// hold back the others.
#[derive(Default)]
struct BatchWriter {
    files: Vec<(usize, Parsed)>,
    bytes: i64,
    /// `files[..appended]` are in the open transaction.
    appended: usize,
    unappended_bytes: i64,
    written: Vec<usage::Written>,
    /// Some while a transaction is open.
    open: Option<usage::Batch>,
    /// An append failed: the batch is redone file by file at its end.
    failed: bool,
    /// Models of the appended responses that have no price.
    unknown_models: BTreeSet<String>,
}

impl BatchWriter {
    fn push(&mut self, size: i64, i: usize, parsed: Parsed) {
        self.bytes += size;
        self.unappended_bytes += size;
        self.files.push((i, parsed));
    }

    fn full(&self, batch_bytes: i64) -> bool {
        self.bytes >= batch_bytes || self.files.len() >= BATCH_FILES
    }

    /// Appends the files not yet in the transaction, opening it if needed.
    fn append(
        &mut self,
        conn: &mut Connection,
        work: &[(FoundFile, bool, bool)],
        ctx: &WriteCtx<'_>,
    ) {
        if self.failed || self.appended == self.files.len() {
            return;
        }
        let result = (|| -> anyhow::Result<()> {
            if self.open.is_none() {
                conn.execute_batch("BEGIN TRANSACTION")?;
                self.open = Some(usage::Batch::new());
            }
            let new = &self.files[self.appended..];
            let keys = keys_of(work, new, ctx);
            let writes = writes_of(work, new, &keys, ctx);
            self.written
                .resize(self.files.len(), usage::Written::default());
            let batch = self.open.as_mut().expect("opened above");
            usage::append_files(conn, &writes, &mut self.written[self.appended..], batch)
        })();
        for (_, parsed) in &mut self.files[self.appended..] {
            note_unknown_models(&parsed.file, ctx.prices, &mut self.unknown_models);
            parsed.let_go();
        }
        self.appended = self.files.len();
        self.unappended_bytes = 0;
        if let Err(e) = result {
            tracing::warn!(error = ?e, files = self.files.len(), "batch append failed; writing file by file");
            self.rollback(conn);
            self.failed = true;
        }
    }

    fn rollback(&mut self, conn: &mut Connection) {
        if self.open.take().is_some() {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = ?e, "rollback failed");
            }
        }
    }

    /// Appends the rest, finishes and commits; or, after a failure, writes
    /// the batch file by file. Counts go to the report once committed.
    /// With `rebuild` (the run's last batch, with the retention horizon),
    /// the rollups are rebuilt in the same transaction, so its rows and the
    /// rollups built from them are written to the database once; what the
    /// rebuild did is returned (None: no rebuild, or not committed).
    fn finish(
        &mut self,
        conn: &mut Connection,
        work: &[(FoundFile, bool, bool)],
        ctx: &WriteCtx<'_>,
        report: &mut RunReport,
        rebuild: Option<Option<chrono::NaiveDateTime>>,
    ) -> Option<usage::Rebuilt> {
        if self.files.is_empty() {
            return None;
        }
        let mut rebuilt = None;
        self.append(conn, work, ctx);
        let keys = keys_of(work, &self.files, ctx);
        let writes = writes_of(work, &self.files, &keys, ctx);
        let record =
            |w: &FileWrite<'_>, n: &usage::Written, f: &FoundFile, report: &mut RunReport| {
                report.events += n.events;
                report.responses += n.responses;
                report.findings += n.findings;
                report.bytes += f.size as u64;
                report.lines += w.parsed.lines;
                report.malformed_lines += w.parsed.malformed_lines;
                report.unknown_type_lines += w.parsed.unknown_type_lines;
            };
        if !self.failed {
            let batch = self.open.take().expect("append opened it");
            let done = usage::finish_files(conn, &writes, &self.written, batch).and_then(|()| {
                if let Some(horizon) = rebuild {
                    let _t = profile::time(Phase::Rebuild);
                    rebuilt = Some(usage::rebuild_in(conn, horizon)?);
                }
                let _t = profile::time(Phase::Commit);
                Ok(conn.execute_batch("COMMIT")?)
            });
            match done {
                Ok(()) => {
                    for ((w, n), (i, _)) in writes.iter().zip(&self.written).zip(&self.files) {
                        record(w, n, &work[*i].0, report);
                    }
                    report.unknown_models.append(&mut self.unknown_models);
                }
                Err(e) => {
                    tracing::warn!(error = ?e, files = writes.len(), "batch write failed; writing file by file");
                    // A failed COMMIT leaves no transaction; a failed statement does.
                    let _ = conn.execute_batch("ROLLBACK");
                    self.failed = true;
                    rebuilt = None;
                }
            }
        }
        drop(writes);
        if self.failed {
            // Files whose rows were let go are read again.
            let mut buf = Vec::new();
            for (i, parsed) in &mut self.files {
                let (f, do_usage, _) = &work[*i];
                if parsed.rows_gone {
                    match prepare(f, *do_usage, &mut buf) {
                        Ok(p) => *parsed = p,
                        Err(e) => {
                            report.files_failed += 1;
                            report.errors.push(format!("{}: {e}", f.session_file()));
                            continue;
                        }
                    }
                }
                let key = key_of(f, ctx);
                let w = write_of(&work[*i], parsed, &key, ctx);
                match usage::write_files(conn, std::slice::from_ref(&w)) {
                    Ok(counts) => {
                        record(&w, &counts[0], f, report);
                        note_unknown_models(&parsed.file, ctx.prices, &mut report.unknown_models);
                    }
                    Err(e) => {
                        report.files_failed += 1;
                        report.errors.push(format!("{}: {e:#}", w.session_file));
                    }
                }
            }
        }
        *self = BatchWriter::default();
        rebuilt
    }
}

/// Runs the chosen processors once. `conn` is the writer's connection.
pub fn run(conn: &mut Connection, opts: &RunOptions<'_>) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let mut report = RunReport::default();
    let t_discover = profile::time(Phase::Discover);
    let files = discover(opts.session_dir)?;
    report.files_seen = files.len() as u64;
    let usage_state = usage::processor_state(conn, PROC_USAGE)?;
    let scan_state = usage::processor_state(conn, PROC_FAILURE_SCAN)?;
    // (file, run usage?, run failure scan?)
    let work: Vec<(FoundFile, bool, bool)> = files
        .into_iter()
        .filter_map(|f| {
            let key = f.session_file();
            let u = opts.processors.usage && needs(&usage_state, &key, &f, USAGE_VERSION);
            let s =
                opts.processors.failure_scan && needs(&scan_state, &key, &f, FAILURE_SCAN_VERSION);
            (u || s).then_some((f, u, s))
        })
        .collect();
    report.files_changed = work.len() as u64;
    let mapper = DirMapper::load(conn)?;
    drop(t_discover);
    let horizon = (opts.retention_days > 0)
        .then(|| chrono::Utc::now() - chrono::Duration::days(opts.retention_days as i64));
    let horizon_ms = horizon.map(|h| h.timestamp_millis());

    let ctx = WriteCtx {
        mapper: &mapper,
        prices: opts.prices,
        horizon_ms,
        usage_state: &usage_state,
        scan_state: &scan_state,
    };
    // A first backfill (no processor has seen a file yet) is one
    // transaction: a crash loses only this run's own work, which the next
    // run redoes, and the rows reach the database file once, at its commit,
    // instead of through the WAL and a checkpoint (docs/performance.md).
    let one_batch = opts.one_batch_backfill && usage_state.is_empty() && scan_state.is_empty();
    let horizon_naive = horizon.map(|h| h.naive_utc());
    // Rollups rebuilt inside the last batch's transaction.
    let mut rebuilt_early = None;
    if !work.is_empty() {
        let next = AtomicUsize::new(0);
        // Parsed files hold figures, not text (a few KB per MB of transcript),
        // so parsers may run well ahead of the writer: they keep the cores busy
        // while it commits a batch.
        let (tx, rx) = mpsc::sync_channel::<(usize, std::io::Result<Parsed>)>(PARSED_AHEAD);
        let threads = opts.threads.clamp(1, 16).min(work.len());
        std::thread::scope(|scope| -> anyhow::Result<()> {
            for _ in 0..threads {
                let tx = tx.clone();
                let (work, next) = (&work, &next);
                scope.spawn(move || {
                    // One read buffer per parser, reused from file to file.
                    let mut buf = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((f, do_usage, _)) = work.get(i) else {
                            break;
                        };
                        let parsed = {
                            let _t = profile::time(Phase::Parse);
                            prepare(f, *do_usage, &mut buf)
                        };
                        if tx.send((i, parsed)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Group commit: many files per transaction, bounded by size so a
            // crash redoes little and memory stays flat.
            let mut batch = BatchWriter::default();
            let mut rx = rx.into_iter();
            loop {
                let next = {
                    let _t = profile::time(Phase::WaitParsed);
                    rx.next()
                };
                let Some((i, parsed)) = next else { break };
                match parsed {
                    Ok(p) => batch.push(work[i].0.size, i, p),
                    Err(e) => {
                        // Unreadable now (deleted, permissions): retried next run.
                        report.files_failed += 1;
                        report
                            .errors
                            .push(format!("{}: {e}", work[i].0.session_file()));
                    }
                }
                if !one_batch && batch.full(opts.batch_bytes) {
                    batch.finish(conn, &work, &ctx, &mut report, None);
                } else if batch.unappended_bytes >= APPEND_BYTES.min(opts.batch_bytes) {
                    batch.append(conn, &work, &ctx);
                }
            }
            // The last batch rebuilds the rollups in its own transaction.
            rebuilt_early = batch.finish(conn, &work, &ctx, &mut report, Some(horizon_naive));
            Ok(())
        })?;
    }
    // Whatever is still pending: no file changed, the last batch was
    // written file by file, or an earlier run crashed before its rebuild.
    let late = {
        let _t = profile::time(Phase::Rebuild);
        usage::rebuild(conn, horizon_naive)?
    };
    let rebuilt = match rebuilt_early {
        Some(e) => usage::Rebuilt {
            users: e.users + late.users,
            days: e.days + late.days,
        },
        None => late,
    };
    report.rebuilt_users = rebuilt.users;
    report.rebuilt_days = rebuilt.days;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
