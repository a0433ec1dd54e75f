//! Integration tests: the real server on 127.0.0.1:0, driven over HTTP and raw Engine.IO.

mod admin;
mod cli;
mod client;
mod client_suite;
mod cluster;
mod conformance;
mod contract;
mod floods;
mod fuzz_corpus;
mod helpers;
mod http;
mod limits;
mod metrics;
mod plain_ws;
mod redis_server;
mod resilience;
mod router;
mod runtime;
