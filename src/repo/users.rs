//! The `users` table.

use chrono::NaiveDateTime;
use duckdb::{params, Connection, OptionalExt, Row};
use serde::Serialize;

use crate::model::Role;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub active: bool,
    pub created_at: Option<NaiveDateTime>,
    pub deactivated_at: Option<NaiveDateTime>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// A display label: the name when set, else the email.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.email)
    }
}

const COLUMNS: &str = "id, email, name, role, active, created_at, deactivated_at";

fn from_row(r: &Row<'_>) -> duckdb::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: role.parse().unwrap_or(Role::Analyst),
        active: r.get(4)?,
        created_at: r.get(5)?,
        deactivated_at: r.get(6)?,
    })
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: Role,
    pub password_hash: Option<&'a str>,
}

pub fn insert(conn: &Connection, u: &NewUser<'_>) -> anyhow::Result<User> {
    conn.execute(
        "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, now(), now())",
        params![u.id, u.email, u.name, u.role.as_str(), u.password_hash],
    )?;
    by_id(conn, u.id)?.ok_or_else(|| anyhow::anyhow!("user {} vanished after insert", u.id))
}

pub fn by_id(conn: &Connection, id: &str) -> anyhow::Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?"),
            params![id],
            from_row,
        )
        .optional()?)
}

/// The user and their password hash, matched case-insensitively on email.
pub fn by_email_with_hash(
    conn: &Connection,
    email: &str,
) -> anyhow::Result<Option<(User, Option<String>)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS}, password_hash FROM users WHERE lower(email) = lower(?)"),
            params![email.trim()],
            |r| Ok((from_row(r)?, r.get(7)?)),
        )
        .optional()?)
}

pub fn by_email(conn: &Connection, email: &str) -> anyhow::Result<Option<User>> {
    Ok(by_email_with_hash(conn, email)?.map(|(u, _)| u))
}

pub fn email_taken(conn: &Connection, email: &str) -> anyhow::Result<bool> {
    Ok(by_email(conn, email)?.is_some())
}

/// A user as the admin list shows them.
#[derive(Debug, Clone, Serialize)]
pub struct UserListRow {
    #[serde(flatten)]
    pub user: User,
    pub last_activity_at: Option<NaiveDateTime>,
    pub active_tokens: i64,
    pub sessions: i64,
    /// LLM tokens (input, output, cache writes and reads) of the last 30 days.
    pub tokens_30d: i64,
    pub cost_usd_30d: f64,
}

/// A user's LLM tokens and cost today (UTC) and over the last 30 days.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenTotals {
    pub tokens_today: i64,
    pub cost_usd_today: f64,
    pub tokens_30d: i64,
    pub cost_usd_30d: f64,
}

/// Counted responses only: a response repeated in two files counts once, as in
/// every other token figure.
const TOKENS_30D: &str = "SELECT user_id,
        sum(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)::BIGINT AS tokens,
        sum(cost_usd) AS cost,
        sum(CASE WHEN first_ts >= current_date::TIMESTAMP
            THEN input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens ELSE 0 END)::BIGINT AS tokens_today,
        sum(CASE WHEN first_ts >= current_date::TIMESTAMP THEN cost_usd ELSE 0 END) AS cost_today
    FROM usage_responses
    WHERE counted AND user_id IS NOT NULL AND first_ts >= current_date::TIMESTAMP - INTERVAL 29 DAY
    GROUP BY user_id";

