//! What waits in a session's queue on its way to the client.
use std::cell::RefCell;

use bytes::Bytes;
use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Str};
use smallvec::{SmallVec, smallvec};

/// One entry of a session's packet queue.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A message encoded as an Engine.IO text packet (`4` and the message, the same in both
    /// protocol versions) inside a websocket text frame: written as it is to a websocket, turned
    /// back into a [`Packet::Message`] for a polling request.
    Text(TextFrame),
    /// Packets to encode on the way out; adjacent ones are written together.
    Packets(Box<PacketBuf>),
    /// Websocket bytes written as they are: the websocket layer's own control frames.
    Raw(Bytes),
}

/// A websocket text frame holding an Engine.IO message packet.
#[derive(Debug, Clone)]
pub(crate) struct TextFrame {
    frame: Bytes,
    /// Length of the websocket frame header before the packet.
    header: u8,
}

impl TextFrame {
    fn new(packet: &str) -> Self {
        let mut frame = Vec::with_capacity(packet.len() + MAX_HEADER);
        push_header(&mut frame, OPCODE_TEXT, packet.len());
        let header = frame.len() as u8;
        frame.extend_from_slice(packet.as_bytes());
        TextFrame {
            frame: frame.into(),
            header,
        }
    }

    /// The whole frame, header included.
    pub(crate) fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The Engine.IO packet inside the frame (`4` and the message).
    pub(crate) fn packet(&self) -> Str {
        // SAFETY: the bytes after the header were copied from a `&str`.
        unsafe { Str::from_bytes_unchecked(self.frame.slice(usize::from(self.header)..)) }
    }
}

/// Websocket opcode of a text frame.
const OPCODE_TEXT: u8 = 0x1;
/// Websocket opcode of a binary frame.
const OPCODE_BINARY: u8 = 0x2;
/// The longest header of an unmasked websocket frame.
const MAX_HEADER: usize = 10;

/// Appends the header of a final, unmasked (server to client) websocket frame.
fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a final, unmasked websocket frame.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    push_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

thread_local! {
    /// The last message encoded on this thread, and its frame.
    static LAST_ENCODED: RefCell<Option<(Str, TextFrame)>> = const { RefCell::new(None) };
}

