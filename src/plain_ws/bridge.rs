//! One way for a chat message to reach a room, whoever sent it: Socket.IO members through the
//! adapter (every node), plain members of this node from the hub, and plain members of the other
//! nodes through a Redis channel of their own.

use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::errors::BroadcastError;
use socketioxide_redis::drivers::{Driver, MessageStream};
use tokio::sync::mpsc;

use super::hub::PlainHub;
use crate::realtime::payload::ChatMessage;

/// The Redis channel plain members' messages cross nodes on; the adapter's own channels are
/// named `socket.io…`, so they never mix.
pub const CHANNEL: &str = "iorelay-plain#/";

/// Messages waiting to be published, per node; beyond that they are dropped and logged, as the
/// adapter does while Redis is unreachable.
const PUBLISH_QUEUE: usize = 1024;

/// A chat message on its way to the other nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The node that published it, which ignores it when it comes back.
    node: String,
    chat: ChatMessage,
}

/// Sends `message` to its room of namespace `/` (or all of `/`): to Socket.IO members on every
/// node, and to plain WebSocket members on every node.
pub async fn relay_chat<A: Adapter>(
    io: &SocketIo<A>,
    hub: &PlainHub,
    message: &ChatMessage,
) -> Result<(), BroadcastError> {
    hub.deliver(message);
    let Some(root) = io.of("/") else {
        return Ok(());
    };
    match &message.room {
        // `within` includes the sender when it is a member; outsiders never see room traffic.
        Some(room) => root.within(room.clone()).emit("chat", message).await,
        None => root.emit("chat", message).await,
    }
}

impl PlainHub {
    /// Sends a chat message to the plain members of its room here and on the other nodes.
    pub fn deliver(&self, message: &ChatMessage) {
        self.deliver_local(message);
        let Some(remote) = self.remote.get() else {
            return;
        };
        // Serialised by the publishing task, off the sender's way.
        if remote.try_send(message.clone()).is_err() {
            tracing::warn!(
                channel = CHANNEL,
                "cross-node message for plain WebSocket clients dropped: publish queue full"
            );
        }
    }
}

/// Shares plain members' messages with the other nodes over `driver`: subscribes before
/// returning, so that the node hears the others from its first connection on.
pub async fn connect_nodes<D: Driver>(hub: &Arc<PlainHub>, driver: D) {
    match driver.subscribe(CHANNEL.to_owned(), PUBLISH_QUEUE).await {
        Ok(stream) => {
            tokio::spawn(receive(Arc::downgrade(hub), stream));
        }
        Err(error) => {
            tracing::error!(channel = CHANNEL, %error, "plain WebSocket clients will not hear other nodes");
        }
    }
    let (publications, queue) = mpsc::channel(PUBLISH_QUEUE);
    if hub.remote.set(publications).is_ok() {
        tokio::spawn(publish(driver, hub.node.clone(), queue));
    }
}

/// Publishes in order until the hub is gone. The driver never fails: an unreachable Redis is
/// counted in `/healthz` and logged there.
async fn publish<D: Driver>(driver: D, node: String, mut queue: mpsc::Receiver<ChatMessage>) {
    while let Some(chat) = queue.recv().await {
        let envelope = Envelope {
            node: node.clone(),
            chat,
        };
        let Ok(bytes) = serde_json::to_vec(&envelope) else {
            continue;
        };
        if let Err(error) = driver.publish(CHANNEL.to_owned(), bytes).await {
            tracing::warn!(channel = CHANNEL, %error, "cross-node message dropped");
        }
    }
}

async fn receive(hub: Weak<PlainHub>, mut stream: MessageStream<(String, Vec<u8>)>) {
    while let Some((_, bytes)) = stream.next().await {
        let Some(hub) = hub.upgrade() else { return };
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(envelope) if envelope.node == hub.node => {}
            Ok(envelope) => hub.deliver_local(&envelope.chat),
            Err(error) => tracing::debug!(%error, "unreadable cross-node message ignored"),
        }
    }
}
