//! [`EventRequest`]: what every built-in handler extracts. It holds the event's turn, its
//! arguments and its acknowledgement, and [`EventRequest::accept`] is every handler's first
//! step: wait for the turn, refuse malformed arguments, spend the rate budget.

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError};

use super::arguments::{self, MalformedArgs};
use super::ordering::InOrder;
use crate::relay::Relay;
use crate::relay::client::ClientState;
use crate::relay::events::Route;
use crate::relay::payload::{ErrorAck, EventArgs};
use crate::relay::rate::Verdict;

/// One event on its way to a handler. Put it last in a handler's arguments: it takes the
/// event's place in its socket's order, and no later extractor may fail after that.
///
/// The turn is held until the request is dropped, at the end of the handler.
pub struct EventRequest<A: Adapter> {
    args: Option<Result<EventArgs, MalformedArgs>>,
    ack: Option<AckSender<A>>,
    wants_ack: bool,
    client: Option<Arc<ClientState>>,
    turn: InOrder,
}

impl<A: Adapter> FromMessageParts<A> for EventRequest<A> {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        value: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let args = arguments::decode(socket, value, ack_id);
        let ack = AckSender::from_message_parts(socket, value, ack_id)?;
        let client = socket.extensions.get::<Arc<ClientState>>();
        let turn = InOrder::take_ticket(client.as_deref());
        Ok(EventRequest {
            args: Some(args),
            ack: Some(ack),
            wants_ack: ack_id.is_some(),
            client,
            turn,
        })
    }
}

impl<A: Adapter> EventRequest<A> {
    /// Waits for the event's turn, then returns its arguments if the socket may send it now:
    /// `None` after disconnecting a sender whose packet was malformed, or after refusing an
    /// event over the socket's rate limit (answered with an error acknowledgement).
    ///
    /// `route` is who takes the event, as it is counted in the metrics.
    pub async fn accept(
        &mut self,
        socket: &SocketRef<A>,
        relay: &Relay,
        route: Route,
    ) -> Option<EventArgs> {
        self.turn.wait().await;
        let args = match self.args.take()? {
            Ok(args) => args,
            Err(error) => {
                tracing::info!(sid = %socket.id, ns = socket.ns(), %error, "disconnecting a socket that sent a malformed event");
                disconnect(socket);
                return None;
            }
        };
        let Some(client) = &self.client else {
            return Some(args);
        };
        match relay.spend(client, socket.id.as_str(), route) {
            Verdict::Allowed => Some(args),
            verdict => {
                self.reply_error(socket, &relay.rate.error());
                if verdict == Verdict::Flooding {
                    disconnect(socket);
                }
                None
            }
        }
    }

    /// The state of the sending socket, set when it connected.
    pub fn client(&self) -> Option<&ClientState> {
        self.client.as_deref()
    }

    /// The same, to keep while the request is borrowed mutably.
    pub fn client_arc(&self) -> Option<Arc<ClientState>> {
        self.client.clone()
    }

    /// Whether the client waits for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.wants_ack
    }

    /// Acknowledges the event with `data` when the client asked for it; only the first call
    /// sends anything.
    pub fn reply<T: Serialize + ?Sized>(&mut self, socket: &SocketRef<A>, data: &T) {
        if let Some(ack) = self.ack.take() {
            send_ack(socket, ack, data);
        }
    }

    /// Acknowledges the event with `{ "error": "<error>" }`.
    pub fn reply_error(&mut self, socket: &SocketRef<A>, error: &dyn std::error::Error) {
        tracing::debug!(sid = %socket.id, ns = socket.ns(), %error, "refused request");
        self.reply(
            socket,
            &ErrorAck {
                error: error.to_string(),
            },
        );
    }
}

fn disconnect<A: Adapter>(socket: &SocketRef<A>) {
    if let Err(error) = socket.clone().disconnect() {
        tracing::debug!(sid = %socket.id, %error, "disconnect not sent");
    }
}

/// Sends an ack when the client asked for one; a failure only means the client is gone or stalled.
pub fn send_ack<A: Adapter, T: Serialize + ?Sized>(
    socket: &SocketRef<A>,
    ack: AckSender<A>,
    data: &T,
) {
    match ack.send(data) {
        Ok(()) => {}
        // The client is connected but not reading: say so, the heartbeat will drop it.
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            tracing::warn!(sid = %socket.id, ns = socket.ns(), "ack dropped: the socket's queue is full");
        }
        Err(error) => tracing::debug!(sid = %socket.id, ns = socket.ns(), %error, "ack not sent"),
    }
}
