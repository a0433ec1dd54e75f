//! The websocket `permessage-deflate` extension (RFC 7692), as Node's `ws` library serves it
//! with engine.io's defaults.
//!
//! - [`negotiate`]: the client's first acceptable offer is accepted, with the parameters Node
//!   answers (`server_no_context_takeover`, `client_no_context_takeover` and the window sizes
//!   the client asked for are echoed, a bare `client_max_window_bits` is dropped).
//! - [`Deflating`]: the writer's side. Each data frame is compressed on its own with a sync
//!   flush and the final `00 00 ff ff` taken off; the compressor keeps its window from message
//!   to message unless the client asked for `server_no_context_takeover`. As in `ws`, every
//!   message is compressed while the context is kept (small messages gain from the shared
//!   window), and only messages of `threshold` bytes or more without it.
//! - [`Inflating`]: the reader's side, under tungstenite. It rewrites the client's compressed
//!   frames into plain ones before tungstenite parses them (tungstenite refuses frames with a
//!   reserved bit set): each compressed frame becomes fragments of inflated data, masked with a
//!   zero key, that tungstenite joins into the message as it joins any fragments, holding them
//!   to its message size limit as it goes.
//!
//! The compressor and the decompressor are created on their first message, as in `ws`.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use tokio::io::{AsyncRead, ReadBuf};

/// permessage-deflate for the websocket upgrades of a service: a request that carries this value
/// in its extensions is answered with the extension when the client offers it.
///
/// `threshold` is Node's `perMessageDeflate.threshold`: with `server_no_context_takeover`,
/// smaller messages are sent uncompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMessageDeflate {
    /// Smallest message compressed when the compressor does not keep its context.
    pub threshold: usize,
}

/// What was agreed with one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// The `Sec-WebSocket-Extensions` answer.
    pub(crate) response: String,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// Window of the server's compressor (zlib refuses 8 for raw deflate and uses 9, as
    /// Node's zlib does).
    server_window_bits: u8,
    threshold: usize,
}

impl Agreement {
    pub(crate) fn deflating(&self) -> Deflating {
        Deflating {
            compress: None,
            window_bits: self.server_window_bits,
            reset_after_message: self.server_no_context_takeover,
            threshold: if self.server_no_context_takeover {
                self.threshold
            } else {
                0
            },
            scratch: Vec::new(),
            compressed: Vec::new(),
        }
    }

    pub(crate) fn inflating(&self, read_size: usize) -> Inflating {
        Inflating {
            decompress: None,
            reset_after_message: self.client_no_context_takeover,
            input: vec![0; read_size.max(MIN_READ)].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::new(),
            out_pos: 0,
            inflated: Vec::new(),
            header: [0; MAX_HEADER],
            header_len: 0,
            frame: Frame::Header,
            message_compressed: false,
            message_opcode: 0,
            first_emitted: false,
        }
    }
}

/// The extension's parameters, each at most once, as `ws` accepts them.
#[derive(Debug, Default)]
struct Offer<'a> {
    /// In the order the client gave them, for the answer.
    params: Vec<(&'a str, Option<u8>)>,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
}

/// The answer to the client's `Sec-WebSocket-Extensions` offers, if one is acceptable.
///
/// Node's `ws` accepts the first `permessage-deflate` offer (its defaults accept any) and
/// answers 400 when an offer is malformed; here a malformed header only means no compression.
pub(crate) fn negotiate(config: PerMessageDeflate, headers: &HeaderMap) -> Option<Agreement> {
    let mut offers = Vec::new();
    for value in headers.get_all(http::header::SEC_WEBSOCKET_EXTENSIONS) {
        let value = value.to_str().ok()?;
        for offer in value.split(',') {
            let mut parts = offer.split(';').map(str::trim);
            if parts.next() != Some("permessage-deflate") {
                continue;
            }
            offers.push(parse_offer(parts)?);
        }
    }
    let offer = offers.into_iter().next()?;
    let mut response = String::from("permessage-deflate");
    for (name, value) in &offer.params {
        match value {
            Some(value) => response.push_str(&format!("; {name}={value}")),
            // A bare `client_max_window_bits` only says the client could take a value.
            None if *name == "client_max_window_bits" => {}
            None => response.push_str(&format!("; {name}")),
        }
    }
    Some(Agreement {
        response,
        server_no_context_takeover: offer.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover,
        server_window_bits: offer.server_max_window_bits.unwrap_or(15).max(9),
        threshold: config.threshold,
    })
}

