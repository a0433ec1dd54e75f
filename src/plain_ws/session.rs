//! One plain WebSocket connection: frames in, requests answered, heartbeat.
//!
//! Reading and writing run apart: a writer task (`wire`) drains the client's queue, so a
//! client that stops reading fills only its own queue, while this task goes on reading and
//! keeping time.

use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use socketioxide_core::adapter::errors::BroadcastError;
use tokio::sync::{mpsc, watch};

use super::frames::{self, Event, Inbound, Outbound, Request};
use super::hub::Eviction;
use super::wire::{CONTROL_QUEUE, Ending, close, close_connection, code, read_error, write_frames};
use super::{Peer, PlainEndpoint, relay_chat};
use crate::realtime::payload::{ChatAck, EventArgs, RoomAck};
use crate::realtime::policy::{EventBudget, Verdict};
use crate::realtime::room::RoomName;
use crate::realtime::room_events::chat_message;

struct Session<A: Adapter> {
    id: Sid,
    endpoint: PlainEndpoint<A>,
    peer: Peer,
    /// The client's own queue, also fed by broadcasts.
    sender: mpsc::Sender<Message>,
    control: mpsc::Sender<Message>,
    budget: EventBudget,
}

/// Serves one upgraded connection until it closes.
pub(super) async fn run<A: Adapter>(socket: WebSocket, endpoint: PlainEndpoint<A>, peer: Peer) {
    let hub = endpoint.hub.clone();
    let registration = hub.register();
    endpoint.policy.admissions.settle();
    let Some(registration) = registration else {
        let mut socket = socket;
        let _ = socket
            .send(close(code::GOING_AWAY, "server shutting down"))
            .await;
        return;
    };
    let id = registration.id;
    tracing::info!(
        sid = %id,
        ns = "/",
        transport = "plain-websocket",
        protocol = ?peer.protocol,
        remote = %peer.remote,
        "socket connected"
    );
    let (sink, mut stream) = socket.split();
    let (control, control_queue) = mpsc::channel(CONTROL_QUEUE);
    let writer = tokio::spawn(write_frames(sink, control_queue, registration.outbox));
    let mut session = Session {
        id,
        endpoint,
        peer,
        sender: registration.sender,
        control,
        budget: EventBudget::new(Instant::now()),
    };
    let ending = session.read_frames(&mut stream, registration.evicted).await;
    hub.unregister(&id);
    let Session { peer, control, .. } = session;
    close_connection(&ending, stream, control, writer).await;
    let (code, reason, by) = match &ending {
        Ending::ByClient(Some(frame)) => (frame.code, frame.reason.to_string(), "client"),
        Ending::ByClient(None) => (code::NO_STATUS, String::new(), "client"),
        Ending::Lost => (code::ABNORMAL, "connection lost".to_owned(), "client"),
        Ending::ByServer(code, reason) => (*code, (*reason).to_owned(), "server"),
    };
    tracing::info!(
        sid = %id,
        ns = "/",
        transport = "plain-websocket",
        remote = %peer.remote,
        code,
        reason,
        closed_by = by,
        "socket disconnected"
    );
}

