//! What the Admin UI hears about the other sockets: the hooks the transports and the server API
//! call through [`Relay::admin`](super::Relay), and the sockets as the UI shows them.
//!
//! Without `--admin-ui` the relay has no feed and each hook is one `Option` check. With it,
//! connections and disconnections are counted for the UI's charts; in development mode every
//! hook also queues a live update (socket connected, room joined, event received...) that the
//! admin namespace broadcasts, as `@socket.io/admin-ui`'s `registerVerboseListeners` does.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::{Map, Value as Json, json};
use socketioxide::TransportType;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;
use tokio::sync::mpsc;

use super::binary;
use super::payload::now_ms;

/// Live updates waiting for the admin namespace; past this, updates are dropped (and counted)
/// rather than buffered without bound while the UI's broadcasts lag.
const QUEUE: usize = 4096;

/// A live update for the Admin UI, named and shaped as the Node package emits it.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminUpdate {
    /// `socket_connected(socket, date)`.
    SocketConnected(Json, u64),
    /// `socket_updated(partial socket)`.
    SocketUpdated(Json),
    /// `socket_disconnected(nsp, id, reason, date)`.
    SocketDisconnected(String, String, &'static str, u64),
    /// `room_joined(nsp, room, id, date)`.
    RoomJoined(String, String, String, u64),
    /// `room_left(nsp, room, id, date)`.
    RoomLeft(String, String, String, u64),
    /// `event_received(nsp, id, [event, ...args], date)`.
    EventReceived(String, String, Vec<Json>, u64),
    /// `event_sent(nsp, id, [event, ...args], date)`.
    EventSent(String, String, Vec<Json>, u64),
}

impl AdminUpdate {
    /// The event name the UI listens to.
    pub fn event(&self) -> &'static str {
        match self {
            AdminUpdate::SocketConnected(..) => "socket_connected",
            AdminUpdate::SocketUpdated(_) => "socket_updated",
            AdminUpdate::SocketDisconnected(..) => "socket_disconnected",
            AdminUpdate::RoomJoined(..) => "room_joined",
            AdminUpdate::RoomLeft(..) => "room_left",
            AdminUpdate::EventReceived(..) => "event_received",
            AdminUpdate::EventSent(..) => "event_sent",
        }
    }

    /// The event's arguments; dates as a JavaScript `Date` goes through JSON.
    pub fn into_args(self) -> Vec<Json> {
        match self {
            AdminUpdate::SocketConnected(socket, date) => vec![socket, iso_date(date).into()],
            AdminUpdate::SocketUpdated(socket) => vec![socket],
            AdminUpdate::SocketDisconnected(nsp, id, reason, date) => {
                vec![nsp.into(), id.into(), reason.into(), iso_date(date).into()]
            }
            AdminUpdate::RoomJoined(nsp, room, id, date)
            | AdminUpdate::RoomLeft(nsp, room, id, date) => {
                vec![nsp.into(), room.into(), id.into(), iso_date(date).into()]
            }
            AdminUpdate::EventReceived(nsp, id, args, date)
            | AdminUpdate::EventSent(nsp, id, args, date) => {
                vec![
                    nsp.into(),
                    id.into(),
                    Json::Array(args),
                    iso_date(date).into(),
                ]
            }
        }
    }
}

/// Connections and disconnections (by reason) since the UI's statistics last took them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Turnover {
    /// Sockets that connected.
    pub connections: u64,
    /// Sockets that disconnected, per reason their connection ended for (Node's Engine.IO
    /// close reasons).
    pub disconnections: Vec<(&'static str, u64)>,
}

/// The hooks' side of the admin namespace.
#[derive(Debug)]
pub struct AdminFeed {
    /// Where live updates go; `None` in production mode, where the UI gets statistics only.
    live: Option<mpsc::Sender<AdminUpdate>>,
    /// The other end, taken once by the admin namespace.
    receiver: Mutex<Option<mpsc::Receiver<AdminUpdate>>>,
    /// Live updates dropped on a full queue.
    dropped: AtomicU64,
    turnover: Mutex<Turnover>,
}

/// When a socket connected, kept on the socket for the socket list (development mode only).
#[derive(Debug, Clone, Copy)]
pub struct Issued(pub u64);

