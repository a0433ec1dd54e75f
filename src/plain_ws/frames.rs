//! The JSON frames plain WebSocket clients exchange with iorelay.
//!
//! A text frame that starts with `{` is read as a request `{"event": ..., "id"?: ...}`; any
//! other frame is echoed. Answers carry the request's `id`, as Socket.IO acks carry theirs.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::realtime::payload::ChatMessage;

/// What a text frame from a plain client asks for.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// Not a request (or a JSON object without `event`): sent back as it came.
    Echo,
    /// A request of the event contract.
    Request(Request),
    /// Starts with `{` but is no request iorelay understands; answered with an error frame.
    Invalid {
        /// What is wrong, in words.
        message: String,
        /// The request's `id`, when it could be read.
        id: Option<Value>,
    },
}

/// A request from a plain client.
#[derive(Debug, PartialEq)]
pub struct Request {
    /// The event.
    pub event: Event,
    /// Present when the client wants an `ack` frame back.
    pub id: Option<Value>,
    /// The whole frame: `room`, `text`, `data` and the rest are read from it.
    pub body: Map<String, Value>,
}

/// The events a plain client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `{"event":"join","room":"r"}`
    Join,
    /// `{"event":"leave","room":"r"}`
    Leave,
    /// `{"event":"chat","room"?:"r","text":"hi"}`
    Chat,
    /// `{"event":"echo","data":...}`
    Echo,
}

impl Event {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "join" => Some(Event::Join),
            "leave" => Some(Event::Leave),
            "chat" => Some(Event::Chat),
            "echo" => Some(Event::Echo),
            _ => None,
        }
    }
}

/// A frame iorelay sends to plain clients.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound<'a> {
    /// The answer to a request.
    Ack {
        /// The request's `id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        /// What a Socket.IO client's ack would carry.
        data: Value,
    },
    /// A frame iorelay could not act on.
    Error {
        /// What is wrong, in words.
        message: &'a str,
        /// The request's `id`, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
    /// A chat message, its fields at the top level.
    Chat(&'a ChatMessage),
}

impl Outbound<'_> {
    /// The frame as JSON text.
    pub fn to_text(&self) -> Option<Utf8Bytes> {
        match serde_json::to_string(self) {
            Ok(text) => Some(text.into()),
            Err(error) => {
                tracing::warn!(%error, "plain WebSocket frame not serialisable");
                None
            }
        }
    }
}

/// Reads a text frame.
pub fn read(text: &str) -> Inbound {
    if !text.starts_with('{') {
        return Inbound::Echo;
    }
    let mut body = match serde_json::from_str::<Map<String, Value>>(text) {
        Ok(body) => body,
        Err(error) => {
            return Inbound::Invalid {
                message: format!("invalid JSON: {error}"),
                id: None,
            };
        }
    };
    let id = body.remove("id").filter(|id| !id.is_null());
    let event = match body.get("event") {
        None => return Inbound::Echo,
        Some(Value::String(name)) => name,
        Some(_) => {
            return Inbound::Invalid {
                message: "\"event\" must be a string".into(),
                id,
            };
        }
    };
    match Event::from_name(event) {
        Some(event) => Inbound::Request(Request { event, id, body }),
        None => Inbound::Invalid {
            message: format!("unknown event \"{event}\": expected join, leave, chat or echo"),
            id,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn other_text_is_echoed() {
        assert_eq!(read("hello"), Inbound::Echo);
        assert_eq!(read(" {\"event\":\"join\"}"), Inbound::Echo);
        assert_eq!(read(r#"{"type":"hello"}"#), Inbound::Echo);
    }

    #[test]
    fn requests_are_recognised() {
        let Inbound::Request(request) = read(r#"{"event":"join","room":"r","id":7}"#) else {
            panic!("a join request");
        };
        assert_eq!(request.event, Event::Join);
        assert_eq!(request.id, Some(json!(7)));
        assert_eq!(request.body["room"], json!("r"));
    }

    #[test]
    fn broken_requests_get_an_error() {
        assert!(matches!(read("{nope"), Inbound::Invalid { id: None, .. }));
        let Inbound::Invalid { message, id } = read(r#"{"event":"dance","id":"a"}"#) else {
            panic!("an unknown event");
        };
        assert!(message.contains("unknown event \"dance\""), "{message}");
        assert_eq!(id, Some(json!("a")));
        assert!(matches!(read(r#"{"event":3}"#), Inbound::Invalid { .. }));
    }

    #[test]
    fn outbound_frames_have_the_documented_shape() {
        let id = json!(7);
        let ack = Outbound::Ack {
            id: Some(&id),
            data: json!({"room": "r", "size": 2}),
        };
        assert_eq!(
            ack.to_text().expect("json").as_str(),
            r#"{"event":"ack","id":7,"data":{"room":"r","size":2}}"#
        );
        let message = ChatMessage {
            room: None,
            text: "hi".into(),
            from: "abc".into(),
            user: None,
            ts: 5,
        };
        assert_eq!(
            Outbound::Chat(&message).to_text().expect("json").as_str(),
            r#"{"event":"chat","room":null,"text":"hi","from":"abc","ts":5}"#
        );
        let error = Outbound::Error {
            message: "bad",
            id: None,
        };
        assert_eq!(
            error.to_text().expect("json").as_str(),
            r#"{"event":"error","message":"bad"}"#
        );
    }
}
