//! What to probe and how hard: [`Config`] and the burst's limits.

use std::net::SocketAddr;
use std::time::Duration;

/// The most connects one burst may fire: enough for somaxconn 4096 + 1 plus
/// a margin, small enough to stay a probe rather than a flood.
pub const MAX_CONNECTS: usize = 5000;

/// What to probe and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: SocketAddr,
    /// Connects in the burst; more than the expected capacity.
    pub connects: usize,
    /// How long after the burst connects may complete and still count;
    /// below the 1 s initial SYN retransmission timeout, so a connect that
    /// completes in it was never dropped.
    pub window: Duration,
    /// How long held connections get to be served after the resume.
    pub serve_timeout: Duration,
    /// Path requested on every held connection after the resume.
    pub check_path: String,
    /// The backlog the listener was asked for, when known.
    pub configured_backlog: Option<u32>,
    /// `net.core.somaxconn` of the target's namespace, when known.
    pub somaxconn: Option<u32>,
}

impl Config {
    /// A default burst size: the expected capacity plus a margin when a
    /// backlog is known, else enough for the largest default somaxconn.
    pub fn default_connects(expected_backlog: Option<u32>) -> usize {
        match expected_backlog {
            Some(b) => (b as usize + 1 + 32).min(MAX_CONNECTS),
            None => 4096 + 1 + 32,
        }
    }
}
