//! MessagePack packets as the npm `socket.io-msgpack-parser` (3.x, on notepack.io) writes and
//! accepts them, checked and adjusted before [`MsgPackParser`] decodes them.
//!
//! - What the npm decoder refuses is refused (its `checkPacket`): a `type` that is not an
//!   integer from 0 to 4 (the MessagePack parser has no binary packet types), a `nsp` that is
//!   not a string, a `data` of the wrong shape for the type (an array for events and acks, an
//!   object or nothing for CONNECT, nothing for DISCONNECT, a string or an object for
//!   CONNECT_ERROR), an `id` that is not an integer.
//! - notepack.io in Node writes an `ArrayBuffer` or a typed array (other than a `Buffer`) as an
//!   extension of type 0 (ext 8, 16 or 32) and a `Buffer` as `bin`. Such an extension in `data`
//!   is rewritten as `bin`, so it decodes as binary and goes back to clients as binary. Left as
//!   an extension, it would be written back with the fixed-size extension markers whenever its
//!   length is 1, 2, 4, 8 or 16, which notepack.io reads as `undefined`, a `Date` or a
//!   `[type, Buffer]` pair. notepack.io's own extensions of type 0, `undefined` (fixext 1) and
//!   `Date` (fixext 8), are kept and go back as they came.
//! - An `id` written as `undefined`, which the npm decoder takes for no id, is rewritten as nil,
//!   which [`MsgPackParser`] takes for no id.
//!
//! [`MsgPackParser`]: socketioxide_parser_msgpack::MsgPackParser

use bytes::Bytes;
use socketioxide_core::parser::ParseError;

/// Nesting the walk follows, as the MessagePack parser's own limit.
const DEPTH_LIMIT: usize = 128;

/// Checks `packet` as the npm decoder does and rewrites the `ArrayBuffer` extensions of its
/// `data` as `bin`; returns the packet to decode (the same bytes when nothing is rewritten).
pub fn npm_packet(packet: Bytes) -> Result<Bytes, ParseError> {
    let mut reader = Reader {
        buf: &packet,
        pos: 0,
        rewrites: Vec::new(),
    };
    let Head::Map(entries) = reader.head()? else {
        return Err(ParseError::InvalidPacketType);
    };
    let mut packet_type = None;
    let mut has_namespace = false;
    let mut data = Data::Absent;
    for _ in 0..entries {
        let key = match reader.head()? {
            Head::Str(len) => reader.take(len)?,
            _ => {
                // JavaScript turns any key into a string: skip the value as an unknown key's.
                reader.skip_value(0, false)?;
                reader.skip_value(0, false)?;
                continue;
            }
        };
        match key {
            b"type" => {
                packet_type = match reader.head()? {
                    Head::Int(Some(n)) if n <= 4 => Some(n),
                    _ => return Err(ParseError::InvalidPacketType),
                }
            }
            b"nsp" => match reader.head()? {
                Head::Str(len) => {
                    reader.take(len)?;
                    has_namespace = true;
                }
                _ => return Err(ParseError::InvalidNamespace),
            },
            b"data" => {
                // Only the last `data` is decoded, as in JavaScript: forget earlier rewrites.
                reader
                    .rewrites
                    .retain(|rewrite| matches!(rewrite, Rewrite::UndefinedId(_)));
                data = reader.data()?;
            }
            b"id" => {
                let start = reader.pos;
                match reader.head()? {
                    Head::Int(_) => {}
                    Head::Undefined => reader.rewrites.push(Rewrite::UndefinedId(start)),
                    _ => return Err(ParseError::InvalidAckId),
                }
            }
            _ => reader.skip_value(0, false)?,
        }
    }
    let packet_type = packet_type.ok_or(ParseError::InvalidPacketType)?;
    if !has_namespace {
        return Err(ParseError::InvalidNamespace);
    }
    let valid = match packet_type {
        0 => matches!(data, Data::Absent | Data::Undefined | Data::Object),
        1 => matches!(data, Data::Absent | Data::Undefined),
        4 => matches!(data, Data::String | Data::Object),
        _ => data == Data::Array,
    };
    if !valid {
        return Err(ParseError::InvalidData);
    }
    let rewrites = std::mem::take(&mut reader.rewrites);
    Ok(if rewrites.is_empty() {
        packet
    } else {
        rewritten(&packet, &rewrites)
    })
}

/// A change to a packet, at the position of the value it changes.
#[derive(Debug, Clone, Copy)]
enum Rewrite {
    /// An `ArrayBuffer` extension header, written as the `bin` header of the same length: the
    /// marker changes and the type byte after the length goes.
    ArrayBuffer(usize),
    /// An `id` of `undefined` (3 bytes), written as nil.
    UndefinedId(usize),
}

