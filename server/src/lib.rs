//! The async-std reference server: listening sockets, the accept loop and
//! per-connection tasks that move bytes and deadlines between sockets and
//! `floodgate-proto`. Every protocol decision (framing, limits, statuses,
//! keep-alive, deadlines) is made by [`floodgate_proto::Connection`]; this
//! crate only does IO, and async-std stays confined to it.
//!
//! # Modules
//!
//! - `listener`: sockets built with `socket2` (SO_REUSEADDR, SO_REUSEPORT,
//!   the listen(2) backlog) and the kernel's effective backlog read back.
//! - `accept`: the accept loop, its back-off and pauses.
//! - `conn`: the per-connection task and the refusal of connections over the
//!   limit.
//! - `shared`: the shutdown phase, the open-connection count and its permit,
//!   the accept pause.
//! - `transport` and `tls`: the plain or TLS stream a connection runs over,
//!   and the rustls configuration with its handshake deadline.
//! - `threads`: the [`Model::Threads`] connection driver, a thread per
//!   connection taking the same steps as `conn`'s loop.
//! - `token_file` and `files`: the bounded reads of the files a server is
//!   configured with (a bearer token's file, certificates, keys).
//!
//! # Tasks and threads at run time
//!
//! - The thread that calls [`Server::run`] (for [`Server::start`], a thread
//!   named `floodgate-server`) runs the supervisor: it spawns the accept
//!   tasks, waits for the shutdown future, then runs the drain. It sleeps in
//!   futures-lite's `block_on` and never drives the reactor.
//! - One accept task per listening socket, on async-std's executor.
//! - With [`Model::ReusePort`], one accept task per listener, one listener
//!   per core on each address. With [`Model::Threads`], one OS thread per
//!   open connection (named `conn PORT`) instead of a task, blocking in
//!   poll(2) on its socket and on the phase pipes `Shared` writes to.
//! - One task per open connection, on async-std's executor. It owns the
//!   socket, the `Connection` state and a permit; it borrows a thread-local
//!   64 KiB read buffer only between a read and `handle_read`, so an idle
//!   connection holds no buffer.
//! - async-std's executor threads (one per CPU; `ASYNC_STD_THREAD_COUNT`
//!   overrides) and async-io's reactor thread (`async-io`), which waits in
//!   epoll and fires timers. These are process-wide and shared by every
//!   server in the process.
//!
//! # Memory per connection
//!
//! An idle keep-alive connection costs about 1 KiB of user-space memory
//! (`bench/server.sh`: RSS delta over 10,000 connections): the task (the
//! `Connection` state, the socket handle, one lazily armed timer, one
//! shutdown listener), async-io's registration of the socket, and the
//! timer's entry. Counted on the heap (the `memory` test, 2,000
//! connections): 1,055 B each, of it 672 B the task allocation, 216 B
//! async-io's `Source` and 56 B a third block. It holds no read buffer (the 64 KiB scratch buffer is per
//! executor thread) and no output buffer once its responses are written.
//! The wait for readiness uses the socket's own waker slots
//! (`Async::poll_readable`/`poll_writable`) rather than per-wait futures.
//!
//! # When `max_connections` are open
//!
//! A new connection is still accepted (so it does not sit in the kernel's
//! queue until the client times out), answered
//! [`floodgate_proto::OVERLOADED_RESPONSE`] (`503 Service Unavailable`,
//! `Connection: close`, `Retry-After: 1`) with a single non-blocking write,
//! and closed. `Stats::refuse_over_limit` in proto makes that decision's
//! books: it is counted in `Stats::rejected_by_limit` and its 503 by status
//! (and in `Stats::accepted`), never in `Stats::active`. The slot of a served
//! connection is a permit owned by its task and released when the task ends
//! in any way: clean close, reset, protocol error, timeout, forced shutdown,
//! or a panic, which is caught and logged.
//!
//! # Shutdown
//!
//! When the shutdown future completes, or an accept task meets an error no
//! retry can fix (the listener itself is broken, say EBADF or EINVAL; then
//! the outcome is [`Outcome::AcceptFailed`]): the accept tasks return and their
//! listeners close at once, so new connects are refused; every connection is
//! told (`Connection::handle_shutdown`): idle ones close at once, in-flight
//! requests finish with `Connection: close`. If all are done within
//! [`Config::shutdown_grace`], the outcome is [`Outcome::Drained`];
//! otherwise the rest are reset and the outcome is [`Outcome::Forced`].

mod accept;
mod conn;
mod files;
mod listener;
mod shared;
mod threads;
pub mod tls;
pub mod token_file;
mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use floodgate_proto::Stats;

/// The connection limits and timeouts, part of [`Config`].
pub use floodgate_proto::Limits;

/// The access policy of [`Config::access`]: allowlist, token, per-client limits.
pub use floodgate_proto::access;

