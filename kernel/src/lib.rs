//! Kernel evidence about TCP listeners and connections: the TcpExt counters
//! of `/proc/net/netstat` (`counters`), a listener's accept queue and SYN-RECV
//! sockets through NETLINK_SOCK_DIAG (`diag`), `TCP_INFO` on one socket
//! (`tcp_info`), a background sampler that records all of it as a timeline
//! during a run (`evidence`), which processes hold a socket (`owner`, from
//! `/proc/PID/fd`), lab namespaces (`lab`), and the process's descriptor
//! limit ([`raise_fd_limit`]).
//!
//! Everything but `lab` and `raise_fd_limit` reads the network namespace of
//! the calling thread and never changes kernel state; `lab` makes fresh
//! namespaces and writes `net.*` sysctls only inside them; `raise_fd_limit`
//! changes this process's soft RLIMIT_NOFILE and nothing else. What the
//! numbers are, as data, is floodgate-reports' model
//! (`floodgate_reports::evidence`); interpreting them is its `verdict`.
//!
//! **Kernel counters are read only for targets in this network namespace**:
//! [`Evidence::for_target`] decides that from the target's address, so no
//! caller can attach another namespace's counters to a run.
//!
//! At run time [`Evidence::for_target`] starts one thread,
//! `floodgate-evidence`, that lives until [`Recorder::finish`] (or the
//! recorder is dropped).
//!
//! Typical use around a run:
//!
//! ```no_run
//! use std::time::Duration;
//! use floodgate_kernel::Evidence;
//! # let target: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
//! if let Some(recorder) = Evidence::for_target(target, Duration::from_millis(50))? {
//!     // ... run the load; recorder.mark("ramp") between phases ...
//!     let evidence = recorder.finish();
//!     println!("ListenOverflows +{}", evidence.counters.listen_overflows);
//! }
//! # Ok::<(), floodgate_kernel::EvidenceError>(())
//! ```

mod counters;
mod diag;
mod evidence;
mod fd_limit;
pub mod lab;
mod owner;
mod tcp_info;

#[cfg(test)]
mod lab_tests;

pub use counters::{CounterDelta, Counters, CountersError, Table, from_tables, read_counters};
pub use diag::{
    DiagError, Listener, PortState, local_listener, port_listeners, port_state, target_listeners,
};
pub use evidence::{Evidence, EvidenceError, MAX_INTERVAL, MAX_SAMPLES, Recorder};
pub use fd_limit::raise_fd_limit;
pub use floodgate_reports::evidence::{EvidenceReport, Phase, Sample};
pub use owner::{Process, holds_socket, socket_holders};
pub use tcp_info::{
    STATE_ESTABLISHED, STATE_LISTEN, STATE_SYN_RECV, STATE_SYN_SENT, TcpInfo, tcp_info,
};
