//! Redis Cluster: socketioxide-redis's sharded pub/sub driver, made non-failing for local delivery.

use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use socketioxide_redis::drivers::redis::ClusterDriver;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};

use super::publish_queue::{BatchSink, Outgoing, PublishQueue};
use super::redis_link::{
    COMMAND_TIMEOUT, PING_INTERVAL, RedisConnectError, RedisStatus, redact, timeout_error,
};

/// Sharded pub/sub over a Redis Cluster (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+).
///
/// Publishing failures are counted and logged instead of failing the broadcast, so members on
/// this node keep receiving while the cluster is unreachable. Reconnection and resubscription
/// are left to the redis crate's cluster client.
#[derive(Clone)]
pub struct ClusterLink {
    driver: ClusterDriver,
    health: RedisStatus,
    publishing: PublishQueue,
}

impl ClusterLink {
    /// Connects to the cluster through its seed `urls` (comma-separated `redis://` URLs).
    pub async fn connect(urls: &str) -> Result<Self, RedisConnectError> {
        let shown = redact(urls);
        let error = |reason: String| RedisConnectError {
            url: shown.clone(),
            reason,
        };
        let seeds: Vec<String> = urls
            .split(',')
            .map(|u| u.trim().replace("redis+cluster://", "redis://"))
            .collect();
        let client = ClusterClient::builder(seeds)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .connection_timeout(COMMAND_TIMEOUT)
            .response_timeout(COMMAND_TIMEOUT)
            .build()
            .map_err(|e| error(e.to_string()))?;
        let driver = tokio::time::timeout(Duration::from_secs(5), ClusterDriver::new(&client))
            .await
            .map_err(|_| error(timeout_error("connect").to_string()))?
            .map_err(|e| error(e.to_string()))?;
        let probe = client
            .get_async_connection()
            .await
            .map_err(|e| error(e.to_string()))?;
        let health = RedisStatus::default();
        health.set_reachable(true);
        tokio::spawn(watch(probe, health.clone()));
        let publishing = PublishQueue::start(Sharded(driver.clone()), health.clone());
        Ok(ClusterLink {
            driver,
            health,
            publishing,
        })
    }

    /// A handle that reports the link's state.
    pub fn status(&self) -> RedisStatus {
        self.health.clone()
    }
}

/// Keeps `health` up to date with a PING to the cluster every [`PING_INTERVAL`].
async fn watch(mut probe: ClusterConnection, health: RedisStatus) {
    let mut ticks = tokio::time::interval(PING_INTERVAL);
    loop {
        ticks.tick().await;
        let ping = redis::cmd("PING");
        let answered =
            tokio::time::timeout(COMMAND_TIMEOUT, ping.query_async::<String>(&mut probe)).await;
        let up = matches!(answered, Ok(Ok(_)));
        if up && !health.reachable() {
            health.reconnected();
        }
        health.set_reachable(up);
    }
}

/// Publishes a batch message by message: each channel may live on another shard.
struct Sharded(ClusterDriver);

impl BatchSink for Sharded {
    async fn publish(&mut self, batch: &[Outgoing], health: &RedisStatus) {
        for (channel, payload) in batch {
            let sent = self.0.publish(channel.clone(), payload.clone());
            match tokio::time::timeout(COMMAND_TIMEOUT, sent).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => health.drop_message(channel, &error),
                Err(_) => health.drop_message(channel, &"SPUBLISH timed out"),
            }
        }
    }
}

impl Driver for ClusterLink {
    type Error = <ClusterDriver as Driver>::Error;

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
        self.driver.subscribe(chan, size).await
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.driver.unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        // Unreachable means alone: no remote node will answer.
        match tokio::time::timeout(COMMAND_TIMEOUT, self.driver.num_serv(chan)).await {
            Ok(Ok(count)) => Ok(count.max(1)),
            _ => Ok(1),
        }
    }
}
