//! Who may use the server: the [`Policy`] (`--allow`, `--auth-token-file`,
//! `--auth-scope`, `--per-ip-*`) and the state it needs at run time, one
//! [`Access`] per server behind an `Arc` that every connection shares.
//!
//! Two decisions live here. At accept, [`Access::admit`] judges a peer by
//! its address (the allowlist, then its count of open connections) and
//! gives the [`Client`] the connection keeps. Per request,
//! `Client::judge` applies the per-client request rate and the bearer
//! token; the connection turns a denial into 429 or 401. Both are pure
//! functions of the policy, the peer, the request and a `now` the caller
//! passes in: proto reads no clock, so the rate limiter's clock is the
//! latest `now` any connection gave (`CallerClock`).
//!
//! Per-client state is bounded. Open-connection counts exist only for
//! addresses with a connection open (at most one entry per open
//! connection). The rate limiter's table holds at most
//! [`Policy::max_tracked_clients`] addresses; an address unseen for as long
//! as its burst takes to refill is indistinguishable from a new one and is
//! evicted when room is needed; a new address that finds the table full of
//! active ones is judged as a fresh client and not remembered (counted in
//! `Stats::rate_table_full`), so memory never grows with the number of
//! distinct clients.
//!
//! IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, as a dual-stack listener
//! reports IPv4 clients) are judged, counted and limited by their IPv4
//! address.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use blake2::{Blake2s256, Digest};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
pub use ipnet::IpNet;
use subtle::ConstantTimeEq;

use crate::Stats;

/// The most client addresses whose request rate is remembered at once by
/// default: what a hash table of 65,536 buckets holds at its load factor
/// (7/8), about 2.6 MiB (see [`Policy::max_tracked_clients`]).
pub const MAX_TRACKED_CLIENTS: usize = 57_344;

/// A bearer token as the server keeps it: its BLAKE2s-256 digest. A
/// presented token is hashed the same way and the two 32-byte digests are
/// compared in constant time, so neither the token's bytes nor its length
/// show in the time a refusal takes.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 32]);

impl Token {
    /// The token `secret`; `None` if it is empty (an empty token would match
    /// an empty credential).
    pub fn new(secret: &[u8]) -> Option<Token> {
        (!secret.is_empty()).then(|| Token(Blake2s256::digest(secret).into()))
    }

    /// Whether `presented` is this token, in time independent of both.
    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Blake2s256::digest(presented).into();
        self.0.ct_eq(&digest).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// Which endpoints need the token (`--auth-scope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthScope {
    /// Every endpoint but `/health`.
    #[default]
    All,
    /// Only `/admin/*`; the rest is open.
    Admin,
}

/// An allowlist entry: a network in CIDR form (`127.0.0.2/32`,
/// `10.0.0.0/8`, `::1/128`) or a bare address (one host), or why not.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{text:?} is not an address or a network in CIDR form (127.0.0.2/32, ::1/128)")
        })
}

/// A per-client request rate: one request per `interval` on average, with
/// bursts of up to `burst` (`--per-ip-rate`, `--per-ip-burst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `per_s` requests a second (more than 0, at most 1,000,000) with
    /// bursts of `burst`; `None` outside that range.
    pub fn per_second(per_s: f64, burst: NonZeroU32) -> Option<Rate> {
        if !(per_s > 0.0 && per_s <= 1e6) {
            return None;
        }
        let interval = Duration::try_from_secs_f64(1.0 / per_s).ok()?;
        (!interval.is_zero()).then_some(Rate { interval, burst })
    }

    /// How long an idle client takes to get its whole burst back: after
    /// this, its limiter state equals a new client's.
    fn refill(&self) -> Duration {
        self.interval
            .saturating_mul(self.burst.get().saturating_add(1))
    }
}

/// Who may connect and what each client may do. The default lets everyone
/// in without a token or a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Networks whose peers are served; empty: every peer. Others are closed
    /// right after accept.
    pub allow: Vec<IpNet>,
    /// The bearer token requests must carry (`Authorization: Bearer TOKEN`).
    pub token: Option<Token>,
    /// Which endpoints need it.
    pub auth_scope: AuthScope,
    /// The most connections one address may hold open; more are closed at
    /// accept.
    pub per_ip_max_connections: Option<NonZeroU32>,
    /// The request rate one address may use; more get 429 with `Retry-After`.
    pub per_ip_rate: Option<Rate>,
    /// The most addresses whose rate state is kept (see the module docs).
    pub max_tracked_clients: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow: Vec::new(),
            token: None,
            auth_scope: AuthScope::All,
            per_ip_max_connections: None,
            per_ip_rate: None,
            max_tracked_clients: MAX_TRACKED_CLIENTS,
        }
    }
}

