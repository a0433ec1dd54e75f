//! The TCP connection budget: how many connections the node holds, how many one address may
//! hold, and the count of every connection refused or closed to keep it so.
//!
//! `--max-connections` counts Socket.IO sessions; this counts the TCP connections underneath,
//! which cost a file descriptor each whether or not they ever send a byte. The budget is the
//! descriptor limit minus a reserve kept for what the node opens itself (the Redis link,
//! webhook calls, static files), so the node never runs out of descriptors: past the budget a
//! connection is accepted and closed at once with a 503, instead of the accept loop failing.
//!
//! A connection that has not yet sent a complete request head costs an attacker nothing to
//! hold, so when the budget is full the oldest such connection is closed to make room
//! (`evicted`) before a new one is refused: a flood of idle connections then only displaces
//! itself, and clients that send their request at once still get in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use serde::Serialize;

use crate::config::ProxyNetwork;
use crate::metrics::TcpRefusals;

/// Why a connection was turned away or closed early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The node holds its budget of connections.
    Budget,
    /// The client's address holds `--max-connections-per-ip` connections.
    PerIp,
}

/// Why the server closed a connection before its client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request head within `--http-header-timeout-ms`.
    Header,
    /// A request body still incomplete `--http-header-timeout-ms` after its head.
    Body,
    /// Idle between two requests for `--keep-alive-timeout-ms`.
    Idle,
    /// Closed before sending a request head, to make room for a new connection.
    Evicted,
}

/// A connection the budget may close to make room for a new one: one that has not sent a
/// complete request head yet.
pub trait Evictable: Send + Sync {
    /// Whether it still has not sent a complete request head (nor been closed for it).
    fn is_unproven(&self) -> bool;
    /// Closes it if it is still unproven; whether it did.
    fn evict(&self) -> bool;
}

/// Descriptors kept out of the connection budget: at least this many, or 1/32 of the limit.
const MIN_RESERVE: u64 = 64;

/// The descriptor limit and the connection budget carved out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The soft `RLIMIT_NOFILE`, after raising it to the hard limit.
    pub limit: u64,
    /// Descriptors the process held before serving (stdio, the listener, the runtime).
    pub in_use: u64,
    /// Descriptors kept for what the node opens itself.
    pub reserve: u64,
    /// TCP connections the node accepts.
    pub connections: usize,
}

impl DescriptorBudget {
    /// The budget left by a limit of `limit` descriptors, `in_use` of them already open.
    pub fn new(limit: u64, in_use: u64) -> Self {
        let reserve = (limit / 32).max(MIN_RESERVE);
        let connections = limit.saturating_sub(in_use + reserve).max(1);
        DescriptorBudget {
            limit,
            in_use,
            reserve,
            connections: usize::try_from(connections).unwrap_or(usize::MAX),
        }
    }

    /// Raises the soft descriptor limit to the hard one and measures what is left.
    pub fn of_this_process() -> Self {
        let limit = raise_descriptor_limit();
        let in_use = std::fs::read_dir("/proc/self/fd")
            .map(|fds| fds.count() as u64)
            .unwrap_or(16);
        Self::new(limit, in_use)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit in force.
fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    // RLIM_INFINITY is u64::MAX: no limit worth budgeting against.
    limit.rlim_cur
}

/// Counters of connections refused and closed early, since startup.
#[derive(Debug, Default)]
struct Counters {
    budget: AtomicU64,
    per_ip: AtomicU64,
    header_timeout: AtomicU64,
    body_timeout: AtomicU64,
    idle_timeout: AtomicU64,
    evicted: AtomicU64,
    accept_errors: AtomicU64,
}

/// The `tcp` part of `GET /healthz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TcpHealth {
    /// TCP connections open right now, WebSockets and HTTP alike.
    pub open: usize,
    /// Connections turned away at once with a 503, by reason.
    pub refused: RefusedCounts,
    /// Connections the server closed before their client did, by reason.
    pub closed: ClosedCounts,
}

/// Connections refused since startup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefusedCounts {
    /// The node held its connection budget.
    pub budget: u64,
    /// The client's address held `--max-connections-per-ip`.
    pub per_ip: u64,
}

