//! SQL building blocks every repository shares: a WHERE builder that keeps
//! conditions and their bound values together, time ranges, and the facet
//! query (GROUPING SETS over a relation, the top values of each column).

use chrono::NaiveDateTime;
use duckdb::types::{TimeUnit, Value as DbValue};
use duckdb::{params_from_iter, Connection};

/// A bound timestamp (microseconds, like the column).
pub fn ts_value(t: &NaiveDateTime) -> DbValue {
    DbValue::Timestamp(TimeUnit::Microsecond, t.and_utc().timestamp_micros())
}

/// A conjunction of SQL conditions and the values bound to their `?`s, in order.
#[derive(Debug, Clone, Default)]
pub struct Where {
    parts: Vec<String>,
    args: Vec<DbValue>,
}

impl Where {
    pub fn and(&mut self, clause: impl Into<String>, args: impl IntoIterator<Item = DbValue>) {
        self.parts.push(clause.into());
        self.args.extend(args);
    }

    pub fn with(&self, clause: &str) -> Where {
        let mut w = self.clone();
        w.and(clause, []);
        w
    }

    pub fn sql(&self) -> String {
        if self.parts.is_empty() {
            "TRUE".into()
        } else {
            self.parts.join(" AND ")
        }
    }

    pub fn args(&self) -> &[DbValue] {
        &self.args
    }

    /// No condition at all.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn extend(&mut self, other: Where) {
        self.parts.extend(other.parts);
        self.args.extend(other.args);
    }
}

/// `column >= since AND column < until`, each bound only when given.
pub fn time_range(
    column: &str,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
) -> Where {
    let mut w = Where::default();
    if let Some(s) = since {
        w.and(format!("{column} >= ?"), [ts_value(&s)]);
    }
    if let Some(u) = until {
        w.and(format!("{column} < ?"), [ts_value(&u)]);
    }
    w
}

/// Text bound as a parameter.
pub fn text(s: &str) -> DbValue {
    DbValue::Text(s.to_string())
}

/// `GROUPING(...)` of the set of column `i` among `n` facet columns: the bit
/// of its own column is 0, all others 1.
pub const fn grouping_of(i: usize, n: usize) -> usize {
    (1 << n) - 1 - (1 << (n - 1 - i))
}

/// `SELECT GROUPING(cols) AS g, cols, <agg> AS n FROM <relation> GROUP BY
/// GROUPING SETS ((c1), (c2), …)`: every facet in one scan. `relation` is a
/// table or a parenthesised subquery with the columns; `agg` counts
/// (`count(*)`, or `sum(events)` over a rollup).
pub fn grouping_sets_sql(relation: &str, columns: &[&str], agg: &str) -> String {
    let cols = columns.join(", ");
    let sets = columns
        .iter()
        .map(|c| format!("({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT GROUPING({cols}) AS g, {cols}, {agg} AS n FROM {relation} GROUP BY GROUPING SETS ({sets})")
}

/// One value of a facet and how many rows have it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub value: String,
    pub count: i64,
}

/// The facets of `relation` under `conditions`: for each of `columns` (all
/// VARCHAR-castable), its top `limit` values by count, NULLs left out;
/// returned in `columns` order. One GROUPING SETS scan.
pub fn facets(
    conn: &Connection,
    relation: &str,
    columns: &[&str],
    conditions: &Where,
    limit: i64,
) -> anyhow::Result<Vec<Vec<Bucket>>> {
    let inner = grouping_sets_sql(
        &format!(
            "(SELECT {} FROM {relation} WHERE {})",
            columns.join(", "),
            conditions.sql()
        ),
        columns,
        "count(*)",
    );
    let n = columns.len();
    let value = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("WHEN {} THEN CAST({c} AS VARCHAR)", grouping_of(i, n)))
        .collect::<Vec<_>>()
        .join(" ");
    let sql = format!(
        "SELECT g, v, n FROM (SELECT g, CASE g {value} END AS v, n FROM ({inner}))
         WHERE v IS NOT NULL
         QUALIFY row_number() OVER (PARTITION BY g ORDER BY n DESC, v) <= {limit}
         ORDER BY g, n DESC, v"
    );
    let mut out = vec![Vec::new(); n];
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(conditions.args().iter()))?;
    while let Some(r) = rows.next()? {
        let g: i64 = r.get(0)?;
        if let Some(i) = (0..n).find(|i| grouping_of(*i, n) == g as usize) {
            out[i].push(Bucket {
                value: r.get(1)?,
                count: r.get(2)?,
            });
        }
    }
    Ok(out)
}

/// Where a streamed query's Arrow batches go (an export's writer).
pub trait BatchSink {
    /// The result's columns, once, before any batch.
    fn schema(&mut self, schema: duckdb::arrow::datatypes::SchemaRef) -> anyhow::Result<()>;
    /// One batch; `false` stops the stream after it.
    fn batch(&mut self, batch: &duckdb::arrow::record_batch::RecordBatch) -> anyhow::Result<bool>;
}

/// Runs `sql` with DuckDB's streaming result, handing each chunk to `sink`
/// as it comes: memory stays bounded whatever the size. Returns the rows
/// handed over.
pub fn stream_query(
    conn: &Connection,
    sql: &str,
    args: &[DbValue],
    sink: &mut dyn BatchSink,
) -> anyhow::Result<u64> {
    let mut stmt = conn.prepare(sql)?;
    sink.schema(execute_streaming(&mut stmt, args)?)?;
    let mut count = 0u64;
    while let Some(batch) = next_batch(&stmt)? {
        count += batch.num_rows() as u64;
        if !sink.batch(&batch)? {
            break;
        }
    }
    Ok(count)
}

/// Executes a prepared statement with DuckDB's streaming result (read it
/// with [`next_batch`]); returns the result's columns.
pub fn execute_streaming(
    stmt: &mut duckdb::Statement<'_>,
    args: &[DbValue],
) -> anyhow::Result<duckdb::arrow::datatypes::SchemaRef> {
    drop(stmt.stream_arrow(params_from_iter(args.iter()))?);
    Ok(stmt.schema())
}

/// The next chunk of a statement run by [`execute_streaming`].
pub fn next_batch(
    stmt: &duckdb::Statement<'_>,
) -> anyhow::Result<Option<duckdb::arrow::record_batch::RecordBatch>> {
    Ok(stmt
        .step()?
        .map(duckdb::arrow::record_batch::RecordBatch::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_count_each_column_over_the_conditions() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        c.execute_batch(
            "CREATE TEMP TABLE t (a VARCHAR, b INTEGER);
             INSERT INTO t VALUES ('x', 1), ('x', 2), ('y', 2), (NULL, 3)",
        )
        .unwrap();
        let mut w = Where::default();
        w.and("b < ?", [DbValue::Int(3)]);
        let f = facets(&c, "t", &["a", "b"], &w, 10).unwrap();
        assert_eq!(
            f[0],
            vec![
                Bucket {
                    value: "x".into(),
                    count: 2
                },
                Bucket {
                    value: "y".into(),
                    count: 1
                }
            ]
        );
        assert_eq!(
            f[1][0],
            Bucket {
                value: "2".into(),
                count: 2
            }
        );
        assert_eq!(f[1].len(), 2);
    }
}
