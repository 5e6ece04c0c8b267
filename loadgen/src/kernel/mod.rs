//! Kernel evidence about TCP listeners and connections: the TcpExt counters
//! of `/proc/net/netstat` (`counters`), a listener's accept queue and SYN-RECV
//! sockets through NETLINK_SOCK_DIAG (`diag`), `TCP_INFO` on one socket
//! (`tcp_info`), and a background sampler that records all of it as a
//! timeline during a run (`evidence`).
//!
//! Everything here reads the network namespace of the calling thread; it
//! never changes kernel state. Interpreting the numbers is `crate::verdict`'s
//! job, not this module's.
//!
//! At run time [`Evidence::start`] starts one thread, `floodgate-evidence`,
//! that lives until [`Recorder::finish`] (or the recorder is dropped).
//!
//! Typical use around a run against a local target:
//!
//! ```no_run
//! use std::time::Duration;
//! use floodgate_loadgen::kernel::{Evidence, local_listener};
//! # let target: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
//! let port = local_listener(target).map(|_| target.port());
//! let recorder = Evidence::start(port, Duration::from_millis(50))?;
//! // ... run the load; recorder.mark("ramp") between phases ...
//! let evidence = recorder.finish();
//! println!("ListenOverflows +{}", evidence.counters.listen_overflows);
//! # Ok::<(), floodgate_loadgen::kernel::EvidenceError>(())
//! ```

mod counters;
mod diag;
mod evidence;
mod tcp_info;

#[cfg(test)]
mod lab_tests;

pub use counters::{CounterDelta, Counters, CountersError, Table};
pub use diag::{DiagError, Listener, PortState, local_listener, port_listeners, port_state};
pub use evidence::{
    Evidence, EvidenceError, EvidenceReport, MAX_INTERVAL, MAX_SAMPLES, Phase, Recorder, Sample,
};
pub use tcp_info::{
    STATE_ESTABLISHED, STATE_LISTEN, STATE_SYN_RECV, STATE_SYN_SENT, TcpInfo, tcp_info,
};
