//! `join`, `leave` and `chat`: the room events shared by every namespace of the contract.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};

use super::payload::{ChatAck, ChatMessage, ChatRequest, ErrorAck, EventArgs, RoomAck, now_ms};
use super::room::{RoomName, RoomNameError};

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
    Data(args): Data<EventArgs>,
    ack: AckSender<A>,
) {
    let room = match RoomName::parse(args.first()) {
        Ok(room) => room,
        Err(error) => return refuse(&socket, ack, "join", &error),
    };
    socket.join(room.as_str().to_owned());
    tracing::debug!(sid = %socket.id, ns = socket.ns(), %room, "joined room");
    acknowledge_room(&socket, ack, &room).await;
}

/// Removes the socket from a room; answers `{ room, size }` or `{ error }`.
pub async fn on_leave<A: Adapter>(
    socket: SocketRef<A>,
    Data(args): Data<EventArgs>,
    ack: AckSender<A>,
) {
    let room = match RoomName::parse(args.first()) {
        Ok(room) => room,
        Err(error) => return refuse(&socket, ack, "leave", &error),
    };
    socket.leave(room.as_str().to_owned());
    tracing::debug!(sid = %socket.id, ns = socket.ns(), %room, "left room");
    acknowledge_room(&socket, ack, &room).await;
}

/// Relays a chat message to a room (or the whole namespace); answers `{ ok }` or `{ error }`.
pub async fn on_chat<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    Data(args): Data<EventArgs>,
    ack: AckSender<A>,
) {
    let message = match chat_message(&args, socket.id.as_str()) {
        Ok(message) => message,
        Err(error) => return refuse(&socket, ack, "chat", &error),
    };
    // `within` includes the sender when it is a member; outsiders never see room traffic.
    let result = match &message.room {
        Some(room) => socket.within(room.clone()).emit("chat", &message).await,
        None => match io.of(socket.ns()) {
            Some(namespace) => namespace.emit("chat", &message).await,
            None => Ok(()),
        },
    };
    if let Err(error) = result {
        tracing::warn!(sid = %socket.id, ns = socket.ns(), room = ?message.room, %error, "chat broadcast failed");
        send_ack(
            &socket,
            ack,
            &ErrorAck {
                error: "the message could not be delivered".into(),
            },
        );
        return;
    }
    send_ack(&socket, ack, &ChatAck { ok: true });
}

/// Builds the relayed message from a `chat` request.
pub fn chat_message(args: &EventArgs, from: &str) -> Result<ChatMessage, ChatError> {
    let request: ChatRequest = args
        .first()
        .filter(|value| value.is_map())
        .and_then(|value| rmpv::ext::from_value(value.clone()).ok())
        .ok_or(ChatError::NotAnObject)?;
    let text = request.text.as_str().ok_or(ChatError::Text)?.to_owned();
    let room = match request.room {
        None | Some(rmpv::Value::Nil) => None,
        Some(value) => Some(RoomName::parse(Some(&value))?.as_str().to_owned()),
    };
    Ok(ChatMessage {
        room,
        text,
        from: from.to_owned(),
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
    let size = room_members(socket, room.as_str()).await.len();
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
    if let Err(error) = ack.send(data) {
        tracing::debug!(sid = %socket.id, ns = socket.ns(), %error, "ack not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let message = chat_message(&args(request), "sid1").expect("valid chat");
        assert_eq!(message.room.as_deref(), Some("r1"));
        assert_eq!(message.text, "hi");
        assert_eq!(message.from, "sid1");
        assert!(message.ts > 0);
    }

    #[test]
    fn chat_without_room_goes_to_everyone() {
        let message = chat_message(&args(object(vec![("text", Value::from("hi"))])), "s")
            .expect("valid chat");
        assert_eq!(message.room, None);
        let with_null = object(vec![("room", Value::Nil), ("text", Value::from("hi"))]);
        assert_eq!(
            chat_message(&args(with_null), "s").expect("valid").room,
            None
        );
    }

    #[test]
    fn bad_chat_requests_are_refused() {
        assert!(matches!(
            chat_message(&EventArgs::default(), "s"),
            Err(ChatError::NotAnObject)
        ));
        assert!(matches!(
            chat_message(&args(Value::from("hi")), "s"),
            Err(ChatError::NotAnObject)
        ));
        assert!(matches!(
            chat_message(&args(object(vec![("text", Value::from(3))])), "s"),
            Err(ChatError::Text)
        ));
        let bad_room = object(vec![("room", Value::from("")), ("text", Value::from("x"))]);
        assert!(matches!(
            chat_message(&args(bad_room), "s"),
            Err(ChatError::Room(_))
        ));
    }
}
