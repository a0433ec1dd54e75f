//! The plain WebSocket clients of this node, their outgoing queues and the rooms they are in.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::ws::{Message, Utf8Bytes};
use serde::{Deserialize, Serialize};
use socketioxide::socket::Sid;
use tokio::sync::{Notify, mpsc, watch};

use super::chat::RoomLimitError;
use super::payload::ChatMessage;
use crate::metrics::Metrics;

/// Why the server ends a plain client's connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Its outgoing queue was full: it is not reading fast enough.
    QueueFull,
    /// The server is shutting down.
    Shutdown,
    /// The app disconnected it through the server API.
    Disconnect,
}

/// What goes to the other nodes' plain members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Publication {
    /// A chat message, to the members of its room.
    Chat {
        /// The message.
        chat: ChatMessage,
    },
    /// Any other event, as a frame, to the members a selection picks.
    Frame {
        /// Who receives it.
        selection: Selection,
        /// The frame's text.
        frame: String,
    },
}

/// Which plain members an event is for, in Socket.IO's terms: members of any of `rooms` (a
/// client's own id counts as a room; every client when `rooms` is empty), less members of any
/// of `except`, less the client `skip` (the sender).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Rooms or client ids; empty means everyone.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Rooms or client ids left out.
    #[serde(default)]
    pub except: Vec<String>,
    /// The sender, left out.
    #[serde(default)]
    pub skip: Option<String>,
}

/// The plain WebSocket clients connected to this node and their rooms, which are the rooms of
/// namespace `/`: Socket.IO members are reached through the adapter, plain members from here.
///
/// Delivery never waits: each client has a bounded queue, and a client whose queue is full is
/// evicted instead of slowing the others down.
pub struct PlainMembers {
    metrics: Arc<Metrics>,
    /// This node's id in cross-node messages, so that a node skips its own publications.
    pub(super) node: String,
    queue_size: usize,
    max_rooms: usize,
    registry: RwLock<Registry>,
    /// Publications for the other nodes, set when rooms are shared through Redis.
    pub(super) remote: OnceLock<mpsc::Sender<Publication>>,
    emptied: Notify,
}

#[derive(Default)]
struct Registry {
    closing: bool,
    clients: HashMap<Sid, Member>,
    rooms: HashMap<String, HashSet<Sid>>,
}

impl Registry {
    /// Members of a room, or the client whose id it is.
    fn members_of(&self, room: &str) -> Vec<Sid> {
        let mut ids: Vec<Sid> = self
            .rooms
            .get(room)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        if let Ok(id) = room.parse::<Sid>()
            && self.clients.contains_key(&id)
        {
            ids.push(id);
        }
        ids
    }

    fn select(&self, selection: &Selection) -> Vec<Sid> {
        let mut ids: HashSet<Sid> = if selection.rooms.is_empty() {
            self.clients.keys().copied().collect()
        } else {
            selection
                .rooms
                .iter()
                .flat_map(|room| self.members_of(room))
                .collect()
        };
        for room in &selection.except {
            for id in self.members_of(room) {
                ids.remove(&id);
            }
        }
        if let Some(skip) = selection
            .skip
            .as_ref()
            .and_then(|id| id.parse::<Sid>().ok())
        {
            ids.remove(&skip);
        }
        ids.into_iter().collect()
    }
}

struct Member {
    outbox: mpsc::Sender<Message>,
    evict: watch::Sender<Option<Eviction>>,
    rooms: HashSet<String>,
}

/// A client's place in the hub.
pub struct Registration {
    /// Its id, shaped like a Socket.IO socket id.
    pub id: Sid,
    /// Where frames for it are queued (the hub keeps another handle).
    pub sender: mpsc::Sender<Message>,
    /// The frames to write to it.
    pub outbox: mpsc::Receiver<Message>,
    /// Set when the server wants the connection closed.
    pub evicted: watch::Receiver<Option<Eviction>>,
}

impl PlainMembers {
    /// A hub whose clients queue at most `queue_size` frames and join at most `max_rooms` rooms.
    ///
    /// Broadcast sizes and frames dropped on full queues are counted in `metrics`.
    pub fn new(queue_size: usize, max_rooms: usize, metrics: Arc<Metrics>) -> Self {
        PlainMembers {
            metrics,
            node: Sid::new().to_string(),
            queue_size: queue_size.max(1),
            max_rooms,
            registry: RwLock::new(Registry::default()),
            remote: OnceLock::new(),
            emptied: Notify::new(),
        }
    }

