//! One plain WebSocket connection: frames in, requests answered, heartbeat.
//!
//! Reading and writing run apart: a writer task (`wire`) drains the client's queue, so a
//! client that stops reading fills only its own queue, while this task goes on reading and
//! keeping time.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::sync::{mpsc, watch};

use super::forward;
use super::frames::{self, Inbound, Outbound, Request};
use super::wire::{CONTROL_QUEUE, Ending, close, close_connection, code, read_error, write_frames};
use super::{Peer, PlainEndpoint};
use crate::metrics::{RefusalCause, TransportLabel};
use crate::relay::chat::{ChatReply, chat_message};
use crate::relay::client::{ClientState, Transport};
use crate::relay::events::{BuiltinEvent, Route};
use crate::relay::payload::{EventArgs, RoomAck};
use crate::relay::plain_members::Eviction;
use crate::relay::rate::Verdict;
use crate::relay::room::RoomName;

struct Session<A: Adapter> {
    id: Sid,
    endpoint: PlainEndpoint<A>,
    client: ClientState,
    /// The client's own queue, also fed by broadcasts.
    sender: mpsc::Sender<Message>,
    control: mpsc::Sender<Message>,
}

/// Serves one upgraded connection until it closes.
pub(super) async fn run<A: Adapter>(socket: WebSocket, endpoint: PlainEndpoint<A>, peer: Peer) {
    let members = endpoint.relay.plain.clone();
    let registration = members.register();
    endpoint.relay.admissions.settle();
    let Some(registration) = registration else {
        let mut socket = socket;
        let _ = socket
            .send(close(code::GOING_AWAY, "server shutting down"))
            .await;
        return;
    };
    let id = registration.id;
    let Peer {
        protocol,
        user,
        handshake,
        requested,
    } = peer;
    let remote = handshake.address.clone();
    tracing::info!(
        sid = %id,
        ns = "/",
        transport = "plain-websocket",
        ?protocol,
        remote = %remote,
        "socket connected"
    );
    let (sink, mut stream) = socket.split();
    let (control, control_queue) = mpsc::channel(CONTROL_QUEUE);
    let metrics = endpoint.relay.metrics.clone();
    let writer = tokio::spawn(write_frames(
        sink,
        control_queue,
        registration.outbox,
        metrics.clone(),
    ));
    let app = endpoint.relay.id_rooms;
    let mut session = Session {
        id,
        endpoint,
        client: ClientState::new(
            Transport::PlainWebSocket,
            None,
            user,
            handshake,
            app,
            metrics.namespace("/"),
        ),
        sender: registration.sender,
        control,
    };
    let admitted = session.admit().await;
    metrics.handshake_took(requested.elapsed());
    let ending = match admitted {
        Some(ending) => ending,
        None => {
            session.client.metrics.connected(TransportLabel::Plain);
            let ending = session.read_frames(&mut stream, registration.evicted).await;
            session.client.metrics.disconnected(reason_name(&ending));
            ending
        }
    };
    let Session {
        control,
        endpoint,
        client,
        sender,
        ..
    } = session;
    // Taken before the client leaves its rooms; spawned before it is gone from the members,
    // so that a shutdown waiting for the last member also waits for this call.
    let rooms = members.rooms_of(&id);
    forward::disconnected(
        &endpoint.io,
        &endpoint.relay,
        id,
        rooms,
        client,
        reason_name(&ending),
    );
    members.unregister(&id);
    close_connection(&ending, stream, control, sender, writer).await;
    let (code, reason, by) = match &ending {
        Ending::ByClient(Some(frame)) => (frame.code, frame.reason.to_string(), "client"),
        Ending::ByClient(None) => (code::NO_STATUS, String::new(), "client"),
        Ending::Lost => (code::ABNORMAL, "connection lost".to_owned(), "client"),
        Ending::ByServer(code, reason) => (*code, (*reason).to_owned(), "server"),
        Ending::ByApp(code, reason) => (*code, reason.clone(), "app"),
    };
    tracing::info!(
        sid = %id,
        ns = "/",
        transport = "plain-websocket",
        remote = %remote,
        code,
        reason,
        closed_by = by,
        "socket disconnected"
    );
}

/// Node socket.io's name for why a plain client left, as the app's disconnect webhook says it.
fn reason_name(ending: &Ending) -> &'static str {
    match ending {
        Ending::ByClient(_) => "client namespace disconnect",
        Ending::Lost => "transport close",
        Ending::ByServer(_, "ping timeout") => "ping timeout",
        Ending::ByServer(_, "server shutting down") => "server shutting down",
        Ending::ByServer(..) => "transport error",
        Ending::ByApp(..) => "server namespace disconnect",
    }
}

impl<A: Adapter> Session<A> {
    /// Asks the app, when there is one, whether the client may stay; `Some` ends the session.
    async fn admit(&mut self) -> Option<Ending> {
        let endpoint = &self.endpoint;
        match forward::admit(&endpoint.io, &endpoint.relay, &self.id, &self.client).await {
            Ok(reply) => self.send_reply(reply),
            Err(message) => {
                endpoint.relay.metrics.handshake_refused(RefusalCause::App);
                tracing::info!(sid = %self.id, reason = message, "plain WebSocket refused by the app");
                Some(Ending::ByApp(code::POLICY, message))
            }
        }
    }