/// Everything `floodgate serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on; default `127.0.0.1:8080`.
    pub listen: Vec<SocketAddr>,
    /// The backlog passed to listen(2); the kernel clamps it at `net.core.somaxconn`.
    pub backlog: u32,
    /// SO_REUSEADDR (default on).
    pub reuse_address: bool,
    /// SO_REUSEPORT (default off; always on with [`Model::ReusePort`]).
    pub reuse_port: bool,
    /// How connections are spread and run (`--model`).
    pub model: Model,
    /// A wait before each accept(2), to make backlog overflow reproducible.
    pub accept_delay: Option<Duration>,
    /// At most this many connections served at once; see the crate docs for the policy when full.
    pub max_connections: Option<usize>,
    /// Per-connection limits and timeouts.
    pub limits: Limits,
    /// Time in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// TLS termination on every listener (`None`: plain HTTP).
    pub tls: Option<tls::Tls>,
    /// Who may connect and what each client may do: the allowlist, the
    /// bearer token, per-client limits (`floodgate_proto::access`). The
    /// default lets everyone in.
    pub access: floodgate_proto::access::Policy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            model: Model::Async,
            accept_delay: None,
            max_connections: None,
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            access: floodgate_proto::access::Policy::default(),
        }
    }
}

/// How the server spreads and runs its connections (`--model`). Every
/// model drives the same `floodgate_proto::Connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// One listener per address with one accept loop; each connection a
    /// task on async-std's executor.
    #[default]
    Async,
    /// One listener per core on each address, all on one port with
    /// SO_REUSEPORT and each with its own accept loop, so the kernel spreads
    /// new connections across them; connections as with `Async`.
    ReusePort,
    /// One listener per address, as `Async`; each connection an OS thread
    /// of its own blocking in poll(2), at most `max_connections` of them
    /// (default [`THREADS_MAX_CONNECTIONS`]). Plain HTTP: a TLS server's
    /// connections stay async tasks.
    Threads,
}

/// The connections (threads) the threads model allows when
/// `max_connections` is not set.
pub const THREADS_MAX_CONNECTIONS: usize = threads::DEFAULT_MAX_CONNECTIONS;