/// `packet` with `rewrites`, which are in the order of their positions.
fn rewritten(packet: &[u8], rewrites: &[Rewrite]) -> Bytes {
    let mut out = Vec::with_capacity(packet.len());
    let mut copied = 0;
    for rewrite in rewrites {
        match *rewrite {
            Rewrite::ArrayBuffer(at) => {
                let (bin_marker, len_bytes) = match packet[at] {
                    0xc7 => (0xc4, 1),
                    0xc8 => (0xc5, 2),
                    _ => (0xc6, 4),
                };
                out.extend_from_slice(&packet[copied..at]);
                out.push(bin_marker);
                out.extend_from_slice(&packet[at + 1..at + 1 + len_bytes]);
                copied = at + 2 + len_bytes;
            }
            Rewrite::UndefinedId(at) => {
                out.extend_from_slice(&packet[copied..at]);
                out.push(0xc0);
                copied = at + 3;
            }
        }
    }
    out.extend_from_slice(&packet[copied..]);
    Bytes::from(out)
}

/// The shape of a packet's `data`, as the npm decoder tells them apart.
#[derive(Debug, PartialEq, Eq)]
enum Data {
    Absent,
    Undefined,
    Array,
    Object,
    String,
    Other,
}

/// The start of one MessagePack value.
enum Head {
    /// An integer; `None` when negative.
    Int(Option<u64>),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    /// notepack.io's `undefined`: fixext 1 of type 0.
    Undefined,
    /// Any other extension; `array_buffer` when it is a variable-length one of type 0.
    Ext {
        len: usize,
        array_buffer: bool,
    },
    /// nil, booleans and floats.
    Scalar,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The changes to make, in the order of their positions.
    rewrites: Vec<Rewrite>,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], ParseError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ParseError::InvalidData)?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian unsigned number of `len` bytes (at most 8).
    fn number(&mut self, len: usize) -> Result<u64, ParseError> {
        Ok(self
            .take(len)?
            .iter()
            .fold(0, |n, &b| (n << 8) | u64::from(b)))
    }

    fn length(&mut self, len: usize) -> Result<usize, ParseError> {
        usize::try_from(self.number(len)?).map_err(|_| ParseError::InvalidData)
    }

    /// Reads the marker of the next value and its length fields, not its contents.
    fn head(&mut self) -> Result<Head, ParseError> {
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Head::Int(Some(u64::from(marker))),
            0x80..=0x8f => Head::Map(usize::from(marker & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(marker & 0x0f)),
            0xa0..=0xbf => Head::Str(usize::from(marker & 0x1f)),
            0xc0 | 0xc2 | 0xc3 => Head::Scalar,
            0xc4 => Head::Bin(self.length(1)?),
            0xc5 => Head::Bin(self.length(2)?),
            0xc6 => Head::Bin(self.length(4)?),
            0xc7..=0xc9 => {
                let len = self.length(1usize << (marker - 0xc7))?;
                let ext_type = self.byte()?;
                Head::Ext {
                    len,
                    array_buffer: ext_type == 0,
                }
            }
            0xca => {
                self.take(4)?;
                Head::Scalar
            }
            0xcb => {
                self.take(8)?;
                Head::Scalar
            }
            0xcc..=0xcf => Head::Int(Some(self.number(1usize << (marker - 0xcc))?)),
            0xd0..=0xd3 => {
                let len = 1usize << (marker - 0xd0);
                let n = self.number(len)?;
                let negative = (n >> (len * 8 - 1)) & 1 == 1;
                Head::Int((!negative).then_some(n))
            }
            0xd4..=0xd8 => {
                let ext_type = self.byte()?;
                let len = 1usize << (marker - 0xd4);
                if marker == 0xd4 && ext_type == 0 {
                    self.take(1)?;
                    Head::Undefined
                } else {
                    Head::Ext {
                        len,
                        array_buffer: false,
                    }
                }
            }
            0xd9 => Head::Str(self.length(1)?),
            0xda => Head::Str(self.length(2)?),
            0xdb => Head::Str(self.length(4)?),
            0xdc => Head::Array(self.length(2)?),
            0xdd => Head::Array(self.length(4)?),
            0xde => Head::Map(self.length(2)?),
            0xdf => Head::Map(self.length(4)?),
            0xe0..=0xff => Head::Int(None),
            // 0xc1 is never used.
            _ => return Err(ParseError::InvalidData),
        })
    }

    /// Reads `data`, noting its `ArrayBuffer` extensions.
    fn data(&mut self) -> Result<Data, ParseError> {
        let start = self.pos;
        let shape = match self.head()? {
            Head::Undefined => Data::Undefined,
            Head::Array(_) => Data::Array,
            Head::Map(_) => Data::Object,
            Head::Str(_) => Data::String,
            _ => Data::Other,
        };
        self.pos = start;
        self.skip_value(0, true)?;
        Ok(shape)
    }

    /// Moves past the next value; `in_data` notes the `ArrayBuffer` extensions met.
    fn skip_value(&mut self, depth: usize, in_data: bool) -> Result<(), ParseError> {
        if depth >= DEPTH_LIMIT {
            return Err(ParseError::InvalidData);
        }
        let start = self.pos;
        match self.head()? {
            Head::Str(len) | Head::Bin(len) => {
                self.take(len)?;
            }
            Head::Ext { len, array_buffer } => {
                if in_data && array_buffer {
                    self.rewrites.push(Rewrite::ArrayBuffer(start));
                }
                self.take(len)?;
            }
            Head::Array(items) => {
                for _ in 0..items {
                    self.skip_value(depth + 1, in_data)?;
                }
            }
            Head::Map(entries) => {
                for _ in 0..entries {
                    self.skip_value(depth + 1, in_data)?;
                    self.skip_value(depth + 1, in_data)?;
                }
            }
            Head::Int(_) | Head::Undefined | Head::Scalar => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by socket.io-msgpack-parser 3.0.2's encoder in Node for the packets
    /// socket.io-client 4.8 builds.
    mod from_npm {
        /// `emit("echo", "a", 1, callback)`: `{type: 2, data: ["echo", "a", 1], options:
        /// {compress: true}, id: 0, nsp: "/"}`.
        pub const EVENT_WITH_ACK: &[u8] = &[
            0x85, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a', b't', b'a', 0x93, 0xa4,
            b'e', b'c', b'h', b'o', 0xa1, b'a', 0x01, 0xa7, b'o', b'p', b't', b'i', b'o', b'n',
            b's', 0x81, 0xa8, b'c', b'o', b'm', b'p', b'r', b'e', b's', b's', 0xc3, 0xa2, b'i',
            b'd', 0x00, 0xa3, b'n', b's', b'p', 0xa1, b'/',
        ];
        /// CONNECT without auth: `{type: 0, data: undefined, nsp: "/"}`.
        pub const CONNECT: &[u8] = &[
            0x83, 0xa4, b't', b'y', b'p', b'e', 0x00, 0xa4, b'd', b'a', b't', b'a', 0xd4, 0x00,
            0x00, 0xa3, b'n', b's', b'p', 0xa1, b'/',
        ];
    }

    /// `{type, nsp: "/", data}` with `data` already encoded.
    fn packet(packet_type: u8, data: Option<&[u8]>) -> Bytes {
        let mut out = vec![0x82 + u8::from(data.is_some())];
        out.extend_from_slice(b"\xa4type");
        out.push(packet_type);
        out.extend_from_slice(b"\xa3nsp\xa1/");
        if let Some(data) = data {
            out.extend_from_slice(b"\xa4data");
            out.extend_from_slice(data);
        }
        Bytes::from(out)
    }

    #[test]
    fn what_the_npm_client_sends_passes_unchanged() {
        for sent in [from_npm::EVENT_WITH_ACK, from_npm::CONNECT] {
            let checked = npm_packet(Bytes::from_static(sent)).expect("valid");
            assert_eq!(checked, sent);
        }
        // A Buffer (bin), undefined and a Date are left as they are.
        let data = b"\x94\xa1m\xc4\x02\x01\x02\xd4\x00\x00\xd7\x00\0\0\0\0\0\0\0\0";
        assert_eq!(
            npm_packet(packet(2, Some(data))).expect("valid"),
            packet(2, Some(data))
        );
    }

    #[test]
    fn array_buffers_become_bin_wherever_they_are() {
        // ["m", ArrayBuffer(8), {k: [Uint8Array(1)]}] as notepack.io writes it in Node.
        let sent = b"\x93\xa1m\xc7\x08\x00ABCDEFGH\x81\xa1k\x91\xc7\x01\x00Z";
        let expected = b"\x93\xa1m\xc4\x08ABCDEFGH\x81\xa1k\x91\xc4\x01Z";
        assert_eq!(
            npm_packet(packet(2, Some(sent))).expect("valid"),
            packet(2, Some(expected))
        );
        // 16- and 32-bit lengths.
        let mut sent = b"\x91\xc8\x01\x00\x00".to_vec();
        sent.extend_from_slice(&[7; 256]);
        let mut expected = b"\x91\xc5\x01\x00".to_vec();
        expected.extend_from_slice(&[7; 256]);
        assert_eq!(
            npm_packet(packet(3, Some(&sent))).expect("valid"),
            packet(3, Some(&expected))
        );
        let sent = b"\x91\xc9\x00\x00\x00\x02\x00ab";
        assert_eq!(
            npm_packet(packet(2, Some(sent))).expect("valid"),
            packet(2, Some(b"\x91\xc6\x00\x00\x00\x02ab"))
        );
        // Other extension types are not binary to notepack.io: kept.
        let sent = b"\x92\xa1m\xc7\x02\x05ab";
        assert_eq!(
            npm_packet(packet(2, Some(sent))).expect("valid"),
            packet(2, Some(sent))
        );
    }

    #[test]
    fn what_the_npm_decoder_refuses_is_refused() {
        let refused = [
            (packet(5, Some(b"\x91\xa1m")), "binary event type"),
            (packet(6, Some(b"\x91\xa1m")), "binary ack type"),
            (packet(2, None), "event without data"),
            (packet(2, Some(b"\xa1m")), "event data not an array"),
            (packet(3, Some(b"\x81\xa1k\x01")), "ack data not an array"),
            (packet(0, Some(b"\xc0")), "connect data null"),
            (packet(0, Some(b"\xa1x")), "connect data a string"),
            (packet(1, Some(b"\x90")), "disconnect with data"),
            (packet(4, Some(b"\x01")), "connect_error data a number"),
            (
                Bytes::from_static(b"\x82\xa4type\x02\xa4data\x90"),
                "no nsp",
            ),
            (
                Bytes::from_static(b"\x82\xa3nsp\xa1/\xa4data\x90"),
                "no type",
            ),
            (
                Bytes::from_static(b"\x83\xa4type\xcb\0\0\0\0\0\0\0\0\xa3nsp\xa1/\xa4data\x90"),
                "float type",
            ),
            (
                Bytes::from_static(b"\x83\xa4type\xff\xa3nsp\xa1/\xa4data\x90"),
                "negative type",
            ),
            (
                Bytes::from_static(b"\x83\xa4type\x02\xa3nsp\x01\xa4data\x90"),
                "numeric nsp",
            ),
            (
                Bytes::from_static(b"\x84\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa1m\xa2id\xc0"),
                "null id",
            ),
            (
                Bytes::from_static(b"\x84\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa1m\xa2id\xa11"),
                "string id",
            ),
            (Bytes::from_static(b"\x91\x02"), "not a map"),
            (Bytes::from_static(b""), "empty"),
            (packet(2, Some(b"\x92\xa1m\xc4\x09ab")), "truncated bin"),
            (
                packet(2, Some(b"\x91\xdd\xff\xff\xff\xff")),
                "huge array count",
            ),
            (packet(2, Some(b"\x91\xc1")), "reserved marker"),
        ];
        for (bytes, what) in refused {
            assert!(npm_packet(bytes).is_err(), "{what} passed");
        }
        let deep = [vec![0x91; DEPTH_LIMIT + 1], vec![0xa1, b'm']].concat();
        assert!(npm_packet(packet(2, Some(&deep))).is_err());
    }

    #[test]
    fn what_the_npm_decoder_accepts_passes() {
        let accepted = [
            packet(0, None),
            packet(0, Some(b"\x81\xa5token\xa1t")),
            packet(1, None),
            packet(1, Some(b"\xd4\x00\x00")),
            packet(4, Some(b"\xa1x")),
            packet(4, Some(b"\x81\xa7message\xa1x")),
            // A negative id and an unknown key.
            Bytes::from_static(b"\x85\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa1m\xa2id\xff\xa1x\x90"),
        ];
        for bytes in accepted {
            assert!(npm_packet(bytes.clone()).is_ok(), "{bytes:?} refused");
        }
        // An undefined id is no id.
        let sent = b"\x84\xa4type\x02\xa4data\x91\xc7\x01\x00Z\xa2id\xd4\x00\x00\xa3nsp\xa1/";
        let expected = b"\x84\xa4type\x02\xa4data\x91\xc4\x01Z\xa2id\xc0\xa3nsp\xa1/";
        assert_eq!(
            npm_packet(Bytes::from_static(sent)).expect("valid"),
            &expected[..]
        );
    }
}
