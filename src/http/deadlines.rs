//! Deadlines of one HTTP connection: the request head, the request body, and the idle time
//! between two requests.
//!
//! hyper's own `header_read_timeout` starts when hyper begins waiting for a head, so on a
//! kept-alive connection it also runs through the idle time before the next request: it
//! cannot tell Node's `keepAliveTimeout` (5 s) from `headersTimeout` (10 s). Each connection
//! therefore has a [`ConnectionClock`] that the service and the socket update, and a timer task
//! that closes the connection when the current deadline passes:
//!
//! - accepted, no complete head yet: `--http-header-timeout-ms` from the accept;
//! - a request in flight: no deadline (a long-poll waits for data as long as the heartbeat
//!   allows), except while its body is still arriving: the body has the header timeout again,
//!   from the end of the head;
//! - between requests: `--keep-alive-timeout-ms` from the end of the last response, or, once
//!   the next request has started to arrive, the header timeout from its first byte;
//! - upgraded (WebSocket): none ever again; the heartbeat governs it.
//!
//! The socket's only work is one relaxed atomic load per read, to notice the first byte of a
//! head after an idle time; nothing is done per write or, once upgraded, per message.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::connections::{AddressSlot, Evictable, Expiry, Ticket};

/// The two timeouts every HTTP connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// For a request head (from the accept, or from its first byte) and for a request body.
    pub header: Duration,
    /// Between two requests on a kept-alive connection.
    pub keep_alive: Duration,
}

/// Waiting for the next request, nothing of it read yet.
const WAITING: u8 = 0;
/// Some bytes of the next request head have arrived.
const READING_HEAD: u8 = 1;
/// A request is being served.
const BUSY: u8 = 2;
/// The connection speaks another protocol now (WebSocket).
const UPGRADED: u8 = 3;

/// Where one connection stands, shared by its socket, its service and its timer.
#[derive(Debug)]
pub struct ConnectionClock {
    accepted: Instant,
    deadlines: Deadlines,
    phase: AtomicU8,
    /// Milliseconds from `accepted` to the start of the current phase.
    phase_since_ms: AtomicU64,
    /// Whether a complete request head has arrived yet.
    served: AtomicBool,
    evicted: AtomicBool,
    in_flight: AtomicU32,
    /// Requests in flight whose body has not fully arrived.
    bodies_pending: AtomicU32,
    /// Milliseconds from `accepted` to the end of the latest request head.
    head_done_ms: AtomicU64,
    /// The forwarded client's slot of an upgraded connection, given back when it closes.
    upgraded_slot: Mutex<Option<AddressSlot>>,
    changed: Notify,
}

impl Evictable for ConnectionClock {
    fn is_unproven(&self) -> bool {
        ConnectionClock::is_unproven(self)
    }

    fn evict(&self) -> bool {
        ConnectionClock::evict(self)
    }
}

impl ConnectionClock {
    /// The clock of a connection accepted at `accepted`.
    pub fn new(accepted: Instant, deadlines: Deadlines) -> Self {
        ConnectionClock {
            accepted,
            deadlines,
            phase: AtomicU8::new(WAITING),
            phase_since_ms: AtomicU64::new(0),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            bodies_pending: AtomicU32::new(0),
            head_done_ms: AtomicU64::new(0),
            upgraded_slot: Mutex::new(None),
            changed: Notify::new(),
        }
    }

