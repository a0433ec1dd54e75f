//! Connection state recovery across nodes: sessions and sent packets kept in Redis, so that a
//! client that comes back through another node, including because its node died, is recovered
//! there.
//!
//! - Each recoverable packet a node emits is appended to a stream per namespace
//!   (`iorelay:recovery:packets:<ns>`, the newest [`STREAM_LENGTH`] kept), with its offset, the
//!   rooms it went to and those it left out.
//! - Each session is a hash (`iorelay:recovery:session:<pid>`) holding the node that owns it
//!   and its socket id, rooms, user and `socket.data`. It is written when the socket connects,
//!   when its rooms change and when it leaves, and kept while the socket is connected: a
//!   session whose node dies is still there for the window, from the node's last refresh.
//! - A restore takes the session (read and deleted at once, so one client recovers it once)
//!   and the packets after the client's offset that reached its rooms or its id.
//!
//! Writes leave the emitting path through a bounded queue to one task per node, which keeps
//! their order. A write that cannot be queued or sent is counted and logged: the client it
//! concerns then gets a fresh session instead of a recovered one, never a wrong one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use socketioxide::recovery::{RestoredSession, SessionEvent, SessionState, SessionStore};
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions, Room};
use socketioxide_core::{Sid, Str, Value};
use tokio::sync::{Mutex, mpsc};

use super::redis_link::{COMMAND_TIMEOUT, redact, timeout_error};
use crate::relay::auth::UserId;
use crate::relay::recovery::{Identity, RecoverySettings, excluded, new_pid, radix36, reaches};

/// Packets kept per namespace, as Node's Redis streams adapter keeps them (`maxLen`).
pub const STREAM_LENGTH: usize = 10_000;
/// Writes waiting for Redis, at most; past it a write is counted and dropped.
const QUEUE_LENGTH: usize = 65_536;
/// How often a live session whose user or data changed is written again.
const DATA_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often, at most, failed writes are logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Updates a session only when this node owns it: a node that lost a client to another node
/// (which recovered it) must not overwrite it. `ARGV`: node, body, ttl in ms, and `del` to
/// delete instead of writing.
const OWNED_UPDATE: &str = r"
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 0 end
if ARGV[4] == 'del' then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], 'body', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Takes a session: its body, the key deleted.
const TAKE: &str = r"
local body = redis.call('HGET', KEYS[1], 'body')
if body then redis.call('DEL', KEYS[1]) end
return body
";

/// Sessions and packets in Redis (or Redis Cluster), shared by every node.
#[derive(Debug)]
pub struct RedisSessions {
    settings: RecoverySettings,
    /// This node's id, which also starts every offset it gives.
    node: String,
    next: AtomicU64,
    queue: mpsc::Sender<Write>,
    redis: Arc<Commands>,
    failures: Arc<Failures>,
}

/// What the writer task sends to Redis, in the order it was queued.
#[derive(Debug)]
enum Write {
    Packet {
        ns: Str,
        offset: String,
        to: Vec<String>,
        except: Vec<String>,
        data: Value,
    },
    Session {
        ns: Str,
        sid: Sid,
        pid: Str,
        event: SessionEvent,
    },
}

/// A session as it is kept in Redis.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SessionRecord {
    ns: String,
    sid: String,
    rooms: Vec<String>,
    user: Option<String>,
    data: Map<String, Json>,
}

impl RedisSessions {
    /// A store on the Redis at `url` (`cluster`: a Redis Cluster's seed URLs), with its writer
    /// task; it connects on first use and again after a failure.
    pub fn new(url: &str, cluster: bool, settings: RecoverySettings, counted: Counter) -> Self {
        let redis = Arc::new(Commands::new(url, cluster));
        let failures = Arc::new(Failures {
            counted,
            ..Failures::default()
        });
        let node: String = new_pid().chars().take(8).collect();
        let (queue, writes) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(write_all(
            writes,
            redis.clone(),
            failures.clone(),
            node.clone(),
            settings.window,
        ));
        RedisSessions {
            settings,
            node,
            next: AtomicU64::new(0),
            queue,
            redis,
            failures,
        }
    }

    fn send(&self, write: Write) {
        match self.queue.try_send(write) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.failures.record(
                "recovery write dropped",
                &"the queue to Redis is full (Redis slow or unreachable)",
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => self
                .failures
                .record("recovery write dropped", &"the writer to Redis has stopped"),
        }
    }
}

