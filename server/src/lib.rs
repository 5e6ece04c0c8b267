//! The async-std reference server: listening sockets, the accept loop and
//! per-connection tasks that move bytes and deadlines between sockets and
//! `floodgate-proto`.
//!
//! SKELETON: the public API below is fixed; the bodies are being written.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use floodgate_proto::{Limits, Stats};

/// Everything `floodgate serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on; default `127.0.0.1:8080`.
    pub listen: Vec<SocketAddr>,
    /// The backlog passed to listen(2); the kernel clamps it at `net.core.somaxconn`.
    pub backlog: u32,
    /// SO_REUSEADDR (default on).
    pub reuse_address: bool,
    /// SO_REUSEPORT (default off).
    pub reuse_port: bool,
    /// A wait before each accept(2), to make backlog overflow reproducible.
    pub accept_delay: Option<Duration>,
    /// At most this many connections served at once; see the crate docs for the policy when full.
    pub max_connections: Option<usize>,
    /// Per-connection limits and timeouts.
    pub limits: Limits,
    /// Time in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            accept_delay: None,
            max_connections: None,
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How a server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every connection finished within the shutdown grace.
    Drained,
    /// The grace ran out; this many connections were force-closed.
    Forced { open_connections: usize },
}

/// Bound listening sockets, not yet accepting.
#[derive(Debug)]
pub struct Server {
    config: Config,
    addrs: Vec<SocketAddr>,
    stats: Arc<Stats>,
}

impl Server {
    /// Binds and listens on every configured address.
    pub fn bind(config: Config) -> Result<Server, BindError> {
        Ok(Server {
            addrs: config.listen.clone(),
            config,
            stats: Arc::default(),
        })
    }

    /// The bound addresses, with port 0 resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The server's counters (the same ones `GET /stats` shows).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves on this thread until `shutdown` completes, then drains.
    pub fn run(self, shutdown: impl Future<Output = ()>) -> Outcome {
        let _ = (shutdown, &self.config);
        Outcome::Drained
    }

    /// Serves on a background thread until [`RunningServer::shutdown`].
    pub fn start(self) -> RunningServer {
        RunningServer {
            addrs: self.addrs.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// A server running on a background thread.
#[derive(Debug)]
pub struct RunningServer {
    addrs: Vec<SocketAddr>,
    stats: Arc<Stats>,
}

impl RunningServer {
    /// The bound addresses, with port 0 resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops accepting, drains within the grace, and waits for the thread.
    pub fn shutdown(self) -> Outcome {
        Outcome::Drained
    }
}
