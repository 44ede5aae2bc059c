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

/// A bearer string that has passed the signature and stored-hash checks once:
/// what its claims say. Revocation, expiry and the user's state are still
/// checked on every request (the token and user caches are invalidated on
/// change); only the HMAC, the decoding and the hash are not redone.
#[derive(Debug)]
struct Verified {
    jti: String,
    sub: String,
    exp: i64,
}

/// Most bearer strings [`AuthState`] remembers as verified; past it the
/// memory starts over (a token never seen again costs nothing to forget).
const MAX_VERIFIED: usize = 4096;

/// Signing key plus the in-memory caches of users and tokens.
pub struct AuthState {
    secret: Vec<u8>,
    users: RwLock<HashMap<String, Arc<users::User>>>,
    tokens: RwLock<HashMap<String, TokenState>>,
    verified: RwLock<HashMap<String, Arc<Verified>>>,
    last_used: Mutex<HashMap<String, NaiveDateTime>>,
    pub throttle: throttle::Throttle,
}

impl AuthState {
    pub fn new(secret: Vec<u8>) -> Self {
        AuthState {
            secret,
            users: RwLock::default(),
            tokens: RwLock::default(),
            verified: RwLock::default(),
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
    /// A bearer string seen before skips the signature and hash (see
    /// [`Verified`]); revocation, expiry and the user are checked every time.
    pub async fn verify_token(
        &self,
        db: &Db,
        token: &str,
    ) -> Result<Arc<users::User>, TokenVerifyError> {
        let now = Utc::now();
        let known = self
            .verified
            .read()
            .expect("verified tokens")
            .get(token)
            .cloned();
        let fresh = known.is_none();
        let claims = match known {
            Some(v) => {
                if v.exp <= now.timestamp() {
                    return Err(TokenError::Expired.into());
                }
                v
            }
            None => {
                let c = jwt::verify(&self.secret, token, now.timestamp()).map_err(|e| match e {
                    jwt::JwtError::Expired => TokenError::Expired,
                    _ => TokenError::Invalid,
                })?;
                Arc::new(Verified {
                    jti: c.jti,
                    sub: c.sub,
                    exp: c.exp,
                })
            }
        };
        let cached = self
            .tokens
            .read()
            .expect("token cache")
            .get(&claims.jti)
            .map(|s| check_token(s, &claims, fresh.then_some(token), now));
        let checked = match cached {
            Some(r) => r,
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
                let r = check_token(&s, &claims, fresh.then_some(token), now);
                self.tokens
                    .write()
                    .expect("token cache")
                    .insert(claims.jti.clone(), s);
                r
            }
        };
        checked?;
        let user = self
            .user(db, &claims.sub)
            .await?
            .ok_or(TokenError::Invalid)?;
        if !user.active {
            return Err(TokenError::Deactivated.into());
        }
        if fresh {
            let mut verified = self.verified.write().expect("verified tokens");
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(token.to_string(), claims.clone());
        }
        let now = now.naive_utc();
        let mut last_used = self.last_used.lock().expect("last-used buffer");
        match last_used.get_mut(&claims.jti) {
            Some(t) => *t = now,
            None => {
                last_used.insert(claims.jti.clone(), now);
            }
        }
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

/// The stored token against the presented one: `token` is the bearer string
/// when it has not been verified before (its hash is compared then).
fn check_token(
    s: &TokenState,
    claims: &Verified,
    token: Option<&str>,
    now: chrono::DateTime<Utc>,
) -> Result<(), TokenError> {
    if token.is_some_and(|t| s.hash != token_hash(t)) || s.user_id != claims.sub {
        return Err(TokenError::Invalid);
    }
    if s.revoked {
        return Err(TokenError::Revoked);
    }
    if s.expires_at <= now.naive_utc() {
        return Err(TokenError::Expired);
    }
    Ok(())
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