impl SessionStore for RedisSessions {
    fn record(&self, ns: &Str, opts: &BroadcastOptions, data: &mut Value) {
        // A broadcast to this node's sockets alone is one every node makes for itself (a Node
        // emitter's message, the ticker): recorded by each, a recovered client would get it
        // once per node.
        if opts.has_flag(BroadcastFlags::Local) {
            return;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let offset = format!("{}-{}", self.node, radix36(seq));
        socketioxide::recovery::append_offset(data, &offset);
        self.send(Write::Packet {
            ns: ns.clone(),
            offset,
            to: opts.rooms.iter().map(|r| r.to_string()).collect(),
            except: excluded(opts).iter().map(|r| r.to_string()).collect(),
            data: data.clone(),
        });
    }

    fn restore(
        &self,
        ns: Str,
        pid: Str,
        offset: Str,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        let store = RestoreJob {
            redis: self.redis.clone(),
            settings: self.settings,
            failures: self.failures.clone(),
        };
        Box::pin(async move { store.run(ns, pid, offset).await })
    }

    fn update(&self, ns: &Str, sid: Sid, pid: &Str, event: SessionEvent) {
        self.send(Write::Session {
            ns: ns.clone(),
            sid,
            pid: pid.clone(),
            event,
        });
    }

    fn tracks_live_sessions(&self) -> bool {
        true
    }

    fn new_pid(&self) -> Str {
        new_pid()
    }
}

/// What a restore needs, apart from the store (its future outlives the borrow).
struct RestoreJob {
    redis: Arc<Commands>,
    settings: RecoverySettings,
    failures: Arc<Failures>,
}

impl RestoreJob {
    async fn run(self, ns: Str, pid: Str, offset: Str) -> Option<RestoredSession> {
        let record = match self.take(&pid).await {
            Ok(record) => record?,
            Err(error) => {
                self.failures
                    .record("a session could not be read from Redis", &error);
                return None;
            }
        };
        if record.ns != ns.as_str() {
            return None;
        }
        let missed = match self.missed(&ns, &offset, &record).await {
            Ok(missed) => missed?,
            Err(error) => {
                self.failures
                    .record("missed packets could not be read from Redis", &error);
                return None;
            }
        };
        let sid = record.sid.parse::<Sid>().ok()?;
        let identity = Identity {
            user: record.user.map(UserId),
            data: record.data,
        };
        let state: SessionState = Arc::new(identity);
        Some(RestoredSession {
            sid,
            rooms: record.rooms.into_iter().map(Room::Owned).collect(),
            state: Some(state),
            missed,
        })
    }

    /// The session `pid`, taken: read and deleted in one step.
    async fn take(&self, pid: &str) -> RedisResult<Option<SessionRecord>> {
        let mut take = redis::cmd("EVAL");
        take.arg(TAKE).arg(1).arg(session_key(pid));
        let body: Option<String> = self.redis.query(&take).await?;
        Ok(body.and_then(|body| serde_json::from_str(&body).ok()))
    }

