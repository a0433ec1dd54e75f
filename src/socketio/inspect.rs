//! One client packet run through the server's decoding and validation, without a live socket.
//!
//! [`handle_client_packet`] decodes a Socket.IO v5 text packet with socketioxide's own parser
//! (the `socketioxide-parser-common` crate the server uses, with its default limits), feeds it
//! the binary attachments that follow it, routes it the way socketioxide routes it to the
//! handlers of the default profile, and runs iorelay's payload checks ([`EventArgs`],
//! [`RoomName::parse`], [`chat_message`]). The result says what the server would answer.
//! [`handle_client_msgpack_packet`] does the same for a packet of `--parser msgpack`, checked
//! as the npm `socket.io-msgpack-parser` checks it and decoded with
//! `socketioxide-parser-msgpack`. The fuzz target in `tests/fuzz/` and the seed corpus tests
//! drive the server's decoding through them, so they must return, never panic, for any input.
//!
//! What needs a connection is left out: authentication, the rate limit, the per-socket room
//! limit, room sizes and ordering. The sender counts as connected to the namespace the packet
//! names when the default profile serves it; on a live server an event for a served namespace
//! the socket has not joined closes the connection instead.

use bytes::Bytes;
use socketioxide_core::Str;
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;
use socketioxide_parser_msgpack::MsgPackParser;

use super::arguments::{MalformedArgs, check_raw};
use crate::relay::chat::chat_message;
use crate::relay::events::{self, BuiltinEvent, Route};
use crate::relay::payload::{ChatMessage, EventArgs};
use crate::relay::room::{MAX_ROOM_NAME_CHARS, RoomName};

/// The sender id put in the `chat` messages this module builds.
pub const SENDER_ID: &str = "inspected-sender";

/// What the server does with a packet it could decode.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// CONNECT to a namespace the server serves: the socket joins it.
    Connected {
        /// The namespace.
        namespace: String,
    },
    /// CONNECT to any other namespace: answered with `connect_error` "Invalid namespace".
    InvalidNamespace {
        /// The namespace asked for.
        namespace: String,
    },
    /// DISCONNECT: the socket leaves the namespace.
    Disconnected {
        /// The namespace.
        namespace: String,
    },
    /// A binary packet whose attachments have not all arrived: the server keeps it and waits.
    AwaitingAttachments {
        /// Attachments announced by the packet.
        announced: usize,
        /// Attachments received so far.
        received: usize,
    },
    /// An event reached one of iorelay's handlers.
    Handled {
        /// The namespace.
        namespace: String,
        /// The event name.
        event: String,
        /// The ack id the client asked for; acks are sent only when there is one.
        ack_id: Option<i64>,
        /// What the handler answers.
        answer: Answer,
    },
    /// The server sends nothing back and keeps the connection.
    Ignored(Ignored),
}

/// What an event handler answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `message`: the arguments go back to the sender as `message`.
    Message(EventArgs),
    /// `echo`: the arguments go back in the ack.
    Echo(EventArgs),
    /// `join` or `leave` accepted: ack `{ room, size }` (the size needs a live adapter).
    Room(RoomName),
    /// `chat` accepted: the message is relayed and the ack is `{ ok: true }`.
    Chat(ChatMessage),
    /// The request is refused with ack `{ error }` and changes nothing.
    Refused(String),
}

/// Why a decoded packet gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// An event or DISCONNECT for a namespace the server does not serve: socketioxide drops it.
    UnknownNamespace,
    /// An event no handler is registered for (it still counts against the rate limit).
    NoHandler,
    /// An ack: iorelay never asks clients for one, so no ack id is pending.
    UnexpectedAck,
}

/// Why the server closes the connection over a packet, or disconnects the sender's socket.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// socketioxide's parser refused the packet or its attachments.
    #[error("malformed packet: {0}")]
    Malformed(ParseError),
    /// The first element of an event is not a string.
    #[error("invalid event name")]
    InvalidEventName,
    /// The event's arguments are malformed: the sender is disconnected from the namespace.
    #[error(transparent)]
    MalformedArguments(#[from] MalformedArgs),
}

