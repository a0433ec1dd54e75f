//! A minimal Socket.IO v5 client over a raw WebSocket, to see exactly what goes on the wire.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long any expected packet may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// A decoded Socket.IO packet of the client's namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// An event: name and arguments.
    Event(String, Vec<Value>),
    /// An acknowledgement: id and arguments.
    Ack(u64, Vec<Value>),
    /// A namespace connect error with its data.
    ConnectError(Value),
    /// The server disconnected the namespace.
    Disconnect,
}

/// A Socket.IO client connected to one namespace over WebSocket.
pub struct SioClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    namespace: String,
    /// Socket id given by the namespace CONNECT packet.
    pub sid: String,
    /// The private session id of the CONNECT answer, with connection state recovery on.
    pub pid: Option<String>,
    next_ack: u64,
    /// Packets read while looking for another one, handed out first.
    pending: VecDeque<Packet>,
}

impl SioClient {
    /// Opens an Engine.IO WebSocket and connects to `namespace`, panicking if refused.
    pub async fn connect(address: SocketAddr, namespace: &str) -> Self {
        Self::try_connect(address, namespace)
            .await
            .unwrap_or_else(|packet| panic!("connect to {namespace} refused: {packet:?}"))
    }

    /// Like [`SioClient::connect`], returning the refusal instead of panicking.
    pub async fn try_connect(address: SocketAddr, namespace: &str) -> Result<Self, Packet> {
        Self::connect_with_auth(address, namespace, None).await
    }

    /// Connects with `auth` as the CONNECT payload (`io(url, { auth })`).
    pub async fn connect_with_auth(
        address: SocketAddr,
        namespace: &str,
        auth: Option<Value>,
    ) -> Result<Self, Packet> {
        let url = format!("ws://{address}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = connect_async(url).await.expect("websocket handshake");
        let mut client = SioClient {
            ws,
            namespace: namespace.to_owned(),
            sid: String::new(),
            pid: None,
            next_ack: 0,
            pending: VecDeque::new(),
        };
        let open = client.next_text().await;
        assert!(open.starts_with('0'), "expected an open packet, got {open}");
        let payload = auth.map(|auth| auth.to_string()).unwrap_or_default();
        client
            .send_raw(format!("40{}{payload}", client.prefix()))
            .await;
        loop {
            let text = client.next_text().await;
            let body = text.strip_prefix(&format!("40{}", client.prefix()));
            if let Some(body) = body {
                let payload: Value = serde_json::from_str(body).expect("connect payload");
                client.sid = payload["sid"].as_str().expect("sid").to_owned();
                client.pid = payload["pid"].as_str().map(str::to_owned);
                return Ok(client);
            }
            if text.starts_with("44") {
                return Err(client.decode(&text).expect("connect error packet"));
            }
            // A recovered session's missed events come before the CONNECT answer, as in Node.
            if let Some(packet) = client.decode(&text) {
                client.pending.push_back(packet);
            }
        }
    }

    fn prefix(&self) -> String {
        if self.namespace == "/" {
            String::new()
        } else {
            format!("{},", self.namespace)
        }
    }

    /// Sends a raw Engine.IO text frame.
    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send frame");
    }

    /// Emits an event without asking for an ack.
    pub async fn emit(&mut self, event: &str, args: &[Value]) {
        let packet = self.event_packet(event, args, None);
        self.send_raw(packet).await;
    }

