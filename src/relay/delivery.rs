//! [`Relay`]: the one service both transports hand their work to. It admits clients, spends
//! their event budgets, and delivers a message to local Socket.IO members, local plain members
//! and other nodes.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide_core::adapter::errors::BroadcastError;
use tokio_util::task::TaskTracker;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value as Json;

use super::admin_feed::AdminFeed;
use super::admission::{Admissions, Turnover};
use super::auth::Authenticator;
use super::binary;
use super::client::ClientState;
use super::events::{BuiltinEvent, EventRoutes, NAMESPACES, Route};
use super::payload::{ChatMessage, EventArgs};
use super::plain_members::{PlainMembers, Selection};
use super::rate::{RateLimit, Verdict};
use super::remote_members::RemoteMembers;
use super::webhook::{EmitItem, Webhook, WebhookSetupError};
use crate::config::{AdminUiMode, Config, Secret};
use crate::metrics::Metrics;

/// Who an emit reaches, in Socket.IO's terms: the members of `to` (rooms or socket ids; the
/// whole namespace when empty), less the members of `except`, less the socket `skip` (the
/// sender, unless it is included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets<'a> {
    /// Rooms or socket ids.
    pub to: &'a [String],
    /// Rooms or socket ids left out.
    pub except: &'a [String],
    /// The socket left out.
    pub skip: Option<&'a str>,
}

/// Per-client limits, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rooms one client may be in at once.
    pub max_rooms_per_socket: usize,
    /// Longest room name, in characters.
    pub max_room_name_chars: usize,
}

/// The rules, counters and members every namespace and transport of a node share.
#[derive(Debug)]
pub struct Relay {
    /// Which handler takes each event: built in, the app, or none.
    pub events: EventRoutes,
    /// The app's event webhook, when `--webhook-url` is set.
    pub webhook: Option<Webhook>,
    /// Webhook calls nothing waits on (`disconnect`); shutdown waits for them.
    pub background: TaskTracker,
    /// Whether there is an app (a webhook or the server API), the Admin UI, or Node servers and
    /// emitters on a shared Redis: then every socket is in a room named after its id, as in
    /// Node socket.io, so they can address it, and keeps its handshake to show.
    pub id_rooms: bool,
    /// Handshake authentication.
    pub auth: Authenticator,
    /// Per-client limits.
    pub limits: Limits,
    /// The per-client event rate limit.
    pub rate: RateLimit,
    /// The connection limit, applied to Socket.IO handshakes and plain upgrades alike.
    pub admissions: Admissions,
    /// This node's plain WebSocket clients and their rooms.
    pub plain: Arc<PlainMembers>,
    /// What the node counts, for `GET /metrics` and the Admin UI.
    pub metrics: Arc<Metrics>,
    /// What the Admin UI hears of the sockets; `None` without `--admin-ui`.
    pub admin: Option<AdminFeed>,
    /// Connection state recovery's settings; `None` without `--connection-state-recovery`.
    pub recovery: Option<super::recovery::RecoverySettings>,
    /// Other servers' room members, asked in Node's format (`--redis-protocol node`), so that
    /// room sizes count Node servers' sockets too; unset, sizes come from the adapter.
    pub remote_members: OnceLock<Arc<dyn RemoteMembers>>,
}

