//! Command-line and environment configuration, with Node socket.io's defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use http::HeaderValue;

/// Everything iorelay can be told at startup. Every flag also reads `IORELAY_<FLAG>`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "iorelay",
    version,
    about = "A Socket.IO-compatible realtime server",
    // A flag given twice takes the last value, as most servers do.
    args_override_self = true
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "IORELAY_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on (`PORT` is honoured too, as Node apps do; 0 picks a free port).
    #[arg(long, env = "IORELAY_PORT", default_value_t = default_port())]
    pub port: u32,

    /// Path of the Socket.IO endpoint (socket.io's `path` option).
    #[arg(long, env = "IORELAY_PATH", default_value = "/socket.io/")]
    pub path: String,

    /// Path of the plain WebSocket endpoint; a WebSocket upgrade to `/` is served there too.
    #[arg(long, env = "IORELAY_WS_PATH", default_value = "/ws")]
    pub ws_path: String,

    /// A `Sec-WebSocket-Protocol` plain WebSocket clients may ask for; repeat for several.
    #[arg(
        long = "ws-protocol",
        env = "IORELAY_WS_PROTOCOLS",
        value_delimiter = ',',
        default_value = "echo-protocol"
    )]
    pub ws_protocols: Vec<String>,

    /// Interval between two server pings, in milliseconds (`pingInterval`).
    #[arg(long, env = "IORELAY_PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,

    /// Time a client has to answer a ping, in milliseconds (`pingTimeout`).
    #[arg(long, env = "IORELAY_PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,

    /// Time a client has to join a namespace after the handshake, in milliseconds (`connectTimeout`).
    #[arg(long, env = "IORELAY_CONNECT_TIMEOUT_MS", default_value_t = 45_000)]
    pub connect_timeout_ms: u64,

    /// Largest message accepted, in bytes, on both transports (`maxHttpBufferSize`).
    #[arg(
        long,
        env = "IORELAY_MAX_HTTP_BUFFER_SIZE",
        default_value_t = 1_000_000
    )]
    pub max_http_buffer_size: u64,

    /// Transports offered to clients, comma-separated (`transports`).
    #[arg(
        long,
        env = "IORELAY_TRANSPORTS",
        value_enum,
        value_delimiter = ',',
        default_value = "polling,websocket"
    )]
    pub transports: Vec<Transport>,

    /// Accept Engine.IO v3 clients, i.e. socket.io-client 2.x (`allowEIO3`).
    #[arg(long, env = "IORELAY_ALLOW_EIO3")]
    pub allow_eio3: bool,

    /// An origin allowed to connect from a browser; repeat for several, `*` for any.
    #[arg(
        long = "cors-origin",
        env = "IORELAY_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Let browsers send cookies and credentials cross-origin (needs explicit origins).
    #[arg(long, env = "IORELAY_CORS_CREDENTIALS")]
    pub cors_credentials: bool,

    /// Redis URL (`redis://[:password@]host:port[/db]`) to share rooms between nodes; unset
    /// keeps rooms in memory on this node alone.
    #[arg(long, env = "IORELAY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Treat `--redis-url` as seeds of a Redis Cluster and use sharded pub/sub (Redis 7+); a
    /// `redis+cluster://` URL implies it. Several seeds are comma-separated.
    #[arg(long, env = "IORELAY_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of the Redis channels, as the `key` option of Node's Redis adapter and emitter.
    #[arg(long, env = "IORELAY_REDIS_KEY_PREFIX", default_value = "socket.io")]
    pub redis_key_prefix: String,

    /// How nodes talk on Redis: `node`, the channels and encodings of Node's
    /// `@socket.io/redis-adapter` 8.x, so Node servers and `@socket.io/redis-emitter` share the
    /// rooms; `socketioxide`, socketioxide-redis's own format, for deployments of iorelay nodes
    /// alone that started on it. With `--redis-cluster`, nodes use socketioxide's format.
    #[arg(
        long,
        env = "IORELAY_REDIS_PROTOCOL",
        value_enum,
        default_value = "node"
    )]
    pub redis_protocol: RedisProtocol,

    /// Start even when Redis cannot be reached, serving local sockets until it can.
    #[arg(long, env = "IORELAY_REDIS_OPTIONAL")]
    pub redis_optional: bool,

    /// Require clients to send this shared token as `auth: { token }` in the handshake.
    #[arg(long, env = "IORELAY_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<Secret>,

    /// Require an HS256 JWT signed with this secret as `auth: { token }`; its `sub` becomes
    /// the socket's user.
    #[arg(long, env = "IORELAY_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<Secret>,

    /// Most Socket.IO connections this node holds; further handshakes get HTTP 503.
    #[arg(long, env = "IORELAY_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,

    /// Most TCP connections one client address may hold open at once; past it, a new one gets
    /// HTTP 503 and is closed. The address is the peer's, or the client's in `X-Forwarded-For`
    /// when the peer is a `--trust-proxy`.
    #[arg(long, env = "IORELAY_MAX_CONNECTIONS_PER_IP", default_value_t = 4_096)]
    pub max_connections_per_ip: usize,

    /// Time a connection has to send a complete request head after it is accepted (and a
    /// request body after its head), in milliseconds; it is closed when the time is up.
    #[arg(long, env = "IORELAY_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_timeout_ms: u64,

    /// Time a kept-alive HTTP connection may stay idle between two requests, in milliseconds
    /// (Node's `keepAliveTimeout`).
    #[arg(long, env = "IORELAY_KEEP_ALIVE_TIMEOUT_MS", default_value_t = 5_000)]
    pub keep_alive_timeout_ms: u64,

    /// Address (or `address/prefix` network) of a reverse proxy in front of iorelay; repeat for
    /// several. Requests it forwards are counted against the client address it puts in
    /// `X-Forwarded-For`.
    #[arg(
        long = "trust-proxy",
        env = "IORELAY_TRUST_PROXY",
        value_delimiter = ','
    )]
    pub trust_proxy: Vec<ProxyNetwork>,

    /// Most rooms one socket may be in at once.
    #[arg(long, env = "IORELAY_MAX_ROOMS_PER_SOCKET", default_value_t = 100)]
    pub max_rooms_per_socket: usize,

    /// Longest room name, in characters.
    #[arg(long, env = "IORELAY_MAX_ROOM_NAME_LENGTH", default_value_t = 128)]
    pub max_room_name_length: usize,

    /// Events one socket may send per second; an event over it is answered with an error ack
    /// (or dropped and counted when it asks for none), and a socket that keeps exceeding it for
    /// 3 seconds is disconnected.
    #[arg(long, env = "IORELAY_MAX_EVENTS_PER_SECOND", default_value_t = 5_000)]
    pub max_events_per_second: u32,

    /// Packets queued per socket before further ones are dropped; a socket that stops reading
    /// is then disconnected by the heartbeat.
    #[arg(long, env = "IORELAY_MAX_BUFFER_SIZE", default_value_t = 1_024)]
    pub max_buffer_size: usize,

    /// Interval of the ticker's `message` event in milliseconds; 0 turns the ticker off.
    #[arg(long, env = "IORELAY_TICK_INTERVAL_MS", default_value_t = 10_000)]
    pub tick_interval_ms: u64,

    /// Folder with the built web page served at `/`.
    #[arg(long, env = "IORELAY_STATIC_DIR", default_value = "client-demo/dist")]
    pub static_dir: PathBuf,

    /// Time given to open connections to close after SIGINT/SIGTERM, in milliseconds.
    #[arg(long, env = "IORELAY_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Threads that serve connections; 0 runs one per CPU the process may use, and 1 runs
    /// the single-threaded scheduler.
    #[arg(
        long,
        env = "IORELAY_WORKER_THREADS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u16).range(..=1024)
    )]
    pub worker_threads: u16,

    /// Log line format.
    #[arg(long, env = "IORELAY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// URL the app receives event webhooks at (`http://` or `https://`); events no built-in
    /// handler takes are POSTed there.
    #[arg(long, env = "IORELAY_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// Key of the HMAC-SHA256 signature in `X-Iorelay-Signature`; required with a webhook URL.
    #[arg(long, env = "IORELAY_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,

    /// Time the app has to answer one webhook, in milliseconds.
    #[arg(long, env = "IORELAY_WEBHOOK_TIMEOUT_MS", default_value_t = 5_000)]
    pub webhook_timeout_ms: u64,

    /// Webhook requests in flight at once on this node; past it, events wait.
    #[arg(long, env = "IORELAY_WEBHOOK_CONCURRENCY", default_value_t = 256)]
    pub webhook_concurrency: usize,

    /// Built-in events that stay on, comma-separated (`none` turns them all off); the others
    /// go to the webhook.
    #[arg(
        long,
        env = "IORELAY_BUILTIN_EVENTS",
        value_delimiter = ',',
        default_value = "message,echo,join,leave,chat"
    )]
    pub builtin_events: Vec<String>,

    /// A further namespace whose events all go to the webhook; repeat for several.
    #[arg(long = "namespace", env = "IORELAY_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Bearer key of the HTTP server API at `/api/*`; without it the API answers 404.
    #[arg(long, env = "IORELAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// Serve no `GET /metrics` (the counters still run: the Admin UI reads them).
    #[arg(long, env = "IORELAY_NO_METRICS", conflicts_with = "metrics_listen")]
    pub no_metrics: bool,

    /// Serve `GET /metrics` on its own listener at this address (e.g. `127.0.0.1:9091`)
    /// instead of the public port.
    #[arg(long, env = "IORELAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Bearer token `GET /metrics` requires (`Authorization: Bearer <token>`); 401 without.
    #[arg(long, env = "IORELAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Serve the official Socket.IO Admin UI at `/admin/` and speak its protocol on the
    /// `--admin-ui-namespace`.
    #[arg(long, env = "IORELAY_ADMIN_UI")]
    pub admin_ui: bool,

    /// What the Admin UI is sent: `development` adds the socket list, its live updates and
    /// every event; `production` only the server statistics.
    #[arg(
        long,
        env = "IORELAY_ADMIN_UI_MODE",
        value_enum,
        default_value = "development"
    )]
    pub admin_ui_mode: AdminUiMode,

    /// User name the Admin UI logs in with.
    #[arg(long, env = "IORELAY_ADMIN_UI_USERNAME", default_value = "admin")]
    pub admin_ui_username: String,

    /// bcrypt hash (`$2a$`, `$2b$` or `$2y$`) of the Admin UI's password.
    #[arg(long, env = "IORELAY_ADMIN_UI_PASSWORD_HASH", hide_env_values = true)]
    pub admin_ui_password_hash: Option<Secret>,

    /// Let the Admin UI in without a login; refused unless `--host` is a loopback address.
    #[arg(long, env = "IORELAY_ADMIN_UI_NO_AUTH")]
    pub admin_ui_no_auth: bool,

    /// Namespace of the Admin UI's protocol.
    #[arg(long, env = "IORELAY_ADMIN_UI_NAMESPACE", default_value = "/admin")]
    pub admin_ui_namespace: String,

    /// This node's name in the Admin UI's server list (default: the host name).
    #[arg(long, env = "IORELAY_ADMIN_UI_SERVER_ID")]
    pub admin_ui_server_id: Option<String>,

    /// Packet encoding: Socket.IO's default text parser, or MessagePack as the npm
    /// `socket.io-msgpack-parser` writes it (every client must use the same one).
    #[arg(long, env = "IORELAY_PARSER", value_enum, default_value = "default")]
    pub parser: PacketParser,

    /// Compress long-polling responses with gzip or deflate when the client accepts it
    /// (Node's `httpCompression`); `--http-compression false` turns it off.
    #[arg(
        long,
        env = "IORELAY_HTTP_COMPRESSION",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub http_compression: bool,

    /// Smallest polling response, in bytes, that is compressed.
    #[arg(
        long,
        env = "IORELAY_HTTP_COMPRESSION_THRESHOLD",
        default_value_t = 1024
    )]
    pub http_compression_threshold: usize,

    /// Offer the WebSocket `permessage-deflate` extension (off by default, as in Node 4.x).
    #[arg(long, env = "IORELAY_PER_MESSAGE_DEFLATE")]
    pub per_message_deflate: bool,

    /// Smallest WebSocket message, in bytes, that is compressed with `--per-message-deflate`.
    #[arg(
        long,
        env = "IORELAY_PER_MESSAGE_DEFLATE_THRESHOLD",
        default_value_t = 1024
    )]
    pub per_message_deflate_threshold: usize,

    /// Connection state recovery, as Node's `connectionStateRecovery`: a client back within
    /// `--recovery-max-disconnection-ms` gets its socket id, rooms and data, and the packets it
    /// missed (see docs/connection-state-recovery.md).
    #[arg(long, env = "IORELAY_CONNECTION_STATE_RECOVERY")]
    pub connection_state_recovery: bool,

    /// How long a disconnected client's session is kept, in milliseconds (Node's
    /// `maxDisconnectionDuration`).
    #[arg(
        long,
        env = "IORELAY_RECOVERY_MAX_DISCONNECTION_MS",
        default_value_t = 120_000
    )]
    pub recovery_max_disconnection_ms: u64,

    /// Whether a recovered socket skips the connect checks (the credentials and the connect
    /// webhook), as Node's `skipMiddlewares`; `--recovery-skip-middlewares false` runs them again.
    #[arg(
        long,
        env = "IORELAY_RECOVERY_SKIP_MIDDLEWARES",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub recovery_skip_middlewares: bool,

    /// Bytes of sent packets kept per namespace for recovery; the oldest are dropped first.
    #[arg(
        long,
        env = "IORELAY_RECOVERY_BUFFER_BYTES",
        default_value_t = 64 * 1024 * 1024
    )]
    pub recovery_buffer_bytes: usize,

    /// A preset that overrides the options above for a purpose.
    #[arg(long, env = "IORELAY_PROFILE", value_enum, default_value = "default")]
    pub profile: Profile,
}

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A trusted proxy: one address, or a network as `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNetwork {
    address: IpAddr,
    prefix: u8,
}

impl ProxyNetwork {
    /// Whether `ip` is this address or lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for ProxyNetwork {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected an IP address or a network such as 10.0.0.0/8, got '{s}'");
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let address = address.to_canonical();
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
            None => width,
        };
        Ok(ProxyNetwork { address, prefix })
    }
}

/// An Engine.IO transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The wire format of the nodes' messages on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedisProtocol {
    /// Node's `@socket.io/redis-adapter` 8.x: broadcasts and room changes in its format.
    Node,
    /// socketioxide-redis's format, which Node servers do not read.
    Socketioxide,
}

/// How much the Admin UI is told (the Node package's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdminUiMode {
    /// Server statistics, the socket list and every live update.
    Development,
    /// Server statistics only, for busy nodes.
    Production,
}

/// A preset of server behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// The iorelay event contract.
    Default,
    /// What the official Socket.IO v5 and Engine.IO v4 protocol test suites expect.
    Conformance,
    /// What socket.io-client's own test suite expects of its fixture server.
    ClientSuite,
}

/// How Socket.IO packets are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PacketParser {
    /// Socket.IO's text format, with binary attachments.
    Default,
    /// MessagePack, as the npm `socket.io-msgpack-parser` encodes packets.
    Msgpack,
}

/// A configuration that cannot be served, named by the option at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `--port` is out of range.
    #[error("invalid value '{0}' for '--port': must be between 0 and 65535")]
    Port(u32),
    /// A duration that must be positive is zero.
    #[error("invalid value '0' for '--{0}': must be greater than 0")]
    ZeroDuration(&'static str),
    /// `--max-http-buffer-size` is zero.
    #[error("invalid value '0' for '--max-http-buffer-size': must be greater than 0")]
    ZeroBufferSize,
    /// `--path` does not start with `/`.
    #[error("invalid value '{0}' for '--path': must start with '/'")]
    Path(String),
    /// `--ws-path` cannot be served beside the other routes.
    #[error("invalid value '{0}' for '--ws-path': {1}")]
    WsPath(String, &'static str),
    /// A `--ws-protocol` is not a valid subprotocol name.
    #[error("invalid value '{0}' for '--ws-protocol': expected a token such as 'echo-protocol'")]
    WsProtocol(String),
    /// `--transports` names no transport.
    #[error("invalid value for '--transports': at least one transport is needed")]
    NoTransport,
    /// A `--cors-origin` is not `scheme://host[:port]`.
    #[error(
        "invalid value '{0}' for '--cors-origin': expected an origin like 'https://example.com' or '*'"
    )]
    Origin(String),
    /// Both authentication modes at once.
    #[error("'--auth-token' and '--auth-secret' cannot be used together: pick one")]
    TwoAuthModes,
    /// A limit that must be positive is zero.
    #[error("invalid value '0' for '--{0}': must be greater than 0")]
    ZeroLimit(&'static str),
    /// `--webhook-url` is not an http(s) URL with a host.
    #[error(
        "invalid value '{0}' for '--webhook-url': expected an http:// or https:// URL with a host"
    )]
    WebhookUrl(String),
    /// A webhook URL without a secret to sign its requests with.
    #[error("'--webhook-url' needs '--webhook-secret': the app must be able to check who calls it")]
    WebhookWithoutSecret,
    /// A `--builtin-events` entry that names no built-in event.
    #[error(
        "invalid value '{0}' for '--builtin-events': expected message, echo, join, leave, chat or none"
    )]
    BuiltinEvent(String),
    /// A `--namespace` that is not a path, or is one of the built-in namespaces.
    #[error("invalid value '{0}' for '--namespace': {1}")]
    Namespace(String, &'static str),
    /// An empty `--api-key`, `--webhook-secret` or `--metrics-token`.
    #[error("'--{0}' must not be empty")]
    EmptySecret(&'static str),
    /// `--cors-credentials` together with the `*` origin.
    #[error(
        "invalid value '*' for '--cors-origin': a wildcard origin cannot be used with '--cors-credentials'"
    )]
    WildcardWithCredentials,
    /// `--admin-ui` with neither a password hash nor `--admin-ui-no-auth`.
    #[error(
        "'--admin-ui' needs '--admin-ui-password-hash' (a bcrypt hash of the admin password), \
         or '--admin-ui-no-auth' for a node listening on a loopback '--host' only"
    )]
    AdminUiWithoutLogin,
    /// `--admin-ui-no-auth` on a host other clients can reach.
    #[error(
        "'--admin-ui-no-auth' is refused with '--host {0}': anyone who reaches the port could act \
         on every socket; listen on 127.0.0.1 or ::1, or set '--admin-ui-password-hash'"
    )]
    AdminUiOpenHost(IpAddr),
    /// Both a password hash and `--admin-ui-no-auth`.
    #[error(
        "'--admin-ui-password-hash' and '--admin-ui-no-auth' cannot be used together: pick one"
    )]
    AdminUiTwoLogins,
    /// A password hash that is not a bcrypt hash.
    #[error(
        "invalid value for '--admin-ui-password-hash': expected a bcrypt hash such as '$2b$10$...' ({0})"
    )]
    AdminUiPasswordHash(String),
    /// An `--admin-ui-namespace` that is not a path of its own.
    #[error("invalid value '{0}' for '--admin-ui-namespace': {1}")]
    AdminUiNamespace(String, &'static str),
}

