//! The routes of one node, built without any I/O: [`memory_router`] gives tests the whole
//! router on the in-memory adapter to drive with `tower::ServiceExt::oneshot`, and
//! `server` builds the same routes on the Redis adapters.

use std::sync::Arc;

use axum::middleware;
use axum::{Extension, Router};
use engineioxide::PerMessageDeflate;
use engineioxide::config::EngineIoConfig;
use engineioxide::service::{EngineIoService, NotFoundService};
use http::Method;
use socketioxide::adapter::Adapter;
use socketioxide::service::SocketIoService;
use socketioxide::{ParserConfig, SocketIo, TransportType};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::adapter::RedisStatus;
use crate::adapter::sessions::RedisSessions;
use crate::api;
use crate::config::{Config, PacketParser, Profile, Transport};
use crate::engine_echo::{self, EchoHandler};
use crate::engine_suite;
use crate::http::compression::{self, PollingCompression};
use crate::http::guard::{self, RealtimeGuard};
use crate::http::{health, metrics, request_head, static_files};
use crate::plain_ws::{self, PlainEndpoint};
use crate::relay::Relay;
use crate::relay::recovery::RecoverySettings;
use crate::relay::webhook::WebhookSetupError;

/// Everything served on the port: Socket.IO at `--path`, plain WebSocket, health, the page and,
/// in the conformance profile, the Engine.IO echo (in the client-suite profile, the
/// engine.io-client suite's fixture), behind CORS and the realtime guard.
///
/// The Socket.IO service is created once and routed to: a layer applied below a fallback would
/// be re-created per request, each copy with its own (empty) session table.
pub fn router<A: Adapter>(
    config: &Arc<Config>,
    relay: &Arc<Relay>,
    (io_service, io): (SocketIoService<NotFoundService, A>, &SocketIo<A>),
    redis: Option<RedisStatus>,
) -> Router {
    let mut realtime_paths = vec![config.path.clone()];
    let mut socket_io = Router::new()
        .route_service(&config.path, io_service)
        // Only the Socket.IO route: each socket keeps its request's parts for its lifetime.
        .route_layer(middleware::from_fn(request_head::own));
    if config.profile == Profile::ClientSuite {
        socket_io = crate::socketio::client_suite::delay_handshakes(socket_io);
    }
    let mut router = engine_io_layers(socket_io, config)
        .merge(health::router(
            io.clone(),
            relay.clone(),
            redis,
            config.tick_interval(),
        ))
        .merge(api::router(config, io.clone(), relay.clone()))
        .merge(metrics_on_public_port(config, io, relay))
        .merge(static_files::client_bundle_router(
            &config.static_dir,
            &config.path,
        ))
        .merge(static_files::admin_ui_router(
            &config.static_dir,
            config.admin_ui,
        ))
        .merge(static_files::router(&config.static_dir));
    if config.profile == Profile::Conformance {
        let echo = EngineIoService::with_config(Arc::new(EchoHandler), engine_echo_config(config));
        router = router.merge(engine_io_layers(
            Router::new().route_service(engine_echo::PATH, echo),
            config,
        ));
        realtime_paths.push(engine_echo::PATH.to_owned());
    }
    if config.profile == Profile::ClientSuite {
        router = router.merge(engine_io_layers(engine_suite::router(), config));
        realtime_paths.push(engine_suite::PATH.to_owned());
    }
    let endpoint = PlainEndpoint {
        io: io.clone(),
        relay: relay.clone(),
        config: config.clone(),
    };
    router = plain_ws::serve_beside(router, endpoint);
    if let Some(cors) = cors_layer(config) {
        router = router.layer(cors);
    }
    let guard = RealtimeGuard::new(config.clone(), realtime_paths, relay.clone());
    router.layer(middleware::from_fn_with_state(guard, guard::check))
}

/// What Node's engine.io options add to an Engine.IO route (`router` holds only that route):
/// compressed polling responses (`httpCompression`) and WebSocket `permessage-deflate`
/// (`perMessageDeflate`), which engineioxide offers on the upgrades that carry its settings.
fn engine_io_layers(mut router: Router, config: &Config) -> Router {
    if config.http_compression {
        let compression = PollingCompression {
            threshold: config.http_compression_threshold,
        };
        router = router.route_layer(middleware::from_fn_with_state(
            compression,
            compression::compress,
        ));
    }
    if config.per_message_deflate {
        router = router.route_layer(Extension(PerMessageDeflate {
            threshold: config.per_message_deflate_threshold,
        }));
    }
    router
}

/// `/metrics` on the public port unless `--no-metrics` or `--metrics-listen` moves it away.
fn metrics_on_public_port<A: Adapter>(
    config: &Config,
    io: &SocketIo<A>,
    relay: &Arc<Relay>,
) -> Router {
    if config.no_metrics || config.metrics_listen.is_some() {
        // Said plainly rather than left to the page's fallback.
        return Router::new().route(
            metrics::PATH,
            axum::routing::any(|| async {
                (http::StatusCode::NOT_FOUND, "no metrics on this port")
            }),
        );
    }
    metrics::router(config, io.clone(), relay.clone())
}

/// The router of a single node on the in-memory adapter, with its namespaces registered.
pub fn memory_router(config: Config) -> Result<Router, WebhookSetupError> {
    let config = Arc::new(config);
    let relay = Relay::from_config(&config)?;
    let (service, io) = socket_io_builder(&config, &relay)
        .with_state(relay.clone())
        .build_svc();
    // In memory, a namespace's adapter initialisation has nothing to wait for.
    let _initialised = crate::socketio::register(&io, &config, &relay);
    let _admin = crate::admin::register(&io, &config, &relay);
    Ok(router(&config, &relay, (service, &io), None))
}

/// socketioxide configured as Node socket.io's options in `config` say.
pub fn socket_io_builder(config: &Config, relay: &Relay) -> socketioxide::SocketIoBuilder {
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
        .ws_read_buffer_size(1024)
        // Node gives a socket an id of its own, and the client suite checks it. The other
        // profiles keep the session's id, which deployments already see in logs, webhooks and
        // API answers.
        .own_socket_ids(config.profile == Profile::ClientSuite);
    // One parser for every namespace and every client, as in Node: a client whose parser
    // differs fails to decode its first packet and is closed.
    let builder = match config.parser {
        PacketParser::Default => builder,
        PacketParser::Msgpack => builder.with_parser(ParserConfig::msgpack()),
    };
    // Connection state recovery: sessions and sent packets in Redis when rooms are shared
    // through it (a client may come back through any node), in memory otherwise.
    let builder = match (RecoverySettings::from_config(config), &config.redis_url) {
        (Some(settings), Some(url)) => builder.with_session_store(Arc::new(RedisSessions::new(
            url.expose(),
            config.redis_cluster_mode(),
            settings,
            relay.metrics.recovery_failures(),
        ))),
        _ => crate::relay::recovery::with_memory_store(builder, config),
    };
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
