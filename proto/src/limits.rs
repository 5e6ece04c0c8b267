//! Limits and timeouts a connection enforces, and what it may be asked to
//! do (the admin endpoints); the server's flags fill them in.

use std::time::Duration;

/// What one connection may cost the server, in bytes and in time, and
/// whether it may reach the admin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head (request line and headers, with their line
    /// endings); more gives 431 and close.
    pub max_head_bytes: usize,
    /// The most header fields in one request; more gives 431 and close.
    pub max_headers: usize,
    /// The largest request body; more gives 413 and close.
    pub max_body_bytes: usize,
    /// Time allowed from a request's first byte to the end of its head,
    /// however the bytes trickle in; then 408 and close. For the first
    /// request of a connection it counts from accept: one that never sends
    /// a byte is closed then, silently.
    pub header_timeout: Duration,
    /// Time a keep-alive connection is kept between requests; then a silent
    /// close.
    pub idle_timeout: Duration,
    /// Time allowed without any body byte arriving while a body is expected;
    /// then 408 and close.
    pub body_timeout: Duration,
    /// Time allowed without any write progress while output is pending; then
    /// the connection is aborted, so a client that never reads cannot pin memory.
    pub write_timeout: Duration,
    /// While more than this many response bytes wait to be written, the
    /// connection reads no more requests.
    pub max_pending_output: usize,
    /// The most requests one connection is answered; the last carries
    /// `Connection: close`. `None`: no limit.
    pub max_requests_per_connection: Option<std::num::NonZeroU32>,
    /// The most error responses (404, 405, a bad parameter's 400) one
    /// connection gets; the last carries `Connection: close`, so a flood of
    /// cheap errors cannot pin a connection forever. (A malformed request
    /// closes the connection at once.)
    pub max_errors_per_connection: u16,
    /// Whether `/admin/*` (`POST /admin/pause-accept`) is served
    /// (`floodgate serve --admin`); without it those paths are 404, so no
    /// client can stop the server accepting.
    pub admin: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_pending_output: 64 * 1024,
            max_requests_per_connection: None,
            max_errors_per_connection: 100,
            admin: false,
        }
    }
}