    /// The packets after `offset` that reached the session's rooms or id; `None` when the
    /// offset is no longer (or never was) in the namespace's stream.
    async fn missed(
        &self,
        ns: &str,
        offset: &str,
        record: &SessionRecord,
    ) -> RedisResult<Option<Vec<Value>>> {
        let since = now_ms().saturating_sub(self.settings.window.as_millis() as u64);
        let mut range = redis::cmd("XRANGE");
        range.arg(packets_key(ns)).arg(since).arg("+");
        let entries: redis::streams::StreamRangeReply = self.redis.query(&range).await?;
        let Some(index) = entries
            .ids
            .iter()
            .position(|entry| field(entry, "o").as_deref() == Some(offset))
        else {
            return Ok(None);
        };
        let rooms: Vec<Room> = record.rooms.iter().cloned().map(Room::Owned).collect();
        let missed = entries.ids[index + 1..]
            .iter()
            .filter(|entry| {
                reaches(
                    &rooms,
                    &record.sid,
                    &rooms_field(entry, "t"),
                    &rooms_field(entry, "e"),
                )
            })
            .filter_map(packet_data)
            .collect();
        Ok(Some(missed))
    }
}

/// A session of this node whose socket is connected.
struct Live {
    ns: Str,
    sid: Sid,
    rooms: Vec<Room>,
    state: Option<SessionState>,
    /// The body last written, to write again only when it changed.
    written: String,
}

impl Live {
    fn body(&self) -> String {
        session_body(&self.ns, self.sid, &self.rooms, self.state.as_ref())
    }
}

/// Sends the queued writes in order, and keeps this node's live sessions current in Redis:
/// written again when their user or data changed, and their expiry pushed back four times per
/// window.
async fn write_all(
    mut writes: mpsc::Receiver<Write>,
    redis: Arc<Commands>,
    failures: Arc<Failures>,
    node: String,
    window: Duration,
) {
    let mut live: HashMap<Str, Live> = HashMap::new();
    let mut check = tokio::time::interval(DATA_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refresh_every = (window / 4).max(DATA_CHECK_EVERY);
    let mut refreshed = Instant::now();
    let mut batch = Vec::new();
    loop {
        let commands = tokio::select! {
            received = writes.recv_many(&mut batch, 512) => {
                if received == 0 {
                    return;
                }
                let mut commands = Vec::with_capacity(batch.len());
                for write in batch.drain(..) {
                    commands.extend(commands_for(write, &mut live, &node, window));
                }
                commands
            }
            _ = check.tick() => {
                let refresh = refreshed.elapsed() >= refresh_every;
                if refresh {
                    refreshed = Instant::now();
                }
                live.iter_mut()
                    .filter_map(|(pid, session)| {
                        let body = session.body();
                        (refresh || body != session.written).then(|| {
                            let update = owned_update(pid, &node, Some(&body), window);
                            session.written = body;
                            update
                        })
                    })
                    .collect()
            }
        };
        if !commands.is_empty()
            && let Err(error) = redis.run_all(commands).await
        {
            failures.record("recovery writes to Redis failed", &error);
        }
    }
}

/// The commands one write becomes, and its effect on the live sessions.
fn commands_for(
    write: Write,
    live: &mut HashMap<Str, Live>,
    node: &str,
    window: Duration,
) -> Vec<Cmd> {
    match write {
        Write::Packet {
            ns,
            offset,
            to,
            except,
            data,
        } => vec![append_packet(&ns, &offset, &to, &except, &data)],
        Write::Session {
            ns,
            sid,
            pid,
            event,
        } => match event {
            SessionEvent::Connected { rooms, state } => {
                let mut session = Live {
                    ns,
                    sid,
                    rooms,
                    state,
                    written: String::new(),
                };
                session.written = session.body();
                let claim = claim(&pid, node, &session.written, window);
                live.insert(pid, session);
                vec![claim]
            }
            SessionEvent::RoomsChanged { rooms } => {
                let Some(session) = live.get_mut(&pid) else {
                    return Vec::new();
                };
                session.rooms = rooms;
                session.written = session.body();
                vec![owned_update(&pid, node, Some(&session.written), window)]
            }
            SessionEvent::Disconnected {
                rooms,
                state,
                recoverable,
            } => {
                live.remove(&pid);
                let body = recoverable.then(|| session_body(&ns, sid, &rooms, state.as_ref()));
                vec![owned_update(&pid, node, body.as_deref(), window)]
            }
        },
    }
}

/// A session's record, with the user and data its state holds now.
fn session_body(ns: &str, sid: Sid, rooms: &[Room], state: Option<&SessionState>) -> String {
    let identity = state.and_then(Identity::from_state).unwrap_or_default();
    let record = SessionRecord {
        ns: ns.to_owned(),
        sid: sid.to_string(),
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        user: identity.user.map(|user| user.0),
        data: identity.data,
    };
    serde_json::to_string(&record).unwrap_or_default()
}

/// Makes this node the session's owner and writes it.
fn claim(pid: &str, node: &str, body: &str, window: Duration) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(
        "redis.call('HSET', KEYS[1], 'node', ARGV[1], 'body', ARGV[2]) \
         redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1",
    )
    .arg(1)
    .arg(session_key(pid))
    .arg(node)
    .arg(body)
    .arg(window.as_millis() as u64);
    cmd
}

/// Writes the session (deletes it when `body` is `None`) if this node still owns it.
fn owned_update(pid: &str, node: &str, body: Option<&str>, window: Duration) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(OWNED_UPDATE)
        .arg(1)
        .arg(session_key(pid))
        .arg(node)
        .arg(body.unwrap_or_default())
        .arg(window.as_millis() as u64)
        .arg(if body.is_some() { "set" } else { "del" });
    cmd
}

