//! HS256 JSON Web Tokens shaped like Agnes's personal access tokens, so that
//! Agnes's CLI can decode `email` and `exp` (reference/agnes-cli.md §2).
//!
//! Hand-rolled on hmac + sha2: only one algorithm is accepted, so there is no
//! `alg` confusion to defend against and no extra dependency tree.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub email: String,
    /// Always "pat" (what Agnes's CLI expects).
    pub typ: String,
    pub iat: i64,
    /// The token id: the only identifier the server stores (with a hash).
    pub jti: String,
    pub exp: i64,
    /// The role when issued. Informational only: authorisation reads the user's
    /// current role, never this claim.
    pub scope: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is not a valid glassbox token")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token expired; create a new one")]
    Expired,
}

pub fn sign(secret: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Checks the signature (in constant time), the algorithm and the expiry.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(|v| v.as_str()) != Some("HS256") {
        return Err(JwtError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&sig).map_err(|_| JwtError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            email: "a@example.com".into(),
            typ: "pat".into(),
            iat: 100,
            jti: "j1".into(),
            exp,
            scope: "admin".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        let t = sign(b"secret-secret-secret-secret-1234", &claims(1000));
        assert_eq!(
            verify(b"secret-secret-secret-secret-1234", &t, 500).unwrap(),
            claims(1000)
        );
    }

    #[test]
    fn tampering_a_wrong_key_expiry_and_garbage_are_rejected() {
        let key = b"secret-secret-secret-secret-1234";
        let t = sign(key, &claims(1000));
        assert_eq!(
            verify(b"another-key-another-key-another!!", &t, 500),
            Err(JwtError::BadSignature)
        );
        assert_eq!(verify(key, &t, 1000), Err(JwtError::Expired));
        let mut forged = claims(9999);
        forged.scope = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verify(key, &tampered, 500), Err(JwtError::BadSignature));
        for junk in ["", "a.b", "a.b.c.d", "!!!.###.$$$"] {
            assert_eq!(verify(key, junk, 500), Err(JwtError::Malformed), "{junk}");
        }
        // alg=none is never accepted.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(verify(key, &none, 500), Err(JwtError::Malformed));
    }
}
