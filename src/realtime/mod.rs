//! Socket.IO namespaces and their event handlers.

pub mod arguments;
pub mod auth;
pub mod chat_ns;
pub mod conformance;
mod connection_log;
pub mod default_ns;
pub mod inspect;
pub mod ordering;
pub mod payload;
pub mod policy;
pub mod room;
pub mod room_events;
pub mod ticker;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::config::{Config, Profile};

/// Registers the namespaces of the configured profile; any other namespace is refused.
///
/// Returns each namespace's adapter initialisation, which the caller must drive to completion
/// (nothing to do in memory; the pub/sub subscriptions with Redis).
pub fn register<A: DefinedAdapter + Adapter>(io: &SocketIo<A>, config: &Config) -> Vec<A::InitRes> {
    match config.profile {
        Profile::Default => vec![
            // Middlewares run last-added first: authentication, then handler registration.
            io.ns(
                "/",
                default_ns::on_connect::<A>
                    .with(default_ns::attach_handlers::<A>)
                    .with(auth::authenticate::<A>),
            ),
            io.ns(
                "/chat",
                chat_ns::on_connect::<A>
                    .with(chat_ns::attach_handlers::<A>)
                    .with(auth::authenticate::<A>),
            ),
        ],
        Profile::Conformance => conformance::register(io),
    }
}
