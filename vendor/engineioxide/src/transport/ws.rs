//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and the packet queue
//! and to handle upgrade from polling to ws

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, ProtocolVersion, Sid, Str, TransportType};

use crate::{
    DisconnectReason, Socket,
    body::ResponseBody,
    config::EngineIoConfig,
    engine::EngineIo,
    errors::Error,
    handler::EngineIoHandler,
    outgoing::Outgoing,
    traffic::{self, Direction},
    transport::make_open_packet,
};

mod deflate;

pub use deflate::PerMessageDeflate;
use deflate::{Agreement, Deflating};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue, deflate: Option<&Agreement>) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec);
    if let Some(extension) = deflate.and_then(|d| HeaderValue::from_str(&d.response).ok()) {
        response = response.header(http::header::SEC_WEBSOCKET_EXTENSIONS, extension);
    }
    response.body(ResponseBody::empty_response()).unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts.clone(), body);

    let ws_key = parts
        .headers
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();
    // permessage-deflate, when the service offers it and the client asks for it.
    let deflate = parts
        .extensions
        .get::<PerMessageDeflate>()
        .and_then(|config| deflate::negotiate(*config, &parts.headers));
    let response = ws_response(&ws_key, deflate.as_ref());

    // Everything up to the end of the handshake runs in its own boxed future, created here so
    // that the spawned task captures only the box: the task lives as long as the connection,
    // and the request and handshake state would otherwise stay in it all that time.
    let setup = Box::pin(setup_ws(engine.clone(), protocol, sid, req, parts, deflate));
    tokio::spawn(async move {
        let res = match setup.await {
            Ok(Some((socket, ws))) => run_ws(&engine, socket, ws).await,
            Ok(None) => return,
            Err(e) => Err(e),
        };

        match res {
            Ok(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed")
            }
            Err(Error::MultipleWebsocketRequests) => {}
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                if let Some(sid) = sid {
                    engine.close_session(sid, DisconnectReason::TransportError);
                }
            }
        }
    });

    Ok(response)
}

/// Waits for the HTTP upgrade, then completes the Engine.IO handshake or transport upgrade.
///
/// `Ok(None)` when the HTTP upgrade itself failed.
async fn setup_ws<R: Send + 'static, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
    parts: Parts,
    deflate: Option<Agreement>,
) -> Result<Option<WsSession<H::Data, UpgradedIo>>, Error> {
    match hyper::upgrade::on(req).await {
        Ok(conn) => {
            let conn = hyper_util::rt::TokioIo::new(conn);
            handshake(engine, conn, protocol, sid, parts, deflate)
                .await
                .map(Some)
        }
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgrade error: {}", _e);
            Ok(None)
        }
    }
}

/// A socket and its websocket, once the handshake is complete.
type WsSession<D, S> = (Arc<Socket<D>>, WebSocketStream<WsIo<S, D>>);

/// The connection under a session's websocket.
///
/// tungstenite reads from it and parses the client's frames. Its writes (the handshake, then its
/// replies to pings and close frames) go straight to the connection until the writer task takes
/// the write half. From then on they are queued as raw bytes, so that they stay in order with
/// the frames the writer task writes itself.
///
/// With permessage-deflate, the client's compressed frames are inflated on their way to
/// tungstenite, and the writer task gets the compressor with the write half.
pub struct WsIo<S, D: Default + Send + Sync + 'static> {
    read: ReadHalf<S>,
    write: WsWrite<S, D>,
    inflating: Option<Box<deflate::Inflating>>,
    deflating: Option<Box<Deflating>>,
}

enum WsWrite<S, D: Default + Send + Sync + 'static> {
    Direct(WriteHalf<S>),
    Queued(Arc<Socket<D>>),
}

impl<S: AsyncRead + AsyncWrite, D: Default + Send + Sync + 'static> WsIo<S, D> {
    fn new(conn: S, deflate: Option<&Agreement>, read_size: usize) -> Self {
        let (read, write) = tokio::io::split(conn);
        WsIo {
            read,
            write: WsWrite::Direct(write),
            inflating: deflate.map(|d| Box::new(d.inflating(read_size))),
            deflating: deflate.map(|d| Box::new(d.deflating())),
        }
    }

    /// Hands the write half, and the compressor if any, to the writer task; later writes are
    /// queued on `socket`.
    fn take_writer(
        &mut self,
        socket: Arc<Socket<D>>,
    ) -> Option<(WriteHalf<S>, Option<Box<Deflating>>)> {
        match std::mem::replace(&mut self.write, WsWrite::Queued(socket)) {
            WsWrite::Direct(write) => Some((write, self.deflating.take())),
            WsWrite::Queued(_) => None,
        }
    }
}