    fn ms_since_accept(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.accepted).as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    /// Bytes arrived from the client.
    #[inline]
    fn bytes_read(&self) {
        if self.phase.load(Ordering::Relaxed) == WAITING
            && self
                .phase
                .compare_exchange(WAITING, READING_HEAD, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.phase_since_ms
                .store(self.ms_since_accept(Instant::now()), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A request head is complete; `body_pending` when a body is still to come.
    pub fn request_started(&self, body_pending: bool, now: Instant) {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if body_pending {
            self.bodies_pending.fetch_add(1, Ordering::AcqRel);
        }
        self.head_done_ms
            .store(self.ms_since_accept(now), Ordering::Release);
        self.phase.store(BUSY, Ordering::Release);
        self.changed.notify_one();
    }

    /// A request body has fully arrived, or its handler dropped it.
    fn body_done(&self) {
        self.bodies_pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// A response has been sent (or abandoned).
    fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.phase_since_ms
                .store(self.ms_since_accept(Instant::now()), Ordering::Release);
            let _ = self
                .phase
                .compare_exchange(BUSY, WAITING, Ordering::AcqRel, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// The connection switched protocols; `slot` (a forwarded client's) lives as long as it.
    pub fn upgraded(&self, slot: Option<AddressSlot>) {
        self.phase.store(UPGRADED, Ordering::Release);
        if slot.is_some() {
            *self
                .upgraded_slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = slot;
        }
        self.changed.notify_one();
    }

    /// Whether the connection has not sent a complete request head yet.
    pub fn is_unproven(&self) -> bool {
        !self.served.load(Ordering::Acquire) && !self.evicted.load(Ordering::Acquire)
    }

    /// Closes the connection if it has not sent a complete request head; whether it did.
    pub fn evict(&self) -> bool {
        if !self.is_unproven() || self.evicted.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.changed.notify_one();
        true
    }

    /// Whether [`ConnectionClock::evict`] closed this connection.
    #[cfg(test)]
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// The deadline in force at `now`: `Err` when it has passed, `Ok(None)` when there is none.
    fn deadline(&self, now: Instant) -> Result<Option<Instant>, Expiry> {
        if self.evicted.load(Ordering::Acquire) && !self.served.load(Ordering::Acquire) {
            return Err(Expiry::Evicted);
        }
        let phase = self.phase.load(Ordering::Acquire);
        let header = self.deadlines.header;
        let (deadline, expiry) = if phase == UPGRADED {
            return Ok(None);
        } else if self.in_flight.load(Ordering::Acquire) > 0 {
            if self.bodies_pending.load(Ordering::Acquire) == 0 {
                return Ok(None);
            }
            let head_done = self.at(self.head_done_ms.load(Ordering::Acquire));
            (head_done + header, Expiry::Body)
        } else if !self.served.load(Ordering::Acquire) {
            (self.accepted + header, Expiry::Header)
        } else {
            let since = self.at(self.phase_since_ms.load(Ordering::Acquire));
            if phase == READING_HEAD {
                (since + header, Expiry::Header)
            } else {
                (since + self.deadlines.keep_alive, Expiry::Idle)
            }
        };
        if now >= deadline {
            Err(expiry)
        } else {
            Ok(Some(deadline))
        }
    }

    /// Completes when the connection is past its deadline, with the deadline that passed.
    pub async fn expired(&self) -> Expiry {
        loop {
            let changed = self.changed.notified();
            match self.deadline(Instant::now()) {
                Err(expiry) => return expiry,
                Ok(None) => changed.await,
                Ok(Some(deadline)) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(deadline.into()) => {}
                    }
                }
            }
        }
    }
}

/// A TCP stream that tells its clock when bytes arrive, and holds the connection's place in
/// the budget for as long as the socket is open.
///
/// It reports the end of the stream one poll late. hyper parses a request, creates its
/// handler's future, and reads again before it first polls that future: when the request and
/// the client's close arrive together, it sees the close and drops the future unpolled, and the
/// handler never learns of the request. Node's HTTP server emits the request, then its `close`.
/// A long-poll is one such request: Engine.IO ends the session when the client gives up its
/// poll, which it can only do once the poll has started.
#[derive(Debug)]
pub struct TimedStream {
    stream: TcpStream,
    clock: Arc<ConnectionClock>,
    _ticket: Ticket,
    end_deferred: bool,
}

impl TimedStream {
    /// `stream`, admitted with `ticket`, reporting to `clock`.
    pub fn new(stream: TcpStream, clock: Arc<ConnectionClock>, ticket: Ticket) -> Self {
        TimedStream {
            stream,
            clock,
            _ticket: ticket,
            end_deferred: false,
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        } else if matches!(result, Poll::Ready(Ok(()))) && buf.remaining() > 0 && !self.end_deferred
        {
            // The end of the stream: reported at the next poll, after hyper has polled the
            // request it may have just parsed.
            self.end_deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        result
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that tells the clock when it has fully arrived.
#[derive(Debug)]
pub struct TimedRequestBody<B> {
    inner: B,
    clock: Option<Arc<ConnectionClock>>,
}

impl<B: Body> TimedRequestBody<B> {
    /// `inner`, whose arrival the clock waits for when `clock` is given.
    pub fn new(inner: B, clock: Option<Arc<ConnectionClock>>) -> Self {
        TimedRequestBody { inner, clock }
    }

    fn done(&mut self) {
        if let Some(clock) = self.clock.take() {
            clock.body_done();
        }
    }
}

impl<B> Drop for TimedRequestBody<B> {
    fn drop(&mut self) {
        if let Some(clock) = self.clock.take() {
            clock.body_done();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TimedRequestBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None | Some(Err(_))) => self.done(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.done(),
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that ends its request on the clock when it has been sent or dropped, and
/// holds a forwarded client's slot until then.
#[derive(Debug)]
pub struct TimedResponseBody<B> {
    inner: B,
    _request: RequestInFlight,
}

impl<B> TimedResponseBody<B> {
    /// `inner`, the response of `request`.
    pub fn new(inner: B, request: RequestInFlight) -> Self {
        TimedResponseBody {
            inner,
            _request: request,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TimedResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One request being served; dropping it ends the request on the clock.
#[derive(Debug)]
pub struct RequestInFlight {
    clock: Arc<ConnectionClock>,
    /// The forwarded client's slot, when the connection is a trusted proxy's.
    pub slot: Option<AddressSlot>,
}

impl RequestInFlight {
    /// Starts a request on `clock`.
    pub fn start(clock: Arc<ConnectionClock>, body_pending: bool) -> Self {
        clock.request_started(body_pending, Instant::now());
        RequestInFlight { clock, slot: None }
    }
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.clock.request_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: Deadlines = Deadlines {
        header: Duration::from_secs(10),
        keep_alive: Duration::from_secs(5),
    };

    #[test]
    fn each_phase_has_its_deadline() {
        let t0 = Instant::now();
        let clock = Arc::new(ConnectionClock::new(t0, DEADLINES));
        let s = Duration::from_secs;
        assert_eq!(
            clock.deadline(t0),
            Ok(Some(t0 + s(10))),
            "head from the accept"
        );
        clock.bytes_read();
        assert_eq!(
            clock.deadline(t0 + s(1)),
            Ok(Some(t0 + s(10))),
            "a partial head gains nothing"
        );
        assert_eq!(clock.deadline(t0 + s(10)), Err(Expiry::Header));

        clock.request_started(true, t0 + s(2));
        assert_eq!(
            clock.deadline(t0 + s(3)),
            Ok(Some(t0 + s(12))),
            "the body's turn"
        );
        assert_eq!(clock.deadline(t0 + s(12)), Err(Expiry::Body));
        clock.body_done();
        assert_eq!(clock.deadline(t0 + s(60)), Ok(None), "a long-poll waits");

        clock.request_ended();
        let idle = clock
            .deadline(Instant::now())
            .expect("idle")
            .expect("a deadline");
        assert!(idle > Instant::now() + s(4) && idle <= Instant::now() + s(5));
        assert_eq!(clock.deadline(Instant::now() + s(6)), Err(Expiry::Idle));
        clock.bytes_read();
        assert_eq!(
            clock.deadline(Instant::now() + s(6)).map(|d| d.is_some()),
            Ok(true),
            "a head has started: the header timeout applies"
        );

        clock.request_started(false, Instant::now());
        clock.upgraded(None);
        clock.request_ended();
        assert_eq!(
            clock.deadline(Instant::now() + s(3600)),
            Ok(None),
            "upgraded"
        );
        assert!(
            !clock.evict(),
            "a connection that sent a request is never evicted"
        );
    }

    #[test]
    fn an_evicted_connection_expires_at_once() {
        let t0 = Instant::now();
        let clock = ConnectionClock::new(t0, DEADLINES);
        assert!(clock.is_unproven());
        assert!(clock.evict());
        assert!(!clock.evict(), "once");
        assert_eq!(clock.deadline(t0), Err(Expiry::Evicted));
    }
}
