//! The JSON frames plain WebSocket clients exchange with iorelay.
//!
//! A text frame that starts with `{` is read as a request `{"event": ..., "id"?: ...}`; any
//! other frame is echoed. Answers carry the request's `id`, as Socket.IO acks carry theirs.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::relay::events::{self, BuiltinEvent, PLAIN_EVENTS};

/// What a text frame from a plain client asks for.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// Not a request (or a JSON object without `event`): sent back as it came.
    Echo,
    /// A request of the event contract.
    Request(Request),
    /// Starts with `{` but is no request; answered with an error frame.
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
    /// The event's name.
    pub name: String,
    /// The built-in event of that name, one of [`PLAIN_EVENTS`], if it is one.
    pub event: Option<BuiltinEvent>,
    /// Present when the client wants an `ack` frame back.
    pub id: Option<Value>,
    /// The whole frame: `room`, `text`, `data` and the rest are read from it.
    pub body: Map<String, Value>,
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
    Inbound::Request(Request {
        event: events::plain_event(event),
        name: event.clone(),
        id,
        body,
    })
}

/// What a client that sent an event no handler takes is told.
pub fn unknown_event(name: &str) -> String {
    format!("unknown event \"{name}\": expected {}", expected_events())
}

/// The plain events as a sentence: "join, leave, chat or echo".
fn expected_events() -> String {
    let names: Vec<&str> = PLAIN_EVENTS.iter().map(|event| event.name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
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
        assert_eq!(request.event, Some(BuiltinEvent::Join));
        assert_eq!(request.id, Some(json!(7)));
        assert_eq!(request.body["room"], json!("r"));
    }

    #[test]
    fn broken_requests_get_an_error() {
        assert!(matches!(read("{nope"), Inbound::Invalid { id: None, .. }));
        let Inbound::Request(request) = read(r#"{"event":"dance","id":"a"}"#) else {
            panic!("a request for an event that is not built in");
        };
        assert_eq!((request.name.as_str(), request.event), ("dance", None));
        assert_eq!(request.id, Some(json!("a")));
        let message = unknown_event("dance");
        assert_eq!(
            message,
            "unknown event \"dance\": expected join, leave, chat or echo"
        );
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
