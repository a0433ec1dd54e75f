//! Builds the HTTP + Socket.IO application from a [`Config`] and serves it until shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::serve::ListenerExt;
use engineioxide::config::EngineIoConfig;
use engineioxide::service::EngineIoService;
use engineioxide::service::NotFoundService;
use futures_util::future::BoxFuture;
use http::Method;
use socketioxide::adapter::Adapter;
use socketioxide::service::SocketIoService;
use socketioxide::{SocketIo, TransportType};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::adapter::{
    self, ClusterRelayAdapter, RedisConnectError, RedisRelayAdapter, RedisStatus, RoomSharing,
};
use crate::config::{Config, Profile, Transport};
use crate::engine_echo::{self, EchoHandler};
use crate::heap;
use crate::http::guard::{self, Capacity, RealtimeGuard};
use crate::http::{health, request_head, static_files};
use crate::plain_ws::{self, PlainEndpoint, PlainHub};
use crate::realtime::policy::RelayPolicy;
use crate::realtime::{self, ticker};

/// The routes of one iorelay node and a handle on its sockets, built without any I/O.
pub struct App {
    /// Everything served on the port.
    pub router: Router,
    /// The node's sockets, whatever adapter shares their rooms.
    pub node: Box<dyn RelayNode>,
}

/// What serving needs from the Socket.IO side, independent of the adapter type.
pub trait RelayNode: Send + Sync {
    /// Starts the ticker on this node's sockets.
    fn spawn_ticker(&self, interval: Duration) -> JoinHandle<()>;
    /// Starts returning memory to the system after waves of sessions end.
    fn spawn_heap_trimmer(&self) -> JoinHandle<()>;
    /// Closes every connection, as Node's `io.close()` does.
    fn close(&self) -> BoxFuture<'static, ()>;
}

/// A node's Socket.IO sockets and plain WebSocket clients.
struct Node<A: Adapter> {
    io: SocketIo<A>,
    plain: Arc<PlainHub>,
    capacity: Capacity,
}

impl<A: Adapter> RelayNode for Node<A> {
    fn spawn_ticker(&self, interval: Duration) -> JoinHandle<()> {
        ticker::spawn(self.io.clone(), self.plain.clone(), interval)
    }