/// `http://host...` or `https://host...` with a non-empty host.
fn is_http_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.host().is_some_and(|host| !host.is_empty())
}

fn default_port() -> u32 {
    // Node apps listen on `PORT`; `IORELAY_PORT` and `--port` take precedence over it.
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

impl Config {
    /// Parses a configuration from command-line arguments, without validating it.
    pub fn parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::try_parse_from(args)
    }

    /// Applies the profile preset and checks that the result can be served.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        if self.profile == Profile::Conformance {
            // The values the official protocol test suites are written against.
            self.ping_interval_ms = 300;
            self.ping_timeout_ms = 200;
            self.connect_timeout_ms = 1_000;
            self.max_http_buffer_size = 1_000_000;
            self.tick_interval_ms = 0;
            // The suites race two requests on two connections (a poll and the POST that
            // closes its session, a poll and the upgrade's last WebSocket frame) and expect
            // them handled in the order they arrive, as Node's single event loop does. One
            // thread runs connections in that order; several may run the later one first.
            if self.worker_threads == 0 {
                self.worker_threads = 1;
            }
        }
        if self.profile == Profile::ClientSuite {
            // The fixture's `pingInterval` and `connectionStateRecovery: {}` (recovery with
            // Node's defaults); the rest are Node's defaults, which it keeps.
            self.ping_interval_ms = 2_000;
            self.ping_timeout_ms = 20_000;
            self.connect_timeout_ms = 45_000;
            self.max_http_buffer_size = 1_000_000;
            self.tick_interval_ms = 0;
            self.connection_state_recovery = true;
        }
        if self.port > u32::from(u16::MAX) {
            return Err(ConfigError::Port(self.port));
        }
        for (name, value) in [
            ("ping-interval-ms", self.ping_interval_ms),
            ("ping-timeout-ms", self.ping_timeout_ms),
            ("connect-timeout-ms", self.connect_timeout_ms),
            ("shutdown-timeout-ms", self.shutdown_timeout_ms),
            ("http-header-timeout-ms", self.http_header_timeout_ms),
            ("keep-alive-timeout-ms", self.keep_alive_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.auth_token.is_some() && self.auth_secret.is_some() {
            return Err(ConfigError::TwoAuthModes);
        }
        for (name, value) in [
            ("max-connections", self.max_connections),
            ("max-connections-per-ip", self.max_connections_per_ip),
            ("max-rooms-per-socket", self.max_rooms_per_socket),
            ("max-room-name-length", self.max_room_name_length),
            ("max-events-per-second", self.max_events_per_second as usize),
            ("max-buffer-size", self.max_buffer_size),
            ("webhook-concurrency", self.webhook_concurrency),
            ("webhook-timeout-ms", self.webhook_timeout_ms as usize),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.max_http_buffer_size == 0 {
            return Err(ConfigError::ZeroBufferSize);
        }
        if !self.path.starts_with('/') {
            return Err(ConfigError::Path(self.path));
        }
        if !self.path.ends_with('/') {
            // socket.io-client always requests `<path>/`, so normalise like Node does.
            self.path.push('/');
        }
        self.check_plain_websocket()?;
        self.check_app_integration()?;
        self.check_admin_ui()?;
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|token| token.expose().is_empty())
        {
            return Err(ConfigError::EmptySecret("metrics-token"));
        }
        self.transports.dedup();
        if self.transports.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        for origin in &self.cors_origins {
            if origin == "*" {
                if self.cors_credentials {
                    return Err(ConfigError::WildcardWithCredentials);
                }
            } else if !is_origin(origin) {
                return Err(ConfigError::Origin(origin.clone()));
            }
        }
        Ok(self)
    }

    fn check_plain_websocket(&mut self) -> Result<(), ConfigError> {
        let refuse = |why| Err(ConfigError::WsPath(self.ws_path.clone(), why));
        if !self.ws_path.starts_with('/') {
            return refuse("must start with '/'");
        }
        // `/` always takes upgrades, and the page stays there for everything else.
        if self.ws_path == "/" || self.ws_path == "/healthz" {
            return refuse("that path is already served");
        }
        if self.ws_path.starts_with(&self.path) {
            return refuse("must not overlap the Socket.IO '--path'");
        }
        // An empty entry (`IORELAY_WS_PROTOCOLS=`) means no subprotocol is accepted.
        self.ws_protocols.retain(|protocol| !protocol.is_empty());
        match self.ws_protocols.iter().find(|p| !is_token(p)) {
            Some(bad) => Err(ConfigError::WsProtocol(bad.clone())),
            None => Ok(()),
        }
    }

    fn check_app_integration(&mut self) -> Result<(), ConfigError> {
        if let Some(url) = &self.webhook_url {
            if !is_http_url(url) {
                return Err(ConfigError::WebhookUrl(url.clone()));
            }
            match &self.webhook_secret {
                None => return Err(ConfigError::WebhookWithoutSecret),
                Some(secret) if secret.expose().is_empty() => {
                    return Err(ConfigError::EmptySecret("webhook-secret"));
                }
                Some(_) => {}
            }
        }
        if self
            .api_key
            .as_ref()
            .is_some_and(|key| key.expose().is_empty())
        {
            return Err(ConfigError::EmptySecret("api-key"));
        }
        self.builtin_events.retain(|event| !event.is_empty());
        if self.builtin_events.iter().any(|event| event == "none") {
            if self.builtin_events.len() > 1 {
                return Err(ConfigError::BuiltinEvent("none".into()));
            }
            self.builtin_events.clear();
        }
        const BUILTIN: [&str; 5] = ["message", "echo", "join", "leave", "chat"];
        if let Some(bad) = self
            .builtin_events
            .iter()
            .find(|e| !BUILTIN.contains(&e.as_str()))
        {
            return Err(ConfigError::BuiltinEvent(bad.clone()));
        }
        self.namespaces.retain(|namespace| !namespace.is_empty());
        for namespace in &self.namespaces {
            if !namespace.starts_with('/') || namespace.contains(['?', '#', ',', ' ']) {
                return Err(ConfigError::Namespace(
                    namespace.clone(),
                    "expected a path such as '/orders'",
                ));
            }
            if namespace == "/" || namespace == "/chat" {
                return Err(ConfigError::Namespace(namespace.clone(), "it is built in"));
            }
        }
        self.namespaces.sort();
        self.namespaces.dedup();
        Ok(())
    }

    fn check_admin_ui(&self) -> Result<(), ConfigError> {
        if !self.admin_ui {
            return Ok(());
        }
        match (&self.admin_ui_password_hash, self.admin_ui_no_auth) {
            (Some(_), true) => return Err(ConfigError::AdminUiTwoLogins),
            (None, false) => return Err(ConfigError::AdminUiWithoutLogin),
            (None, true) if !self.host.is_loopback() => {
                return Err(ConfigError::AdminUiOpenHost(self.host));
            }
            (Some(hash), false) => {
                hash.expose()
                    .parse::<bcrypt::HashParts>()
                    .map_err(|error| ConfigError::AdminUiPasswordHash(error.to_string()))?;
            }
            (None, true) => {}
        }
        let namespace = &self.admin_ui_namespace;
        let refuse = |why| Err(ConfigError::AdminUiNamespace(namespace.clone(), why));
        if !namespace.starts_with('/') || namespace.contains(['?', '#', ',', ' ']) {
            return refuse("expected a path such as '/admin'");
        }
        if namespace == "/" || namespace == "/chat" || self.namespaces.contains(namespace) {
            return refuse("that namespace is already served");
        }
        Ok(())
    }

    /// Time the app has to answer one webhook.
    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }

    /// Port to bind, checked by [`Config::validated`].
    pub fn port(&self) -> u16 {
        u16::try_from(self.port).unwrap_or(3000)
    }

    /// Server ping interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    /// Time a client has to answer a ping.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    /// Time a client has to join a namespace after the handshake.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Time given to connections to close on shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// Time a connection has to send a request head, and a request its body.
    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_timeout_ms)
    }

    /// Time a kept-alive connection may stay idle between requests.
    pub fn keep_alive_timeout(&self) -> Duration {
        Duration::from_millis(self.keep_alive_timeout_ms)
    }

    /// Ticker interval, or `None` when the ticker is off.
    pub fn tick_interval(&self) -> Option<Duration> {
        (self.tick_interval_ms > 0).then(|| Duration::from_millis(self.tick_interval_ms))
    }

    /// Whether this node's own broadcasts and room changes travel in Node's format: on a plain
    /// (not cluster) Redis with `--redis-protocol node`.
    pub fn speaks_node_protocol(&self) -> bool {
        self.redis_url.is_some()
            && !self.redis_cluster_mode()
            && self.redis_protocol == RedisProtocol::Node
    }

    /// Whether `--redis-url` names a Redis Cluster.
    pub fn redis_cluster_mode(&self) -> bool {
        self.redis_cluster
            || self
                .redis_url
                .as_ref()
                .is_some_and(|url| url.expose().starts_with("redis+cluster://"))
    }

    /// Whether a transport is offered.
    pub fn allows(&self, transport: Transport) -> bool {
        self.transports.contains(&transport)
    }

    /// Whether any origin is allowed (`--cors-origin '*'`).
    pub fn any_origin(&self) -> bool {
        self.cors_origins.iter().any(|o| o == "*")
    }

    /// Whether the request origin may connect; requests without an `Origin` header always may.
    pub fn origin_allowed(&self, origin: Option<&HeaderValue>) -> bool {
        match origin {
            None => true,
            Some(_) if self.cors_origins.is_empty() || self.any_origin() => true,
            Some(origin) => self
                .cors_origins
                .iter()
                .any(|allowed| origin.as_bytes().eq_ignore_ascii_case(allowed.as_bytes())),
        }
    }
}

