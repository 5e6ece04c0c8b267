//! End-to-end tests of `floodgate probe`.
