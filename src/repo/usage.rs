//! Session ingestion's tables: usage_events, usage_responses, session_findings,
//! usage_session_summary, the rollups, processor state and uploads.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime};
use duckdb::types::{TimeUnit, ToSql, ToSqlOutput, ValueRef};
use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{params, Connection};
use sha2::{Digest, Sha256};

use crate::ingest::profile::{self, Phase};
use crate::model::pricing::Prices;
use crate::model::transcript::{ParsedFile, ToolEvent};
use crate::repo::telemetry::rollup::{recount, Days};

pub const PROC_USAGE: &str = "usage";
pub const PROC_FAILURE_SCAN: &str = "failure_scan";

/// What the state table remembers of a file per processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    pub size: i64,
    pub mtime_ns: i64,
    pub version: i32,
}

pub fn processor_state(
    conn: &Connection,
    processor: &str,
) -> anyhow::Result<HashMap<String, FileState>> {
    let mut stmt = conn.prepare(
        "SELECT session_file, coalesce(file_size, -1), coalesce(file_mtime_ns, -1), coalesce(processor_version, -1)
         FROM session_processor_state WHERE processor_name = ?",
    )?;
    let rows = stmt.query_map(params![processor], |r| {
        Ok((
            r.get::<_, String>(0)?,
            FileState {
                size: r.get(1)?,
                mtime_ns: r.get(2)?,
                version: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Everything needed to write one parsed file.
pub struct FileWrite<'a> {
    pub session_file: &'a str,
    pub username: &'a str,
    pub user_id: Option<&'a str>,
    pub parsed: &'a ParsedFile,
    /// `event_ids(session_id, parsed)`, when the caller worked them out
    /// already (ingest does it on its parser threads); else computed here.
    pub event_ids: Option<&'a [String]>,
    pub prices: &'a Prices,
    pub size: i64,
    pub mtime_ns: i64,
    /// Used for times when the file has no timestamp at all (never "now").
    pub fallback_ms: i64,
    /// Rows older than this (retention) are not written again.
    pub horizon_ms: Option<i64>,
    pub usage_version: Option<i32>,
    pub failure_scan_version: Option<i32>,
    /// The file was processed before (the processor has a state row for
    /// it), so its old rows must go first and its state is updated.
    pub replaces_usage: bool,
    pub replaces_findings: bool,
}

/// Counts written for one file.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub events: u64,
    pub responses: u64,
    pub findings: u64,
}

/// A TIMESTAMP bound as its microseconds: the appender's NaiveDateTime goes
/// through text that DuckDB parses back (a third of an event row's cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Micros(i64);

impl ToSql for Micros {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Timestamp(
            TimeUnit::Microsecond,
            self.0,
        )))
    }
}

/// A time in milliseconds as stored: out of chrono's range reads as the epoch.
fn ts(ms: i64) -> Micros {
    Micros(
        DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .timestamp_micros(),
    )
}

fn now_micros() -> Micros {
    Micros(chrono::Utc::now().timestamp_micros())
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `YYYY-MM-DD` of a day number since the epoch.
fn day_key(day: i64) -> String {
    DateTime::from_timestamp(day * 86_400, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Agnes's event id: stable across re-extraction of the same line.
fn event_id(session_id: &str, e: &ToolEvent) -> String {
    let key = format!(
        "{session_id}|{}|{}|{}|{}|{}|{}",
        e.event_uuid.as_deref().unwrap_or(""),
        e.tool_use_id.as_deref().unwrap_or(""),
        e.event_type.as_str(),
        e.tool_name.as_deref().unwrap_or(""),
        e.command_name.as_deref().unwrap_or(""),
        e.line_index,
    );
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

/// The file's session id, else its name without `.jsonl`.
pub fn session_id(session_file: &str, parsed: &ParsedFile) -> String {
    parsed.session_id.clone().unwrap_or_else(|| {
        let name = session_file.rsplit('/').next().unwrap_or(session_file);
        name.trim_end_matches(".jsonl").to_string()
    })
}

/// `usage_events.id` of each of the file's events, in order.
pub fn event_ids(session_id: &str, parsed: &ParsedFile) -> Vec<String> {
    parsed
        .events
        .iter()
        .map(|e| event_id(session_id, e))
        .collect()
}

fn session_id_of(w: &FileWrite<'_>) -> String {
    session_id(w.session_file, w.parsed)
}

/// Replaces the rows of a batch of files in one transaction (group commit:
/// one WAL flush for many files), recording the rollup work they owe in
/// `ingest_pending` in that same transaction. Files seen for the first time
/// have nothing to delete.
pub fn write_files(conn: &mut Connection, files: &[FileWrite<'_>]) -> anyhow::Result<Vec<Written>> {
    let mut written = vec![Written::default(); files.len()];
    let mut batch = Batch::new();
    let tx = conn.transaction()?;
    append_files(&tx, files, &mut written, &mut batch)?;
    finish_files(&tx, files, &written, batch)?;
    let _t = profile::time(Phase::Commit);
    tx.commit()?;
    Ok(written)
}

/// What a batch written in several `append_files` calls owes its end.
pub struct Batch {
    /// `extracted_at` (events, summaries) and `detected_at` of the whole batch.
    now: Micros,
    /// Days the replaced rows covered.
    days: BTreeSet<String>,
    /// Days of the events written, as day numbers (formatted once each at the end).
    event_days: HashSet<i64>,
}

impl Batch {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Batch {
        Batch {
            now: now_micros(),
            days: BTreeSet::new(),
            event_days: HashSet::new(),
        }
    }
}

/// `usage_events`' columns as appended (table order, without
/// `friction_tags`, which new rows leave NULL).
const EVENT_COLUMNS: [&str; 20] = [
    "id",
    "session_id",
    "session_file",
    "username",
    "event_uuid",
    "parent_uuid",
    "event_type",
    "tool_name",
    "skill_name",
    "subagent_type",
    "command_name",
    "is_error",
    "source",
    "ref_id",
    "model",
    "cwd",
    "occurred_at",
    "processor_version",
    "extracted_at",
    "user_id",
];

/// `usage_events` rows being gathered column by column, in `EVENT_COLUMNS` order.
struct EventColumns {
    id: StringBuilder,
    session_id: StringBuilder,
    session_file: StringBuilder,
    username: StringBuilder,
    event_uuid: StringBuilder,
    parent_uuid: StringBuilder,
    event_type: StringBuilder,
    tool_name: StringBuilder,
    skill_name: StringBuilder,
    subagent_type: StringBuilder,
    command_name: StringBuilder,
    is_error: BooleanBuilder,
    source: StringBuilder,
    ref_id: StringBuilder,
    model: StringBuilder,
    cwd: StringBuilder,
    occurred_at: TimestampMicrosecondBuilder,
    processor_version: Int32Builder,
    extracted_at: TimestampMicrosecondBuilder,
    user_id: StringBuilder,
}

/// A string column of `rows` values of about `bytes` bytes each.
fn strings(rows: usize, bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * bytes)
}

impl EventColumns {
    fn with_capacity(rows: usize) -> EventColumns {
        EventColumns {
            id: strings(rows, 32),
            session_id: strings(rows, 36),
            session_file: strings(rows, 64),
            username: strings(rows, 24),
            event_uuid: strings(rows, 36),
            parent_uuid: strings(rows, 36),
            event_type: strings(rows, 8),
            tool_name: strings(rows, 8),
            skill_name: strings(rows, 0),
            subagent_type: strings(rows, 0),
            command_name: strings(rows, 0),
            is_error: BooleanBuilder::with_capacity(rows),
            source: strings(rows, 8),
            ref_id: strings(rows, 0),
            model: strings(rows, 24),
            cwd: strings(rows, 32),
            occurred_at: TimestampMicrosecondBuilder::with_capacity(rows),
            processor_version: Int32Builder::with_capacity(rows),
            extracted_at: TimestampMicrosecondBuilder::with_capacity(rows),
            user_id: strings(rows, 0),
        }
    }

    fn finish(mut self) -> anyhow::Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.session_file.finish()),
            Arc::new(self.username.finish()),
            Arc::new(self.event_uuid.finish()),
            Arc::new(self.parent_uuid.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.tool_name.finish()),
            Arc::new(self.skill_name.finish()),
            Arc::new(self.subagent_type.finish()),
            Arc::new(self.command_name.finish()),
            Arc::new(self.is_error.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.ref_id.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.cwd.finish()),
            Arc::new(self.occurred_at.finish()),
            Arc::new(self.processor_version.finish()),
            Arc::new(self.extracted_at.finish()),
            Arc::new(self.user_id.finish()),
        ];
        Ok(RecordBatch::try_from_iter(
            EVENT_COLUMNS.into_iter().zip(columns),
        )?)
    }
}

/// `usage_responses` rows being gathered column by column, in table order.
struct ResponseColumns {
    username: StringBuilder,
    user_id: StringBuilder,
    session_file: StringBuilder,
    message_id: StringBuilder,
    request_id: StringBuilder,
    first_ts: TimestampMicrosecondBuilder,
    model: StringBuilder,
    input: Int64Builder,
    output: Int64Builder,
    cache_creation: Int64Builder,
    cache_read: Int64Builder,
    cache_5m: Int64Builder,
    cache_1h: Int64Builder,
    cost: Float64Builder,
    is_sidechain: BooleanBuilder,
    counted: BooleanBuilder,
}

impl ResponseColumns {
    fn with_capacity(rows: usize) -> ResponseColumns {
        ResponseColumns {
            username: strings(rows, 24),
            user_id: strings(rows, 0),
            session_file: strings(rows, 64),
            message_id: strings(rows, 32),
            request_id: strings(rows, 32),
            first_ts: TimestampMicrosecondBuilder::with_capacity(rows),
            model: strings(rows, 24),
            input: Int64Builder::with_capacity(rows),
            output: Int64Builder::with_capacity(rows),
            cache_creation: Int64Builder::with_capacity(rows),
            cache_read: Int64Builder::with_capacity(rows),
            cache_5m: Int64Builder::with_capacity(rows),
            cache_1h: Int64Builder::with_capacity(rows),
            cost: Float64Builder::with_capacity(rows),
            is_sidechain: BooleanBuilder::with_capacity(rows),
            counted: BooleanBuilder::with_capacity(rows),
        }
    }

    fn finish(mut self) -> anyhow::Result<RecordBatch> {
        let columns: [(&str, ArrayRef); 16] = [
            ("username", Arc::new(self.username.finish())),
            ("user_id", Arc::new(self.user_id.finish())),
            ("session_file", Arc::new(self.session_file.finish())),
            ("message_id", Arc::new(self.message_id.finish())),
            ("request_id", Arc::new(self.request_id.finish())),
            ("first_ts", Arc::new(self.first_ts.finish())),
            ("model", Arc::new(self.model.finish())),
            ("input_tokens", Arc::new(self.input.finish())),
            ("output_tokens", Arc::new(self.output.finish())),
            (
                "cache_creation_tokens",
                Arc::new(self.cache_creation.finish()),
            ),
            ("cache_read_tokens", Arc::new(self.cache_read.finish())),
            ("cache_creation_5m_tokens", Arc::new(self.cache_5m.finish())),
            ("cache_creation_1h_tokens", Arc::new(self.cache_1h.finish())),
            ("cost_usd", Arc::new(self.cost.finish())),
            ("is_sidechain", Arc::new(self.is_sidechain.finish())),
            ("counted", Arc::new(self.counted.finish())),
        ];
        Ok(RecordBatch::try_from_iter(columns)?)
    }
}

/// Inside the caller's open transaction: deletes the old rows of `files`
/// (files seen before) and appends their events, responses and findings;
/// `written[i]` gets file i's counts. Ingest calls it as parsed files arrive,
/// so the writer appends while the parsers work, then ends the batch with
/// `finish_files` and a commit.
pub fn append_files(
    tx: &Connection,
    files: &[FileWrite<'_>],
    written: &mut [Written],
    batch: &mut Batch,
) -> anyhow::Result<()> {
    let now = batch.now;
    let days = &mut batch.days;
    let event_days = &mut batch.event_days;
    let t = profile::time(Phase::Delete);
    {
        let mut old_days = tx.prepare(
            "SELECT DISTINCT strftime(CAST(occurred_at AS DATE), '%Y-%m-%d') FROM usage_events WHERE session_file = ?",
        )?;
        let mut del_events = tx.prepare("DELETE FROM usage_events WHERE session_file = ?")?;
        let mut del_responses = tx.prepare("DELETE FROM usage_responses WHERE session_file = ?")?;
        let mut del_findings = tx.prepare("DELETE FROM session_findings WHERE session_file = ?")?;
        for w in files {
            if w.usage_version.is_some() && w.replaces_usage {
                // Days the old rows covered need their rollups rebuilt too.
                for d in old_days.query_map(params![w.session_file], |r| r.get::<_, String>(0))? {
                    days.insert(d?);
                }
                del_events.execute(params![w.session_file])?;
                del_responses.execute(params![w.session_file])?;
            }
            if w.failure_scan_version.is_some() && w.replaces_findings {
                del_findings.execute(params![w.session_file])?;
            }
        }
    }
    drop(t);
    let t = profile::time(Phase::AppendEvents);
    {
        // Whole columns (Arrow arrays, appended a DuckDB vector at a time):
        // no per-value binding and validation as with `append_row`.
        let rows: usize = files
            .iter()
            .filter(|w| w.usage_version.is_some())
            .map(|w| w.parsed.events.len())
            .sum();
        let mut c = EventColumns::with_capacity(rows);
        for (w, n) in files.iter().zip(written.iter_mut()) {
            let Some(version) = w.usage_version else {
                continue;
            };
            let session_id = session_id_of(w);
            let computed;
            let ids = match w.event_ids {
                Some(ids) if ids.len() == w.parsed.events.len() => ids,
                _ => {
                    computed = event_ids(&session_id, w.parsed);
                    &computed
                }
            };
            for (e, id) in w.parsed.events.iter().zip(ids) {
                let at = e.occurred_at_ms.unwrap_or(w.fallback_ms);
                if w.horizon_ms.is_some_and(|h| at < h) {
                    continue;
                }
                let t = ts(at);
                event_days.insert(t.0.div_euclid(MICROS_PER_DAY));
                c.id.append_value(id);
                c.session_id.append_value(&session_id);
                c.session_file.append_value(w.session_file);
                c.username.append_value(w.username);
                c.event_uuid.append_option(e.event_uuid.as_deref());
                c.parent_uuid.append_option(e.parent_uuid.as_deref());
                c.event_type.append_value(e.event_type.as_str());
                c.tool_name.append_option(e.tool_name.as_deref());
                c.skill_name.append_option(e.skill_name.as_deref());
                c.subagent_type.append_option(e.subagent_type.as_deref());
                c.command_name.append_option(e.command_name.as_deref());
                c.is_error.append_value(e.is_error);
                c.source.append_value(e.source.as_str());
                c.ref_id.append_option(e.ref_id.as_deref());
                c.model.append_option(e.model.as_deref());
                c.cwd.append_option(e.cwd.as_deref());
                c.occurred_at.append_value(t.0);
                c.processor_version.append_value(version);
                c.extracted_at.append_value(now.0);
                c.user_id.append_option(w.user_id);
                n.events += 1;
            }
        }
        if rows > 0 {
            let mut app = tx.appender("usage_events")?;
            // Every column but `friction_tags` (NULL: no default).
            for col in EVENT_COLUMNS {
                app.add_column(col)?;
            }
            app.append_record_batch(c.finish()?)?;
            app.flush()?;
        }
    }
    drop(t);
    let t = profile::time(Phase::AppendResponses);
    {
        let rows: usize = files
            .iter()
            .filter(|w| w.usage_version.is_some())
            .map(|w| w.parsed.responses.len())
            .sum();
        let mut c = ResponseColumns::with_capacity(rows);
        for (w, n) in files.iter().zip(written.iter_mut()) {
            if w.usage_version.is_none() {
                continue;
            }
            for r in &w.parsed.responses {
                let at = r.first_ts_ms.unwrap_or(w.fallback_ms);
                if w.horizon_ms.is_some_and(|h| at < h) {
                    continue;
                }
                c.username.append_value(w.username);
                c.user_id.append_option(w.user_id);
                c.session_file.append_value(w.session_file);
                c.message_id.append_value(&r.message_id);
                c.request_id.append_value(&r.request_id);
                c.first_ts.append_value(ts(at).0);
                c.model.append_value(&r.model);
                c.input.append_value(r.input as i64);
                c.output.append_value(r.output as i64);
                c.cache_creation.append_value(r.cache_creation as i64);
                c.cache_read.append_value(r.cache_read as i64);
                c.cache_5m.append_value(r.cache_5m as i64);
                c.cache_1h.append_value(r.cache_1h as i64);
                c.cost.append_value(w.prices.cost(r).unwrap_or(0.0));
                c.is_sidechain.append_value(r.is_sidechain);
                c.counted.append_value(true);
                n.responses += 1;
            }
        }
        if rows > 0 {
            let mut app = tx.appender("usage_responses")?;
            app.append_record_batch(c.finish()?)?;
            app.flush()?;
        }
    }
    drop(t);
    let t = profile::time(Phase::AppendFindings);
    {
        let mut app = tx.appender("session_findings")?;
        for (w, n) in files.iter().zip(written.iter_mut()) {
            if w.failure_scan_version.is_none() {
                continue;
            }
            for f in &w.parsed.findings {
                app.append_row(params![
                    uuid::Uuid::new_v4().to_string(),
                    w.session_file,
                    w.username,
                    f.finding_type.as_str(),
                    f.turn_index as i64,
                    f.severity.as_str(),
                    f.excerpt,
                    now,
                ])?;
                n.findings += 1;
            }
        }
        app.flush()?;
    }
    drop(t);
    let _t = profile::time(Phase::Summaries);
    let summaries: Vec<_> = files
        .iter()
        .filter_map(|w| w.usage_version.map(|v| (w, v)))
        .collect();
    stage_summaries(tx, &summaries, now)
}

/// Inside the same transaction, after every `append_files` call of the
/// batch: upserts the summaries staged by those calls and the processor
/// state of all its `files` (with their counts), and records the rollup
/// work they owe. Needs no more of the parsed files than their counts, so a
/// caller may let go of their rows once appended.
pub fn finish_files(
    tx: &Connection,
    files: &[FileWrite<'_>],
    written: &[Written],
    batch: Batch,
) -> anyhow::Result<()> {
    let mut days = batch.days;
    days.extend(batch.event_days.into_iter().map(day_key));
    let mut users: BTreeSet<&str> = BTreeSet::new();
    let (mut usage_marks, mut scan_marks) = (Vec::new(), Vec::new());
    for (w, n) in files.iter().zip(written) {
        if let Some(version) = w.usage_version {
            usage_marks.push((w, version, n.events, w.replaces_usage));
            users.insert(w.username);
        }
        if let Some(version) = w.failure_scan_version {
            scan_marks.push((w, version, n.findings, w.replaces_findings));
        }
    }
    {
        let _t = profile::time(Phase::Summaries);
        if !usage_marks.is_empty() {
            upsert_summaries(tx)?;
        }
    }
    {
        let _t = profile::time(Phase::State);
        mark_many(tx, PROC_USAGE, &usage_marks)?;
        mark_many(tx, PROC_FAILURE_SCAN, &scan_marks)?;
    }
    let t = profile::time(Phase::Pending);
    {
        let mut pend = tx.prepare("INSERT INTO ingest_pending VALUES (?, ?)")?;
        for u in users {
            pend.execute(params!["user", u])?;
        }
        for d in &days {
            pend.execute(params!["day", d])?;
        }
    }
    drop(t);
    Ok(())
}

/// Processor state of `rows` (file, version, items, state row exists).
/// Files the processor never saw (every file of a first backfill) are
/// appended straight to the table; the others are upserted through the
/// staging table.
fn mark_many(
    tx: &Connection,
    processor: &str,
    rows: &[(&FileWrite<'_>, i32, u64, bool)],
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = now_micros();
    let mut staged = false;
    for (table, seen) in [
        ("session_processor_state", false),
        ("ingest_stage_state", true),
    ] {
        if !rows.iter().any(|r| r.3 == seen) {
            continue;
        }
        let mut app = tx.appender(table)?;
        for (w, version, items, _) in rows.iter().filter(|r| r.3 == seen) {
            app.append_row(params![
                processor,
                w.session_file,
                w.username,
                now,
                *items as i64,
                None::<String>,
                w.size,
                w.mtime_ns,
                version
            ])?;
        }
        app.flush()?;
        staged |= seen;
    }
    if staged {
        tx.execute_batch(
            "INSERT INTO session_processor_state SELECT * FROM ingest_stage_state
             ON CONFLICT (processor_name, session_file) DO UPDATE SET
               username = excluded.username, processed_at = excluded.processed_at,
               items_extracted = excluded.items_extracted, file_size = excluded.file_size,
               file_mtime_ns = excluded.file_mtime_ns, processor_version = excluded.processor_version;
             DELETE FROM ingest_stage_state;",
        )?;
    }
    Ok(())
}

/// Appends the summaries of `rows` (file, usage processor version) to the
/// staging table `upsert_summaries` empties.
fn stage_summaries(
    tx: &Connection,
    rows: &[(&FileWrite<'_>, i32)],
    now: Micros,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    {
        // Columns in table order (see migrations/0002_telemetry.sql).
        let mut app = tx.appender("ingest_stage_summary")?;
        for (w, version) in rows {
            let p = w.parsed;
            let s = p.summary();
            // Token and cost figures are provisional here: the rebuild sets them
            // from the copies that win the per-user de-duplication, for sessions
            // inside the retention horizon. One that started before it keeps
            // these (the whole file's own figures), as its pruned responses
            // could not say more.
            let own = crate::model::transcript::Tokens::sum(&p.responses);
            let own_cost: f64 = p
                .responses
                .iter()
                .map(|r| w.prices.cost(r).unwrap_or(0.0))
                .sum();
            app.append_row(params![
                w.session_file,
                session_id_of(w),
                w.username,
                p.started_at_ms.map(ts),
                p.ended_at_ms.map(ts),
                p.active_seconds,
                p.wall_seconds,
                p.user_prompts as i64,
                p.assistant_messages as i64,
                s.tool_calls as i64,
                s.tool_errors as i64,
                s.skill_invocations as i64,
                s.subagent_dispatches as i64,
                s.mcp_calls as i64,
                s.slash_commands as i64,
                s.distinct_tools as i64,
                s.distinct_skills as i64,
                p.primary_model,
                version,
                now,
                None::<NaiveDateTime>,
                own.input as i64,
                own.output as i64,
                own.cache_read as i64,
                own.cache_creation as i64,
                w.user_id,
                own_cost,
                p.malformed_lines as i64,
                p.lines as i64,
                w.size,
            ])?;
        }
        app.flush()?;
    }
    Ok(())
}

/// Moves the staged summaries into `usage_session_summary`.
fn upsert_summaries(tx: &Connection) -> anyhow::Result<()> {
    tx.execute_batch(
        "INSERT INTO usage_session_summary
         SELECT s.* REPLACE (u.first_uploaded_at AS uploaded_at)
         FROM ingest_stage_summary s LEFT JOIN session_uploads u USING (session_file)
         ON CONFLICT (session_file) DO UPDATE SET
            session_id = excluded.session_id, username = excluded.username, started_at = excluded.started_at,
            ended_at = excluded.ended_at, active_seconds = excluded.active_seconds, wall_seconds = excluded.wall_seconds,
            user_messages = excluded.user_messages, assistant_messages = excluded.assistant_messages,
            tool_calls = excluded.tool_calls, tool_errors = excluded.tool_errors,
            skill_invocations = excluded.skill_invocations, subagent_dispatches = excluded.subagent_dispatches,
            mcp_calls = excluded.mcp_calls, slash_commands = excluded.slash_commands,
            distinct_tools = excluded.distinct_tools, distinct_skills = excluded.distinct_skills,
            primary_model = excluded.primary_model, processor_version = excluded.processor_version,
            extracted_at = excluded.extracted_at,
            uploaded_at = coalesce(usage_session_summary.uploaded_at, excluded.uploaded_at),
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
            cache_read_tokens = excluded.cache_read_tokens, cache_creation_tokens = excluded.cache_creation_tokens,
            user_id = excluded.user_id, cost_usd = excluded.cost_usd,
            malformed_lines = excluded.malformed_lines, lines = excluded.lines,
            bytes = excluded.bytes;
         DELETE FROM ingest_stage_summary;",
    )?;
    Ok(())
}

/// What a rebuild touched.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rebuilt {
    pub users: u64,
    pub days: u64,
}

/// Consumes `ingest_pending`: per touched user, marks which copy of each
/// response counts (largest token total, then earliest, then smallest file),
/// sets session token figures and cost from the counted copies, and rebuilds
/// `usage_tokens_daily` for the user and `usage_tool_daily` for touched days.
/// Days before the retention horizon are never rebuilt (their rollups are all
/// that is left of them), nor are the figures of sessions that started before
/// it: their responses may be pruned, and summing the survivors would wear
/// the kept summary down towards 0 (SPEC §3).
pub fn rebuild(conn: &mut Connection, horizon: Option<NaiveDateTime>) -> anyhow::Result<Rebuilt> {
    let tx = conn.transaction()?;
    let rebuilt = rebuild_in(&tx, horizon)?;
    tx.commit()?;
    Ok(rebuilt)
}

/// `rebuild` inside the caller's open transaction (ingest's last batch, so
/// its rows and the rollups built from them commit, and reach the file, once).
pub fn rebuild_in(tx: &Connection, horizon: Option<NaiveDateTime>) -> anyhow::Result<Rebuilt> {
    let users: i64 = tx.query_row(
        "SELECT count(DISTINCT key) FROM ingest_pending WHERE kind = 'user'",
        [],
        |r| r.get(0),
    )?;
    let days: i64 = tx.query_row(
        "SELECT count(DISTINCT key) FROM ingest_pending WHERE kind = 'day'",
        [],
        |r| r.get(0),
    )?;
    if users == 0 && days == 0 {
        return Ok(Rebuilt::default());
    }
    let horizon_day = horizon.map(|h| h.date()).unwrap_or(chrono::NaiveDate::MIN);
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pending_users (username VARCHAR);
         CREATE TEMP TABLE IF NOT EXISTS pending_days (day DATE);
         DELETE FROM pending_users; DELETE FROM pending_days;
         INSERT INTO pending_users SELECT DISTINCT key FROM ingest_pending WHERE kind = 'user';
         INSERT INTO pending_days SELECT DISTINCT CAST(key AS DATE) FROM ingest_pending WHERE kind = 'day';
         UPDATE usage_responses AS r SET counted = (w.rn = 1)
         FROM (SELECT rowid AS rid, row_number() OVER (
                 PARTITION BY username, message_id, request_id
                 ORDER BY input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens DESC,
                          first_ts ASC, session_file ASC) AS rn
               FROM usage_responses WHERE username IN (SELECT username FROM pending_users)) AS w
         WHERE r.rowid = w.rid AND r.counted <> (w.rn = 1);",
    )?;
    // `started_at` below is the summary's: responses have none.
    tx.execute(
        &format!("UPDATE usage_session_summary AS s SET
            input_tokens = coalesce(t.i, 0), output_tokens = coalesce(t.o, 0),
            cache_creation_tokens = coalesce(t.cc, 0), cache_read_tokens = coalesce(t.cr, 0),
            cost_usd = coalesce(t.cost, 0)
         FROM (SELECT s2.session_file, sum(r.input_tokens) AS i, sum(r.output_tokens) AS o,
                      sum(r.cache_creation_tokens) AS cc, sum(r.cache_read_tokens) AS cr, sum(r.cost_usd) AS cost
               FROM usage_session_summary s2
               LEFT JOIN usage_responses r ON r.session_file = s2.session_file AND r.counted
               WHERE s2.username IN (SELECT username FROM pending_users)
                 AND {INSIDE_HORIZON}
               GROUP BY s2.session_file) AS t
         WHERE s.session_file = t.session_file"),
        params![horizon, horizon],
    )?;
    tx.execute(
        "DELETE FROM usage_tokens_daily WHERE username IN (SELECT username FROM pending_users) AND day >= ?",
        params![horizon_day],
    )?;
    tx.execute(
        "INSERT INTO usage_tokens_daily
         SELECT CAST(first_ts AS DATE), username, model, sum(input_tokens), sum(output_tokens),
                sum(cache_creation_tokens), sum(cache_read_tokens), sum(cost_usd)
         FROM usage_responses
         WHERE counted AND username IN (SELECT username FROM pending_users) AND CAST(first_ts AS DATE) >= ?
         GROUP BY ALL",
        params![horizon_day],
    )?;
    tx.execute(
        "DELETE FROM usage_tool_daily WHERE day IN (SELECT day FROM pending_days) AND day >= ?",
        params![horizon_day],
    )?;
    tx.execute(
        "INSERT INTO usage_tool_daily
         SELECT CAST(occurred_at AS DATE) AS day, tool_name, source, count(*), count(*) FILTER (WHERE is_error),
                count(DISTINCT username), count(DISTINCT session_id)
         FROM usage_events
         WHERE tool_name IS NOT NULL AND CAST(occurred_at AS DATE) IN (SELECT day FROM pending_days)
           AND CAST(occurred_at AS DATE) >= ?
         GROUP BY ALL",
        params![horizon_day],
    )?;
    // The Telemetry page's rollups mirror every day's events, the days
    // before the horizon included (their events are still there).
    recount(tx, Days::Pending)?;
    tx.execute_batch(
        "DELETE FROM ingest_pending; DELETE FROM pending_users; DELETE FROM pending_days;",
    )?;
    Ok(Rebuilt {
        users: users as u64,
        days: days as u64,
    })
}

/// Records an upload: first time kept, last time and size updated.
pub fn record_upload(
    conn: &Connection,
    session_file: &str,
    user_id: &str,
    bytes: i64,
) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO session_uploads VALUES (?, ?, now(), now(), ?)
         ON CONFLICT (session_file) DO UPDATE SET last_uploaded_at = excluded.last_uploaded_at, bytes = excluded.bytes",
        params![session_file, user_id, bytes],
    )?;
    // A summary already written keeps its first upload time.
    conn.execute(
        "UPDATE usage_session_summary SET uploaded_at = coalesce(uploaded_at, now()) WHERE session_file = ?",
        params![session_file],
    )?;
    Ok(())
}

/// Summaries whose figures the rows on hand can rebuild: no horizon, no start
/// time, or started at or after the horizon (bound twice).
const INSIDE_HORIZON: &str =
    "(started_at IS NULL OR CAST(? AS TIMESTAMP) IS NULL OR started_at >= ?)";

/// Rows a reprocess deletes (or would, on a dry run), in Agnes's key names.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReprocessCounts {
    pub state_rows: i64,
    pub events: i64,
    pub responses: i64,
    pub summaries: i64,
    pub findings: i64,
    pub tool_daily: i64,
    pub tokens_daily: i64,
}

/// Clears extracted telemetry in one transaction so the next run re-extracts
/// every file. Rollup days before the retention horizon are kept: the events
/// behind them are gone and could not rebuild them. So are the summaries of
/// sessions that started before it, whether or not their file is still on
/// disk (a re-extracted one is updated with its file's own figures).
pub fn reprocess(
    conn: &mut Connection,
    horizon: Option<NaiveDateTime>,
    dry_run: bool,
) -> anyhow::Result<ReprocessCounts> {
    let day = horizon.map(|h| h.date()).unwrap_or(chrono::NaiveDate::MIN);
    let tx = conn.transaction()?;
    let count = |sql: &str| -> anyhow::Result<i64> { Ok(tx.query_row(sql, [], |r| r.get(0))?) };
    let counts = ReprocessCounts {
        state_rows: count("SELECT count(*) FROM session_processor_state")?,
        events: count("SELECT count(*) FROM usage_events")?,
        responses: count("SELECT count(*) FROM usage_responses")?,
        summaries: tx.query_row(
            &format!("SELECT count(*) FROM usage_session_summary WHERE {INSIDE_HORIZON}"),
            params![horizon, horizon],
            |r| r.get(0),
        )?,
        findings: count("SELECT count(*) FROM session_findings")?,
        tool_daily: tx.query_row(
            "SELECT count(*) FROM usage_tool_daily WHERE day >= ?",
            params![day],
            |r| r.get(0),
        )?,
        tokens_daily: tx.query_row(
            "SELECT count(*) FROM usage_tokens_daily WHERE day >= ?",
            params![day],
            |r| r.get(0),
        )?,
    };
    if !dry_run {
        tx.execute_batch(
            "DELETE FROM session_processor_state; DELETE FROM usage_events; DELETE FROM usage_responses;
             DELETE FROM session_findings; DELETE FROM ingest_pending;",
        )?;
        tx.execute(
            &format!("DELETE FROM usage_session_summary WHERE {INSIDE_HORIZON}"),
            params![horizon, horizon],
        )?;
        tx.execute("DELETE FROM usage_tool_daily WHERE day >= ?", params![day])?;
        // The Telemetry rollups follow the (now empty) events.
        recount(&tx, Days::All)?;
        tx.execute(
            "DELETE FROM usage_tokens_daily WHERE day >= ?",
            params![day],
        )?;
        tx.commit()?;
    }
    Ok(counts)
}

/// Deletes events and responses older than `horizon`: (events, responses, events remaining).
pub fn prune(
    conn: &mut Connection,
    horizon: NaiveDateTime,
    dry_run: bool,
) -> anyhow::Result<(i64, i64, i64)> {
    let tx = conn.transaction()?;
    let old_events: i64 = tx.query_row(
        "SELECT count(*) FROM usage_events WHERE occurred_at < ?",
        params![horizon],
        |r| r.get(0),
    )?;
    let old_responses: i64 = tx.query_row(
        "SELECT count(*) FROM usage_responses WHERE first_ts < ?",
        params![horizon],
        |r| r.get(0),
    )?;
    let total: i64 = tx.query_row("SELECT count(*) FROM usage_events", [], |r| r.get(0))?;
    if !dry_run {
        tx.execute(
            "DELETE FROM usage_events WHERE occurred_at < ?",
            params![horizon],
        )?;
        tx.execute(
            "DELETE FROM usage_responses WHERE first_ts < ?",
            params![horizon],
        )?;
        recount(&tx, Days::Through(horizon.date()))?;
        tx.commit()?;
    }
    Ok((old_events, old_responses, total - old_events))
}
