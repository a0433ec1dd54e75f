//! Connection state recovery, as Node socket.io's `connectionStateRecovery` option: a client
//! that lost its connection for a moment gets its socket id, its rooms and the packets it
//! missed back.
//!
//! socketioxide keeps no sessions and no packets itself: a [`SessionStore`] given to
//! [`SocketIoBuilder::with_session_store`](crate::SocketIoBuilder::with_session_store) does.
//! With a store:
//! * the CONNECT answer carries a private session id next to the socket id (`{sid, pid}`);
//! * every event sent without an acknowledgement and not volatile (a broadcast or a
//!   `socket.emit`) is handed to [`SessionStore::record`], which stores it and appends its
//!   offset as the last argument, as Node does;
//! * a CONNECT whose auth carries `pid` and `offset` strings asks [`SessionStore::restore`]; a
//!   session found gives the socket its old id, its rooms and its state, the missed packets are
//!   sent before the CONNECT answer, and [`Socket::recovered`](crate::socket::Socket::recovered)
//!   is true;
//! * the store hears of each socket's life through [`SessionStore::update`].
//!
//! Clients of protocol v4 (Engine.IO 3) never recover: their CONNECT carries no data.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use socketioxide_core::{Sid, Str, Value, adapter::BroadcastOptions, adapter::Room};

/// What a socket's app keeps for a session, handed back when it is recovered.
pub type SessionState = Arc<dyn Any + Send + Sync>;

/// A session found by [`SessionStore::restore`].
pub struct RestoredSession {
    /// The socket id the client had.
    pub sid: Sid,
    /// The rooms it was in.
    pub rooms: Vec<Room>,
    /// What the app kept for it (see [`Socket::session_state`](crate::socket::Socket::session_state)).
    pub state: Option<SessionState>,
    /// The event packets' data it missed, each with its offset appended, oldest first.
    pub missed: Vec<Value>,
}

impl Debug for RestoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoredSession")
            .field("sid", &self.sid)
            .field("rooms", &self.rooms)
            .field("missed", &self.missed.len())
            .finish()
    }
}

/// A moment of a recoverable socket's life, as [`SessionStore::update`] hears it.
#[derive(Debug)]
pub enum SessionEvent {
    /// The socket has joined its namespace (fresh or recovered).
    Connected {
        /// Its rooms.
        rooms: Vec<Room>,
        /// Its app's state.
        state: Option<SessionState>,
    },
    /// The socket joined or left rooms (only when [`SessionStore::tracks_live_sessions`]).
    RoomsChanged {
        /// Its rooms now.
        rooms: Vec<Room>,
    },
    /// The socket left; `recoverable` when the reason is one Node recovers from (the transport
    /// closed or failed, a ping timeout, the server shutting down), not a namespace disconnect.
    Disconnected {
        /// Its rooms when it left.
        rooms: Vec<Room>,
        /// Its app's state.
        state: Option<SessionState>,
        /// Whether the client may come back for it.
        recoverable: bool,
    },
}

/// Where sessions and the packets sent since live.
pub trait SessionStore: Send + Sync + Debug + 'static {
    /// Stores an event packet's `data` (the event name and its arguments) sent in namespace
    /// `ns` to the sockets `opts` selects, and appends its offset to `data` with
    /// [`append_offset`].
    fn record(&self, ns: &Str, opts: &BroadcastOptions, data: &mut Value);

    /// The session `pid` of namespace `ns`, with the packets sent to it after `offset`; `None`
    /// when the session is unknown or expired, or the offset unknown.
    fn restore(
        &self,
        ns: Str,
        pid: Str,
        offset: Str,
    ) -> BoxFuture<'static, Option<RestoredSession>>;

    /// A socket's session `pid` (socket id `sid`) changed.
    fn update(&self, ns: &Str, sid: Sid, pid: &Str, event: SessionEvent);

    /// Whether [`SessionEvent::RoomsChanged`] is wanted (a store that keeps live sessions
    /// elsewhere); otherwise a room change costs nothing.
    fn tracks_live_sessions(&self) -> bool {
        false
    }

    /// A new private session id.
    fn new_pid(&self) -> Str;
}