/// Connections closed by the server since startup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClosedCounts {
    /// No complete request head in time.
    pub header_timeout: u64,
    /// A request body that did not arrive in time.
    pub body_timeout: u64,
    /// Kept-alive connections idle too long (the normal end of most HTTP connections).
    pub idle_timeout: u64,
    /// Connections without a request head closed to make room under a full budget.
    pub evicted: u64,
}

/// What one summary log line reports: the counts that grew since the previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// As [`TcpHealth`], plus accept errors.
    pub health: TcpHealth,
    /// `accept` failures (out of descriptors, out of memory).
    pub accept_errors: u64,
}

impl Summary {
    /// What grew from `earlier` to `self`, idle closes left out (they are routine).
    pub fn growth_since(&self, earlier: &Summary) -> Option<Summary> {
        let (now, then) = (&self.health, &earlier.health);
        let grown = Summary {
            health: TcpHealth {
                open: now.open,
                refused: RefusedCounts {
                    budget: now.refused.budget - then.refused.budget,
                    per_ip: now.refused.per_ip - then.refused.per_ip,
                },
                closed: ClosedCounts {
                    header_timeout: now.closed.header_timeout - then.closed.header_timeout,
                    body_timeout: now.closed.body_timeout - then.closed.body_timeout,
                    idle_timeout: 0,
                    evicted: now.closed.evicted - then.closed.evicted,
                },
            },
            accept_errors: self.accept_errors - earlier.accept_errors,
        };
        let h = &grown.health;
        let any = h.refused.budget
            + h.refused.per_ip
            + h.closed.header_timeout
            + h.closed.body_timeout
            + h.closed.evicted
            + grown.accept_errors;
        (any > 0).then_some(grown)
    }
}

/// Admits TCP connections within the node's budget and each address's share of it.
#[derive(Debug)]
pub struct ConnectionGate {
    budget: usize,
    per_ip_limit: usize,
    trusted: Vec<ProxyNetwork>,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Connections that have not sent a complete request head yet, oldest first; entries of
    /// connections that have since sent one, or closed, are dropped as they reach the front.
    unproven: Mutex<VecDeque<Weak<dyn Evictable>>>,
    counters: Counters,
}

impl ConnectionGate {
    /// A gate for `budget` connections, `per_ip_limit` of them per address; connections from
    /// `trusted` proxies are counted per client address at the HTTP level instead.
    pub fn new(budget: usize, per_ip_limit: usize, trusted: Vec<ProxyNetwork>) -> Arc<Self> {
        Arc::new(ConnectionGate {
            budget,
            per_ip_limit,
            trusted,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            unproven: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
        })
    }

