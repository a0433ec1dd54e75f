//! Who may open the admin namespace: the Node package's basic authentication. The handshake's
//! `auth` carries a session id from an earlier login, or `username` and `password`; the
//! password is compared with the configured bcrypt hash, and a good one opens a new session.
//! Wrong credentials are rate-limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::sessions::{SessionStore, new_session_id};
use crate::config::{Config, Secret};

/// Failed logins one address may make per [`FAILURE_WINDOW`]; past it, every attempt is refused
/// without checking the password.
const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it, windows that have ended are forgotten.
const TRACKED_ADDRESSES: usize = 10_000;

/// The refusal the UI recognises (its login form shows "invalid credentials").
#[derive(Debug, thiserror::Error)]
#[error("invalid credentials")]
pub struct InvalidCredentials;

/// How a socket got in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// Authentication is off (`--admin-ui-no-auth`).
    Open,
    /// With the id of an earlier session.
    Session,
    /// With a username and password: the new session's id, to send as `session`.
    NewSession(String),
}

/// The configured credentials and what has been tried against them.
pub struct Login {
    /// `None` when authentication is off.
    credentials: Option<(String, Secret)>,
    sessions: SessionStore,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

struct Failures {
    since: Instant,
    count: u32,
}

impl Login {
    /// The login `config` describes.
    pub fn from_config(config: &Config) -> Self {
        Login {
            credentials: config
                .admin_ui_password_hash
                .clone()
                .map(|hash| (config.admin_ui_username.clone(), hash)),
            sessions: SessionStore::from_config(config),
            failures: Mutex::default(),
        }
    }

    /// Checks a handshake's `auth` from `address`, as the Node package's middleware does.
    pub async fn check(
        &self,
        auth: &Json,
        address: IpAddr,
    ) -> Result<Admitted, InvalidCredentials> {
        let Some((username, hash)) = &self.credentials else {
            return Ok(Admitted::Open);
        };
        if let Some(id) = auth.get("sessionId").and_then(Json::as_str)
            && !id.is_empty()
            && self.sessions.exists(id).await
        {
            return Ok(Admitted::Session);
        }
        let given = auth.get("username").and_then(Json::as_str);
        let password = auth.get("password").and_then(Json::as_str);
        if given.is_none() && password.is_none() {
            // Nothing was guessed (a UI whose session expired): no failure to count.
            return Err(InvalidCredentials);
        }
        if self.blocked(address) {
            tracing::warn!(%address, "Admin UI login refused unchecked: too many failures from this address");
            return Err(InvalidCredentials);
        }
        if given == Some(username.as_str())
            && let Some(password) = password
            && verify(password, hash.expose()).await
        {
            let Some(id) = new_session_id() else {
                tracing::error!("no random source for an Admin UI session id");
                return Err(InvalidCredentials);
            };
            self.sessions.save(&id).await;
            tracing::info!(%address, "Admin UI login");
            return Ok(Admitted::NewSession(id));
        }
        self.count_failure(address);
        tracing::info!(%address, "Admin UI login refused: invalid credentials");
        Err(InvalidCredentials)
    }

    fn blocked(&self, address: IpAddr) -> bool {
        let failures = self.lock();
        failures.get(&address).is_some_and(|failures| {
            failures.since.elapsed() < FAILURE_WINDOW && failures.count >= MAX_FAILURES
        })
    }

    fn count_failure(&self, address: IpAddr) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() >= TRACKED_ADDRESSES {
            failures.retain(|_, f| now.duration_since(f.since) < FAILURE_WINDOW);
        }
        let entry = failures.entry(address).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now.duration_since(entry.since) >= FAILURE_WINDOW {
            *entry = Failures {
                since: now,
                count: 0,
            };
        }
        entry.count += 1;
        if entry.count == MAX_FAILURES {
            tracing::warn!(%address, failures = entry.count, window_s = FAILURE_WINDOW.as_secs(), "Admin UI logins from this address refused for the rest of the window");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map is still usable.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Compares `password` with a bcrypt `hash` on the blocking pool: a comparison takes tens of
/// milliseconds at the usual costs, too long for a runtime thread.
async fn verify(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    match tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash)).await {
        Ok(Ok(matches)) => matches,
        Ok(Err(error)) => {
            tracing::error!(%error, "the Admin UI password hash cannot be checked");
            false
        }
        Err(error) => {
            tracing::error!(%error, "the Admin UI password check failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn login() -> Login {
        // Cost 4, the lowest, keeps the test fast.
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let config = Config::parse_from_args([
            "iorelay",
            "--admin-ui",
            "--admin-ui-password-hash",
            hash.as_str(),
        ])
        .expect("flags");
        Login::from_config(&config)
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn a_good_password_opens_a_session_that_lets_in_again() {
        let login = login();
        let good = json!({ "username": "admin", "password": "s3cret" });
        let Ok(Admitted::NewSession(id)) = login.check(&good, HOME).await else {
            panic!("the right password is accepted");
        };
        assert_eq!(
            login.check(&json!({ "sessionId": id }), HOME).await.ok(),
            Some(Admitted::Session)
        );
        assert!(
            login
                .check(&json!({ "sessionId": "nope" }), HOME)
                .await
                .is_err()
        );
        assert!(login.check(&json!(null), HOME).await.is_err());
    }

    #[tokio::test]
    async fn wrong_passwords_are_rate_limited_per_address() {
        let login = login();
        let wrong = json!({ "username": "admin", "password": "guess" });
        for _ in 0..MAX_FAILURES {
            assert!(login.check(&wrong, HOME).await.is_err());
        }
        let good = json!({ "username": "admin", "password": "s3cret" });
        assert!(
            login.check(&good, HOME).await.is_err(),
            "refused unchecked once the address has failed too often"
        );
        let elsewhere = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        assert!(login.check(&good, elsewhere).await.is_ok());
    }
}