pub fn token_totals(conn: &Connection, user_id: &str) -> anyhow::Result<TokenTotals> {
    let sql = format!(
        "SELECT tokens_today, cost_today, tokens, cost FROM ({TOKENS_30D}) WHERE user_id = ?"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([user_id])?;
    let Some(r) = rows.next()? else {
        return Ok(TokenTotals::default());
    };
    Ok(TokenTotals {
        tokens_today: r.get(0)?,
        cost_usd_today: r.get(1)?,
        tokens_30d: r.get(2)?,
        cost_usd_30d: r.get(3)?,
    })
}

pub fn list(conn: &Connection) -> anyhow::Result<Vec<UserListRow>> {
    // Last activity comes from the audit log; bounded to 90 days so the list stays
    // cheap on a large log (older activity shows as none).
    let sql = format!(
        "WITH last AS (
            SELECT user_id, max(timestamp) AS at FROM audit_log
            WHERE timestamp >= now()::TIMESTAMP - INTERVAL 90 DAY AND user_id IS NOT NULL
            GROUP BY user_id),
         toks AS (
            SELECT user_id, count(*) AS n FROM personal_access_tokens
            WHERE revoked_at IS NULL AND expires_at > now()::TIMESTAMP GROUP BY user_id),
         sess AS (
            SELECT user_id, count(*) AS n FROM usage_session_summary WHERE user_id IS NOT NULL GROUP BY user_id),
         llm AS ({TOKENS_30D})
         SELECT {cols}, last.at, coalesce(toks.n, 0), coalesce(sess.n, 0),
            coalesce(llm.tokens, 0), coalesce(llm.cost, 0)
         FROM users u
         LEFT JOIN last ON last.user_id = u.id
         LEFT JOIN toks ON toks.user_id = u.id
         LEFT JOIN sess ON sess.user_id = u.id
         LEFT JOIN llm ON llm.user_id = u.id
         ORDER BY u.active DESC, lower(u.email)",
        cols = COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(UserListRow {
                user: from_row(r)?,
                last_activity_at: r.get(7)?,
                active_tokens: r.get(8)?,
                sessions: r.get(9)?,
                tokens_30d: r.get(10)?,
                cost_usd_30d: r.get(11)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// (id, email) of every user, newest first: the directory mapping of ingest
/// prefers the newest user with a given email local-part.
pub fn for_dir_mapping(conn: &Connection) -> anyhow::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT id, email FROM users ORDER BY coalesce(updated_at, created_at) DESC NULLS LAST, id",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// `id → email` of every user (labels for per-user figures).
pub fn emails(conn: &Connection) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut stmt = conn.prepare("SELECT id, email FROM users")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn count(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn count_active_admins(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND active",
        [],
        |r| r.get(0),
    )?)
}

/// Changes to one user; `None` fields stay as they are.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
}

pub fn update(
    conn: &Connection,
    id: &str,
    patch: &UserPatch,
    by: Option<&str>,
) -> anyhow::Result<Option<User>> {
    if let Some(name) = &patch.name {
        conn.execute(
            "UPDATE users SET name = ?, updated_at = now() WHERE id = ?",
            params![name, id],
        )?;
    }
    if let Some(role) = patch.role {
        conn.execute(
            "UPDATE users SET role = ?, updated_at = now() WHERE id = ?",
            params![role.as_str(), id],
        )?;
    }
    if let Some(active) = patch.active {
        if active {
            conn.execute(
                "UPDATE users SET active = TRUE, deactivated_at = NULL, deactivated_by = NULL, updated_at = now() WHERE id = ?",
                params![id],
            )?;
        } else {
            conn.execute(
                "UPDATE users SET active = FALSE, deactivated_at = now(), deactivated_by = ?, updated_at = now() WHERE id = ? AND active",
                params![by, id],
            )?;
        }
    }
    if let Some(hash) = &patch.password_hash {
        conn.execute(
            "UPDATE users SET password_hash = ?, updated_at = now() WHERE id = ?",
            params![hash, id],
        )?;
    }
    by_id(conn, id)
}

/// Lower-cased email → id for the given lower-cased emails that belong to users.
pub fn ids_by_emails(
    conn: &Connection,
    emails: &[String],
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for chunk in emails.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT lower(email), id FROM users WHERE lower(email) IN ({marks})");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(duckdb::params_from_iter(chunk.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for r in rows {
            let (email, id) = r?;
            out.insert(email, id);
        }
    }
    Ok(out)
}
