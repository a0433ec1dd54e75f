//! The fixture server of socket.io-client's own test suite (`test/support/server.ts` in the
//! socket.io repository), rebuilt: its namespaces, its events and acknowledgements, and the
//! refusals its middlewares send.
//!
//! Node handles a socket's events one after the other, and the suite relies on it (`abuff2`
//! is acknowledged only after `abuff1` was seen; two `echo` acknowledgements come back in the
//! order asked). socketioxide runs each handler as its own task, so every event here takes a
//! [`Turn`] in arrival order and its handler waits for it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use rmpv::Value as Arg;
use serde::Serialize;
use serde_json::Value as Json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value};
use socketioxide::socket::Socket;
use socketioxide_core::adapter::DefinedAdapter;

use super::request::send_ack;
use crate::relay::admin_feed::{date_string, iso_date};
use crate::relay::payload::{EventArgs, now_ms};
use crate::relay::turnstile::Turnstile;

/// The main namespace's refusal of a handshake whose query has `fail`.
pub const MAIN_REFUSAL: &str = "Auth failed (main namespace)";

/// `/no`'s refusal of every socket.
pub const CUSTOM_REFUSAL: &str = "Auth failed (custom namespace)";

/// Registers the fixture's namespaces on `io`, returning their adapter initialisations; any
/// other namespace is refused as "Invalid namespace", as by Node.
pub fn register<A: DefinedAdapter + Adapter>(io: &SocketIo<A>) -> Vec<A::InitRes> {
    vec![
        io.ns("/", on_connect::<A>.with(admit_main::<A>)),
        io.ns("/foo", on_connect::<A>.with(admit_foo::<A>)),
        io.ns("/timeout_socket", on_connect::<A>),
        io.ns("/valid", on_connect::<A>),
        io.ns("/asd", on_connect::<A>),
        io.ns("/abc", emit_handshake::<A>.with(keep_handshake::<A>)),
        io.ns("/no", on_connect::<A>.with(refuse_all::<A>)),
    ]
}

/// How long the fixture's `allowRequest` takes to accept a new Engine.IO session.
const ALLOW_REQUEST_DELAY: Duration = Duration::from_millis(10);

/// Adds the fixture's `allowRequest` to the Socket.IO route (`router` holds only that route):
/// a handshake, by polling or WebSocket, is answered 10 ms late, so that a client whose
/// `timeout` is 0 times out before the session opens, as the suite's timeout tests expect.
/// Requests of an open session (`sid` in the query) are not delayed, as in Node.
pub fn delay_handshakes(router: Router) -> Router {
    router.route_layer(middleware::from_fn(allow_request))
}

async fn allow_request(request: Request, next: Next) -> Response {
    let has_sid = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("sid=")));
    if !has_sid {
        tokio::time::sleep(ALLOW_REQUEST_DELAY).await;
    }
    next.run(request).await
}

/// Why a socket may not join a namespace; the client reads the text in `connect_error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(&'static str);

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    tracing::debug!(sid = %socket.id, ns = socket.ns(), "connected");
}

/// `/no`: every socket is refused.
async fn refuse_all<A: Adapter>(_socket: SocketRef<A>) -> Result<(), Refusal> {
    Err(Refusal(CUSTOM_REFUSAL))
}

/// `/abc`: keeps the handshake, which the connect handler emits.
async fn keep_handshake<A: Adapter>(
    socket: SocketRef<A>,
    Data(auth): Data<Json>,
) -> Result<(), Infallible> {
    socket
        .extensions
        .insert(Arc::new(Handshake::of(&socket, auth)));
    Ok(())
}

/// `/abc`: emits `handshake` with the socket's handshake, as soon as it is connected.
async fn emit_handshake<A: Adapter>(socket: SocketRef<A>) {
    if let Some(handshake) = socket.extensions.get::<Arc<Handshake>>() {
        emit(&socket, "handshake", &*handshake);
    }
}