    /// Sends an answer's frames; `Some` when the app disconnected the client.
    fn send_reply(&self, reply: forward::Reply) -> Option<Ending> {
        for frame in reply.frames {
            if let Some(ending) = self.send(Message::Text(frame)) {
                return Some(ending);
            }
        }
        reply
            .disconnect
            .then(|| Ending::ByApp(code::NORMAL, "server namespace disconnect".to_owned()))
    }

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
                    if let Some(Ok(Message::Text(text))) = &frame {
                        self.endpoint.relay.metrics.plain_received(text.len());
                    } else if let Some(Ok(Message::Binary(bytes))) = &frame {
                        self.endpoint.relay.metrics.plain_received(bytes.len());
                    }
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
                        Some(Eviction::Disconnect) => return Ending::ByApp(code::NORMAL, "server namespace disconnect".to_owned()),
                        None => {}
                    }
                }
            }
        }
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Option<Ending> {
        let inbound = frames::read(text.as_str());
        let (id, route) = match &inbound {
            Inbound::Echo => (None, Route::Builtin(BuiltinEvent::Echo)),
            Inbound::Invalid { id, .. } => (id.as_ref(), Route::Unhandled),
            Inbound::Request(request) => (
                request.id.as_ref(),
                self.endpoint.relay.events.plain_route(&request.name),
            ),
        };
        if let Some(ending) = self.spend(id, route) {
            return ending;
        }
        match inbound {
            Inbound::Echo => self.send(Message::Text(text)),
            Inbound::Invalid { message, id } => self.send_error(id.as_ref(), &message),
            Inbound::Request(request) => self.on_request(request).await,
        }
    }

    fn on_binary(&mut self, bytes: Bytes) -> Option<Ending> {
        if let Some(ending) = self.spend(None, Route::Builtin(BuiltinEvent::Echo)) {
            return ending;
        }
        self.send(Message::Binary(bytes))
    }

    /// Counts one frame against the rate limit: `Some(_)` means the frame is refused (answered
    /// in an ack when it has an `id`), `Some(Some(_))` that the connection closes.
    fn spend(&mut self, id: Option<&Value>, route: Route) -> Option<Option<Ending>> {
        let relay = &self.endpoint.relay;
        let verdict = relay.spend(&self.client, self.id.as_str(), route);
        if verdict == Verdict::Allowed {
            return None;
        }
        if let Some(ending) = id.and_then(|id| self.refuse(Some(id), &relay.rate.error())) {
            return Some(Some(ending));
        }
        if verdict == Verdict::Flooding {
            return Some(Some(Ending::ByServer(code::POLICY, "rate limit exceeded")));
        }
        Some(None)
    }

    async fn on_request(&mut self, request: Request) -> Option<Ending> {
        let id = request.id.as_ref();
        match self.endpoint.relay.events.plain_route(&request.name) {
            Route::Builtin(BuiltinEvent::Echo) => {
                let data = request.body.get("data").cloned().unwrap_or(Value::Null);
                self.send_frame(&Outbound::Ack { id, data })
            }
            Route::Builtin(BuiltinEvent::Join | BuiltinEvent::Leave) => {
                self.on_room(&request).await
            }
            Route::Builtin(BuiltinEvent::Chat) => self.on_chat(request).await,
            Route::Webhook => {
                let data = request.body.get("data").cloned().unwrap_or(Value::Null);
                let endpoint = &self.endpoint;
                let reply = forward::event(
                    &endpoint.io,
                    &endpoint.relay,
                    &self.id,
                    &self.client,
                    &request.name,
                    data,
                    id,
                )
                .await;
                self.send_reply(reply)
            }
            // `message` is not a plain event; a disabled built-in without a webhook is unknown.
            Route::Builtin(BuiltinEvent::Message) | Route::Unhandled => {
                self.send_error(id, &frames::unknown_event(&request.name))
            }
        }
    }

    async fn on_room(&mut self, request: &Request) -> Option<Ending> {
        let id = request.id.as_ref();
        let relay = &self.endpoint.relay;
        let max_chars = relay.limits.max_room_name_chars;
        let room = request.body.get("room").map(to_msgpack_value);
        let room = match RoomName::parse(room.as_ref(), max_chars) {
            Ok(room) => room,
            Err(error) => return self.refuse(id, &error),
        };
        let members = &relay.plain;
        if request.event == Some(BuiltinEvent::Join) {
            if let Err(error) = members.join(&self.id, room.as_str()) {
                return self.refuse(id, &error);
            }
        } else {
            members.leave(&self.id, room.as_str());
        }
        let id = id?;
        let size = relay
            .room_size(&self.endpoint.io, "/", true, room.as_str())
            .await;
        let data = json!(RoomAck {
            room: room.as_str(),
            size
        });
        self.send_frame(&Outbound::Ack { id: Some(id), data })
    }

    async fn on_chat(&mut self, request: Request) -> Option<Ending> {
        let id = request.id;
        let relay = &self.endpoint.relay;
        let frame = to_msgpack_value(&Value::Object(request.body));
        let message = match chat_message(
            &EventArgs(vec![frame]),
            self.id.as_str(),
            self.client.user_id(),
            relay.limits.max_room_name_chars,
        ) {
            Ok(message) => message,
            Err(error) => return self.refuse(id.as_ref(), &error),
        };
        // Plain clients are in the rooms of `/`.
        let result = relay
            .deliver_chat(&self.endpoint.io, "/", true, &message)
            .await;
        let data = json!(ChatReply::from_broadcast(
            result,
            self.id.as_str(),
            message.room.as_deref()
        ));
        let id = id?;
        self.send_frame(&Outbound::Ack {
            id: Some(&id),
            data,
        })
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
                self.endpoint.relay.metrics.dropped_queue_full();
                Some(Ending::ByServer(code::POLICY, "outgoing queue full"))
            }
        }
    }
}

/// A JSON value as the Socket.IO handlers see their arguments.
fn to_msgpack_value(value: &Value) -> rmpv::Value {
    rmpv::ext::to_value(value).unwrap_or(rmpv::Value::Nil)
}
