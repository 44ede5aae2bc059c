//! The telemetry export's rows (SPEC §5, §10): every `usage_events` column,
//! typed (the writers render text), oldest first (`ORDER BY occurred_at,
//! id`, reference §1.3).
//!
//! One `ORDER BY` over a window of ten million wide rows spilled to disk
//! under a 256 MB memory limit and ran at a quarter of a million rows a
//! second. The rows are read instead in slices of whole hours of at most
//! [`LIMITS`]`.slice_rows` rows each (an hourly count of the filter says where the
//! slices end), and each slice, unsorted from DuckDB, is put in order in
//! memory: rows are stored about in the order they happened, so a slice is
//! most often in order already and is only checked. An hour busier than
//! `sort_in_memory_max` is ordered by DuckDB (which spills) instead, so
//! memory stays bounded at any size. All slices are read in one transaction:
//! one snapshot, as a single query would be.

use duckdb::arrow::array::{AsArray, RecordBatch};
use duckdb::arrow::compute::interleave_record_batch;
use duckdb::arrow::datatypes::TimestampMicrosecondType;
use duckdb::types::{TimeUnit, Value as DbValue};
use duckdb::{params_from_iter, Connection};

use super::TelemetryFilter;
use crate::repo::sql::{self, BatchSink, Where};

const HOUR_US: i64 = 3_600_000_000;

/// How big slices are.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Rows a slice holds at most, unless one hour has more.
    slice_rows: i64,
    /// A slice with more rows than this is sorted by DuckDB, not in memory.
    sort_in_memory_max: i64,
}

/// About 30 MB of Arrow arrays a slice, 60 MB for a busy hour: with
/// DuckDB's own memory (the limit, about 250 MB on 256 MB) a process stays
/// under SPEC §10's 400 MB growth. Slices of 128 k rows were no faster and
/// a second export on another thread, with its own malloc arena, went over.
const LIMITS: Limits = Limits {
    slice_rows: 64 * 1024,
    sort_in_memory_max: 128 * 1024,
};
/// Rows per batch handed on after a slice was reordered.
const REORDERED_BATCH: usize = 8 * 1024;

/// The export's columns: every `usage_events` column in table order.
fn select_list(conn: &Connection) -> anyhow::Result<String> {
    let mut stmt = conn.prepare(
        "SELECT column_name FROM information_schema.columns
         WHERE table_name = 'usage_events' AND table_schema = 'main' ORDER BY ordinal_position",
    )?;
    let cols = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .map(|c| c.map(|c| format!("\"{}\"", c.replace('"', "\"\""))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(cols.join(", "))
}

/// A range of whole hours, `[since, until)` in microseconds, and its rows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slice {
    since: i64,
    until: i64,
    rows: i64,
}

/// The filter's rows per hour, grouped oldest first into slices of at most
/// `slice_rows` rows (an hour with more is a slice of its own).
fn slices(conn: &Connection, w: &Where, slice_rows: i64) -> anyhow::Result<Vec<Slice>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT epoch_us(date_trunc('hour', occurred_at)) AS h, count(*) FROM usage_events
         WHERE {} GROUP BY h ORDER BY h",
        w.sql()
    ))?;
    let hours = stmt
        .query_map(params_from_iter(w.args().iter()), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(group_hours(&hours, slice_rows))
}

fn group_hours(hours: &[(i64, i64)], slice_rows: i64) -> Vec<Slice> {
    let mut out: Vec<Slice> = Vec::new();
    for &(hour, rows) in hours {
        match out.last_mut() {
            Some(s) if s.rows + rows <= slice_rows => {
                s.until = hour + HOUR_US;
                s.rows += rows;
            }
            _ => out.push(Slice {
                since: hour,
                until: hour + HOUR_US,
                rows,
            }),
        }
    }
    out
}

fn ts(micros: i64) -> DbValue {
    DbValue::Timestamp(TimeUnit::Microsecond, micros)
}

/// Streams the filter's rows (see the module) into `sink`; returns the rows
/// handed over.
pub fn export(
    conn: &Connection,
    f: &TelemetryFilter,
    sink: &mut dyn BatchSink,
) -> anyhow::Result<u64> {
    export_in_slices(conn, f, sink, LIMITS)
}

