//! A Redis pub/sub driver for socketioxide-redis that survives Redis outages.
//!
//! The stock drivers fail every broadcast while Redis is down (local members included, since the
//! adapter publishes before it delivers locally) and never resubscribe once it is back. This
//! driver keeps the adapter's subscription streams open across reconnections, resubscribes every
//! channel when Redis returns, and while Redis is unreachable it drops cross-node messages
//! (counting and logging each) instead of failing, so local delivery goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{Mutex, mpsc};

pub use super::link_status::RedisStatus;
use super::publish_queue::{BatchSink, Outgoing, PublishQueue};

/// How long to wait between two connection attempts.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// How often a live connection is checked with PING.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for any single Redis command.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Why Redis could not be reached at startup.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach Redis at {url}: {reason}")]
pub struct RedisConnectError {
    /// The URL with its password hidden.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// A never-failing [`Driver`]: cross-node traffic is best effort, local traffic is unaffected.
#[derive(Clone)]
pub struct RedisLink {
    shared: Arc<Shared>,
    publishing: PublishQueue,
}

struct Shared {
    client: redis::Client,
    /// The URL with its password hidden, for logs.
    url: String,
    /// The adapter's channels and where their messages go; kept across reconnections.
    channels: std::sync::RwLock<HashMap<String, mpsc::Sender<ChanItem>>>,
    /// The live connection, `None` while Redis is unreachable.
    connection: Mutex<Option<Connection>>,
    health: RedisStatus,
    /// Where messages in Node socket.io's own format go, once something listens to them.
    node_protocol: std::sync::RwLock<Option<NodeListener>>,
}

/// The listener of Node socket.io's messages: its broadcast channels' pattern, and its JSON
/// requests, which share the request channels with the adapter's MessagePack ones.
struct NodeListener {
    pattern: String,
    request_prefix: String,
    response_prefix: String,
    messages: mpsc::Sender<Outgoing>,
}

impl NodeListener {
    /// Whether a message on `channel` is Node's: on a pattern channel; a request that is an
    /// object, in JSON (`{`) or MessagePack (a map), where the adapter's own MessagePack
    /// requests are arrays; or an answer in JSON, where the adapter's own answers are arrays.
    fn takes(&self, from_pattern: bool, channel: &str, payload: &[u8]) -> bool {
        from_pattern
            || (channel.starts_with(&self.request_prefix)
                && matches!(payload.first(), Some(b'{' | 0x80..=0x8f | 0xde | 0xdf)))
            || (channel.starts_with(&self.response_prefix) && payload.first() == Some(&b'{'))
    }
}

struct Connection {
    commands: MultiplexedConnection,
    subscriptions: PubSubSink,
}

impl RedisLink {
    /// Connects to `url` and starts the task that keeps the connection alive.
    ///
    /// Fails when the URL is invalid, or when Redis is unreachable and `optional` is false; an
    /// optional link starts disconnected and keeps trying in the background.
    pub async fn connect(url: &str, optional: bool) -> Result<Self, RedisConnectError> {
        let shown_url = redact(url);
        let client = redis::Client::open(url).map_err(|error| RedisConnectError {
            url: shown_url.clone(),
            reason: error.to_string(),
        })?;
        let shared = Arc::new(Shared {
            client,
            url: shown_url.clone(),
            channels: std::sync::RwLock::new(HashMap::new()),
            connection: Mutex::new(None),
            health: RedisStatus::default(),
            node_protocol: std::sync::RwLock::new(None),
        });
        let first = match open(&shared).await {
            Ok(first) => Some(first),
            Err(error) if optional => {
                tracing::warn!(url = %shown_url, %error, "Redis unreachable; starting degraded");
                None
            }
            Err(error) => {
                return Err(RedisConnectError {
                    url: shown_url,
                    reason: error.to_string(),
                });
            }
        };
        tokio::spawn(supervise(shared.clone(), first));
        let publishing = PublishQueue::start(Pipeline(shared.clone()), shared.health.clone());
        Ok(RedisLink { shared, publishing })
    }