    fn spawn_heap_trimmer(&self) -> JoinHandle<()> {
        heap::spawn_trimmer(self.capacity.clone())
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let io = self.io.clone();
        let plain = self.plain.clone();
        Box::pin(async move {
            io.close().await;
            plain.close_all().await;
        })
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Redis was required and could not be reached.
    #[error(transparent)]
    Redis(#[from] RedisConnectError),
    /// The listener failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the application described by `config`, its rooms shared as `sharing` says.
pub async fn build(config: Config, sharing: RoomSharing) -> App {
    let config = Arc::new(config);
    let policy = RelayPolicy::from_config(&config);
    let plain = Arc::new(PlainHub::new(
        config.max_buffer_size,
        config.max_rooms_per_socket,
    ));
    let builder = socket_io_builder(&config)
        .with_state(policy.clone())
        .with_state(plain.clone());
    let shared = (&config, &policy, &plain);
    match sharing {
        RoomSharing::Memory => assemble(shared, builder.build_svc(), None).0,
        RoomSharing::Redis(link) => {
            let status = link.status();
            plain_ws::bridge::connect_nodes(&plain, link.clone()).await;
            let builder = builder.with_adapter::<RedisRelayAdapter>(adapter::adapter_state(link));
            let (app, namespaces) = assemble(shared, builder.build_svc(), Some(status));
            subscribe_all(namespaces).await;
            app
        }
        RoomSharing::Cluster(link) => {
            let status = link.status();
            plain_ws::bridge::connect_nodes(&plain, link.clone()).await;
            let builder = builder.with_adapter::<ClusterRelayAdapter>(adapter::adapter_state(link));
            let (app, namespaces) = assemble(shared, builder.build_svc(), Some(status));
            subscribe_all(namespaces).await;
            app
        }
    }
}

/// Waits for each namespace's pub/sub subscriptions: a namespace only accepts sockets once its
/// adapter is initialised.
async fn subscribe_all<F, E>(namespaces: Vec<F>)
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Debug,
{
    for namespace in namespaces {
        if let Err(error) = namespace.await {
            tracing::error!(?error, "a namespace could not subscribe to Redis");
        }
    }
}

fn assemble<A: DefinedAdapter + Adapter>(
    (config, policy, plain): (&Arc<Config>, &Arc<RelayPolicy>, &Arc<PlainHub>),
    (io_service, io): (SocketIoService<NotFoundService, A>, SocketIo<A>),
    redis: Option<RedisStatus>,
) -> (App, Vec<A::InitRes>) {
    // The Socket.IO service is created once and routed to: a layer applied below a fallback
    // would be re-created per request, each copy with its own (empty) session table.
    let namespaces = realtime::register(&io, config);

    let mut realtime_paths = vec![config.path.clone()];
    let mut router = Router::new()
        .route_service(&config.path, io_service)
        // Only the Socket.IO route: each socket keeps its request's parts for its lifetime.
        .route_layer(middleware::from_fn(request_head::own))
        .merge(health::router(io.clone(), redis))
        .merge(static_files::client_bundle_router(
            &config.static_dir,
            &config.path,
        ))
        .merge(static_files::router(&config.static_dir));
    if config.profile == Profile::Conformance {
        let echo = EngineIoService::with_config(Arc::new(EchoHandler), engine_echo_config(config));
        router = router.route_service(engine_echo::PATH, echo);
        realtime_paths.push(engine_echo::PATH.to_owned());
    }
    let live = {
        let policy = policy.clone();
        let plain = plain.clone();
        Arc::new(move || policy.admissions.sockets() + plain.len())
    };
    let capacity = Capacity {
        policy: policy.clone(),
        live,
    };
    let endpoint = PlainEndpoint {
        io: io.clone(),
        hub: plain.clone(),
        policy: policy.clone(),
        config: config.clone(),
        capacity: capacity.clone(),
    };
    router = plain_ws::serve_beside(router, endpoint);
    if let Some(cors) = cors_layer(config) {
        router = router.layer(cors);
    }
    let guard = RealtimeGuard::new(config.clone(), realtime_paths, capacity.clone());
    let router = router.layer(middleware::from_fn_with_state(guard, guard::check));
    (
        App {
            router,
            node: Box::new(Node {
                io,
                plain: plain.clone(),
                capacity,
            }),
        },
        namespaces,
    )
}

/// Connections the kernel queues for `accept`, as many as Node's 511 and more: a burst of
/// clients overflowed the default of 128, and each dropped SYN cost its client a second.
const ACCEPT_BACKLOG: u32 = 1024;

/// Listens on `address` with a backlog deep enough for reconnection bursts.
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A restarted node can bind while its previous connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves `config` on `listener` until `shutdown` completes, then disconnects every socket and
/// returns once connections are closed or the shutdown timeout has passed.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let shutdown_timeout = config.shutdown_timeout();
    let tick_interval = config.tick_interval();
    let sharing = RoomSharing::from_config(&config).await?;
    let App { router, node } = build(config, sharing).await;
    let node: Arc<dyn RelayNode> = Arc::from(node);
    let ticker = tick_interval.map(|interval| node.spawn_ticker(interval));
    let heap_trimmer = node.spawn_heap_trimmer();

    let shutdown_started = Arc::new(Notify::new());
    let graceful = {
        let shutdown_started = shutdown_started.clone();
        let node = node.clone();
        async move {
            shutdown.await;
            shutdown_started.notify_one();
            tracing::info!("shutting down: closing every connection");
            // Clients see the transport close and reconnect, to this node once it is back or
            // to another one.
            node.close().await;
        }
    };
    // Small realtime frames must leave at once: with Nagle's algorithm on, a burst of them
    // stalls ~40 ms on delayed ACKs (Node's HTTP server disables it too).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(graceful);
    // Upgraded WebSockets are not tracked by the HTTP server, so bound the wait ourselves.
    let deadline = async {
        shutdown_started.notified().await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    let result = tokio::select! {
        result = server.into_future() => result,
        () = deadline => {
            tracing::warn!(?shutdown_timeout, "connections still open at the shutdown deadline");
            Ok(())
        }
    };
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    heap_trimmer.abort();
    tracing::info!("stopped");
    Ok(result?)
}

fn socket_io_builder(config: &Config) -> socketioxide::SocketIoBuilder {
    let max_message = usize::try_from(config.max_http_buffer_size).unwrap_or(usize::MAX);
    let builder = SocketIo::builder()
        .req_path(config.path.clone())
        .ping_interval(config.ping_interval())
        .ping_timeout(config.ping_timeout())
        .connect_timeout(config.connect_timeout())
        // socketioxide's `max_payload` bounds polling bodies only; WebSocket messages have
        // their own limit, and Node's `maxHttpBufferSize` covers both.
        .max_payload(config.max_http_buffer_size)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message)
        .max_buffer_size(config.max_buffer_size)
        // Every WebSocket keeps its read buffer allocated while idle; 1 KiB instead of 4 KiB
        // saves 3 KiB per connection, and larger messages are read in several chunks.
        .ws_read_buffer_size(1024);
    match (
        config.allows(Transport::Polling),
        config.allows(Transport::Websocket),
    ) {
        (true, false) => builder.transports([TransportType::Polling]),
        (false, true) => builder.transports([TransportType::Websocket]),
        _ => builder.transports([TransportType::Polling, TransportType::Websocket]),
    }
}

fn engine_echo_config(config: &Config) -> EngineIoConfig {
    let max_message = usize::try_from(config.max_http_buffer_size).unwrap_or(usize::MAX);
    EngineIoConfig::builder()
        .req_path(engine_echo::PATH)
        .ping_interval(config.ping_interval())
        .ping_timeout(config.ping_timeout())
        .max_payload(config.max_http_buffer_size)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message)
        .build()
}

/// CORS headers for the configured allow-list; none at all when the list is empty, as with
/// Node socket.io's default (same-origin pages and non-browser clients need none).
fn cors_layer(config: &Config) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins = if config.any_origin() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|origin| origin.parse().ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .allow_credentials(config.cors_credentials),
    )
}