/// Why a peer was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not in any `--allow` network.
    NotAllowed,
    /// Already holds `--per-ip-max-connections`.
    TooManyConnections,
}

/// Why a request is refused, as the connection answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// 401 with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// 429 with `Retry-After` in whole seconds (at least 1).
    RateLimited { retry_after_s: u64 },
}

/// What a request asks for, as far as the token is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposure {
    /// `/health`: never needs the token.
    Health,
    /// `/admin/*` while the admin endpoints are served: always needs the
    /// token when one is configured.
    Admin,
    /// Everything else: needs it under [`AuthScope::All`].
    Other,
}

/// A policy with its run-time state; one per server.
#[derive(Debug)]
pub struct Access {
    policy: Policy,
    /// Open connections per address, kept only under
    /// `per_ip_max_connections`. An entry lives while its address has a
    /// connection open, so there are never more entries than connections.
    open: Mutex<HashMap<IpAddr, u32>>,
    limiter: Option<Limiter>,
}

impl Access {
    /// The run-time state for `policy`; `epoch` is the earliest `now` any
    /// caller will pass.
    pub fn new(policy: Policy, epoch: Instant) -> Access {
        let limiter = policy
            .per_ip_rate
            .map(|rate| Limiter::new(rate, policy.max_tracked_clients, epoch));
        Access {
            policy,
            open: Mutex::new(HashMap::new()),
            limiter,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Judges a peer just accepted: the allowlist, then its open
    /// connections. A refusal is counted in `stats`; the caller closes the
    /// socket. The [`Client`] holds the peer's connection slot until dropped.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, stats: &Stats) -> Result<Client, Refusal> {
        let peer = peer.to_canonical();
        if !self.allows(peer) {
            Stats::bump(&stats.refused_by_allowlist);
            return Err(Refusal::NotAllowed);
        }
        let counted = match self.policy.per_ip_max_connections {
            None => false,
            Some(max) => {
                let mut open = lock(&self.open);
                let n = open.entry(peer).or_insert(0);
                if *n >= max.get() {
                    if *n == 0 {
                        open.remove(&peer);
                    }
                    drop(open);
                    Stats::bump(&stats.refused_per_ip);
                    return Err(Refusal::TooManyConnections);
                }
                *n += 1;
                true
            }
        };
        Ok(Client {
            access: self.clone(),
            peer,
            counted,
        })
    }

    /// Whether `peer` (already canonical) is in an `--allow` network, or
    /// there is no allowlist.
    fn allows(&self, peer: IpAddr) -> bool {
        self.policy.allow.is_empty() || self.policy.allow.iter().any(|net| net.contains(&peer))
    }

    /// Addresses with a connection open, as counted for
    /// `per_ip_max_connections` (0 without it).
    pub fn tracked_connections(&self) -> usize {
        lock(&self.open).len()
    }

    /// Addresses whose request rate is remembered (0 without a rate).
    pub fn tracked_rates(&self) -> usize {
        self.limiter
            .as_ref()
            .map_or(0, |l| lock(&l.table.map).len())
    }
}

/// One admitted peer: what a connection needs for its per-request
/// decisions, and its slot among the peer's open connections (released on
/// drop).
#[derive(Debug)]
pub struct Client {
    access: Arc<Access>,
    peer: IpAddr,
    /// Whether this connection is counted in `Access::open`.
    counted: bool,
}

impl Client {
    /// The peer's address, IPv4-mapped ones as IPv4.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// Judges one request: the per-client rate first (so wrong tokens are
    /// limited too), then the token. `authorization` is the request's
    /// `Authorization` value (`Some(b"")` when the field was repeated).
    pub(crate) fn judge(
        &self,
        exposure: Exposure,
        authorization: Option<&[u8]>,
        stats: &Stats,
        now: Instant,
    ) -> Result<(), Denial> {
        let policy = &self.access.policy;
        if let Some(limiter) = &self.access.limiter {
            if let Err(wait) = limiter.check(self.peer, stats, now) {
                Stats::bump(&stats.rate_limited);
                let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(Denial::RateLimited {
                    retry_after_s: retry_after_s.max(1),
                });
            }
        }
        let needs_token = match exposure {
            Exposure::Health => false,
            Exposure::Admin => true,
            Exposure::Other => policy.auth_scope == AuthScope::All,
        };
        match &policy.token {
            Some(token) if needs_token => {
                if authorization
                    .and_then(bearer)
                    .is_some_and(|t| token.matches(t))
                {
                    Ok(())
                } else {
                    Stats::bump(&stats.unauthorized);
                    Err(Denial::Unauthorized)
                }
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut open = lock(&self.access.open);
        if let Some(n) = open.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// The credentials of an `Authorization: Bearer TOKEN` value (RFC 6750
/// §2.1: the scheme without case, then whitespace, then the token).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let scheme = value.get(..6)?;
    let rest = value.get(6..)?;
    if !scheme.eq_ignore_ascii_case(b"bearer")
        || !rest.first().is_some_and(|&b| b == b' ' || b == b'\t')
    {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

/// A mutex guard, recovering the data of a poisoned lock: the maps hold
/// counts, which a panic elsewhere cannot leave half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The per-client rate limiter: governor's GCRA over [`Table`].
#[derive(Debug)]
struct Limiter {
    governor: RateLimiter<IpAddr, Table, CallerClock, NoOpMiddleware<Duration>>,
    clock: CallerClock,
    table: Arc<TableState>,
}

impl Limiter {
    fn new(rate: Rate, max_clients: usize, epoch: Instant) -> Limiter {
        let clock = CallerClock {
            epoch,
            nanos: Arc::new(AtomicU64::new(0)),
        };
        let table = Arc::new(TableState {
            map: Mutex::new(HashMap::new()),
            max_clients,
            refill_nanos: nanos(rate.refill()),
            last_sweep: AtomicU64::new(0),
            now: clock.nanos.clone(),
            full_misses: AtomicU64::new(0),
        });
        let quota = Quota::with_period(rate.interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(rate.burst);
        let governor = RateLimiter::new(quota, Table(table.clone()), clock.clone());
        Limiter {
            governor,
            clock,
            table,
        }
    }

    /// Whether `peer` may make one more request at `now`; if not, how long
    /// until it may.
    fn check(&self, peer: IpAddr, stats: &Stats, now: Instant) -> Result<(), Duration> {
        self.clock.observe(now);
        let full_before = self.table.full_misses.load(Relaxed);
        let verdict = self
            .governor
            .check_key(&peer)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()));
        let missed = self.table.full_misses.load(Relaxed) - full_before;
        if missed > 0 {
            stats.rate_table_full.fetch_add(1, Relaxed);
        }
        verdict
    }
}

/// governor's clock for the limiter: the latest `now` any caller observed,
/// as time since the server's epoch. Connections on different threads pass
/// instants microseconds apart; keeping the maximum keeps it monotonic.
#[derive(Debug, Clone)]
struct CallerClock {
    epoch: Instant,
    nanos: Arc<AtomicU64>,
}

impl CallerClock {
    fn observe(&self, now: Instant) {
        self.nanos
            .fetch_max(nanos(now.saturating_duration_since(self.epoch)), Relaxed);
    }
}

impl Clock for CallerClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Relaxed))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The limiter's per-client state: governor's GCRA cell per address, with
/// when it was last used, in a map of bounded size.
#[derive(Debug)]
struct Table(Arc<TableState>);

#[derive(Debug)]
struct TableState {
    map: Mutex<HashMap<IpAddr, Entry>>,
    max_clients: usize,
    /// An entry unused for this long equals a new client's and may go.
    refill_nanos: u64,
    /// When the table was last swept for such entries (clock nanos).
    last_sweep: AtomicU64,
    /// The clock's reading, shared with [`CallerClock`].
    now: Arc<AtomicU64>,
    /// New clients judged without being remembered, the table being full.
    full_misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Entry {
    cell: InMemoryState,
    last_seen_nanos: u64,
}

/// How often a full table is swept for entries that may go, at most: a
/// sweep visits every entry, so a flood of new clients must not cause one
/// per request.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl StateStore for Table {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let state = &*self.0;
        let now = state.now.load(Relaxed);
        let mut map = lock(&state.map);
        if !map.contains_key(key) && map.len() >= state.max_clients {
            let last = state.last_sweep.load(Relaxed);
            if now.saturating_sub(last) >= nanos(SWEEP_EVERY) || last == 0 {
                state.last_sweep.store(now.max(1), Relaxed);
                map.retain(|_, e| now.saturating_sub(e.last_seen_nanos) < state.refill_nanos);
            }
        }
        if let Some(entry) = map.get_mut(key) {
            entry.last_seen_nanos = now;
            return entry.cell.measure_and_replace(&NotKeyed::NonKey, f);
        }
        if map.len() >= state.max_clients {
            // Judged as a new client, and forgotten: memory stays bounded.
            state.full_misses.fetch_add(1, Relaxed);
            return InMemoryState::default().measure_and_replace(&NotKeyed::NonKey, f);
        }
        let entry = map.entry(*key).or_default();
        entry.last_seen_nanos = now;
        entry.cell.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
