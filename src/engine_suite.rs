//! The fixture server of engine.io-client's own test suite (`test/support/hooks.js` in the
//! socket.io repository), rebuilt at `/engine.io/` in the client-suite profile: a raw
//! Engine.IO server that greets each session with `hi` and sends every message back.
//!
//! Beside the messages, the fixture's options show on the wire: `pingInterval` 500 ms,
//! `maxHttpBufferSize` 100 bytes, an `allowRequest` that refuses a handshake whose query has
//! `deny`, and cookies set on every handshake (`initial_headers`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use engineioxide::Str;
use engineioxide::config::EngineIoConfig;
use engineioxide::handler::EngineIoHandler;
use engineioxide::service::EngineIoService;
use engineioxide::socket::{DisconnectReason, Socket};
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::relay::admin_feed::date_string;
use crate::relay::payload::now_ms;

/// Where the suite connects.
pub const PATH: &str = "/engine.io/";

/// The fixture's `maxHttpBufferSize`: a longer POST body or WebSocket message ends the session.
const MAX_PAYLOAD: usize = 100;

/// The routes of the fixture, with its options and hooks.
pub fn router() -> Router {
    let requests = Arc::new(DataRequests::default());
    let handler = Arc::new(SuiteHandler {
        requests: requests.clone(),
    });
    let config = EngineIoConfig::builder()
        .req_path(PATH)
        .ping_interval(Duration::from_millis(500))
        // Node's defaults, which the fixture keeps.
        .ping_timeout(Duration::from_millis(20_000))
        .max_buffer_size(1024)
        .max_payload(MAX_PAYLOAD as u64)
        .ws_max_message_size(MAX_PAYLOAD)
        .ws_max_frame_size(MAX_PAYLOAD)
        .build();
    let service = EngineIoService::with_config(handler, config);
    Router::new()
        .route_service(PATH, service)
        .route_layer(middleware::from_fn_with_state(requests, hooks))
}

/// The headers of the polling request each session's messages are being read from, for
/// `sendHeaders` (Node's `socket.transport.dataReq.headers`).
#[derive(Debug, Default)]
struct DataRequests(Mutex<HashMap<String, HeaderMap>>);

impl DataRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeaderMap>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `allowRequest` and `initial_headers` for a handshake; for a polling POST, keeps its headers
/// while its messages are handled.
async fn hooks(
    State(requests): State<Arc<DataRequests>>,
    request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    let has = |key: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(key))
    };
    let Some(sid) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sid="))
        .map(str::to_owned)
    else {
        if has("deny") {
            // engine.io's `Server.errors.FORBIDDEN`.
            return (
                StatusCode::FORBIDDEN,
                [(CONTENT_TYPE, "application/json")],
                r#"{"code":4,"message":"Forbidden"}"#,
            )
                .into_response();
        }
        let mut response = next.run(request).await;
        for cookie in handshake_cookies() {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(SET_COOKIE, value);
            }
        }
        return response;
    };
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    requests
        .lock()
        .insert(sid.clone(), request.headers().clone());
    let response = next.run(request).await;
    requests.lock().remove(&sid);
    response
}

/// The cookies the fixture sets on every handshake, as the npm `cookie` package writes them:
/// one for a day, one for the session (secure and HTTP-only), and two already expired.
fn handshake_cookies() -> [String; 4] {
    [
        "1=1; Max-Age=86400".to_owned(),
        "2=2; Path=/; HttpOnly; Secure; SameSite=Strict".to_owned(),
        "3=3; Max-Age=0".to_owned(),
        format!("4=4; Expires={}", http_date(now_ms())),
    ]
}

/// Unix milliseconds as an HTTP date: `Sat, 05 Dec 2026 10:16:41 GMT`.
fn http_date(ms: u64) -> String {
    // `Sat Dec 05 2026 10:16:41 GMT+0000 (Coordinated Universal Time)`
    let date = date_string(ms);
    let parts: Vec<&str> = date.split(' ').collect();
    match parts.as_slice() {
        [weekday, month, day, year, time, ..] => {
            format!("{weekday}, {day} {month} {year} {time} GMT")
        }
        _ => date,
    }
}

/// Greets each session with `hi` and sends every message back; three messages ask for
/// something else.
#[derive(Debug)]
struct SuiteHandler {
    requests: Arc<DataRequests>,
}

impl EngineIoHandler for SuiteHandler {
    type Data = ();

    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        send(&socket, "hi".into());
    }

    fn on_disconnect(&self, socket: Arc<Socket<()>>, reason: DisconnectReason) {
        tracing::debug!(sid = %socket.id, ?reason, "engine.io-client suite session closed");
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<()>>) {
        match msg.as_str() {
            "give binary" => {
                if let Err(error) = socket.emit_binary(Bytes::from_static(&[0, 1, 2, 3, 4])) {
                    tracing::debug!(sid = %socket.id, %error, "binary not sent");
                }
            }
            "give utf8" => send(&socket, "пойду спать всем спокойной ночи".into()),
            "sendHeaders" => {
                // Only a polling request has headers here; Node sends `undefined` otherwise,
                // which its parser writes as an empty message.
                let headers = self
                    .requests
                    .lock()
                    .get(socket.id.as_str())
                    .map(node_headers);
                send(&socket, headers.unwrap_or_default().into());
            }
            _ => send(&socket, msg),
        }
    }

    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<Socket<()>>) {
        if let Err(error) = socket.emit_binary(data) {
            tracing::debug!(sid = %socket.id, %error, "binary echo not sent");
        }
    }
}

fn send(socket: &Socket<()>, msg: Str) {
    if let Err(error) = socket.emit(msg) {
        tracing::debug!(sid = %socket.id, %error, "message not sent");
    }
}

/// Request headers as Node's `IncomingMessage.headers` shows them, in JSON: lower-case names,
/// a repeated header's values joined with ", " (with "; " for `cookie`).
fn node_headers(headers: &HeaderMap) -> String {
    let mut shown = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let separator = if name == http::header::COOKIE {
            "; "
        } else {
            ", "
        };
        match shown.get_mut(name.as_str()) {
            Some(serde_json::Value::String(joined)) => {
                joined.push_str(separator);
                joined.push_str(&value);
            }
            _ => {
                shown.insert(name.as_str().to_owned(), value.into());
            }
        }
    }
    serde_json::Value::Object(shown).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_headers_read_as_node_writes_them() {
        assert_eq!(
            http_date(1_796_414_392_123),
            "Fri, 04 Dec 2026 19:59:52 GMT"
        );
        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("1=1"));
        headers.append("cookie", HeaderValue::from_static("2=2"));
        headers.append("accept", HeaderValue::from_static("*/*"));
        let shown: serde_json::Value = serde_json::from_str(&node_headers(&headers)).expect("JSON");
        assert_eq!(shown["cookie"], "1=1; 2=2");
        assert_eq!(shown["accept"], "*/*");
    }
}
