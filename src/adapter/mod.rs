//! How rooms are shared: in memory on a single node, or through Redis across nodes.

pub mod cluster_link;
pub mod link_status;
pub mod node_adapter;
pub mod node_encoding;
pub mod node_messages;
pub mod node_protocol;
pub mod node_requests;
pub mod publish_queue;
pub mod redis_link;
pub mod sessions;

use std::time::Duration;

use socketioxide_redis::drivers::Driver;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

pub use cluster_link::ClusterLink;
pub use node_adapter::{NodeAdapterState, NodeFormatAdapter};
pub use redis_link::{RedisConnectError, RedisLink, RedisStatus};

use crate::config::Config;

/// How long a node waits for the others to answer a cluster-wide request (room sizes, members).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// The room-sharing backend chosen at startup.
pub enum RoomSharing {
    /// One node, rooms in memory.
    Memory,
    /// Several nodes sharing rooms through Redis pub/sub.
    Redis(RedisLink),
    /// Several nodes sharing rooms through a Redis Cluster's sharded pub/sub.
    Cluster(ClusterLink),
}

impl RoomSharing {
    /// Connects to Redis when `--redis-url` is set; otherwise stays in memory.
    pub async fn from_config(config: &Config) -> Result<Self, RedisConnectError> {
        match &config.redis_url {
            None => Ok(RoomSharing::Memory),
            Some(url) if config.redis_cluster_mode() => Ok(RoomSharing::Cluster(
                ClusterLink::connect(url.expose()).await?,
            )),
            Some(url) => Ok(RoomSharing::Redis(
                RedisLink::connect(url.expose(), config.redis_optional).await?,
            )),
        }
    }
}

/// The socketioxide adapter state for a Redis driver, its channels under `prefix`.
pub fn adapter_state<D: Driver>(driver: D, prefix: &str) -> RedisAdapterCtr<D> {
    RedisAdapterCtr::new_with_driver(
        driver,
        RedisAdapterConfig::new()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_prefix(prefix.to_owned()),
    )
}

/// The state of [`NodeFormatAdapter`] over `driver`, its channels under `prefix`.
pub fn node_adapter_state<D: Driver>(driver: D, prefix: &str) -> NodeAdapterState<D> {
    NodeAdapterState {
        inner: adapter_state(driver.clone(), prefix),
        link: driver,
        prefix: prefix.to_owned(),
    }
}