    /// TCP connections the gate admits.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Whether `peer` is a trusted proxy.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|network| network.contains(peer))
    }

    /// Admits a connection from `peer` whose deadlines `clock` keeps, or refuses it.
    ///
    /// A proxy's own connections are not limited per address: the clients behind it are, per
    /// request, by [`ConnectionGate::admit_forwarded`].
    pub fn admit<C: Evictable + 'static>(
        self: &Arc<Self>,
        peer: IpAddr,
        clock: &Arc<C>,
    ) -> Result<Ticket, Refusal> {
        let address = if self.is_trusted_proxy(peer) {
            None
        } else {
            Some(self.take_address_slot(peer).ok_or(Refusal::PerIp)?)
        };
        // From here on the ticket gives back what was taken, refused or not.
        let ticket = Ticket {
            gate: self.clone(),
            address,
        };
        let held = self.open.fetch_add(1, Ordering::AcqRel);
        let mut unproven = self.lock_unproven();
        if held >= self.budget && !Self::evict_oldest_unproven(&mut unproven) {
            drop(unproven);
            return Err(Refusal::Budget);
        }
        let clock: Weak<C> = Arc::downgrade(clock);
        unproven.push_back(clock);
        Ok(ticket)
    }

    /// Takes one of `client`'s slots for a request a trusted proxy forwarded, or refuses it.
    pub fn admit_forwarded(self: &Arc<Self>, client: IpAddr) -> Option<AddressSlot> {
        let address = self.take_address_slot(client)?;
        Some(AddressSlot {
            gate: self.clone(),
            address,
        })
    }

    /// Counts `refusal`.
    pub fn count_refusal(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Budget => &self.counters.budget,
            Refusal::PerIp => &self.counters.per_ip,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed for `expiry`.
    pub fn count_expiry(&self, expiry: Expiry) {
        let counter = match expiry {
            Expiry::Header => &self.counters.header_timeout,
            Expiry::Body => &self.counters.body_timeout,
            Expiry::Idle => &self.counters.idle_timeout,
            Expiry::Evicted => &self.counters.evicted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed `accept`.
    pub fn count_accept_error(&self) {
        self.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The numbers `/healthz` shows.
    pub fn health(&self) -> TcpHealth {
        let c = &self.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TcpHealth {
            open: self.open.load(Ordering::Relaxed),
            refused: RefusedCounts {
                budget: read(&c.budget),
                per_ip: read(&c.per_ip),
            },
            closed: ClosedCounts {
                header_timeout: read(&c.header_timeout),
                body_timeout: read(&c.body_timeout),
                idle_timeout: read(&c.idle_timeout),
                evicted: read(&c.evicted),
            },
        }
    }

    /// The counters the periodic summary compares.
    pub fn summary(&self) -> Summary {
        Summary {
            health: self.health(),
            accept_errors: self.counters.accept_errors.load(Ordering::Relaxed),
        }
    }

    fn take_address_slot(&self, address: IpAddr) -> Option<IpAddr> {
        let address = address.to_canonical();
        let mut per_ip = self.lock_per_ip();
        let held = per_ip.entry(address).or_insert(0);
        if *held >= self.per_ip_limit {
            return None;
        }
        *held += 1;
        Some(address)
    }

    fn give_back_address_slot(&self, address: IpAddr) {
        let mut per_ip = self.lock_per_ip();
        if let Some(held) = per_ip.get_mut(&address) {
            *held -= 1;
            if *held == 0 {
                per_ip.remove(&address);
            }
        }
    }

    /// Closes the oldest connection still without a request head; false when there is none.
    fn evict_oldest_unproven(unproven: &mut VecDeque<Weak<dyn Evictable>>) -> bool {
        while let Some(oldest) = unproven.pop_front() {
            if let Some(clock) = oldest.upgrade()
                && clock.evict()
            {
                return true;
            }
        }
        false
    }

    fn lock_unproven(&self) -> MutexGuard<'_, VecDeque<Weak<dyn Evictable>>> {
        let mut unproven = self.unproven.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop the entries that no longer matter from the front, so the queue stays about as
        // long as the connections accepted within one header timeout.
        while unproven
            .front()
            .is_some_and(|oldest| oldest.upgrade().is_none_or(|clock| !clock.is_unproven()))
        {
            unproven.pop_front();
        }
        unproven
    }

    fn lock_per_ip(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted TCP connection's place in the budget, given back when it is dropped (with the
/// socket, so an upgraded WebSocket keeps its place for its whole life).
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<ConnectionGate>,
    address: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(address) = self.address {
            self.gate.give_back_address_slot(address);
        }
    }
}

/// A forwarded client's place in its address's share, held for one request (or, for a
/// WebSocket, for the connection's life).
#[derive(Debug)]
pub struct AddressSlot {
    gate: Arc<ConnectionGate>,
    address: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.gate.give_back_address_slot(self.address);
    }
}

/// The client behind trusted proxies: the nearest `X-Forwarded-For` hop that is not itself a
/// trusted proxy, read from the right (each proxy appends the address it received from, and
/// anything further left was written by the client and can be forged).
pub fn forwarded_client<'a>(
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    for value in forwarded_for.rev() {
        for hop in value.rsplit(',') {
            let address = parse_hop(hop.trim())?;
            if !is_trusted(address) {
                return Some(address);
            }
        }
    }
    None
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:567`, `::1` or `[::1]:567`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Connections refused for capacity, as `iorelay_handshakes_refused_total{cause="capacity"}`
/// counts them.
impl TcpRefusals for ConnectionGate {
    fn refused(&self) -> u64 {
        let refused = self.health().refused;
        refused.budget + refused.per_ip
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::http::deadlines::{ConnectionClock, Deadlines};

    fn clock() -> Arc<ConnectionClock> {
        let deadlines = Deadlines {
            header: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
        };
        Arc::new(ConnectionClock::new(Instant::now(), deadlines))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_budget_leaves_a_reserve() {
        let budget = DescriptorBudget::new(20_000, 10);
        assert_eq!(budget.reserve, 625);
        assert_eq!(budget.connections, 20_000 - 625 - 10);
        assert_eq!(DescriptorBudget::new(256, 12).connections, 256 - 64 - 12);
        assert_eq!(DescriptorBudget::new(50, 12).connections, 1);
    }

    #[test]
    fn each_address_gets_its_share() {
        let gate = ConnectionGate::new(100, 2, Vec::new());
        let clocks: Vec<_> = (0..4).map(|_| clock()).collect();
        let a = gate.admit(ip("10.0.0.1"), &clocks[0]).expect("first");
        let _b = gate.admit(ip("10.0.0.1"), &clocks[1]).expect("second");
        assert_eq!(
            gate.admit(ip("::ffff:10.0.0.1"), &clocks[2]).unwrap_err(),
            Refusal::PerIp,
            "the same address, mapped to IPv6"
        );
        let _c = gate
            .admit(ip("10.0.0.2"), &clocks[2])
            .expect("another address");
        drop(a);
        let _d = gate
            .admit(ip("10.0.0.1"), &clocks[3])
            .expect("a slot was given back");
        assert_eq!(gate.health().open, 3);
    }

    #[test]
    fn a_full_budget_evicts_connections_without_a_request_first() {
        let gate = ConnectionGate::new(2, 10, Vec::new());
        let (idle, busy, newcomer, late) = (clock(), clock(), clock(), clock());
        let _idle = gate.admit(ip("10.0.0.1"), &idle).expect("idle");
        let _busy = gate.admit(ip("10.0.0.1"), &busy).expect("busy");
        busy.request_started(false, Instant::now());
        let _newcomer = gate
            .admit(ip("10.0.0.2"), &newcomer)
            .expect("the idle one makes room");
        assert!(idle.is_evicted());
        newcomer.request_started(false, Instant::now());
        assert_eq!(
            gate.admit(ip("10.0.0.3"), &late).unwrap_err(),
            Refusal::Budget,
            "nobody left to evict"
        );
        assert_eq!(gate.health().open, 3, "the evicted one closes on its own");
    }

    #[test]
    fn proxies_are_limited_per_forwarded_client() {
        let proxy: ProxyNetwork = "10.0.0.0/8".parse().expect("network");
        let gate = ConnectionGate::new(10, 1, vec![proxy]);
        let (first, second) = (clock(), clock());
        let _first = gate.admit(ip("10.0.0.9"), &first).expect("proxy");
        let _second = gate
            .admit(ip("10.0.0.9"), &second)
            .expect("not limited per address");
        let slot = gate.admit_forwarded(ip("203.0.113.7")).expect("client");
        assert!(gate.admit_forwarded(ip("203.0.113.7")).is_none());
        assert!(gate.admit_forwarded(ip("203.0.113.8")).is_some());
        drop(slot);
        assert!(gate.admit_forwarded(ip("203.0.113.7")).is_some());
    }

    #[test]
    fn the_forwarded_client_is_the_nearest_untrusted_hop() {
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let client = |values: &[&str]| forwarded_client(values.iter().copied(), trusted);
        assert_eq!(client(&["203.0.113.7"]), Some(ip("203.0.113.7")));
        assert_eq!(
            client(&["6.6.6.6, 203.0.113.7, 10.0.0.2"]),
            Some(ip("203.0.113.7")),
            "a forged hop on the left is ignored"
        );
        assert_eq!(
            client(&["6.6.6.6", "203.0.113.7:4567"]),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(client(&["[2001:db8::1]:80"]), Some(ip("2001:db8::1")));
        assert_eq!(client(&["10.0.0.2"]), None);
        assert_eq!(client(&["garbage"]), None);
        assert_eq!(client(&[]), None);
    }

    #[test]
    fn the_summary_reports_growth_only() {
        let gate = ConnectionGate::new(10, 10, Vec::new());
        let start = gate.summary();
        gate.count_expiry(Expiry::Idle);
        assert_eq!(gate.summary().growth_since(&start), None);
        gate.count_refusal(Refusal::PerIp);
        gate.count_accept_error();
        let growth = gate.summary().growth_since(&start).expect("growth");
        assert_eq!(growth.health.refused.per_ip, 1);
        assert_eq!(growth.accept_errors, 1);
    }
}
