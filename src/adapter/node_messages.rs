//! Node socket.io's messages acted on: what `@socket.io/redis-emitter` (and a Node server's
//! adapter) asks of every node, done for this node's sockets and plain members.
//!
//! Every node receives each of these messages itself, so each acts on its own sockets only.
//! A message that is refused, or that names a namespace this node does not serve, is counted
//! among the dropped cross-node messages and logged with its reason.
//!
//! A Node server's `fetchSockets()` and `allRooms()` wait for an answer from every server
//! subscribed to the namespace's request channel, iorelay nodes included: each node answers
//! them for its own sockets, on the asking server's response channel.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value as Json, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

use super::node_protocol::{self, NodeMessage, RefusedMessage, Reply, Selection};
use super::node_requests::PendingAnswers;
use super::publish_queue::Outgoing;
use super::redis_link::RedisStatus;
use crate::relay::Relay;
use crate::relay::admin_feed;
use crate::relay::client::ClientState;
use crate::relay::delivery::plain_event_frame;
use crate::relay::membership::{Picked, RoomChange};
use crate::relay::payload::EventArgs;
use crate::relay::plain_members;

/// Node messages waiting to be acted on.
pub const QUEUE_CAPACITY: usize = 16_384;

/// What the task needs to act on Node's messages.
pub struct NodeMessages<A: Adapter, D: Driver> {
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
    /// Where answers to Node's requests are published.
    pub link: D,
    /// This node's adapter id, with which its own messages come back.
    pub uid: String,
    /// This node's requests waiting for answers.
    pub answers: Arc<PendingAnswers>,
}

