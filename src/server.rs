//! Runs a node: connects Redis when configured, builds the routes ([`crate::app`]), starts the
//! background tasks (ticker, heap trimmer) and serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures_util::future::BoxFuture;
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide_core::adapter::DefinedAdapter;
use socketioxide_redis::CustomRedisAdapter;
use socketioxide_redis::drivers::Driver;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::adapter::node_messages::{self, NodeMessages};
use crate::adapter::node_requests::{NodeRequests, PendingAnswers};
use crate::adapter::publish_queue::Outgoing;
use crate::adapter::{
    self, ClusterLink, NodeFormatAdapter, RedisConnectError, RedisLink, RedisStatus, RoomSharing,
};
use crate::admin;
use crate::app::{router, socket_io_builder};
use crate::config::{Config, RedisProtocol};
use crate::heap;
use crate::http::connections::{ConnectionGate, DescriptorBudget};
use crate::http::deadlines::Deadlines;
use crate::http::metrics as http_metrics;
use crate::http::serve::{self as http_serve, Server};
use crate::metrics::Metrics;
use crate::relay::webhook::WebhookSetupError;
use crate::relay::{Relay, bridge};
use crate::socketio::{self, ticker};

/// The routes of one iorelay node and a handle on its sockets.
pub struct App {
    /// Everything served on the port.
    pub router: Router,
    /// The node's sockets, whatever adapter shares their rooms.
    pub node: Box<dyn RelayNode>,
    /// `/metrics` for its own listener, with `--metrics-listen`.
    pub metrics: Option<Router>,
}

/// What serving needs from the Socket.IO side, independent of the adapter type.
pub trait RelayNode: Send + Sync {
    /// Starts the ticker on this node's sockets.
    fn spawn_ticker(&self, interval: Duration) -> JoinHandle<()>;
    /// Starts returning memory to the system after waves of sessions end.
    fn spawn_heap_trimmer(&self) -> JoinHandle<()>;
    /// Closes every connection, as Node's `io.close()` does.
    fn close(&self) -> BoxFuture<'static, ()>;
    /// What the node counts.
    fn metrics(&self) -> Arc<Metrics>;
}

/// A node's Socket.IO sockets and plain WebSocket clients.
struct Node<A: Adapter> {
    io: SocketIo<A>,
    relay: Arc<Relay>,
}

impl<A: Adapter> RelayNode for Node<A> {
    fn spawn_ticker(&self, interval: Duration) -> JoinHandle<()> {
        ticker::spawn(self.io.clone(), self.relay.plain.clone(), interval)
    }

    fn spawn_heap_trimmer(&self) -> JoinHandle<()> {
        heap::spawn_trimmer(self.relay.clone())
    }

