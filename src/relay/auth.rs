//! Handshake authentication: a shared token or an HS256 JWT in the client's `auth` payload.
//!
//! Clients send it as Node apps do: `io(url, { auth: { token } })`. A refusal reaches the
//! client as `connect_error` with a message saying why; it never hangs.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// How connecting clients prove who they are.
#[derive(Clone, Default)]
pub enum Authenticator {
    /// Everyone may connect.
    #[default]
    Open,
    /// The client must present this exact token.
    SharedToken(Arc<[u8]>),
    /// The client must present an HS256 JWT signed with this secret; its `sub` is the user id.
    Jwt(Arc<DecodingKey>),
}

// Secrets must never reach logs, so Debug names the mode only.
impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Authenticator::Open => "Open",
            Authenticator::SharedToken(_) => "SharedToken(***)",
            Authenticator::Jwt(_) => "Jwt(***)",
        })
    }
}

/// Why a handshake was refused; the text is what the client reads in `connect_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `auth.token` in the handshake.
    #[error("unauthorized: token missing")]
    Missing,
    /// The JWT's `exp` has passed.
    #[error("unauthorized: token expired")]
    Expired,
    /// Wrong shared token, bad signature or malformed JWT.
    #[error("unauthorized: invalid token")]
    Invalid,
}

/// The authenticated user of a client (the JWT `sub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(pub String);

#[derive(Deserialize)]
struct HandshakeAuth {
    token: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

impl Authenticator {
    /// Builds the authenticator from the `--auth-token` / `--auth-secret` values.
    pub fn new(shared_token: Option<&str>, jwt_secret: Option<&str>) -> Self {
        match (shared_token, jwt_secret) {
            (_, Some(secret)) => {
                Authenticator::Jwt(Arc::new(DecodingKey::from_secret(secret.as_bytes())))
            }
            (Some(token), None) => Authenticator::SharedToken(token.as_bytes().into()),
            (None, None) => Authenticator::Open,
        }
    }

    /// Checks the handshake `auth` payload; `Ok(Some(user))` for a JWT with a `sub`.
    pub fn verify(&self, auth: &serde_json::Value) -> Result<Option<UserId>, AuthError> {
        if matches!(self, Authenticator::Open) {
            return Ok(None);
        }
        let token = serde_json::from_value::<HandshakeAuth>(auth.clone())
            .ok()
            .and_then(|auth| auth.token)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        match self {
            Authenticator::Open => Ok(None),
            Authenticator::SharedToken(expected) => {
                if bool::from(token.as_bytes().ct_eq(expected)) {
                    Ok(None)
                } else {
                    Err(AuthError::Invalid)
                }
            }
            Authenticator::Jwt(key) => {
                let validation = Validation::new(Algorithm::HS256);
                match jsonwebtoken::decode::<Claims>(&token, key, &validation) {
                    Ok(data) => Ok(data.claims.sub.map(UserId)),
                    Err(error) if matches!(error.kind(), ErrorKind::ExpiredSignature) => {
                        Err(AuthError::Expired)
                    }
                    Err(_) => Err(AuthError::Invalid),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn jwt(secret: &str, sub: &str, exp_offset: i64) -> String {
        let exp = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH))
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            + exp_offset;
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({ "sub": sub, "exp": exp }),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    #[test]
    fn open_lets_everyone_in() {
        assert_eq!(Authenticator::Open.verify(&json!({})), Ok(None));
    }

    #[test]
    fn shared_token_must_match_exactly() {
        let auth = Authenticator::new(Some("s3cret"), None);
        assert_eq!(auth.verify(&json!({ "token": "s3cret" })), Ok(None));
        assert_eq!(
            auth.verify(&json!({ "token": "s3cre" })),
            Err(AuthError::Invalid)
        );
        assert_eq!(auth.verify(&json!({})), Err(AuthError::Missing));
        assert_eq!(
            auth.verify(&json!({ "token": "" })),
            Err(AuthError::Missing)
        );
        assert_eq!(auth.verify(&json!("s3cret")), Err(AuthError::Missing));
    }

    #[test]
    fn jwt_gives_the_user_and_names_each_failure() {
        let auth = Authenticator::new(None, Some("key"));
        let good = jwt("key", "alice", 600);
        assert_eq!(
            auth.verify(&json!({ "token": good })),
            Ok(Some(UserId("alice".into())))
        );
        let expired = jwt("key", "alice", -600);
        assert_eq!(
            auth.verify(&json!({ "token": expired })),
            Err(AuthError::Expired)
        );
        let forged = jwt("other", "alice", 600);
        assert_eq!(
            auth.verify(&json!({ "token": forged })),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.verify(&json!({ "token": "not.a.jwt" })),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let debug = format!("{:?}", Authenticator::new(Some("s3cret"), None));
        assert!(!debug.contains("s3cret"));
    }
}
