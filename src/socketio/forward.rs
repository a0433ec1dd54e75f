//! A Socket.IO socket's life as the app sees it through the event webhook: `connect` before the
//! namespace CONNECT is acknowledged, every `event` no built-in handler takes, and `disconnect`
//! once the socket is gone. The app's answers apply in Socket.IO's words.

use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::DisconnectReason;

use super::admin_events;
use super::ordering::InOrder;
use super::request::EventRequest;
use crate::relay::Relay;
use crate::relay::binary;
use crate::relay::client::{ClientState, socket_view as view};
use crate::relay::payload::EventArgs;
use crate::relay::webhook::{Answer, Call, CallType, WebhookError};

/// Why the app did not admit a socket.
#[derive(Debug, thiserror::Error)]
pub enum AppRefusal {
    /// The app answered the connect webhook with a non-2xx status; the client reads `message`.
    #[error("{0}")]
    Refused(String),
    /// The app could not be asked: the connection fails closed.
    #[error("upstream unavailable")]
    Unavailable,
}

/// Node socket.io's name for a disconnect reason, as the app's `socket.on("disconnect")` gets it.
pub fn reason_name(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::MultipleHttpPollingError | DisconnectReason::TransportError => {
            "transport error"
        }
        DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}

/// Asks the app whether the socket may join its namespace; `data`, `join` and `leave` of the
/// answer apply at once, the rest once the client is connected.
pub async fn admit<A: Adapter>(
    socket: &SocketRef<A>,
    relay: &Relay,
    client: &ClientState,
) -> Result<(), AppRefusal> {
    let Some(webhook) = &relay.webhook else {
        return Ok(());
    };
    let call = Call {
        kind: CallType::Connect,
        namespace: socket.ns(),
        socket: view(socket, client),
        event: None,
        args: None,
        ack: None,
        reason: None,
    };
    match webhook.call(&call).await {
        Ok(mut answer) => {
            if let Some(data) = answer.data.take() {
                client.merge_data(data);
            }
            socket.join(std::mem::take(&mut answer.join));
            for room in std::mem::take(&mut answer.leave) {
                socket.leave(room);
            }
            client.defer(answer);
            Ok(())
        }
        Err(WebhookError::Status { message, .. }) => Err(AppRefusal::Refused(
            message.unwrap_or_else(|| "connection refused".to_owned()),
        )),
        Err(_) => Err(AppRefusal::Unavailable),
    }
}

/// Applies what a connect answer left for after the CONNECT: its emits and a disconnect.
pub async fn after_connect<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    relay: &Relay,
    client: &ClientState,
) {
    if let Some(answer) = client.take_deferred() {
        apply(socket, io, relay, client, answer, None).await;
    }
}

/// Hands an event no built-in handler takes to the app and applies its answer. A failed call is
/// answered with `{ "error" }` when the client asked for an ack.
pub async fn event<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    relay: &Relay,
    event: &str,
    args: EventArgs,
    request: &mut EventRequest<A>,
) {
    let (Some(webhook), Some(client)) = (&relay.webhook, request.client_arc()) else {
        return;
    };
    let call = Call {
        kind: CallType::Event,
        namespace: socket.ns(),
        socket: view(socket, &client),
        event: Some(event),
        args: Some(binary::args_to_json(&args.0)),
        ack: Some(request.wants_ack()),
        reason: None,
    };
    match webhook.call(&call).await {
        Ok(answer) => apply(socket, io, relay, &client, answer, Some(request)).await,
        Err(error) => request.reply_error(socket, &error),
    }
}