    /// A handle that reports the link's state.
    pub fn status(&self) -> RedisStatus {
        self.shared.health.clone()
    }

    /// Subscribes to the messages Node socket.io's emitter and adapter send under `prefix`:
    /// broadcasts on `{prefix}#…` and JSON requests on `{prefix}-request#…`, kept across
    /// reconnections. Up to `capacity` wait in the returned queue; beyond that they are
    /// dropped and counted.
    pub async fn listen_to_node(&self, prefix: &str, capacity: usize) -> mpsc::Receiver<Outgoing> {
        let (messages, received) = mpsc::channel(capacity);
        let pattern = format!("{prefix}#*");
        let mut connection = self.shared.connection.lock().await;
        *self
            .shared
            .node_protocol
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(NodeListener {
            pattern: pattern.clone(),
            request_prefix: format!("{prefix}-request#"),
            response_prefix: format!("{prefix}-response#"),
            messages,
        });
        if let Some(connection) = connection.as_mut()
            && let Err(error) = connection.subscriptions.psubscribe(&pattern).await
        {
            tracing::warn!(pattern, %error, "subscribe failed; will retry on reconnect");
        }
        received
    }
}

/// Publishes a batch as one pipeline of `PUBLISH` commands on the live connection.
struct Pipeline(Arc<Shared>);

impl BatchSink for Pipeline {
    async fn publish(&mut self, batch: &[Outgoing], health: &RedisStatus) {
        let commands = self
            .0
            .connection
            .lock()
            .await
            .as_ref()
            .map(|c| c.commands.clone());
        let Some(mut commands) = commands else {
            for (channel, _) in batch {
                health.drop_message(channel, &"Redis is unreachable");
            }
            return;
        };
        let mut pipeline = redis::pipe();
        for (channel, payload) in batch {
            pipeline
                .cmd("PUBLISH")
                .arg(channel)
                .arg(payload.as_slice())
                .ignore();
        }
        let reason =
            match tokio::time::timeout(COMMAND_TIMEOUT, pipeline.query_async::<()>(&mut commands))
                .await
            {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error.to_string(),
                Err(_) => "PUBLISH timed out".to_owned(),
            };
        // Redis answers a pipeline as a whole: any of the batch may have been lost.
        for (channel, _) in batch {
            health.drop_message(channel, &reason);
        }
    }
}

/// Error type of the driver; it never fails, so this is never built.
#[derive(Debug, thiserror::Error)]
#[error("redis link error")]
pub struct RedisLinkError;

impl Driver for RedisLink {
    type Error = RedisLinkError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        // Local delivery never waits on Redis: the adapter goes on either way.
        self.publishing.push(chan, val);
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        let mut connection = self.shared.connection.lock().await;
        write_channels(&self.shared).insert(chan.clone(), tx);
        // On failure the supervisor resubscribes every channel with the next connection.
        if let Some(connection) = connection.as_mut()
            && let Err(error) = connection.subscriptions.subscribe(&chan).await
        {
            tracing::warn!(channel = chan, %error, "subscribe failed; will retry on reconnect");
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        let mut connection = self.shared.connection.lock().await;
        write_channels(&self.shared).remove(&chan);
        if let Some(connection) = connection.as_mut()
            && let Err(error) = connection.subscriptions.unsubscribe(&chan).await
        {
            tracing::debug!(channel = chan, %error, "unsubscribe failed");
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let commands = self
            .shared
            .connection
            .lock()
            .await
            .as_ref()
            .map(|c| c.commands.clone());
        // Unreachable means alone: no remote node will answer, so expect no answer.
        let Some(commands) = commands else {
            return Ok(1);
        };
        let mut numsub = redis::cmd("PUBSUB");
        numsub.arg("NUMSUB").arg(chan);
        Ok(run::<(String, u16)>(commands, &numsub)
            .await
            .map_or(1, |(_, count)| count.max(1)))
    }
}

fn write_channels(
    shared: &Shared,
) -> std::sync::RwLockWriteGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
    // A poisoned lock only means a panic elsewhere while holding it; the map is still usable.
    shared
        .channels
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens both connections and subscribes to every known channel.
async fn open(shared: &Shared) -> redis::RedisResult<PubSubStream> {
    let commands = tokio::time::timeout(
        COMMAND_TIMEOUT,
        shared.client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| timeout_error("connect"))??;
    let pubsub = tokio::time::timeout(COMMAND_TIMEOUT, shared.client.get_async_pubsub())
        .await
        .map_err(|_| timeout_error("connect"))??;
    let (mut subscriptions, messages) = pubsub.split();
    let mut connection = shared.connection.lock().await;
    let channels: Vec<String> = shared
        .channels
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .keys()
        .cloned()
        .collect();
    for channel in &channels {
        subscriptions.subscribe(channel).await?;
    }
    let pattern = shared
        .node_protocol
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .map(|listener| listener.pattern.clone());
    if let Some(pattern) = pattern {
        subscriptions.psubscribe(&pattern).await?;
    }
    *connection = Some(Connection {
        commands,
        subscriptions,
    });
    shared.health.set_reachable(true);
    tracing::info!(url = %shared.url, channels = channels.len(), "connected to Redis");
    Ok(messages)
}

/// Runs one command, giving up after [`COMMAND_TIMEOUT`].
async fn run<T: redis::FromRedisValue>(
    mut connection: MultiplexedConnection,
    command: &redis::Cmd,
) -> redis::RedisResult<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, command.query_async(&mut connection))
        .await
        .map_err(|_| timeout_error("command"))?
}