    /// Adds a client; `None` once the hub is shutting down.
    pub fn register(&self) -> Option<Registration> {
        let (sender, outbox) = mpsc::channel(self.queue_size);
        let (evict, evicted) = watch::channel(None);
        let mut registry = self.write();
        if registry.closing {
            return None;
        }
        let id = Sid::new();
        let member = Member {
            outbox: sender.clone(),
            evict,
            rooms: HashSet::new(),
        };
        registry.clients.insert(id, member);
        Some(Registration {
            id,
            sender,
            outbox,
            evicted,
        })
    }

    /// Removes a client and its room memberships.
    pub fn unregister(&self, id: &Sid) {
        let mut registry = self.write();
        if let Some(member) = registry.clients.remove(id) {
            for room in member.rooms {
                remove_from_room(&mut registry.rooms, &room, id);
            }
        }
        if registry.clients.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// Clients connected right now.
    pub fn len(&self) -> usize {
        self.read().clients.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a client to a room, unless it is already in as many rooms as allowed.
    pub fn join(&self, id: &Sid, room: &str) -> Result<(), RoomLimitError> {
        let mut registry = self.write();
        let Some(member) = registry.clients.get_mut(id) else {
            return Ok(());
        };
        if !member.rooms.contains(room) && member.rooms.len() >= self.max_rooms {
            return Err(RoomLimitError(self.max_rooms));
        }
        member.rooms.insert(room.to_owned());
        registry
            .rooms
            .entry(room.to_owned())
            .or_default()
            .insert(*id);
        Ok(())
    }

    /// The rooms plain members are in on this node.
    pub fn room_names(&self) -> Vec<String> {
        self.read().rooms.keys().cloned().collect()
    }

    /// The rooms a client is in, its own id room first, as Socket.IO lists them.
    pub fn rooms_of(&self, id: &Sid) -> Vec<String> {
        let registry = self.read();
        let mut rooms = vec![id.to_string()];
        if let Some(member) = registry.clients.get(id) {
            rooms.extend(member.rooms.iter().cloned());
        }
        rooms
    }

    /// Removes a client from a room; returns whether it was a member.
    pub fn leave(&self, id: &Sid, room: &str) -> bool {
        let mut registry = self.write();
        let was_member = registry
            .clients
            .get_mut(id)
            .is_some_and(|member| member.rooms.remove(room));
        if was_member {
            remove_from_room(&mut registry.rooms, room, id);
        }
        was_member
    }

    /// Plain members of a room on this node.
    pub fn room_size(&self, room: &str) -> usize {
        self.read().rooms.get(room).map_or(0, HashSet::len)
    }

    /// Sends a chat message to the plain members of its room on this node (to every plain client
    /// when it has no room).
    pub fn deliver_local(&self, message: &ChatMessage) {
        let registry = self.read();
        let recipients: Vec<(&Sid, &Member)> = match &message.room {
            Some(room) => registry
                .rooms
                .get(room)
                .into_iter()
                .flatten()
                .filter_map(|id| registry.clients.get_key_value(id))
                .collect(),
            None => registry.clients.iter().collect(),
        };
        // Most messages have no plain recipient on this node: serialise only when one is there.
        if recipients.is_empty() {
            return;
        }
        let Some(frame) = chat_frame(message) else {
            return;
        };
        self.metrics.broadcast(recipients.len());
        for (id, member) in recipients {
            offer(id, member, &frame, &self.metrics);
        }
    }

    /// Sends `frame` to the plain members `selection` picks on this node.
    pub fn deliver_frame_local(&self, selection: &Selection, frame: &Utf8Bytes) {
        let registry = self.read();
        let recipients = registry.select(selection);
        if !recipients.is_empty() {
            self.metrics.broadcast(recipients.len());
        }
        for id in recipients {
            if let Some(member) = registry.clients.get(&id) {
                offer(&id, member, frame, &self.metrics);
            }
        }
    }

    /// Sends `frame` to one plain client of this node; `false` when it is not here.
    pub fn send_to(&self, id: &str, frame: &Utf8Bytes) -> bool {
        let registry = self.read();
        let Some((id, member)) = id
            .parse::<Sid>()
            .ok()
            .and_then(|id| registry.clients.get_key_value(&id))
        else {
            return false;
        };
        offer(id, member, frame, &self.metrics);
        true
    }

    /// Adds the members `selection` picks to `rooms`, up to each one's room limit.
    pub fn join_selected(&self, selection: &Selection, rooms: &[String]) {
        let ids = self.read().select(selection);
        for id in ids {
            for room in rooms {
                if let Err(error) = self.join(&id, room) {
                    tracing::info!(sid = %id, room, %error, "plain WebSocket client not added to a room");
                }
            }
        }
    }

    /// Removes the members `selection` picks from `rooms`.
    pub fn leave_selected(&self, selection: &Selection, rooms: &[String]) {
        let ids = self.read().select(selection);
        for id in ids {
            for room in rooms {
                self.leave(&id, room);
            }
        }
    }

    /// Closes the connections of the members `selection` picks.
    pub fn disconnect_selected(&self, selection: &Selection) {
        let registry = self.read();
        for id in registry.select(selection) {
            if let Some(member) = registry.clients.get(&id) {
                member.evict.send_replace(Some(Eviction::Disconnect));
            }
        }
    }

    /// Sends one text frame to every plain client of this node.
    pub fn broadcast_text(&self, text: impl Into<Utf8Bytes>) {
        let frame = text.into();
        let registry = self.read();
        if !registry.clients.is_empty() {
            self.metrics.broadcast(registry.clients.len());
        }
        registry
            .clients
            .iter()
            .for_each(|(id, m)| offer(id, m, &frame, &self.metrics));
    }

    /// Closes every connection and waits until each client is gone; refuses new ones meanwhile.
    pub async fn close_all(&self) {
        loop {
            let emptied = self.emptied.notified();
            {
                let mut registry = self.write();
                registry.closing = true;
                if registry.clients.is_empty() {
                    return;
                }
                for member in registry.clients.values() {
                    member.evict.send_replace(Some(Eviction::Shutdown));
                }
            }
            emptied.await;
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        // A poisoned lock only means a panic elsewhere while holding it; the maps are still usable.
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for PlainMembers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMembers")
            .field("clients", &self.len())
            .finish_non_exhaustive()
    }
}

/// A chat message as plain clients receive it: `{"event":"chat", ...the message's fields}`.
#[derive(Serialize)]
struct ChatFrame<'a> {
    event: &'static str,
    #[serde(flatten)]
    message: &'a ChatMessage,
}

fn chat_frame(message: &ChatMessage) -> Option<Utf8Bytes> {
    let frame = ChatFrame {
        event: "chat",
        message,
    };
    match serde_json::to_string(&frame) {
        Ok(text) => Some(text.into()),
        Err(error) => {
            tracing::warn!(%error, "chat frame not serialisable");
            None
        }
    }
}

/// Queues a frame for one client without waiting; a full queue evicts it.
fn offer(id: &Sid, member: &Member, frame: &Utf8Bytes, metrics: &Metrics) {
    match member.outbox.try_send(Message::Text(frame.clone())) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics.dropped_queue_full();
            if member.evict.borrow().is_none() {
                tracing::warn!(sid = %id, "plain WebSocket client not keeping up: closing it");
                member.evict.send_replace(Some(Eviction::QueueFull));
            }
        }
        // The client is on its way out.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

fn remove_from_room(rooms: &mut HashMap<String, HashSet<Sid>>, room: &str, id: &Sid) {
    if let Some(members) = rooms.get_mut(room) {
        members.remove(id);
        if members.is_empty() {
            rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(room: Option<&str>) -> ChatMessage {
        ChatMessage {
            room: room.map(str::to_owned),
            text: "hi".into(),
            from: "x".into(),
            user: None,
            ts: 1,
        }
    }

    fn test_metrics() -> Arc<Metrics> {
        Arc::new(Metrics::new(["/"]))
    }

    #[test]
    fn rooms_follow_joins_leaves_and_departures() {
        let hub = PlainMembers::new(8, 2, test_metrics());
        let a = hub.register().expect("open");
        let b = hub.register().expect("open");
        hub.join(&a.id, "r").expect("room");
        hub.join(&b.id, "r").expect("room");
        hub.join(&a.id, "r").expect("joining twice is fine");
        assert_eq!(hub.room_size("r"), 2);
        hub.join(&a.id, "s").expect("second room");
        assert!(hub.join(&a.id, "t").is_err(), "two rooms at most");
        assert!(hub.leave(&b.id, "r"));
        assert!(!hub.leave(&b.id, "r"));
        hub.unregister(&a.id);
        assert_eq!(hub.room_size("r"), 0);
        assert_eq!(hub.len(), 1);
    }

    #[test]
    fn room_messages_reach_members_only() {
        let hub = PlainMembers::new(8, 10, test_metrics());
        let mut member = hub.register().expect("open");
        let mut outsider = hub.register().expect("open");
        hub.join(&member.id, "r").expect("room");
        hub.deliver_local(&chat(Some("r")));
        let Ok(Message::Text(text)) = member.outbox.try_recv() else {
            panic!("the member gets the chat");
        };
        assert!(
            text.as_str().starts_with(r#"{"event":"chat","room":"r""#),
            "{text}"
        );
        assert!(outsider.outbox.try_recv().is_err());
        hub.deliver_local(&chat(None));
        assert!(
            outsider.outbox.try_recv().is_ok(),
            "room-less chat reaches everyone"
        );
    }

    #[test]
    fn chat_frames_have_the_documented_shape() {
        let message = ChatMessage {
            room: None,
            text: "hi".into(),
            from: "abc".into(),
            user: None,
            ts: 5,
        };
        assert_eq!(
            chat_frame(&message).expect("json").as_str(),
            r#"{"event":"chat","room":null,"text":"hi","from":"abc","ts":5}"#
        );
    }

    #[test]
    fn a_full_queue_evicts_only_that_client() {
        let hub = PlainMembers::new(1, 10, test_metrics());
        let slow = hub.register().expect("open");
        let mut fast = hub.register().expect("open");
        hub.broadcast_text("1");
        let _ = fast.outbox.try_recv();
        hub.broadcast_text("2");
        assert_eq!(*slow.evicted.borrow(), Some(Eviction::QueueFull));
        assert_eq!(*fast.evicted.borrow(), None);
    }

    #[test]
    fn selections_follow_rooms_ids_and_exceptions() {
        let hub = PlainMembers::new(8, 10, test_metrics());
        let mut a = hub.register().expect("open");
        let mut b = hub.register().expect("open");
        let mut c = hub.register().expect("open");
        hub.join(&a.id, "r").expect("room");
        hub.join(&b.id, "r").expect("room");
        hub.join(&b.id, "muted").expect("room");
        let frame = Utf8Bytes::from("x");
        let selection = Selection {
            rooms: vec!["r".into(), c.id.to_string()],
            except: vec!["muted".into()],
            skip: None,
        };
        hub.deliver_frame_local(&selection, &frame);
        assert!(a.outbox.try_recv().is_ok(), "member of r");
        assert!(b.outbox.try_recv().is_err(), "member of an excepted room");
        assert!(c.outbox.try_recv().is_ok(), "named by its id");
        let everyone_but_a = Selection {
            skip: Some(a.id.to_string()),
            ..Selection::default()
        };
        hub.deliver_frame_local(&everyone_but_a, &frame);
        assert!(a.outbox.try_recv().is_err());
        assert!(b.outbox.try_recv().is_ok() && c.outbox.try_recv().is_ok());
    }

    #[tokio::test]
    async fn close_all_waits_for_every_client() {
        let hub = std::sync::Arc::new(PlainMembers::new(1, 10, test_metrics()));
        let mut client = hub.register().expect("open");
        let leaving = {
            let hub = hub.clone();
            tokio::spawn(async move {
                client.evicted.changed().await.expect("evicted");
                hub.unregister(&client.id);
            })
        };
        tokio::time::timeout(std::time::Duration::from_secs(1), hub.close_all())
            .await
            .expect("closed");
        leaving.await.expect("task");
        assert!(
            hub.register().is_none(),
            "no new client while shutting down"
        );
    }
}
