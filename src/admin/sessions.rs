//! The Admin UI's login sessions: random ids that expire after a day, kept in memory and, with
//! Redis, shared as the Node package's `RedisStore` shares them (key `socket.io-admin#<id>`,
//! expiring after 86 400 s), so a UI that reconnects through a load balancer to another node
//! keeps its session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use crate::adapter::redis_link::redact;
use crate::config::Config;

/// How long a session lasts (the `RedisStore`'s `sessionDuration`).
const SESSION_DURATION: Duration = Duration::from_secs(86_400);
/// Longest wait for Redis; a session check that takes longer fails like a missing session.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Key prefix of a session in Redis (the `RedisStore`'s `prefix`).
const PREFIX: &str = "socket.io-admin";

/// A new session id: 16 hex digits from the system's random source, as the Node package's
/// `randomBytes(8).toString("hex")`.
pub fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Where sessions are kept.
pub struct SessionStore {
    /// This node's sessions and when each expires.
    local: Mutex<HashMap<String, Instant>>,
    redis: Option<RedisSessions>,
}

impl SessionStore {
    /// A store in memory, shared through Redis when `--redis-url` is set.
    pub fn from_config(config: &Config) -> Self {
        let redis = config.redis_url.as_ref().and_then(|url| {
            RedisSessions::new(url.expose(), config.redis_cluster_mode())
                .inspect_err(|error| {
                    tracing::warn!(url = %redact(url.expose()), %error, "Admin UI sessions kept on this node only");
                })
                .ok()
        });
        SessionStore {
            local: Mutex::default(),
            redis,
        }
    }

    /// Whether `id` names a live session.
    pub async fn exists(&self, id: &str) -> bool {
        let now = Instant::now();
        if self.lock().get(id).is_some_and(|expiry| *expiry > now) {
            return true;
        }
        let Some(redis) = &self.redis else {
            return false;
        };
        let mut exists = redis::cmd("EXISTS");
        exists.arg(key(id));
        match redis.query::<u64>(&exists).await {
            Ok(count) => count == 1,
            Err(error) => {
                tracing::warn!(%error, "Admin UI session not checked in Redis");
                false
            }
        }
    }

    /// Keeps session `id` for a day.
    pub async fn save(&self, id: &str) {
        let now = Instant::now();
        {
            let mut local = self.lock();
            local.retain(|_, expiry| *expiry > now);
            local.insert(id.to_owned(), now + SESSION_DURATION);
        }
        if let Some(redis) = &self.redis {
            let mut set = redis::cmd("SET");
            set.arg(key(id))
                .arg("true")
                .arg("EX")
                .arg(SESSION_DURATION.as_secs());
            if let Err(error) = redis.query::<()>(&set).await {
                tracing::warn!(%error, "Admin UI session not shared through Redis");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map is still usable.
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(id: &str) -> String {
    format!("{PREFIX}#{id}")
}

/// A command connection of its own to Redis, opened on first use and again after a failure.
struct RedisSessions {
    client: Client,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

enum Client {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

#[derive(Clone)]
enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl RedisSessions {
    fn new(url: &str, cluster: bool) -> redis::RedisResult<Self> {
        let client = if cluster {
            let seeds: Vec<String> = url
                .split(',')
                .map(|seed| seed.trim().replace("redis+cluster://", "redis://"))
                .collect();
            Client::Cluster(Box::new(
                ClusterClient::builder(seeds)
                    .connection_timeout(REDIS_TIMEOUT)
                    .response_timeout(REDIS_TIMEOUT)
                    .build()?,
            ))
        } else {
            Client::Single(redis::Client::open(url)?)
        };
        Ok(RedisSessions {
            client,
            connection: tokio::sync::Mutex::new(None),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> redis::RedisResult<T> {
        let connection = {
            let mut slot = self.connection.lock().await;
            match slot.as_ref() {
                Some(connection) => connection.clone(),
                None => {
                    let connection = tokio::time::timeout(REDIS_TIMEOUT, self.open())
                        .await
                        .map_err(|_| timed_out())??;
                    *slot = Some(connection.clone());
                    connection
                }
            }
        };
        let result = match connection {
            Connection::Single(mut connection) => run(&mut connection, command).await,
            Connection::Cluster(mut connection) => run(&mut connection, command).await,
        };
        if result.is_err() {
            // The next command opens a new connection.
            self.connection.lock().await.take();
        }
        result
    }

    async fn open(&self) -> redis::RedisResult<Connection> {
        Ok(match &self.client {
            Client::Single(client) => {
                Connection::Single(client.get_multiplexed_async_connection().await?)
            }
            Client::Cluster(client) => Connection::Cluster(client.get_async_connection().await?),
        })
    }
}

async fn run<C: ConnectionLike, T: redis::FromRedisValue>(
    connection: &mut C,
    command: &redis::Cmd,
) -> redis::RedisResult<T> {
    tokio::time::timeout(REDIS_TIMEOUT, command.query_async(connection))
        .await
        .map_err(|_| timed_out())?
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_sixteen_hex_digits() {
        let id = new_session_id().expect("random source");
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(Some(id), new_session_id());
    }

    #[tokio::test]
    async fn sessions_in_memory_are_found_until_they_expire() {
        let config = Config::parse_from_args(["iorelay"]).expect("defaults");
        let store = SessionStore::from_config(&config);
        assert!(!store.exists("0123456789abcdef").await);
        store.save("0123456789abcdef").await;
        assert!(store.exists("0123456789abcdef").await);
        store.lock().insert("old".into(), Instant::now());
        assert!(!store.exists("old").await);
    }
}
