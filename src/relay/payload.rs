//! Wire types of the event contract, named and shaped as frontends already send them.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// All arguments of an event, in order, binary ones kept as binary.
///
/// socketioxide treats tuple-like types as "every argument" and anything else as "the first
/// argument", so this type (de)serializes as a tuple of any length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventArgs(pub Vec<rmpv::Value>);

impl EventArgs {
    /// The first argument, if any.
    pub fn first(&self) -> Option<&rmpv::Value> {
        self.0.first()
    }
}

impl Serialize for EventArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for EventArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = EventArgs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventArgs, A::Error> {
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(EventArgs(args))
            }
        }
        // The length is an upper bound for tuple visitors; the sequence ends where the packet does.
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

/// The welcome `message` sent to a socket when it connects to `/`.
#[derive(Debug, Serialize)]
pub struct Welcome<'a> {
    /// A greeting.
    pub text: &'static str,
    /// The socket id the client was given.
    pub id: &'a str,
}

/// A `chat` request from a client.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// Target room; `None` means every socket of the namespace.
    #[serde(default)]
    pub room: Option<rmpv::Value>,
    /// Message text.
    pub text: rmpv::Value,
}

/// A `chat` message as delivered to room members.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    /// Room it was sent to, `null` for the whole namespace.
    pub room: Option<String>,
    /// Message text.
    pub text: String,
    /// Socket id of the sender.
    pub from: String,
    /// The sender's authenticated user (JWT `sub`), when authentication is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Server time when it was relayed, Unix milliseconds.
    pub ts: u64,
}

/// Acknowledgement of `join` and `leave`.
#[derive(Debug, Serialize)]
pub struct RoomAck<'a> {
    /// The room.
    pub room: &'a str,
    /// Number of sockets in the room afterwards.
    pub size: usize,
}

/// Acknowledgement of an accepted `chat`.
#[derive(Debug, Serialize)]
pub struct ChatAck {
    /// Always `true`.
    pub ok: bool,
}

/// Acknowledgement of a request that was refused.
#[derive(Debug, Serialize)]
pub struct ErrorAck {
    /// What was wrong, in words.
    pub error: String,
}

/// Room membership on the `/chat` namespace.
#[derive(Debug, Serialize)]
pub struct Presence<'a> {
    /// The room.
    pub room: &'a str,
    /// Socket ids of its members, sorted.
    pub members: Vec<String>,
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
