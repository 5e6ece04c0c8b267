//! The one path from a validated request to a finished run, which every
//! subcommand that runs something goes through: `load` (a load run, started
//! against a target or a reference server it starts itself) and `reference`
//! (the reference server, in this process or as a child). Flags, progress
//! display and exit codes belong to the `floodgate` binary; the engine,
//! the probe and the model belong to their crates.
//!
//! # Implementation
//!
//! [`load::run`] starts, besides the engine's own threads, the reference
//! server's (async-std's executor threads, when it starts one) and the
//! evidence sampler's thread `floodgate-evidence` (when the target listens
//! in this network namespace); all are gone when it returns.

pub mod exit;
pub mod load;
pub mod reference;
pub mod scenario;

pub use exit::Exit;
pub use floodgate_loadgen::plan;
pub use floodgate_loadgen::run::Snapshot;
pub use load::{Finished, LoadError, LoadRequest, run as run_load};

/// The reference server crate, for `floodgate serve`.
pub use floodgate_server as server;
