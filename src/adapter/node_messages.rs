//! Node socket.io's messages acted on: what `@socket.io/redis-emitter` (and a Node server's
//! adapter) asks of every node, done for this node's sockets and plain members.
//!
//! Every node receives each of these messages itself, so each acts on its own sockets only.
//! A message that is refused, or that names a namespace this node does not serve, is counted
//! among the dropped cross-node messages and logged with its reason.

use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::mpsc;

use super::node_protocol::{self, NodeMessage, RefusedMessage, Selection};
use super::publish_queue::Outgoing;
use super::redis_link::RedisStatus;
use crate::relay::Relay;
use crate::relay::delivery::plain_event_frame;
use crate::relay::membership::{Picked, RoomChange};
use crate::relay::payload::EventArgs;
use crate::relay::plain_members;

/// Node messages waiting to be acted on.
pub const QUEUE_CAPACITY: usize = 16_384;

/// What the task needs to act on Node's messages.
pub struct NodeMessages<A: Adapter> {
    /// The node's sockets.
    pub io: SocketIo<A>,
    /// The node's relay, for plain members and membership.
    pub relay: Arc<Relay>,
    /// The channels' prefix.
    pub prefix: String,
    /// Largest payload accepted, as from a client.
    pub limit: usize,
    /// Where refusals are counted.
    pub health: RedisStatus,
}

impl<A: Adapter> NodeMessages<A> {
    /// Acts on every message of `received`, in order, until the link is gone.
    pub async fn serve(self, mut received: mpsc::Receiver<Outgoing>) {
        while let Some((channel, payload)) = received.recv().await {
            match node_protocol::decode(&self.prefix, &channel, &payload, self.limit, None) {
                Ok(message) => self.act(&channel, message).await,
                Err(RefusedMessage::Own) => {}
                Err(refused) => self.health.drop_message(&channel, &refused),
            }
        }
    }

    async fn act(&self, channel: &str, message: NodeMessage) {
        match message {
            NodeMessage::Broadcast {
                namespace,
                to,
                event,
                args,
                volatile,
            } => {
                self.broadcast(channel, &namespace, &to, &event, args, volatile)
                    .await
            }
            NodeMessage::Rooms {
                namespace,
                to,
                rooms,
                join,
            } => {
                let change = if join {
                    RoomChange::Join
                } else {
                    RoomChange::Leave
                };
                let picked = this_node(&to);
                if let Err(error) = self
                    .relay
                    .change_rooms(&self.io, &namespace, picked, &rooms, change)
                    .await
                {
                    self.health.drop_message(channel, &error);
                }
            }
            NodeMessage::Disconnect {
                namespace,
                to,
                close: _,
            } => {
                // Node's `close` also ends the underlying connection; a socket here has one
                // namespace per connection in practice, and disconnecting it closes that.
                match self
                    .relay
                    .disconnect_sockets(&self.io, &namespace, this_node(&to))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => self.health.drop_message(channel, &error),
                    Err(error) => self.health.drop_message(channel, &error),
                }
            }
            NodeMessage::ServerSideEmit { namespace } => {
                tracing::debug!(
                    namespace,
                    "serverSideEmit from Node: iorelay has no server-side listeners"
                );
            }
        }
    }

    async fn broadcast(
        &self,
        channel: &str,
        namespace: &str,
        to: &Selection,
        event: &str,
        args: Vec<rmpv::Value>,
        volatile: bool,
    ) {
        let Some(mut sockets) = self.io.of(namespace) else {
            self.health.drop_message(
                channel,
                &format!("namespace {namespace} is not served here"),
            );
            return;
        };
        let args = EventArgs(args);
        if namespace == "/"
            && let Some(frame) = plain_event_frame(event, &args)
        {
            let selection = plain_members::Selection {
                rooms: to.rooms.clone(),
                except: to.except.clone(),
                skip: None,
            };
            self.relay.plain.deliver_frame_local(&selection, &frame);
        }
        sockets = sockets.local();
        if !to.rooms.is_empty() {
            sockets = sockets.to(to.rooms.clone());
        }
        if !to.except.is_empty() {
            sockets = sockets.except(to.except.clone());
        }
        if volatile {
            sockets = sockets.volatile();
        }
        if let Err(error) = sockets.emit(event, &args).await {
            tracing::warn!(channel, event, %error, "Node's broadcast not delivered to every member");
        }
    }
}

/// This node's sockets that `to` picks.
fn this_node(to: &Selection) -> Picked<'_> {
    Picked {
        to: &to.rooms,
        except: &to.except,
        this_node_only: true,
    }
}
