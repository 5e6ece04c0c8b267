//! Harnesses the fuzz targets in `fuzz/` and the corpus-replay test call.
//!
//! Each harness drives a real [`Connection`](crate::Connection) in memory, the way the server
//! glue does (read only while it wants to read, write what it offers, fire
//! deadlines, deliver EOF once the peer's bytes are all read), with fabricated
//! `Instant`s, and asserts properties rather than merely surviving:
//!
//! - the same bytes split differently give byte-identical output, events,
//!   close and counters ([`http_connection()`]);
//! - every response parses back as HTTP/1.1 with a correct length;
//! - a response to a protocol error, or one carrying `Connection: close`, is
//!   the last thing sent, and the connection then closes;
//! - every complete well-formed request gets exactly one response, in order,
//!   with the status and body a model predicts ([`http_sequence()`]);
//! - the heap the connection holds stays within a bound derived from its
//!   [`Limits`](crate::Limits) (measured by [`CountingAllocator`] where it
//!   is installed);
//! - no connection lives forever: it always either closes or has a deadline;
//! - a connection judged by an access policy lets no more requests past
//!   its rate than the burst and the time that passed allow, and without
//!   the token refuses every request that needs one ([`http_connection()`]);
//! - `Close::Graceful` is only offered once every byte has been written.
//!
//! # Where things are
//!
//! - `http_connection.rs`, `chunked_body.rs`, `http_sequence.rs`: one harness
//!   each, named after its fuzz target;
//! - `sequence.rs`: the structured input `http_sequence` decodes
//!   ([`Sequence`] and its parts); `build.rs`: how one request is written
//!   out, and the model's prediction of its answer;
//! - `driver.rs`: the in-memory glue every harness runs a connection with
//!   (the crate's shared [`memory::Driver`](crate::memory::Driver), plus the
//!   harnesses' clock, heap checks and end-of-run checks), and the limits
//!   the harnesses choose from;
//! - `responses.rs`: the output parsed back, the checks every run ends with,
//!   and a reference chunked decoder;
//! - `alloc.rs`: [`CountingAllocator`] and the heap bound;
//! - `replay.rs` (tests only): the replay of every committed input, in every
//!   `cargo test`.
//!
//! What is not here: the fuzz targets themselves, a few lines each in
//! `fuzz/fuzz_targets/`.

pub(crate) mod alloc;
mod build;
mod chunked_body;
mod driver;
mod http_connection;
mod http_sequence;
mod responses;
mod sequence;

#[cfg(test)]
mod replay;

pub use alloc::CountingAllocator;
pub use chunked_body::chunked_body;
pub use http_connection::http_connection;
pub use http_sequence::{http_sequence, http_sequence_bytes};
pub use sequence::{
    Body, ConnectionHeader, Corruption, Delivery, Header, HeaderName, Method, Octets, Request,
    Sequence, Step, Target, Version,
};
