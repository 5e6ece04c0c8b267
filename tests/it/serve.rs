//! End-to-end tests of `floodgate serve`.
