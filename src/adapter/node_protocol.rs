//! Node socket.io's messages on Redis, as `@socket.io/redis-emitter` 5.x and
//! `@socket.io/redis-adapter` 8.x send them: what they ask this node to do.
//!
//! Broadcasts travel on `{prefix}#{namespace}#` (or `{prefix}#{namespace}#{room}#` for a single
//! room) as notepack MessagePack `[uid, packet, opts]`; requests travel on
//! `{prefix}-request#{namespace}#` as JSON `{ type, opts, rooms, close, data }`. Every field is
//! checked: a message that does not decode is refused with the reason, never guessed at.

use std::io::Cursor;

use rmpv::Value;
use serde::Deserialize;

use crate::relay::binary::iso_date;

/// Socket.IO's EVENT and BINARY_EVENT packet types.
pub const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;
/// Deepest nesting of a broadcast's MessagePack.
const MAX_DEPTH: usize = 64;

/// The request types of Node's adapter (`RequestType` in socket.io-redis-adapter).
pub const SOCKETS: u64 = 0;
pub const ALL_ROOMS: u64 = 1;
pub const REMOTE_JOIN: u64 = 2;
pub const REMOTE_LEAVE: u64 = 3;
pub const REMOTE_DISCONNECT: u64 = 4;
pub const REMOTE_FETCH: u64 = 5;
const SERVER_SIDE_EMIT: u64 = 6;
const BROADCAST: u64 = 7;
/// The answers to a broadcast with acknowledgements: how many sockets got it, then each ack.
pub const BROADCAST_CLIENT_COUNT: u64 = 8;
pub const BROADCAST_ACK: u64 = 9;
/// What Node's `emitWithAck` waits when its caller set no `timeout` (its ack timeout default).
const DEFAULT_ACK_TIMEOUT_MS: u64 = 5_000;

/// Which sockets of a namespace a message is for, in Node's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Rooms (or socket ids); the whole namespace when empty.
    pub rooms: Vec<String>,
    /// Rooms left out.
    pub except: Vec<String>,
}

/// What a Node message asks of this node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeMessage {
    /// Emit `event` with `args` to the sockets `to` picks.
    Broadcast {
        namespace: String,
        to: Selection,
        event: String,
        args: Vec<Value>,
        /// Dropped for a socket that cannot take it right now.
        volatile: bool,
        /// Sent by an iorelay node, which reached every node's plain members itself.
        sockets_only: bool,
    },
    /// Make the sockets `to` picks join (`join` true) or leave `rooms`.
    Rooms {
        namespace: String,
        to: Selection,
        rooms: Vec<String>,
        join: bool,
    },
    /// Disconnect the sockets `to` picks; `close` also closes their connection.
    Disconnect {
        namespace: String,
        to: Selection,
        close: bool,
    },
    /// An event for the servers' own listeners, which iorelay has none of.
    ServerSideEmit { namespace: String },
    /// The ids of this node's sockets in any of `rooms` (all of them when empty).
    Sockets {
        namespace: String,
        rooms: Vec<String>,
        reply: Reply,
    },
    /// The rooms of this node's sockets.
    AllRooms { namespace: String, reply: Reply },
    /// This node's sockets that `to` picks, each with its handshake, rooms and data.
    Fetch {
        namespace: String,
        to: Selection,
        reply: Reply,
    },
    /// Another server's answer to a request of this node's, `{ requestId, … }`.
    Answer {
        request_id: String,
        answer: serde_json::Value,
    },
    /// Emit `event` with `args` to the sockets `to` picks, asking each for an ack within
    /// `timeout_ms`; the count of sockets reached, then every ack, go back to the asker.
    BroadcastWithAck {
        namespace: String,
        to: Selection,
        event: String,
        args: Vec<Value>,
        timeout_ms: u64,
        reply: Reply,
    },
}

/// Where and how a request that waits for every node's answer is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The asking server's adapter id.
    pub uid: String,
    /// The id the answer must carry.
    pub request_id: String,
}

impl Reply {
    /// The asking server's own response channel, which Node's adapter always listens on.
    pub fn channel(&self, prefix: &str, namespace: &str) -> String {
        format!("{prefix}-response#{namespace}#{}#", self.uid)
    }

