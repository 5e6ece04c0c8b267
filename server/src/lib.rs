//! The async-std reference server: listening sockets, the accept loop and
//! per-connection tasks that move bytes and deadlines between sockets and
//! `floodgate-proto`.
//!
//! SKELETON: being written.