impl Model {
    /// The listening sockets per configured address.
    pub fn listeners(self) -> usize {
        match self {
            Model::Async | Model::Threads => 1,
            Model::ReusePort => std::thread::available_parallelism().map_or(1, |n| n.get()),
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
    #[error("cannot make the threads model's wake-up pipes: {0}")]
    Pipes(std::io::Error),
}

/// How a server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every connection finished within the shutdown grace.
    Drained,
    /// The grace ran out; this many connections were force-closed.
    Forced { open_connections: usize },
    /// accept(2) on `addr` failed with an error no retry could fix (the OS
    /// error number, if it had one), so the server stopped by itself; it
    /// drained its connections first, within the grace.
    AcceptFailed {
        addr: SocketAddr,
        errno: Option<i32>,
    },
}

/// Bound listening sockets, not yet accepting.
#[derive(Debug)]
pub struct Server {
    config: Config,
    addrs: Vec<SocketAddr>,
    stats: Arc<Stats>,
    listeners: Vec<listener::Listener>,
    /// The threads model's wake-up pipes, made at bind so a failure is a
    /// bind error.
    pipes: Option<threads::PhasePipes>,
}

impl Server {
    /// Binds and listens on every configured address: with
    /// [`Model::ReusePort`], one socket per core on each, the first choosing
    /// the port (for port 0) and the others joining it.
    pub fn bind(mut config: Config) -> Result<Server, BindError> {
        let per_addr = config.model.listeners();
        config.reuse_port |= config.model == Model::ReusePort;
        let mut listeners = Vec::with_capacity(config.listen.len() * per_addr);
        let mut addrs = Vec::with_capacity(config.listen.len());
        for addr in &config.listen {
            let first = listener::bind(*addr, &config)?;
            let bound = first.addr;
            addrs.push(bound);
            listeners.push(first);
            for _ in 1..per_addr {
                listeners.push(listener::bind(bound, &config)?);
            }
        }
        let pipes = match config.model {
            Model::Threads => Some(threads::PhasePipes::new().map_err(BindError::Pipes)?),
            _ => None,
        };
        Ok(Server {
            addrs,
            listeners,
            config,
            stats: Arc::default(),
            pipes,
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

    /// The accept-queue capacity the kernel applied to each listener, in the
    /// order of [`Server::local_addrs`]: `--backlog` clamped at
    /// `net.core.somaxconn`. `None` where the platform does not say.
    pub fn effective_backlogs(&self) -> Vec<Option<u64>> {
        self.addrs
            .iter()
            .map(|addr| {
                let first = self.listeners.iter().find(|l| l.addr == *addr)?;
                listener::effective_backlog(first.socket.get_ref())
            })
            .collect()
    }

    /// The listening sockets: one per address, or one per core on each
    /// with [`Model::ReusePort`].
    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    /// Serves on this thread until `shutdown` completes, then drains.
    pub fn run(self, shutdown: impl Future<Output = ()>) -> Outcome {
        // futures-lite's block_on parks this thread; async-std's would make
        // it compete to drive the reactor, and every IO event it took would
        // then cost a cross-thread wake of the executor thread running that
        // connection.
        futures_lite::future::block_on(self.serve(shutdown))
    }

    async fn serve(self, shutdown: impl Future<Output = ()>) -> Outcome {
        let Server {
            config,
            stats,
            listeners,
            pipes,
            ..
        } = self;
        // Each of the threads model's connections is a thread: bounded.
        let max_connections = match (&pipes, config.max_connections) {
            (Some(_), None) => Some(THREADS_MAX_CONNECTIONS),
            (_, max) => max,
        };
        let mut shared =
            shared::Shared::new(config.limits, stats, config.accept_delay, max_connections);
        shared.tls = config.tls.clone();
        shared.pipes = pipes;
        if config.access != floodgate_proto::access::Policy::default() {
            shared.access = Some(Arc::new(floodgate_proto::access::Access::new(
                config.access.clone(),
                std::time::Instant::now(),
            )));
        }
        let shared = Arc::new(shared);
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|l| async_std::task::spawn(accept::accept_loop(l, shared.clone())))
            .collect();

        // A broken listener ends the server as a shutdown would.
        futures_lite::future::or(shutdown, shared.stopped_running()).await;
        shared.advance(shared::Phase::Draining);
        // Each accept task drops its listener as it returns: once they are
        // all joined, new connects are refused.
        for task in accepting {
            task.await;
        }
        let open = shared.open_connections();
        tracing::info!(
            open,
            grace_ms = config.shutdown_grace.as_millis() as u64,
            "stopped listening; draining connections"
        );
        let drained = futures_lite::future::or(
            async {
                shared.all_closed().await;
                true
            },
            async {
                async_io::Timer::after(config.shutdown_grace).await;
                false
            },
        )
        .await;
        if drained {
            tracing::info!("all connections closed");
            if let Some((addr, errno)) = shared.accept_failure() {
                return Outcome::AcceptFailed { addr, errno };
            }
            return Outcome::Drained;
        }
        let open_connections = shared.open_connections();
        tracing::warn!(
            open_connections,
            "shutdown grace ran out; resetting the remaining connections"
        );
        shared.advance(shared::Phase::Forced);
        // Aborting is immediate; the bound only guards against a task stuck
        // outside its loop, which must not keep the process alive.
        futures_lite::future::or(shared.all_closed(), async {
            async_io::Timer::after(FORCE_WAIT).await;
        })
        .await;
        Outcome::Forced { open_connections }
    }

    /// Serves on a background thread until [`RunningServer::shutdown`].
    pub fn start(self) -> RunningServer {
        let trigger = Arc::new(Trigger::default());
        let addrs = self.addrs.clone();
        let stats = self.stats.clone();
        let waiter = trigger.clone();
        let thread = std::thread::Builder::new()
            .name("floodgate-server".into())
            .spawn(move || self.run(async move { waiter.wait().await }))
            .expect("spawn the floodgate-server thread");
        RunningServer {
            addrs,
            stats,
            trigger,
            thread: Some(thread),
        }
    }
}

/// How long a forced shutdown waits for connection tasks to reset their
/// sockets before giving up on them.
const FORCE_WAIT: Duration = Duration::from_secs(1);

/// A one-shot shutdown signal that can be fired from any thread.
#[derive(Debug, Default)]
struct Trigger {
    fired: AtomicBool,
    event: event_listener::Event,
}

impl Trigger {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    async fn wait(&self) {
        loop {
            let listener = self.event.listen();
            if self.fired.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }
}

/// A server running on a background thread. Dropping it starts a shutdown
/// without waiting for it.
#[derive(Debug)]
pub struct RunningServer {
    addrs: Vec<SocketAddr>,
    stats: Arc<Stats>,
    /// Completes the shutdown future the server thread's `run` waits on.
    trigger: Arc<Trigger>,
    thread: Option<std::thread::JoinHandle<Outcome>>,
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

    /// A handle that starts the shutdown from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            trigger: self.trigger.clone(),
        }
    }

    /// Stops accepting, drains within the grace, and waits for the thread.
    pub fn shutdown(self) -> Outcome {
        self.trigger.fire();
        self.wait()
    }

    /// Waits for the server to end: after a [`Stopper::stop`], or by itself
    /// ([`Outcome::AcceptFailed`]).
    pub fn wait(mut self) -> Outcome {
        let thread = self
            .thread
            .take()
            .expect("the server thread is joined once");
        match thread.join() {
            Ok(outcome) => outcome,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Starts the shutdown of a [`RunningServer`] from any thread.
#[derive(Debug, Clone)]
pub struct Stopper {
    trigger: Arc<Trigger>,
}

impl Stopper {
    /// Starts the shutdown; [`RunningServer::wait`] returns once it is over.
    pub fn stop(&self) {
        self.trigger.fire();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.trigger.fire();
    }
}
