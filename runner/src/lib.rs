//! The one path from a validated request to a finished run, which every
//! subcommand that runs something goes through: `load` (a load run, started
//! against a target or a reference server it starts itself), `probe` (a
//! backlog probe of a reference server child, a bare listener or a target),
//! `reference` (the reference server, in this process or as a child) and
//! `lab` (a command re-run inside a fresh network namespace), and `merge`
//! (the reports of a sharded run's shards made into one). Flags, progress
//! display and exit codes belong to the `floodgate` binary; the engine,
//! the probe and the model belong to their crates.
//!
//! # Implementation
//!
//! [`load::run`] starts, besides the engine's own threads, the reference
//! server's (async-std's executor threads, when it starts one) and the
//! evidence sampler's thread `floodgate-evidence` (when the target listens
//! in this network namespace); all are gone when it returns.

pub mod capacity;
pub mod compare;
pub mod exit;
pub mod lab;
pub mod load;
pub mod merge;
pub mod probe;
pub mod reference;
pub mod run;
pub mod scenario;
mod target_pid;
pub mod usl;

pub use exit::Exit;
pub use floodgate_loadgen::plan;
pub use floodgate_loadgen::run::Snapshot;
pub use load::{Finished, LoadError, LoadRequest, run as run_load};

pub use probe::{ProbeRequest, ProbeRunError, Subject, TargetPause, run as run_probe};

/// Lab namespaces' sysctl rules, for the flags that set them.
pub use floodgate_kernel::lab as netns;
/// The reference server crate, for `floodgate serve`.
pub use floodgate_server as server;