/// Runs one client packet, and the binary attachments sent right after it, through the server's
/// decoding and validation, and says what the server would answer.
///
/// `packet` is a Socket.IO v5 packet as an Engine.IO text message carries it, for example
/// `42["chat",{"room":"r","text":"hi"}]` minus the Engine.IO `4`: `2["chat",{"room":"r","text":"hi"}]`.
/// Attachments left over once the packet is complete are an error, as on a live connection.
pub fn handle_client_packet(packet: &str, attachments: &[&[u8]]) -> Result<Outcome, PacketError> {
    let config = ParseConfig::default();
    let state = ParserState::default();
    let mut decoded = CommonParser.decode_str(&config, &state, Str::from(packet.to_owned()));
    let mut received = 0;
    for attachment in attachments {
        if !matches!(decoded, Err(ParseError::NeedsMoreBinaryData)) {
            // The packet is complete (or refused): one more binary frame is unexpected.
            return Err(PacketError::Malformed(ParseError::UnexpectedBinaryPacket));
        }
        decoded = CommonParser.decode_bin(&config, &state, Bytes::copy_from_slice(attachment));
        received += 1;
    }
    let packet = match decoded {
        Ok(packet) => packet,
        Err(ParseError::NeedsMoreBinaryData) => {
            return Ok(Outcome::AwaitingAttachments {
                announced: state
                    .incoming_binary_cnt
                    .load(std::sync::atomic::Ordering::Acquire),
                received,
            });
        }
        Err(error) => return Err(PacketError::Malformed(error)),
    };
    route(CommonParser, packet)
}

/// Runs one client packet of `--parser msgpack` (a whole MessagePack packet, as one binary
/// Engine.IO message carries it) through the server's decoding and validation, and says what
/// the server would answer.
pub fn handle_client_msgpack_packet(packet: &[u8]) -> Result<Outcome, PacketError> {
    let packet = socketioxide::check_msgpack_packet(Bytes::copy_from_slice(packet))
        .and_then(|checked| {
            MsgPackParser.decode_bin(&ParseConfig::default(), &ParserState::default(), checked)
        })
        .map_err(PacketError::Malformed)?;
    route(MsgPackParser, packet)
}

/// Where socketioxide takes a decoded packet, and what the handler there answers.
fn route<P: Parse>(parser: P, packet: Packet) -> Result<Outcome, PacketError> {
    let namespace = packet.ns.as_str();
    match (packet.inner, events::namespace(namespace)) {
        (PacketData::Connect(_), Some(_)) => Ok(Outcome::Connected {
            namespace: namespace.to_owned(),
        }),
        (PacketData::Connect(_), None) => Ok(Outcome::InvalidNamespace {
            namespace: namespace.to_owned(),
        }),
        (_, None) => Ok(Outcome::Ignored(Ignored::UnknownNamespace)),
        (PacketData::Disconnect, Some(_)) => Ok(Outcome::Disconnected {
            namespace: namespace.to_owned(),
        }),
        (PacketData::EventAck(..) | PacketData::BinaryAck(..), Some(_)) => {
            Ok(Outcome::Ignored(Ignored::UnexpectedAck))
        }
        (
            PacketData::Event(mut data, ack_id) | PacketData::BinaryEvent(mut data, ack_id),
            Some(served),
        ) => {
            let event = parser
                .read_event(&data)
                .map_err(|_| PacketError::InvalidEventName)?
                .to_owned();
            // The same checks and decoding as the `Args` extractor, which every handler uses.
            check_raw(&data)?;
            let args = parser
                .decode_value::<EventArgs>(&mut data, true)
                .map_err(MalformedArgs::Undecodable)?;
            let Route::Builtin(builtin) = served.route(&event) else {
                return Ok(Outcome::Ignored(Ignored::NoHandler));
            };
            Ok(Outcome::Handled {
                namespace: namespace.to_owned(),
                answer: answer(builtin, &args),
                event,
                ack_id,
            })
        }
        // The text parser refuses packet type 4; the MessagePack one decodes it, and
        // socketioxide then closes the connection.
        (PacketData::ConnectError(_), Some(_)) => {
            Err(PacketError::Malformed(ParseError::InvalidPacketType))
        }
    }
}

