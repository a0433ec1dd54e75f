//! The core both transports stand on; it imports nothing above it.
//!
//! - [`events`]: the one table of built-in namespaces and events;
//! - [`room`], [`payload`], [`chat`]: room names, the wire types of the event contract, and a
//!   `chat` request turned into a message and its acknowledgement;
//! - [`auth`], [`admission`], [`rate`]: who may connect, how many, and how fast they may send;
//! - [`client`], [`turnstile`]: per-client state, created once at connect, and event order;
//! - [`plain_members`], [`bridge`]: this node's plain WebSocket members, and theirs on other
//!   nodes through Redis;
//! - [`delivery`]: the [`Relay`] service every handler calls;
//! - [`webhook`], [`binary`]: the app's event webhook, and arguments as JSON for it;
//! - [`membership`]: joining, leaving and disconnecting the sockets rooms pick, on every node;
//! - [`admin_feed`]: what the Admin UI hears of the sockets;
//! - [`recovery`]: connection state recovery's sessions and packets on a single node;
//! - [`remote_members`]: room members on other servers, Node's included.

pub(crate) mod admin_feed;
pub(crate) mod admission;
pub(crate) mod auth;
pub(crate) mod binary;
pub(crate) mod bridge;
pub mod chat;
pub(crate) mod client;
pub(crate) mod delivery;
pub(crate) mod events;
pub(crate) mod handshake;
pub(crate) mod membership;
pub mod payload;
pub(crate) mod plain_members;
pub(crate) mod rate;
pub(crate) mod recovery;
pub mod remote_members;
pub mod room;
pub(crate) mod turnstile;
pub(crate) mod webhook;

pub(crate) use delivery::Relay;