/// `/foo`: `getId` is answered with the socket id.
async fn admit_foo<A: Adapter>(socket: SocketRef<A>) -> Result<(), Infallible> {
    socket.extensions.insert(Arc::new(Turnstile::default()));
    socket.on("getId", on_get_id::<A>);
    Ok(())
}

/// `/`: refuses a handshake whose query has a non-empty `fail`, then registers the events,
/// before the namespace CONNECT is acknowledged so that a client emitting on `connect` does
/// not race the registration.
async fn admit_main<A: Adapter>(
    socket: SocketRef<A>,
    Data(auth): Data<Json>,
) -> Result<(), Refusal> {
    let handshake = Handshake::of(&socket, auth);
    if handshake
        .query
        .0
        .iter()
        .any(|(key, value)| key == "fail" && value.as_str().is_none_or(|v| !v.is_empty()))
    {
        return Err(Refusal(MAIN_REFUSAL));
    }
    socket.extensions.insert(Arc::new(handshake));
    socket.extensions.insert(Arc::new(Turnstile::default()));
    socket.extensions.insert(Arc::new(Arrivals::default()));
    socket.on("hi", on_hi::<A>);
    socket.on("echo", on_echo::<A>);
    socket.on("ack", on_ack::<A>);
    socket.on("getAckDate", on_get_ack_date::<A>);
    socket.on("getDate", on_get_date::<A>);
    socket.on("getDateObj", on_get_date_obj::<A>);
    socket.on("getUtf8", on_get_utf8::<A>);
    socket.on("false", on_false::<A>);
    socket.on("doge", on_doge::<A>);
    socket.on("buffa", on_buffa::<A>);
    socket.on("jsonbuff", on_jsonbuff::<A>);
    socket.on("abuff1", on_abuff1::<A>);
    socket.on("abuff2", on_abuff2::<A>);
    socket.on("blob", on_blob::<A>);
    socket.on("jsonblob", on_jsonblob::<A>);
    socket.on("blob1", on_blob1::<A>);
    socket.on("blob2", on_blob2::<A>);
    socket.on("blob3", on_blob3::<A>);
    socket.on("getbin", on_getbin::<A>);
    socket.on("getHandshake", on_get_handshake::<A>);
    socket.on("getId", on_get_id::<A>);
    Ok(())
}

async fn on_hi<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    emit(&socket, "hi", &EventArgs::default());
}

/// Acknowledges with the first argument.
async fn on_echo<A: Adapter>(
    socket: SocketRef<A>,
    turn: Turn,
    ack: AckSender<A>,
    Data(args): Data<EventArgs>,
) {
    turn.wait().await;
    send_ack(&socket, ack, &args.first().cloned().unwrap_or(Arg::Nil));
}

/// Emits `ack` with an acknowledgement; `got it` follows if the client answers `5` and an
/// object whose `test` is set.
async fn on_ack<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    let answer = match socket.emit_with_ack::<_, EventArgs>("ack", &EventArgs::default()) {
        Ok(answer) => answer,
        Err(error) => {
            tracing::debug!(sid = %socket.id, %error, "ack not sent");
            return;
        }
    };
    // Later events need not wait for the client's answer.
    drop(turn);
    let Ok(EventArgs(args)) = answer.await else {
        return;
    };
    let five = args.first().and_then(Arg::as_f64) == Some(5.0);
    let test = args
        .get(1)
        .and_then(|b| field(b, "test"))
        .is_some_and(truthy);
    if five && test {
        emit(&socket, "got it", &EventArgs::default());
    }
}

async fn on_get_ack_date<A: Adapter>(socket: SocketRef<A>, turn: Turn, ack: AckSender<A>) {
    turn.wait().await;
    send_ack(&socket, ack, &iso_date(now_ms()));
}

async fn on_get_date<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    emit(&socket, "takeDate", &iso_date(now_ms()));
}

async fn on_get_date_obj<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    let date = serde_json::json!({ "date": iso_date(now_ms()) });
    emit(&socket, "takeDateObj", &date);
}