impl<S: AsyncRead, D: Default + Send + Sync + 'static> AsyncRead for WsIo<S, D> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.inflating {
            Some(inflating) => inflating.poll_read(&mut this.read, cx, buf),
            None => Pin::new(&mut this.read).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncWrite, D: Default + Send + Sync + 'static> AsyncWrite for WsIo<S, D> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().write {
            WsWrite::Direct(write) => Pin::new(write).poll_write(cx, buf),
            WsWrite::Queued(socket) => {
                // tungstenite hands over whole frames in one call, as every call is accepted
                // whole. With the queue full they are dropped: the heartbeat ping cannot be
                // queued either, so the session is closed at its next ping.
                if let Ok(permit) = socket.queue.try_reserve() {
                    permit.send(Outgoing::Raw(Bytes::copy_from_slice(buf)));
                }
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().write {
            WsWrite::Direct(write) => Pin::new(write).poll_flush(cx),
            WsWrite::Queued(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().write {
            WsWrite::Direct(write) => Pin::new(write).poll_shutdown(cx),
            WsWrite::Queued(_) => Poll::Ready(Ok(())),
        }
    }
}

/// An upgraded HTTP connection.
type UpgradedIo = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
pub async fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (socket, ws) = Box::pin(handshake(
        engine.clone(),
        conn,
        protocol,
        sid,
        req_data,
        None,
    ))
    .await?;
    run_ws(&engine, socket, ws).await
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Returns the socket once the handshake or the upgrade is complete.
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
async fn handshake<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
    deflate: Option<Agreement>,
) -> Result<WsSession<H::Data, S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let read_size = engine.config.ws_read_buffer_size;
    let ws_init = move || {
        let io = WsIo::new(conn, deflate.as_ref(), read_size);
        WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config))
    };
    let (socket, ws) = if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, _>(&socket, &mut ws);
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(res)) => res?,
                    Some(Err(_)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                (socket, ws)
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        init_handshake(socket.id, &mut ws, &engine.config).await?;
        socket
            .clone()
            .spawn_heartbeat(engine.config.ping_interval, engine.config.ping_timeout);
        (socket, ws)
    };
    Ok((socket, ws))
}

/// Pipes packets between the websocket and the socket until either side closes.
async fn run_ws<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    mut ws: WebSocketStream<WsIo<S, H::Data>>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Pipe between the socket's packet queue and the websocket.
    if let Some((write, deflating)) = ws.get_mut().take_writer(socket.clone()) {
        tokio::spawn(forward_to_socket(socket.clone(), write, deflating));
    }

    // Pipe between the websocket and the socket.
    match forward_to_handler(engine, &mut ws, &socket)
        .with_cancellation_token(&socket.cancellation_token)
        .await
    {
        Some(Err(ref e)) => {
            if let Error::WsTransport(err) = e
                && matches!(**err, tungstenite::Error::Capacity(_))
            {
                // As Node's `ws`: a message over the limit is answered with close code 1009
                // ("Message Too Big") and no reason.
                socket
                    .queue
                    .push_control(Outgoing::Raw(Bytes::from_static(&[0x88, 0x02, 0x03, 0xF1])));
            }
            let reason =
                Option::<DisconnectReason>::from(e).unwrap_or(DisconnectReason::TransportError);

            #[cfg(feature = "tracing")]
            tracing::debug!("error when handling packet: {:?}", e);
            engine.close_session(socket.id, reason);
        }
        Some(Ok(())) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "ws transport was closed");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
        }
        None => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "socket is closing");
        }
    }
    Ok(())
}

/// Forwards all packets received from a websocket to a EngineIo [`Socket`]
async fn forward_to_handler<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    ws: &mut WebSocketStream<WsIo<S, H::Data>>,
    socket: &Arc<Socket<H::Data>>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(msg) = ws.try_next().await? {
        if let Message::Text(_) | Message::Binary(_) = &msg {
            traffic::record(TransportType::Websocket, Direction::In, 1, msg.len() as u64);
        }
        match msg {
            Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
                Packet::Close => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("[sid={}] closing session", socket.id);
                    engine.close_session(socket.id, DisconnectReason::TransportClose);
                    break;
                }
                Packet::Pong | Packet::Ping => {
                    // A signal already waiting means that the client is already known to be alive.
                    socket.heartbeat_received();
                    Ok::<(), Error>(())
                }
                Packet::Message(msg) => {
                    engine.handler.on_message(msg, socket.clone());
                    Ok(())
                }
                // A client that cannot send binary frames (`forceBase64`) sends base64 text,
                // which Node takes on a WebSocket as on long-polling.
                Packet::Binary(data) | Packet::BinaryV3(data) => {
                    engine.handler.on_binary(data, socket.clone());
                    Ok(())
                }
                p => return Err(Error::BadPacket(p)),
            },
            Message::Binary(mut data) => {
                if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                    // The first byte is the message type, which we don't need.
                    data = data.split_off(1);
                }
                engine.handler.on_binary(data, socket.clone());
                Ok(())
            }
            Message::Close(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("websocket closed, closing session");
                engine.close_session(socket.id, DisconnectReason::TransportClose);
                break;
            }
            _ => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "unexpected ws message");
                Ok(())
            }
        }?
    }
    Ok(())
}

/// A batch of frames is written once it reaches this size, even if more are queued.
const MAX_WRITE_BATCH: usize = 64 * 1024;
/// A batch buffer that grew beyond this is freed after its write, so that an idle session
/// does not keep the size of its largest burst.
const RETAINED_BATCH: usize = 512;
/// A websocket close frame without a status, as tungstenite's `close(None)` sends.
const CLOSE_FRAME: [u8; 2] = [0x88, 0x00];

