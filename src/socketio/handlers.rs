//! The built-in events' handlers, shared by every namespace of the event table: `message`,
//! `echo`, `join`, `leave` and `chat`, plus `presence` on the namespaces that announce it.

use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, State};

use super::admin_events::{received, sent};
use super::forward;
use super::request::EventRequest;
use crate::relay::Relay;
use crate::relay::chat::{ChatReply, RoomLimitError, chat_message};
use crate::relay::client::ClientState;
use crate::relay::delivery::room_members;
use crate::relay::events::{BuiltinEvent, Route};
use crate::relay::payload::{Presence, RoomAck};
use crate::relay::room::RoomName;

/// Sends every argument back to the sender as `message`.
pub async fn on_message<A: Adapter>(
    socket: SocketRef<A>,
    State(relay): State<Arc<Relay>>,
    mut request: EventRequest<A>,
) {
    let Some(args) = request
        .accept(&socket, &relay, Route::Builtin(BuiltinEvent::Message))
        .await
    else {
        return;
    };
    tracing::info!(sid = %socket.id, args = args.0.len(), "message received");
    received(&relay, &socket, "message", &args);
    match socket.emit("message", &args) {
        Ok(()) => sent(&relay, &socket, "message", || args.0),
        Err(error) => tracing::debug!(sid = %socket.id, %error, "message echo not sent"),
    }
}

/// Acknowledges with every argument it was sent.
pub async fn on_echo<A: Adapter>(
    socket: SocketRef<A>,
    State(relay): State<Arc<Relay>>,
    mut request: EventRequest<A>,
) {
    let route = Route::Builtin(BuiltinEvent::Echo);
    if let Some(args) = request.accept(&socket, &relay, route).await {
        received(&relay, &socket, "echo", &args);
        request.reply(&socket, &args);
    }
}

/// Adds the socket to a room; answers `{ room, size }` or `{ error }`.
pub async fn on_join<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(relay): State<Arc<Relay>>,
    mut request: EventRequest<A>,
) {
    let Some(room) = requested_room(&socket, &relay, &mut request, BuiltinEvent::Join).await else {
        return;
    };
    let rooms = socket.rooms();
    let already_in = rooms.iter().any(|r| r == room.as_str());
    // The room named after the socket's own id (see `Relay::id_rooms`) is not one it joined.
    let joined = rooms.iter().filter(|r| *r != socket.id.as_str()).count();
    let max_rooms = relay.limits.max_rooms_per_socket;
    if !already_in && joined >= max_rooms {
        return request.reply_error(&socket, &RoomLimitError(max_rooms));
    }
    socket.join(room.as_str().to_owned());
    if let (Some(admin), false) = (&relay.admin, already_in) {
        admin.room_joined(socket.ns(), room.as_str(), socket.id.as_str());
    }
    tracing::debug!(sid = %socket.id, ns = socket.ns(), %room, "joined room");
    room_changed(&socket, &io, &relay, &mut request, &room, true).await;
}

/// Removes the socket from a room; answers `{ room, size }` or `{ error }`.
pub async fn on_leave<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(relay): State<Arc<Relay>>,
    mut request: EventRequest<A>,
) {
    let Some(room) = requested_room(&socket, &relay, &mut request, BuiltinEvent::Leave).await
    else {
        return;
    };
    let was_member = socket.rooms().iter().any(|r| r == room.as_str());
    socket.leave(room.as_str().to_owned());
    if let (Some(admin), true) = (&relay.admin, was_member) {
        admin.room_left(socket.ns(), room.as_str(), socket.id.as_str());
    }
    tracing::debug!(sid = %socket.id, ns = socket.ns(), %room, "left room");
    room_changed(&socket, &io, &relay, &mut request, &room, was_member).await;
}

