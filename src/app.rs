//! Builds the HTTP + Socket.IO application from a [`Config`] and serves it until shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use engineioxide::config::EngineIoConfig;
use engineioxide::service::EngineIoService;
use http::Method;
use socketioxide::{SocketIo, TransportType};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::config::{Config, Profile, Transport};
use crate::engine_echo::{self, EchoHandler};
use crate::http::guard::{self, RealtimeGuard};
use crate::http::{health, static_files};
use crate::realtime::{self, ticker};

/// The routes and the Socket.IO handle of one iorelay node, built without any I/O.
pub struct App {
    /// Everything served on the port.
    pub router: Router,
    /// Handle to broadcast to and close every socket.
    pub io: SocketIo,
}

/// Builds the application described by `config`.
pub fn build(config: Config) -> App {
    let config = Arc::new(config);
    // The Socket.IO service is created once and routed to: a layer applied below a fallback
    // would be re-created per request, each copy with its own (empty) session table.
    let (io_service, io) = socket_io_builder(&config).build_svc();
    realtime::register(&io, &config);

    let mut realtime_paths = vec![config.path.clone()];
    let mut router = Router::new()
        .route_service(&config.path, io_service)
        .merge(health::router(io.clone()))
        .merge(static_files::client_bundle_router(
            &config.static_dir,
            &config.path,
        ))
        .merge(static_files::router(&config.static_dir));
    if config.profile == Profile::Conformance {
        let echo = EngineIoService::with_config(Arc::new(EchoHandler), engine_echo_config(&config));
        router = router.route_service(engine_echo::PATH, echo);
        realtime_paths.push(engine_echo::PATH.to_owned());
    }
    if let Some(cors) = cors_layer(&config) {
        router = router.layer(cors);
    }
    let guard = RealtimeGuard::new(config.clone(), realtime_paths);
    let router = router.layer(middleware::from_fn_with_state(guard, guard::check));
    App { router, io }
}

/// Serves `config` on `listener` until `shutdown` completes, then disconnects every socket and
/// returns once connections are closed or the shutdown timeout has passed.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown_timeout = config.shutdown_timeout();
    let tick_interval = config.tick_interval();
    let App { router, io } = build(config);
    let ticker = tick_interval.map(|interval| ticker::spawn(io.clone(), interval));

    let shutdown_started = Arc::new(Notify::new());
    let graceful = {
        let shutdown_started = shutdown_started.clone();
        let io = io.clone();
        async move {
            shutdown.await;
            shutdown_started.notify_one();
            tracing::info!("shutting down: disconnecting every socket");
            // Clients receive a server-side disconnect and reconnect to another node.
            io.close().await;
        }
    };
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
    tracing::info!("stopped");
    result
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
        .ws_max_frame_size(max_message);
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