/// Forwards all packets waiting to be sent to the websocket
///
/// Frames queued together are written together, in one write once the queue is drained (or
/// the batch is full). A message is framed as it is appended: its header, then its bytes.
async fn forward_to_socket<D, S>(
    socket: Arc<Socket<D>>,
    mut write: WriteHalf<S>,
    mut deflating: Option<Box<Deflating>>,
) where
    D: Default + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    // A polling request that was in progress during the upgrade may still hold the lock.
    let lock = socket.internal_rx.lock();
    let Some(_consumer) = lock
        .with_cancellation_token(&socket.cancellation_token)
        .await
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };

    let mut batch = Vec::new();
    // Size of the last batch written: the likely size of the next one.
    let mut next_batch = 0;
    let mut close_written = false;
    // Forward queued packets until the queue is closed or the session is cancelled. The
    // cancellation combinator polls the queue first, so a queued close packet is still written.
    while let Some(Some(first)) = socket
        .queue
        .recv()
        .with_cancellation_token(&socket.cancellation_token)
        .await
    {
        batch.reserve(next_batch);
        let mut packets = 0;
        let mut append = |outgoing: Outgoing| {
            packets += outgoing.packet_count();
            // tungstenite's reply to the client's close frame ends the websocket.
            close_written |=
                matches!(&outgoing, Outgoing::Raw(bytes) if bytes.first() == Some(&CLOSE_FRAME[0]));
            match &mut deflating {
                // tungstenite's control frames are never compressed.
                Some(deflating) if !matches!(outgoing, Outgoing::Raw(_)) => {
                    let mut frames = std::mem::take(&mut deflating.scratch);
                    frames.clear();
                    outgoing.write_frames(socket.protocol, &mut frames);
                    deflating.write(&frames, &mut batch);
                    if frames.capacity() <= deflate::RETAINED {
                        deflating.scratch = frames;
                    }
                }
                _ => outgoing.write_frames(socket.protocol, &mut batch),
            }
            batch.len() < MAX_WRITE_BATCH
        };
        if append(first) {
            socket.queue.try_recv_many(append);
        }
        traffic::record(
            TransportType::Websocket,
            Direction::Out,
            packets,
            batch.len() as u64,
        );
        if let Err(_e) = write_all(&mut write, &batch).await {
            #[cfg(feature = "tracing")]
            tracing::debug!("[sid={}] error sending packets: {}", socket.id, _e);
        }
        // A busy session is sized for its next batch at once rather than growing a buffer
        // from empty, copying at each doubling.
        let written = batch.len();
        batch.clear();
        if batch.capacity() > RETAINED_BATCH {
            batch = Vec::new();
        }
        next_batch = written.min(MAX_WRITE_BATCH);
    }

    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws closing");

    if !close_written {
        write_all(&mut write, &CLOSE_FRAME).await.ok();
    }
}

async fn write_all<S: AsyncWrite>(write: &mut WriteHalf<S>, bytes: &[u8]) -> io::Result<()> {
    write.write_all(bytes).await?;
    write.flush().await
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // As in Node, the session keeps polling until the client sends the Upgrade packet, which
    // it does once its own polling has paused. A poll still waiting meanwhile is ended with a
    // Noop every 100 ms (engine.io's upgrade `check`); ending it at once would put a Noop
    // before the packets of almost every new session.
    let mut check = tokio::time::interval_at(
        tokio::time::Instant::now() + UPGRADE_CHECK_PERIOD,
        UPGRADE_CHECK_PERIOD,
    );
    let msg = loop {
        tokio::select! {
            msg = ws.next() => break msg,
            _ = check.tick() => end_pending_poll(socket)?,
        }
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match msg {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // A poll still waiting gets a last Noop; wait for it to finish by waiting for the socket
    // to be unlocked.
    end_pending_poll(socket)?;
    let _lock = socket.internal_rx.lock().await;

    socket.upgrade_to_websocket();
    Ok(())
}

/// How often a poll left waiting during an upgrade is ended, as Node's engine.io does.
const UPGRADE_CHECK_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

/// Answers the session's waiting poll, if one is waiting, with a Noop.
fn end_pending_poll<D: Default + Send + Sync + 'static>(socket: &Socket<D>) -> Result<(), Error> {
    // A poll holds the receiver while it waits; a free receiver means no poll to end, and a
    // Noop queued then would only go out later as a stray packet.
    if socket.internal_rx.try_lock().is_ok() {
        return Ok(());
    }
    if socket.queue.push_control(Outgoing::packet(Packet::Noop)) {
        Ok(())
    } else {
        Err(Error::Upgrade)
    }
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    /// The server's write half, and the client's websocket.
    async fn ws_pair() -> (WriteHalf<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        let (_, write) = tokio::io::split(server);
        (
            write,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (tx, mut client) = ws_pair().await;

        let polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket(socket.clone(), tx, None));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (tx, _client) = ws_pair().await;

        let _polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket(socket.clone(), tx, None));
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }
}
