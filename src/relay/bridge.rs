//! Plain WebSocket members of the other nodes: their chat messages cross nodes on a Redis
//! channel of their own (Socket.IO members are reached through the adapter).

use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use socketioxide_redis::drivers::{Driver, MessageStream};
use tokio::sync::mpsc;

use axum::extract::ws::Utf8Bytes;

use super::payload::ChatMessage;
use super::plain_members::{PlainMembers, Publication, Selection};

/// The Redis channel plain members' messages cross nodes on; the adapter's own channels are
/// named `socket.io…`, so they never mix.
pub const CHANNEL: &str = "iorelay-plain#/";

/// Messages waiting to be published, per node; beyond that they are dropped and logged, as the
/// adapter does while Redis is unreachable.
const PUBLISH_QUEUE: usize = 1024;

/// A publication on its way to the other nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The node that published it, which ignores it when it comes back.
    node: String,
    #[serde(flatten)]
    publication: Publication,
}

impl PlainMembers {
    /// Sends a chat message to the plain members of its room here and on the other nodes.
    pub fn deliver(&self, message: &ChatMessage) {
        self.deliver_local(message);
        self.publish(Publication::Chat {
            chat: message.clone(),
        });
    }

    /// Sends a frame to the plain members `selection` picks, here and on the other nodes.
    pub fn deliver_frame(&self, selection: Selection, frame: Utf8Bytes) {
        self.deliver_frame_local(&selection, &frame);
        self.publish(Publication::Frame {
            selection,
            frame: frame.as_str().to_owned(),
        });
    }

    fn publish(&self, publication: Publication) {
        let Some(remote) = self.remote.get() else {
            return;
        };
        // Serialised by the publishing task, off the sender's way.
        if remote.try_send(publication).is_err() {
            tracing::warn!(
                channel = CHANNEL,
                "cross-node message for plain WebSocket clients dropped: publish queue full"
            );
        }
    }
}

/// Shares plain members' messages with the other nodes over `driver`: subscribes before
/// returning, so that the node hears the others from its first connection on.
pub async fn connect_nodes<D: Driver>(hub: &Arc<PlainMembers>, driver: D) {
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
async fn publish<D: Driver>(driver: D, node: String, mut queue: mpsc::Receiver<Publication>) {
    while let Some(publication) = queue.recv().await {
        let envelope = Envelope {
            node: node.clone(),
            publication,
        };
        let Ok(bytes) = serde_json::to_vec(&envelope) else {
            continue;
        };
        if let Err(error) = driver.publish(CHANNEL.to_owned(), bytes).await {
            tracing::warn!(channel = CHANNEL, %error, "cross-node message dropped");
        }
    }
}

async fn receive(hub: Weak<PlainMembers>, mut stream: MessageStream<(String, Vec<u8>)>) {
    while let Some((_, bytes)) = stream.next().await {
        let Some(hub) = hub.upgrade() else { return };
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(envelope) if envelope.node == hub.node => {}
            Ok(Envelope {
                publication: Publication::Chat { chat },
                ..
            }) => hub.deliver_local(&chat),
            Ok(Envelope {
                publication: Publication::Frame { selection, frame },
                ..
            }) => hub.deliver_frame_local(&selection, &Utf8Bytes::from(frame)),
            Err(error) => tracing::debug!(%error, "unreadable cross-node message ignored"),
        }
    }
}