    /// The answer's JSON, `{ requestId, <key>: value }`, as Node's adapter writes it.
    pub fn answer(&self, key: &str, value: serde_json::Value) -> Vec<u8> {
        let mut fields = serde_json::Map::new();
        fields.insert("requestId".into(), self.request_id.clone().into());
        fields.insert(key.into(), value);
        serde_json::Value::Object(fields).to_string().into_bytes()
    }

    /// How many sockets a broadcast with acks reached, as Node's adapter answers it (JSON).
    pub fn client_count(&self, count: usize) -> Vec<u8> {
        serde_json::json!({
            "type": BROADCAST_CLIENT_COUNT,
            "requestId": self.request_id,
            "clientCount": count,
        })
        .to_string()
        .into_bytes()
    }

    /// One socket's ack (its first argument, `packet`) to a broadcast, packed as Node's adapter
    /// packs it, so that binary arrives as binary.
    pub fn ack(&self, packet: Value) -> Vec<u8> {
        let answer = Value::Map(vec![
            (Value::from("type"), Value::from(BROADCAST_ACK)),
            (
                Value::from("requestId"),
                Value::from(self.request_id.as_str()),
            ),
            (Value::from("packet"), packet),
        ]);
        let mut bytes = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut bytes, &answer);
        bytes
    }
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefusedMessage {
    /// The channel is not one of Node's under the prefix.
    #[error("not a channel of Node socket.io: {0}")]
    Channel(String),
    /// The payload is larger than the node accepts from a client.
    #[error("{size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The payload does not decode, or lacks a field.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A request this node does not answer (yet): its type number.
    #[error("request type {0} is not served by iorelay")]
    UnsupportedRequest(u64),
    /// A message this node sent itself, coming back.
    #[error("own message")]
    Own,
}

/// Decodes one message on `channel`, whose payload is `payload`, for a node whose channels
/// start with `prefix` and whose own adapter id is `own_uid`; payloads over `limit` bytes are
/// refused.
pub fn decode(
    prefix: &str,
    channel: &str,
    payload: &[u8],
    limit: usize,
    own_uid: Option<&str>,
) -> Result<NodeMessage, RefusedMessage> {
    if payload.len() > limit {
        return Err(RefusedMessage::TooLarge {
            size: payload.len(),
            limit,
        });
    }
    if channel.starts_with(&format!("{prefix}-response#")) {
        return decode_answer(payload);
    }
    if let Some(rest) = channel.strip_prefix(&format!("{prefix}-request#")) {
        let namespace =
            channel_namespace(rest).ok_or_else(|| RefusedMessage::Channel(channel.to_owned()))?;
        // Node's adapter writes its requests as JSON, except broadcasts with acks, whose
        // packet may carry binary: MessagePack (notepack), an object.
        return if payload.first() == Some(&b'{') {
            decode_request(namespace, payload, own_uid)
        } else {
            decode_packed_request(namespace, payload)
        };
    }
    let rest = channel
        .strip_prefix(&format!("{prefix}#"))
        .ok_or_else(|| RefusedMessage::Channel(channel.to_owned()))?;
    channel_namespace(rest).ok_or_else(|| RefusedMessage::Channel(channel.to_owned()))?;
    decode_broadcast(payload, own_uid)
}

/// An answer in JSON to one of this node's requests.
fn decode_answer(payload: &[u8]) -> Result<NodeMessage, RefusedMessage> {
    let answer: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|error| malformed(format!("JSON answer: {error}")))?;
    let request_id = answer
        .get("requestId")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| malformed("the answer has no requestId"))?
        .to_owned();
    Ok(NodeMessage::Answer { request_id, answer })
}

/// The namespace at the start of what follows a channel's prefix: `/chat#` or `/chat#room#`.
fn channel_namespace(rest: &str) -> Option<&str> {
    let (namespace, _) = rest.split_once('#')?;
    namespace.starts_with('/').then_some(namespace)
}

fn malformed(what: impl Into<String>) -> RefusedMessage {
    RefusedMessage::Malformed(what.into())
}

