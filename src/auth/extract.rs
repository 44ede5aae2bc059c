//! Extractors that state a handler's audience in its signature.
//!
//! The `authenticate` middleware (web/middleware.rs) puts the [`Principal`] — or
//! the reason credentials were refused — into the request's extensions; these
//! extractors only read it, so they need no state.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Role;
use crate::error::AppError;
use crate::repo::users::User;

/// How the request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    Token,
}

/// The signed-in user of this request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<User>,
    pub via: Via,
}

impl Principal {
    pub fn id(&self) -> &str {
        &self.user.id
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// `cli` for token requests, `web` for the browser (SPEC §1).
    pub fn client_kind(&self) -> &'static str {
        match self.via {
            Via::Session => "web",
            Via::Token => "cli",
        }
    }
}

/// Credentials were presented but refused; the message says why.
#[derive(Debug, Clone)]
pub struct AuthFailure(pub String);

fn principal(parts: &Parts) -> Result<Principal, AppError> {
    if let Some(p) = parts.extensions.get::<Principal>() {
        return Ok(p.clone());
    }
    Err(match parts.extensions.get::<AuthFailure>() {
        Some(f) => AppError::Unauthorized(f.0.clone()),
        None => AppError::unauthorized(),
    })
}

/// The principal when there is one (pages that work signed in or not).
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeUser(parts.extensions.get::<Principal>().cloned()))
    }
}

macro_rules! audience {
    ($(#[$doc:meta])* $name:ident, $allowed:expr, $denied:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = AppError;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                let p = principal(parts)?;
                let allowed: &[Role] = $allowed;
                if allowed.contains(&p.role()) {
                    Ok($name(p))
                } else {
                    Err(AppError::Forbidden($denied.into()))
                }
            }
        }

        impl std::ops::Deref for $name {
            type Target = Principal;
            fn deref(&self) -> &Principal {
                &self.0
            }
        }
    };
}

audience!(
    /// Admins only.
    RequireAdmin,
    &[Role::Admin],
    "Admin access required"
);
audience!(
    /// People (admins and analysts): service accounts are machines.
    Human,
    &[Role::Admin, Role::Analyst],
    "Service accounts cannot use this; it is for people (admins and analysts)"
);
audience!(
    /// Producers: service tokens, and admins.
    Producer,
    &[Role::Admin, Role::Service],
    "Only service accounts and admins may send producer events"
);
audience!(
    /// Anyone signed in, whatever the role.
    AnyUser,
    &[Role::Admin, Role::Analyst, Role::Service],
    "Forbidden"
);
