//! A plain WebSocket client's life as the app sees it through the event webhook: `connect` once
//! the upgrade is done, every frame whose `event` no built-in handler takes, and `disconnect`.
//! The frame's `data` is the event's one argument, and the answer's `ack` comes back in an
//! `ack` frame.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;

use crate::relay::Relay;
use crate::relay::binary;
use crate::relay::client::ClientState;
use crate::relay::delivery::{plain_data, plain_event_frame};
use crate::relay::payload::EventArgs;
use crate::relay::webhook::{Answer, Call, CallType, SocketView, WebhookError};

/// What a plain client gets from an answer: frames for it alone, and whether to close.
#[derive(Debug, Default)]
pub(super) struct Reply {
    /// Frames to send to the client, in order.
    pub frames: Vec<Utf8Bytes>,
    /// Whether the app disconnected it.
    pub disconnect: bool,
}

/// The client as the app's handlers would see it.
fn view(relay: &Relay, id: &Sid, client: &ClientState) -> SocketView {
    SocketView {
        id: id.to_string(),
        rooms: relay.plain.rooms_of(id),
        data: client.data(),
        user: client.user_id(),
        transport: "plain-websocket",
        handshake: client.handshake(),
    }
}

fn call<'a>(kind: CallType, socket: SocketView) -> Call<'a> {
    Call {
        kind,
        namespace: "/",
        socket,
        event: None,
        args: None,
        ack: None,
        reason: None,
    }
}

/// Asks the app whether the client may stay; `Err` carries the text of the close frame.
pub(super) async fn admit<A: Adapter>(
    io: &SocketIo<A>,
    relay: &Relay,
    id: &Sid,
    client: &ClientState,
) -> Result<Reply, String> {
    let Some(webhook) = &relay.webhook else {
        return Ok(Reply::default());
    };
    match webhook
        .call(&call(CallType::Connect, view(relay, id, client)))
        .await
    {
        Ok(answer) => Ok(apply(io, relay, id, client, answer, None).await),
        Err(WebhookError::Status { message, .. }) => {
            Err(message.unwrap_or_else(|| "connection refused".to_owned()))
        }
        Err(_) => Err("upstream unavailable".to_owned()),
    }
}

/// Hands an event frame to the app; `ack_id` is the frame's `id`, when it asks for an answer.
pub(super) async fn event<A: Adapter>(
    io: &SocketIo<A>,
    relay: &Relay,
    id: &Sid,
    client: &ClientState,
    event: &str,
    data: Value,
    ack_id: Option<&Value>,
) -> Reply {
    let Some(webhook) = &relay.webhook else {
        return Reply::default();
    };
    let call = Call {
        event: Some(event),
        args: Some(vec![data]),
        ack: Some(ack_id.is_some()),
        ..call(CallType::Event, view(relay, id, client))
    };
    match webhook.call(&call).await {
        Ok(answer) => apply(io, relay, id, client, answer, ack_id).await,
        Err(error) => Reply {
            frames: ack_id
                .and_then(|ack_id| ack_frame(ack_id, json!({ "error": error.to_string() })))
                .into_iter()
                .collect(),
            disconnect: false,
        },
    }
}

/// Tells the app the client has left with `reason`; nothing waits on it.
pub(super) fn disconnected<A: Adapter>(
    io: &SocketIo<A>,
    relay: &Arc<Relay>,
    id: Sid,
    view_rooms: Vec<String>,
    client: ClientState,
    reason: &'static str,
) {
    if relay.webhook.is_none() {
        return;
    }
    let (io, relay) = (io.clone(), relay.clone());
    relay.clone().background.spawn(async move {
        let Some(webhook) = &relay.webhook else {
            return;
        };
        let mut socket = view(&relay, &id, &client);
        socket.rooms = view_rooms;
        let call = Call {
            reason: Some(reason.to_owned()),
            ..call(CallType::Disconnect, socket)
        };
        if let Ok(answer) = webhook.call(&call).await {
            for item in answer
                .emit
                .iter()
                .filter(|item| item.to.is_some() || item.broadcast)
            {
                relay.emit_item(&io, "/", &id.to_string(), item).await;
            }
        }
    });
}

/// Applies an answer in its fixed order: `data`, `join`, `leave`, `emit`, `ack`, `disconnect`.
async fn apply<A: Adapter>(
    io: &SocketIo<A>,
    relay: &Relay,
    id: &Sid,
    client: &ClientState,
    answer: Answer,
    ack_id: Option<&Value>,
) -> Reply {
    let mut reply = Reply::default();
    if let Some(data) = answer.data {
        client.merge_data(data);
    }
    for room in &answer.join {
        if let Err(error) = relay.plain.join(id, room) {
            tracing::info!(sid = %id, room, %error, "plain WebSocket client not added to a room");
        }
    }
    for room in &answer.leave {
        relay.plain.leave(id, room);
    }
    for item in &answer.emit {
        if item.to.is_some() || item.broadcast {
            relay.emit_item(io, "/", &id.to_string(), item).await;
            continue;
        }
        match binary::args_from_json(&item.args) {
            Ok(args) => reply
                .frames
                .extend(plain_event_frame(&item.event, &EventArgs(args))),
            Err(error) => {
                tracing::warn!(sid = %id, event = item.event, %error, "app's emit dropped");
            }
        }
    }
    if let Some(ack_id) = ack_id {
        let data = match answer.ack.as_deref().map(binary::args_from_json) {
            Some(Ok(args)) => plain_data(&args),
            Some(Err(error)) => {
                json!({ "error": WebhookError::Unreadable(error.to_string()).to_string() })
            }
            None => Value::Null,
        };
        reply.frames.extend(ack_frame(ack_id, data));
    }
    reply.disconnect = answer.disconnect;
    reply
}

fn ack_frame(id: &Value, data: Value) -> Option<Utf8Bytes> {
    let frame = json!({ "event": "ack", "id": id, "data": data });
    serde_json::to_string(&frame).ok().map(Utf8Bytes::from)
}
