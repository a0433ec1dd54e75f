//! Connection state recovery (`--connection-state-recovery`) on a single node: the sessions of
//! the sockets that left and the packets sent since, kept in memory, as Node's in-memory
//! `SessionAwareAdapter` does.
//!
//! A packet is kept until it is older than `--recovery-max-disconnection-ms` or its
//! namespace's log is over `--recovery-buffer-bytes` (then the oldest go first, with a warning:
//! a client gone since before them can no longer recover).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value as Json};
use socketioxide::recovery::{RestoredSession, SessionEvent, SessionState, SessionStore};
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions, Room};
use socketioxide_core::{Sid, Str, Value};

use super::auth::UserId;
use super::client::ClientState;
use crate::config::Config;

/// How often expired sessions and packets are swept, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often, at most, a namespace warns that its log dropped packets early.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What a recovered socket gets back of iorelay's own state: its user and `socket.data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The authenticated user.
    pub user: Option<UserId>,
    /// `socket.data`.
    pub data: Map<String, Json>,
}

impl Identity {
    /// The identity kept in a session's state: the live client's (in memory) or the one read
    /// back from Redis.
    pub fn from_state(state: &SessionState) -> Option<Identity> {
        if let Some(client) = state.downcast_ref::<ClientState>() {
            return Some(Identity {
                user: client.user.clone(),
                data: client.data(),
            });
        }
        state.downcast_ref::<Identity>().cloned()
    }
}

/// The identity of the session `socket` recovered, if it did.
pub fn recovered_identity<A: socketioxide::adapter::Adapter>(
    socket: &socketioxide::extract::SocketRef<A>,
) -> Option<Identity> {
    if !socket.recovered() {
        return None;
    }
    // A session kept without a state (its socket left during its connect checks) recovers
    // with an empty identity, as a fresh socket would start.
    Some(
        socket
            .session_state()
            .and_then(|state| Identity::from_state(&state))
            .unwrap_or_default(),
    )
}

/// Recovery's settings, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct RecoverySettings {
    /// How long a session is kept after its socket left.
    pub window: Duration,
    /// Whether a recovered socket skips the connect checks.
    pub skip_checks: bool,
    /// Bytes of packets kept per namespace in memory.
    pub buffer_bytes: usize,
}

impl RecoverySettings {
    /// The settings, when `--connection-state-recovery` is on.
    pub fn from_config(config: &Config) -> Option<Self> {
        config.connection_state_recovery.then(|| RecoverySettings {
            window: Duration::from_millis(config.recovery_max_disconnection_ms),
            skip_checks: config.recovery_skip_middlewares,
            buffer_bytes: config.recovery_buffer_bytes,
        })
    }
}

/// `builder` with an in-memory session store when `--connection-state-recovery` is on.
pub fn with_memory_store<A: socketioxide::adapter::Adapter>(
    builder: socketioxide::SocketIoBuilder<A>,
    config: &Config,
) -> socketioxide::SocketIoBuilder<A> {
    match RecoverySettings::from_config(config) {
        Some(settings) => builder.with_session_store(Arc::new(MemorySessions::new(settings))),
        None => builder,
    }
}

