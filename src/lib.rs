//! iorelay: a Socket.IO-compatible realtime server.
//!
//! A packet's way through the server:
//! - [`http`] accepts each TCP connection against the descriptor budget and the per-address
//!   limit, and closes connections that do not send a request head, a body or a next request
//!   in time;
//! - [`api`] is the HTTP server API the app calls to emit and to act on sockets;
//! - [`http`]'s guard refuses unlisted origins, unsupported protocol versions and handshakes
//!   past the connection limit before a session exists;
//! - socketioxide (mounted by [`app`]) speaks Engine.IO over long-polling and WebSocket and
//!   decodes Socket.IO packets; [`plain_ws`] takes plain WebSocket clients on the same port;
//! - [`socketio`] registers each namespace's handlers from the event table, and the plain
//!   WebSocket session reads its frames against the same table;
//! - both hand their work to the [`relay`] core: authentication, admission, the rate budget,
//!   room names and messages, and the `Relay` service that delivers to local Socket.IO members,
//!   local plain members and other nodes;
//! - [`metrics`] counts all of it for `GET /metrics` and the Admin UI, below the relay;
//! - [`adapter`] shares rooms: in memory on one node, or over Redis pub/sub between nodes;
//! - [`server`] connects Redis, starts the ticker and the heap trimmer, serves and shuts down;
//!   [`runtime`] sizes the async runtime all of the above run on.

pub(crate) mod adapter;
pub(crate) mod admin;
pub(crate) mod api;
pub mod app;
pub mod config;
pub(crate) mod engine_echo;
pub(crate) mod engine_suite;
pub(crate) mod heap;
pub(crate) mod http;
pub mod metrics;
pub(crate) mod plain_ws;
pub mod relay;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod socketio;
pub mod telemetry;

pub use config::Config;
pub use server::{ServeError, listen, serve};