fn export_in_slices(
    conn: &Connection,
    f: &TelemetryFilter,
    sink: &mut dyn BatchSink,
    limits: Limits,
) -> anyhow::Result<u64> {
    let tx = conn.unchecked_transaction()?;
    let w = f.where_clause();
    let sql = format!(
        "SELECT {} FROM usage_events WHERE {} AND occurred_at >= ? AND occurred_at < ?",
        select_list(conn)?,
        w.sql()
    );
    let slices = slices(conn, &w, limits.slice_rows)?;
    let mut unsorted = conn.prepare(&sql)?;
    let mut sorted = conn.prepare(&format!("{sql} ORDER BY occurred_at, id"))?;
    let args = |s: &Slice| {
        let mut a = w.args().to_vec();
        a.extend([ts(s.since), ts(s.until)]);
        a
    };
    let mut count = 0u64;
    let mut schema_sent = false;
    for s in &slices {
        let big = s.rows > limits.sort_in_memory_max;
        let stmt = if big { &mut sorted } else { &mut unsorted };
        let schema = sql::execute_streaming(stmt, &args(s))?;
        if !schema_sent {
            sink.schema(schema)?;
            schema_sent = true;
        }
        let mut handed = |batch: &RecordBatch| -> anyhow::Result<bool> {
            count += batch.num_rows() as u64;
            sink.batch(batch)
        };
        if big {
            while let Some(batch) = sql::next_batch(stmt)? {
                if !handed(&batch)? {
                    return Ok(count);
                }
            }
        } else {
            let mut batches = Vec::new();
            while let Some(batch) = sql::next_batch(stmt)? {
                batches.push(batch);
            }
            if !in_order(batches, &mut handed)? {
                return Ok(count);
            }
        }
    }
    if !schema_sent {
        let empty = Slice {
            since: 0,
            until: 0,
            rows: 0,
        };
        sink.schema(sql::execute_streaming(&mut unsorted, &args(&empty))?)?;
    }
    // Read only: nothing to keep.
    tx.rollback()?;
    Ok(count)
}

