//! A `chat` request turned into the message room members receive, and the answer its sender
//! gets: the same on both transports.

use serde::Serialize;
use socketioxide_core::adapter::errors::BroadcastError;

use super::payload::{ChatAck, ChatMessage, ChatRequest, ErrorAck, EventArgs, now_ms};
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

/// What the sender of a `chat` is acknowledged with: `{ "ok": true }` or `{ "error" }`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ChatReply {
    /// The message went out.
    Sent(ChatAck),
    /// The message could not be delivered.
    Failed(ErrorAck),
}

impl ChatReply {
    /// The answer to a chat whose broadcast ended with `result`; `sender` and `room` only
    /// label the log line.
    pub fn from_broadcast(
        result: Result<(), BroadcastError>,
        sender: &str,
        room: Option<&str>,
    ) -> Self {
        match result {
            Ok(()) => ChatReply::Sent(ChatAck { ok: true }),
            // Members whose queue is full miss this message; the heartbeat disconnects those
            // that stopped reading, and everyone else got it.
            Err(BroadcastError::Socket(failures)) => {
                tracing::warn!(
                    sid = sender,
                    room,
                    undelivered = failures.len(),
                    "chat not delivered to members that are not keeping up"
                );
                ChatReply::Sent(ChatAck { ok: true })
            }
            Err(error) => {
                tracing::warn!(sid = sender, room, %error, "chat broadcast failed");
                ChatReply::Failed(ErrorAck {
                    error: "the message could not be delivered".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::room::MAX_ROOM_NAME_CHARS;
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
