//! What iorelay keeps per client, created once when the client connects.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::admission::Seat;
use super::auth::UserId;
use super::events::Namespace;
use super::rate::EventBudget;
use super::turnstile::Turnstile;

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
    budget: Mutex<EventBudget>,
}

impl ClientState {
    /// The state of a client that has just been admitted.
    pub fn new(
        transport: Transport,
        namespace: Option<&'static Namespace>,
        user: Option<UserId>,
    ) -> Self {
        ClientState {
            user,
            transport,
            namespace,
            seat: Seat::default(),
            turn: Arc::default(),
            budget: Mutex::new(EventBudget::new(Instant::now())),
        }
    }

    /// The user id as chat messages carry it.
    pub fn user_id(&self) -> Option<String> {
        self.user.as_ref().map(|user| user.0.clone())
    }

    /// The client's event budget.
    pub fn budget(&self) -> MutexGuard<'_, EventBudget> {
        // A poisoned lock only means a panic elsewhere while holding it; the count is still usable.
        self.budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the client's rooms are shared with plain WebSocket clients.
    pub fn shares_plain_rooms(&self) -> bool {
        self.transport == Transport::PlainWebSocket
            || self.namespace.is_some_and(|ns| ns.shares_plain_rooms)
    }
}
