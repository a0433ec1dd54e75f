//! raw-ws-reference: iorelay's event contract on the `/` namespace with as little work as a
//! server can do, as the ceiling the benchmark compares Socket.IO servers to.
//!
//! It accepts only Engine.IO v4 WebSocket connections (no long-polling, no binary attachments,
//! no `/chat` namespace), parses only what each event needs, encodes a room message once and
//! hands the same bytes to every member's writer, and queues without bound. It runs on one
//! thread. It is a measuring stick, not a server to deploy.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::{Instant, sleep_until};

const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_REQUEST_BYTES: usize = 8 * 1024;
const MAX_ROOM_NAME_CHARS: usize = 128;
/// Largest batch of queued frames written with one syscall.
const MAX_WRITE_BATCH: usize = 64 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "raw-ws-reference",
    about = "Minimal raw-WebSocket server with iorelay's event contract"
)]
struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Socket.IO path.
    #[arg(long, default_value = "/socket.io/")]
    path: String,
    /// Engine.IO ping interval.
    #[arg(long, default_value_t = 25_000)]
    ping_interval_ms: u64,
    /// Engine.IO ping timeout.
    #[arg(long, default_value_t = 20_000)]
    ping_timeout_ms: u64,
    /// Largest message accepted from a client, in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    max_payload: usize,
}

/// Every connected socket's writer, and room memberships.
#[derive(Default)]
struct Registry {
    sockets: HashMap<u64, UnboundedSender<Bytes>>,
    rooms: HashMap<String, HashMap<u64, UnboundedSender<Bytes>>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    // The server runs on one thread, so the lock is never contended; a poisoned lock only
    // means a task panicked while holding it, and the maps are still consistent.
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Settings {
    path: String,
    ping_interval: Duration,
    ping_timeout: Duration,
    max_payload: usize,
}

fn main() -> io::Result<()> {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(options))
}

async fn serve(options: Options) -> io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::new(options.host, options.port)).await?;
    eprintln!("raw-ws-reference listening on {}", listener.local_addr()?);
    let settings: &'static Settings = Box::leak(Box::new(Settings {
        path: options.path,
        ping_interval: Duration::from_millis(options.ping_interval_ms),
        ping_timeout: Duration::from_millis(options.ping_timeout_ms),
        max_payload: options.max_payload,
    }));
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<(), io::Error>(())
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        // A connection's errors concern that connection only.
                        let _ = connection(stream, settings).await;
                    });
                }
                // Out of files or similar: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            result = &mut shutdown => return result,
        }
    }
}

fn next_sid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Distinct per process start as well, so ids look like Socket.IO's random ones.
    let salt = u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let id = (n ^ salt).to_le_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode([id.as_slice(), &n.to_be_bytes()].concat())
}

async fn connection(mut stream: TcpStream, settings: &'static Settings) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = Vec::with_capacity(1024);
    let request_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_REQUEST_BYTES || stream.read_buf(&mut buffer).await? == 0 {
            return Ok(());
        }
    };
    let Some(key) = upgrade_key(&buffer[..request_end], &settings.path) else {
        stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    };
    buffer.drain(..request_end);

    let sid = next_sid();
    let id = CONNECTION_IDS.fetch_add(1, Ordering::Relaxed);
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    )
    .into_bytes();
    push_text_frame(
        &mut response,
        format!(
            "0{{\"sid\":\"{sid}\",\"upgrades\":[],\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
            settings.ping_interval.as_millis(),
            settings.ping_timeout.as_millis(),
            settings.max_payload
        )
        .as_bytes(),
    );
    stream.write_all(&response).await?;

    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(writer, rx));
    let mut socket = Socket {
        id,
        sid,
        tx,
        rooms: Vec::new(),
        connected: false,
    };

    let mut next_ping = Instant::now() + settings.ping_interval;
    let mut awaiting_pong = false;
    let result: io::Result<()> = async {
        loop {
            // Every complete frame in the buffer first.
            let mut consumed = 0;
            while let Some(frame) =
                parse_client_frame(&mut buffer[consumed..], settings.max_payload)?
            {
                let payload = &buffer[consumed + frame.payload.0..consumed + frame.payload.1];
                match frame.opcode {
                    0x1 => match payload {
                        b"3" => awaiting_pong = false,
                        b"1" => return Ok(()),
                        _ => socket.on_packet(payload),
                    },
                    0x8 => return Ok(()),
                    0x9 => socket.send_frame(0xA, payload),
                    _ => {}
                }
                consumed += frame.length;
            }
            buffer.drain(..consumed);

            let timer = if awaiting_pong {
                next_ping - settings.ping_interval + settings.ping_timeout
            } else {
                next_ping
            };
            tokio::select! {
                read = reader.read_buf(&mut buffer) => {
                    if read? == 0 {
                        return Ok(());
                    }
                }
                () = sleep_until(timer) => {
                    if awaiting_pong {
                        return Ok(());
                    }
                    socket.send_text(b"2");
                    awaiting_pong = true;
                    next_ping = Instant::now() + settings.ping_interval;
                }
            }
        }
    }
    .await;
    socket.leave_all();
    result
}

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(1);