fn decode_broadcast(payload: &[u8], own_uid: Option<&str>) -> Result<NodeMessage, RefusedMessage> {
    let mut reader = Cursor::new(payload);
    let value = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH)
        .map_err(|error| malformed(format!("MessagePack: {error}")))?;
    if (reader.position() as usize) < payload.len() {
        return Err(malformed("bytes after the message"));
    }
    let Value::Array(mut parts) = value else {
        return Err(malformed("a broadcast is [uid, packet, opts]"));
    };
    if parts.len() != 3 {
        return Err(malformed("a broadcast is [uid, packet, opts]"));
    }
    let opts = parts.pop().unwrap_or(Value::Nil);
    let packet = parts.pop().unwrap_or(Value::Nil);
    let uid = parts.pop().unwrap_or(Value::Nil);
    if let (Some(own), Some(uid)) = (own_uid, uid.as_str())
        && own == uid
    {
        return Err(RefusedMessage::Own);
    }
    let (namespace, event, args) = event_packet(&packet)?;
    let volatile = field(&opts, "flags")
        .and_then(|flags| field(flags, "volatile"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let sockets_only = field(&opts, "socketsOnly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(NodeMessage::Broadcast {
        namespace,
        to: packed_selection(&opts)?,
        event,
        args,
        volatile,
        sockets_only,
    })
}

/// The rooms and exceptions of a packed broadcast's `opts`.
fn packed_selection(opts: &Value) -> Result<Selection, RefusedMessage> {
    Ok(Selection {
        rooms: room_list(field(opts, "rooms"))?,
        except: room_list(field(opts, "except"))?,
    })
}

/// An event packet's namespace, event name and arguments.
fn event_packet(packet: &Value) -> Result<(String, String, Vec<Value>), RefusedMessage> {
    let packet_type = field(packet, "type")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("the packet has no type"))?;
    if packet_type != EVENT && packet_type != BINARY_EVENT {
        return Err(malformed(format!(
            "packet type {packet_type} is not an event"
        )));
    }
    let namespace = match field(packet, "nsp") {
        None | Some(Value::Nil) => "/".to_owned(),
        Some(Value::String(name)) => name
            .as_str()
            .filter(|name| name.starts_with('/'))
            .ok_or_else(|| malformed("the packet's namespace is not a path"))?
            .to_owned(),
        Some(_) => return Err(malformed("the packet's namespace is not a string")),
    };
    let Some(Value::Array(data)) = field(packet, "data") else {
        return Err(malformed("the packet has no data array"));
    };
    let mut data = data.iter().map(from_notepack);
    let event = match data.next() {
        Some(Value::String(event)) => event
            .into_str()
            .ok_or_else(|| malformed("the event name is not UTF-8"))?,
        _ => {
            return Err(malformed(
                "the packet's data does not start with an event name",
            ));
        }
    };
    Ok((namespace, event, data.collect()))
}

/// A request in MessagePack: of Node's, only a broadcast with acks is sent so.
fn decode_packed_request(namespace: &str, payload: &[u8]) -> Result<NodeMessage, RefusedMessage> {
    let mut reader = Cursor::new(payload);
    let request = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH)
        .map_err(|error| malformed(format!("MessagePack: {error}")))?;
    if (reader.position() as usize) < payload.len() {
        return Err(malformed("bytes after the request"));
    }
    if !request.is_map() {
        return Err(malformed("a request is an object"));
    }
    let kind = field(&request, "type")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("the request has no type"))?;
    if kind != BROADCAST {
        return Err(RefusedMessage::UnsupportedRequest(kind));
    }
    let text = |key: &str| {
        field(&request, key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let reply = reply(text("uid"), text("requestId"))?;
    let packet = field(&request, "packet").ok_or_else(|| malformed("the request has no packet"))?;
    let (packet_namespace, event, args) = event_packet(packet)?;
    if packet_namespace != namespace {
        return Err(malformed("the packet's namespace is not the channel's"));
    }
    let opts = field(&request, "opts").unwrap_or(&Value::Nil);
    let timeout_ms = field(opts, "flags")
        .and_then(|flags| field(flags, "timeout"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_ACK_TIMEOUT_MS);
    Ok(NodeMessage::BroadcastWithAck {
        namespace: packet_namespace,
        to: packed_selection(opts)?,
        event,
        args,
        timeout_ms,
        reply,
    })
}

/// The value of `key` in a MessagePack map.
fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(name, _)| name.as_str() == Some(key))
        .map(|(_, value)| value)
}

/// Room names: strings, or numbers as Node writes them.
fn room_list(rooms: Option<&Value>) -> Result<Vec<String>, RefusedMessage> {
    let Some(rooms) = rooms else {
        return Ok(Vec::new());
    };
    let Value::Array(rooms) = rooms else {
        return Err(malformed("rooms are not a list"));
    };
    rooms
        .iter()
        .map(|room| match room {
            Value::String(name) => name
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| malformed("a room name is not UTF-8")),
            Value::Integer(number) => Ok(number.to_string()),
            _ => Err(malformed("a room name is not a string")),
        })
        .collect()
}

