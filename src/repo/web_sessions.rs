//! The `web_sessions` table behind tower-sessions, so a restart signs nobody out.

use chrono::NaiveDateTime;
use duckdb::{params, Connection, OptionalExt};

/// Inserts a new record; false when the id already exists (the caller retries).
pub fn create(
    conn: &Connection,
    id: &str,
    data: &str,
    expiry: NaiveDateTime,
) -> anyhow::Result<bool> {
    let n = conn.execute(
        "INSERT INTO web_sessions (id, data, expiry_date) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        params![id, data, expiry],
    )?;
    Ok(n == 1)
}

pub fn save(conn: &Connection, id: &str, data: &str, expiry: NaiveDateTime) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO web_sessions (id, data, expiry_date) VALUES (?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
        params![id, data, expiry],
    )?;
    Ok(())
}

/// The record's data when it exists and has not expired.
pub fn load(
    conn: &Connection,
    id: &str,
    now: NaiveDateTime,
) -> anyhow::Result<Option<(String, NaiveDateTime)>> {
    Ok(conn
        .query_row(
            "SELECT data, expiry_date FROM web_sessions WHERE id = ? AND expiry_date > ?",
            params![id, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn delete(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM web_sessions WHERE id = ?", params![id])?;
    Ok(())
}

/// Removes expired records; returns how many.
pub fn delete_expired(conn: &Connection, now: NaiveDateTime) -> anyhow::Result<usize> {
    Ok(conn.execute(
        "DELETE FROM web_sessions WHERE expiry_date <= ?",
        params![now],
    )?)
}

/// Every session of one user (their ids), for sign-out on deactivation.
pub fn delete_for_user(conn: &Connection, user_id: &str) -> anyhow::Result<usize> {
    Ok(conn.execute(
        "DELETE FROM web_sessions WHERE json_extract_string(data, '$.user_id') = ?",
        params![user_id],
    )?)
}
