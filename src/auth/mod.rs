//! Who is asking, and may they?
//!
//! Authorisation always reads the user's *current* role and state (cached here,
//! invalidated on every change), never a token's `scope` claim: a deactivated or
//! demoted user loses the old rights at once, on live sessions and tokens alike.

pub mod csrf;
pub mod extract;
pub mod jwt;
pub mod password;
pub mod session_store;
pub mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::repo::{tokens, users};

pub use extract::{AnyUser, Human, MaybeUser, Principal, Producer, RequireAdmin};

pub const MIN_PASSWORD_LEN: usize = 8;
pub const DEFAULT_TOKEN_DAYS: i64 = 90;
pub const LOGIN_TOKEN_HOURS: i64 = 24;

pub use crate::model::role::Role;

/// A deliberately simple shape check: one `@`, something on both sides, a dot in
/// the domain, no spaces. Deliverability is not glassbox's business.
pub fn valid_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(char::is_whitespace)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What the server remembers about a token between requests.
#[derive(Debug, Clone)]
struct TokenState {
    user_id: String,
    hash: String,
    expires_at: NaiveDateTime,
    revoked: bool,
}

/// Why a bearer token was refused: each maps to a message a person can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("Invalid token: it is not a glassbox token. Create one on your /me page or with `glassbox token create`.")]
    Invalid,
    #[error("Token expired: create a new one on your /me page.")]
    Expired,
    #[error("Token revoked: create a new one on your /me page.")]
    Revoked,
    #[error("Account deactivated: ask an admin to reactivate it.")]
    Deactivated,
}

/// Signing key plus the in-memory caches of users and tokens.
pub struct AuthState {
    secret: Vec<u8>,
    users: RwLock<HashMap<String, Arc<users::User>>>,
    tokens: RwLock<HashMap<String, TokenState>>,
    last_used: Mutex<HashMap<String, NaiveDateTime>>,
    pub throttle: throttle::Throttle,
}

impl AuthState {
    pub fn new(secret: Vec<u8>) -> Self {
        AuthState {
            secret,
            users: RwLock::default(),
            tokens: RwLock::default(),
            last_used: Mutex::default(),
            throttle: throttle::Throttle::default(),
        }
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The user's current record (cached).
    pub async fn user(&self, db: &Db, id: &str) -> anyhow::Result<Option<Arc<users::User>>> {
        if let Some(u) = self.users.read().expect("user cache").get(id) {
            return Ok(Some(u.clone()));
        }
        let id_owned = id.to_string();
        let found = db.run(move |c| users::by_id(c, &id_owned)).await?;
        Ok(found.map(|u| {
            let u = Arc::new(u);
            self.users
                .write()
                .expect("user cache")
                .insert(id.to_string(), u.clone());
            u
        }))
    }

    /// Forget a user after any change to them (role, state, name).
    pub fn invalidate_user(&self, id: &str) {
        self.users.write().expect("user cache").remove(id);
    }

    /// Forget a token after revocation.
    pub fn invalidate_token(&self, jti: &str) {
        self.tokens.write().expect("token cache").remove(jti);
    }

    /// Verifies a bearer token against its signature, expiry, revocation, stored
    /// hash and the user's current state, and notes its use for the next flush.
    pub async fn verify_token(
        &self,
        db: &Db,
        token: &str,
    ) -> Result<Arc<users::User>, TokenVerifyError> {
        let now = Utc::now();
        let claims = jwt::verify(&self.secret, token, now.timestamp()).map_err(|e| match e {
            jwt::JwtError::Expired => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        let cached = self
            .tokens
            .read()
            .expect("token cache")
            .get(&claims.jti)
            .cloned();
        let state = match cached {
            Some(s) => s,
            None => {
                let jti = claims.jti.clone();
                let Some((row, hash)) = db.run(move |c| tokens::get(c, &jti)).await? else {
                    return Err(TokenError::Invalid.into());
                };
                let s = TokenState {
                    user_id: row.user_id,
                    hash,
                    expires_at: row.expires_at,
                    revoked: row.revoked_at.is_some(),
                };
                self.tokens
                    .write()
                    .expect("token cache")
                    .insert(claims.jti.clone(), s.clone());
                s
            }
        };
        if state.hash != token_hash(token) || state.user_id != claims.sub {
            return Err(TokenError::Invalid.into());
        }
        if state.revoked {
            return Err(TokenError::Revoked.into());
        }
        if state.expires_at <= now.naive_utc() {
            return Err(TokenError::Expired.into());
        }
        let user = self
            .user(db, &state.user_id)
            .await?
            .ok_or(TokenError::Invalid)?;
        if !user.active {
            return Err(TokenError::Deactivated.into());
        }
        self.last_used
            .lock()
            .expect("last-used buffer")
            .insert(claims.jti, now.naive_utc());
        Ok(user)
    }

    /// Writes the buffered `last_used_at` values (called every 30 s and at shutdown).
    pub async fn flush_last_used(&self, db: &Db) -> anyhow::Result<usize> {
        let batch: Vec<(String, NaiveDateTime)> =
            std::mem::take(&mut *self.last_used.lock().expect("last-used buffer"))
                .into_iter()
                .collect();
        let n = batch.len();
        if n > 0 {
            db.run(move |c| tokens::touch_last_used(c, &batch)).await?;
        }
        Ok(n)
    }
}

/// A token refusal, or a failure to check it at all.
#[derive(Debug, thiserror::Error)]
pub enum TokenVerifyError {
    #[error(transparent)]
    Refused(#[from] TokenError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Reads `GLASSBOX_JWT_SECRET`, or the key generated once into the data dir.
pub fn load_or_create_secret(
    configured: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    if let Some(s) = configured {
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let s = existing.trim();
        if s.len() >= 32 {
            return Ok(s.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("while creating {}", data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let tmp = data_dir.join("jwt_secret.tmp");
    std::fs::write(&tmp, &secret).with_context(|| format!("while writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("while writing {}", path.display()))?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        for ok in ["a@example.com", "first.last+tag@sub.example.org"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@example.com.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn the_secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_secret(None, dir.path()).unwrap();
        let b = load_or_create_secret(None, dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(
            load_or_create_secret(Some("x".repeat(40).as_str()), dir.path()).unwrap(),
            "x".repeat(40).into_bytes()
        );
    }
}