impl Relay {
    /// The relay `config` describes.
    pub fn from_config(config: &Config) -> Result<Arc<Self>, WebhookSetupError> {
        let builtin = config
            .builtin_events
            .iter()
            .filter_map(|name| BuiltinEvent::from_name(name))
            .collect();
        let events = EventRoutes::new(
            builtin,
            // As `Webhook::from_config` decides, before the webhook is built with its metrics.
            config.webhook_url.is_some() && config.webhook_secret.is_some(),
            config.namespaces.clone(),
        );
        let served = NAMESPACES.iter().map(|namespace| namespace.path);
        let admin = config
            .admin_ui
            .then_some(config.admin_ui_namespace.as_str());
        let metrics = Arc::new(Metrics::new(
            served
                .chain(events.app_namespaces().iter().map(String::as_str))
                .chain(admin),
        ));
        let plain = Arc::new(PlainMembers::new(
            config.max_buffer_size,
            config.max_rooms_per_socket,
            metrics.clone(),
        ));
        let webhook = Webhook::from_config(config, &plain.node, metrics.webhook())?;
        Ok(Arc::new(Relay {
            events,
            // The Admin UI, Node's emitter and Node servers address one socket as Node does, by
            // the room named after its id.
            id_rooms: webhook.is_some()
                || config.api_key.is_some()
                || config.admin_ui
                || (config.redis_url.is_some() && !config.redis_cluster_mode()),
            background: TaskTracker::new(),
            webhook,
            auth: Authenticator::new(
                config.auth_token.as_ref().map(Secret::expose),
                config.auth_secret.as_ref().map(Secret::expose),
            ),
            limits: Limits {
                max_rooms_per_socket: config.max_rooms_per_socket,
                max_room_name_chars: config.max_room_name_length,
            },
            rate: RateLimit::new(config.max_events_per_second),
            admissions: Admissions::new(config.max_connections, config.connect_timeout()),
            plain,
            metrics,
            admin: config
                .admin_ui
                .then(|| AdminFeed::new(config.admin_ui_mode == AdminUiMode::Development)),
            recovery: super::recovery::RecoverySettings::from_config(config),
            remote_members: OnceLock::new(),
        }))
    }

    /// This node's id, as other nodes and the app see it.
    pub fn node_id(&self) -> &str {
        &self.plain.node
    }

