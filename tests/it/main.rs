//! End-to-end tests of the `floodgate` binary: real processes on loopback.
