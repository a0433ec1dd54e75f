//! iorelay: a Socket.IO-compatible realtime server.
//!
//! A packet's way through the server:
//! - [`http::guard`] refuses unlisted origins and unsupported protocol versions before a session
//!   exists;
//! - socketioxide (mounted by [`app`]) speaks Engine.IO over long-polling and WebSocket and
//!   decodes Socket.IO packets;
//! - [`realtime`] registers each namespace's handlers (in a connect middleware, so none of a
//!   client's first events is missed), which validate payloads ([`realtime::payload`],
//!   [`realtime::room`]) and broadcast to rooms through the adapter;
//! - [`adapter`] shares rooms: in memory on one node, or over Redis pub/sub between nodes;
//! - [`http`] serves health and the web page on the same port;
//! - [`plain_ws`] serves plain WebSocket clients on the same port, in the rooms of `/`;
//! - [`heap`] hands memory back to the system after waves of sessions end;
//! - [`runtime`] sizes the async runtime all of the above run on.

pub mod adapter;
pub mod app;
pub mod config;
pub mod engine_echo;
pub mod heap;
pub mod http;
pub mod plain_ws;
pub mod realtime;
pub mod runtime;
pub mod shutdown;
pub mod telemetry;

pub use app::{App, build, serve};
pub use config::Config;