impl<A: Adapter> Session<A> {
    async fn read_frames(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        mut evicted: watch::Receiver<Option<Eviction>>,
    ) -> Ending {
        let interval = self.endpoint.config.ping_interval();
        let timeout = self.endpoint.config.ping_timeout();
        let mut next_ping = tokio::time::Instant::now() + interval;
        let mut pong_due: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let ending = match frame {
                        None => Some(Ending::Lost),
                        Some(Err(error)) => Some(read_error(error)),
                        Some(Ok(Message::Close(frame))) => Some(Ending::ByClient(frame)),
                        Some(Ok(Message::Pong(_))) => {
                            pong_due = None;
                            None
                        }
                        // tungstenite answers pings by itself.
                        Some(Ok(Message::Ping(_))) => None,
                        Some(Ok(Message::Text(text))) => self.on_text(text).await,
                        Some(Ok(Message::Binary(bytes))) => self.on_binary(bytes),
                    };
                    if let Some(ending) = ending {
                        return ending;
                    }
                }
                () = tokio::time::sleep_until(pong_due.unwrap_or(next_ping)) => {
                    // As Engine.IO does: a ping every interval, and the answer within the timeout.
                    if pong_due.is_some() {
                        return Ending::ByServer(code::GOING_AWAY, "ping timeout");
                    }
                    let now = tokio::time::Instant::now();
                    if self.control.try_send(Message::Ping(Bytes::new())).is_err() {
                        tracing::debug!(sid = %self.id, "ping not queued");
                    }
                    pong_due = Some(now + timeout);
                    next_ping = now + interval;
                }
                changed = evicted.changed() => {
                    let eviction = match changed {
                        Ok(()) => *evicted.borrow_and_update(),
                        Err(_) => Some(Eviction::Shutdown),
                    };
                    match eviction {
                        Some(Eviction::QueueFull) => return Ending::ByServer(code::POLICY, "outgoing queue full"),
                        Some(Eviction::Shutdown) => return Ending::ByServer(code::GOING_AWAY, "server shutting down"),
                        None => {}
                    }
                }
            }
        }
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Option<Ending> {
        if let Some(ending) = self.spend() {
            return ending;
        }
        match frames::read(text.as_str()) {
            Inbound::Echo => self.send(Message::Text(text)),
            Inbound::Invalid { message, id } => self.send_error(id.as_ref(), &message),
            Inbound::Request(request) => self.on_request(request).await,
        }
    }

    fn on_binary(&mut self, bytes: Bytes) -> Option<Ending> {
        if let Some(ending) = self.spend() {
            return ending;
        }
        self.send(Message::Binary(bytes))
    }

    /// Counts one frame against the rate limit: `Some(None)` drops it, `Some(Some(_))` closes.
    fn spend(&mut self) -> Option<Option<Ending>> {
        let policy = &self.endpoint.policy;
        let verdict = self
            .budget
            .spend(Instant::now(), policy.limits.max_events_per_second);
        if verdict == Verdict::Allowed {
            return None;
        }
        policy
            .dropped_events
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if verdict == Verdict::Flooding {
            tracing::warn!(sid = %self.id, limit = policy.limits.max_events_per_second, "disconnecting a plain WebSocket client that keeps flooding");
            return Some(Some(Ending::ByServer(code::POLICY, "rate limit exceeded")));
        }
        Some(None)
    }

    async fn on_request(&mut self, request: Request) -> Option<Ending> {
        let id = request.id.as_ref();
        match request.event {
            Event::Echo => {
                let data = request.body.get("data").cloned().unwrap_or(Value::Null);
                self.send_frame(&Outbound::Ack { id, data })
            }
            Event::Join | Event::Leave => self.on_room(&request).await,
            Event::Chat => self.on_chat(request).await,
        }
    }

    async fn on_room(&mut self, request: &Request) -> Option<Ending> {
        let id = request.id.as_ref();
        let max_chars = self.endpoint.policy.limits.max_room_name_chars;
        let room = request.body.get("room").map(to_msgpack_value);
        let room = match RoomName::parse(room.as_ref(), max_chars) {
            Ok(room) => room,
            Err(error) => return self.refuse(id, &error),
        };
        let hub = &self.endpoint.hub;
        if request.event == Event::Join {
            if let Err(error) = hub.join(&self.id, room.as_str()) {
                return self.refuse(id, &error);
            }
        } else {
            hub.leave(&self.id, room.as_str());
        }
        let id = id?;
        let size = self.room_size(room.as_str()).await;
        let data = json!(RoomAck {
            room: room.as_str(),
            size
        });
        self.send_frame(&Outbound::Ack { id: Some(id), data })
    }

    async fn on_chat(&mut self, request: Request) -> Option<Ending> {
        let id = request.id;
        let limits = self.endpoint.policy.limits;
        let frame = to_msgpack_value(&Value::Object(request.body));
        let user = self.peer.user.as_ref().map(|user| user.0.clone());
        let message = match chat_message(
            &EventArgs(vec![frame]),
            self.id.as_str(),
            user,
            limits.max_room_name_chars,
        ) {
            Ok(message) => message,
            Err(error) => return self.refuse(id.as_ref(), &error),
        };
        let result = relay_chat(&self.endpoint.io, &self.endpoint.hub, &message).await;
        let data = match result {
            Ok(()) => json!(ChatAck { ok: true }),
            Err(BroadcastError::Socket(failures)) => {
                tracing::warn!(sid = %self.id, room = ?message.room, undelivered = failures.len(), "chat not delivered to members that are not keeping up");
                json!(ChatAck { ok: true })
            }
            Err(error) => {
                tracing::warn!(sid = %self.id, room = ?message.room, %error, "chat broadcast failed");
                json!({ "error": "the message could not be delivered" })
            }
        };
        let id = id?;
        self.send_frame(&Outbound::Ack {
            id: Some(&id),
            data,
        })
    }

    /// Members of a room of `/`: Socket.IO sockets on every node plus plain clients on this one.
    async fn room_size(&self, room: &str) -> usize {
        let Some(root) = self.endpoint.io.of("/") else {
            return self.endpoint.hub.room_size(room);
        };
        let sockets = match root.within(room.to_owned()).fetch_sockets().await {
            Ok(sockets) => sockets.len(),
            Err(error) => {
                tracing::warn!(sid = %self.id, room, %error, "could not count room members");
                0
            }
        };
        sockets + self.endpoint.hub.room_size(room)
    }

    /// Answers a refused request: in its ack when it has an id (as Socket.IO does), else with an
    /// error frame.
    fn refuse(&self, id: Option<&Value>, error: &dyn std::error::Error) -> Option<Ending> {
        tracing::debug!(sid = %self.id, %error, "refused request");
        match id {
            Some(id) => self.send_frame(&Outbound::Ack {
                id: Some(id),
                data: json!({ "error": error.to_string() }),
            }),
            None => self.send_error(None, &error.to_string()),
        }
    }

    fn send_error(&self, id: Option<&Value>, message: &str) -> Option<Ending> {
        self.send_frame(&Outbound::Error { message, id })
    }

    fn send_frame(&self, frame: &Outbound<'_>) -> Option<Ending> {
        self.send(Message::Text(frame.to_text()?))
    }

    /// Queues a frame for this client; a full queue means it is not reading, so it is closed.
    fn send(&self, message: Message) -> Option<Ending> {
        match self.sender.try_send(message) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => None,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Some(Ending::ByServer(code::POLICY, "outgoing queue full"))
            }
        }
    }
}

/// A JSON value as the Socket.IO handlers see their arguments.
fn to_msgpack_value(value: &Value) -> rmpv::Value {
    rmpv::ext::to_value(value).unwrap_or(rmpv::Value::Nil)
}
