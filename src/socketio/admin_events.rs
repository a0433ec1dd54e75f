//! What the Admin UI (development mode) hears of each socket's events: those it sent, and
//! those sent to it alone.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::relay::Relay;
use crate::relay::payload::EventArgs;

/// Tells the Admin UI (development mode) that the socket sent `event` with `args`.
pub fn received<A: Adapter>(relay: &Relay, socket: &SocketRef<A>, event: &str, args: &EventArgs) {
    if let Some(admin) = &relay.admin {
        admin.event_received(socket.ns(), socket.id.as_str(), event, &args.0);
    }
}

/// Tells the Admin UI (development mode) that `event` went to the socket alone; `args` are
/// made only when it listens.
pub fn sent<A: Adapter>(
    relay: &Relay,
    socket: &SocketRef<A>,
    event: &str,
    args: impl FnOnce() -> Vec<rmpv::Value>,
) {
    if let Some(admin) = relay.admin.as_ref().filter(|admin| admin.is_live()) {
        admin.event_sent(socket.ns(), socket.id.as_str(), event, &args());
    }
}
