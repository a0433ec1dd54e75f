//! What a client's first request says about it: its address, query and headers, as
//! `socket.handshake` shows them to the app.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query};
use http::HeaderMap;
use http::request::Parts;
use serde_json::Value as Json;

use super::payload::now_ms;
use super::webhook::Handshake;

/// Request headers the app is shown, as Node's `socket.handshake.headers` would have them.
const SHOWN_HEADERS: [&str; 3] = ["user-agent", "origin", "cookie"];

/// The client's address: the first `X-Forwarded-For` hop behind a proxy, else the TCP peer.
pub fn remote_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|hop| hop.trim().to_owned())
        .or_else(|| peer.map(|peer| peer.to_string()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The handshake of a client whose first request is `parts` and whose `auth` payload is `auth`;
/// with `shown` off (no app to show it to), only the address, which the logs need.
pub fn handshake(parts: &Parts, auth: Json, shown: bool) -> Handshake {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let address = remote_address(&parts.headers, peer);
    if !shown {
        // Each socket keeps its handshake for its lifetime: without an app, keep no more.
        return Handshake {
            address,
            ..Handshake::default()
        };
    }
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|query| query.0)
        .unwrap_or_default();
    let headers = SHOWN_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    Handshake {
        auth,
        query,
        headers,
        address,
        time: now_ms(),
    }
}
