//! The `app_events` table (SPEC §9): batches appended by the usage intake's
//! one writer, the admin summaries over a window, the SIEM export and the
//! retention prune. No key and no index (SPEC §2): rows arrive in time order,
//! so DuckDB's zone maps on `created_at` keep windowed reads cheap. The
//! small `app_events_daily` rollup (day × type × user) is kept in the same
//! transaction as each batch and serves the summary and per-user reads.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use duckdb::{params, Connection};
use serde::Serialize;

use crate::usage_api::NewAppEvent;

/// Appends one batch in one transaction, every row stamped `stamp`; returns
/// the ids (UUIDv7, so they sort in write order within the stamp).
pub fn append(
    conn: &mut Connection,
    events: &[NewAppEvent],
    stamp: NaiveDateTime,
) -> anyhow::Result<Vec<String>> {
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(events.len());
    {
        let mut app = tx.appender("app_events")?;
        for e in events {
            let id = uuid::Uuid::now_v7().to_string();
            app.append_row(params![
                id,
                e.user_id,
                e.event_type,
                e.metadata,
                e.source,
                stamp
            ])?;
            ids.push(id);
        }
        app.flush()?;
    }
    let mut daily: HashMap<(&str, &str), i64> = HashMap::new();
    for e in events {
        *daily.entry((&e.event_type, &e.user_id)).or_default() += 1;
    }
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO app_events_daily VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO UPDATE SET events = events + excluded.events,
                                       last_at = greatest(last_at, excluded.last_at)",
        )?;
        let day = stamp.date();
        for ((t, u), n) in daily {
            up.execute(params![day, t, u, n, stamp])?;
        }
    }
    tx.commit()?;
    Ok(ids)
}

/// Recounts the daily rollup from `app_events` (synth, repairs).
pub fn rebuild_daily(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "BEGIN;
         DELETE FROM app_events_daily;
         INSERT INTO app_events_daily
         SELECT created_at::DATE, event_type, coalesce(user_id, ''), count(*), max(created_at)
         FROM app_events GROUP BY ALL;
         COMMIT;",
    )?;
    Ok(())
}

/// `event_type → user_id → count` for the days from `since_day` on (events
/// without a user count under ""), from the daily rollup.
pub fn summary(
    conn: &Connection,
    since_day: NaiveDate,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, i64>>> {
    let mut stmt = conn.prepare(
        "SELECT event_type, user_id, sum(events)::BIGINT
         FROM app_events_daily WHERE day >= ? GROUP BY ALL",
    )?;
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let rows = stmt.query_map(params![since_day], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (t, u, n) = row?;
        out.entry(t).or_default().insert(u, n);
    }
    Ok(out)
}

/// Events per day from `since_day` through `until_day`, every day present
/// (days without events as 0), from the daily rollup.
pub fn daily_counts(
    conn: &Connection,
    since_day: NaiveDate,
    until_day: NaiveDate,
) -> anyhow::Result<Vec<(NaiveDate, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT day, sum(events)::BIGINT FROM app_events_daily
         WHERE day BETWEEN ? AND ? GROUP BY day",
    )?;
    let counted: HashMap<NaiveDate, i64> = stmt
        .query_map(params![since_day, until_day], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(since_day
        .iter_days()
        .take_while(|d| *d <= until_day)
        .map(|d| (d, counted.get(&d).copied().unwrap_or(0)))
        .collect())
}

/// Events, distinct users (events without a user not counted as one) and
/// distinct event types from `since_day` through `until_day`.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq)]
pub struct Totals {
    pub events: i64,
    pub users: i64,
    pub event_types: i64,
}

pub fn totals(
    conn: &Connection,
    since_day: NaiveDate,
    until_day: NaiveDate,
) -> anyhow::Result<Totals> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(events), 0)::BIGINT,
                count(DISTINCT user_id) FILTER (WHERE user_id <> ''),
                count(DISTINCT event_type)
         FROM app_events_daily WHERE day BETWEEN ? AND ?",
        params![since_day, until_day],
        |r| {
            Ok(Totals {
                events: r.get(0)?,
                users: r.get(1)?,
                event_types: r.get(2)?,
            })
        },
    )?)
}

#[derive(Debug, Default, Serialize)]
pub struct UserUsage {
    pub events: i64,
    pub event_types: BTreeMap<String, i64>,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub last_event_at: Option<NaiveDateTime>,
}

/// Per user: all events, by type, and the latest, for the days from
/// `since_day` on (from the daily rollup).
pub fn users(
    conn: &Connection,
    since_day: NaiveDate,
) -> anyhow::Result<BTreeMap<String, UserUsage>> {
    let mut stmt = conn.prepare(
        "SELECT user_id, event_type, sum(events)::BIGINT, max(last_at)
         FROM app_events_daily WHERE day >= ? GROUP BY ALL",
    )?;
    let rows = stmt.query_map(params![since_day], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, NaiveDateTime>(3)?,
        ))
    })?;
    let mut out: BTreeMap<String, UserUsage> = BTreeMap::new();
    for row in rows {
        let (u, t, n, last) = row?;
        let e = out.entry(u).or_default();
        e.events += n;
        e.event_types.insert(t, n);
        e.last_event_at = e.last_event_at.max(Some(last));
    }
    Ok(out)
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct QueryUsage {
    pub sql_generation: i64,
    pub sql_execution: i64,
    /// Sum of the executions' `rows` (or `row_count`) metadata; values that
    /// are not whole numbers count as 0.
    pub rows: i64,
}

