//! HTTP/1.1 without I/O: the server side of one connection as a state
//! machine ([`Connection`], the reference server's connection core), and the
//! client side's response parser ([`client`], with which the load generator
//! and the backlog probe read replies).
//!
//! This crate owns every protocol decision the reference server makes:
//! request framing (Content-Length, chunked), limits and their statuses,
//! keep-alive and close, the endpoints, and the deadlines a connection must
//! meet. It owns no socket, no runtime and no clock: bytes come in through
//! [`Connection::handle_read`], bytes go out through
//! [`Connection::poll_transmit`], and time comes in as a `now: Instant`
//! argument. The server glue (`floodgate-server`) and the fuzz targets drive
//! the very same [`Connection`]; [`memory::Driver`] drives one without a
//! socket, for the fuzz harnesses and the load generator's malformed-input
//! check. It depends on none of floodgate's other crates.
//!
//! # The client side
//!
//! [`client::ResponseParser`] frames one reply at a time (Content-Length,
//! chunked, close-delimited, or a `tcp://` byte count or delimiter) from
//! whatever bytes its caller has read, and checks bodies as they stream past
//! for `--verify`. Callers bring the socket and the deadline: the load
//! generator's non-blocking connections and the probe's blocking reads feed
//! the same parser.
//!
//! # Driving a connection
//!
//! ```text
//! loop {
//!     write conn.poll_transmit() to the socket, report it with handle_written(n, now)
//!     match conn.poll_close() { Some(Close::Abort) => reset, Some(Close::Graceful) => shut down writing, linger, close, None => {} }
//!     act on conn.poll_event() (e.g. pause the accept loop)
//!     wait for: readable (only if conn.wants_read()), writable (if output is pending),
//!               conn.poll_timeout(), server shutdown
//!     feed what happened: handle_read / handle_eof / handle_timeout / handle_shutdown
//! }
//! ```
//!
//! # Decisions the connection makes
//!
//! - Framing errors and limits ([`ProtocolError`]: 400, 413, 431, 505) and
//!   the head and body deadlines (408) get one response with
//!   `Connection: close`; nothing after it is parsed or sent. A wrong method
//!   (405, with `Allow`), an unknown path (404) or a bad `/bytes`, `/delay`
//!   or `ms` parameter (400) leave the message framing intact, so the
//!   connection stays open.
//! - HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0
//!   closes unless `Connection: keep-alive`, echoed back. After the peer's EOF,
//!   complete requests already received are answered and the last response
//!   carries `Connection: close`; a request cut short gets no response.
//! - Counting: `requests` per complete head; one `record_status` per final
//!   response (not for `100 Continue`); `protocol_errors` for every
//!   [`ProtocolError`], every 405, and a request cut short by the peer's EOF;
//!   `timeouts` for a head, body, idle or write deadline.
//! - Deadlines: the head deadline runs from a request's first byte, the body
//!   deadline from the last body byte, the idle deadline from when the last
//!   response was written; a write deadline (no write progress while output
//!   is pending) aborts. [`Connection::poll_timeout`] gives the earliest.
//! - Memory: an idle connection holds no heap buffer
//!   ([`Connection::buffered_capacity`] is 0); a keep-alive `GET /` answered
//!   from one read allocates nothing (its response is a static slice); input
//!   held while an answer is produced is capped at one head's worth.

pub mod access;
mod chunked;
pub mod client;
mod connection;
mod error;
mod head;
mod limits;
mod response;
mod routes;
mod stats;

#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod memory;

pub use connection::{Close, Connection, Event};
pub use error::ProtocolError;
pub use limits::Limits;
pub use stats::{Stats, StatsSnapshot};

/// The response the server sends, then closes, when it refuses a connection
/// because `--max-connections` are already open.
pub const OVERLOADED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\nconnection limit hit\n";

/// The size of the `GET /bytes/{n}` body limit: 16 MiB.
pub const MAX_BYTES_ENDPOINT: u64 = 16 << 20;

/// The longest `GET /delay/{ms}` accepted: 60 s.
pub const MAX_DELAY_MS: u64 = 60_000;

/// The byte at offset `i` of every `GET /bytes/{n}` body, so clients can
/// verify content without storing it: a repeating `a..z` pattern.
pub fn bytes_endpoint_byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}