/// One client on the `/` namespace.
struct Socket {
    id: u64,
    sid: String,
    tx: UnboundedSender<Bytes>,
    rooms: Vec<String>,
    connected: bool,
}

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow, default)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

impl Socket {
    fn send_frame(&self, opcode: u8, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        push_frame(&mut frame, opcode, payload);
        let _ = self.tx.send(Bytes::from(frame));
    }

    fn send_text(&self, payload: &[u8]) {
        self.send_frame(0x1, payload);
    }

    /// Handles one Engine.IO message packet (`4...`).
    fn on_packet(&mut self, packet: &[u8]) {
        match packet {
            [b'4', b'0', rest @ ..]
                if (rest.is_empty() || rest.starts_with(b"{")) && !self.connected =>
            {
                self.connected = true;
                registry().sockets.insert(self.id, self.tx.clone());
                let sid = &self.sid;
                self.send_text(format!("40{{\"sid\":\"{sid}\"}}").as_bytes());
                self.send_text(
                    format!("42[\"message\",{{\"text\":\"Welcome to iorelay\",\"id\":\"{sid}\"}}]")
                        .as_bytes(),
                );
            }
            [b'4', b'0', b'/', rest @ ..] => {
                let namespace = rest.split(|&b| b == b',').next().unwrap_or_default();
                let mut answer = b"44/".to_vec();
                answer.extend_from_slice(namespace);
                answer.extend_from_slice(b",{\"message\":\"Invalid namespace\"}");
                self.send_text(&answer);
            }
            [b'4', b'1', ..] => {
                self.leave_all();
                self.connected = false;
            }
            [b'4', b'2', rest @ ..] if self.connected => self.on_event(rest),
            _ => {}
        }
    }

    /// Handles `42[<id>]["event",...]`.
    fn on_event(&mut self, packet: &[u8]) {
        let digits = packet.iter().take_while(|b| b.is_ascii_digit()).count();
        let ack = (digits > 0).then(|| &packet[..digits]);
        let array = &packet[digits..];
        let Some((event, rest)) = split_event(array) else {
            return;
        };
        match event {
            b"echo" => {
                if let Some(ack) = ack {
                    self.send_ack(ack, rest);
                }
            }
            b"message" => {
                let mut out = b"42[\"message\"".to_vec();
                if !rest.is_empty() {
                    out.push(b',');
                    out.extend_from_slice(rest);
                }
                out.push(b']');
                self.send_text(&out);
            }
            b"chat" => self.on_chat(ack, array),
            b"join" | b"leave" => {
                let joining = event == b"join";
                let room = serde_json::from_slice::<Vec<serde_json::Value>>(array)
                    .ok()
                    .and_then(|args| args.get(1).cloned());
                let answer = match room_name(room.as_ref().and_then(|v| v.as_str()), room.is_some())
                {
                    Ok(room) => {
                        let size = if joining {
                            self.join(room)
                        } else {
                            self.leave(room)
                        };
                        format!("{{\"room\":{},\"size\":{size}}}", json_string(room))
                    }
                    Err(error) => format!("{{\"error\":\"{error}\"}}"),
                };
                if let Some(ack) = ack {
                    self.send_ack(ack, answer.as_bytes());
                }
            }
            _ => {}
        }
    }

    fn on_chat(&self, ack: Option<&[u8]>, array: &[u8]) {
        let request = serde_json::from_slice::<(&str, ChatRequest<'_>)>(array)
            .map(|(_, request)| request)
            .map_err(|_| "chat expects an object { room, text }");
        let request = request.and_then(|request| {
            if let Some(room) = &request.room {
                room_name(Some(room), true)?;
            }
            Ok(request)
        });
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                if let Some(ack) = ack {
                    self.send_ack(ack, format!("{{\"error\":\"{error}\"}}").as_bytes());
                }
                return;
            }
        };
        // Encoded once, frame header included; every member gets the same bytes.
        let room_json = request
            .room
            .as_deref()
            .map_or("null".to_owned(), json_string);
        let message = format!(
            "42[\"chat\",{{\"room\":{room_json},\"text\":{},\"from\":\"{}\",\"ts\":{}}}]",
            json_string(&request.text),
            self.sid,
            now_ms()
        );
        let mut frame = Vec::with_capacity(message.len() + 4);
        push_frame(&mut frame, 0x1, message.as_bytes());
        let frame = Bytes::from(frame);
        {
            let registry = registry();
            let targets = match &request.room {
                Some(room) => registry.rooms.get(room.as_ref()),
                None => Some(&registry.sockets),
            };
            for tx in targets.into_iter().flat_map(HashMap::values) {
                let _ = tx.send(frame.clone());
            }
        }
        if let Some(ack) = ack {
            self.send_ack(ack, b"{\"ok\":true}");
        }
    }

    fn send_ack(&self, ack: &[u8], args: &[u8]) {
        let mut out = Vec::with_capacity(args.len() + ack.len() + 4);
        out.extend_from_slice(b"43");
        out.extend_from_slice(ack);
        out.push(b'[');
        out.extend_from_slice(args);
        out.push(b']');
        self.send_text(&out);
    }

    fn join(&mut self, room: &str) -> usize {
        let mut registry = registry();
        let members = registry.rooms.entry(room.to_owned()).or_default();
        members.insert(self.id, self.tx.clone());
        if !self.rooms.iter().any(|r| r == room) {
            self.rooms.push(room.to_owned());
        }
        members.len()
    }

    fn leave(&mut self, room: &str) -> usize {
        self.rooms.retain(|r| r != room);
        let mut registry = registry();
        let Some(members) = registry.rooms.get_mut(room) else {
            return 0;
        };
        members.remove(&self.id);
        let size = members.len();
        if size == 0 {
            registry.rooms.remove(room);
        }
        size
    }

    fn leave_all(&mut self) {
        for room in std::mem::take(&mut self.rooms) {
            self.leave(&room);
        }
        registry().sockets.remove(&self.id);
    }
}

