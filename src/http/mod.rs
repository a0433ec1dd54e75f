//! Plain HTTP served beside Socket.IO on the same port.

pub mod compression;
pub mod connections;
pub mod deadlines;
pub mod guard;
pub mod health;
pub mod metrics;
pub mod request_head;
pub mod serve;
pub mod static_files;
