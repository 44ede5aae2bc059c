//! CSRF tokens: one random token per browser session, rendered into every page as
//! `<meta name="csrf-token">` and sent back by htmx as `X-CSRF-Token` (or by a
//! plain form as the `csrf_token` field).

use tower_sessions::Session;

pub const SESSION_KEY: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";
pub const FORM_FIELD: &str = "csrf_token";

/// The session's token, created on first use.
pub async fn token(session: &Session) -> anyhow::Result<String> {
    if let Some(t) = session.get::<String>(SESSION_KEY).await? {
        return Ok(t);
    }
    let t = hex::encode(rand::random::<[u8; 32]>());
    session.insert(SESSION_KEY, &t).await?;
    Ok(t)
}

/// Constant-time comparison of the sent token with the session's.
pub fn matches(expected: &str, sent: &str) -> bool {
    use subtle_eq::ct_eq;
    ct_eq(expected.as_bytes(), sent.as_bytes())
}

mod subtle_eq {
    /// Equal-length byte strings compared without an early exit.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn comparison_is_exact() {
        assert!(super::matches("abc", "abc"));
        assert!(!super::matches("abc", "abd"));
        assert!(!super::matches("abc", "ab"));
        assert!(!super::matches("", "x"));
    }
}
