//! What waits in a session's queue on its way to the client.
use bytes::Bytes;
use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Str};
use smallvec::{SmallVec, smallvec};

/// One entry of a session's packet queue.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A message, queued as the socket was handed it: a broadcast gives every member a clone
    /// of the same bytes, so queueing it costs no copy. It is framed as it is written: a
    /// websocket text frame holding the Engine.IO message packet (`4` and the message, the same
    /// in both protocol versions).
    Message(Str),
    /// Packets to encode on the way out; adjacent ones are written together.
    Packets(Box<PacketBuf>),
    /// Websocket bytes written as they are: the websocket layer's own control frames.
    Raw(Bytes),
}

/// Websocket opcode of a text frame.
const OPCODE_TEXT: u8 = 0x1;
/// Websocket opcode of a binary frame.
const OPCODE_BINARY: u8 = 0x2;
/// Engine.IO packet type of a message.
const MESSAGE_TYPE: u8 = b'4';

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

impl Outgoing {
    /// The queue entry for one packet.
    pub(crate) fn packet(packet: Packet) -> Self {
        match packet {
            Packet::Message(msg) => Outgoing::Message(msg),
            packet => Outgoing::Packets(Box::new(smallvec![packet])),
        }
    }

    /// The queue entry for packets written together.
    pub(crate) fn packets(packets: PacketBuf) -> Self {
        Outgoing::Packets(Box::new(packets))
    }

    /// The packets of this entry, for a transport that encodes them itself.
    /// Engine.IO packets in this entry; the websocket layer's own frames are none.
    pub(crate) fn packet_count(&self) -> u64 {
        match self {
            Outgoing::Message(_) => 1,
            Outgoing::Packets(packets) => packets.len() as u64,
            Outgoing::Raw(_) => 0,
        }
    }

    pub(crate) fn into_packets(self) -> PacketBuf {
        match self {
            Outgoing::Message(msg) => smallvec![Packet::Message(msg)],
            Outgoing::Packets(packets) => *packets,
            // Websocket control frames mean nothing to another transport.
            Outgoing::Raw(_) => SmallVec::new(),
        }
    }

    /// Appends this entry's websocket frames to `out`.
    pub(crate) fn write_frames(self, protocol: ProtocolVersion, out: &mut Vec<u8>) {
        match self {
            Outgoing::Message(msg) => {
                push_header(out, OPCODE_TEXT, msg.len() + 1);
                out.push(MESSAGE_TYPE);
                out.extend_from_slice(msg.as_bytes());
            }
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

    fn frames(outgoing: Outgoing, protocol: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::new();
        outgoing.write_frames(protocol, &mut out);
        out
    }

    #[test]
    fn a_message_is_framed_as_a_text_packet_and_stays_a_message_for_polling() {
        let msg = Str::from("2[\"chat\",\"hi\"]".to_string());
        let mut expected = vec![0x81, 15, b'4'];
        expected.extend_from_slice(msg.as_bytes());
        assert_eq!(
            frames(Outgoing::Message(msg.clone()), ProtocolVersion::V4),
            expected
        );
        assert_eq!(
            frames(Outgoing::Message(msg.clone()), ProtocolVersion::V3),
            expected,
            "a message is the same packet in both versions"
        );
        let packets = Outgoing::Message(msg.clone()).into_packets();
        assert!(matches!(&packets[..], [Packet::Message(m)] if m.as_ptr() == msg.as_ptr()));
    }

    #[test]
    fn frames_carry_the_length_in_one_three_or_nine_bytes() {
        for (len, header) in [(0, vec![0x81, 0]), (124, vec![0x81, 124])] {
            let out = frames(
                Outgoing::Message(Str::from("x".repeat(len))),
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
            Outgoing::Message(Str::from("y".repeat(300))),
            ProtocolVersion::V4,
        );
        assert_eq!(out[..4], [0x81, 126, 0x01, 0x2d]);
        assert_eq!(out.len(), 4 + 301);
        let out = frames(
            Outgoing::Message(Str::from("z".repeat(70_000))),
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
