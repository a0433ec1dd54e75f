//! Room members on other servers, asked for the way Node's adapter asks: how a node counts a
//! Node server's sockets too when Node and iorelay servers share rooms.

use std::fmt::Debug;

use futures_util::future::BoxFuture;
use serde_json::Value as Json;

/// Lists the sockets and rooms other servers have; each answer holds what the servers said
/// within the request timeout.
pub trait RemoteMembers: Debug + Send + Sync + 'static {
    /// The ids of the sockets of `namespace` in any of `rooms` (all of them when empty) on
    /// every other server (Node's `SOCKETS`).
    fn socket_ids(&self, namespace: &str, rooms: &[String]) -> BoxFuture<'static, Vec<String>>;

    /// The sockets of `namespace` in any of `rooms` (all of them when empty) on every other
    /// server, as Node's `fetchSockets()` gets them: `{ id, handshake, rooms, data }`.
    fn fetch(&self, namespace: &str, rooms: &[String]) -> BoxFuture<'static, Vec<Json>>;

    /// The rooms of `namespace` on every other server, socket id rooms included (Node's
    /// `allRooms()`).
    fn all_rooms(&self, namespace: &str) -> BoxFuture<'static, Vec<String>>;
}