impl AdminFeed {
    /// A feed; `live` sends the socket list's updates (the UI's development mode).
    pub fn new(live: bool) -> Self {
        let (sender, receiver) = if live {
            let (sender, receiver) = mpsc::channel(QUEUE);
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        AdminFeed {
            live: sender,
            receiver: Mutex::new(receiver),
            dropped: AtomicU64::new(0),
            turnover: Mutex::default(),
        }
    }

    /// Whether live updates are sent (development mode).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The live updates, for the one task that broadcasts them.
    pub fn take_updates(&self) -> Option<mpsc::Receiver<AdminUpdate>> {
        lock(&self.receiver).take()
    }

    /// Connections and disconnections counted since the last call.
    pub fn take_turnover(&self) -> Turnover {
        std::mem::take(&mut *lock(&self.turnover))
    }

    /// A socket has joined its namespace; `data` is its `socket.data`.
    pub fn socket_connected<A: Adapter>(&self, socket: &Socket<A>, data: Map<String, Json>) {
        lock(&self.turnover).connections += 1;
        if self.is_live() {
            let now = now_ms();
            socket.extensions.insert(Issued(now));
            self.send(AdminUpdate::SocketConnected(
                serialize_socket(socket, data),
                now,
            ));
        }
    }

    /// A socket has left its namespace for `reason` (Node's name for it); it leaves its rooms
    /// too, which Node's adapter announces right after.
    pub fn socket_disconnected<A: Adapter>(&self, socket: &Socket<A>, reason: &'static str) {
        {
            let raw = connection_reason(reason);
            let mut turnover = lock(&self.turnover);
            match turnover.disconnections.iter_mut().find(|(r, _)| *r == raw) {
                Some((_, count)) => *count += 1,
                None => turnover.disconnections.push((raw, 1)),
            }
        }
        if !self.is_live() {
            return;
        }
        let (namespace, id, now) = (socket.ns(), socket.id.as_str(), now_ms());
        self.send(AdminUpdate::SocketDisconnected(
            namespace.to_owned(),
            id.to_owned(),
            reason,
            now,
        ));
        for room in socket.rooms() {
            self.room_left(namespace, &room, id);
        }
    }

    /// The app has changed socket `id`'s `socket.data` (Node's UI hears of it through a proxy
    /// on `socket.data`).
    pub fn data_updated(&self, namespace: &str, id: &str, data: Map<String, Json>) {
        if self.is_live() {
            let socket = json!({ "id": id, "nsp": namespace, "data": data });
            self.send(AdminUpdate::SocketUpdated(socket));
        }
    }

    /// Socket `id` has joined `room`.
    pub fn room_joined(&self, namespace: &str, room: &str, id: &str) {
        if self.is_live() {
            self.send(AdminUpdate::RoomJoined(
                namespace.to_owned(),
                room.to_owned(),
                id.to_owned(),
                now_ms(),
            ));
        }
    }

    /// Socket `id` has left `room`.
    pub fn room_left(&self, namespace: &str, room: &str, id: &str) {
        if self.is_live() {
            self.send(AdminUpdate::RoomLeft(
                namespace.to_owned(),
                room.to_owned(),
                id.to_owned(),
                now_ms(),
            ));
        }
    }

    /// Socket `id` has sent `event` with `args` (an acknowledgement callback is not one).
    pub fn event_received(&self, namespace: &str, id: &str, event: &str, args: &[rmpv::Value]) {
        if self.is_live() {
            self.send(AdminUpdate::EventReceived(
                namespace.to_owned(),
                id.to_owned(),
                event_args(event, args),
                now_ms(),
            ));
        }
    }

    /// `event` with `args` has been sent to socket `id` alone (not a broadcast).
    pub fn event_sent(&self, namespace: &str, id: &str, event: &str, args: &[rmpv::Value]) {
        if self.is_live() {
            self.send(AdminUpdate::EventSent(
                namespace.to_owned(),
                id.to_owned(),
                event_args(event, args),
                now_ms(),
            ));
        }
    }

    fn send(&self, update: AdminUpdate) {
        let Some(live) = &self.live else { return };
        if live.try_send(update).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per thousand: a lagging UI must not flood the log either.
            if dropped % 1000 == 1 {
                tracing::warn!(
                    dropped_total = dropped,
                    "Admin UI update dropped: the admin namespace lags behind"
                );
            }
        }
    }
}

/// The reason the UI's charts give a connection's end (Node's Engine.IO close reasons) for a
/// socket that left for `reason`: a client that leaves its namespace, or is made to, closes its
/// connection after, which the server sees as a `transport close`.
fn connection_reason(reason: &'static str) -> &'static str {
    match reason {
        "client namespace disconnect" | "server namespace disconnect" => "transport close",
        "server shutting down" => "forced close",
        other => other,
    }
}

fn event_args(event: &str, args: &[rmpv::Value]) -> Vec<Json> {
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(Json::from(event));
    all.extend(binary::args_to_json(args));
    all
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while holding it; the value is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Engine.IO's name of a transport.
pub fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Polling => "polling",
        TransportType::Websocket => "websocket",
    }
}