/// A new private session id: 15 random bytes as 20 URL-safe base64 characters, as Node's
/// `base64id`.
pub fn new_pid() -> Str {
    let mut bytes = [0u8; 15];
    // The system's random source failing leaves zeros; the id then only loses its secrecy.
    let _ = getrandom::fill(&mut bytes);
    Str::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a packet sent to `opts` reaches a socket in `rooms` (Node's `shouldIncludePacket`);
/// `sid` is the socket's id, a room of its own.
pub fn reaches(rooms: &[Room], sid: &str, to: &[Room], except: &[Room]) -> bool {
    let member = |room: &Room| room == sid || rooms.contains(room);
    let included = to.is_empty() || to.iter().any(member);
    let excluded = except.iter().any(member);
    included && !excluded
}

/// The rooms a packet sent with `opts` leaves out: `except`, and the sender of a
/// `socket.broadcast`.
pub fn excluded(opts: &BroadcastOptions) -> Vec<Room> {
    let mut except: Vec<Room> = opts.except.iter().cloned().collect();
    if opts.has_flag(BroadcastFlags::Broadcast)
        && let Some(sid) = opts.sid
    {
        except.push(Room::Owned(sid.to_string()));
    }
    except
}

/// Sessions and packets kept in memory.
#[derive(Debug)]
pub struct MemorySessions {
    settings: RecoverySettings,
    /// Starts every offset of this process, so an offset from before a restart is unknown.
    prefix: String,
    logs: RwLock<HashMap<Str, Arc<Mutex<PacketLog>>>>,
    sessions: Mutex<SessionTable>,
}

#[derive(Debug, Default)]
struct SessionTable {
    by_pid: HashMap<Str, Kept>,
    swept: Option<Instant>,
}

/// A session whose socket left.
#[derive(Debug)]
struct Kept {
    ns: Str,
    sid: Sid,
    rooms: Vec<Room>,
    state: Option<SessionState>,
    left: Instant,
}

/// One namespace's packets, oldest first; the packet at index `i` has sequence number
/// `first + i`.
#[derive(Debug, Default)]
struct PacketLog {
    first: u64,
    packets: VecDeque<Logged>,
    bytes: usize,
    swept: Option<Instant>,
    dropped_early: u64,
    warned: Option<Instant>,
}

#[derive(Debug)]
struct Logged {
    at: Instant,
    to: Box<[Room]>,
    except: Box<[Room]>,
    data: Value,
    size: usize,
}

impl MemorySessions {
    /// An empty store.
    pub fn new(settings: RecoverySettings) -> Self {
        let prefix = new_pid().chars().take(8).collect();
        MemorySessions {
            settings,
            prefix,
            logs: RwLock::default(),
            sessions: Mutex::default(),
        }
    }

    fn log(&self, ns: &Str) -> Arc<Mutex<PacketLog>> {
        if let Some(log) = read(&self.logs).get(ns) {
            return log.clone();
        }
        let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
        logs.entry(ns.clone()).or_default().clone()
    }

    /// Bytes of packets kept, all namespaces together.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        read(&self.logs).values().map(|log| lock(log).bytes).sum()
    }

    /// The sequence number an offset of this process names.
    fn sequence(&self, offset: &str) -> Option<u64> {
        let rest = offset
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('-')?;
        u64::from_str_radix(rest, 36).ok()
    }
}

impl SessionStore for MemorySessions {
    fn record(&self, ns: &Str, opts: &BroadcastOptions, data: &mut Value) {
        let log = self.log(ns);
        let mut log = lock(&log);
        let now = Instant::now();
        let seq = log.first + log.packets.len() as u64;
        socketioxide::recovery::append_offset(data, &format!("{}-{}", self.prefix, radix36(seq)));
        let to: Box<[Room]> = opts.rooms.iter().cloned().collect();
        let except: Box<[Room]> = excluded(opts).into();
        let size = data_size(data)
            + to.iter()
                .chain(except.iter())
                .map(|r| r.len() + 24)
                .sum::<usize>()
            + std::mem::size_of::<Logged>();
        log.bytes += size;
        log.packets.push_back(Logged {
            at: now,
            to,
            except,
            data: data.clone(),
            size,
        });
        if log
            .swept
            .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            log.swept = Some(now);
            while log
                .packets
                .front()
                .is_some_and(|p| now.duration_since(p.at) > self.settings.window)
            {
                log.pop_front();
            }
        }
        let mut early = 0;
        while log.bytes > self.settings.buffer_bytes && log.packets.len() > 1 {
            log.pop_front();
            early += 1;
        }
        if early > 0 {
            log.dropped_early += early;
            if log
                .warned
                .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
            {
                log.warned = Some(now);
                let window_kept = log.packets.front().map(|p| now.duration_since(p.at));
                tracing::warn!(
                    ns = ns.as_str(),
                    dropped = log.dropped_early,
                    buffer_bytes = self.settings.buffer_bytes,
                    kept_ms = window_kept.map(|d| d.as_millis() as u64),
                    "recovery buffer full: oldest packets dropped before the end of the recovery window; clients gone longer cannot recover"
                );
                log.dropped_early = 0;
            }
        }
    }

    fn restore(
        &self,
        ns: Str,
        pid: Str,
        offset: Str,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        let restored = (|| {
            let kept = {
                let mut sessions = lock(&self.sessions);
                let kept = sessions.by_pid.remove(&pid)?;
                if kept.ns != ns || kept.left.elapsed() > self.settings.window {
                    return None;
                }
                kept
            };
            let seq = self.sequence(&offset)?;
            let log = self.log(&ns);
            let log = lock(&log);
            let index = usize::try_from(seq.checked_sub(log.first)?).ok()?;
            if index >= log.packets.len() {
                return None;
            }
            let sid = kept.sid.to_string();
            let missed = log
                .packets
                .iter()
                .skip(index + 1)
                .filter(|p| reaches(&kept.rooms, &sid, &p.to, &p.except))
                .map(|p| p.data.clone())
                .collect();
            Some(RestoredSession {
                sid: kept.sid,
                rooms: kept.rooms,
                state: kept.state,
                missed,
            })
        })();
        Box::pin(std::future::ready(restored))
    }

    fn update(&self, ns: &Str, sid: Sid, pid: &Str, event: SessionEvent) {
        let mut sessions = lock(&self.sessions);
        let now = Instant::now();
        if sessions
            .swept
            .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            sessions.swept = Some(now);
            let window = self.settings.window;
            sessions
                .by_pid
                .retain(|_, kept| now.duration_since(kept.left) <= window);
        }
        match event {
            SessionEvent::Disconnected {
                rooms,
                state,
                recoverable: true,
            } => {
                sessions.by_pid.insert(
                    pid.clone(),
                    Kept {
                        ns: ns.clone(),
                        sid,
                        rooms,
                        state,
                        left: now,
                    },
                );
            }
            _ => {
                sessions.by_pid.remove(pid);
            }
        }
    }

    fn new_pid(&self) -> Str {
        new_pid()
    }
}

