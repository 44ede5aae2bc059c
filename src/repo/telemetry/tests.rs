//! Invariants on one data set: the KPI total equals the sum of every
//! group-by's buckets and the export's rows; tokens and cost equal
//! `usage_tokens_daily` on day-aligned windows.

use chrono::{Duration, NaiveDateTime, NaiveTime};
use duckdb::Connection;

use super::*;
use crate::db::Db;

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn people() -> Vec<(String, String)> {
    ["ann", "bob", "cy", "dee"]
        .iter()
        .map(|n| (format!("id-{n}"), format!("{n}@example.com")))
        .collect()
}

/// Synthetic telemetry over 20 days plus rows with NULL model and a user
/// known only by id (a row that is theirs by `user_id`, not by username).
fn data() -> (Db, Connection) {
    let db = Db::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    crate::synth_usage::make_usage(&c, &people(), 12_000, 60, 20).unwrap();
    c.execute_batch(
        "INSERT INTO usage_events (id, session_id, session_file, username, event_type, tool_name,
                                   is_error, source, occurred_at, processor_version, user_id)
         VALUES ('x1', 's-x', 'dir/s-x.jsonl', 'legacy-dir', 'tool_use', 'Bash', true, 'builtin',
                 now()::TIMESTAMP - INTERVAL 2 HOUR, 1, 'id-ann'),
                ('x2', 's-x', 'dir/s-x.jsonl', 'legacy-dir', 'slash_command', NULL, false, 'builtin',
                 now()::TIMESTAMP - INTERVAL 1 HOUR, 1, NULL);",
    )
    .unwrap();
    rollup::recount(&c, rollup::Days::All).unwrap();
    (db, c)
}

fn filters() -> Vec<(&'static str, TelemetryFilter)> {
    let week = Some(now() - Duration::days(7));
    let base = TelemetryFilter {
        since: week,
        ..Default::default()
    };
    vec![
        ("everything", TelemetryFilter::default()),
        ("7 days", base.clone()),
        (
            "errors",
            TelemetryFilter {
                only_errors: true,
                ..base.clone()
            },
        ),
        (
            "curated by bob",
            TelemetryFilter {
                source: Some("curated".into()),
                username: Some("bob@example.com".into()),
                ..base.clone()
            },
        ),
        (
            "q sql and a model",
            TelemetryFilter {
                q: Some("SQL".into()),
                model: Some("claude-sonnet-4-5-20250929".into()),
                since: None,
                ..base.clone()
            },
        ),
        (
            "slash commands in a range",
            TelemetryFilter {
                event_type: Some("slash_command".into()),
                since: Some(now() - Duration::days(15)),
                until: Some(now() - Duration::days(3)),
                ..base.clone()
            },
        ),
        (
            "ann's scope",
            TelemetryFilter {
                scope: Some(Scope {
                    user_id: "id-ann".into(),
                    email: "ann@example.com".into(),
                }),
                ..TelemetryFilter::default()
            },
        ),
    ]
}

#[test]
fn every_group_by_sums_to_the_kpi_total_and_the_export_rows() {
    let (_db, c) = data();
    for (name, f) in filters() {
        let k = kpis(&c, &f).unwrap();
        assert!(k.events_total > 0, "{name}: the filter selects something");
        assert_eq!(
            export_count(&c, &f).unwrap(),
            k.events_total,
            "{name}: export"
        );
        for by in GroupBy::ALL {
            let sort = Sort::parse("invocations:desc", &BUCKET_SORTS).unwrap();
            let all = group_by(&c, &f, by, &sort, 100_000, 0).unwrap();
            let sum: i64 = all.rows.iter().map(|b| b.invocations).sum();
            assert_eq!(sum, k.events_total, "{name}: group by {}", by.as_str());
            assert_eq!(all.total, all.rows.len() as i64, "{name}: {}", by.as_str());
            let errors: i64 = all.rows.iter().map(|b| b.errors).sum();
            assert_eq!(errors, k.errors, "{name}: errors by {}", by.as_str());
        }
    }
}

#[test]
fn null_values_get_their_own_bucket_sorted_last() {
    let (_db, c) = data();
    let f = TelemetryFilter::default();
    let sort = Sort::parse("bucket:asc", &BUCKET_SORTS).unwrap();
    for by in [GroupBy::ToolName, GroupBy::RefId, GroupBy::Model] {
        let all = group_by(&c, &f, by, &sort, 100_000, 0).unwrap();
        let last = all.rows.last().unwrap();
        assert_eq!(last.bucket, None, "{}", by.as_str());
        assert_eq!(
            all.rows.iter().filter(|b| b.bucket.is_none()).count(),
            1,
            "{}",
            by.as_str()
        );
    }
}

