//! `join`, `leave` and `chat`: the room events shared by every namespace of the contract.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};
use socketioxide::{SendError, SocketError, SocketIo};
use socketioxide_core::adapter::errors::BroadcastError;

use super::arguments::Args;
use super::auth::UserId;
use super::ordering::InOrder;
use super::policy::RelayPolicy;

use super::payload::{ChatAck, ChatMessage, ChatRequest, ErrorAck, EventArgs, RoomAck, now_ms};
use super::room::{RoomName, RoomNameError};
use crate::plain_ws::{self, PlainHub};

/// Why a `chat` request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The first argument is not a `{ room, text }` object.
    #[error("chat expects an object {{ room, text }}")]
    NotAnObject,
    /// `text` is missing or not a string.
    #[error("chat text must be a string")]
    Text,
    /// `room` is present but not a valid room name.
    #[error(transparent)]
    Room(#[from] RoomNameError),
}

/// Adds the socket to a room; answers `{ room, size }` or `{ error }`.
pub async fn on_join<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    ack: AckSender<A>,
    policy: State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    if let Some(args) = args.accept(&turn, &socket, &policy).await {
        join(&socket, &args, ack, &policy).await;
    }
}

/// Removes the socket from a room; answers `{ room, size }` or `{ error }`.
pub async fn on_leave<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    ack: AckSender<A>,
    policy: State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    if let Some(args) = args.accept(&turn, &socket, &policy).await {
        leave(&socket, &args, ack, &policy).await;
    }
}

/// Joins the room named by the first argument and acknowledges; returns the room on success.
/// The event has already been through [`Args::accept`].
pub async fn join<A: Adapter>(
    socket: &SocketRef<A>,
    args: &EventArgs,
    ack: AckSender<A>,
    policy: &RelayPolicy,
) -> Option<RoomName> {
    let (room, ack) = requested_room(socket, args, ack, policy, "join")?;
    let rooms = socket.rooms();
    let already_in = rooms.iter().any(|r| r == room.as_str());
    if !already_in && rooms.len() >= policy.limits.max_rooms_per_socket {
        let error = RoomLimitError(policy.limits.max_rooms_per_socket);
        refuse(socket, ack, "join", &error);
        return None;
    }
    socket.join(room.as_str().to_owned());
    tracing::debug!(sid = %socket.id, ns = socket.ns(), %room, "joined room");
    acknowledge_room(socket, ack, &room).await;
    Some(room)
}

/// Reads the room argument; a refusal is acknowledged here, and `None` means the event is
/// done with.
fn requested_room<A: Adapter>(
    socket: &SocketRef<A>,
    args: &EventArgs,
    ack: AckSender<A>,
    policy: &RelayPolicy,
    event: &str,
) -> Option<(RoomName, AckSender<A>)> {
    match RoomName::parse(args.first(), policy.limits.max_room_name_chars) {
        Ok(room) => Some((room, ack)),
        Err(error) => {
            refuse(socket, ack, event, &error);
            None
        }
    }
}

/// Leaves the room named by the first argument and acknowledges; returns the room when the
/// socket was a member. The event has already been through [`Args::accept`].
pub async fn leave<A: Adapter>(
    socket: &SocketRef<A>,
    args: &EventArgs,
    ack: AckSender<A>,
    policy: &RelayPolicy,
) -> Option<RoomName> {
    let (room, ack) = requested_room(socket, args, ack, policy, "leave")?;
    let was_member = socket.rooms().iter().any(|r| r == room.as_str());
    socket.leave(room.as_str().to_owned());
    tracing::debug!(sid = %socket.id, ns = socket.ns(), %room, "left room");
    acknowledge_room(socket, ack, &room).await;
    was_member.then_some(room)
}

/// Relays a chat message to a room (or the whole namespace); answers `{ ok }` or `{ error }`.
pub async fn on_chat<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    args: Args,
    ack: AckSender<A>,
    State(policy): State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    let Some(args) = args.accept(&turn, &socket, &policy).await else {
        return;
    };
    let user = socket.extensions.get::<UserId>().map(|user| user.0);
    let message = match chat_message(
        &args,
        socket.id.as_str(),
        user,
        policy.limits.max_room_name_chars,
    ) {
        Ok(message) => message,
        Err(error) => return refuse(&socket, ack, "chat", &error),
    };
    // `within` includes the sender when it is a member; outsiders never see room traffic.
    let result = match socket.extensions.get::<Arc<PlainHub>>() {
        // Sockets of `/` share their rooms with plain WebSocket clients.
        Some(plain) => plain_ws::relay_chat(&io, &plain, &message).await,
        None => match &message.room {
            Some(room) => socket.within(room.clone()).emit("chat", &message).await,
            None => match io.of(socket.ns()) {
                Some(namespace) => namespace.emit("chat", &message).await,
                None => Ok(()),
            },
        },
    };
    match result {
        Ok(()) => send_ack(&socket, ack, &ChatAck { ok: true }),
        // Members whose queue is full miss this message; the heartbeat disconnects those
        // that stopped reading, and everyone else got it.
        Err(BroadcastError::Socket(failures)) => {
            tracing::warn!(sid = %socket.id, room = ?message.room, undelivered = failures.len(), "chat not delivered to members that are not keeping up");
            send_ack(&socket, ack, &ChatAck { ok: true });
        }
        Err(error) => {
            tracing::warn!(sid = %socket.id, ns = socket.ns(), room = ?message.room, %error, "chat broadcast failed");
            send_ack(
                &socket,
                ack,
                &ErrorAck {
                    error: "the message could not be delivered".into(),
                },
            );
        }
    }
}