impl<A: Adapter, D: Driver> NodeMessages<A, D> {
    /// Acts on every message of `received`, in order, until the link is gone.
    pub async fn serve(self, mut received: mpsc::Receiver<Outgoing>) {
        while let Some((channel, payload)) = received.recv().await {
            match node_protocol::decode(
                &self.prefix,
                &channel,
                &payload,
                self.limit,
                Some(&self.uid),
            ) {
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
                sockets_only,
            } => {
                let args = EventArgs(args);
                if !sockets_only {
                    self.deliver_to_plain_members(&namespace, &to, &event, &args);
                }
                self.broadcast(channel, &namespace, &to, &event, &args, volatile)
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
            NodeMessage::Answer { request_id, answer } => {
                if !self.answers.deliver(&request_id, answer) {
                    // Node servers answer one another on the namespace's channel too.
                    tracing::trace!(channel, request_id, "an answer to no waiting request here");
                }
            }
            NodeMessage::ServerSideEmit { namespace } => {
                tracing::debug!(
                    namespace,
                    "serverSideEmit from Node: iorelay has no server-side listeners"
                );
            }
            NodeMessage::Sockets {
                namespace,
                rooms,
                reply,
            } => {
                let to = Selection {
                    rooms,
                    except: Vec::new(),
                };
                let Some(picked) = self.picked(channel, &namespace, &to) else {
                    return;
                };
                let ids: Vec<Json> = picked.iter().map(|s| Json::from(s.id.as_str())).collect();
                let answer = reply.answer("sockets", ids.into());
                self.answer(&namespace, &reply, answer).await;
            }
            NodeMessage::AllRooms { namespace, reply } => {
                let Some(sockets) = self.picked(channel, &namespace, &Selection::default()) else {
                    return;
                };
                let rooms: BTreeSet<String> = sockets.iter().flat_map(node_rooms).collect();
                let answer = reply.answer("rooms", json!(rooms));
                self.answer(&namespace, &reply, answer).await;
            }
            NodeMessage::Fetch {
                namespace,
                to,
                reply,
            } => {
                let Some(picked) = self.picked(channel, &namespace, &to) else {
                    return;
                };
                let sockets: Vec<Json> = picked.iter().map(fetched).collect();
                let answer = reply.answer("sockets", sockets.into());
                self.answer(&namespace, &reply, answer).await;
            }
            NodeMessage::BroadcastWithAck {
                namespace,
                to,
                event,
                args,
                timeout_ms,
                reply,
            } => {
                // The asking server waits for every server's count, even of none.
                let picked = self.picked(channel, &namespace, &to).unwrap_or_default();
                let args = EventArgs(args);
                let timeout = Duration::from_millis(timeout_ms);
                let mut acks = FuturesUnordered::new();
                for socket in picked {
                    match socket
                        .timeout(timeout)
                        .emit_with_ack::<_, EventArgs>(&event, &args)
                    {
                        Ok(ack) => acks.push(ack),
                        Err(error) => {
                            tracing::debug!(sid = %socket.id, event, %error, "Node's broadcast with ack not sent to this socket");
                        }
                    }
                }
                let count = reply.client_count(acks.len());
                self.answer(&namespace, &reply, count).await;
                if acks.is_empty() {
                    return;
                }
                let link = self.link.clone();
                let health = self.health.clone();
                let channel = reply.channel(&self.prefix, &namespace);
                tokio::spawn(async move {
                    while let Some(ack) = acks.next().await {
                        // A socket that does not answer in time is one answer the asking
                        // server does not get, as from a Node server's socket.
                        let Ok(EventArgs(args)) = ack else { continue };
                        let first = args.into_iter().next().unwrap_or(rmpv::Value::Nil);
                        if let Err(error) = link.publish(channel.clone(), reply.ack(first)).await {
                            health.drop_message(&channel, &error);
                        }
                    }
                });
            }
        }
    }

    /// This node's sockets of `namespace` that `to` picks, as Node's adapter picks them: a
    /// socket is in the room named after its id whether or not it joined it. `None`, counted,
    /// when the namespace is not served here.
    fn picked(&self, channel: &str, namespace: &str, to: &Selection) -> Option<Vec<SocketRef<A>>> {
        let Some(sockets) = self.io.of(namespace) else {
            self.health.drop_message(
                channel,
                &format!("namespace {namespace} is not served here"),
            );
            return None;
        };
        let picked = sockets
            .local()
            .sockets()
            .into_iter()
            .filter(|socket| {
                let rooms = node_rooms(socket);
                let within = to.rooms.is_empty() || to.rooms.iter().any(|r| rooms.contains(r));
                within && !to.except.iter().any(|r| rooms.contains(r))
            })
            .collect();
        Some(picked)
    }

    /// Publishes `answer` on the asking server's response channel; an answer Redis does not
    /// take is counted and logged, and the asking server times out.
    async fn answer(&self, namespace: &str, reply: &Reply, answer: Vec<u8>) {
        let channel = reply.channel(&self.prefix, namespace);
        if let Err(error) = self.link.publish(channel.clone(), answer).await {
            self.health.drop_message(&channel, &error);
        }
    }

    /// Delivers a broadcast on `/` to this node's plain members that `to` picks.
    fn deliver_to_plain_members(
        &self,
        namespace: &str,
        to: &Selection,
        event: &str,
        args: &EventArgs,
    ) {
        if namespace != "/" {
            return;
        }
        if let Some(frame) = plain_event_frame(event, args) {
            let selection = plain_members::Selection {
                rooms: to.rooms.clone(),
                except: to.except.clone(),
                skip: None,
            };
            self.relay.plain.deliver_frame_local(&selection, &frame);
        }
    }

    async fn broadcast(
        &self,
        channel: &str,
        namespace: &str,
        to: &Selection,
        event: &str,
        args: &EventArgs,
        volatile: bool,
    ) {
        let Some(mut sockets) = self.io.of(namespace) else {
            self.health.drop_message(
                channel,
                &format!("namespace {namespace} is not served here"),
            );
            return;
        };
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
        if let Err(error) = sockets.emit(event, args).await {
            tracing::warn!(channel, event, %error, "Node's broadcast not delivered to every member");
        }
    }
}

/// A socket's rooms as Node lists them: the ones it joined and the one named after its id.
fn node_rooms<A: Adapter>(socket: &SocketRef<A>) -> Vec<String> {
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    if !rooms.iter().any(|r| r == socket.id.as_str()) {
        rooms.push(socket.id.to_string());
    }
    rooms
}

/// A socket as Node's adapter answers `fetchSockets()` with it: its id, handshake, rooms and
/// data.
fn fetched<A: Adapter>(socket: &SocketRef<A>) -> Json {
    let client = socket.extensions.get::<Arc<ClientState>>();
    let data = client.as_ref().map(|c| c.data()).unwrap_or_default();
    let mut handshake = match admin_feed::serialize_socket(socket, Map::new()) {
        Json::Object(mut serialized) => serialized.remove("handshake").unwrap_or_default(),
        _ => Json::Null,
    };
    if let Json::Object(handshake) = &mut handshake {
        // Node's `auth` is `{}` when the client sent none.
        let auth = match client.as_ref().map(|c| c.handshake().auth) {
            None | Some(Json::Null) => json!({}),
            Some(auth) => auth,
        };
        handshake.insert("auth".into(), auth);
    }
    // `user` is iorelay's own (the JWT `sub`), for the server API's lists; Node ignores it.
    json!({
        "id": socket.id.as_str(),
        "handshake": handshake,
        "rooms": node_rooms(socket),
        "data": data,
        "user": client.as_ref().and_then(|c| c.user_id()),
    })
}

/// This node's sockets that `to` picks.
fn this_node(to: &Selection) -> Picked<'_> {
    Picked {
        to: &to.rooms,
        except: &to.except,
        this_node_only: true,
    }
}