    /// Emits an event with an ack and waits for the ack's arguments.
    pub async fn emit_with_ack(&mut self, event: &str, args: &[Value]) -> Vec<Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = self.event_packet(event, args, Some(id));
        self.send_raw(packet).await;
        self.take(|packet| match packet {
            Packet::Ack(ack_id, args) if *ack_id == id => Some(args.clone()),
            _ => None,
        })
        .await
    }

    /// Reads packets until `pick` accepts one; the others stay queued in order.
    async fn take<T>(&mut self, pick: impl Fn(&Packet) -> Option<T>) -> T {
        if let Some(index) = self.pending.iter().position(|p| pick(p).is_some()) {
            let packet = self.pending.remove(index).expect("index is in range");
            return pick(&packet).expect("picked before");
        }
        loop {
            let packet = self.next_wire_packet().await;
            match pick(&packet) {
                Some(found) => return found,
                None => self.pending.push_back(packet),
            }
        }
    }

    fn event_packet(&self, event: &str, args: &[Value], ack: Option<u64>) -> String {
        let mut payload = vec![Value::from(event)];
        payload.extend_from_slice(args);
        let id = ack.map(|id| id.to_string()).unwrap_or_default();
        format!("42{}{id}{}", self.prefix(), Value::Array(payload))
    }

    /// Waits for the next event called `name`, skipping others, and returns its arguments.
    pub async fn expect_event(&mut self, name: &str) -> Vec<Value> {
        self.take(|packet| match packet {
            Packet::Event(event, args) if event == name => Some(args.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for the server to disconnect the namespace, skipping other packets.
    pub async fn expect_disconnect(&mut self) {
        self.take(|packet| matches!(packet, Packet::Disconnect).then_some(()))
            .await;
    }

    /// Returns the arguments of the next acknowledgement if one arrives within `wait`.
    pub async fn maybe_ack(&mut self, wait: Duration) -> Option<Vec<Value>> {
        let queued = self
            .pending
            .iter()
            .position(|p| matches!(p, Packet::Ack(..)));
        if let Some(Packet::Ack(_, args)) = queued.and_then(|index| self.pending.remove(index)) {
            return Some(args);
        }
        timeout(wait, async {
            loop {
                match self.try_next_packet().await {
                    Some(Packet::Ack(_, args)) => return Some(args),
                    Some(other) => self.pending.push_back(other),
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Returns the event `name` if one arrives within `wait`, else `None`.
    pub async fn maybe_event(&mut self, name: &str, wait: Duration) -> Option<Vec<Value>> {
        let queued = self
            .pending
            .iter()
            .position(|p| matches!(p, Packet::Event(e, _) if e == name));
        if let Some(Packet::Event(_, args)) = queued.and_then(|index| self.pending.remove(index)) {
            return Some(args);
        }
        timeout(wait, async {
            loop {
                match self.try_next_packet().await {
                    Some(Packet::Event(event, args)) if event == name => return Some(args),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next Socket.IO packet of this namespace off the wire; answers pings on the way.
    async fn next_wire_packet(&mut self) -> Packet {
        timeout(WAIT, self.try_next_packet())
            .await
            .expect("no packet in time")
            .expect("connection closed while waiting for a packet")
    }

    async fn try_next_packet(&mut self) -> Option<Packet> {
        loop {
            let text = self.try_next_text().await?;
            if let Some(packet) = self.decode(&text) {
                return Some(packet);
            }
        }
    }

    async fn next_text(&mut self) -> String {
        timeout(WAIT, self.try_next_text())
            .await
            .expect("no frame in time")
            .expect("connection closed")
    }

    /// The next text frame, or `None` once the connection is closed.
    pub async fn try_next_text(&mut self) -> Option<String> {
        while let Some(frame) = self.ws.next().await {
            match frame {
                Ok(Message::Text(text)) if text.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.ok()?;
                }
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    }

    /// Whether the server closes the connection within `wait` (reading and discarding frames).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        timeout(wait, async {
            while self.try_next_text().await.is_some() {}
        })
        .await
        .is_ok()
    }

    /// The close code of the frame that ends the connection within `wait`, reading and
    /// discarding frames before it; `None` when the connection ends without a close frame or
    /// stays open.
    pub async fn close_code_within(&mut self, wait: Duration) -> Option<u16> {
        close_code_within(&mut self.ws, wait).await
    }

    fn decode(&self, text: &str) -> Option<Packet> {
        let rest = text.strip_prefix('4')?;
        let kind = rest.chars().next()?;
        let rest = rest[1..].strip_prefix(&self.prefix())?;
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let id = rest[..digits].parse::<u64>().ok();
        let body = &rest[digits..];
        match kind {
            '2' => {
                let mut items = match serde_json::from_str::<Value>(body).ok()? {
                    Value::Array(items) => items,
                    _ => return None,
                };
                let name = items.remove(0).as_str()?.to_owned();
                Some(Packet::Event(name, items))
            }
            '3' => match serde_json::from_str::<Value>(body).ok()? {
                Value::Array(items) => Some(Packet::Ack(id?, items)),
                _ => None,
            },
            '4' => Some(Packet::ConnectError(serde_json::from_str(body).ok()?)),
            '1' => Some(Packet::Disconnect),
            _ => None,
        }
    }

    /// Closes the WebSocket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The close code of the frame that ends `ws` within `wait`, reading and discarding frames
/// before it; `None` when the connection ends without a close frame or stays open.
pub async fn close_code_within<S>(ws: &mut WebSocketStream<S>, wait: Duration) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    timeout(wait, async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