/// Appends a packet to its namespace's stream.
fn append_packet(ns: &str, offset: &str, to: &[String], except: &[String], data: &Value) -> Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(packets_key(ns))
        .arg("MAXLEN")
        .arg("~")
        .arg(STREAM_LENGTH)
        .arg("*")
        .arg("o")
        .arg(offset)
        .arg("t")
        .arg(serde_json::to_string(to).unwrap_or_default())
        .arg("e")
        .arg(serde_json::to_string(except).unwrap_or_default());
    match data {
        Value::Str(text, attachments) => {
            cmd.arg("s").arg(text.as_str());
            for (i, attachment) in attachments.iter().flatten().enumerate() {
                cmd.arg(format!("b{i}")).arg(attachment.as_ref());
            }
        }
        Value::Bytes(bytes) => {
            cmd.arg("m").arg(bytes.as_ref());
        }
    }
    cmd
}

/// A packet's data as it was recorded.
fn packet_data(entry: &redis::streams::StreamId) -> Option<Value> {
    if let Some(bytes) = entry.get::<Vec<u8>>("m") {
        return Some(Value::Bytes(bytes.into()));
    }
    let text: String = entry.get("s")?;
    let attachments: std::collections::VecDeque<bytes::Bytes> = (0..)
        .map_while(|i| entry.get::<Vec<u8>>(&format!("b{i}")))
        .map(bytes::Bytes::from)
        .collect();
    let attachments = (!attachments.is_empty()).then_some(attachments);
    Some(Value::Str(Str::from(text), attachments))
}

fn field(entry: &redis::streams::StreamId, name: &str) -> Option<String> {
    entry.get(name)
}

fn rooms_field(entry: &redis::streams::StreamId, name: &str) -> Vec<Room> {
    field(entry, name)
        .and_then(|json| serde_json::from_str::<Vec<String>>(&json).ok())
        .unwrap_or_default()
        .into_iter()
        .map(Room::Owned)
        .collect()
}

fn session_key(pid: &str) -> String {
    format!("iorelay:recovery:session:{pid}")
}

fn packets_key(ns: &str) -> String {
    format!("iorelay:recovery:packets:{ns}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Failed or dropped writes and reads: counted (`iorelay_recovery_store_failures_total`), and
/// logged at most every [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Failures {
    counted: Counter,
    warned: std::sync::Mutex<Option<Instant>>,
}

impl Failures {
    fn record(&self, what: &str, error: &dyn std::fmt::Display) {
        let count = self.counted.inc() + 1;
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *warned = Some(Instant::now());
            tracing::warn!(
                failures = count,
                %error,
                "{what}: a client it concerns gets a fresh session instead of a recovered one"
            );
        }
    }
}

/// Commands to Redis or to a Redis Cluster, on a connection opened on first use and again
/// after a failure.
struct Commands {
    target: Target,
    connection: Mutex<Option<Connection>>,
}

enum Target {
    Single(RedisResult<redis::Client>),
    Cluster(Box<RedisResult<ClusterClient>>),
}

