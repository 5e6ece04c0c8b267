//! The load generator: validated plans (`plan`), per-connection schedules
//! (`schedule`), client connections (`conn`, `http`, `tls` for https), the
//! per-thread event loop (`reactor`), the outcome taxonomy (`outcome`), HDR
//! measurement (`measure`), the result model and its renderers (`result`,
//! `summary`), malformed traffic mixed into the load (`malformed`) and
//! kernel probes (`kernel`). The backlog probe is floodgate-probe's.
//!
//! # Implementation
//!
//! [`run::run`] starts `plan.threads` OS threads named `floodgate-load-N`.
//! Each owns one epoll instance (`reactor`, edge-triggered, one
//! `epoll_pwait2` per wait) and a task queue (`exec`, async-task tasks in a
//! thread-local FIFO) holding one task per connection slot it owns (slot `i`
//! lives on thread `i % threads`); its loop runs ready tasks, sweeps read
//! deadlines every 20 ms, and waits on epoll until the next timer. Nothing is
//! shared between threads on the hot path except one padded cache line of
//! live counters per thread. The calling thread only waits, reports progress
//! once a second and merges the per-thread recorders at the end. `run` starts
//! no other thread; the evidence sampler (`kernel::evidence`) is started by
//! the caller, when the target listens in its network namespace.

pub mod conn;
mod exec;
pub mod http;
pub mod malformed;
pub mod measure;
pub mod outcome;
pub mod plan;
mod reactor;
pub mod report;
pub mod run;
pub mod schedule;
pub mod tls;

/// The kernel's evidence, used by the engine for TCP_INFO of its sockets.
pub use floodgate_kernel as kernel;
pub use outcome::Outcome;
pub use plan::{Plan, PlanError, PlanInput};
pub use run::{RunResult, run, run_live};