impl Outgoing {
    /// The queue entry for a message.
    ///
    /// A broadcast hands every member a clone of the same message, one after the other on the
    /// same thread, so the encoding of the last message is kept and reused when the next one is
    /// the very same bytes: one encoding per broadcast instead of one per member. Holding the
    /// last message keeps its buffer alive, so equal address and length mean equal bytes.
    pub(crate) fn message(msg: Str) -> Self {
        let reused = LAST_ENCODED.with(|last| {
            let last = last.try_borrow().ok()?;
            let (original, encoded) = last.as_ref()?;
            (original.as_ptr() == msg.as_ptr() && original.len() == msg.len())
                .then(|| encoded.clone())
        });
        if let Some(encoded) = reused {
            return Outgoing::Text(encoded);
        }
        let mut text = String::with_capacity(msg.len() + 1);
        text.push('4');
        text.push_str(&msg);
        let encoded = TextFrame::new(&text);
        LAST_ENCODED.with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                *last = Some((msg, encoded.clone()));
            }
        });
        Outgoing::Text(encoded)
    }

    /// The queue entry for one packet.
    pub(crate) fn packet(packet: Packet) -> Self {
        match packet {
            Packet::Message(msg) => Outgoing::message(msg),
            packet => Outgoing::Packets(Box::new(smallvec![packet])),
        }
    }

    /// The queue entry for packets written together.
    pub(crate) fn packets(packets: PacketBuf) -> Self {
        Outgoing::Packets(Box::new(packets))
    }

    /// The packets of this entry, for a transport that encodes them itself.
    pub(crate) fn into_packets(self) -> PacketBuf {
        match self {
            // The packet starts with its one-byte type.
            Outgoing::Text(text) => smallvec![Packet::Message(text.packet().slice(1..))],
            Outgoing::Packets(packets) => *packets,
            // Websocket control frames mean nothing to another transport.
            Outgoing::Raw(_) => SmallVec::new(),
        }
    }

    /// Appends this entry's websocket frames to `out`.
    pub(crate) fn write_frames(self, protocol: ProtocolVersion, out: &mut Vec<u8>) {
        match self {
            Outgoing::Text(text) => out.extend_from_slice(text.frame()),
            Outgoing::Raw(bytes) => out.extend_from_slice(&bytes),
            Outgoing::Packets(packets) => {
                for packet in *packets {
                    match packet {
                        Packet::Binary(bin) | Packet::BinaryV3(bin)
                            if protocol == ProtocolVersion::V3 =>
                        {
                            // v3 binary messages start with their packet type.
                            push_header(out, OPCODE_BINARY, bin.len() + 1);
                            out.push(0x04);
                            out.extend_from_slice(&bin);
                        }
                        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
                            push_frame(out, OPCODE_BINARY, &bin)
                        }
                        // A Noop sent to end a polling request during an upgrade may still be
                        // queued when the websocket takes over; it means nothing there.
                        Packet::Noop => {}
                        packet => push_frame(out, OPCODE_TEXT, String::from(packet).as_bytes()),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(outgoing: &Outgoing) -> Str {
        match outgoing {
            Outgoing::Text(text) => text.packet(),
            other => panic!("expected an encoded message, got {other:?}"),
        }
    }

    fn frames(outgoing: Outgoing, protocol: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::new();
        outgoing.write_frames(protocol, &mut out);
        out
    }

    #[test]
    fn a_message_is_encoded_as_a_text_packet_and_decodes_back() {
        let outgoing = Outgoing::message(Str::from("2[\"chat\",\"hi\"]".to_string()));
        assert_eq!(encoded(&outgoing).as_str(), "42[\"chat\",\"hi\"]");
        let packets = outgoing.into_packets();
        assert_eq!(packets.len(), 1);
        assert!(
            matches!(&packets[0], Packet::Message(msg) if msg.as_str() == "2[\"chat\",\"hi\"]")
        );
    }

    #[test]
    fn clones_of_one_message_share_one_encoding() {
        let msg = Str::from("2[\"chat\",\"to all\"]".to_string());
        let first = Outgoing::message(msg.clone());
        let second = Outgoing::message(msg.clone());
        assert_eq!(encoded(&first).as_ptr(), encoded(&second).as_ptr());
        assert_eq!(
            frames(first, ProtocolVersion::V4),
            frames(second, ProtocolVersion::V4)
        );
    }

    #[test]
    fn a_different_message_with_the_same_text_is_encoded_on_its_own() {
        let first = Outgoing::message(Str::from("2[\"a\"]".to_string()));
        let second = Outgoing::message(Str::from("2[\"b\"]".to_string()));
        let third = Outgoing::message(Str::from("2[\"a\"]".to_string()));
        assert_eq!(encoded(&first).as_str(), "42[\"a\"]");
        assert_eq!(encoded(&second).as_str(), "42[\"b\"]");
        assert_eq!(encoded(&third).as_str(), "42[\"a\"]");
    }

    #[test]
    fn frames_carry_the_length_in_one_three_or_nine_bytes() {
        for (len, header) in [(0, vec![0x81, 0]), (124, vec![0x81, 124])] {
            let out = frames(
                Outgoing::message(Str::from("x".repeat(len))),
                ProtocolVersion::V4,
            );
            let mut expected = header;
            expected.push(b'4');
            expected.extend(std::iter::repeat_n(b'x', len));
            // The packet type is part of the payload: one more byte than the message.
            expected[1] += 1;
            assert_eq!(out, expected, "message of {len} bytes");
        }
        let out = frames(
            Outgoing::message(Str::from("y".repeat(300))),
            ProtocolVersion::V4,
        );
        assert_eq!(out[..4], [0x81, 126, 0x01, 0x2d]);
        assert_eq!(out.len(), 4 + 301);
        let out = frames(
            Outgoing::message(Str::from("z".repeat(70_000))),
            ProtocolVersion::V4,
        );
        assert_eq!(out[..2], [0x81, 127]);
        assert_eq!(out[2..10], 70_001u64.to_be_bytes());
        assert_eq!(out.len(), 10 + 70_001);
    }

    #[test]
    fn binary_packets_get_binary_frames_with_the_v3_type_byte() {
        let bin = || Outgoing::packet(Packet::Binary(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(frames(bin(), ProtocolVersion::V4), [0x82, 3, 1, 2, 3]);
        assert_eq!(frames(bin(), ProtocolVersion::V3), [0x82, 4, 4, 1, 2, 3]);
        assert_eq!(
            frames(Outgoing::packet(Packet::Ping), ProtocolVersion::V4),
            [0x81, 1, b'2']
        );
        assert!(frames(Outgoing::packet(Packet::Noop), ProtocolVersion::V4).is_empty());
    }

    #[test]
    fn other_packets_stay_packets() {
        let outgoing = Outgoing::packet(Packet::Ping);
        assert!(matches!(outgoing.into_packets()[..], [Packet::Ping]));
    }
}