/// Appends `offset` as the last argument of an event's encoded data: a JSON array (the default
/// parser) or a MessagePack array (the msgpack parser).
pub fn append_offset(data: &mut Value, offset: &str) {
    match data {
        Value::Str(text, _) => {
            let Some(body) = text.as_str().strip_suffix(']') else {
                return;
            };
            let quoted = json_string(offset);
            let mut out = String::with_capacity(text.len() + quoted.len() + 1);
            out.push_str(body);
            if body.trim_end() != "[" {
                out.push(',');
            }
            out.push_str(&quoted);
            out.push(']');
            *text = Str::from(out);
        }
        Value::Bytes(bytes) => {
            if let Some(out) = msgpack_push_str(bytes, offset) {
                *bytes = out.into();
            }
        }
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `array` (a MessagePack array) with the string `item` added at its end.
fn msgpack_push_str(array: &[u8], item: &str) -> Option<Vec<u8>> {
    let (len, header) = match *array.first()? {
        b @ 0x90..=0x9f => (usize::from(b & 0x0f), 1),
        0xdc => (
            usize::from(u16::from_be_bytes([*array.get(1)?, *array.get(2)?])),
            3,
        ),
        0xdd => (
            u32::from_be_bytes(array.get(1..5)?.try_into().ok()?) as usize,
            5,
        ),
        _ => return None,
    };
    let len = len + 1;
    let mut out = Vec::with_capacity(array.len() + item.len() + 10);
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xdc);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&u32::try_from(len).ok()?.to_be_bytes());
    }
    out.extend_from_slice(&array[header..]);
    let n = item.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[0xd9, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(0xda);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&u32::try_from(n).ok()?.to_be_bytes());
    }
    out.extend_from_slice(item.as_bytes());
    Some(out)
}

/// Whether a disconnect for `reason` leaves a session to recover (Node's
/// `RECOVERABLE_DISCONNECT_REASONS`).
pub(crate) fn recoverable(reason: crate::socket::DisconnectReason) -> bool {
    use crate::socket::DisconnectReason as R;
    matches!(
        reason,
        R::TransportClose
            | R::TransportError
            | R::MultipleHttpPollingError
            | R::HeartbeatTimeout
            | R::ClosingServer
    )
}

/// The recovery part of a socket's state, with a store.
#[derive(Debug)]
pub(crate) struct SocketSession {
    pub pid: Str,
    pub recovered: bool,
    pub state: std::sync::Mutex<Option<SessionState>>,
}

/// `pid` and `offset` of a CONNECT's auth, when both are strings.
pub(crate) fn session_request(
    parser: crate::parser::Parser,
    auth: Option<&Value>,
) -> Option<(Str, Str)> {
    use socketioxide_core::parser::Parse;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Field {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    #[derive(serde::Deserialize)]
    struct Request {
        pid: Option<Field>,
        offset: Option<Field>,
    }
    let request: Request = parser.decode_default(Some(auth?)).ok()?;
    match (request.pid?, request.offset?) {
        (Field::Text(pid), Field::Text(offset)) => Some((Str::from(pid), Str::from(offset))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_the_last_json_argument() {
        let mut data = Value::Str(Str::from(r#"["chat",{"a":1}]"#), None);
        append_offset(&mut data, "1-0");
        assert_eq!(data.as_str().unwrap().as_str(), r#"["chat",{"a":1},"1-0"]"#);
    }

    #[test]
    fn offset_is_the_last_msgpack_argument() {
        let mut data = Value::Bytes(vec![0x92, 0xa1, b'e', 0x01].into());
        append_offset(&mut data, "xy");
        assert_eq!(
            data.as_bytes().unwrap().as_ref(),
            &[0x93, 0xa1, b'e', 0x01, 0xa2, b'x', b'y']
        );
        let mut long = vec![0x9f];
        long.extend(std::iter::repeat_n(0x01, 15));
        let mut data = Value::Bytes(long.into());
        append_offset(&mut data, "z");
        let out = data.as_bytes().unwrap();
        assert_eq!(&out[..3], &[0xdc, 0, 16]);
        assert_eq!(&out[out.len() - 2..], &[0xa1, b'z']);
    }

    #[test]
    fn a_session_request_needs_two_strings() {
        let parser = crate::parser::Parser::default();
        let auth = |s: &str| Value::Str(Str::from(s.to_owned()), None);
        let request = |s: &str| session_request(parser, Some(&auth(s)));
        assert!(request(r#"{"pid":"p","offset":"o","token":{"a":[1]}}"#).is_some());
        assert!(request(r#"{"pid":"p"}"#).is_none());
        assert!(request(r#"{"pid":1,"offset":"o"}"#).is_none());
        assert!(session_request(parser, None).is_none());
    }

    #[test]
    fn offsets_are_quoted() {
        assert_eq!(json_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