/// Hands a slice's batches on ordered by `(occurred_at, id)`: as they are
/// when they already are (checked), else reordered (a stable sort), each
/// piece of [`REORDERED_BATCH`] rows handed on as soon as it is built, so a
/// reordered slice is not held twice. Returns false when `hand` asked to
/// stop.
fn in_order(
    batches: Vec<RecordBatch>,
    hand: &mut dyn FnMut(&RecordBatch) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let Some(first) = batches.first() else {
        return Ok(true);
    };
    let schema = first.schema();
    let (t_col, id_col) = (schema.index_of("occurred_at")?, schema.index_of("id")?);
    // Both columns are NOT NULL.
    let mut keys: Vec<(i64, &str, usize, usize)> =
        Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    let mut ordered = true;
    for (b, batch) in batches.iter().enumerate() {
        let t = batch
            .column(t_col)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| anyhow::anyhow!("occurred_at: not a microsecond timestamp"))?;
        let id = batch
            .column(id_col)
            .as_string_opt::<i32>()
            .ok_or_else(|| anyhow::anyhow!("id: not a string"))?;
        for row in 0..batch.num_rows() {
            let key = (t.value(row), id.value(row), b, row);
            if ordered {
                if let Some(last) = keys.last() {
                    ordered = (last.0, last.1) <= (key.0, key.1);
                }
            }
            keys.push(key);
        }
    }
    if ordered {
        drop(keys);
        for batch in &batches {
            if !hand(batch)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    keys.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    for part in keys.chunks(REORDERED_BATCH) {
        let idx: Vec<(usize, usize)> = part.iter().map(|k| (k.2, k.3)).collect();
        if !hand(&interleave_record_batch(&refs, &idx)?)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Counts what [`export`] returns.
pub fn export_count(conn: &Connection, f: &TelemetryFilter) -> anyhow::Result<i64> {
    let w = f.where_clause();
    Ok(conn.query_row(
        &format!("SELECT count(*) FROM usage_events WHERE {}", w.sql()),
        params_from_iter(w.args().iter()),
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};

    use super::{export_in_slices, group_hours, in_order, Limits, Slice, HOUR_US};
    use crate::repo::sql::BatchSink;
    use crate::repo::telemetry::TelemetryFilter;

    const SLICE_ROWS: i64 = 100;

    #[test]
    fn hours_group_into_slices_up_to_the_row_cap() {
        let h = |i: i64| i * HOUR_US;
        let got = group_hours(
            &[
                (h(0), 10),
                (h(1), SLICE_ROWS - 10),
                (h(2), 1),
                (h(5), 2),
                (h(6), SLICE_ROWS * 3),
                (h(7), 1),
            ],
            SLICE_ROWS,
        );
        let s = |since: i64, until: i64, rows: i64| Slice {
            since: h(since),
            until: h(until),
            rows,
        };
        assert_eq!(
            got,
            vec![
                s(0, 2, SLICE_ROWS),
                s(2, 6, 3),
                s(6, 7, SLICE_ROWS * 3),
                s(7, 8, 1)
            ]
        );
        assert!(group_hours(&[], SLICE_ROWS).is_empty());
    }

    fn batch(rows: &[(i64, &str)]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))) as ArrayRef,
            ),
            (
                "occurred_at",
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.0),
                )) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn keys(batches: &[RecordBatch]) -> Vec<(i64, String)> {
        use duckdb::arrow::array::AsArray;
        use duckdb::arrow::datatypes::TimestampMicrosecondType;
        batches
            .iter()
            .flat_map(|b| {
                let id = b.column(0).as_string::<i32>().clone();
                let t = b
                    .column(1)
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone();
                (0..b.num_rows()).map(move |i| (t.value(i), id.value(i).to_string()))
            })
            .collect()
    }

    #[test]
    fn a_slice_in_order_is_handed_on_as_is_and_any_other_is_sorted() {
        let through = |batches: Vec<RecordBatch>| {
            let mut got = Vec::new();
            assert!(in_order(batches, &mut |b| {
                got.push(b.clone());
                Ok(true)
            })
            .unwrap());
            got
        };
        let ordered = vec![batch(&[(1, "a"), (1, "b")]), batch(&[(2, "a")])];
        let same = through(ordered.clone());
        assert_eq!(same, ordered);

        let mixed = vec![
            batch(&[(5, "b"), (1, "z"), (5, "a")]),
            batch(&[(-3, "q"), (1, "y"), (5, "a")]),
        ];
        let got = through(mixed);
        assert_eq!(
            keys(&got),
            [(-3, "q"), (1, "y"), (1, "z"), (5, "a"), (5, "a"), (5, "b")]
                .map(|(t, s)| (t, s.to_string()))
        );
        assert!(through(Vec::new()).is_empty());
    }

    /// Keeps the ids and occurred_at of what it is handed, and how often
    /// the schema came.
    #[derive(Default)]
    struct Keys {
        schemas: usize,
        columns: usize,
        rows: Vec<(i64, String)>,
    }

    impl BatchSink for Keys {
        fn schema(&mut self, s: duckdb::arrow::datatypes::SchemaRef) -> anyhow::Result<()> {
            self.schemas += 1;
            self.columns = s.fields().len();
            Ok(())
        }

        fn batch(&mut self, b: &RecordBatch) -> anyhow::Result<bool> {
            let b = b.project(&[
                b.schema().index_of("id")?,
                b.schema().index_of("occurred_at")?,
            ])?;
            self.rows.extend(keys(&[b]));
            Ok(true)
        }
    }

    #[test]
    fn slices_hand_on_every_row_oldest_first_whichever_way_they_are_sorted() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        // 2,000 rows over 10 hours in a scrambled storage order, ties on
        // occurred_at broken by id; hour 3 holds 700 of them.
        c.execute_batch(
            "INSERT INTO usage_events (id, session_id, session_file, username, event_type,
                                       source, occurred_at, processor_version)
             SELECT printf('e%05d', (i * 7919) % 2000), 's', 'f', 'u', 'tool_use', 'builtin',
                    TIMESTAMP '2026-11-02 00:00:00' + to_microseconds(
                        CASE WHEN (i * 7919) % 2000 < 700 THEN 3 * 3600000000
                                 + ((i * 7919) % 2000) // 3 * 1000
                             ELSE ((i * 7919) % 2000) // 2 * 36000000 END), 1
             FROM range(2000) t(i)",
        )
        .unwrap();
        let want: Vec<(i64, String)> = c
            .prepare("SELECT epoch_us(occurred_at), id FROM usage_events ORDER BY occurred_at, id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(want.len(), 2000);
        for (slice_rows, sort_in_memory_max) in [(100, 300), (100, 10_000), (5_000, 10_000), (1, 1)]
        {
            let mut sink = Keys::default();
            let n = export_in_slices(
                &c,
                &TelemetryFilter::default(),
                &mut sink,
                Limits {
                    slice_rows,
                    sort_in_memory_max,
                },
            )
            .unwrap();
            assert_eq!(n, 2000);
            assert_eq!(sink.schemas, 1);
            assert_eq!(sink.rows, want, "{slice_rows} / {sort_in_memory_max}");
        }
        // No rows: the columns all the same, once.
        let mut sink = Keys::default();
        let f = TelemetryFilter {
            username: Some("nobody".into()),
            ..TelemetryFilter::default()
        };
        assert_eq!(
            export_in_slices(&c, &f, &mut sink, super::LIMITS).unwrap(),
            0
        );
        assert_eq!((sink.schemas, sink.rows.len()), (1, 0));
        assert!(sink.columns > 15);
    }
}
