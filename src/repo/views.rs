//! Saved views of the Audit log (`user_observability_views`), one set per user.

use chrono::NaiveDateTime;
use duckdb::{params, Connection, OptionalExt};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub id: String,
    pub name: String,
    pub query: Value,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub created_at: Option<NaiveDateTime>,
}

fn from_row(r: &duckdb::Row<'_>) -> duckdb::Result<View> {
    let q: String = r.get(2)?;
    Ok(View {
        id: r.get(0)?,
        name: r.get(1)?,
        query: serde_json::from_str(&q).unwrap_or(Value::Null),
        created_at: r.get(3)?,
    })
}

/// The user's views, newest first.
pub fn list(conn: &Connection, user_id: &str) -> anyhow::Result<Vec<View>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, CAST(query_json AS VARCHAR), created_at FROM user_observability_views
         WHERE user_id = ? ORDER BY created_at DESC, id DESC",
    )?;
    let rows = stmt
        .query_map(params![user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn count(conn: &Connection, user_id: &str) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM user_observability_views WHERE user_id = ?",
        params![user_id],
        |r| r.get(0),
    )?)
}

pub fn by_name(conn: &Connection, user_id: &str, name: &str) -> anyhow::Result<Option<View>> {
    Ok(conn
        .query_row(
            "SELECT id, name, CAST(query_json AS VARCHAR), created_at FROM user_observability_views
             WHERE user_id = ? AND name = ?",
            params![user_id, name],
            from_row,
        )
        .optional()?)
}

/// Creates the view, or replaces the query of the user's view of that name.
pub fn upsert(conn: &Connection, user_id: &str, name: &str, query: &Value) -> anyhow::Result<View> {
    let id = uuid::Uuid::now_v7().to_string();
    conn.execute(
        "INSERT INTO user_observability_views (id, user_id, name, query_json, created_at)
         VALUES (?, ?, ?, ?, now())
         ON CONFLICT (user_id, name) DO UPDATE SET query_json = excluded.query_json",
        params![id, user_id, name, query.to_string()],
    )?;
    by_name(conn, user_id, name)?
        .ok_or_else(|| anyhow::anyhow!("view {name:?} vanished after upsert"))
}

/// Deletes one of the user's views; false when the user has no view of that id.
pub fn delete(conn: &Connection, user_id: &str, id: &str) -> anyhow::Result<bool> {
    let n = conn.execute(
        "DELETE FROM user_observability_views WHERE id = ? AND user_id = ?",
        params![id, user_id],
    )?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use serde_json::json;

    #[test]
    fn views_upsert_by_name_list_newest_first_and_delete_only_the_owners() {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        let a = upsert(&c, "u1", "errors", &json!({"result_class": "error"})).unwrap();
        let b = upsert(&c, "u1", "cli", &json!({"source": "cli"})).unwrap();
        let a2 = upsert(&c, "u1", "errors", &json!({"result_class": "denied"})).unwrap();
        assert_eq!(a.id, a2.id, "same name updates in place");
        assert_eq!(a2.query, json!({"result_class": "denied"}));
        upsert(&c, "u2", "errors", &json!({})).unwrap();
        assert_eq!(count(&c, "u1").unwrap(), 2);
        let names: Vec<_> = list(&c, "u1")
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["cli", "errors"]);
        assert!(!delete(&c, "u2", &b.id).unwrap(), "not u2's view");
        assert!(delete(&c, "u1", &b.id).unwrap());
        assert_eq!(count(&c, "u1").unwrap(), 1);
    }
}
