//! A Socket.IO v5 client that stays on Engine.IO v4 HTTP long-polling, as clients behind
//! proxies that refuse WebSocket do, written for load rather than features.
//!
//! One keep-alive HTTP/1.1 connection carries the client's requests one after the other: a
//! long-poll `GET`, and a `POST` when there is something to send (the CONNECT, a heartbeat's
//! pong). A server that answers a poll with a ping gets the pong before the next poll, which is
//! how a browser's polling transport behaves while it has nothing else to send.

use std::net::Ipv4Addr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{ConnectError, Endpoint, find, tcp_connect};

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Largest response body accepted (the servers' default `maxHttpBufferSize`).
const MAX_BODY_BYTES: usize = 1_000_000;
/// Engine.IO's packet separator in a polling payload.
const SEPARATOR: u8 = 0x1e;

/// One Socket.IO client on the `/` namespace, on long-polling.
pub struct PollingClient {
    stream: TcpStream,
    rbuf: Vec<u8>,
    /// The request path with its query, less the session id: `/socket.io/?EIO=4&transport=polling`.
    base: String,
    host: String,
    /// The Engine.IO session id.
    sid: String,
    /// Engine.IO pings answered so far.
    pub pings: u64,
}

/// What one poll brought.
#[derive(Debug, Default)]
pub struct Polled {
    /// Engine.IO packets in the response.
    pub packets: usize,
    /// Whether the server ended the session (a close packet or an error status).
    pub closed: bool,
}

impl PollingClient {
    /// Opens TCP from `source`, opens an Engine.IO polling session and joins the `/` namespace.
    ///
    /// Returns once the server's CONNECT acknowledgement (`40{"sid":...}`) has arrived.
    pub async fn connect(endpoint: &Endpoint, source: Ipv4Addr) -> Result<Self, ConnectError> {
        let stream = tcp_connect(endpoint.target, source)
            .await
            .map_err(ConnectError::Tcp)?;
        let mut client = PollingClient {
            stream,
            rbuf: Vec::with_capacity(4 * 1024),
            base: format!("{}?EIO=4&transport=polling", endpoint.path),
            host: endpoint.target.to_string(),
            sid: String::new(),
            pings: 0,
        };
        let open = client.request("GET", None).await?;
        let sid = open
            .strip_prefix(b"0")
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(json).ok())
            .and_then(|json| json.get("sid")?.as_str().map(str::to_owned))
            .ok_or_else(|| {
                ConnectError::Handshake(format!(
                    "expected an Engine.IO open packet, got {:?}",
                    String::from_utf8_lossy(&open[..open.len().min(80)])
                ))
            })?;
        client.sid = sid;
        client.post(b"40").await?;
        loop {
            let body = client.request("GET", None).await?;
            let mut connected = false;
            for packet in body.split(|&b| b == SEPARATOR) {
                if packet.starts_with(b"40") {
                    connected = true;
                } else if packet.starts_with(b"44") {
                    return Err(ConnectError::Handshake(format!(
                        "namespace refused: {:?}",
                        String::from_utf8_lossy(packet)
                    )));
                }
            }
            if connected {
                return Ok(client);
            }
        }
    }

    /// Sends one long-poll and waits for its answer, answering a ping in it with a pong;
    /// `on_packet` sees every other packet.
    pub async fn poll(&mut self, mut on_packet: impl FnMut(&[u8])) -> Result<Polled, ConnectError> {
        let body = self.request("GET", None).await?;
        let mut polled = Polled::default();
        let mut pinged = false;
        for packet in body.split(|&b| b == SEPARATOR) {
            polled.packets += 1;
            match packet.first() {
                Some(b'2') => pinged = true,
                Some(b'1') => polled.closed = true,
                _ => on_packet(packet),
            }
        }
        if pinged {
            self.pings += 1;
            self.post(b"3").await?;
        }
        Ok(polled)
    }

    /// Sends one Engine.IO packet (a Socket.IO packet with the `4` in front) in a `POST`.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ConnectError> {
        self.post(payload).await
    }

    async fn post(&mut self, payload: &[u8]) -> Result<(), ConnectError> {
        let answer = self.request("POST", Some(payload)).await?;
        if answer != b"ok" {
            return Err(ConnectError::Handshake(format!(
                "POST answered {:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(80)])
            )));
        }
        Ok(())
    }

    /// Sends one request on the session and returns the body of a 200 answer.
    async fn request(
        &mut self,
        method: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, ConnectError> {
        let sid = if self.sid.is_empty() {
            String::new()
        } else {
            format!("&sid={}", self.sid)
        };
        let mut request = format!(
            "{method} {base}{sid} HTTP/1.1\r\nHost: {host}\r\n",
            base = self.base,
            host = self.host,
        )
        .into_bytes();
        if let Some(body) = body {
            request.extend_from_slice(
                format!(
                    "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            request.extend_from_slice(body);
        } else {
            request.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Vec<u8>, ConnectError> {
        let head_end = loop {
            if let Some(end) = find(&self.rbuf, b"\r\n\r\n") {
                break end;
            }
            if self.rbuf.len() > MAX_HEAD_BYTES {
                return Err(ConnectError::Handshake("response head too long".into()));
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.rbuf[..head_end]).into_owned();
        let status_ok = head.starts_with("HTTP/1.1 200");
        let header = |name: &str| {
            head.lines().skip(1).find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
        self.rbuf.drain(..head_end + 4);
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let length = length.unwrap_or(0);
            if length > MAX_BODY_BYTES {
                return Err(ConnectError::Handshake(format!("a body of {length} bytes")));
            }
            while self.rbuf.len() < length {
                self.fill().await?;
            }
            self.rbuf.drain(..length).collect()
        };
        if !status_ok {
            let line = head.lines().next().unwrap_or_default().to_owned();
            return Err(ConnectError::Handshake(format!(
                "{line}: {}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            )));
        }
        Ok(body)
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, ConnectError> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.rbuf, b"\r\n") {
                    break end;
                }
                self.fill().await?;
            };
            let size_text = String::from_utf8_lossy(&self.rbuf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ConnectError::Handshake(format!("a chunk size of {size_text:?}")))?;
            if body.len() + size > MAX_BODY_BYTES {
                return Err(ConnectError::Handshake("a chunked body too long".into()));
            }
            self.rbuf.drain(..line_end + 2);
            while self.rbuf.len() < size + 2 {
                self.fill().await?;
            }
            body.extend(self.rbuf.drain(..size));
            self.rbuf.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    async fn fill(&mut self) -> Result<(), ConnectError> {
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err(ConnectError::Handshake("connection closed".into()));
        }
        Ok(())
    }
}
