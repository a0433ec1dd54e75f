//! Socket.IO namespaces and their event handlers, as the event table in [`crate::relay::events`]
//! declares them.

mod admin_events;
pub(crate) mod arguments;
pub(crate) mod client_suite;
pub(crate) mod conformance;
mod connect;
mod connection_log;
mod forward;

pub(crate) use forward::{reason_name, server_closing};
mod handlers;
pub mod inspect;
pub(crate) mod ordering;
pub(crate) mod request;
pub(crate) mod ticker;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::config::{Config, Profile};
use crate::relay::Relay;
use crate::relay::events::NAMESPACES;

/// Registers the namespaces of the configured profile; any other namespace is refused.
///
/// Returns each namespace's adapter initialisation, which the caller must drive to completion
/// (nothing to do in memory; the pub/sub subscriptions with Redis).
pub(crate) fn register<A: DefinedAdapter + Adapter>(
    io: &SocketIo<A>,
    config: &Config,
    relay: &Relay,
) -> Vec<A::InitRes> {
    match config.profile {
        Profile::Default => {
            let builtin = NAMESPACES.iter().map(|namespace| namespace.path.to_owned());
            // The app's namespaces (`--namespace`): every event goes to the webhook.
            let app = relay.events.app_namespaces().iter().cloned();
            builtin
                .chain(app)
                .map(|path| io.ns(path, connect::on_connect::<A>.with(connect::admit::<A>)))
                .collect()
        }
        Profile::Conformance => conformance::register(io),
        Profile::ClientSuite => client_suite::register(io),
    }
}