async fn on_get_utf8<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    for text in [
        "てすと",
        "Я Б Г Д Ж Й",
        "Ä ä Ü ü ß",
        "utf8 — string",
        "utf8 — string",
    ] {
        emit(&socket, "takeUtf8", text);
    }
}

async fn on_false<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    emit(&socket, "false", &false);
}

/// The fixture's binary payload.
fn asdfasdf() -> Arg {
    Arg::Binary(b"asdfasdf".to_vec())
}

async fn on_doge<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    emit(&socket, "doge", &asdfasdf());
}

async fn on_getbin<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    emit(&socket, "takebin", &asdfasdf());
}

async fn on_buffa<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    if args.first().is_some_and(Arg::is_bin) {
        emit(&socket, "buffack", &EventArgs::default());
    }
}

async fn on_blob<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    if args.first().is_some_and(Arg::is_bin) {
        emit(&socket, "back", &EventArgs::default());
    }
}

/// `{ hello: "lol", message: <binary>, goodbye: "gotcha" }`, as `jsonbuff` and `jsonblob` send.
fn is_json_with_binary(args: &EventArgs) -> bool {
    args.first().is_some_and(|a| {
        field(a, "hello").and_then(Arg::as_str) == Some("lol")
            && field(a, "message").is_some_and(Arg::is_bin)
            && field(a, "goodbye").and_then(Arg::as_str) == Some("gotcha")
    })
}

async fn on_jsonbuff<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    if is_json_with_binary(&args) {
        emit(&socket, "jsonbuff-ack", &EventArgs::default());
    } else {
        tracing::warn!(sid = %socket.id, ?args, "jsonbuff: unexpected payload");
    }
}

async fn on_jsonblob<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    if is_json_with_binary(&args) {
        emit(&socket, "jsonblob-ack", &EventArgs::default());
    } else {
        tracing::warn!(sid = %socket.id, ?args, "jsonblob: unexpected payload");
    }
}

/// Which of the events that must come in order a socket has received.
#[derive(Debug, Default)]
struct Arrivals {
    abuff1: AtomicBool,
    blob1: AtomicBool,
    blob2: AtomicBool,
}

impl Arrivals {
    fn of<A: Adapter>(socket: &SocketRef<A>) -> Arc<Arrivals> {
        socket.extensions.get::<Arc<Arrivals>>().unwrap_or_default()
    }
}

async fn on_abuff1<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    if args.first().is_some_and(Arg::is_bin) {
        Arrivals::of(&socket).abuff1.store(true, Release);
    }
}

async fn on_abuff2<A: Adapter>(socket: SocketRef<A>, turn: Turn) {
    turn.wait().await;
    if Arrivals::of(&socket).abuff1.load(Acquire) {
        emit(&socket, "abuff2-ack", &EventArgs::default());
    } else {
        tracing::warn!(sid = %socket.id, "abuff2 before abuff1");
    }
}

async fn on_blob1<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    if args.first().is_some_and(Arg::is_bin) {
        Arrivals::of(&socket).blob1.store(true, Release);
    }
}

async fn on_blob2<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    let arrivals = Arrivals::of(&socket);
    if arrivals.blob1.load(Acquire) && args.first().and_then(Arg::as_str) == Some("second") {
        arrivals.blob2.store(true, Release);
    }
}

async fn on_blob3<A: Adapter>(socket: SocketRef<A>, turn: Turn, Data(args): Data<EventArgs>) {
    turn.wait().await;
    let arrivals = Arrivals::of(&socket);
    if args.first().is_some_and(Arg::is_bin)
        && arrivals.blob1.load(Acquire)
        && arrivals.blob2.load(Acquire)
    {
        emit(&socket, "blob3-ack", &EventArgs::default());
    } else {
        tracing::warn!(sid = %socket.id, "blob3 out of order");
    }
}

async fn on_get_handshake<A: Adapter>(socket: SocketRef<A>, turn: Turn, ack: AckSender<A>) {
    turn.wait().await;
    let handshake = socket.extensions.get::<Arc<Handshake>>();
    send_ack(&socket, ack, &handshake.as_deref());
}

