//! What the Admin UI asks of the sockets: `emit`, `join`, `leave` and `_disconnect`, each on a
//! namespace and optionally a filter (a room or a socket id). They go through the relay as the
//! server API's calls do, so they reach every node and the plain WebSocket members of `/`.
//! The arguments come from a client: anything malformed is logged and ignored.

use std::net::IpAddr;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::errors::BroadcastError;

use crate::relay::Relay;
use crate::relay::delivery::Targets;
use crate::relay::membership::{Picked, RoomChange};
use crate::relay::payload::EventArgs;
use crate::relay::room::RoomName;

/// Event names Node's `emit` refuses to send.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Who asked, for the log lines.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    /// The admin socket's id.
    pub sid: &'a str,
    /// Its client's address.
    pub address: IpAddr,
}

/// `emit(nsp, filter, ev, ...args)`: `io.of(nsp).in(filter).emit(ev, ...args)`.
pub async fn emit<A: Adapter>(relay: &Relay, io: &SocketIo<A>, admin: Admin<'_>, args: EventArgs) {
    let mut args = args.0.into_iter();
    let (Some(namespace), filter, Some(event)) = (
        args.next().and_then(string),
        args.next().and_then(string),
        args.next().and_then(string),
    ) else {
        return ignored(
            admin,
            "emit",
            "expected (namespace, filter, event, ...args)",
        );
    };
    if RESERVED_EVENTS.contains(&event.as_str()) {
        return ignored(admin, "emit", "that event name is reserved");
    }
    let to: Vec<String> = filter.into_iter().collect();
    tracing::info!(admin = admin.sid, address = %admin.address, ns = namespace, to = ?to, event, "Admin UI: emit");
    let args = EventArgs(args.collect());
    let targets = Targets {
        to: &to,
        ..Targets::default()
    };
    match relay.emit(io, &namespace, &event, &args, targets).await {
        Ok(()) => {}
        Err(BroadcastError::Socket(failures)) => {
            tracing::warn!(
                undelivered = failures.len(),
                "Admin UI emit not delivered to members that are not keeping up"
            );
        }
        Err(error) => tracing::warn!(%error, "Admin UI emit not delivered to every node"),
    }
}

/// `join(nsp, room, filter)` and `leave(nsp, room, filter)`: `io.of(nsp).in(filter).socketsJoin(room)`.
pub async fn change_rooms<A: Adapter>(
    relay: &Relay,
    io: &SocketIo<A>,
    admin: Admin<'_>,
    args: EventArgs,
    change: RoomChange,
) {
    let action = match change {
        RoomChange::Join => "join",
        RoomChange::Leave => "leave",
    };
    let mut args = args.0.into_iter();
    let (Some(namespace), room, filter) = (
        args.next().and_then(string),
        args.next(),
        args.next().and_then(string),
    ) else {
        return ignored(admin, action, "expected (namespace, room, filter)");
    };
    let room = match RoomName::parse(room.as_ref(), relay.limits.max_room_name_chars) {
        Ok(room) => room.as_str().to_owned(),
        Err(error) => return ignored(admin, action, &error.to_string()),
    };
    let to: Vec<String> = filter.into_iter().collect();
    tracing::info!(admin = admin.sid, address = %admin.address, ns = namespace, to = ?to, room, "Admin UI: {action}");
    if let Err(error) = relay
        .change_rooms(io, &namespace, Picked::everywhere(&to), &[room], change)
        .await
    {
        tracing::warn!(%error, "Admin UI {action} failed");
    }
}

/// `_disconnect(nsp, close, filter)`: `io.of(nsp).in(filter).disconnectSockets(close)`.
pub async fn disconnect<A: Adapter>(
    relay: &Relay,
    io: &SocketIo<A>,
    admin: Admin<'_>,
    args: EventArgs,
) {
    let mut args = args.0.into_iter();
    let (Some(namespace), close, filter) = (
        args.next().and_then(string),
        args.next().and_then(|close| close.as_bool()),
        args.next().and_then(string),
    ) else {
        return ignored(admin, "_disconnect", "expected (namespace, close, filter)");
    };
    let to: Vec<String> = filter.into_iter().collect();
    let close = close == Some(true);
    tracing::info!(admin = admin.sid, address = %admin.address, ns = namespace, to = ?to, close, "Admin UI: disconnect");
    if close {
        close_connections(io, &namespace, &to);
    }
    match relay
        .disconnect_sockets(io, &namespace, Picked::everywhere(&to))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "Admin UI disconnect not delivered everywhere"),
        Err(error) => tracing::warn!(%error, "Admin UI disconnect failed"),
    }
}

/// `disconnect(true)` for the picked sockets of this node: every socket of their connections,
/// in every namespace, leaves (socketioxide has no call for it, and the sockets of one
/// connection share its first request). The client closes its connection once it has no socket
/// left. Sockets of other nodes leave their namespace only.
fn close_connections<A: Adapter>(io: &SocketIo<A>, namespace: &str, to: &[String]) {
    let Some(picked) = io.of(namespace) else {
        return;
    };
    let picked = if to.is_empty() {
        picked
    } else {
        picked.within(to.to_vec())
    };
    let connections: Vec<_> = picked
        .local()
        .sockets()
        .iter()
        .map(|socket| std::ptr::from_ref(socket.req_parts()))
        .collect();
    for namespace in io.nsps() {
        for socket in namespace.local().sockets() {
            if connections.contains(&std::ptr::from_ref(socket.req_parts())) {
                // Already gone, or going: nothing more to do.
                let _ = socket.disconnect();
            }
        }
    }
}

/// A non-empty string argument; `null` (the UI's `undefined`) and anything else is none.
fn string(value: rmpv::Value) -> Option<String> {
    match value {
        rmpv::Value::String(s) => s.into_str().filter(|s| !s.is_empty()),
        _ => None,
    }
}

fn ignored(admin: Admin<'_>, action: &str, why: &str) {
    tracing::info!(admin = admin.sid, address = %admin.address, action, why, "Admin UI action ignored");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_strings_or_nothing() {
        assert_eq!(string(rmpv::Value::from("lobby")), Some("lobby".into()));
        assert_eq!(string(rmpv::Value::from("")), None);
        assert_eq!(string(rmpv::Value::Nil), None);
        assert_eq!(string(rmpv::Value::from(3)), None);
    }
}