/// A socket of this node as the UI lists it (the Node package's `serialize`): its Engine.IO
/// client, transport, data, rooms and the request that opened it.
pub fn serialize_socket<A: Adapter>(socket: &Socket<A>, data: Map<String, Json>) -> Json {
    let parts = socket.req_parts();
    let issued = socket
        .extensions
        .get::<Issued>()
        .map_or_else(now_ms, |issued| issued.0);
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match headers.get_mut(name.as_str()) {
            // Node joins a repeated header's values with ", ".
            Some(Json::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Json::from(value.into_owned()));
            }
        }
    }
    let query: Map<String, Json> = parts
        .uri
        .query()
        .map(|query| {
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (key.to_owned(), Json::from(value))
                })
                .collect()
        })
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_canonical().to_string());
    // As Node's `serialize`: a proxy's word for the address first, as the UI shows it.
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .map(str::to_owned)
        .or(peer)
        .unwrap_or_default();
    let url = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    json!({
        "id": socket.id.as_str(),
        "clientId": client_id(parts),
        "transport": transport_name(socket.transport_type()),
        "nsp": socket.ns(),
        "data": data,
        "handshake": {
            "address": address,
            "headers": headers,
            "query": query,
            "issued": issued,
            // iorelay serves plain HTTP; TLS ends at a proxy, as Node sees it behind one.
            "secure": false,
            "time": date_string(issued),
            "url": url,
            "xdomain": header("origin").is_some(),
        },
        "rooms": socket.rooms().iter().map(|room| room.to_string()).collect::<Vec<_>>(),
    })
}

/// A socket of another node: the adapter carries its id and rooms, nothing more.
pub fn serialize_remote(id: &str, namespace: &str, rooms: Vec<String>) -> Json {
    json!({
        "id": id,
        // One UI "client" per remote socket: their Engine.IO clients are not known here.
        "clientId": id.get(..12).unwrap_or(id),
        "transport": "unknown",
        "nsp": namespace,
        "data": {},
        "handshake": {
            "address": "",
            "headers": {},
            "query": {},
            "issued": 0,
            "secure": false,
            "time": "",
            "url": "",
            "xdomain": false,
        },
        "rooms": rooms,
    })
}

/// A stand-in for the Engine.IO client id, which socketioxide does not expose: the sockets of
/// one client share its first request's parts, so their address identifies the client while
/// it lives. It is hashed with a per-process key so no memory address reaches the UI.
fn client_id(parts: &http::request::Parts) -> String {
    static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
    let address = std::ptr::from_ref(parts) as usize;
    let hash = KEY
        .get_or_init(std::hash::RandomState::new)
        .hash_one(address);
    format!("{:012x}", hash & 0xffff_ffff_ffff)
}

/// Unix milliseconds as JSON writes a JavaScript `Date`: `2026-12-04T19:59:52.123Z`.
pub fn iso_date(ms: u64) -> String {
    let (year, month, day, seconds) = civil(ms);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms % 1000
    )
}

/// Unix milliseconds as Node's `new Date().toString()` writes them on a UTC host.
pub fn date_string(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, seconds) = civil(ms);
    let weekday = DAYS[usize::try_from(ms / 86_400_000 % 7).unwrap_or(0)];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday} {month} {day:02} {year:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Year, month, day and second of the day of Unix milliseconds (Howard Hinnant's
/// `civil_from_days`).
fn civil(ms: u64) -> (u64, u64, u64, u64) {
    let days = ms / 86_400_000;
    let seconds = ms / 1000 % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_javascript_writes_them() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(1_796_414_392_123), "2026-12-04T19:59:52.123Z");
        assert_eq!(iso_date(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            date_string(1_796_414_392_123),
            "Fri Dec 04 2026 19:59:52 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn disconnections_are_charted_as_the_connection_ends() {
        assert_eq!(
            connection_reason("client namespace disconnect"),
            "transport close"
        );
        assert_eq!(connection_reason("ping timeout"), "ping timeout");
        assert_eq!(connection_reason("server shutting down"), "forced close");
    }

    #[test]
    fn production_mode_queues_nothing() {
        let feed = AdminFeed::new(false);
        assert!(feed.take_updates().is_none());
        feed.room_joined("/", "room", "a");
        assert_eq!(feed.take_turnover(), Turnover::default());
        assert_eq!(feed.take_turnover(), Turnover::default());
    }

    #[test]
    fn development_mode_queues_updates_in_order() {
        let feed = AdminFeed::new(true);
        let mut updates = feed.take_updates().expect("live updates");
        feed.room_joined("/", "lobby", "a");
        feed.event_received("/", "a", "chat", &[rmpv::Value::from("hi")]);
        let joined = updates.try_recv().expect("joined");
        assert_eq!(joined.event(), "room_joined");
        let received = updates.try_recv().expect("received").into_args();
        assert_eq!(received[2], json!(["chat", "hi"]));
        let mut data = Map::new();
        data.insert("score".into(), json!(3));
        feed.data_updated("/", "a", data);
        let updated = updates.try_recv().expect("updated");
        assert_eq!(updated.event(), "socket_updated");
        assert_eq!(
            updated.into_args(),
            [json!({ "id": "a", "nsp": "/", "data": { "score": 3 } })]
        );
    }
}