#[test]
fn pages_of_buckets_partition_the_buckets_in_sort_order() {
    let (_db, c) = data();
    let f = TelemetryFilter::default();
    for spec in [
        "invocations:desc",
        "bucket:asc",
        "errors:asc",
        "distinct_users:desc",
    ] {
        let sort = Sort::parse(spec, &BUCKET_SORTS).unwrap();
        let all = group_by(&c, &f, GroupBy::SessionId, &sort, 100_000, 0).unwrap();
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let page = group_by(&c, &f, GroupBy::SessionId, &sort, 7, offset).unwrap();
            assert_eq!(page.total, all.total, "{spec}");
            if page.rows.is_empty() {
                break;
            }
            offset += page.rows.len() as i64;
            paged.extend(page.rows);
        }
        assert_eq!(paged, all.rows, "{spec}");
    }
    // Past the end: no rows, the total still known.
    let sort = Sort::parse("invocations", &BUCKET_SORTS).unwrap();
    let past = group_by(&c, &f, GroupBy::Model, &sort, 10, 1_000).unwrap();
    assert!(past.rows.is_empty());
    assert_eq!(past.total, 5, "four models and the NULL bucket");
}

#[test]
fn tokens_on_a_day_aligned_window_equal_the_daily_rollup_and_the_responses() {
    let (_db, c) = data();
    let today = now().date().and_time(NaiveTime::MIN);
    for (since, until, user, model) in [
        (today - Duration::days(10), Some(today), None, None),
        (
            today - Duration::days(30),
            None,
            Some("cy@example.com"),
            None,
        ),
        (
            today - Duration::days(6),
            Some(today - Duration::days(1)),
            None,
            Some("claude-opus-4-5-20251101"),
        ),
    ] {
        let f = TelemetryFilter {
            since: Some(since),
            until,
            username: user.map(String::from),
            model: model.map(String::from),
            // Tool filters do not touch tokens (SPEC §11).
            tool_name: Some("Bash".into()),
            only_errors: true,
            ..Default::default()
        };
        let (src, _) = f.token_source();
        assert!(!src.contains("usage_responses"), "{src}");
        let got = tokens(&c, &f).unwrap();
        let mut cond = format!("day >= DATE '{}'", since.date());
        if let Some(u) = until {
            cond += &format!(" AND day < DATE '{}'", u.date());
        }
        if let Some(u) = user {
            cond += &format!(" AND username = '{u}'");
        }
        if let Some(m) = model {
            cond += &format!(" AND model = '{m}'");
        }
        let (out, cost): (i64, f64) = c
            .query_row(
                &format!("SELECT coalesce(sum(output_tokens), 0)::BIGINT, coalesce(sum(cost_usd), 0) FROM usage_tokens_daily WHERE {cond}"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(out > 0);
        assert_eq!(got.output_tokens, out);
        assert!(
            (got.cost_usd - cost).abs() < 1e-5,
            "{} vs {cost}",
            got.cost_usd
        );
        // Per model, the same source sums to the same figures.
        let by_model = tokens_by_model(&c, &f, &|m| m != "glm-4.6").unwrap();
        assert_eq!(by_model.iter().map(|m| m.output_tokens).sum::<i64>(), out);
    }
    // Off a day boundary the responses of the part-day are read, the whole
    // days from the rollup, honouring the exact window.
    let f = TelemetryFilter {
        since: Some(today - Duration::days(3) + Duration::hours(5)),
        ..Default::default()
    };
    let (src, _) = f.token_source();
    assert!(src.contains("usage_responses") && src.contains("usage_tokens_daily"));
    let got = tokens(&c, &f).unwrap();
    let want: i64 = c
        .query_row(
            &format!(
                "SELECT sum(input_tokens) FROM usage_responses WHERE counted AND first_ts >= TIMESTAMP '{}'",
                f.since.unwrap()
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(got.input_tokens, want);
    // Both ends inside days, several days apart, the same day, and a
    // model: the sum of the exact responses, whatever the split.
    for (since, until, model) in [
        (
            Duration::hours(-77) - Duration::minutes(13),
            Duration::hours(-29),
            None,
        ),
        (Duration::hours(-50), Duration::hours(-47), None),
        (
            Duration::hours(-12 * 24 - 3),
            Duration::minutes(-5),
            Some("claude-opus-4-5-20251101"),
        ),
    ] {
        let (s, u) = (today + since, today + until);
        let f = TelemetryFilter {
            since: Some(s),
            until: Some(u),
            model: model.map(String::from),
            ..Default::default()
        };
        let model_cond = model
            .map(|m| format!(" AND model = '{m}'"))
            .unwrap_or_default();
        let want: (i64, f64) = c
            .query_row(
                &format!(
                    "SELECT coalesce(sum(output_tokens), 0)::BIGINT, coalesce(sum(cost_usd), 0) FROM usage_responses
                     WHERE counted AND first_ts >= TIMESTAMP '{s}' AND first_ts < TIMESTAMP '{u}'{model_cond}"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let got = tokens(&c, &f).unwrap();
        assert!(want.0 > 0);
        assert_eq!(got.output_tokens, want.0, "{s} – {u}");
        assert!((got.cost_usd - want.1).abs() < 1e-5);
    }
}

#[test]
fn a_session_filter_counts_only_that_sessions_responses() {
    let (_db, c) = data();
    let (sid, file): (String, String) = c
        .query_row(
            "SELECT session_id, session_file FROM usage_session_summary ORDER BY session_file LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let f = TelemetryFilter {
        session_id: Some(sid),
        ..Default::default()
    };
    let want: i64 = c
        .query_row(
            "SELECT sum(output_tokens) FROM usage_responses WHERE session_file = ?",
            [&file],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tokens(&c, &f).unwrap().output_tokens, want);
}

#[test]
fn the_scope_keeps_only_the_persons_rows_by_user_id_or_email() {
    let (_db, c) = data();
    let f = filters().pop().unwrap().1;
    let sort = Sort::parse("bucket:asc", &BUCKET_SORTS).unwrap();
    let users = group_by(&c, &f, GroupBy::Username, &sort, 100, 0).unwrap();
    let names: Vec<_> = users
        .rows
        .iter()
        .map(|b| b.bucket.clone().unwrap())
        .collect();
    assert_eq!(names, ["ann@example.com", "legacy-dir"]);
    let legacy = users.rows[1].invocations;
    assert_eq!(legacy, 1, "the row with ann's user id, not the other one");
    let facets = facets(&c, &f).unwrap();
    assert_eq!(facets.users.len(), 2);
}

#[test]
fn facets_count_the_window_and_sum_to_the_total() {
    let (_db, c) = data();
    let f = TelemetryFilter {
        since: Some(now() - Duration::days(7)),
        ..Default::default()
    };
    let total = kpis(&c, &f).unwrap().events_total;
    let facets = facets(&c, &f).unwrap();
    assert_eq!(facets.sources.iter().map(|v| v.count).sum::<i64>(), total);
    assert_eq!(
        facets.event_types.iter().map(|v| v.count).sum::<i64>(),
        total
    );
    assert_eq!(facets.users.iter().map(|v| v.count).sum::<i64>(), total);
    assert!(facets.tools.iter().all(|v| v.value != "-"));
    let models: i64 = c
        .query_row(
            "SELECT count(DISTINCT model) FROM usage_events WHERE occurred_at >= ?",
            [f.since.unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(facets.models.len() as i64, models);
    assert!(facets.tools.windows(2).all(|w| w[0].count >= w[1].count));
}

#[test]
fn the_previous_window_has_the_same_length_just_before() {
    let (_db, c) = data();
    let n = now();
    let f = TelemetryFilter {
        since: Some(n - Duration::days(7)),
        ..Default::default()
    };
    let (cur, prev) = kpis_with_previous(&c, &f, n).unwrap();
    let prev = prev.unwrap();
    let all = kpis(
        &c,
        &TelemetryFilter {
            since: Some(n - Duration::days(14)),
            until: Some(n),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cur.events_total + prev.events_total, all.events_total);
    assert!(prev.events_total > 0);
}

#[test]
fn raw_events_sort_by_any_allowed_column_and_page() {
    let (_db, c) = data();
    let f = TelemetryFilter::default();
    let newest = events(
        &c,
        &f,
        &Sort::parse("occurred_at:desc", &EVENT_SORTS).unwrap(),
        5,
        0,
    )
    .unwrap();
    assert!(newest
        .windows(2)
        .all(|w| w[0].occurred_at >= w[1].occurred_at));
    let max: NaiveDateTime = c
        .query_row("SELECT max(occurred_at) FROM usage_events", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(newest[0].occurred_at, max);
    let by_tool = events(
        &c,
        &f,
        &Sort::parse("tool_name:asc", &EVENT_SORTS).unwrap(),
        50,
        0,
    )
    .unwrap();
    assert!(by_tool.windows(2).all(|w| w[0].tool_name <= w[1].tool_name));
    assert!(Sort::parse("id; DROP TABLE x", &EVENT_SORTS).is_none());
    assert!(Sort::parse("occurred_at:sideways", &EVENT_SORTS).is_none());
}

#[test]
fn the_summary_has_every_agnes_field_and_lists_unpriced_models() {
    let (_db, c) = data();
    let s = summary(&c, "30d", &TelemetryFilter::default(), now(), &|m| {
        m != "glm-4.6"
    })
    .unwrap();
    assert_eq!(s.dau_series.len(), 30);
    assert!(s.top_tools.len() <= 10 && !s.top_tools.is_empty());
    assert_eq!(s.unknown_models, ["glm-4.6"]);
    let unknown = s
        .tokens_by_model
        .iter()
        .find(|m| m.model == "glm-4.6")
        .unwrap();
    assert_eq!(unknown.cost_usd, 0.0);
    assert!(unknown.total_tokens > 0);
    let v = serde_json::to_value(&s).unwrap();
    for k in [
        "total_scan_bytes",
        "remote_queries",
        "local_queries",
        "snapshot_creates",
    ] {
        assert!(v["query_telemetry"][k].is_number(), "{k}");
    }
    assert!(v["query_telemetry"]["top_tables"].is_array());
    let users: i64 = s.top_users.iter().map(|u| u.tool_calls).sum();
    let all = kpis(
        &c,
        &TelemetryFilter {
            since: Some(now() - Duration::days(30)),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(users <= all.events_total && users > 0);
}

/// Every read of the page through the rollups (whole hours) and raw edges
/// equals the same read of `usage_events` alone, for windows that start and
/// end inside hours and days, with and without filters.
#[test]
fn reads_through_the_rollups_equal_reads_of_the_events() {
    let (_db, c) = data();
    // A session of two people on one day (counted apart from those of one
    // day and person), and a session that goes on past midnight.
    c.execute_batch(
        "INSERT INTO usage_events (id, session_id, session_file, username, event_type, tool_name,
                                   is_error, source, occurred_at, processor_version)
         VALUES ('x3', 's-x', 'dir/s-x.jsonl', 'ann@example.com', 'tool_use', 'Read', false, 'builtin',
                 now()::TIMESTAMP - INTERVAL 90 MINUTE, 1),
                ('y1', 's-y', 'dir/s-y.jsonl', 'bob@example.com', 'tool_use', 'Grep', false, 'curated',
                 CAST(current_date AS TIMESTAMP) - INTERVAL 3 DAY - INTERVAL 10 MINUTE, 1),
                ('y2', 's-y', 'dir/s-y.jsonl', 'bob@example.com', 'tool_use', 'Grep', true, 'curated',
                 CAST(current_date AS TIMESTAMP) - INTERVAL 3 DAY + INTERVAL 10 MINUTE, 1);",
    )
    .unwrap();
    rollup::recount(&c, rollup::Days::All).unwrap();
    let spanning: i64 = c
        .query_row(
            "SELECT count(DISTINCT session_key) FROM usage_sessions_spanning",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sessions: i64 = c
        .query_row(
            "SELECT count(DISTINCT session_id) FROM usage_events",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        spanning >= 2 && spanning < sessions,
        "{spanning} of {sessions}"
    );
    assert_eq!(rollup::mismatches(&c).unwrap(), 0);
    let t0 = now();
    let mut cases = filters();
    for (since, until) in [
        (Some(t0 - Duration::minutes(7 * 1440 + 37)), None),
        (
            Some(t0 - Duration::minutes(3 * 1440 + 5)),
            Some(t0 - Duration::minutes(1440 + 59)),
        ),
        (None, Some(t0 - Duration::minutes(2 * 1440 + 1))),
        (
            Some(t0 - Duration::minutes(30 * 1440)),
            Some(t0 + Duration::minutes(61)),
        ),
        (
            Some(t0 - Duration::minutes(200)),
            Some(t0 - Duration::minutes(70)),
        ),
    ] {
        for model in [None, Some("claude-opus-4-5-20251101".to_string())] {
            cases.push((
                "odd window",
                TelemetryFilter {
                    since,
                    until,
                    model: model.clone(),
                    ..Default::default()
                },
            ));
            cases.push((
                "odd window, errors of one tool",
                TelemetryFilter {
                    since,
                    until,
                    model,
                    only_errors: true,
                    tool_name: Some("Bash".into()),
                    ..Default::default()
                },
            ));
        }
    }
    let sort = Sort::parse("invocations:desc", &BUCKET_SORTS).unwrap();
    let read = |f: &TelemetryFilter| {
        let mut out = format!("{:?}\n{:?}\n", kpis(&c, f).unwrap(), facets(&c, f).unwrap());
        for by in GroupBy::ALL {
            out += &format!("{:?}\n", group_by(&c, f, by, &sort, 1000, 0).unwrap());
        }
        out += &format!("{:?}\n{}", daily(&c, f).unwrap(), count(&c, f).unwrap());
        out
    };
    let mut rolled = 0;
    for (name, f) in &cases {
        rolled += usize::from(rollup::rows(f).rolled);
        let through_rollups = read(f);
        rollup::FORCE_RAW.with(|r| r.set(true));
        let raw = read(f);
        rollup::FORCE_RAW.with(|r| r.set(false));
        assert_eq!(through_rollups, raw, "{name}: {f:?}");
    }
    assert!(rolled >= 20, "most cases read the rollups ({rolled})");
}

/// Prune and reprocess keep the rollups equal to the events they leave.
#[test]
fn prune_and_reprocess_keep_the_rollups_exact() {
    let (_db, mut c) = data();
    let horizon = now() - Duration::minutes(10 * 1440 + 123);
    crate::repo::usage::prune(&mut c, horizon, false).unwrap();
    assert_eq!(rollup::mismatches(&c).unwrap(), 0);
    let f = TelemetryFilter::default();
    let events: i64 = c
        .query_row("SELECT count(*) FROM usage_events", [], |r| r.get(0))
        .unwrap();
    assert!(events > 0);
    assert_eq!(kpis(&c, &f).unwrap().events_total, events);
    crate::repo::usage::reprocess(&mut c, None, false).unwrap();
    assert_eq!(rollup::mismatches(&c).unwrap(), 0);
    assert_eq!(kpis(&c, &f).unwrap().events_total, 0);
}

/// Newest-first pages found in a narrowed span are the window's own pages.
#[test]
fn newest_first_pages_equal_pages_of_the_whole_window() {
    let (_db, c) = data();
    let sort = Sort::parse("occurred_at:desc", &EVENT_SORTS).unwrap();
    for (_, f) in filters() {
        for (limit, offset) in [(1, 0), (25, 0), (100, 30), (500, 700), (5, 20_000)] {
            assert_eq!(
                events(&c, &f, &sort, limit, offset).unwrap(),
                events_page(&c, &f, &sort, limit, offset).unwrap(),
                "{f:?} {limit} {offset}"
            );
        }
    }
}

/// Ingest re-counts only the days it touched: a session of one day that
/// goes on into a later day starts spanning days, and the earlier day's
/// counts (not re-counted as a pending day) must stop counting it there.
#[test]
fn recounting_pending_days_follows_sessions_into_other_days() {
    let (_db, c) = data();
    let (session, user, day): (String, String, chrono::NaiveDate) = c
        .query_row(
            "SELECT session_id, any_value(username), any_value(CAST(occurred_at AS DATE))
             FROM usage_events GROUP BY session_id
             HAVING count(DISTINCT CAST(occurred_at AS DATE)) = 1 AND count(DISTINCT username) = 1
                AND max(CAST(occurred_at AS DATE)) < current_date - 2
             ORDER BY 1 LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let later = day + Duration::days(2);
    c.execute(
        "INSERT INTO usage_events (id, session_id, session_file, username, event_type, tool_name,
                                   is_error, source, occurred_at, processor_version)
         VALUES ('late', ?, 'dir/late.jsonl', ?, 'tool_use', 'Bash', false, 'builtin',
                 CAST(? AS TIMESTAMP) + INTERVAL 5 HOUR, 1)",
        duckdb::params![session, user, later],
    )
    .unwrap();
    c.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pending_days (day DATE); DELETE FROM pending_days;",
    )
    .unwrap();
    c.execute("INSERT INTO pending_days VALUES (?)", [later])
        .unwrap();
    assert!(rollup::mismatches(&c).unwrap() > 0);
    rollup::recount(&c, rollup::Days::Pending).unwrap();
    assert_eq!(rollup::mismatches(&c).unwrap(), 0);
}
