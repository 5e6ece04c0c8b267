//! The load generator: validated plans (`plan`), per-connection schedules
//! (`schedule`), client connections (`conn`, `http`), the outcome taxonomy
//! (`outcome`), HDR measurement (`measure`), the result model and its
//! renderers (`result`, `summary`), and kernel probes (`kernel`).
//!
//! # Implementation
//!
//! [`run::run`] starts `plan.threads` OS threads named `floodgate-load-N`.
//! Each runs `async_io::block_on` over its own `async_executor::LocalExecutor`
//! holding one task per connection slot it owns (slot `i` lives on thread
//! `i % threads`); nothing is shared between threads on the hot path except
//! one padded cache line of live counters per thread. async-io's reactor
//! thread ("async-io") wakes a thread's tasks when its sockets or timers are
//! ready. The calling thread only waits, reports progress once a second and
//! merges the per-thread recorders at the end.

pub mod conn;
pub mod http;
pub mod kernel;
pub mod measure;
pub mod outcome;
pub mod plan;
pub mod probe;
pub mod result;
pub mod run;
pub mod schedule;
pub mod summary;
pub mod verdict;

pub use outcome::Outcome;
pub use plan::{Plan, PlanError, PlanInput};
pub use result::LoadResult;
pub use run::{RunResult, raise_fd_limit, run};