/// A notepack value as Node's adapter decodes it and Socket.IO then sends it on. notepack 3
/// writes a `Date` as a MessagePack timestamp (extension -1), which arrives as its ISO string,
/// as `JSON.stringify` writes it; its decoder still reads notepack 2's encodings: extension 0
/// of one byte for `undefined` (sent as `null`, as JSON does in an array), of eight bytes for a
/// `Date` in milliseconds, and of other lengths for an ArrayBuffer (sent as binary). Any other
/// extension becomes `[type, bytes]`, as Node's decoder makes it.
pub fn from_notepack(value: &Value) -> Value {
    match value {
        Value::Ext(-1, bytes) => timestamp_millis(bytes)
            .and_then(iso_date)
            .map_or(Value::Nil, Value::from),
        Value::Ext(0, bytes) if bytes.len() == 1 => Value::Nil,
        Value::Ext(0, bytes) if bytes.len() == 8 => {
            let hi = i64::from(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
            let lo = i64::from(u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
            iso_date(hi * (1 << 32) + lo).map_or(Value::Nil, Value::from)
        }
        Value::Ext(0, bytes) => Value::Binary(bytes.clone()),
        Value::Ext(kind, bytes) => {
            Value::Array(vec![Value::from(*kind), Value::Binary(bytes.clone())])
        }
        Value::Array(items) => Value::Array(items.iter().map(from_notepack).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                // `undefined` members vanish from objects, as in JSON.
                .filter(|(_, value)| !matches!(value, Value::Ext(0, bytes) if bytes.len() == 1))
                .map(|(key, value)| (key.clone(), from_notepack(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Milliseconds since 1970 of a MessagePack timestamp (32, 64 or 96 bits), truncated as a
/// JavaScript `Date` keeps them.
fn timestamp_millis(bytes: &[u8]) -> Option<i64> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    match bytes.len() {
        4 => Some(i64::from(word(0)?) * 1_000),
        8 => {
            let (hi, lo) = (word(0)?, word(4)?);
            let seconds = i64::from(hi & 0x3) * (1 << 32) + i64::from(lo);
            Some(seconds * 1_000 + i64::from(hi >> 2) / 1_000_000)
        }
        12 => {
            let nanos = word(0)?;
            let seconds = i64::from(word(4)? as i32) * (1 << 32) + i64::from(word(8)?);
            seconds
                .checked_mul(1_000)?
                .checked_add(i64::from(nanos) / 1_000_000)
        }
        _ => None,
    }
}

/// A request as JSON: only the fields the served types read.
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: u64,
    uid: Option<String>,
    #[serde(rename = "requestId")]
    request_id: Option<String>,
    opts: Option<RequestOpts>,
    #[serde(default)]
    rooms: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    close: bool,
}

#[derive(Deserialize)]
struct RequestOpts {
    #[serde(default)]
    rooms: Vec<serde_json::Value>,
    #[serde(default)]
    except: Vec<serde_json::Value>,
}

fn json_rooms(rooms: &[serde_json::Value]) -> Result<Vec<String>, RefusedMessage> {
    rooms
        .iter()
        .map(|room| match room {
            serde_json::Value::String(name) => Ok(name.clone()),
            serde_json::Value::Number(number) => Ok(number.to_string()),
            _ => Err(malformed("a room name is not a string")),
        })
        .collect()
}

/// Where to answer a request that waits for answers: its sender's `uid` and its `requestId`.
fn reply(uid: Option<String>, request_id: Option<String>) -> Result<Reply, RefusedMessage> {
    let uid = uid.ok_or_else(|| malformed("the request has no uid"))?;
    // The uid names a channel: Node's are short and have no separator in them.
    if uid.is_empty() || uid.len() > 64 || uid.contains('#') {
        return Err(malformed("the request's uid is not an adapter id"));
    }
    let request_id = request_id.ok_or_else(|| malformed("the request has no requestId"))?;
    Ok(Reply { uid, request_id })
}

fn decode_request(
    namespace: &str,
    payload: &[u8],
    own_uid: Option<&str>,
) -> Result<NodeMessage, RefusedMessage> {
    let request: Request = serde_json::from_slice(payload)
        .map_err(|error| malformed(format!("JSON request: {error}")))?;
    // This node applied its own room changes before publishing them.
    if own_uid.is_some() && request.uid.as_deref() == own_uid {
        return Err(RefusedMessage::Own);
    }
    let namespace = namespace.to_owned();
    let selection = |opts: Option<RequestOpts>| -> Result<Selection, RefusedMessage> {
        // Without `opts`, Node's adapter addresses one socket by `sid` and waits for an answer:
        // a request between Node nodes, not the emitter's.
        let opts = opts.ok_or(RefusedMessage::UnsupportedRequest(request.kind))?;
        Ok(Selection {
            rooms: json_rooms(&opts.rooms)?,
            except: json_rooms(&opts.except)?,
        })
    };
    match request.kind {
        REMOTE_JOIN | REMOTE_LEAVE => {
            let to = selection(request.opts)?;
            let rooms = json_rooms(
                request
                    .rooms
                    .as_deref()
                    .ok_or_else(|| malformed("the request has no rooms"))?,
            )?;
            Ok(NodeMessage::Rooms {
                namespace,
                to,
                rooms,
                join: request.kind == REMOTE_JOIN,
            })
        }
        REMOTE_DISCONNECT => Ok(NodeMessage::Disconnect {
            namespace,
            to: selection(request.opts)?,
            close: request.close,
        }),
        SERVER_SIDE_EMIT => Ok(NodeMessage::ServerSideEmit { namespace }),
        SOCKETS => Ok(NodeMessage::Sockets {
            rooms: json_rooms(request.rooms.as_deref().unwrap_or_default())?,
            reply: reply(request.uid, request.request_id)?,
            namespace,
        }),
        ALL_ROOMS => Ok(NodeMessage::AllRooms {
            reply: reply(request.uid, request.request_id)?,
            namespace,
        }),
        REMOTE_FETCH => Ok(NodeMessage::Fetch {
            to: selection(request.opts)?,
            reply: reply(request.uid, request.request_id)?,
            namespace,
        }),
        other => Err(RefusedMessage::UnsupportedRequest(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> Vec<u8> {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, value).expect("encodes");
        bytes
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| (Value::from(key), value))
                .collect(),
        )
    }

    fn broadcast(packet: Value, opts: Value) -> Vec<u8> {
        encode(&Value::Array(vec![Value::from("emitter"), packet, opts]))
    }

    #[test]
    fn an_emitter_broadcast_to_a_room_except_another() {
        let packet = map(vec![
            ("type", Value::from(2)),
            (
                "data",
                Value::Array(vec![
                    Value::from("news"),
                    Value::from(1),
                    Value::Binary(vec![1, 2]),
                ]),
            ),
            ("nsp", Value::from("/chat")),
        ]);
        let opts = map(vec![
            ("rooms", Value::Array(vec![Value::from("a")])),
            ("flags", map(vec![("volatile", Value::from(true))])),
            (
                "except",
                Value::Array(vec![Value::from("b"), Value::from(7)]),
            ),
        ]);
        let message = decode(
            "socket.io",
            "socket.io#/chat#a#",
            &broadcast(packet, opts),
            1 << 20,
            None,
        );
        assert_eq!(
            message,
            Ok(NodeMessage::Broadcast {
                namespace: "/chat".into(),
                to: Selection {
                    rooms: vec!["a".into()],
                    except: vec!["b".into(), "7".into()],
                },
                event: "news".into(),
                args: vec![Value::from(1), Value::Binary(vec![1, 2])],
                volatile: true,
                sockets_only: false,
            })
        );
    }

    #[test]
    fn notepack_dates_and_undefined_read_as_json_would() {
        // new Date(0) and undefined, as notepack writes them.
        let date = Value::Ext(0, vec![0; 8]);
        assert_eq!(
            from_notepack(&date),
            Value::from("1970-01-01T00:00:00.000Z")
        );
        // 2024-02-29T12:34:56.789Z, as notepack 2 wrote it.
        let millis: i64 = 1_709_210_096_789;
        let mut bytes = ((millis >> 32) as i32).to_be_bytes().to_vec();
        bytes.extend((millis as u32).to_be_bytes());
        assert_eq!(
            from_notepack(&Value::Ext(0, bytes)),
            Value::from("2024-02-29T12:34:56.789Z")
        );
        // The same as notepack 3 writes it: a timestamp 64, and whole seconds as a timestamp 32.
        let (seconds, nanos) = (1_709_210_096_u64, 789_000_000_u64);
        let stamp = (nanos << 34) | seconds;
        assert_eq!(
            from_notepack(&Value::Ext(-1, stamp.to_be_bytes().to_vec())),
            Value::from("2024-02-29T12:34:56.789Z")
        );
        assert_eq!(
            from_notepack(&Value::Ext(-1, (seconds as u32).to_be_bytes().to_vec())),
            Value::from("2024-02-29T12:34:56.000Z")
        );
        assert_eq!(
            from_notepack(&Value::Ext(5, vec![1])),
            Value::Array(vec![Value::from(5), Value::Binary(vec![1])])
        );
        let undefined = Value::Ext(0, vec![0]);
        assert_eq!(from_notepack(&undefined), Value::Nil);
        let object = map(vec![("a", undefined), ("b", Value::from(1))]);
        assert_eq!(from_notepack(&object), map(vec![("b", Value::from(1))]));
    }

    #[test]
    fn bad_broadcasts_are_refused_with_a_reason() {
        let limit = 1 << 20;
        let decode = |payload: &[u8]| decode("socket.io", "socket.io#/#", payload, limit, None);
        let good = broadcast(
            map(vec![
                ("type", Value::from(2)),
                ("data", Value::Array(vec![Value::from("e")])),
            ]),
            map(vec![]),
        );
        assert!(decode(&good).is_ok());
        for cut in 0..good.len() {
            assert!(
                matches!(decode(&good[..cut]), Err(RefusedMessage::Malformed(_))),
                "truncated at {cut}"
            );
        }
        let connect = broadcast(map(vec![("type", Value::from(0))]), map(vec![]));
        assert!(matches!(
            decode(&connect),
            Err(RefusedMessage::Malformed(_))
        ));
        let no_event = broadcast(
            map(vec![
                ("type", Value::from(2)),
                ("data", Value::Array(vec![Value::from(1)])),
            ]),
            map(vec![]),
        );
        assert!(matches!(
            decode(&no_event),
            Err(RefusedMessage::Malformed(_))
        ));
        let mut deep = Value::from(1);
        for _ in 0..1_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(matches!(
            decode(&encode(&deep)),
            Err(RefusedMessage::Malformed(_))
        ));
        assert!(matches!(
            super::decode("socket.io", "socket.io#/#", &good, 4, None),
            Err(RefusedMessage::TooLarge { .. })
        ));
        assert!(matches!(
            super::decode("socket.io", "other#/#", &good, limit, None),
            Err(RefusedMessage::Channel(_))
        ));
    }

    fn decode_packed(channel: &str, payload: &[u8]) -> Result<NodeMessage, RefusedMessage> {
        decode("socket.io", channel, payload, 1 << 20, None)
    }

    #[test]
    fn the_emitters_requests() {
        let decode = |json: &str| {
            decode(
                "socket.io",
                "socket.io-request#/#",
                json.as_bytes(),
                1 << 20,
                None,
            )
        };
        assert_eq!(
            decode(r#"{"type":2,"opts":{"rooms":["a"],"except":["b"]},"rooms":["c","d"]}"#),
            Ok(NodeMessage::Rooms {
                namespace: "/".into(),
                to: Selection {
                    rooms: vec!["a".into()],
                    except: vec!["b".into()],
                },
                rooms: vec!["c".into(), "d".into()],
                join: true,
            })
        );
        assert_eq!(
            decode(r#"{"type":4,"opts":{"rooms":[],"except":[]},"close":true}"#),
            Ok(NodeMessage::Disconnect {
                namespace: "/".into(),
                to: Selection::default(),
                close: true,
            })
        );
        assert_eq!(
            decode(r#"{"uid":"emitter","type":6,"data":["x"]}"#),
            Ok(NodeMessage::ServerSideEmit {
                namespace: "/".into()
            })
        );
        let reply = Reply {
            uid: "n0de".into(),
            request_id: "r1".into(),
        };
        assert_eq!(
            decode(r#"{"uid":"n0de","type":0,"requestId":"r1","rooms":["a"]}"#),
            Ok(NodeMessage::Sockets {
                namespace: "/".into(),
                rooms: vec!["a".into()],
                reply: reply.clone(),
            })
        );
        assert_eq!(
            decode(r#"{"uid":"n0de","requestId":"r1","type":1}"#),
            Ok(NodeMessage::AllRooms {
                namespace: "/".into(),
                reply: reply.clone(),
            })
        );
        assert_eq!(
            decode(
                r#"{"uid":"n0de","requestId":"r1","type":5,"opts":{"rooms":["a"],"except":[]}}"#
            ),
            Ok(NodeMessage::Fetch {
                namespace: "/".into(),
                to: Selection {
                    rooms: vec!["a".into()],
                    except: vec![],
                },
                reply: reply.clone(),
            })
        );
        assert_eq!(
            reply.channel("socket.io", "/chat"),
            "socket.io-response#/chat#n0de#"
        );
        assert_eq!(
            reply.answer("rooms", serde_json::json!(["a"])),
            br#"{"requestId":"r1","rooms":["a"]}"#
        );
        assert!(matches!(
            decode(r#"{"type":1,"requestId":"r1"}"#),
            Err(RefusedMessage::Malformed(_))
        ));
        assert!(matches!(
            decode(r#"{"uid":"a#b","type":1,"requestId":"r1"}"#),
            Err(RefusedMessage::Malformed(_))
        ));
        assert!(matches!(
            decode(r#"{"uid":"n0de","type":5,"opts":{"rooms":[],"except":[]}}"#),
            Err(RefusedMessage::Malformed(_))
        ));
        let packed = encode(&map(vec![
            ("uid", Value::from("n0de")),
            ("requestId", Value::from("r1")),
            ("type", Value::from(7)),
            (
                "packet",
                map(vec![
                    ("type", Value::from(2)),
                    (
                        "data",
                        Value::Array(vec![Value::from("ask"), Value::Binary(vec![1])]),
                    ),
                    ("nsp", Value::from("/")),
                    ("id", Value::from(3)),
                ]),
            ),
            (
                "opts",
                map(vec![
                    ("rooms", Value::Array(vec![Value::from("a")])),
                    ("except", Value::Array(vec![])),
                    ("flags", map(vec![("timeout", Value::from(1500))])),
                ]),
            ),
        ]));
        assert_eq!(
            decode_packed("socket.io-request#/#", &packed),
            Ok(NodeMessage::BroadcastWithAck {
                namespace: "/".into(),
                to: Selection {
                    rooms: vec!["a".into()],
                    except: vec![],
                },
                event: "ask".into(),
                args: vec![Value::Binary(vec![1])],
                timeout_ms: 1500,
                reply: reply.clone(),
            })
        );
        assert!(matches!(
            decode_packed("socket.io-request#/chat#", &packed),
            Err(RefusedMessage::Malformed(_))
        ));
        assert_eq!(
            decode_packed(
                "socket.io-request#/#",
                &encode(&map(vec![("type", Value::from(99))]))
            ),
            Err(RefusedMessage::UnsupportedRequest(99))
        );
        assert_eq!(
            reply.client_count(2),
            br#"{"clientCount":2,"requestId":"r1","type":8}"#
        );
        let ack = rmpv::decode::read_value(&mut &reply.ack(Value::Binary(vec![9]))[..]);
        assert_eq!(
            ack.ok(),
            Some(map(vec![
                ("type", Value::from(9)),
                ("requestId", Value::from("r1")),
                ("packet", Value::Binary(vec![9])),
            ]))
        );
        // A request addressed to one socket (`sid`, no `opts`), as older adapters send.
        assert_eq!(
            decode(r#"{"uid":"n0de","requestId":"r1","type":2,"sid":"s","room":"r"}"#),
            Err(RefusedMessage::UnsupportedRequest(2))
        );
        assert!(matches!(decode("{"), Err(RefusedMessage::Malformed(_))));
    }

    #[test]
    fn answers_to_this_nodes_requests_carry_their_request_id() {
        let channel = "socket.io-response#/#node-a#";
        let answer = br#"{"requestId":"r1","sockets":["a"]}"#;
        assert_eq!(
            super::decode("socket.io", channel, answer, 1 << 20, Some("node-a")),
            Ok(NodeMessage::Answer {
                request_id: "r1".into(),
                answer: serde_json::json!({ "requestId": "r1", "sockets": ["a"] }),
            })
        );
        for bad in [&br#"{"sockets":[]}"#[..], b"{", b"[1]"] {
            assert!(matches!(
                super::decode("socket.io", channel, bad, 1 << 20, None),
                Err(RefusedMessage::Malformed(_))
            ));
        }
    }
}