/// Whether `value` is a serialized origin: `scheme://host[:port]`, nothing after.
fn is_origin(value: &str) -> bool {
    let Ok(uri) = value.parse::<http::Uri>() else {
        return false;
    };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    // `http::Uri` reports an absent path as "/", so a trailing slash is checked on the text.
    let path_empty = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    scheme_ok && uri.host().is_some() && path_empty && !value.ends_with('/')
}

/// Whether `value` is an HTTP token (RFC 9110), as a subprotocol name must be.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let argv = std::iter::once("iorelay").chain(args.iter().copied());
        Config::parse_from_args(argv)
            .expect("arguments parse")
            .validated()
    }

    #[test]
    fn defaults_match_node_socket_io() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(config.path, "/socket.io/");
        assert_eq!(config.ping_interval_ms, 25_000);
        assert_eq!(config.ping_timeout_ms, 20_000);
        assert_eq!(config.connect_timeout_ms, 45_000);
        assert_eq!(config.max_http_buffer_size, 1_000_000);
        assert_eq!(
            config.transports,
            vec![Transport::Polling, Transport::Websocket]
        );
        assert!(!config.allow_eio3);
        assert_eq!(config.tick_interval_ms, 10_000);
    }

    #[test]
    fn origins_are_checked() {
        assert!(parse(&["--cors-origin", "https://example.com"]).is_ok());
        assert!(parse(&["--cors-origin", "http://localhost:5173"]).is_ok());
        assert_eq!(
            parse(&["--cors-origin", "example.com"]).unwrap_err(),
            ConfigError::Origin("example.com".into())
        );
        assert!(parse(&["--cors-origin", "https://example.com/path"]).is_err());
        assert_eq!(
            parse(&["--cors-origin", "*", "--cors-credentials"]).unwrap_err(),
            ConfigError::WildcardWithCredentials
        );
    }

    #[test]
    fn origin_allow_list_is_exact() {
        let config = parse(&["--cors-origin", "https://a.example"]).expect("valid");
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert!(config.origin_allowed(None));
        assert!(config.origin_allowed(Some(&header("https://a.example"))));
        assert!(!config.origin_allowed(Some(&header("https://b.example"))));
        assert!(!config.origin_allowed(Some(&header("https://a.example.evil"))));
    }

    #[test]
    fn bad_values_name_their_option() {
        assert_eq!(
            parse(&["--port", "70000"]).unwrap_err(),
            ConfigError::Port(70000)
        );
        assert_eq!(
            parse(&["--ping-timeout-ms", "0"]).unwrap_err(),
            ConfigError::ZeroDuration("ping-timeout-ms")
        );
        assert!(parse(&["--path", "socket.io"]).is_err());
    }

    #[test]
    fn recovery_is_off_by_default_with_node_options() {
        let config = parse(&[]).expect("valid");
        assert!(!config.connection_state_recovery);
        assert_eq!(config.recovery_max_disconnection_ms, 120_000);
        assert!(config.recovery_skip_middlewares);
        let config = parse(&[
            "--connection-state-recovery",
            "--recovery-max-disconnection-ms",
            "500",
            "--recovery-skip-middlewares",
            "false",
        ])
        .expect("valid");
        assert!(config.connection_state_recovery);
        assert_eq!(config.recovery_max_disconnection_ms, 500);
        assert!(!config.recovery_skip_middlewares);
        // With Redis, sessions and packets are kept there for every node.
        let shared = parse(&[
            "--connection-state-recovery",
            "--redis-url",
            "redis://127.0.0.1:6379",
        ])
        .expect("valid");
        assert!(shared.connection_state_recovery);
    }

    #[test]
    fn compression_and_parser_take_node_defaults_and_can_be_turned_off() {
        let config = parse(&[]).expect("valid");
        assert_eq!(config.parser, PacketParser::Default);
        assert!(config.http_compression);
        assert_eq!(config.http_compression_threshold, 1024);
        assert!(!config.per_message_deflate);
        let config = parse(&[
            "--parser",
            "msgpack",
            "--http-compression",
            "false",
            "--per-message-deflate",
        ])
        .expect("valid");
        assert_eq!(config.parser, PacketParser::Msgpack);
        assert!(!config.http_compression);
        assert!(config.per_message_deflate);
        let bare = parse(&["--http-compression"]).expect("valid");
        assert!(bare.http_compression);
    }

    #[test]
    fn conformance_profile_uses_the_test_suite_timings() {
        let config = parse(&["--profile", "conformance"]).expect("valid");
        assert_eq!(config.ping_interval_ms, 300);
        assert_eq!(config.ping_timeout_ms, 200);
        assert_eq!(config.connect_timeout_ms, 1_000);
        assert_eq!(config.tick_interval(), None);
        assert_eq!(config.worker_threads, 1);
        let threads = ["--profile", "conformance", "--worker-threads", "2"];
        assert_eq!(parse(&threads).expect("valid").worker_threads, 2);
    }

    #[test]
    fn client_suite_profile_uses_the_fixture_settings_and_keeps_the_port() {
        let config = parse(&["--profile", "client-suite", "--port", "3210"]).expect("valid");
        assert_eq!(config.ping_interval_ms, 2_000);
        assert_eq!(config.ping_timeout_ms, 20_000);
        assert_eq!(config.connect_timeout_ms, 45_000);
        assert!(config.connection_state_recovery);
        assert_eq!(config.tick_interval(), None);
        assert_eq!(config.port, 3210);
        let default_port = parse(&[]).expect("valid").port;
        assert_eq!(
            parse(&["--profile", "client-suite"]).expect("valid").port,
            default_port
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config =
            parse(&["--auth-token", "hunter2", "--redis-url", "redis://:pw1@h:1"]).expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("pw1"),
            "{debug}"
        );
        assert_eq!(
            parse(&["--auth-token", "a", "--auth-secret", "b"]).unwrap_err(),
            ConfigError::TwoAuthModes
        );
    }

    #[test]
    fn plain_websocket_options_are_checked() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(config.ws_path, "/ws");
        assert_eq!(config.ws_protocols, ["echo-protocol"]);
        assert!(matches!(
            parse(&["--ws-path", "ws"]),
            Err(ConfigError::WsPath(..))
        ));
        assert!(matches!(
            parse(&["--ws-path", "/"]),
            Err(ConfigError::WsPath(..))
        ));
        assert!(matches!(
            parse(&["--ws-path", "/socket.io/ws"]),
            Err(ConfigError::WsPath(..))
        ));
        assert_eq!(
            parse(&["--ws-protocol", "a b"]).unwrap_err(),
            ConfigError::WsProtocol("a b".into())
        );
        let none = parse(&["--ws-protocol", ""]).expect("valid");
        assert!(none.ws_protocols.is_empty());
    }

    #[test]
    fn connection_limits_are_checked() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(config.http_header_timeout_ms, 10_000);
        assert_eq!(config.keep_alive_timeout_ms, 5_000);
        assert_eq!(config.max_connections_per_ip, 4_096);
        assert!(config.trust_proxy.is_empty());
        assert_eq!(
            parse(&["--max-connections-per-ip", "0"]).unwrap_err(),
            ConfigError::ZeroLimit("max-connections-per-ip")
        );
        assert_eq!(
            parse(&["--http-header-timeout-ms", "0"]).unwrap_err(),
            ConfigError::ZeroDuration("http-header-timeout-ms")
        );
        let proxies = parse(&["--trust-proxy", "10.0.0.0/8,::1"]).expect("valid");
        let [network, loopback] = proxies.trust_proxy[..] else {
            panic!("two proxies: {:?}", proxies.trust_proxy);
        };
        assert!(network.contains("10.1.2.3".parse().expect("ip")));
        assert!(!network.contains("11.0.0.1".parse().expect("ip")));
        assert!(loopback.contains("::1".parse().expect("ip")));
        assert!(!loopback.contains("127.0.0.1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<ProxyNetwork>().is_err());
        assert!("proxy".parse::<ProxyNetwork>().is_err());
        let mapped: ProxyNetwork = "127.0.0.1".parse().expect("valid");
        assert!(mapped.contains("::ffff:127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn admin_ui_needs_a_login_or_a_loopback_host() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let hash = hash.as_str();
        let config = parse(&["--admin-ui", "--admin-ui-password-hash", hash]).expect("valid");
        assert_eq!(config.admin_ui_mode, AdminUiMode::Development);
        assert_eq!(config.admin_ui_username, "admin");
        assert_eq!(config.admin_ui_namespace, "/admin");
        assert!(
            !format!("{config:?}").contains(hash),
            "the hash is a secret"
        );
        assert_eq!(
            parse(&["--admin-ui"]).unwrap_err(),
            ConfigError::AdminUiWithoutLogin
        );
        assert_eq!(
            parse(&["--admin-ui", "--admin-ui-no-auth"]).unwrap_err(),
            ConfigError::AdminUiOpenHost("0.0.0.0".parse().expect("ip"))
        );
        assert!(parse(&["--admin-ui", "--admin-ui-no-auth", "--host", "127.0.0.1"]).is_ok());
        assert!(parse(&["--admin-ui", "--admin-ui-no-auth", "--host", "::1"]).is_ok());
        assert!(matches!(
            parse(&["--admin-ui", "--admin-ui-password-hash", "hunter2"]),
            Err(ConfigError::AdminUiPasswordHash(_))
        ));
        assert_eq!(
            parse(&[
                "--admin-ui",
                "--admin-ui-password-hash",
                hash,
                "--admin-ui-no-auth"
            ])
            .unwrap_err(),
            ConfigError::AdminUiTwoLogins
        );
        assert!(matches!(
            parse(&[
                "--admin-ui",
                "--admin-ui-password-hash",
                hash,
                "--admin-ui-namespace",
                "/chat"
            ]),
            Err(ConfigError::AdminUiNamespace(..))
        ));
        assert!(
            parse(&["--admin-ui-no-auth"]).is_ok(),
            "ignored without --admin-ui"
        );
    }

    #[test]
    fn path_gets_a_trailing_slash() {
        assert_eq!(parse(&["--path", "/rt"]).expect("valid").path, "/rt/");
    }
}