#[derive(Clone)]
enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    fn new(url: &str, cluster: bool) -> Self {
        let target = if cluster {
            let seeds: Vec<String> = url
                .split(',')
                .map(|u| u.trim().replace("redis+cluster://", "redis://"))
                .collect();
            Target::Cluster(Box::new(
                ClusterClient::builder(seeds)
                    .connection_timeout(COMMAND_TIMEOUT)
                    .response_timeout(COMMAND_TIMEOUT)
                    .build(),
            ))
        } else {
            Target::Single(redis::Client::open(url))
        };
        let invalid = match &target {
            Target::Single(client) => client.as_ref().err(),
            Target::Cluster(client) => client.as_ref().as_ref().err(),
        };
        if let Some(error) = invalid {
            tracing::error!(url = %redact(url), %error, "recovery store: invalid Redis URL");
        }
        Commands {
            target,
            connection: Mutex::new(None),
        }
    }

    async fn connection(&self) -> RedisResult<Connection> {
        let mut connection = self.connection.lock().await;
        if let Some(open) = connection.as_ref() {
            return Ok(open.clone());
        }
        let opened = tokio::time::timeout(COMMAND_TIMEOUT, async {
            match &self.target {
                Target::Single(client) => RedisResult::Ok(Connection::Single(
                    client
                        .as_ref()
                        .map_err(clone_error)?
                        .get_multiplexed_async_connection()
                        .await?,
                )),
                Target::Cluster(client) => Ok(Connection::Cluster(
                    client
                        .as_ref()
                        .as_ref()
                        .map_err(clone_error)?
                        .get_async_connection()
                        .await?,
                )),
            }
        })
        .await
        .map_err(|_| timeout_error("connect"))??;
        *connection = Some(opened.clone());
        Ok(opened)
    }

    /// Forgets the connection after a failure, so that the next command opens a new one.
    async fn failed<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if result.is_err() {
            *self.connection.lock().await = None;
        }
        result
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let result = async {
            let connection = self.connection().await?;
            tokio::time::timeout(COMMAND_TIMEOUT, async {
                match connection {
                    Connection::Single(mut c) => cmd.query_async(&mut c).await,
                    Connection::Cluster(mut c) => cmd.query_async(&mut c).await,
                }
            })
            .await
            .map_err(|_| timeout_error("command"))?
        }
        .await;
        self.failed(result).await
    }

    /// Runs `commands` in order: one pipeline on a single Redis, one by one on a cluster
    /// (where they go to the nodes of their keys).
    async fn run_all(&self, commands: Vec<Cmd>) -> RedisResult<()> {
        let result = async {
            let connection = self.connection().await?;
            tokio::time::timeout(COMMAND_TIMEOUT, async {
                match connection {
                    Connection::Single(mut c) => {
                        let mut pipe = redis::pipe();
                        for cmd in commands {
                            pipe.add_command(cmd).ignore();
                        }
                        pipe.query_async::<()>(&mut c).await
                    }
                    Connection::Cluster(mut c) => {
                        for cmd in commands {
                            cmd.query_async::<redis::Value>(&mut c).await?;
                        }
                        Ok(())
                    }
                }
            })
            .await
            .map_err(|_| timeout_error("command"))?
        }
        .await;
        self.failed(result).await
    }
}

fn clone_error(error: &redis::RedisError) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::other(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_record_keeps_what_a_restore_gives_back() {
        let sid = Sid::new();
        let identity = Identity {
            user: Some(UserId("alice".into())),
            data: serde_json::json!({ "plan": "pro" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let state: SessionState = Arc::new(identity);
        let rooms = [Room::Borrowed("news"), Room::Owned(sid.to_string())];
        let body = session_body("/chat", sid, &rooms, Some(&state));
        let record: SessionRecord = serde_json::from_str(&body).expect("a record");
        assert_eq!(record.ns, "/chat");
        assert_eq!(record.sid, sid.to_string());
        assert_eq!(record.rooms, ["news".to_owned(), sid.to_string()]);
        assert_eq!(record.user.as_deref(), Some("alice"));
        assert_eq!(record.data["plan"], "pro");
    }

    #[test]
    fn a_packet_is_appended_with_its_offset_rooms_and_data() {
        let data = Value::Str(
            Str::from(r#"["chat",{"text":"hi"}]"#),
            Some([bytes::Bytes::from_static(b"\x01\x02")].into()),
        );
        let cmd = append_packet(
            "/",
            "abc-1",
            &["news".to_owned()],
            &["sid1".to_owned()],
            &data,
        );
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .filter_map(|arg| match arg {
                redis::Arg::Simple(bytes) => Some(bytes.to_vec()),
                _ => None,
            })
            .collect();
        let text: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            text[..12],
            [
                "XADD",
                "iorelay:recovery:packets:/",
                "MAXLEN",
                "~",
                "10000",
                "*",
                "o",
                "abc-1",
                "t",
                r#"["news"]"#,
                "e",
                r#"["sid1"]"#
            ]
        );
        assert_eq!(
            text[12..16],
            ["s", r#"["chat",{"text":"hi"}]"#, "b0", "\u{1}\u{2}"]
        );
    }
}
