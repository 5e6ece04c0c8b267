//! Kernel evidence about TCP listeners and connections: the TcpExt counters
//! of `/proc/net/netstat` (`counters`), a listener's accept queue and SYN-RECV
//! sockets through NETLINK_SOCK_DIAG (`diag`), `TCP_INFO` on one socket
//! (`tcp_info`), and a background sampler that records all of it as a
//! timeline during a run (`evidence`).
//!
//! Everything here reads the network namespace of the calling process; it
//! never changes kernel state. Interpreting the numbers is `crate::verdict`'s
//! job, not this module's.

mod tcp_info;

pub use tcp_info::{
    STATE_ESTABLISHED, STATE_LISTEN, STATE_SYN_RECV, STATE_SYN_SENT, TcpInfo, tcp_info,
};
mod counters;
mod diag;

pub use counters::{CounterDelta, Counters, CountersError, Table};
pub use diag::{DiagError, Listener, PortState, local_listener, port_state};
mod evidence;

pub use evidence::{
    Evidence, EvidenceError, EvidenceReport, MAX_INTERVAL, MAX_SAMPLES, Phase, Recorder, Sample,
};

#[cfg(test)]
mod lab_tests;
