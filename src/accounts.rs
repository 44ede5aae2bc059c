//! Account operations shared by the HTTP APIs, the pages and the offline CLI:
//! validation lives here once, SQL stays in `repo/`.

use chrono::{Duration, NaiveDateTime, Utc};
use duckdb::Connection;

use crate::auth::{self, jwt, password, Role};
use crate::repo::tokens::{self, TokenRow};
use crate::repo::users::{self, NewUser, User, UserPatch};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<AccountError> for crate::error::AppError {
    fn from(e: AccountError) -> Self {
        use crate::error::AppError;
        match e {
            AccountError::Invalid(m) => AppError::Unprocessable(m),
            AccountError::Conflict(m) => AppError::Conflict(m),
            AccountError::NotFound(m) => AppError::NotFound(m),
            AccountError::Internal(e) => AppError::Internal(e),
        }
    }
}

pub struct CreateUser {
    pub email: String,
    pub name: Option<String>,
    pub password: Option<String>,
    pub role: Role,
}

pub fn check_password(pw: &str) -> Result<(), AccountError> {
    if pw.chars().count() < auth::MIN_PASSWORD_LEN {
        return Err(AccountError::Invalid(format!(
            "password: must be at least {} characters",
            auth::MIN_PASSWORD_LEN
        )));
    }
    if pw.len() > 1024 {
        return Err(AccountError::Invalid(
            "password: must be at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

pub fn create_user(conn: &Connection, input: CreateUser) -> Result<User, AccountError> {
    let email = input.email.trim().to_string();
    if !auth::valid_email(&email) {
        return Err(AccountError::Invalid(format!(
            "email: {email:?} is not an email address"
        )));
    }
    let name = input
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(AccountError::Invalid(
            "name: must be at most 200 characters".into(),
        ));
    }
    let hash = match (&input.password, input.role) {
        (Some(_), Role::Service) => {
            return Err(AccountError::Invalid(
                "password: service accounts cannot sign in; give them tokens instead".into(),
            ))
        }
        (Some(pw), _) => {
            check_password(pw)?;
            Some(password::hash(pw)?)
        }
        (None, _) => None,
    };
    if users::email_taken(conn, &email)? {
        return Err(AccountError::Conflict(format!(
            "email: a user with {email} already exists"
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    Ok(users::insert(
        conn,
        &NewUser {
            id: &id,
            email: &email,
            name: name.as_deref(),
            role: input.role,
            password_hash: hash.as_deref(),
        },
    )?)
}

/// The changes an admin may make to a user.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

/// Applies an update, refusing any change that would leave no active admin.
pub fn update_user(
    conn: &Connection,
    id: &str,
    input: UpdateUser,
    by: Option<&str>,
) -> Result<User, AccountError> {
    let current =
        users::by_id(conn, id)?.ok_or_else(|| AccountError::NotFound("user not found".into()))?;
    let loses_admin = current.role == Role::Admin
        && current.active
        && (input.role.is_some_and(|r| r != Role::Admin) || input.active == Some(false));
    if loses_admin && users::count_active_admins(conn)? <= 1 {
        return Err(AccountError::Conflict(
            "this is the last active admin: make another admin first".into(),
        ));
    }
    let password_hash = match &input.password {
        Some(pw) => {
            if input.role.unwrap_or(current.role) == Role::Service {
                return Err(AccountError::Invalid(
                    "password: service accounts cannot sign in; give them tokens instead".into(),
                ));
            }
            check_password(pw)?;
            Some(password::hash(pw)?)
        }
        None => None,
    };
    let name = match input.name {
        Some(n) if n.chars().count() > 200 => {
            return Err(AccountError::Invalid(
                "name: must be at most 200 characters".into(),
            ))
        }
        other => other.map(|n| n.trim().to_string()),
    };
    let patch = UserPatch {
        name,
        role: input.role,
        active: input.active,
        password_hash,
    };
    let user = users::update(conn, id, &patch, by)?
        .ok_or_else(|| AccountError::NotFound("user not found".into()))?;
    if input.active == Some(false) || input.role.is_some() || patch.password_hash.is_some() {
        // Browser sessions hold only the user id, but signing the user out
        // everywhere is what an admin means by "deactivate" or "reset password".
        crate::repo::web_sessions::delete_for_user(conn, id)?;
    }
    Ok(user)
}

/// A freshly issued token: the only moment its text exists outside the client.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub row: TokenRow,
}

pub fn validate_token_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AccountError::Invalid(
            "name: give the token a name (e.g. \"laptop\")".into(),
        ));
    }
    if name.chars().count() > 80 {
        return Err(AccountError::Invalid(
            "name: must be at most 80 characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// Issues a signed token for `user`, storing only its id and hash.
pub fn issue_token(
    conn: &Connection,
    secret: &[u8],
    user: &User,
    name: &str,
    kind: &str,
    lifetime: Duration,
    created_by: Option<&str>,
) -> Result<IssuedToken, AccountError> {
    let name = validate_token_name(name)?;
    if lifetime <= Duration::zero() || lifetime > Duration::days(3650) {
        return Err(AccountError::Invalid(
            "days: must be between 1 and 3650".into(),
        ));
    }
    let now: NaiveDateTime = Utc::now().naive_utc();
    // Whole seconds: the JWT's iat/exp and the stored times must agree exactly.
    let now = now.and_utc().timestamp();
    let exp = now + lifetime.num_seconds();
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = jwt::Claims {
        sub: user.id.clone(),
        email: user.email.clone(),
        typ: "pat".into(),
        iat: now,
        jti: jti.clone(),
        exp,
        scope: user.role.as_str().into(),
    };
    let token = jwt::sign(secret, &claims);
    let at = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .expect("valid time")
            .naive_utc()
    };
    let row = TokenRow {
        id: jti,
        user_id: user.id.clone(),
        name,
        kind: kind.into(),
        created_at: at(now),
        expires_at: at(exp),
        last_used_at: None,
        revoked_at: None,
    };
    tokens::insert(conn, &row, &auth::token_hash(&token), created_by)?;
    Ok(IssuedToken { token, row })
}

/// Checks email + password. `Ok(None)` for any mismatch (unknown user, wrong
/// password, no password, service account) so callers answer all alike.
pub fn check_credentials(conn: &Connection, email: &str, pw: &str) -> anyhow::Result<Option<User>> {
    let found = users::by_email_with_hash(conn, email)?;
    let (user, hash) = match found {
        Some((u, Some(h))) if u.role != Role::Service => (Some(u), h),
        _ => (None, password::dummy_hash().to_string()),
    };
    let ok = password::verify(pw, &hash);
    Ok(user.filter(|_| ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn setup() -> (Db, Connection) {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        (db, c)
    }

    fn admin(c: &Connection, email: &str) -> User {
        create_user(
            c,
            CreateUser {
                email: email.into(),
                name: None,
                password: Some("password-1".into()),
                role: Role::Admin,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_last_active_admin_cannot_be_demoted_or_deactivated() {
        let (_db, c) = setup();
        let a = admin(&c, "a@example.com");
        for input in [
            UpdateUser {
                role: Some(Role::Analyst),
                ..Default::default()
            },
            UpdateUser {
                active: Some(false),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                update_user(&c, &a.id, input, None),
                Err(AccountError::Conflict(_))
            ));
        }
        admin(&c, "b@example.com");
        let u = update_user(
            &c,
            &a.id,
            UpdateUser {
                active: Some(false),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert!(!u.active && u.deactivated_at.is_some());
    }

    #[test]
    fn duplicate_emails_bad_emails_and_short_passwords_are_refused() {
        let (_db, c) = setup();
        admin(&c, "a@example.com");
        let dup = create_user(
            &c,
            CreateUser {
                email: "A@example.com".into(),
                name: None,
                password: None,
                role: Role::Analyst,
            },
        );
        assert!(matches!(dup, Err(AccountError::Conflict(_))));
        let bad = create_user(
            &c,
            CreateUser {
                email: "nope".into(),
                name: None,
                password: None,
                role: Role::Analyst,
            },
        );
        assert!(matches!(bad, Err(AccountError::Invalid(m)) if m.starts_with("email")));
        let short = create_user(
            &c,
            CreateUser {
                email: "s@example.com".into(),
                name: None,
                password: Some("x".into()),
                role: Role::Analyst,
            },
        );
        assert!(matches!(short, Err(AccountError::Invalid(m)) if m.starts_with("password")));
    }

    #[test]
    fn credentials_match_only_the_right_password_of_a_person() {
        let (_db, c) = setup();
        admin(&c, "a@example.com");
        assert!(check_credentials(&c, "A@Example.com", "password-1")
            .unwrap()
            .is_some());
        assert!(check_credentials(&c, "a@example.com", "wrong-pass")
            .unwrap()
            .is_none());
        assert!(check_credentials(&c, "ghost@example.com", "password-1")
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_issued_token_stores_its_hash_not_its_text() {
        let (_db, c) = setup();
        let a = admin(&c, "a@example.com");
        let t = issue_token(
            &c,
            b"k".repeat(32).as_slice(),
            &a,
            "laptop",
            "pat",
            Duration::days(90),
            None,
        )
        .unwrap();
        let (row, hash) = tokens::get(&c, &t.row.id).unwrap().unwrap();
        assert_eq!(hash, auth::token_hash(&t.token));
        assert_ne!(hash, t.token);
        assert_eq!((row.expires_at - row.created_at).num_days(), 90);
        let stored: i64 = c
            .query_row(
                "SELECT count(*) FROM personal_access_tokens WHERE token_hash LIKE '%' || ? || '%'",
                [&t.token],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0);
    }
}
