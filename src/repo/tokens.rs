//! The `personal_access_tokens` table: ids (the JWT `jti`) and hashes, never tokens.

use chrono::NaiveDateTime;
use duckdb::{params, Connection, OptionalExt, Row};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl TokenRow {
    pub fn is_active(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A token as APIs and pages show it (never its text, except once on creation).
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub kind: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub active: bool,
}

fn iso(t: chrono::NaiveDateTime) -> String {
    t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl From<&TokenRow> for TokenView {
    fn from(t: &TokenRow) -> Self {
        TokenView {
            id: t.id.clone(),
            user_id: t.user_id.clone(),
            name: t.name.clone(),
            kind: t.kind.clone(),
            created_at: iso(t.created_at),
            expires_at: iso(t.expires_at),
            last_used_at: t.last_used_at.map(iso),
            revoked_at: t.revoked_at.map(iso),
            active: t.is_active(chrono::Utc::now().naive_utc()),
        }
    }
}

const COLUMNS: &str = "id, user_id, name, kind, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &Row<'_>) -> duckdb::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

pub fn insert(
    conn: &Connection,
    t: &TokenRow,
    token_hash: &str,
    created_by: Option<&str>,
) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO personal_access_tokens (id, user_id, name, kind, token_hash, created_at, created_by, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![t.id, t.user_id, t.name, t.kind, token_hash, t.created_at, created_by, t.expires_at],
    )?;
    Ok(())
}

/// The token row and its stored hash.
pub fn get(conn: &Connection, id: &str) -> anyhow::Result<Option<(TokenRow, String)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS}, token_hash FROM personal_access_tokens WHERE id = ?"),
            params![id],
            |r| Ok((from_row(r)?, r.get(8)?)),
        )
        .optional()?)
}

/// Tokens of one user (or all users), newest first. Login tokens from
/// `/auth/token` are listed too: they are revocable like any other.
pub fn list(conn: &Connection, user_id: Option<&str>) -> anyhow::Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM personal_access_tokens WHERE (? IS NULL OR user_id = ?) ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt
        .query_map(params![user_id, user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks a token revoked. False when it does not exist or was already revoked.
pub fn revoke(conn: &Connection, id: &str, by: Option<&str>) -> anyhow::Result<bool> {
    let n = conn.execute(
        "UPDATE personal_access_tokens SET revoked_at = now(), revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        params![by, id],
    )?;
    Ok(n > 0)
}

/// Writes a batch of `last_used_at` values (collected in memory between flushes).
pub fn touch_last_used(
    conn: &mut Connection,
    used: &[(String, NaiveDateTime)],
) -> anyhow::Result<()> {
    if used.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "UPDATE personal_access_tokens SET last_used_at = greatest(coalesce(last_used_at, ?), ?) WHERE id = ?",
        )?;
        for (id, at) in used {
            stmt.execute(params![at, at, id])?;
        }
    }
    tx.commit()?;
    Ok(())
}
