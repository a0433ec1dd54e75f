//! Socket.IO namespaces and their event handlers, as the event table in [`crate::relay::events`]
//! declares them.

pub(crate) mod arguments;
pub(crate) mod conformance;
mod connect;
mod connection_log;
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
use crate::relay::events::NAMESPACES;

/// Registers the namespaces of the configured profile; any other namespace is refused.
///
/// Returns each namespace's adapter initialisation, which the caller must drive to completion
/// (nothing to do in memory; the pub/sub subscriptions with Redis).
pub(crate) fn register<A: DefinedAdapter + Adapter>(
    io: &SocketIo<A>,
    config: &Config,
) -> Vec<A::InitRes> {
    match config.profile {
        Profile::Default => NAMESPACES
            .iter()
            .map(|namespace| {
                io.ns(
                    namespace.path,
                    connect::on_connect::<A>.with(connect::admit::<A>),
                )
            })
            .collect(),
        Profile::Conformance => conformance::register(io),
    }
}