/// Events nobody handles still count against the sender's rate limit, so unknown event names
/// cannot be used to flood around it.
pub async fn on_unknown_event<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    State(policy): State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    if args.accept(&turn, &socket, &policy).await.is_some() {
        tracing::debug!(sid = %socket.id, ns = socket.ns(), "event without a handler ignored");
    }
}

/// A `join` past the per-socket room limit.
#[derive(Debug, thiserror::Error)]
#[error("too many rooms: a socket may be in at most {0}")]
pub struct RoomLimitError(pub usize);

/// Builds the relayed message from a `chat` request, room names limited to `max_room_chars`.
pub fn chat_message(
    args: &EventArgs,
    from: &str,
    user: Option<String>,
    max_room_chars: usize,
) -> Result<ChatMessage, ChatError> {
    let request: ChatRequest = args
        .first()
        .filter(|value| value.is_map())
        .and_then(|value| rmpv::ext::from_value(value.clone()).ok())
        .ok_or(ChatError::NotAnObject)?;
    let text = request.text.as_str().ok_or(ChatError::Text)?.to_owned();
    let room = match request.room {
        None | Some(rmpv::Value::Nil) => None,
        Some(value) => Some(
            RoomName::parse(Some(&value), max_room_chars)?
                .as_str()
                .to_owned(),
        ),
    };
    Ok(ChatMessage {
        room,
        text,
        from: from.to_owned(),
        user,
        ts: now_ms(),
    })
}

/// Socket ids of a room's members across every node, sorted.
pub async fn room_members<A: Adapter>(socket: &SocketRef<A>, room: &str) -> Vec<String> {
    match socket.within(room.to_owned()).fetch_sockets().await {
        Ok(sockets) => {
            let mut ids: Vec<String> = sockets.iter().map(|s| s.data().id.to_string()).collect();
            ids.sort_unstable();
            ids
        }
        Err(error) => {
            tracing::warn!(sid = %socket.id, room, %error, "could not list room members");
            Vec::new()
        }
    }
}

async fn acknowledge_room<A: Adapter>(socket: &SocketRef<A>, ack: AckSender<A>, room: &RoomName) {
    // Plain WebSocket members count on their own node only (see `plain_ws`).
    let plain_members = socket
        .extensions
        .get::<Arc<PlainHub>>()
        .map_or(0, |plain| plain.room_size(room.as_str()));
    let size = room_members(socket, room.as_str()).await.len() + plain_members;
    send_ack(
        socket,
        ack,
        &RoomAck {
            room: room.as_str(),
            size,
        },
    );
}

fn refuse<A: Adapter>(
    socket: &SocketRef<A>,
    ack: AckSender<A>,
    event: &str,
    error: &dyn std::error::Error,
) {
    tracing::debug!(sid = %socket.id, ns = socket.ns(), event, %error, "refused request");
    send_ack(
        socket,
        ack,
        &ErrorAck {
            error: error.to_string(),
        },
    );
}

/// Sends an ack when the client asked for one; a failure only means the client is gone or stalled.
pub fn send_ack<A: Adapter, T: serde::Serialize + ?Sized>(
    socket: &SocketRef<A>,
    ack: AckSender<A>,
    data: &T,
) {
    match ack.send(data) {
        Ok(()) => {}
        // The client is connected but not reading: say so, the heartbeat will drop it.
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            tracing::warn!(sid = %socket.id, ns = socket.ns(), "ack dropped: the socket's queue is full");
        }
        Err(error) => tracing::debug!(sid = %socket.id, ns = socket.ns(), %error, "ack not sent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::room::MAX_ROOM_NAME_CHARS;
    use rmpv::Value;

    fn args(value: Value) -> EventArgs {
        EventArgs(vec![value])
    }

    fn object(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )
    }

    #[test]
    fn chat_to_a_room() {
        let request = object(vec![
            ("room", Value::from("r1")),
            ("text", Value::from("hi")),
        ]);
        let message =
            chat_message(&args(request), "sid1", None, MAX_ROOM_NAME_CHARS).expect("valid chat");
        assert_eq!(message.room.as_deref(), Some("r1"));
        assert_eq!(message.text, "hi");
        assert_eq!(message.from, "sid1");
        assert!(message.ts > 0);
    }

    #[test]
    fn chat_without_room_goes_to_everyone() {
        let message = chat_message(
            &args(object(vec![("text", Value::from("hi"))])),
            "s",
            None,
            MAX_ROOM_NAME_CHARS,
        )
        .expect("valid chat");
        assert_eq!(message.room, None);
        let with_null = object(vec![("room", Value::Nil), ("text", Value::from("hi"))]);
        assert_eq!(
            chat_message(&args(with_null), "s", None, MAX_ROOM_NAME_CHARS)
                .expect("valid")
                .room,
            None
        );
    }

    #[test]
    fn bad_chat_requests_are_refused() {
        assert!(matches!(
            chat_message(&EventArgs::default(), "s", None, MAX_ROOM_NAME_CHARS),
            Err(ChatError::NotAnObject)
        ));
        assert!(matches!(
            chat_message(&args(Value::from("hi")), "s", None, MAX_ROOM_NAME_CHARS),
            Err(ChatError::NotAnObject)
        ));
        assert!(matches!(
            chat_message(
                &args(object(vec![("text", Value::from(3))])),
                "s",
                None,
                MAX_ROOM_NAME_CHARS
            ),
            Err(ChatError::Text)
        ));
        let bad_room = object(vec![("room", Value::from("")), ("text", Value::from("x"))]);
        assert!(matches!(
            chat_message(&args(bad_room), "s", None, MAX_ROOM_NAME_CHARS),
            Err(ChatError::Room(_))
        ));
    }
}