/// Tells the app a socket has left, once every webhook of its earlier events has finished;
/// nothing waits on it. The answer's emits still go out, to rooms or the namespace.
pub fn disconnected<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    relay: &Arc<Relay>,
    client: &Arc<ClientState>,
    reason: DisconnectReason,
) {
    if relay.webhook.is_none() {
        return;
    }
    // The rooms are taken now, while the socket still lists them; its data once its earlier
    // events' answers have applied.
    let mut view = view(socket, client);
    let turn = InOrder::take_ticket(Some(client));
    let namespace = socket.ns().to_owned();
    let (io, relay, client) = (io.clone(), relay.clone(), client.clone());
    relay.clone().background.spawn(async move {
        turn.wait().await;
        let Some(webhook) = &relay.webhook else {
            return;
        };
        view.data = client.data();
        let sid = view.id.clone();
        let call = Call {
            kind: CallType::Disconnect,
            namespace: &namespace,
            socket: view,
            event: None,
            args: None,
            ack: None,
            reason: Some(reason_name(reason).to_owned()),
        };
        if let Ok(answer) = webhook.call(&call).await {
            for item in &answer.emit {
                // The socket is gone: an emit to it alone reaches no one.
                if item.to.is_some() || item.broadcast {
                    relay.emit_item(&io, &namespace, &sid, item).await;
                }
            }
        }
    });
}

/// Tells the app that every socket of this node is leaving because the server shuts down:
/// socketioxide closes their transports without running their disconnect handlers.
pub fn server_closing<A: Adapter>(io: &SocketIo<A>, relay: &Arc<Relay>) {
    if relay.webhook.is_none() {
        return;
    }
    for namespace in io.nsps() {
        for socket in namespace.local().sockets() {
            if let Some(client) = socket.extensions.get::<Arc<ClientState>>() {
                disconnected(&socket, io, relay, &client, DisconnectReason::ClosingServer);
            }
        }
    }
}

/// Applies an answer in its fixed order: `data`, `join`, `leave`, `emit`, `ack`, `disconnect`.
async fn apply<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    relay: &Relay,
    client: &ClientState,
    answer: Answer,
    request: Option<&mut EventRequest<A>>,
) {
    if let Some(data) = answer.data {
        client.merge_data(data);
        if let Some(admin) = &relay.admin {
            admin.data_updated(socket.ns(), socket.id.as_str(), client.data());
        }
    }
    if !answer.join.is_empty() {
        // The Admin UI hears of the rooms the socket was not in yet, as Node's adapter tells.
        let joined: Vec<String> = match &relay.admin {
            Some(admin) if admin.is_live() => {
                let rooms = socket.rooms();
                answer
                    .join
                    .iter()
                    .filter(|room| !rooms.iter().any(|r| r == room.as_str()))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        socket.join(answer.join);
        if let Some(admin) = &relay.admin {
            for room in joined {
                admin.room_joined(socket.ns(), &room, socket.id.as_str());
            }
        }
    }
    for room in answer.leave {
        let was_member = relay.admin.as_ref().is_some_and(|admin| admin.is_live())
            && socket.rooms().iter().any(|r| *r == room);
        if let (Some(admin), true) = (&relay.admin, was_member) {
            admin.room_left(socket.ns(), &room, socket.id.as_str());
        }
        socket.leave(room);
    }
    for item in &answer.emit {
        if item.to.is_none() && !item.broadcast {
            match binary::args_from_json(&item.args) {
                Ok(args) => {
                    let args = EventArgs(args);
                    match socket.emit(item.event.as_str(), &args) {
                        Ok(()) => admin_events::sent(relay, socket, &item.event, || args.0),
                        Err(error) => {
                            tracing::debug!(sid = %socket.id, %error, "app's emit not sent")
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(sid = %socket.id, event = item.event, %error, "app's emit dropped")
                }
            }
        } else {
            relay
                .emit_item(io, socket.ns(), socket.id.as_str(), item)
                .await;
        }
    }
    if let Some(request) = request {
        match answer.ack.as_deref().map(binary::args_from_json) {
            Some(Ok(args)) => request.reply(socket, &EventArgs(args)),
            Some(Err(error)) => {
                request.reply_error(socket, &WebhookError::Unreadable(error.to_string()))
            }
            // A client that waits gets an empty ack rather than waiting forever.
            None => request.reply(socket, &EventArgs::default()),
        }
    }
    if answer.disconnect
        && let Err(error) = socket.clone().disconnect()
    {
        tracing::debug!(sid = %socket.id, %error, "socket already gone");
    }
}