impl PacketLog {
    fn pop_front(&mut self) {
        if let Some(packet) = self.packets.pop_front() {
            self.bytes -= packet.size;
            self.first += 1;
        }
    }
}

/// Bytes of an event's encoded data.
pub fn data_size(data: &Value) -> usize {
    match data {
        Value::Str(text, bins) => {
            text.len()
                + bins
                    .as_ref()
                    .map_or(0, |b| b.iter().map(|b| b.len() + 16).sum())
        }
        Value::Bytes(bytes) => bytes.len(),
    }
}

/// `n` in base 36, as Node's `yeast` writes its ids.
pub fn radix36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(buffer_bytes: usize) -> RecoverySettings {
        RecoverySettings {
            window: Duration::from_secs(60),
            skip_checks: true,
            buffer_bytes,
        }
    }

    fn to(rooms: &[&str]) -> BroadcastOptions {
        let mut opts = BroadcastOptions::default();
        opts.rooms
            .extend(rooms.iter().map(|r| Room::Owned((*r).to_owned())));
        opts
    }

    fn event(text: &str) -> Value {
        Value::Str(Str::from(format!(r#"["e","{text}"]"#)), None)
    }

    fn offset_of(data: &Value) -> String {
        let text = data.as_str().expect("text").as_str();
        let args: Vec<String> = serde_json::from_str(text).expect("array");
        args.last().expect("offset").clone()
    }

    fn leave(store: &MemorySessions, sid: Sid, pid: &str, rooms: &[&str]) {
        let rooms = rooms.iter().map(|r| Room::Owned((*r).to_owned())).collect();
        store.update(
            &Str::from("/"),
            sid,
            &Str::from(pid.to_owned()),
            SessionEvent::Disconnected {
                rooms,
                state: None,
                recoverable: true,
            },
        );
    }

    fn restore(store: &MemorySessions, pid: &str, offset: &str) -> Option<RestoredSession> {
        futures_util::FutureExt::now_or_never(store.restore(
            Str::from("/"),
            Str::from(pid.to_owned()),
            Str::from(offset.to_owned()),
        ))
        .flatten()
    }

    #[test]
    fn replays_what_the_rooms_were_sent_after_the_offset() {
        let store = MemorySessions::new(settings(1 << 20));
        let ns = Str::from("/");
        let sid = Sid::new();
        let mut first = event("0");
        store.record(&ns, &to(&["r"]), &mut first);
        for (i, rooms) in [&["r"][..], &["other"], &[], &[sid.as_str()]]
            .iter()
            .enumerate()
        {
            store.record(&ns, &to(rooms), &mut event(&i.to_string()));
        }
        leave(&store, sid, "p", &["r"]);
        let restored = restore(&store, "p", &offset_of(&first)).expect("restored");
        assert_eq!(restored.sid, sid);
        let texts: Vec<String> = restored
            .missed
            .iter()
            .map(|d| serde_json::from_str::<Vec<String>>(d.as_str().unwrap()).unwrap()[1].clone())
            .collect();
        assert_eq!(texts, ["0", "2", "3"]);
        assert!(
            restore(&store, "p", &offset_of(&first)).is_none(),
            "used once"
        );
    }

    #[test]
    fn an_unknown_offset_or_session_is_a_fresh_start() {
        let store = MemorySessions::new(settings(1 << 20));
        let mut first = event("0");
        store.record(&Str::from("/"), &to(&[]), &mut first);
        leave(&store, Sid::new(), "p", &[]);
        assert!(restore(&store, "q", &offset_of(&first)).is_none());
        assert!(restore(&store, "p", "nope-1").is_none());
        leave(&store, Sid::new(), "p", &[]);
        let forged = format!("{}-zz", store.prefix);
        assert!(restore(&store, "p", &forged).is_none());
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_packets() {
        let store = MemorySessions::new(settings(2_000));
        let ns = Str::from("/");
        let mut first = event("0");
        store.record(&ns, &to(&[]), &mut first);
        for i in 0..100 {
            store.record(&ns, &to(&[]), &mut event(&i.to_string()));
        }
        assert!(store.kept_bytes() <= 2_000, "{}", store.kept_bytes());
        leave(&store, Sid::new(), "p", &[]);
        assert!(
            restore(&store, "p", &offset_of(&first)).is_none(),
            "dropped"
        );
    }

    #[test]
    fn a_broadcast_leaves_its_sender_out() {
        let sid = Sid::new();
        let mut opts = BroadcastOptions::new(sid);
        opts.add_flag(BroadcastFlags::Broadcast);
        let except = excluded(&opts);
        assert!(!reaches(&[], sid.as_str(), &[], &except));
        assert!(reaches(&[], Sid::new().as_str(), &[], &except));
    }
}
