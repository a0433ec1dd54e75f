//! What waits in a session's queue on its way to the client.
use std::cell::RefCell;

use engineioxide_core::{Packet, PacketBuf, Str};
use smallvec::smallvec;

/// One entry of a session's packet queue.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A message already encoded as an Engine.IO text packet (`4` and the message), the same in
    /// both protocol versions: written as it is to a websocket, turned back into a
    /// [`Packet::Message`] for a polling request.
    Encoded(Str),
    /// Packets to encode on the way out; adjacent ones are written together.
    Packets(Box<PacketBuf>),
}

thread_local! {
    /// The last message encoded on this thread, and its encoding.
    static LAST_ENCODED: RefCell<Option<(Str, Str)>> = const { RefCell::new(None) };
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
            return Outgoing::Encoded(encoded);
        }
        let mut text = String::with_capacity(msg.len() + 1);
        text.push('4');
        text.push_str(&msg);
        let encoded = Str::from(text);
        LAST_ENCODED.with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                *last = Some((msg, encoded.clone()));
            }
        });
        Outgoing::Encoded(encoded)
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
            // The encoding starts with the one-byte packet type.
            Outgoing::Encoded(text) => smallvec![Packet::Message(text.slice(1..))],
            Outgoing::Packets(packets) => *packets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(outgoing: &Outgoing) -> &Str {
        match outgoing {
            Outgoing::Encoded(text) => text,
            Outgoing::Packets(packets) => panic!("expected an encoded message, got {packets:?}"),
        }
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
    fn other_packets_stay_packets() {
        let outgoing = Outgoing::packet(Packet::Ping);
        assert!(matches!(outgoing.into_packets()[..], [Packet::Ping]));
    }
}
