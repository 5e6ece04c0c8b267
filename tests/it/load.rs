//! End-to-end tests of `floodgate load`.