    /// Sends `event` with `args` to the members `targets` picks: Socket.IO members on every
    /// node and, on `/`, plain members on every node.
    pub async fn emit<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        namespace: &str,
        event: &str,
        args: &EventArgs,
        targets: Targets<'_>,
    ) -> Result<(), BroadcastError> {
        let Targets { to, except, skip } = targets;
        if namespace == "/" {
            let selection = Selection {
                rooms: to.to_vec(),
                except: except.to_vec(),
                skip: skip.map(str::to_owned),
            };
            if let Some(frame) = plain_event_frame(event, args) {
                self.plain.deliver_frame(selection, frame);
            }
        }
        let Some(mut sockets) = io.of(namespace) else {
            return Ok(());
        };
        if !to.is_empty() {
            sockets = sockets.to(to.to_vec());
        }
        // The sender is in the room named after its id (`id_rooms`), so leaving it out is one
        // more exception.
        let mut except = except.to_vec();
        except.extend(skip.map(str::to_owned));
        if !except.is_empty() {
            sockets = sockets.except(except);
        }
        sockets.emit(event, args).await
    }

    /// An app's `emit` item that goes to rooms or the namespace (not to the sender alone), on
    /// every node; `sender` is left out unless the item says `include_self`. Failures are
    /// logged: the app's answer has already been accepted.
    pub async fn emit_item<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        namespace: &str,
        sender: &str,
        item: &EmitItem,
    ) {
        let args = match binary::args_from_json(&item.args) {
            Ok(args) => EventArgs(args),
            Err(error) => {
                tracing::warn!(sid = sender, event = item.event, %error, "app's emit dropped");
                return;
            }
        };
        let targets = Targets {
            to: item.to.as_deref().unwrap_or_default(),
            except: &item.except,
            skip: (!item.include_self).then_some(sender),
        };
        if let Err(error) = self.emit(io, namespace, &item.event, &args, targets).await {
            tracing::warn!(sid = sender, event = item.event, %error, "app's emit not delivered to every member");
        }
    }

    /// Clients connected to this node right now: Socket.IO sockets and plain clients.
    pub fn live_connections(&self) -> usize {
        self.admissions.sockets() + self.plain.len()
    }

    /// Admits one more connection, or refuses it when the node is full.
    pub fn try_admit(&self, now: Instant) -> bool {
        self.admissions.try_admit(|| self.live_connections(), now)
    }

    /// Connections admitted and ended since startup.
    pub fn turnover(&self, now: Instant) -> Turnover {
        self.admissions.turnover(|| self.live_connections(), now)
    }

    /// Counts a Socket.IO socket that has joined its namespace among the live connections.
    pub fn socket_connected(&self, client: &ClientState) {
        self.admissions.take_seat(&client.seat);
    }

    /// Gives back the place of a Socket.IO socket that has left its namespace.
    pub fn socket_disconnected(&self, client: &ClientState) {
        self.admissions.leave_seat(&client.seat);
    }

    /// Counts one event of `client` (whose id is `sid`), which `route` takes, against its
    /// budget.
    pub fn spend(&self, client: &ClientState, sid: &str, route: Route) -> Verdict {
        client.metrics.received(route.metric_label());
        let verdict = self.rate.spend(&mut client.budget(), Instant::now());
        if verdict != Verdict::Allowed {
            client.metrics.rate_limited();
        }
        match verdict {
            Verdict::Allowed => {}
            Verdict::Dropped => {
                tracing::debug!(sid, transport = ?client.transport, refused_total = self.metrics.rate_limited_total(), "event over the rate limit refused");
            }
            Verdict::Flooding => {
                tracing::warn!(sid, transport = ?client.transport, limit = %self.rate.error(), "disconnecting a client that keeps flooding events");
            }
        }
        verdict
    }

    /// Sends `message` to its room of `namespace` (or to the whole namespace): to Socket.IO
    /// members on every node and, where the namespace shares its rooms with plain WebSocket
    /// clients, to plain members on every node.
    pub async fn deliver_chat<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        namespace: &str,
        shares_plain_rooms: bool,
        message: &ChatMessage,
    ) -> Result<(), BroadcastError> {
        if shares_plain_rooms {
            self.plain.deliver(message);
        }
        let Some(sockets) = io.of(namespace) else {
            return Ok(());
        };
        match &message.room {
            // `within` includes the sender when it is a member; outsiders never see room traffic.
            Some(room) => sockets.within(room.clone()).emit("chat", message).await,
            None => sockets.emit("chat", message).await,
        }
    }

    /// Members of a room: Socket.IO sockets on every node, plus this node's plain clients where
    /// the namespace shares its rooms with them (plain members count on their own node only).
    pub async fn room_size<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        namespace: &str,
        shares_plain_rooms: bool,
        room: &str,
    ) -> usize {
        let plain = if shares_plain_rooms {
            self.plain.room_size(room)
        } else {
            0
        };
        let Some(sockets) = io.of(namespace) else {
            return plain;
        };
        let Some(remote) = self.remote_members.get() else {
            return room_members(sockets.within(room.to_owned()), room)
                .await
                .len()
                + plain;
        };
        let mut ids: HashSet<String> = room_members(sockets.within(room.to_owned()).local(), room)
            .await
            .into_iter()
            .collect();
        ids.extend(remote.socket_ids(namespace, &[room.to_owned()]).await);
        ids.len() + plain
    }
}

/// Socket ids of a room's Socket.IO members across every node, sorted; `members` is the room
/// as a broadcast target (`socket.within(room)` or `io.of(ns).within(room)`).
pub async fn room_members<A: Adapter>(members: BroadcastOperators<A>, room: &str) -> Vec<String> {
    match members.fetch_sockets().await {
        Ok(sockets) => {
            let mut ids: Vec<String> = sockets.iter().map(|s| s.data().id.to_string()).collect();
            ids.sort_unstable();
            ids
        }
        Err(error) => {
            tracing::warn!(room, %error, "could not list room members");
            Vec::new()
        }
    }
}

/// What a plain client's `data` carries for an event's (or an ack's) arguments: the first one
/// alone, `null` for none, or the array when there are several.
pub fn plain_data(args: &[rmpv::Value]) -> Json {
    match args {
        [] => Json::Null,
        [only] => binary::to_json(only),
        several => Json::Array(binary::args_to_json(several)),
    }
}

/// An event as plain WebSocket clients receive it: `{"event": name, "data": ...}`.
pub fn plain_event_frame(event: &str, args: &EventArgs) -> Option<Utf8Bytes> {
    let frame = serde_json::json!({ "event": event, "data": plain_data(&args.0) });
    serde_json::to_string(&frame).ok().map(Utf8Bytes::from)
}