async fn on_get_id<A: Adapter>(socket: SocketRef<A>, turn: Turn, ack: AckSender<A>) {
    turn.wait().await;
    send_ack(&socket, ack, socket.id.as_str());
}

fn emit<A: Adapter, T: Serialize + ?Sized>(socket: &Socket<A>, event: &str, data: &T) {
    if let Err(error) = socket.emit(event, data) {
        tracing::debug!(sid = %socket.id, event, %error, "not sent");
    }
}

/// The value of `key` in a map argument.
fn field<'a>(arg: &'a Arg, key: &str) -> Option<&'a Arg> {
    arg.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// JavaScript's truthiness of a decoded argument.
fn truthy(arg: &Arg) -> bool {
    match arg {
        Arg::Nil => false,
        Arg::Boolean(b) => *b,
        Arg::String(s) => s.as_str().is_some_and(|s| !s.is_empty()),
        Arg::Integer(_) | Arg::F32(_) | Arg::F64(_) => arg.as_f64().is_some_and(|n| n != 0.0),
        _ => true,
    }
}

/// An event's place in its socket's order, taken as socketioxide decodes the event (in
/// arrival order) and given back when the handler ends.
struct Turn {
    turnstile: Option<Arc<Turnstile>>,
    ticket: u64,
}

impl<A: Adapter> FromMessageParts<A> for Turn {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let turnstile = socket.extensions.get::<Arc<Turnstile>>();
        let ticket = turnstile.as_ref().map_or(0, |t| t.issue());
        Ok(Turn { turnstile, ticket })
    }
}

impl Turn {
    /// Waits until every earlier event of the socket has been handled.
    async fn wait(&self) {
        if let Some(turnstile) = &self.turnstile {
            turnstile.wait_for(self.ticket).await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(turnstile) = &self.turnstile {
            turnstile.finish(self.ticket);
        }
    }
}

/// `socket.handshake` as Node builds it, in its key order.
#[derive(Debug, Serialize)]
pub struct Handshake {
    headers: Pairs,
    time: String,
    address: String,
    xdomain: bool,
    secure: bool,
    issued: u64,
    url: String,
    query: Pairs,
    auth: Json,
}

impl Handshake {
    fn of<A: Adapter>(socket: &Socket<A>, auth: Json) -> Handshake {
        let parts = socket.req_parts();
        let mut headers = Pairs::default();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            // Node joins a repeated header's values with ", ".
            headers.push(name.as_str(), Json::String(value), |joined, value| {
                if let (Json::String(joined), Json::String(value)) = (joined, value) {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
            });
        }
        let mut query = Pairs::default();
        let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|pairs| pairs.0)
            .unwrap_or_default();
        for (key, value) in pairs {
            // Node's querystring makes a repeated key an array of its values.
            query.push(&key, Json::String(value), |first, value| match first {
                Json::Array(values) => values.push(value),
                single => *single = Json::Array(vec![single.take(), value]),
            });
        }
        let issued = now_ms();
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_string())
            .unwrap_or_default();
        let url = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Handshake {
            xdomain: parts.headers.contains_key(http::header::ORIGIN),
            headers,
            time: date_string(issued),
            address,
            // iorelay serves plain HTTP.
            secure: false,
            issued,
            url,
            query,
            // Node shows `{}` for a CONNECT without a payload.
            auth: if auth.is_null() {
                Json::Object(serde_json::Map::new())
            } else {
                auth
            },
        }
    }
}

/// An object whose keys keep the order they came in (serde_json's own map sorts them).
#[derive(Debug, Default)]
struct Pairs(Vec<(String, Json)>);

impl Pairs {
    /// Adds `key`, or merges `value` into its earlier value with `merge`.
    fn push(&mut self, key: &str, value: Json, merge: impl FnOnce(&mut Json, Json)) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, earlier)) => merge(earlier, value),
            None => self.0.push((key.to_owned(), value)),
        }
    }
}

impl Serialize for Pairs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}
