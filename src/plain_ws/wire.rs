//! The writing half of a plain WebSocket connection, and how it ends: which close code for
//! which cause, the close frame out and the client's close frame back.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// RFC 6455 close codes iorelay sends.
pub(super) mod code {
    /// The app (through its webhook answer or the server API) ended the connection.
    pub const NORMAL: u16 = 1000;
    /// The server is going away, or the client stopped answering pings.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame broke the WebSocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// The client flooded events, or could not keep up with its own traffic.
    pub const POLICY: u16 = 1008;
    /// A message was larger than `--max-http-buffer-size`.
    pub const TOO_BIG: u16 = 1009;
    /// The client closed without a code (`1005`, never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// The connection dropped without a close frame (`1006`, never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
}

/// How long closing may take: the close frame going out, the client's close frame coming back.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Room for pings and the close frame, apart from the data queue.
pub(super) const CONTROL_QUEUE: usize = 4;
/// Frames written before one flush when the queue holds many.
const WRITE_BATCH: usize = 64;

/// How a connection ended.
#[derive(Debug)]
pub(super) enum Ending {
    /// The client sent a close frame.
    ByClient(Option<CloseFrame>),
    /// The connection dropped without a close frame.
    Lost,
    /// The server closes it with this code and reason.
    ByServer(u16, &'static str),
    /// The app closes it (a refused connect, a `disconnect` answer) with this code and reason.
    ByApp(u16, String),
}

impl Ending {
    /// The close code and reason the server sends, if it is the server that closes.
    fn server_close(&self) -> Option<(u16, &str)> {
        match self {
            Ending::ByServer(code, reason) => Some((*code, reason)),
            Ending::ByApp(code, reason) => Some((*code, reason)),
            Ending::ByClient(_) | Ending::Lost => None,
        }
    }
}

/// Writes queued frames, control frames first, until the queues close or a close frame is sent.
pub(super) async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    mut control: mpsc::Receiver<Message>,
    mut outbox: mpsc::Receiver<Message>,
    metrics: Arc<Metrics>,
) {
    loop {
        let frame = tokio::select! {
            biased;
            frame = control.recv() => frame,
            frame = outbox.recv() => frame,
        };
        let Some(frame) = frame else { return };
        let closing = matches!(frame, Message::Close(_));
        let mut written = Written::default();
        written.add(&frame);
        if sink.feed(frame).await.is_err() {
            return;
        }
        if !closing {
            // Write what else is waiting in one go, then flush once.
            for _ in 1..WRITE_BATCH {
                let Ok(more) = outbox.try_recv() else { break };
                written.add(&more);
                if sink.feed(more).await.is_err() {
                    return;
                }
            }
        }
        // Counted once per batch: one add to the per-thread counters, not one per frame.
        metrics.plain_sent(written.frames, written.bytes);
        if sink.flush().await.is_err() || closing {
            return;
        }
    }
}

/// Data frames (text and binary) of one batch and their payload bytes.
#[derive(Default)]
struct Written {
    frames: usize,
    bytes: usize,
}

impl Written {
    fn add(&mut self, frame: &Message) {
        let bytes = match frame {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
            _ => return,
        };
        self.frames += 1;
        self.bytes += bytes;
    }
}

/// Sends the server's close frame or answers the client's, each within [`CLOSE_GRACE`].
///
/// The server's close frame jumps the queue (`control`), except when the app closes the
/// connection: then it follows the frames the app's answer queued (`data`).
pub(super) async fn close_connection(
    ending: &Ending,
    mut stream: SplitStream<WebSocket>,
    control: mpsc::Sender<Message>,
    data: mpsc::Sender<Message>,
    mut writer: JoinHandle<()>,
) {
    match ending.server_close() {
        Some((code, reason)) => {
            let frame = close(code, reason);
            let after_data =
                matches!(ending, Ending::ByApp(..)) && data.try_send(frame.clone()).is_ok();
            if !after_data {
                let _ = control.try_send(frame);
            }
            drop(data);
            // A closed control queue ends the writer: keep it open until the close frame is out.
            let written = tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_ok();
            drop(control);
            if written {
                // Wait for the client's close frame; a broken stream has nothing more to give.
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    while let Some(Ok(frame)) = stream.next().await {
                        if matches!(frame, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        None if matches!(ending, Ending::ByClient(_)) => {
            drop(control);
            // tungstenite queued the answer to the client's close frame; reading sends it.
            let _ = tokio::time::timeout(CLOSE_GRACE, stream.next()).await;
        }
        None => drop(control),
    }
    writer.abort();
}

/// A close frame; the reason is cut to the 123 bytes a close frame has room for.
pub(super) fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

/// Maps a read error to how the connection ends: RFC 6455 names a code for each case.
pub(super) fn read_error(error: axum::Error) -> Ending {
    use tungstenite::error::{Error, ProtocolError};
    // axum wraps the errors of the tungstenite it is built on, the version this crate names.
    let error = error.into_inner();
    match error.downcast_ref::<Error>() {
        Some(Error::Utf8(_)) => Ending::ByServer(code::INVALID_PAYLOAD, "invalid UTF-8"),
        Some(Error::Capacity(_)) => Ending::ByServer(code::TOO_BIG, "message too big"),
        Some(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => Ending::Lost,
        Some(Error::Protocol(_)) => Ending::ByServer(code::PROTOCOL, "protocol error"),
        _ => {
            tracing::debug!(%error, "plain WebSocket read failed");
            Ending::Lost
        }
    }
}
