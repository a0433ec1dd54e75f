//! The accept loop and the HTTP/1.1 connections, served by hand rather than by `axum::serve`
//! so that each connection is admitted against the budget and held to its deadlines.
//!
//! Requests reach the router as with `into_make_service_with_connect_info::<SocketAddr>()`:
//! each carries `ConnectInfo<SocketAddr>` (the peer), and upgrades are served. On shutdown the
//! loop stops accepting, every connection finishes its request in flight and closes, and upgraded
//! connections, which the HTTP layer no longer tracks, are left to the caller's deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use super::connections::{ConnectionGate, Refusal, forwarded_client};
use super::deadlines::{
    ConnectionClock, Deadlines, RequestInFlight, TimedRequestBody, TimedResponseBody, TimedStream,
};

/// Seconds a refused client is asked to wait before it retries.
const RETRY_AFTER_S: u64 = 5;

/// Interval of the summary log line about refused and closed connections.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// After an `accept` failure (out of descriptors or memory), the loop waits this long rather
/// than spin on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What the accept loop serves and how it admits connections.
#[derive(Debug, Clone)]
pub struct Server {
    /// Everything served on the port.
    pub router: Router,
    /// The connection budget and its counters.
    pub gate: Arc<ConnectionGate>,
    /// The deadlines of every HTTP connection.
    pub deadlines: Deadlines,
}

/// Serves `listener` until `signal` completes, then stops accepting and returns once every
/// HTTP connection has closed (upgraded ones are not waited for).
pub async fn run(
    listener: TcpListener,
    server: Server,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        signal.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    let summary = tokio::spawn(log_summaries(server.gate.clone()));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = signal_tx.closed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                admit(&server, stream, peer, &signal_tx, &close_rx);
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                // Out of descriptors (EMFILE, ENFILE) or memory: the budget should prevent it,
                // but descriptors are shared with the rest of the process. The summary line
                // reports it; waiting lets connections close instead of spinning.
                server.gate.count_accept_error();
                tracing::debug!(%error, "accept error");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    summary.abort();
}

fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Admits `stream` and spawns its connection, or refuses it at once.
fn admit(
    server: &Server,
    stream: TcpStream,
    peer: SocketAddr,
    signal_tx: &watch::Sender<()>,
    close_rx: &watch::Receiver<()>,
) {
    // Small realtime frames must leave at once: with Nagle's algorithm on, a burst of them
    // stalls ~40 ms on delayed ACKs (Node's HTTP server disables it too).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let clock = Arc::new(ConnectionClock::new(Instant::now(), server.deadlines));
    let ticket = match server.gate.admit(peer.ip(), &clock) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            server.gate.count_refusal(refusal);
            refuse(&stream, refusal);
            return;
        }
    };
    let io = TimedStream::new(stream, clock.clone(), ticket);
    let context = Arc::new(ConnectionContext {
        router: server.router.clone(),
        gate: server.gate.clone(),
        clock: clock.clone(),
        peer,
        from_proxy: server.gate.is_trusted_proxy(peer.ip()),
    });
    let service = hyper::service::service_fn(move |request| {
        let context = context.clone();
        async move { Ok::<_, Infallible>(context.serve(request).await) }
    });
    let gate = server.gate.clone();
    let signal_tx = signal_tx.clone();
    let close_rx = close_rx.clone();
    tokio::spawn(async move {
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        let mut shutting_down = std::pin::pin!(signal_tx.closed());
        let mut expired = std::pin::pin!(clock.expired());
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "connection ended with an error");
                    }
                    break;
                }
                () = &mut shutting_down => connection.as_mut().graceful_shutdown(),
                expiry = &mut expired => {
                    // Dropping the connection closes the socket.
                    gate.count_expiry(expiry);
                    break;
                }
            }
        }
        drop(close_rx);
    });
}

/// Answers a refused connection with a 503 and closes it, without waiting for anything.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let message = match refusal {
        Refusal::Budget => "Server at capacity",
        Refusal::PerIp => "Too many connections from this address",
    };
    let body = format!(r#"{{"code":3,"message":"{message}"}}"#);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {RETRY_AFTER_S}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Read what already arrived, so that closing sends a FIN after the answer, not a reset that
    // could discard it.
    let mut drain = [0u8; 4096];
    while matches!(stream.try_read(&mut drain), Ok(n) if n > 0) {}
    // A new socket's send buffer is empty: the answer fits, or the client has gone.
    let _ = stream.try_write(response.as_bytes());
}

/// What every request of one connection shares.
struct ConnectionContext {
    router: Router,
    gate: Arc<ConnectionGate>,
    clock: Arc<ConnectionClock>,
    peer: SocketAddr,
    from_proxy: bool,
}

impl ConnectionContext {
    async fn serve(
        &self,
        request: Request<Incoming>,
    ) -> Response<TimedResponseBody<axum::body::Body>> {
        use http_body::Body as _;
        let body_pending = !request.body().is_end_stream();
        let mut in_flight = RequestInFlight::start(self.clock.clone(), body_pending);
        let clock = body_pending.then(|| self.clock.clone());
        let mut request = request.map(|body| Body::new(TimedRequestBody::new(body, clock)));
        if self.from_proxy {
            let forwarded = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok());
            let client = forwarded_client(forwarded, |ip| self.gate.is_trusted_proxy(ip));
            if let Some(client) = client {
                match self.gate.admit_forwarded(client) {
                    Some(slot) => in_flight.slot = Some(slot),
                    None => {
                        self.gate.count_refusal(Refusal::PerIp);
                        return TimedResponseBody::wrap(refused_by_address(), in_flight);
                    }
                }
            }
        }
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(self.peer));
        extensions.insert(self.gate.clone());
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            self.clock.upgraded(in_flight.slot.take());
        }
        TimedResponseBody::wrap(response, in_flight)
    }
}

impl TimedResponseBody<Body> {
    fn wrap(response: Response<Body>, request: RequestInFlight) -> Response<Self> {
        response.map(|body| TimedResponseBody::new(body, request))
    }
}

/// The 503 a forwarded client over its share gets; the proxy's connection stays open.
fn refused_by_address() -> Response<Body> {
    let mut response = Response::new(Body::from(
        r#"{"code":3,"message":"Too many connections from this address"}"#,
    ));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Logs one line per interval about connections refused or closed early, when there were any,
/// so that a flood cannot flood the log too.
async fn log_summaries(gate: Arc<ConnectionGate>) {
    let mut previous = gate.summary();
    let mut interval = tokio::time::interval(SUMMARY_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let current = gate.summary();
        if let Some(growth) = current.growth_since(&previous) {
            let h = growth.health;
            tracing::warn!(
                interval_s = SUMMARY_INTERVAL.as_secs(),
                open = h.open,
                budget = gate.budget(),
                refused_budget = h.refused.budget,
                refused_per_ip = h.refused.per_ip,
                header_timeout = h.closed.header_timeout,
                body_timeout = h.closed.body_timeout,
                evicted = h.closed.evicted,
                accept_errors = growth.accept_errors,
                "connections refused or closed early"
            );
        }
        previous = current;
    }
}
