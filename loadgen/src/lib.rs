//! The load generator: schedules, connections, measurement.
//!
//! SKELETON: being written.
