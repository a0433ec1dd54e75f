//! What iorelay keeps per client, created once when the client connects.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value as Json};
use socketioxide::TransportType;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::admission::Seat;
use super::auth::UserId;
use super::events::Namespace;
use super::rate::EventBudget;
use super::turnstile::Turnstile;
use super::webhook::{Answer, Handshake, SocketView};
use crate::metrics::NamespaceMetrics;

/// The transport a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Socket.IO, over long-polling or WebSocket.
    SocketIo,
    /// A plain WebSocket carrying JSON frames.
    PlainWebSocket,
}

/// One client's state: who it is, where it is, and what it has spent.
#[derive(Debug)]
pub struct ClientState {
    /// The authenticated user (the JWT `sub`), when authentication says who.
    pub user: Option<UserId>,
    /// How the client is connected.
    pub transport: Transport,
    /// The namespace's built-in behaviour; `None` outside the default profile's namespaces.
    pub namespace: Option<&'static Namespace>,
    /// Its place among the node's live connections.
    pub seat: Seat,
    /// Its events' order.
    pub turn: Arc<Turnstile>,
    /// Its address, for the log lines.
    pub address: Box<str>,
    /// Its namespace's counters, resolved once at connect.
    pub metrics: Arc<NamespaceMetrics>,
    budget: Mutex<EventBudget>,
    /// What only an app (a webhook or the server API) reads; `None` without one, so that an
    /// idle client costs no more than the log lines need.
    app: Option<Box<AppSide>>,
}

/// The part of a client's state the app sees and sets.
#[derive(Debug)]
struct AppSide {
    /// What the client sent when it connected.
    handshake: Handshake,
    /// `socket.data`, as the app's webhook answers set it.
    data: Mutex<Map<String, Json>>,
    /// The part of a connect answer that can only apply once the client knows it is
    /// connected (its emits, a disconnect).
    after_connect: Mutex<Option<Answer>>,
}

impl ClientState {
    /// The state of a client that has just been admitted.
    ///
    /// With `app` off (neither a webhook nor the server API), only the handshake's address is
    /// kept.
    pub fn new(
        transport: Transport,
        namespace: Option<&'static Namespace>,
        user: Option<UserId>,
        handshake: Handshake,
        app: bool,
        metrics: Arc<NamespaceMetrics>,
    ) -> Self {
        let address = handshake.address.as_str().into();
        ClientState {
            user,
            transport,
            namespace,
            seat: Seat::default(),
            turn: Arc::default(),
            address,
            metrics,
            budget: Mutex::new(EventBudget::new(Instant::now())),
            app: app.then(|| {
                Box::new(AppSide {
                    handshake,
                    data: Mutex::default(),
                    after_connect: Mutex::default(),
                })
            }),
        }
    }

    /// What the client sent when it connected, as the app sees it.
    pub fn handshake(&self) -> Handshake {
        match &self.app {
            Some(app) => app.handshake.clone(),
            None => Handshake {
                address: self.address.to_string(),
                ..Handshake::default()
            },
        }
    }

    /// `socket.data` now.
    pub fn data(&self) -> Map<String, Json> {
        self.app
            .as_ref()
            .map(|app| lock(&app.data).clone())
            .unwrap_or_default()
    }

    /// Shallow-merges `update` into `socket.data`: its top-level keys replace the old ones.
    pub fn merge_data(&self, update: Map<String, Json>) {
        if let Some(app) = &self.app {
            lock(&app.data).extend(update);
        }
    }

    /// Keeps the rest of a connect answer for when the client is connected.
    pub fn defer(&self, answer: Answer) {
        if let Some(app) = &self.app {
            *lock(&app.after_connect) = Some(answer);
        }
    }

    /// The rest of the connect answer, once.
    pub fn take_deferred(&self) -> Option<Answer> {
        self.app
            .as_ref()
            .and_then(|app| lock(&app.after_connect).take())
    }

    /// The user id as chat messages carry it.
    pub fn user_id(&self) -> Option<String> {
        self.user.as_ref().map(|user| user.0.clone())
    }

    /// The client's event budget.
    pub fn budget(&self) -> MutexGuard<'_, EventBudget> {
        lock(&self.budget)
    }

    /// Whether the client's rooms are shared with plain WebSocket clients.
    pub fn shares_plain_rooms(&self) -> bool {
        self.transport == Transport::PlainWebSocket
            || self.namespace.is_some_and(|ns| ns.shares_plain_rooms)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while holding it; the value is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Socket.IO socket as the app's handlers would see it.
pub fn socket_view<A: Adapter>(socket: &SocketRef<A>, client: &ClientState) -> SocketView {
    SocketView {
        id: socket.id.to_string(),
        rooms: socket
            .rooms()
            .into_iter()
            .map(|room| room.to_string())
            .collect(),
        data: client.data(),
        user: client.user_id(),
        transport: match socket.transport_type() {
            TransportType::Polling => "polling",
            TransportType::Websocket => "websocket",
        },
        handshake: client.handshake(),
    }
}