/// Writes queued frames, batching whatever is waiting into one write.
async fn write_loop(mut writer: OwnedWriteHalf, mut rx: UnboundedReceiver<Bytes>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.extend_from_slice(&first);
        while batch.len() < MAX_WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
        if batch.capacity() > MAX_WRITE_BATCH {
            batch = Vec::new();
        }
    }
}

/// The `Sec-WebSocket-Key` of an Engine.IO v4 WebSocket request on `path`.
fn upgrade_key(request: &[u8], path: &str) -> Option<String> {
    let text = std::str::from_utf8(request).ok()?;
    let mut lines = text.split("\r\n");
    let target = lines.next()?.strip_prefix("GET ")?.split(' ').next()?;
    let (route, query) = target.split_once('?')?;
    if route != path && route != path.trim_end_matches('/') {
        return None;
    }
    let has = |pair: &str| query.split('&').any(|p| p == pair);
    if !has("EIO=4") || !has("transport=websocket") {
        return None;
    }
    lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    })
}

fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

struct ClientFrame {
    opcode: u8,
    /// Payload range within the slice given to the parser.
    payload: (usize, usize),
    /// Bytes the whole frame takes.
    length: usize,
}

/// Parses and unmasks one complete client frame at the start of `buf`.
fn parse_client_frame(buf: &mut [u8], max_payload: usize) -> io::Result<Option<ClientFrame>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let opcode = buf[0] & 0x0F;
    if buf[0] & 0x80 == 0 || opcode == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "fragmented frames are not supported",
        ));
    }
    if buf[1] & 0x80 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "client frames must be masked",
        ));
    }
    let (len, header) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&buf[2..10]);
            (
                usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX),
                10,
            )
        }
        126 | 127 => return Ok(None),
        short => (usize::from(short), 2),
    };
    if len > max_payload {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    let start = header + 4;
    if buf.len() < start + len {
        return Ok(None);
    }
    let mask = [
        buf[header],
        buf[header + 1],
        buf[header + 2],
        buf[header + 3],
    ];
    if mask != [0; 4] {
        for (i, byte) in buf[start..start + len].iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
    }
    Ok(Some(ClientFrame {
        opcode,
        payload: (start, start + len),
        length: start + len,
    }))
}

/// Appends an unmasked server frame.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

fn push_text_frame(out: &mut Vec<u8>, payload: &[u8]) {
    push_frame(out, 0x1, payload);
}

/// Splits `["event",rest...]` into the event name and the raw JSON of the other arguments.
fn split_event(array: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = array.strip_prefix(b"[\"")?.strip_suffix(b"]")?;
    let end = inner.iter().position(|&b| b == b'"' || b == b'\\')?;
    if inner[end] != b'"' {
        return None;
    }
    let (event, after) = (&inner[..end], &inner[end + 1..]);
    let rest = after.strip_prefix(b",").unwrap_or(after);
    Some((event, rest))
}

fn room_name(room: Option<&str>, present: bool) -> Result<&str, &'static str> {
    match room {
        None if !present => Err("a room name is required"),
        None => Err("the room name must be a string"),
        Some("") => Err("the room name must not be empty"),
        Some(room) if room.chars().count() > MAX_ROOM_NAME_CHARS => {
            Err("the room name must be at most 128 characters")
        }
        Some(room) => Ok(room),
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn splits_event_name_from_arguments() {
        assert_eq!(
            split_event(br#"["echo","a",1]"#),
            Some((&b"echo"[..], &br#""a",1"#[..]))
        );
        assert_eq!(split_event(br#"["echo"]"#), Some((&b"echo"[..], &b""[..])));
        assert_eq!(split_event(b"[1]"), None);
    }

    #[test]
    fn only_websocket_requests_on_the_path_upgrade() {
        let request =
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nSec-WebSocket-Key: abc\r\n\r\n";
        assert_eq!(upgrade_key(request, "/socket.io/"), Some("abc".into()));
        let polling = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n";
        assert_eq!(upgrade_key(polling, "/socket.io/"), None);
    }
}
