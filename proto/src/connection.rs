//! `Connection`: one HTTP/1.1 server connection, driven by bytes, deadlines
//! and shutdown, producing bytes to write and when to close.
//!
//! This module owns the request/response cycle: buffering, the phases of a
//! request, keep-alive and close, deadlines, backpressure and the lazy
//! `/bytes` stream. Head parsing lives in `head`, chunk decoding in
//! `chunked`, routing in `routes`, response bytes in `response`.
//!
//! Memory: an idle connection owns no heap buffer. Input is parsed straight
//! from the caller's slice; only an unfinished remainder is copied. Output is
//! a pointer to a static response when that is all there is, and one `Vec`
//! (dropped once written) when responses pile up or are built at run time.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod output;
mod respond;

use output::Output;

use crate::access::{Client, Denial};
use crate::chunked::ChunkedDecoder;
use crate::head::{self, BodyFraming, Head};
use crate::response;
use crate::routes::{self, Route};
use crate::{Limits, ProtocolError, Stats};

/// Something the connection asks of the server beyond its own socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `POST /admin/pause-accept?ms=N`: stop accepting new connections for
    /// this long, so the kernel's accept queue fills.
    PauseAccept(Duration),
}

/// How the glue should end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// All output has been written: shut down the writing side, read and
    /// discard what the peer still sends for a short while, then close, so
    /// the peer sees the last response instead of a reset.
    Graceful,
    /// Close at once, discarding pending output (write timeout).
    Abort,
}

/// One server-side HTTP/1.1 connection.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    stats: Arc<Stats>,
    /// Received bytes not yet used: an unfinished head or chunk line, or
    /// requests held back while an earlier response is being produced.
    /// Empty (no allocation) whenever nothing is held.
    input: Vec<u8>,
    output: Output,
    phase: Phase,
    /// What `deadline` is for; the peer-facing deadlines are exclusive, so
    /// one slot serves them all.
    waiting: Waiting,
    deadline: Option<Instant>,
    /// Armed while output is pending, pushed back by every write that makes
    /// progress.
    write_deadline: Option<Instant>,
    event: Option<Event>,
    /// The error that ended reading, for tests and the fuzzer.
    error: Option<ProtocolError>,
    /// The peer has closed its sending side.
    read_closed: bool,
    /// The server is shutting down: the next response carries close.
    shutting_down: bool,
    /// The write deadline passed: discard output and reset.
    aborted: bool,
    /// Requests started, and error responses sent, against their caps.
    requests: u32,
    error_responses: u16,
    /// The peer as the access policy knows it (token, rate, its slot among
    /// the peer's connections, released when the connection is dropped);
    /// `None`: no policy applies (tests, the fuzzer's plain targets).
    client: Option<Client>,
}

/// Where the connection is in its current request.
#[derive(Debug)]
enum Phase {
    /// Waiting for a request head (possibly part of one is in `input`).
    Head,
    /// Reading a request body.
    Body(Box<BodyState>),
    /// A `/delay` response is due at `deadline`.
    Delay(Request),
    /// A `/bytes` body is being produced as output drains.
    Stream {
        offset: u64,
        remaining: u64,
        close_after: bool,
    },
    /// No more requests: close once output is written.
    Closing,
}

/// Which deadline `Connection::deadline` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// None: the connection waits for nothing but its output to drain.
    Nothing,
    /// Idle between requests: a silent close when it passes (only counted
    /// once output has drained).
    Idle,
    /// A head is due: the first one from accept, a later one once its first
    /// byte has arrived. 408 when it passes, however the bytes trickle in;
    /// a silent close if not a byte of it came (nothing to answer).
    Head,
    /// A body is expected: 408 if no body byte arrives before it passes.
    Body,
    /// A `/delay` response is due.
    Delay,
}

/// What the response to a request depends on beyond its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    head_only: bool,
    http10: bool,
    keep_alive: bool,
}

/// A request whose body is being read.
#[derive(Debug)]
struct BodyState {
    route: Route,
    request: Request,
    framing: BodyReader,
    /// The body so far; only `/echo` keeps it, other routes discard it.
    body: Vec<u8>,
}

#[derive(Debug)]
enum BodyReader {
    Length(u64),
    Chunked(ChunkedDecoder),
}

impl Connection {
    /// A new connection accepted at `now`. Its first request head is due
    /// within the header timeout from now, whether or not a byte of it has
    /// arrived: a connection that never sends one is closed then, not held
    /// to the idle timeout, which applies only between requests.
    pub fn new(limits: Limits, stats: Arc<Stats>, now: Instant) -> Self {
        Self::with_client(limits, stats, None, now)
    }