/// Relays a chat message to a room (or the whole namespace); answers `{ ok }` or `{ error }`.
pub async fn on_chat<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(relay): State<Arc<Relay>>,
    mut request: EventRequest<A>,
) {
    let Some(args) = request
        .accept(&socket, &relay, Route::Builtin(BuiltinEvent::Chat))
        .await
    else {
        return;
    };
    received(&relay, &socket, "chat", &args);
    let client = request.client();
    let user = client.and_then(ClientState::user_id);
    let shares_plain_rooms = client.is_some_and(ClientState::shares_plain_rooms);
    let message = match chat_message(
        &args,
        socket.id.as_str(),
        user,
        relay.limits.max_room_name_chars,
    ) {
        Ok(message) => message,
        Err(error) => return request.reply_error(&socket, &error),
    };
    let result = relay
        .deliver_chat(&io, socket.ns(), shares_plain_rooms, &message)
        .await;
    let reply = ChatReply::from_broadcast(result, socket.id.as_str(), message.room.as_deref());
    request.reply(&socket, &reply);
}

/// Events no built-in handler takes go to the app when a webhook is set, and are ignored
/// otherwise; either way they count against the sender's rate limit, so unknown event names
/// cannot be used to flood around it.
pub async fn on_unhandled<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    Event(event): Event,
    State(relay): State<Arc<Relay>>,
    mut request: EventRequest<A>,
) {
    let namespace = request.client().and_then(|client| client.namespace);
    let route = relay.events.route(namespace, &event);
    let Some(args) = request.accept(&socket, &relay, route).await else {
        return;
    };
    received(&relay, &socket, &event, &args);
    match route {
        Route::Webhook => forward::event(&socket, &io, &relay, &event, args, &mut request).await,
        Route::Builtin(_) | Route::Unhandled => {
            tracing::debug!(sid = %socket.id, ns = socket.ns(), event, "event without a handler ignored");
        }
    }
}

/// Accepts a `join` or `leave` and reads its room argument; a refusal is acknowledged here,
/// and `None` means the event is done with.
async fn requested_room<A: Adapter>(
    socket: &SocketRef<A>,
    relay: &Relay,
    request: &mut EventRequest<A>,
    event: BuiltinEvent,
) -> Option<RoomName> {
    let args = request.accept(socket, relay, Route::Builtin(event)).await?;
    received(relay, socket, event.name(), &args);
    RoomName::parse(args.first(), relay.limits.max_room_name_chars)
        .inspect_err(|error| request.reply_error(socket, error))
        .ok()
}

/// Acknowledges a `join` or `leave` with the room's size and, on a namespace that announces
/// presence, tells the room who is in it when its membership `changed`.
async fn room_changed<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    relay: &Relay,
    request: &mut EventRequest<A>,
    room: &RoomName,
    changed: bool,
) {
    let client = request.client();
    let shares_plain_rooms = client.is_some_and(ClientState::shares_plain_rooms);
    let presence = client
        .and_then(|client| client.namespace)
        .is_some_and(|ns| ns.presence);
    let size = relay
        .room_size(io, socket.ns(), shares_plain_rooms, room.as_str())
        .await;
    request.reply(
        socket,
        &RoomAck {
            room: room.as_str(),
            size,
        },
    );
    if changed && presence {
        announce(socket, room.as_str(), Audience::Everyone).await;
    }
}

/// Who receives a presence update.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every member, the socket that changed included.
    Everyone,
    /// The other members: the socket is on its way out and may still be listed.
    OthersOnly,
}

/// Tells the members of `room` who is in it now.
pub async fn announce<A: Adapter>(socket: &SocketRef<A>, room: &str, audience: Audience) {
    let mut members = room_members(socket.within(room.to_owned()), room).await;
    let operators = match audience {
        Audience::Everyone => socket.within(room.to_owned()),
        Audience::OthersOnly => {
            members.retain(|m| m != socket.id.as_str());
            socket.to(room.to_owned())
        }
    };
    let presence = Presence { room, members };
    if let Err(error) = operators.emit("presence", &presence).await {
        tracing::warn!(sid = %socket.id, room, %error, "presence not delivered");
    }
}
