//! Room members on other servers, asked for the way Node's adapter asks: how a node counts a
//! Node server's sockets too when Node and iorelay servers share rooms.

use std::fmt::Debug;

use futures_util::future::BoxFuture;

/// Lists the sockets other servers have in rooms.
pub trait RemoteMembers: Debug + Send + Sync + 'static {
    /// The ids of the sockets of `namespace` in any of `rooms` on every other server: what
    /// answered within the request timeout.
    fn socket_ids(&self, namespace: &str, rooms: &[String]) -> BoxFuture<'static, Vec<String>>;
}
