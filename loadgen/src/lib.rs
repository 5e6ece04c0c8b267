//! The load generator: open-loop and closed-loop schedules, connections,
//! HDR latency measurement, the outcome taxonomy, and kernel probes.
//!
//! SKELETON: being written.

pub mod kernel;
pub mod probe;
pub mod verdict;
