//! Writes to the `audit_log` table. (Queries arrive with the Audit log page.)

use duckdb::{params, Connection};

use crate::audit::AuditEvent;

/// Writes one row with its write-time classifications. The id is a UUIDv7, so
/// ids sort in time order and break timestamp ties in the cursor.
pub fn log(conn: &Connection, e: &AuditEvent) -> anyhow::Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let ts = e
        .timestamp
        .unwrap_or_else(|| chrono::Utc::now().naive_utc());
    conn.execute(
        "INSERT INTO audit_log (id, timestamp, user_id, action, resource, params, result, duration_ms,
            params_before, client_ip, client_kind, correlation_id, event_id, result_class, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            id,
            ts,
            e.user_id,
            e.action,
            e.resource,
            e.params.as_ref().map(|p| p.to_string()),
            e.result,
            e.duration_ms,
            e.params_before.as_ref().map(|p| p.to_string()),
            e.client_ip,
            e.client_kind,
            e.correlation_id,
            e.event_id,
            e.result_class(),
            e.source(),
        ],
    )?;
    Ok(id)
}

/// Deletes rows older than `horizon` (AUDIT_RETENTION_DAYS); returns how many.
pub fn prune(conn: &mut Connection, horizon: chrono::NaiveDateTime) -> anyhow::Result<i64> {
    Ok(conn.execute(
        "DELETE FROM audit_log WHERE timestamp < ?",
        params![horizon],
    )? as i64)
}

/// (user_id, resource, result) of one row.
pub type ActionRow = (Option<String>, Option<String>, Option<String>);

/// Rows of one action, newest first (used by tests and the users pages).
pub fn recent_actions(
    conn: &Connection,
    action: &str,
    limit: i64,
) -> anyhow::Result<Vec<ActionRow>> {
    let mut stmt = conn.prepare(
        "SELECT user_id, resource, result FROM audit_log WHERE action = ? ORDER BY timestamp DESC, id DESC LIMIT ?",
    )?;
    let rows = stmt
        .query_map(params![action, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn a_logged_row_carries_its_classifications_and_every_column() {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        let mut e = AuditEvent::new("query.run")
            .user("u1")
            .resource("table:orders")
            .params(serde_json::json!({"sql": "select 1"}))
            .result("error.400")
            .client_kind("cli")
            .duration_ms(12);
        e.client_ip = Some("10.0.0.1".into());
        e.correlation_id = Some("corr-1".into());
        e.params_before = Some(serde_json::json!({"a": 1}));
        let id = log(&c, &e).unwrap();
        let row: (String, String, String, String, i64, String, String, String) = c
            .query_row(
                "SELECT id, result_class::VARCHAR, source::VARCHAR, client_ip, duration_ms, correlation_id,
                        params->>'sql', params_before::VARCHAR FROM audit_log",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
            )
            .unwrap();
        assert_eq!(row.0, id);
        assert_eq!(&row.1, "error");
        assert_eq!(&row.2, "cli");
        assert_eq!(&row.3, "10.0.0.1");
        assert_eq!(row.4, 12);
        assert_eq!(&row.5, "corr-1");
        assert_eq!(&row.6, "select 1");
        assert_eq!(&row.7, r#"{"a":1}"#);
    }
}