/// Per user: SQL generations, executions and rows returned.
pub fn queries(
    conn: &Connection,
    since: NaiveDateTime,
) -> anyhow::Result<BTreeMap<String, QueryUsage>> {
    let mut stmt = conn.prepare(
        "SELECT coalesce(user_id, ''),
                count(*) FILTER (WHERE event_type = 'sql_generation')::BIGINT,
                count(*) FILTER (WHERE event_type = 'sql_execution')::BIGINT,
                coalesce(sum(TRY_CAST(coalesce(json_extract_string(metadata, '$.rows'),
                                               json_extract_string(metadata, '$.row_count')) AS BIGINT))
                         FILTER (WHERE event_type = 'sql_execution'), 0)::BIGINT
         FROM app_events
         WHERE created_at >= ? AND event_type IN ('sql_generation', 'sql_execution')
         GROUP BY ALL",
    )?;
    let rows = stmt.query_map(params![since], |r| {
        Ok((
            r.get::<_, String>(0)?,
            QueryUsage {
                sql_generation: r.get(1)?,
                sql_execution: r.get(2)?,
                rows: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Default, Serialize)]
pub struct DashboardUsage {
    pub publishes: i64,
    pub adapters: BTreeMap<String, i64>,
    pub users: i64,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub last_published_at: Option<NaiveDateTime>,
}

/// Per `dashboard_id` (metadata; "" when absent): publishes by adapter.
pub fn dashboards(
    conn: &Connection,
    since: NaiveDateTime,
) -> anyhow::Result<BTreeMap<String, DashboardUsage>> {
    let mut stmt = conn.prepare(
        "SELECT coalesce(json_extract_string(metadata, '$.dashboard_id'), ''),
                coalesce(json_extract_string(metadata, '$.adapter'), ''),
                coalesce(user_id, ''), count(*)::BIGINT, max(created_at)
         FROM app_events
         WHERE created_at >= ? AND event_type = 'dashboard_publish'
         GROUP BY ALL",
    )?;
    // Grouped by user too, so distinct publishers are counted here.
    let rows = stmt.query_map(params![since], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, NaiveDateTime>(4)?,
        ))
    })?;
    let mut out: BTreeMap<String, DashboardUsage> = BTreeMap::new();
    let mut publishers: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        let (d, a, u, n, last) = row?;
        publishers.entry(d.clone()).or_default().insert(u);
        let e = out.entry(d).or_default();
        e.publishes += n;
        *e.adapters.entry(a).or_default() += n;
        e.last_published_at = e.last_published_at.max(Some(last));
    }
    for (d, e) in out.iter_mut() {
        e.users = publishers.get(d).map_or(0, |s| s.len() as i64);
    }
    Ok(out)
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub cost_usd: f64,
}

impl TokenUsage {
    fn add(&mut self, o: &TokenUsage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_creation_tokens += o.cache_creation_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cost_usd += o.cost_usd;
    }
}

/// username → model → tokens and cost.
pub type TokensByUser = BTreeMap<String, BTreeMap<String, TokenUsage>>;

/// `username → model → tokens and cost` from `usage_tokens_daily` for the
/// days from `since_day` on, and the total.
pub fn llm_tokens(
    conn: &Connection,
    since_day: chrono::NaiveDate,
) -> anyhow::Result<(TokensByUser, TokenUsage)> {
    let mut stmt = conn.prepare(
        "SELECT username, model, sum(input_tokens)::BIGINT, sum(output_tokens)::BIGINT,
                sum(cache_creation_tokens)::BIGINT, sum(cache_read_tokens)::BIGINT, sum(cost_usd)
         FROM usage_tokens_daily WHERE day >= ? GROUP BY ALL",
    )?;
    let rows = stmt.query_map(params![since_day], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            TokenUsage {
                input_tokens: r.get(2)?,
                output_tokens: r.get(3)?,
                cache_creation_tokens: r.get(4)?,
                cache_read_tokens: r.get(5)?,
                cost_usd: r.get(6)?,
            },
        ))
    })?;
    let mut out = TokensByUser::new();
    let mut total = TokenUsage::default();
    for row in rows {
        let (u, m, t) = row?;
        total.add(&t);
        out.entry(u).or_default().insert(m, t);
    }
    Ok((out, total))
}

/// Streams the rows strictly after the cursor `(since, after_id)` (no
/// `after_id`: after `since`; neither: all), oldest first, into `sink`.
/// Returns the rows handed over.
pub fn export(
    conn: &Connection,
    since: Option<NaiveDateTime>,
    after_id: Option<&str>,
    sink: &mut dyn crate::repo::sql::BatchSink,
) -> anyhow::Result<u64> {
    use duckdb::types::{TimeUnit, Value as DbValue};
    let floor = since.unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc());
    let ts = DbValue::Timestamp(TimeUnit::Microsecond, floor.and_utc().timestamp_micros());
    // No id sorts after U+10FFFF, so without after_id this is `created_at > since`.
    let after = DbValue::Text(after_id.unwrap_or("\u{10FFFF}").to_string());
    crate::repo::sql::stream_query(
        conn,
        "SELECT id, created_at, user_id, event_type, source, metadata::VARCHAR AS metadata
         FROM app_events
         WHERE created_at > ? OR (created_at = ? AND id > ?)
         ORDER BY created_at, id",
        &[ts.clone(), ts, after],
        sink,
    )
}

/// Deletes events older than `horizon` (APP_EVENTS_RETENTION_DAYS) and the
/// rollup's days wholly before it; returns how many events.
pub fn prune(conn: &mut Connection, horizon: NaiveDateTime) -> anyhow::Result<i64> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "DELETE FROM app_events WHERE created_at < ?",
        params![horizon],
    )? as i64;
    tx.execute(
        "DELETE FROM app_events_daily WHERE day < ?",
        params![horizon.date()],
    )?;
    tx.commit()?;
    Ok(n)
}

/// Every stored event (tests and the bench).
pub fn count(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM app_events", [], |r| r.get(0))?)
}