    fn metrics(&self) -> Arc<Metrics> {
        self.relay.metrics.clone()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let io = self.io.clone();
        let relay = self.relay.clone();
        Box::pin(async move {
            socketio::server_closing(&io, &relay);
            io.close().await;
            relay.plain.close_all().await;
            // The app hears of every socket that left (bounded by the shutdown timeout).
            relay.background.close();
            relay.background.wait().await;
        })
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Redis was required and could not be reached.
    #[error(transparent)]
    Redis(#[from] RedisConnectError),
    /// The webhook client could not be built.
    #[error(transparent)]
    Webhook(#[from] WebhookSetupError),
    /// The listener failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the application described by `config`, its rooms shared as `sharing` says.
pub async fn build(config: Config, sharing: RoomSharing) -> Result<App, WebhookSetupError> {
    let config = Arc::new(config);
    let relay = Relay::from_config(&config)?;
    Ok(match sharing {
        RoomSharing::Memory => {
            let (service, io) = socket_io_builder(&config, &relay)
                .with_state(relay.clone())
                .build_svc();
            let _initialised = socketio::register(&io, &config, &relay);
            let _admin = admin::register(&io, &config, &relay);
            let router = router(&config, &relay, (service, &io), None);
            App {
                router,
                metrics: own_metrics_router(&config, &io, &relay),
                node: Box::new(Node { io, relay }),
            }
        }
        RoomSharing::Redis(link) => {
            let status = link.status();
            let node_messages = link
                .listen_to_node(&config.redis_key_prefix, node_messages::QUEUE_CAPACITY)
                .await;
            let prefix = config.redis_key_prefix.clone();
            if config.speaks_node_protocol() {
                tracing::info!(prefix, "rooms shared through Redis in Node's format");
                let state = adapter::node_adapter_state(link.clone(), &prefix);
                build_shared::<NodeFormatAdapter<Emitter, RedisLink>, _>(
                    config,
                    relay,
                    (link, state),
                    status,
                    Some(node_messages),
                )
                .await
            } else {
                tracing::info!(
                    prefix,
                    "rooms shared through Redis in socketioxide-redis's format"
                );
                let state = adapter::adapter_state(link.clone(), &prefix);
                build_shared::<CustomRedisAdapter<Emitter, RedisLink>, _>(
                    config,
                    relay,
                    (link, state),
                    status,
                    Some(node_messages),
                )
                .await
            }
        }
        RoomSharing::Cluster(link) => {
            if config.redis_protocol == RedisProtocol::Node {
                tracing::info!(
                    "rooms shared through Redis Cluster in socketioxide-redis's sharded format: \
                     Node's format is spoken on a plain Redis only"
                );
            }
            let status = link.status();
            let state = adapter::adapter_state(link.clone(), &config.redis_key_prefix);
            build_shared::<CustomRedisAdapter<Emitter, ClusterLink>, _>(
                config,
                relay,
                (link, state),
                status,
                None,
            )
            .await
        }
    })
}

/// The application on the Redis adapter over `link`: plain members hear the other nodes, Node
/// socket.io's messages (`node_messages`, when the link carries them) reach the sockets, and
/// every namespace has subscribed before the first client can connect.
async fn build_shared<A, D>(
    config: Arc<Config>,
    relay: Arc<Relay>,
    (link, state): (D, A::State),
    status: RedisStatus,
    node_messages: Option<mpsc::Receiver<Outgoing>>,
) -> App
where
    A: Adapter + DefinedAdapter,
    A::InitRes: Future<Output = Result<(), socketioxide_redis::InitError<D>>>,
    D: Driver,
{
    bridge::connect_nodes(&relay.plain, link.clone()).await;
    let responses = link.clone();
    relay.metrics.watch_redis(Box::new(status.clone()));
    let (service, io) = socket_io_builder(&config, &relay)
        .with_state(relay.clone())
        .with_adapter::<A>(state)
        .build_svc();
    if let Some(received) = node_messages {
        let answers = Arc::new(PendingAnswers::default());
        let uid = io.config().server_id.to_string();
        if config.speaks_node_protocol() {
            let requests = NodeRequests::new(
                responses.clone(),
                &config.redis_key_prefix,
                uid.clone(),
                answers.clone(),
                adapter::REQUEST_TIMEOUT,
            );
            // The relay is new and this is its only setter.
            let _ = relay.remote_members.set(Arc::new(requests));
        }
        let node = NodeMessages {
            io: io.clone(),
            relay: relay.clone(),
            prefix: config.redis_key_prefix.clone(),
            limit: usize::try_from(config.max_http_buffer_size).unwrap_or(usize::MAX),
            health: status.clone(),
            link: responses,
            uid,
            answers,
        };
        tokio::spawn(node.serve(received));
    }
    let mut namespaces = socketio::register(&io, &config, &relay);
    namespaces.extend(admin::register(&io, &config, &relay));
    let router = router(&config, &relay, (service, &io), Some(status));
    // A namespace only accepts sockets once its adapter is initialised.
    for namespace in namespaces {
        if let Err(error) = namespace.await {
            tracing::error!(?error, "a namespace could not subscribe to Redis");
        }
    }
    App {
        router,
        metrics: own_metrics_router(&config, &io, &relay),
        node: Box::new(Node { io, relay }),
    }
}

/// The `/metrics` route alone, when `--metrics-listen` serves it apart from the public port.
fn own_metrics_router<A: Adapter>(
    config: &Config,
    io: &SocketIo<A>,
    relay: &Arc<Relay>,
) -> Option<Router> {
    config
        .metrics_listen
        .map(|_| http_metrics::router(config, io.clone(), relay.clone()))
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
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let descriptors = DescriptorBudget::of_this_process();
    fit_sessions_to_descriptors(&mut config, &descriptors);
    let gate = ConnectionGate::new(
        descriptors.connections,
        config.max_connections_per_ip,
        config.trust_proxy.clone(),
    );
    let deadlines = Deadlines {
        header: config.http_header_timeout(),
        keep_alive: config.keep_alive_timeout(),
    };
    let shutdown_timeout = config.shutdown_timeout();
    let tick_interval = config.tick_interval();
    // Bound before anything else starts, so that a taken address fails the start.
    let metrics_listener = match config.metrics_listen {
        Some(address) => Some(TcpListener::bind(address).await?),
        None => None,
    };
    let sharing = RoomSharing::from_config(&config).await?;
    let App {
        router,
        node,
        metrics,
    } = build(config, sharing).await?;
    let metrics_server = metrics_listener
        .zip(metrics)
        .map(|(listener, router)| tokio::spawn(serve_metrics(listener, router)));
    let node: Arc<dyn RelayNode> = Arc::from(node);
    node.metrics().watch_tcp(Box::new(gate.clone()));
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
    let server = http_serve::run(
        listener,
        Server {
            router,
            gate,
            deadlines,
        },
        graceful,
    );
    // Upgraded WebSockets are not tracked by the HTTP server, so bound the wait ourselves.
    let deadline = async {
        shutdown_started.notified().await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => {
            tracing::warn!(?shutdown_timeout, "connections still open at the shutdown deadline");
        }
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    heap_trimmer.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves `/metrics` on its own listener until the node stops (the task is aborted then).
async fn serve_metrics(listener: TcpListener, router: Router) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /metrics");
    }
    if let Err(error) = axum::serve(listener, router).await {
        tracing::warn!(%error, "the metrics listener failed");
    }
}

/// Logs the descriptor budget, and lowers `--max-connections` to it when it does not fit: every
/// session needs at least one TCP connection, and a node that promises more sessions than it
/// has descriptors fails with `Too many open files` instead of a clean 503.
fn fit_sessions_to_descriptors(config: &mut Config, descriptors: &DescriptorBudget) {
    tracing::info!(
        descriptor_limit = descriptors.limit,
        in_use = descriptors.in_use,
        reserve = descriptors.reserve,
        tcp_connections = descriptors.connections,
        max_connections = config.max_connections,
        max_connections_per_ip = config.max_connections_per_ip,
        "connection budget"
    );
    if config.max_connections > descriptors.connections {
        tracing::warn!(
            max_connections = config.max_connections,
            lowered_to = descriptors.connections,
            descriptor_limit = descriptors.limit,
            "--max-connections does not fit in the descriptor limit (RLIMIT_NOFILE, `ulimit -n`) \
             with its reserve: lowered; raise the limit to serve more"
        );
        config.max_connections = descriptors.connections;
    }
}
