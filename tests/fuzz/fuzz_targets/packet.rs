//! Arbitrary client packets through iorelay's decoding and event validation.
//!
//! An input is a Socket.IO text packet, then binary attachments, each introduced by the byte
//! 0x1E (the record separator Engine.IO's long-polling puts between packets). The text part is
//! read as UTF-8 with invalid sequences replaced, as both transports hand the server only valid
//! text messages. The whole input also goes through the `--parser msgpack` path, as one
//! MessagePack packet.
#![no_main]

use iorelay::socketio::inspect::{handle_client_msgpack_packet, handle_client_packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0x1E);
    let packet = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let attachments: Vec<&[u8]> = parts.collect();
    let _ = handle_client_packet(&packet, &attachments);
    let _ = handle_client_msgpack_packet(data);
});
