//! Plain HTTP served beside Socket.IO on the same port.

pub mod guard;
pub mod health;
pub mod request_head;
pub mod static_files;
