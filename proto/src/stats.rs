//! Server-wide counters shared by every connection, and their JSON snapshot
//! served at `GET /stats`.
//!
//! Connections count requests, statuses, protocol errors and timeouts; the
//! server glue counts accepts, active connections, refusals and accept errors.
//! Atomics with relaxed ordering: the counters are statistics, not
//! synchronisation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

const FIRST_STATUS: usize = 100;
const STATUS_SLOTS: usize = 500;

/// Counters for one server, shared by its connections.
#[derive(Debug)]
pub struct Stats {
    /// Connections accepted from the listener (including those then refused).
    pub accepted: AtomicU64,
    /// Connections currently being served.
    pub active: AtomicU64,
    /// Requests whose head was parsed completely.
    pub requests: AtomicU64,
    /// Requests refused as malformed or over a limit (400, 413, 431, 505),
    /// answered 405, or cut short by the peer's EOF.
    pub protocol_errors: AtomicU64,
    /// Connections cut by a header, body, idle or write deadline.
    pub timeouts: AtomicU64,
    /// Connections refused because `--max-connections` were open.
    pub rejected_by_limit: AtomicU64,
    /// accept(2) calls that failed (EMFILE, ECONNABORTED, ...).
    pub accept_errors: AtomicU64,
    /// Requests refused 401: no valid bearer token (`--auth-token-file`).
    pub unauthorized: AtomicU64,
    /// Requests refused 429: over `--per-ip-rate`.
    pub rate_limited: AtomicU64,
    /// Connections closed at accept: the peer is in no `--allow` network.
    pub refused_by_allowlist: AtomicU64,
    /// Connections closed at accept: the peer already held
    /// `--per-ip-max-connections`.
    pub refused_per_ip: AtomicU64,
    /// Requests of a new client judged without its rate being remembered,
    /// because the rate table was full of active clients.
    pub rate_table_full: AtomicU64,
    /// TLS handshakes that failed: not finished within the handshake
    /// timeout, not TLS at all (plaintext, random bytes), or refused.
    pub tls_handshake_failures: AtomicU64,
    status: [AtomicU64; STATUS_SLOTS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            rejected_by_limit: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            refused_by_allowlist: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
            rate_table_full: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            status: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Stats {
    /// Counts one response with this status code (100..=599; others are ignored).
    pub fn record_status(&self, code: u16) {
        if let Some(slot) = (code as usize)
            .checked_sub(FIRST_STATUS)
            .and_then(|i| self.status.get(i))
        {
            slot.fetch_add(1, Relaxed);
        }
    }

    /// Refuses a connection because `--max-connections` are open: counts
    /// it (`rejected_by_limit`, and its 503 by status) and gives the bytes
    /// to send before closing. The decision and its books live here, with
    /// every other response's, not in the IO glue.
    pub fn refuse_over_limit(&self) -> &'static [u8] {
        Stats::bump(&self.rejected_by_limit);
        self.record_status(503);
        crate::OVERLOADED_RESPONSE
    }

    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let status = self
            .status
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = n.load(Relaxed);
                (n > 0).then(|| (((i + FIRST_STATUS) as u16).to_string(), n))
            })
            .collect();
        StatsSnapshot {
            accepted: self.accepted.load(Relaxed),
            active: self.active.load(Relaxed),
            requests: self.requests.load(Relaxed),
            status,
            protocol_errors: self.protocol_errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            rejected_by_limit: self.rejected_by_limit.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            unauthorized: self.unauthorized.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            refused_by_allowlist: self.refused_by_allowlist.load(Relaxed),
            refused_per_ip: self.refused_per_ip.load(Relaxed),
            rate_table_full: self.rate_table_full.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
        }
    }
}

/// The JSON body of `GET /stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub accepted: u64,
    pub active: u64,
    pub requests: u64,
    /// Responses sent, by status code ("200" → count).
    pub status: BTreeMap<String, u64>,
    pub protocol_errors: u64,
    pub timeouts: u64,
    pub rejected_by_limit: u64,
    pub accept_errors: u64,
    // The access controls' counters; absent from the JSON of servers that
    // predate them, so read as 0.
    #[serde(default)]
    pub unauthorized: u64,
    #[serde(default)]
    pub rate_limited: u64,
    #[serde(default)]
    pub refused_by_allowlist: u64,
    #[serde(default)]
    pub refused_per_ip: u64,
    #[serde(default)]
    pub rate_table_full: u64,
    /// Absent from the output of servers older than TLS support.
    #[serde(default)]
    pub tls_handshake_failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lists_only_statuses_seen() {
        let stats = Stats::default();
        stats.record_status(200);
        stats.record_status(200);
        stats.record_status(404);
        stats.record_status(42);
        stats.record_status(600);
        Stats::bump(&stats.accepted);
        let snap = stats.snapshot();
        assert_eq!(snap.accepted, 1);
        assert_eq!(
            snap.status.into_iter().collect::<Vec<_>>(),
            vec![("200".to_string(), 2), ("404".to_string(), 1)]
        );
    }
}