/// One offer's parameters, or `None` when `ws` would refuse them.
fn parse_offer<'a>(params: impl Iterator<Item = &'a str>) -> Option<Offer<'a>> {
    let mut offer = Offer::default();
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        if offer.params.iter().any(|(seen, _)| *seen == name) {
            return None;
        }
        let bits = |value: Option<&str>| {
            value
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|bits| (8..=15).contains(bits))
        };
        let value = match name {
            "client_max_window_bits" => match value {
                None => None,
                Some(_) => Some(bits(value)?),
            },
            "server_max_window_bits" => {
                let bits = bits(value)?;
                offer.server_max_window_bits = Some(bits);
                Some(bits)
            }
            "server_no_context_takeover" if value.is_none() => {
                offer.server_no_context_takeover = true;
                None
            }
            "client_no_context_takeover" if value.is_none() => {
                offer.client_no_context_takeover = true;
                None
            }
            _ => return None,
        };
        offer.params.push((name, value));
    }
    Some(offer)
}

/// The sync flush's empty stored block, which every compressed message leaves off.
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// The longest frame header: two bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// Inflated data is handed to tungstenite in fragments of at most this size, which bounds what
/// a small compressed message can make the reader hold at once.
const FRAGMENT: usize = 16 * 1024;
/// Output buffer kept between reads (small frames passed through fit in it).
const KEPT_OUTPUT: usize = 2 * 1024;
/// Smallest read buffer.
const MIN_READ: usize = 1024;
/// A buffer that grew past this for a large message is freed after it.
pub(crate) const RETAINED: usize = 64 * 1024;

/// Compresses the frames the writer appends.
pub(crate) struct Deflating {
    compress: Option<Compress>,
    window_bits: u8,
    reset_after_message: bool,
    /// Smallest payload compressed (0 while the context is kept).
    threshold: usize,
    /// The frames of one queue entry, before compression.
    pub(crate) scratch: Vec<u8>,
    compressed: Vec<u8>,
}

impl Deflating {
    /// Appends `frames` (whole unmasked frames, as `Outgoing::write_frames` makes them) to
    /// `out`, text and binary payloads compressed.
    pub(crate) fn write(&mut self, frames: &[u8], out: &mut Vec<u8>) {
        let mut rest = frames;
        while let Some((header, payload, next)) = split_frame(rest) {
            rest = next;
            let opcode = header[0] & 0x0f;
            let data = opcode == 0x1 || opcode == 0x2;
            if data
                && header[0] & 0x80 != 0
                && payload.len() >= self.threshold
                && self.compress(payload)
            {
                push_header(out, 0x80 | 0x40 | opcode, self.compressed.len(), 0);
                out.extend_from_slice(&self.compressed);
                continue;
            }
            out.extend_from_slice(header);
            out.extend_from_slice(payload);
        }
        // Anything that is not a whole frame is passed on as it is.
        out.extend_from_slice(rest);
    }

    /// Compresses `payload` as one message into `self.compressed`. On `false` the frame is sent
    /// uncompressed, which is always allowed (zlib has nothing to flush for an empty message
    /// right after another one).
    fn compress(&mut self, payload: &[u8]) -> bool {
        let compressed = self.try_compress(payload).is_some();
        if !compressed && let Some(compress) = &mut self.compress {
            // Whatever it took in the client will never see: start a new stream, which refers
            // to nothing before it.
            compress.reset();
        }
        compressed
    }