    /// A new connection from an admitted peer ([`crate::access::Access::admit`]):
    /// each of its requests is judged by the access policy (429, 401)
    /// before it is routed.
    pub fn with_client(
        limits: Limits,
        stats: Arc<Stats>,
        client: Option<Client>,
        now: Instant,
    ) -> Self {
        Connection {
            limits,
            stats,
            input: Vec::new(),
            output: Output {
                data: Cow::Borrowed(&[]),
                written: 0,
            },
            phase: Phase::Head,
            waiting: Waiting::Head,
            deadline: now.checked_add(limits.header_timeout),
            write_deadline: None,
            event: None,
            error: None,
            read_closed: false,
            shutting_down: false,
            aborted: false,
            requests: 0,
            error_responses: 0,
            client,
        }
    }

    /// Bytes arrived from the peer.
    pub fn handle_read(&mut self, data: &[u8], now: Instant) {
        if self.read_closed || self.aborted || matches!(self.phase, Phase::Closing) {
            return;
        }
        if self.input.is_empty() {
            // The common case: parse straight from the caller's slice and
            // copy only what is left unfinished.
            let used = self.process(data, now);
            if !matches!(self.phase, Phase::Closing) {
                let rest = data.get(used..).unwrap_or_default();
                if !rest.is_empty() {
                    self.input = rest.to_vec();
                }
            }
        } else {
            self.input.extend_from_slice(data);
            self.resume(now);
        }
        self.settle(now);
    }

    /// The peer closed its sending side (a read returned 0 bytes).
    pub fn handle_eof(&mut self, now: Instant) {
        if self.read_closed || self.aborted {
            return;
        }
        self.read_closed = true;
        // Complete requests already received are still answered; the first
        // point where more input would be needed closes the connection.
        self.resume(now);
        self.settle(now);
    }

