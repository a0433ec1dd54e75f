//! A Socket.IO v5 client over Engine.IO v4 WebSocket, written for load rather than features.
//!
//! It speaks only what the benchmark needs: the WebSocket upgrade, text frames, Engine.IO
//! open/ping/pong and the `/` namespace CONNECT. Everything else is left to the caller, which
//! reads raw Socket.IO packets (`42[...]`, `43<id>[...]`). Client frames are masked with a zero
//! key, which servers accept and which saves XOR-ing every payload.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest HTTP upgrade response accepted.
const MAX_HANDSHAKE_BYTES: usize = 8 * 1024;
/// Initial read buffer; it grows when a burst of frames arrives.
const READ_CHUNK: usize = 4 * 1024;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Why a client could not connect, by stage, so failures can be counted by kind.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed (refused, out of ports, out of files).
    #[error("tcp connect: {0}")]
    Tcp(io::Error),
    /// The server did not answer the upgrade with 101.
    #[error("websocket upgrade: {0}")]
    Upgrade(String),
    /// The Engine.IO open or the Socket.IO CONNECT went wrong.
    #[error("socket.io handshake: {0}")]
    Handshake(String),
    /// The connection broke during the handshake.
    #[error("i/o during handshake: {0}")]
    Io(#[from] io::Error),
}

impl ConnectError {
    /// A short label for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectError::Tcp(_) => "tcp",
            ConnectError::Upgrade(_) => "upgrade",
            ConnectError::Handshake(_) => "handshake",
            ConnectError::Io(_) => "io",
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server, on loopback.
    pub target: SocketAddrV4,
    /// The Socket.IO path, such as `/socket.io/`.
    pub path: String,
}

/// One connected Socket.IO client on the `/` namespace.
pub struct Client {
    stream: TcpStream,
    rbuf: Vec<u8>,
    /// Start of the bytes not yet parsed in `rbuf`.
    rpos: usize,
    wbuf: Vec<u8>,
    /// Payload of a fragmented message being assembled, with its opcode.
    fragments: Option<(u8, Vec<u8>)>,
    closed: bool,
    /// Engine.IO pings answered so far.
    pub pings: u64,
}

/// Frames queued for sending; flushed by [`Client::flush`].
pub struct Outbox<'a>(&'a mut Vec<u8>);

impl Outbox<'_> {
    /// Queues one text message.
    pub fn text(&mut self, payload: &[u8]) {
        push_frame(self.0, OP_TEXT, payload);
    }
}

impl Client {
    /// Opens TCP from `source`, upgrades to WebSocket, and joins the `/` namespace.
    ///
    /// Returns once the server's CONNECT acknowledgement (`40{"sid":...}`) has arrived.
    pub async fn connect(endpoint: &Endpoint, source: Ipv4Addr) -> Result<Client, ConnectError> {
        let stream = tcp_connect(endpoint.target, source)
            .await
            .map_err(ConnectError::Tcp)?;
        let mut client = Client {
            stream,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            wbuf: Vec::new(),
            fragments: None,
            closed: false,
            pings: 0,
        };
        client.upgrade(endpoint).await?;
        let open = client.next_text().await?;
        if open.first() != Some(&b'0') {
            return Err(ConnectError::Handshake(format!(
                "expected an Engine.IO open packet, got {:?}",
                preview(&open)
            )));
        }
        client.queue_text(b"40");
        client.flush().await?;
        loop {
            let packet = client.next_text().await?;
            if packet.starts_with(b"40") {
                return Ok(client);
            }
            if packet.starts_with(b"44") {
                return Err(ConnectError::Handshake(format!(
                    "namespace refused: {:?}",
                    preview(&packet)
                )));
            }
            // Anything else before the CONNECT ack (there should be nothing) is ignored.
        }
    }

    async fn upgrade(&mut self, endpoint: &Endpoint) -> Result<(), ConnectError> {
        let request = format!(
            "GET {path}?EIO=4&transport=websocket HTTP/1.1\r\n\
             Host: {host}\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            path = endpoint.path,
            host = endpoint.target,
        );
        self.stream.write_all(request.as_bytes()).await?;
        loop {
            if let Some(end) = find(&self.rbuf, b"\r\n\r\n") {
                let head = &self.rbuf[..end];
                if !head.starts_with(b"HTTP/1.1 101") {
                    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                    return Err(ConnectError::Upgrade(
                        String::from_utf8_lossy(line).into_owned(),
                    ));
                }
                // Frames sent right behind the response stay in the buffer.
                self.rpos = end + 4;
                return Ok(());
            }
            if self.rbuf.len() > MAX_HANDSHAKE_BYTES {
                return Err(ConnectError::Upgrade("response headers too long".into()));
            }
            if self.fill().await? == 0 {
                return Err(ConnectError::Upgrade("closed before the response".into()));
            }
        }
    }