    fn try_compress(&mut self, payload: &[u8]) -> Option<()> {
        // A large message's buffer is not kept for the next one.
        if self.compressed.capacity() > RETAINED {
            self.compressed = Vec::new();
        }
        let window_bits = self.window_bits;
        let compress = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::default(), false, window_bits)
        });
        self.compressed.clear();
        let start_in = compress.total_in();
        loop {
            self.compressed.reserve(payload.len() / 2 + 64);
            let consumed = (compress.total_in() - start_in) as usize;
            compress
                .compress_vec(
                    &payload[consumed..],
                    &mut self.compressed,
                    FlushCompress::Sync,
                )
                .ok()?;
            let consumed = (compress.total_in() - start_in) as usize;
            // The flush is complete once the output did not fill the room it had.
            if consumed == payload.len() && self.compressed.len() < self.compressed.capacity() {
                break;
            }
        }
        if self.reset_after_message {
            compress.reset();
        }
        let len = self.compressed.len().checked_sub(TRAILER.len())?;
        (self.compressed[len..] == TRAILER).then_some(())?;
        self.compressed.truncate(len);
        Some(())
    }
}

/// The first whole unmasked frame of `bytes`: its header, its payload and what follows.
fn split_frame(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let len_byte = *bytes.get(1)?;
    let (header_len, len): (usize, usize) = match len_byte & 0x7f {
        126 => (
            4,
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            10,
            usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).ok()?,
        ),
        len => (2, len as usize),
    };
    if len_byte & 0x80 != 0 {
        // Server frames are never masked.
        return None;
    }
    let end = header_len.checked_add(len)?;
    let frame = bytes.get(..end)?;
    Some((&frame[..header_len], &frame[header_len..], &bytes[end..]))
}