    /// Time has reached (or passed) [`Connection::poll_timeout`]: fire every
    /// expired deadline. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.aborted {
            return;
        }
        if !self.output.pending().is_empty() && self.write_deadline.is_some_and(|d| now >= d) {
            Stats::bump(&self.stats.timeouts);
            self.aborted = true;
            self.enter_closing();
            return;
        }
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.waiting {
            Waiting::Nothing => {}
            Waiting::Idle => {
                if self.output.pending().is_empty() && matches!(self.phase, Phase::Head) {
                    Stats::bump(&self.stats.timeouts);
                    self.enter_closing();
                }
            }
            // Only the first head can be due with nothing of it received.
            Waiting::Head if self.input.is_empty() => {
                Stats::bump(&self.stats.timeouts);
                self.enter_closing();
            }
            Waiting::Head | Waiting::Body => {
                Stats::bump(&self.stats.timeouts);
                self.stats.record_status(408);
                self.output.push_static(response::closing(408));
                self.enter_closing();
            }
            Waiting::Delay => {
                if let Phase::Delay(request) = self.phase {
                    self.phase = Phase::Head;
                    self.set_waiting(Waiting::Nothing, None);
                    let more = !self.input.is_empty();
                    self.send_fixed(&response::DELAYED, request, more);
                    self.resume(now);
                }
            }
        }
        self.settle(now);
    }

    /// The server is shutting down: an idle connection closes at once; a
    /// request in flight finishes and its response carries `Connection: close`.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        match &mut self.phase {
            Phase::Head if self.input.is_empty() => self.enter_closing(),
            Phase::Stream { close_after, .. } => *close_after = true,
            _ => {}
        }
        self.settle(now);
    }

    /// Bytes to write to the peer now; empty when nothing is pending. Large
    /// bodies are produced lazily, a bounded piece at a time.
    pub fn poll_transmit(&mut self) -> &[u8] {
        if self.aborted {
            return &[];
        }
        self.output.pending()
    }

    /// `n` bytes from the front of [`Connection::poll_transmit`] were written.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        if self.aborted {
            return;
        }
        self.output.consume(n);
        if n > 0 {
            // Progress: the write deadline counts from the last write.
            self.write_deadline = None;
        }
        let stream_finished = self.fill();
        if self.output.pending().is_empty() {
            self.output.release_if_empty();
            if n > 0 && self.waiting == Waiting::Idle {
                // Idle time counts from when the last response was written.
                self.deadline = now.checked_add(self.limits.idle_timeout);
            }
        }
        if stream_finished || !self.backed_up() {
            self.resume(now);
        }
        self.settle(now);
    }

    /// The earliest deadline the glue must wake up for, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.aborted {
            return None;
        }
        let output_pending = !self.output.pending().is_empty();
        let write = self.write_deadline.filter(|_| output_pending);
        let read = match self.waiting {
            Waiting::Nothing => None,
            // The write deadline covers a connection whose output is stuck.
            Waiting::Idle if output_pending => None,
            Waiting::Idle | Waiting::Head | Waiting::Body | Waiting::Delay => self.deadline,
        };
        match (write, read) {
            (Some(w), Some(r)) => Some(w.min(r)),
            (w, r) => w.or(r),
        }
    }

    /// The next request for the server itself, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    /// Whether the glue should read from the socket: false while responses
    /// are backed up beyond `max_pending_output`, and once reading is over.
    pub fn wants_read(&self) -> bool {
        if self.read_closed || self.aborted || self.backed_up() {
            return false;
        }
        match self.phase {
            Phase::Head | Phase::Body(_) => true,
            // While a response is produced, hold at most one head's worth
            // of pipelined input.
            Phase::Delay(_) | Phase::Stream { .. } => self.input.len() < self.limits.max_head_bytes,
            Phase::Closing => false,
        }
    }

    /// Whether, and how, the glue should end the connection now.
    /// `Graceful` is only returned once all output has been written.
    pub fn poll_close(&self) -> Option<Close> {
        if self.aborted {
            Some(Close::Abort)
        } else if matches!(self.phase, Phase::Closing) && self.output.pending().is_empty() {
            Some(Close::Graceful)
        } else {
            None
        }
    }

    /// The protocol error that ended this connection, if one did.
    pub fn protocol_error(&self) -> Option<ProtocolError> {
        self.error
    }

    /// Heap bytes this connection holds for buffers (input, output and any
    /// body being read): zero whenever it is idle.
    pub fn buffered_capacity(&self) -> usize {
        let body = match &self.phase {
            Phase::Body(state) => size_of::<BodyState>() + state.body.capacity(),
            _ => 0,
        };
        self.input.capacity() + self.output.heap_capacity() + body
    }

    /// Processes `input` with the remainder put back (or the buffer dropped).
    fn resume(&mut self, now: Instant) {
        let input = std::mem::take(&mut self.input);
        let used = self.process(&input, now);
        if matches!(self.phase, Phase::Closing) || used >= input.len() {
            return;
        }
        let mut input = input;
        input.drain(..used);
        self.input = input;
    }

    /// Parses and answers as many requests from `buf` as it can; returns
    /// the bytes used. Stops at an unfinished request, a response still in
    /// production, backed-up output, or close.
    fn process(&mut self, buf: &[u8], now: Instant) -> usize {
        let mut pos = 0;
        loop {
            if self.backed_up() {
                return pos;
            }
            let rest = buf.get(pos..).unwrap_or_default();
            match &mut self.phase {
                Phase::Head => {
                    if rest.is_empty() {
                        if self.read_closed {
                            self.enter_closing();
                        } else if self.waiting != Waiting::Idle {
                            let idle_until = now.checked_add(self.limits.idle_timeout);
                            self.set_waiting(Waiting::Idle, idle_until);
                        }
                        return pos;
                    }
                    match head::parse(rest, &self.limits) {
                        Err(error) => {
                            self.fail(error);
                            return pos;
                        }
                        Ok(None) => {
                            if self.read_closed {
                                // Stray line endings between requests are
                                // not the start of one.
                                if rest.iter().all(|&b| b == b'\r' || b == b'\n') {
                                    self.enter_closing();
                                } else {
                                    self.truncated();
                                }
                            } else if self.waiting != Waiting::Head {
                                let until = now.checked_add(self.limits.header_timeout);
                                self.set_waiting(Waiting::Head, until);
                            }
                            return pos;
                        }
                        Ok(Some((head, len))) => {
                            pos += len;
                            let more = buf.len() > pos;
                            self.start_request(head, more, now);
                        }
                    }
                }
                Phase::Body(state) => {
                    let (used, done) = match state.read(rest, self.limits.max_body_bytes) {
                        Ok(progress) => progress,
                        Err(error) => {
                            self.fail(error);
                            return pos;
                        }
                    };
                    pos += used;
                    if done {
                        let Phase::Body(state) = std::mem::replace(&mut self.phase, Phase::Head)
                        else {
                            return pos;
                        };
                        self.set_waiting(Waiting::Nothing, None);
                        let more = buf.len() > pos;
                        self.respond(state.route, state.request, &state.body, more, now);
                    } else {
                        if self.read_closed {
                            self.truncated();
                        } else if used > 0 {
                            let until = now.checked_add(self.limits.body_timeout);
                            self.set_waiting(Waiting::Body, until);
                        }
                        return pos;
                    }
                }
                Phase::Delay(_) | Phase::Stream { .. } | Phase::Closing => return pos,
            }
        }
    }

    /// A complete head has arrived: answer it, or start reading its body.
    fn start_request(&mut self, head: Head<'_>, more: bool, now: Instant) {
        Stats::bump(&self.stats.requests);
        self.requests = self.requests.saturating_add(1);
        let last = self
            .limits
            .max_requests_per_connection
            .is_some_and(|max| self.requests >= max.get());
        let request = Request {
            head_only: head.method == "HEAD",
            http10: head.http10,
            keep_alive: head.keep_alive && !last,
        };
        let route = match self.judge(&head, now) {
            Ok(()) => routes::route(head.method, head.target, self.limits.admin),
            Err(Denial::Unauthorized) => Route::Unauthorized,
            Err(Denial::RateLimited { retry_after_s }) => Route::TooManyRequests(retry_after_s),
        };
        let framing = match head.body {
            BodyFraming::None => {
                self.set_waiting(Waiting::Nothing, None);
                self.respond(route, request, &[], more, now);
                return;
            }
            BodyFraming::Length(n) => BodyReader::Length(n),
            BodyFraming::Chunked => BodyReader::Chunked(ChunkedDecoder::new()),
        };
        if head.expect_continue {
            self.output.push_static(response::CONTINUE);
        }
        self.phase = Phase::Body(Box::new(BodyState {
            route,
            request,
            framing,
            body: Vec::new(),
        }));
        let until = now.checked_add(self.limits.body_timeout);
        self.set_waiting(Waiting::Body, until);
    }

    /// The access policy's verdict on a request (none without a client).
    /// A refused request's body is still read (and discarded), so the
    /// connection keeps its framing and can stay open.
    fn judge(&self, head: &Head<'_>, now: Instant) -> Result<(), Denial> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let exposure = routes::exposure(head.target, self.limits.admin);
        client.judge(exposure, head.authorization, &self.stats, now)
    }

    /// Refuses the request: one error response with close, then nothing.
    fn fail(&mut self, error: ProtocolError) {
        self.error = Some(error);
        Stats::bump(&self.stats.protocol_errors);
        self.stats.record_status(error.status());
        self.output.push_static(response::closing(error.status()));
        self.enter_closing();
    }

    /// The peer closed its side in the middle of a request: no response is
    /// possible for a message that never ended, but it counts as a protocol
    /// error (an incomplete message).
    fn truncated(&mut self) {
        Stats::bump(&self.stats.protocol_errors);
        self.enter_closing();
    }

    fn enter_closing(&mut self) {
        self.phase = Phase::Closing;
        self.input = Vec::new();
        self.set_waiting(Waiting::Nothing, None);
    }

    fn set_waiting(&mut self, waiting: Waiting, deadline: Option<Instant>) {
        self.waiting = waiting;
        self.deadline = deadline;
    }

    fn backed_up(&self) -> bool {
        self.output.pending().len() > self.limits.max_pending_output
    }

    /// Arms the write deadline when output has become pending, disarms it
    /// when none is, and releases the output buffer when all is written.
    fn settle(&mut self, now: Instant) {
        if self.output.pending().is_empty() {
            self.write_deadline = None;
            self.output.release_if_empty();
        } else if self.write_deadline.is_none() {
            self.write_deadline = now.checked_add(self.limits.write_timeout);
        }
    }
}

impl BodyState {
    /// Reads body bytes from `input`: bytes used and whether the body ended.
    fn read(&mut self, input: &[u8], limit: usize) -> Result<(usize, bool), ProtocolError> {
        let keep = self.route == Route::Echo;
        match &mut self.framing {
            BodyReader::Length(remaining) => {
                let take = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if keep {
                    self.body
                        .extend_from_slice(input.get(..take).unwrap_or_default());
                }
                *remaining -= take as u64;
                Ok((take, *remaining == 0))
            }
            BodyReader::Chunked(decoder) => {
                let progress = decoder.decode(input, &mut self.body, limit)?;
                if !keep {
                    // Other routes discard the body; the decoder still
                    // counts it against the limit.
                    self.body.clear();
                }
                Ok((progress.consumed, progress.done))
            }
        }
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