    /// Waits for the next text message, answering pings on the way.
    async fn next_text(&mut self) -> Result<Vec<u8>, ConnectError> {
        loop {
            let mut found = None;
            self.drain(|text, _| {
                if found.is_none() {
                    found = Some(text.to_vec());
                }
            });
            // Messages after the first one in the same read are rare in a handshake; they are
            // dropped, which only matters for the welcome `message`, not read here.
            if let Some(text) = found {
                self.flush().await?;
                return Ok(text);
            }
            if self.closed {
                return Err(ConnectError::Handshake("closed by the server".into()));
            }
            self.flush().await?;
            if self.fill().await? == 0 {
                return Err(ConnectError::Handshake("connection closed".into()));
            }
        }
    }

    /// Whether the server closed the connection (WebSocket close, Engine.IO close or EOF).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Reads whatever the socket has into the buffer; 0 means end of stream.
    ///
    /// Cancel-safe: use it in `select!` next to timers.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.rpos > 0 && self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > READ_CHUNK && self.rpos * 2 > self.rbuf.len() {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
            self.rbuf.reserve(self.rbuf.capacity().max(READ_CHUNK));
        }
        let read = self.stream.read_buf(&mut self.rbuf).await?;
        if read == 0 {
            self.closed = true;
        }
        Ok(read)
    }

    /// Hands each complete text message in the buffer to `on_text`, answering WebSocket and
    /// Engine.IO pings itself. Binary messages are ignored.
    pub fn drain(&mut self, mut on_text: impl FnMut(&[u8], &mut Outbox<'_>)) {
        let Client {
            rbuf,
            rpos,
            wbuf,
            fragments,
            closed,
            pings,
            ..
        } = self;
        while let Some(frame) = parse_frame(&rbuf[*rpos..]) {
            let payload = &rbuf[*rpos + frame.header..*rpos + frame.header + frame.len];
            let mut outbox = Outbox(wbuf);
            match (frame.opcode, frame.fin) {
                (OP_TEXT, true) => deliver_text(payload, &mut outbox, pings, closed, &mut on_text),
                (OP_TEXT | OP_BINARY, false) => *fragments = Some((frame.opcode, payload.to_vec())),
                (OP_CONTINUATION, fin) => {
                    if let Some((_, assembled)) = fragments.as_mut() {
                        assembled.extend_from_slice(payload);
                    }
                    if fin && let Some((OP_TEXT, assembled)) = fragments.take() {
                        deliver_text(&assembled, &mut outbox, pings, closed, &mut on_text);
                    }
                }
                (OP_PING, _) => push_frame(wbuf, OP_PONG, payload),
                (OP_CLOSE, _) => *closed = true,
                _ => {}
            }
            *rpos += frame.header + frame.len;
        }
    }

    /// Queues one text message.
    pub fn queue_text(&mut self, payload: &[u8]) {
        push_frame(&mut self.wbuf, OP_TEXT, payload);
    }

    /// Sends every queued frame.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
            if self.wbuf.capacity() > 64 * 1024 {
                self.wbuf = Vec::new();
            }
        }
        Ok(())
    }

    /// Reads once, handles what arrived and sends the answers; `Ok(false)` once closed.
    pub async fn pump(&mut self, on_text: impl FnMut(&[u8], &mut Outbox<'_>)) -> io::Result<bool> {
        if self.fill().await? == 0 {
            return Ok(false);
        }
        self.drain(on_text);
        self.flush().await?;
        Ok(!self.closed)
    }
}

fn deliver_text(
    payload: &[u8],
    outbox: &mut Outbox<'_>,
    pings: &mut u64,
    closed: &mut bool,
    on_text: &mut impl FnMut(&[u8], &mut Outbox<'_>),
) {
    match payload {
        b"2" => {
            *pings += 1;
            outbox.text(b"3");
        }
        b"1" => *closed = true,
        _ => on_text(payload, outbox),
    }
}

/// Connects from `source` (any port), so that each source address has its own port range.
pub async fn tcp_connect(target: SocketAddrV4, source: Ipv4Addr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Without this, bind() picks a port before the destination is known and each source address
    // is limited to one port per connection across every destination.
    let enable: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const enable).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(target.into()).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

struct FrameHead {
    fin: bool,
    opcode: u8,
    header: usize,
    len: usize,
}

/// Parses one complete server frame (unmasked) at the start of `buf`.
fn parse_frame(buf: &[u8]) -> Option<FrameHead> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut header) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&buf[2..10]);
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        short => (usize::from(short), 2),
    };
    if masked {
        // Servers never mask; a masked frame is skipped whole rather than unmasked.
        header += 4;
    }
    if buf.len() < header + len {
        return None;
    }
    Some(FrameHead {
        fin,
        opcode,
        header,
        len,
    })
}

/// Appends a client frame with a zero masking key (the payload stays as it is).
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// Position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_parser() {
        for len in [0, 1, 125, 126, 300, 70_000] {
            let payload = vec![b'x'; len];
            let mut out = Vec::new();
            push_frame(&mut out, OP_TEXT, &payload);
            let head = parse_frame(&out).expect("complete frame");
            assert!(head.fin);
            assert_eq!(head.opcode, OP_TEXT);
            assert_eq!(head.len, len);
            assert_eq!(&out[head.header..], &payload[..]);
            assert!(parse_frame(&out[..out.len() - 1]).is_none());
        }
    }
}