fn answer(event: BuiltinEvent, args: &EventArgs) -> Answer {
    match event {
        BuiltinEvent::Message => Answer::Message(args.clone()),
        BuiltinEvent::Echo => Answer::Echo(args.clone()),
        BuiltinEvent::Join | BuiltinEvent::Leave => {
            match RoomName::parse(args.first(), MAX_ROOM_NAME_CHARS) {
                Ok(room) => Answer::Room(room),
                Err(error) => Answer::Refused(error.to_string()),
            }
        }
        BuiltinEvent::Chat => match chat_message(args, SENDER_ID, None, MAX_ROOM_NAME_CHARS) {
            Ok(message) => Answer::Chat(message),
            Err(error) => Answer::Refused(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    fn handled(packet: &str) -> (String, Option<i64>, Answer) {
        match handle_client_packet(packet, &[]) {
            Ok(Outcome::Handled {
                event,
                ack_id,
                answer,
                ..
            }) => (event, ack_id, answer),
            other => panic!("{packet}: expected a handled event, got {other:?}"),
        }
    }

    #[test]
    fn valid_requests_reach_the_handlers() {
        let (event, ack_id, answer) = handled(r#"27["chat",{"room":"r","text":"hi"}]"#);
        assert_eq!((event.as_str(), ack_id), ("chat", Some(7)));
        let Answer::Chat(message) = answer else {
            panic!("expected a chat, got {answer:?}")
        };
        assert_eq!(message.room.as_deref(), Some("r"));
        assert_eq!(message.text, "hi");
        assert_eq!(message.from, SENDER_ID);

        let (_, _, answer) = handled(r#"2/chat,["join","lobby"]"#);
        assert!(matches!(answer, Answer::Room(room) if room.as_str() == "lobby"));

        let (_, _, answer) = handled(r#"21["echo",1,"two",null]"#);
        assert_eq!(
            answer,
            Answer::Echo(EventArgs(vec![
                Value::from(1),
                Value::from("two"),
                Value::Nil
            ]))
        );
    }

    #[test]
    fn invalid_requests_are_refused() {
        let (_, _, answer) = handled(r#"21["join",7]"#);
        assert_eq!(
            answer,
            Answer::Refused("the room name must be a string".into())
        );
        let (_, _, answer) = handled(r#"2["chat","hi"]"#);
        assert_eq!(
            answer,
            Answer::Refused("chat expects an object { room, text }".into())
        );
    }

    #[test]
    fn binary_attachments_complete_the_packet() {
        let packet = r#"51-["message",{"_placeholder":true,"num":0}]"#;
        assert!(matches!(
            handle_client_packet(packet, &[]),
            Ok(Outcome::AwaitingAttachments {
                announced: 1,
                received: 0
            })
        ));
        let (_, _, answer) = match handle_client_packet(packet, &[b"\x01\x02"]) {
            Ok(Outcome::Handled {
                event,
                ack_id,
                answer,
                ..
            }) => (event, ack_id, answer),
            other => panic!("expected a handled event, got {other:?}"),
        };
        assert_eq!(
            answer,
            Answer::Message(EventArgs(vec![Value::Binary(vec![1, 2])]))
        );
        assert!(matches!(
            handle_client_packet(packet, &[b"a", b"b"]),
            Err(PacketError::Malformed(ParseError::UnexpectedBinaryPacket))
        ));
    }

    #[test]
    fn what_the_server_drops_or_closes_on() {
        for (packet, expected) in [
            (r#"2/nowhere,["chat",{}]"#, Ignored::UnknownNamespace),
            (r#"2["unknown"]"#, Ignored::NoHandler),
            (r#"2/chat,["echo",1]"#, Ignored::NoHandler),
            (r#"35["whatever"]"#, Ignored::UnexpectedAck),
        ] {
            assert_eq!(
                handle_client_packet(packet, &[]).ok(),
                Some(Outcome::Ignored(expected)),
                "{packet}"
            );
        }
        assert!(matches!(
            handle_client_packet("0/nowhere,", &[]),
            Ok(Outcome::InvalidNamespace { namespace }) if namespace == "/nowhere"
        ));
        assert!(matches!(
            handle_client_packet("2[42]", &[]),
            Err(PacketError::InvalidEventName)
        ));
        for malformed in ["", "9", "2[\"chat\"", "51000000-[\"message\"]", "4{}", "5x"] {
            assert!(
                matches!(
                    handle_client_packet(malformed, &[]),
                    Err(PacketError::Malformed(_)) | Err(PacketError::InvalidEventName)
                ),
                "{malformed:?}"
            );
        }
    }

    /// Packets as socket.io-msgpack-parser 3.0.2 writes what socket.io-client 4.8 emits.
    mod from_npm {
        /// `emit("chat", { room: "r", text: "hi" }, ack)` with ack id 7.
        pub const CHAT: &[u8] = b"\x85\xa4type\x02\xa4data\x92\xa4chat\x82\xa4room\xa1r\xa4text\xa2hi\xa7options\x81\xa8compress\xc3\xa2id\x07\xa3nsp\xa1/";
        /// `emit("join", "lobby")` on `/chat`.
        pub const JOIN_CHAT: &[u8] = b"\x84\xa4type\x02\xa4data\x92\xa4join\xa5lobby\xa7options\x81\xa8compress\xc3\xa3nsp\xa5/chat";
        /// `emit("message", Buffer.from([1, 2]), new Uint8Array([3]), undefined)`.
        pub const BINARY: &[u8] = b"\x84\xa4type\x02\xa4data\x94\xa7message\xc4\x02\x01\x02\xc7\x01\x00\x03\xd4\x00\x00\xa7options\x81\xa8compress\xc3\xa3nsp\xa1/";
        /// CONNECT to `/nowhere` with `auth: { token: "t" }`.
        pub const CONNECT_NOWHERE: &[u8] =
            b"\x83\xa4type\x00\xa4data\x81\xa5token\xa1t\xa3nsp\xa8/nowhere";
        /// `emit(42)`: no event name.
        pub const NUMBER_AS_EVENT: &[u8] =
            b"\x84\xa4type\x02\xa4data\x91*\xa7options\x81\xa8compress\xc3\xa3nsp\xa1/";
    }

    #[test]
    fn msgpack_packets_reach_the_same_handlers() {
        match handle_client_msgpack_packet(from_npm::CHAT) {
            Ok(Outcome::Handled {
                event,
                ack_id: Some(7),
                answer: Answer::Chat(message),
                ..
            }) => {
                assert_eq!(event, "chat");
                assert_eq!(
                    (message.room.as_deref(), message.text.as_str()),
                    (Some("r"), "hi")
                );
            }
            other => panic!("expected a handled chat, got {other:?}"),
        }
        assert!(matches!(
            handle_client_msgpack_packet(from_npm::JOIN_CHAT),
            Ok(Outcome::Handled { namespace, answer: Answer::Room(room), .. })
                if namespace == "/chat" && room.as_str() == "lobby"
        ));
        // A Buffer and a Uint8Array are both binary; `undefined` stays notepack.io's undefined.
        assert_eq!(
            handle_client_msgpack_packet(from_npm::BINARY).ok(),
            Some(Outcome::Handled {
                namespace: "/".into(),
                event: "message".into(),
                ack_id: None,
                answer: Answer::Message(EventArgs(vec![
                    Value::Binary(vec![1, 2]),
                    Value::Binary(vec![3]),
                    Value::Ext(0, vec![0]),
                ])),
            })
        );
        assert!(matches!(
            handle_client_msgpack_packet(from_npm::CONNECT_NOWHERE),
            Ok(Outcome::InvalidNamespace { namespace }) if namespace == "/nowhere"
        ));
        assert!(matches!(
            handle_client_msgpack_packet(from_npm::NUMBER_AS_EVENT),
            Err(PacketError::InvalidEventName)
        ));
    }

    #[test]
    fn msgpack_packets_the_npm_parser_refuses_are_refused() {
        // A text packet, a binary event type, a null ack id, truncated data.
        for packet in [
            &b"2[\"echo\"]"[..],
            b"\x83\xa4type\x05\xa3nsp\xa1/\xa4data\x91\xa4echo",
            b"\x84\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa4echo\xa2id\xc0",
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa4echo\xc4\x09",
        ] {
            assert!(
                matches!(
                    handle_client_msgpack_packet(packet),
                    Err(PacketError::Malformed(_))
                ),
                "{packet:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let depth = 100_000;
        let packet = format!("2[\"message\",{}{}]", "[".repeat(depth), "]".repeat(depth));
        assert!(matches!(
            handle_client_packet(&packet, &[]),
            Err(PacketError::MalformedArguments(_))
        ));
    }
}
