//! Joining, leaving and disconnecting the sockets that rooms pick: Node's `socketsJoin`,
//! `socketsLeave` and `disconnectSockets`, as the server API and the Admin UI call them. The
//! Socket.IO sockets act on every node; plain members (namespace `/`) on this node.

use std::collections::HashSet;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide_core::adapter::errors::BroadcastError;

use super::Relay;
use super::plain_members::Selection;

/// Whether sockets join rooms or leave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomChange {
    /// `socketsJoin`.
    Join,
    /// `socketsLeave`.
    Leave,
}

/// Which sockets an action picks, in Node's terms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Picked<'a> {
    /// Rooms or socket ids; every socket of the namespace when empty.
    pub to: &'a [String],
    /// Rooms or socket ids left out.
    pub except: &'a [String],
    /// Only this node's sockets: for a request every node receives itself, such as the Node
    /// emitter's.
    pub this_node_only: bool,
}

impl<'a> Picked<'a> {
    /// The sockets `to` names on every node.
    pub fn everywhere(to: &'a [String]) -> Self {
        Picked {
            to,
            ..Picked::default()
        }
    }
}

/// Why sockets could not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// No such namespace is served.
    #[error("unknown namespace '{0}'")]
    UnknownNamespace(String),
    /// The adapter could not reach every node.
    #[error("{0}")]
    Unavailable(String),
}

impl Relay {
    /// Makes the sockets of `namespace` that `to` picks join or leave `rooms`.
    pub async fn change_rooms<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        namespace: &str,
        to: Picked<'_>,
        rooms: &[String],
        change: RoomChange,
    ) -> Result<(), MembershipError> {
        let targets = picked(io, namespace, to)?;
        if let Some(selection) = plain_selection(namespace, to) {
            match change {
                RoomChange::Join => self.plain.join_selected(&selection, rooms),
                RoomChange::Leave => self.plain.leave_selected(&selection, rooms),
            }
        }
        // The Admin UI lists who joined or left; only sockets whose membership changes count,
        // as Node's adapter only then emits `join-room` and `leave-room`.
        let watched = match &self.admin {
            Some(admin) if admin.is_live() => {
                Some(changes(io, namespace, targets.clone(), rooms, change).await)
            }
            _ => None,
        };
        let unavailable = |error: A::Error| MembershipError::Unavailable(error.to_string());
        match change {
            RoomChange::Join => targets.join(rooms.to_vec()).await.map_err(unavailable)?,
            RoomChange::Leave => targets.leave(rooms.to_vec()).await.map_err(unavailable)?,
        }
        if let (Some(admin), Some(changed)) = (&self.admin, watched) {
            for (room, id) in changed {
                match change {
                    RoomChange::Join => admin.room_joined(namespace, &room, &id),
                    RoomChange::Leave => admin.room_left(namespace, &room, &id),
                }
            }
        }
        Ok(())
    }

    /// Disconnects the sockets of `namespace` that `to` picks.
    pub async fn disconnect_sockets<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        namespace: &str,
        to: Picked<'_>,
    ) -> Result<Result<(), BroadcastError>, MembershipError> {
        let targets = picked(io, namespace, to)?;
        if let Some(selection) = plain_selection(namespace, to) {
            self.plain.disconnect_selected(&selection);
        }
        Ok(targets.disconnect().await)
    }
}

/// The sockets `to` picks in `namespace`.
fn picked<A: Adapter>(
    io: &SocketIo<A>,
    namespace: &str,
    to: Picked<'_>,
) -> Result<BroadcastOperators<A>, MembershipError> {
    let mut sockets = io
        .of(namespace)
        .ok_or_else(|| MembershipError::UnknownNamespace(namespace.to_owned()))?;
    if !to.to.is_empty() {
        sockets = sockets.within(to.to.to_vec());
    }
    if !to.except.is_empty() {
        sockets = sockets.except(to.except.to_vec());
    }
    if to.this_node_only {
        sockets = sockets.local();
    }
    Ok(sockets)
}

/// The plain members `to` picks, on `/` only.
fn plain_selection(namespace: &str, to: Picked<'_>) -> Option<Selection> {
    (namespace == "/").then(|| Selection {
        rooms: to.to.to_vec(),
        except: to.except.to_vec(),
        skip: None,
    })
}

/// The `(room, socket id)` pairs a change will make: targets not yet in a room they join, or
/// in a room they leave.
async fn changes<A: Adapter>(
    io: &SocketIo<A>,
    namespace: &str,
    targets: BroadcastOperators<A>,
    rooms: &[String],
    change: RoomChange,
) -> Vec<(String, String)> {
    let ids = socket_ids(targets).await;
    let mut changed = Vec::new();
    for room in rooms {
        let members = match io.of(namespace) {
            Some(namespace) => socket_ids(namespace.within(room.clone())).await,
            None => HashSet::new(),
        };
        for id in &ids {
            if members.contains(id) == (change == RoomChange::Leave) {
                changed.push((room.clone(), id.clone()));
            }
        }
    }
    changed
}

async fn socket_ids<A: Adapter>(sockets: BroadcastOperators<A>) -> HashSet<String> {
    match sockets.fetch_sockets().await {
        Ok(sockets) => sockets
            .iter()
            .map(|socket| socket.data().id.to_string())
            .collect(),
        Err(error) => {
            tracing::debug!(%error, "could not list sockets for the Admin UI");
            HashSet::new()
        }
    }
}