/// Appends a frame header with `first` as its first byte and `len` as its length; `mask` is
/// `0x80` for a masked frame (with a zero key, which leaves the payload as it is) or 0.
fn push_header(out: &mut Vec<u8>, first: u8, len: usize, mask: u8) {
    out.push(first);
    if len < 126 {
        out.push(mask | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if mask != 0 {
        out.extend_from_slice(&[0; 4]);
    }
}

/// Where the reader is in the client's frame stream.
enum Frame {
    /// Gathering a frame header.
    Header,
    /// Passing a frame's payload through unchanged.
    Plain { remaining: u64 },
    /// Inflating a frame's payload.
    Compressed {
        remaining: u64,
        fin: bool,
        mask: [u8; 4],
        /// Payload bytes unmasked so far (the mask's position).
        unmasked_total: u64,
        /// Bytes at the start of the input window already unmasked but not yet inflated.
        unmasked: usize,
        /// Bytes of the trailer fed at the end of the message.
        trailer: usize,
    },
}

/// Rewrites the client's compressed frames into plain ones for tungstenite.
pub(crate) struct Inflating {
    decompress: Option<Decompress>,
    reset_after_message: bool,
    /// Bytes read from the connection, `start..end` not yet processed.
    input: Box<[u8]>,
    start: usize,
    end: usize,
    /// Rewritten bytes, `out_pos..` not yet handed to tungstenite.
    out: Vec<u8>,
    out_pos: usize,
    /// Inflated data not yet framed.
    inflated: Vec<u8>,
    header: [u8; MAX_HEADER],
    header_len: usize,
    frame: Frame,
    /// Whether the message being read is compressed (its continuation frames are too).
    message_compressed: bool,
    message_opcode: u8,
    /// Whether the first fragment of the message being inflated was handed over.
    first_emitted: bool,
}

impl Inflating {
    pub(crate) fn poll_read<R: AsyncRead + Unpin>(
        &mut self,
        read: &mut R,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.out_pos < self.out.len() {
                let n = buf.remaining().min(self.out.len() - self.out_pos);
                buf.put_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                if self.out_pos == self.out.len() {
                    self.out.clear();
                    self.out_pos = 0;
                    // What a large message needed is not kept while the connection idles.
                    if self.out.capacity() > KEPT_OUTPUT {
                        self.out = Vec::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            if self.start < self.end || self.ends_message() {
                self.process()?;
                if !self.out.is_empty() {
                    continue;
                }
                if self.start < self.end {
                    continue;
                }
            }
            let mut filled = ReadBuf::new(&mut self.input);
            ready!(Pin::new(&mut *read).poll_read(cx, &mut filled))?;
            let n = filled.filled().len();
            if n == 0 {
                // End of the stream, which tungstenite sees as such.
                return Poll::Ready(Ok(()));
            }
            self.start = 0;
            self.end = n;
        }
    }

    /// Whether a compressed frame has all its payload and only its end remains to be written.
    fn ends_message(&self) -> bool {
        matches!(self.frame, Frame::Compressed { remaining: 0, .. })
    }

    /// Turns input into output until the input is used up or enough output is waiting.
    fn process(&mut self) -> io::Result<()> {
        while self.out.len() < FRAGMENT && (self.start < self.end || self.ends_message()) {
            match self.frame {
                Frame::Header => self.read_header(),
                Frame::Plain { remaining } => {
                    let n = (self.end - self.start)
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    self.out
                        .extend_from_slice(&self.input[self.start..self.start + n]);
                    self.start += n;
                    let remaining = remaining - n as u64;
                    self.frame = if remaining == 0 {
                        Frame::Header
                    } else {
                        Frame::Plain { remaining }
                    };
                }
                Frame::Compressed { .. } => self.inflate()?,
            }
        }
        Ok(())
    }

    /// Gathers header bytes; once the header is whole, starts its frame.
    fn read_header(&mut self) {
        let needed = |header: &[u8]| -> usize {
            if header.len() < 2 {
                return 2;
            }
            let len = match header[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if header[1] & 0x80 != 0 { 4 } else { 0 };
            2 + len + mask
        };
        while self.start < self.end {
            let want = needed(&self.header[..self.header_len]);
            if self.header_len == want {
                break;
            }
            let n = (want - self.header_len).min(self.end - self.start);
            self.header[self.header_len..self.header_len + n]
                .copy_from_slice(&self.input[self.start..self.start + n]);
            self.header_len += n;
            self.start += n;
        }
        let header_len = self.header_len;
        let header_bytes = self.header;
        let header = &header_bytes[..header_len];
        if header.len() < 2 || header.len() < needed(header) {
            return;
        }
        self.header_len = 0;
        let first = header[0];
        let (fin, rsv1, opcode) = (first & 0x80 != 0, first & 0x40 != 0, first & 0x0f);
        let masked = header[1] & 0x80 != 0;
        let len = match header[1] & 0x7f {
            126 => u16::from_be_bytes([header[2], header[3]]) as u64,
            127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or_default()),
            len => len as u64,
        };
        let data = opcode == 0x1 || opcode == 0x2;
        let compressed = masked
            && (data && rsv1 && first & 0x30 == 0
                || opcode == 0x0 && !rsv1 && first & 0x30 == 0 && self.message_compressed);
        if data {
            self.message_compressed = compressed;
            self.message_opcode = opcode;
            self.first_emitted = false;
        }
        if compressed {
            let mut mask = [0; 4];
            mask.copy_from_slice(&header[header.len() - 4..]);
            self.frame = Frame::Compressed {
                remaining: len,
                fin,
                mask,
                unmasked_total: 0,
                unmasked: 0,
                trailer: 0,
            };
        } else {
            // Anything else goes to tungstenite as it came, to be read or refused there.
            self.out.extend_from_slice(header);
            self.frame = if len == 0 {
                Frame::Header
            } else {
                Frame::Plain { remaining: len }
            };
        }
    }

    /// Inflates what input there is of the current compressed frame.
    fn inflate(&mut self) -> io::Result<()> {
        let Frame::Compressed {
            remaining,
            fin,
            mask,
            unmasked_total,
            unmasked,
            trailer,
        } = &mut self.frame
        else {
            return Ok(());
        };
        let decompress = self
            .decompress
            .get_or_insert_with(|| Decompress::new(false));
        if self.inflated.capacity() < FRAGMENT {
            self.inflated.reserve_exact(FRAGMENT - self.inflated.len());
        }
        if *remaining > 0 {
            let available = self.end - self.start;
            let take = available.min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            // Unmask what was not unmasked yet, in place.
            for (i, byte) in self.input[self.start + *unmasked..self.start + take]
                .iter_mut()
                .enumerate()
            {
                *byte ^= mask[((*unmasked_total as usize) + i) % 4];
            }
            *unmasked_total += (take - *unmasked) as u64;
            *unmasked = take;
            let before = decompress.total_in();
            let produced_before = self.inflated.len();
            let status = decompress
                .decompress_vec(
                    &self.input[self.start..self.start + take],
                    &mut self.inflated,
                    FlushDecompress::None,
                )
                .map_err(invalid_data)?;
            let consumed = (decompress.total_in() - before) as usize;
            self.start += consumed;
            *unmasked -= consumed;
            *remaining -= consumed as u64;
            let produced = self.inflated.len() - produced_before;
            if consumed == 0 && produced == 0 && self.inflated.len() < self.inflated.capacity() {
                return Err(invalid_data(match status {
                    Status::StreamEnd => "data after the end of a compressed message",
                    _ => "compressed data that does not inflate",
                }));
            }
        } else if *fin {
            // The end of the message: the trailer, then everything the decompressor holds.
            let before = decompress.total_in();
            let produced_before = self.inflated.len();
            let status = decompress
                .decompress_vec(
                    &TRAILER[*trailer..],
                    &mut self.inflated,
                    FlushDecompress::Sync,
                )
                .map_err(invalid_data)?;
            let consumed = (decompress.total_in() - before) as usize;
            *trailer += consumed;
            let room_left = self.inflated.len() < self.inflated.capacity();
            // A client may end its deflate stream with a final block: the next message then
            // starts a new stream.
            let ended = status == Status::StreamEnd;
            if (*trailer == TRAILER.len() || ended) && room_left {
                if self.reset_after_message || ended {
                    decompress.reset(false);
                }
                self.frame = Frame::Header;
                self.emit(true);
                return Ok(());
            }
            if consumed == 0 && self.inflated.len() == produced_before && room_left {
                return Err(invalid_data("compressed data that does not inflate"));
            }
        } else {
            // A fragment of a compressed message: its data goes out with the next one.
            self.frame = Frame::Header;
        }
        if self.inflated.len() == self.inflated.capacity() {
            self.emit(false);
        }
        Ok(())
    }

    /// Frames the inflated data as a fragment of the message (the last one if `fin`).
    fn emit(&mut self, fin: bool) {
        let opcode = if self.first_emitted {
            0x0
        } else {
            self.message_opcode
        };
        self.first_emitted = !fin;
        let first = if fin { 0x80 | opcode } else { opcode };
        push_header(&mut self.out, first, self.inflated.len(), 0x80);
        self.out.extend_from_slice(&self.inflated);
        self.inflated.clear();
        if fin {
            self.inflated = Vec::new();
        }
    }
}

fn invalid_data(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use http::HeaderValue;
    use tokio_tungstenite::{
        WebSocketStream,
        tungstenite::{Message, protocol::Role},
    };

    use super::*;

    const CONFIG: PerMessageDeflate = PerMessageDeflate { threshold: 1024 };

    fn offer(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                http::header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn answer(values: &[&str]) -> Option<String> {
        negotiate(CONFIG, &offer(values)).map(|agreement| agreement.response)
    }

    #[test]
    fn the_first_offer_is_accepted_with_the_parameters_node_answers() {
        // What browsers and Node's `ws` client offer.
        assert_eq!(
            answer(&["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(
            answer(&[
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=10, permessage-deflate"
            ])
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
        );
        assert_eq!(
            answer(&[
                "x-webkit-deflate-frame",
                "permessage-deflate; server_max_window_bits=\"9\""
            ])
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=9")
        );
        assert_eq!(answer(&[]), None);
        assert_eq!(answer(&["x-webkit-deflate-frame"]), None);
    }

    #[test]
    fn offers_ws_refuses_mean_no_compression() {
        for header in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        ] {
            assert_eq!(answer(&[header]), None, "{header}");
        }
    }

    fn agreement(header: &str) -> Agreement {
        negotiate(CONFIG, &offer(&[header])).unwrap()
    }

    /// Server frames as the writer appends them.
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_header(&mut out, 0x80 | opcode, payload.len(), 0);
        out.extend_from_slice(payload);
        out
    }

    /// The messages in `frames`, inflated as a client keeping its context does.
    fn client_reads(frames: &[u8], inflate: &mut Decompress) -> Vec<(bool, u8, Vec<u8>)> {
        let mut messages = Vec::new();
        let mut rest = frames;
        while let Some((header, payload, next)) = split_frame(rest) {
            rest = next;
            let compressed = header[0] & 0x40 != 0;
            let data = if compressed {
                let mut input = payload.to_vec();
                input.extend_from_slice(&TRAILER);
                let mut out = Vec::with_capacity(1 << 20);
                inflate
                    .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                    .unwrap();
                out
            } else {
                payload.to_vec()
            };
            messages.push((compressed, header[0] & 0x0f, data));
        }
        assert!(rest.is_empty());
        messages
    }

    #[test]
    fn every_message_is_compressed_while_the_context_is_kept() {
        let mut deflating = agreement("permessage-deflate").deflating();
        let big = "4[\"chat\",{\"text\":\"hello hello hello\"}]".repeat(100);
        let mut frames = server_frame(0x1, b"2");
        frames.extend(server_frame(0x1, big.as_bytes()));
        frames.extend(server_frame(0x2, &[1, 2, 3]));
        frames.extend(server_frame(0x1, big.as_bytes()));
        let mut out = Vec::new();
        deflating.write(&frames, &mut out);
        let mut inflate = Decompress::new(false);
        let messages = client_reads(&out, &mut inflate);
        assert_eq!(
            messages,
            vec![
                (true, 0x1, b"2".to_vec()),
                (true, 0x1, big.as_bytes().to_vec()),
                (true, 0x2, vec![1, 2, 3]),
                (true, 0x1, big.as_bytes().to_vec()),
            ]
        );
        assert!(out.len() < big.len() / 5, "{} bytes", out.len());

        // Control frames pass as they are.
        let mut out = Vec::new();
        deflating.write(&[0x8a, 0x01, b'x'], &mut out);
        assert_eq!(out, [0x8a, 0x01, b'x']);
    }

    #[test]
    fn without_context_takeover_only_messages_over_the_threshold_are_compressed() {
        let mut deflating = agreement("permessage-deflate; server_no_context_takeover").deflating();
        let big = "x".repeat(1024);
        let mut frames = server_frame(0x1, &big.as_bytes()[..1023]);
        frames.extend(server_frame(0x1, big.as_bytes()));
        frames.extend(server_frame(0x1, big.as_bytes()));
        let mut out = Vec::new();
        deflating.write(&frames, &mut out);
        // A fresh decompressor per message: nothing refers to an earlier one.
        let mut rest = &out[..];
        let mut seen = Vec::new();
        while let Some((_, _, next)) = split_frame(rest) {
            let frame = &rest[..rest.len() - next.len()];
            seen.push(client_reads(frame, &mut Decompress::new(false)).remove(0));
            rest = next;
        }
        assert_eq!(seen[0], (false, 0x1, big.as_bytes()[..1023].to_vec()));
        assert_eq!(seen[1], (true, 0x1, big.as_bytes().to_vec()));
        assert_eq!(seen[2], (true, 0x1, big.as_bytes().to_vec()));
    }

    /// A client frame: masked with `key`, compressed when `rsv1`.
    fn client_frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        push_header(&mut out, first, payload.len(), 0x80);
        let at = out.len() - 4;
        out[at..].copy_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    /// `data` compressed as a client does, with a sync flush and the trailer taken off.
    fn client_compress(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        compress
            .compress_vec(data, &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!(out[out.len() - 4..], TRAILER);
        out.truncate(out.len() - 4);
        out
    }

    /// Hands its bytes over `chunk` at a time.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self
                .chunk
                .min(self.bytes.len() - self.at)
                .min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.bytes[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// A reader that inflates `inner` as the websocket transport does.
    struct Inflated {
        inner: Trickle,
        inflating: Inflating,
    }

    impl AsyncRead for Inflated {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.inflating.poll_read(&mut this.inner, cx, buf)
        }
    }

    impl tokio::io::AsyncWrite for Inflated {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// What tungstenite reads from `bytes` through the inflater, `chunk` bytes per read.
    async fn server_reads(header: &str, bytes: Vec<u8>, chunk: usize) -> Vec<Message> {
        let inflating = agreement(header).inflating(1024);
        let io = Inflated {
            inner: Trickle {
                bytes,
                at: 0,
                chunk,
            },
            inflating,
        };
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let mut messages = Vec::new();
        while let Some(message) = ws.next().await {
            messages.push(message.unwrap());
        }
        messages
    }

    #[tokio::test]
    async fn compressed_client_frames_reach_tungstenite_inflated() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let mut compress = Compress::new(Compression::default(), false);
        let text = "4[\"message\",\"hello hello hello\"]".repeat(50);
        let large: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        let mut stream = Vec::new();
        // A compressed text message, then the same again (it refers to the first).
        for _ in 0..2 {
            let payload = client_compress(&mut compress, text.as_bytes());
            stream.extend(client_frame(0xc1, &payload, key));
        }
        // An uncompressed message in between.
        stream.extend(client_frame(0x81, b"2", key));
        // A large binary message in three fragments, a ping between them.
        let payload = client_compress(&mut compress, &large);
        let (a, rest) = payload.split_at(payload.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        stream.extend(client_frame(0x42, a, key));
        stream.extend(client_frame(0x00, b, key));
        stream.extend(client_frame(0x89, b"ping", key));
        stream.extend(client_frame(0x80, c, key));
        // An empty compressed message, as browsers send it (an empty stored block, its end
        // left off).
        stream.extend(client_frame(0xc1, &[0x00], key));
        stream.extend(client_frame(0x88, &[], key));

        for chunk in [1, 7, 1000, 1 << 20] {
            let messages = server_reads("permessage-deflate", stream.clone(), chunk).await;
            assert_eq!(
                messages,
                vec![
                    Message::text(text.clone()),
                    Message::text(text.clone()),
                    Message::text("2"),
                    Message::Ping(b"ping".to_vec().into()),
                    Message::binary(large.clone()),
                    Message::text(""),
                    Message::Close(None),
                ],
                "read {chunk} bytes at a time"
            );
        }
    }

    #[tokio::test]
    async fn a_client_without_context_takeover_is_inflated_message_by_message() {
        let key = [9, 8, 7, 6];
        let text = "abcabcabc".repeat(300);
        let mut stream = Vec::new();
        for _ in 0..3 {
            let mut compress = Compress::new(Compression::default(), false);
            stream.extend(client_frame(
                0xc1,
                &client_compress(&mut compress, text.as_bytes()),
                key,
            ));
        }
        stream.extend(client_frame(0x88, &[], key));
        let messages = server_reads(
            "permessage-deflate; client_no_context_takeover",
            stream,
            100,
        )
        .await;
        let mut expected = vec![Message::text(text.clone()); 3];
        expected.push(Message::Close(None));
        assert_eq!(messages, expected);
    }

    #[tokio::test]
    async fn data_that_does_not_inflate_ends_the_connection() {
        let stream = client_frame(0xc1, &[0xff, 0xff, 0xff, 0xff, 0xff], [1, 2, 3, 4]);
        let inflating = agreement("permessage-deflate").inflating(1024);
        let io = Inflated {
            inner: Trickle {
                bytes: stream,
                at: 0,
                chunk: 64,
            },
            inflating,
        };
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        assert!(matches!(ws.next().await, Some(Err(_))));
    }
}