pub(crate) fn timeout_error(what: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// Forwards messages while connected; reconnects and resubscribes whenever the link drops.
async fn supervise(shared: Arc<Shared>, mut messages: Option<PubSubStream>) {
    let mut failures: u64 = 0;
    loop {
        if let Some(stream) = messages.take() {
            failures = 0;
            forward_until_lost(&shared, stream).await;
            *shared.connection.lock().await = None;
            shared.health.set_reachable(false);
            tracing::warn!(url = %shared.url, "lost the Redis connection; delivering locally until it is back");
        }
        tokio::time::sleep(RETRY_INTERVAL).await;
        match open(&shared).await {
            Ok(stream) => {
                shared.health.reconnected();
                messages = Some(stream);
            }
            Err(error) => {
                failures += 1;
                // One line when the outage starts, then one every ~30 s, not one per attempt.
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(url = %shared.url, %error, attempts = failures, "Redis still unreachable");
                }
            }
        }
    }
}

async fn forward_until_lost(shared: &Shared, mut stream: PubSubStream) {
    let mut pings = tokio::time::interval(PING_INTERVAL);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return };
                let channel = message.get_channel_name().to_owned();
                if let Some(listener) = shared
                    .node_protocol
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .filter(|listener| listener.takes(message.from_pattern(), &channel, message.get_payload_bytes()))
                {
                    if listener.messages.try_send((channel.clone(), message.get_payload_bytes().to_vec())).is_err() {
                        shared.health.drop_message(&channel, &"the queue of Node socket.io messages is full");
                    }
                    continue;
                }
                let sender = shared
                    .channels
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&channel)
                    .cloned();
                match sender {
                    Some(sender) => {
                        if sender.try_send((channel.clone(), message.get_payload_bytes().to_vec())).is_err() {
                            shared.health.drop_message(&channel, &"the adapter's queue of received messages is full");
                        }
                    }
                    None => tracing::debug!(channel, "message for a channel no longer subscribed"),
                }
            }
            _ = pings.tick() => {
                let commands = shared.connection.lock().await.as_ref().map(|c| c.commands.clone());
                let Some(commands) = commands else { return };
                if run::<String>(commands, &redis::cmd("PING")).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// `url` (or a comma-separated list of URLs) with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(redact).collect::<Vec<_>>().join(",");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact("rediss://user:s3cret@host"),
            "rediss://user:***@host"
        );
        assert_eq!(redact("redis://user:p@ss@host"), "redis://user:***@host");
        assert_eq!(
            redact("redis://:a@h1:7000,redis://:b@h2:7001"),
            "redis://:***@h1:7000,redis://:***@h2:7001"
        );
    }
}
