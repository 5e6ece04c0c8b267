//! Harnesses the fuzz targets in `fuzz/` and the corpus-replay test call.
//!
//! Each harness drives a real [`Connection`] in memory, the way the server
//! glue does (read only while it wants to read, write what it offers, fire
//! deadlines, deliver EOF once the peer's bytes are all read), with fabricated
//! `Instant`s, and asserts properties rather than merely surviving:
//!
//! - the same bytes split differently give byte-identical output, events,
//!   close and counters ([`http_connection`]);
//! - every response parses back as HTTP/1.1 with a correct length;
//! - a response to a protocol error, or one carrying `Connection: close`, is
//!   the last thing sent, and the connection then closes;
//! - every complete well-formed request gets exactly one response, in order,
//!   with the status and body a model predicts ([`http_sequence`]);
//! - the heap the connection holds stays within a bound derived from its
//!   [`Limits`] (measured by [`CountingAllocator`] where it is installed);
//! - no connection lives forever: it always either closes or has a deadline;
//! - `Close::Graceful` is only offered once every byte has been written.
//!
//! What is not here: the fuzz targets themselves (a few lines each in
//! `fuzz/fuzz_targets/`), and the replay of committed inputs, which lives in
//! the `replay` child module and runs in every `cargo test`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};

use crate::chunked::{ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use crate::{Close, Connection, Event, Limits, ProtocolError, Stats};

#[cfg(test)]
mod replay;

// ---------------------------------------------------------------------------
// Heap accounting
// ---------------------------------------------------------------------------

/// A global allocator that counts live heap bytes per thread, so a harness can
/// tell how much memory a connection holds without the connection exposing
/// its buffers. Fuzz targets and the replay test install it; without it the
/// heap oracle is skipped (and says so nowhere, because the other oracles
/// still run).
#[derive(Debug)]
pub struct CountingAllocator;

thread_local! {
    // Const-initialised and without destructors, so reading them never
    // allocates and works even while a thread is being torn down.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

static COUNTING: AtomicBool = AtomicBool::new(false);

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(size as isize);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub(size as isize)));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping touches only thread-local integers.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNTING.store(true, Relaxed);
        // SAFETY: forwarded from our caller's contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from our caller's contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from our caller's contract.
        unsafe { System.dealloc(ptr, layout) };
        note_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from our caller's contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note_free(layout.size());
            note_alloc(new_size);
        }
        new
    }
}

/// The replay test binary counts too, so corpus files are held to the same
/// heap bound as under libFuzzer. Counters are per thread, so tests running
/// in parallel do not disturb each other.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result, the net heap bytes it left allocated and
/// the most it held at once above its starting point.
fn measured<R>(f: impl FnOnce() -> R) -> (R, isize, isize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let end = LIVE.with(Cell::get);
    let peak = PEAK.with(Cell::get);
    (r, end - start, peak - start)
}

// ---------------------------------------------------------------------------
// The glue, in memory
// ---------------------------------------------------------------------------

/// The largest single read the in-memory glue performs, like the server's
/// read buffer.
const READ_CHUNK: usize = 4096;

/// Headroom in the heap bound for fixed-size allocations a connection may make
/// whatever its limits (a preallocated read buffer, a lazily produced body
/// piece, the response head being formatted).
const HEAP_SLACK: usize = 96 * 1024;

/// The most deadlines a connection may need to reach its end once its peer
/// stops sending; far above any legitimate count for the inputs fuzzed here.
const MAX_SETTLE_STEPS: usize = 20_000;

/// Statuses that only ever refuse a request as too big, too slow or in an
/// unsupported version: each must say `Connection: close` and be the last
/// response. (A 400 may also answer a bad parameter in a well-formed
/// message, on a connection that stays open; a 400 for a protocol error says
/// `Connection: close`, and the close rule covers it.)
const REFUSAL_STATUSES: [u16; 4] = [408, 413, 431, 505];

/// Limits small enough that a fuzzer reaches every limit within a few
/// kilobytes of input, plus the defaults.
fn limits_for(choice: u8) -> Limits {
    let default = Limits::default();
    match choice % 4 {
        0 => default,
        1 => Limits {
            max_head_bytes: 1024,
            max_headers: 16,
            max_body_bytes: 2048,
            max_pending_output: 4096,
            ..default
        },
        2 => Limits {
            max_head_bytes: 256,
            max_headers: 4,
            max_body_bytes: 64,
            max_pending_output: 256,
            ..default
        },
        _ => Limits {
            max_head_bytes: 512,
            max_headers: 8,
            max_body_bytes: 512,
            max_pending_output: 1024,
            ..default
        },
    }
}

/// The most heap bytes a connection with these limits may hold: one head, one
/// body twice (as received and as echoed), the pending output it is allowed
/// plus one response beyond it, one read of input beyond any limit, each
/// doubled for `Vec` growth, plus fixed slack.
fn heap_bound(limits: &Limits, max_read: usize) -> usize {
    let per_request = limits.max_head_bytes + 2 * limits.max_body_bytes + max_read;
    let output = limits.max_pending_output + limits.max_body_bytes + 1024;
    2 * (per_request + output) + HEAP_SLACK
}

/// How a run treats time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// Time moves only when the script says so, and deadlines fire then.
    Scripted,
    /// Time stands still until the peer has sent everything, so that runs
    /// that differ only in how bytes are split must produce the same output.
    Frozen,
}

/// One connection driven in memory the way the server glue drives it.
struct Driver {
    conn: Connection,
    stats: Arc<Stats>,
    limits: Limits,
    now: Instant,
    clock: Clock,
    /// Bytes the peer has sent, of which the glue has read `inbox_read`.
    inbox: Vec<u8>,
    /// How much of `inbox` the glue has read.
    inbox_read: usize,
    /// The peer has half-closed; the glue reports EOF once the inbox is empty.
    peer_done: bool,
    eof_delivered: bool,
    /// Every byte written to the peer, in order.
    out: Vec<u8>,
    events: Vec<Event>,
    closed: Option<Close>,
    /// Net heap bytes the connection holds, summed over every call into it.
    held: isize,
    heap_bound: isize,
    max_read: usize,
    /// Whether the peer reads everything offered at once (otherwise only
    /// when the script says so, or when the glue needs room to read).
    eager_writes: bool,
}

impl Driver {
    fn new(limits: Limits, clock: Clock, max_read: usize) -> Self {
        let stats = Arc::new(Stats::default());
        // A fixed, fabricated origin: nothing here may depend on the real clock.
        let now = fixed_origin();
        let (conn, held, _) = measured(|| Connection::new(limits, stats.clone(), now));
        Driver {
            conn,
            stats,
            limits,
            now,
            clock,
            inbox: Vec::new(),
            inbox_read: 0,
            peer_done: false,
            eof_delivered: false,
            out: Vec::new(),
            events: Vec::new(),
            closed: None,
            held,
            heap_bound: heap_bound(&limits, max_read) as isize,
            max_read,
            eager_writes: false,
        }
    }

    /// Calls into the connection, accounting for the heap it keeps and
    /// checking the bound at its peak.
    fn call<R>(&mut self, f: impl FnOnce(&mut Connection, Instant) -> R) -> R {
        let now = self.now;
        let conn = &mut self.conn;
        let (r, net, peak) = measured(|| f(conn, now));
        self.check_heap(peak);
        self.held += net;
        r
    }

    fn check_heap(&self, peak: isize) {
        if COUNTING.load(Relaxed) {
            let at_peak = self.held + peak;
            assert!(
                at_peak <= self.heap_bound,
                "connection held {at_peak} heap bytes, over the bound {} for {:?}",
                self.heap_bound,
                self.limits
            );
        }
    }

    /// Collects events and the close decision after any input.
    fn observe(&mut self) {
        while let Some(event) = self.call(|c, _| c.poll_event()) {
            self.events.push(event);
        }
        if self.closed.is_none() {
            let close = self.call(|c, _| c.poll_close());
            if close == Some(Close::Graceful) {
                let pending = self.call(|c, _| c.poll_transmit().len());
                assert_eq!(
                    pending, 0,
                    "poll_close offered Graceful with {pending} bytes still to write"
                );
            }
            self.closed = close;
        }
    }

    /// Bytes the peer has sent that the glue has not read yet.
    fn unread(&self) -> usize {
        self.inbox.len() - self.inbox_read
    }

    fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// The peer reads up to `limit` bytes of what the connection offers.
    fn write(&mut self, limit: usize) {
        let mut left = limit;
        while left > 0 && !self.is_closed() {
            let n = self.call(|c, _| c.poll_transmit().len()).min(left);
            if n == 0 {
                break;
            }
            // Room in `out` is made outside the measured call: the copy's
            // memory is the harness's, not the connection's. Asking again
            // gives the same bytes.
            self.out.reserve(n);
            let (conn, out) = (&mut self.conn, &mut self.out);
            let ((), net, peak) = measured(|| out.extend_from_slice(&conn.poll_transmit()[..n]));
            self.check_heap(peak);
            self.held += net;
            self.call(|c, now| c.handle_written(n, now));
            left -= n;
            self.observe();
        }
    }

    /// The peer reads up to `limit` bytes; room in the output may let the
    /// glue read again, as a writable-then-readable socket would.
    fn peer_reads(&mut self, limit: usize) {
        self.write(limit);
        self.pump();
    }

    fn write_all(&mut self) {
        self.write(usize::MAX);
    }

    /// The peer sends `bytes`; the glue reads whatever the connection wants.
    fn send(&mut self, bytes: &[u8]) {
        if self.peer_done {
            return;
        }
        self.inbox.extend_from_slice(bytes);
        self.pump();
    }

    /// Moves bytes between the peer and the connection until neither side
    /// can make progress without time passing.
    fn pump(&mut self) {
        loop {
            if self.is_closed() {
                return;
            }
            if self.eager_writes {
                self.write_all();
            }
            if !self.call(|c, _| c.wants_read()) {
                return;
            }
            if self.unread() > 0 {
                let start = self.inbox_read;
                let end = start + self.unread().min(self.max_read);
                self.inbox_read = end;
                // Lent out for the call, so the connection reads the bytes
                // in place; taking and restoring a `Vec` allocates nothing.
                let inbox = std::mem::take(&mut self.inbox);
                self.call(|c, now| c.handle_read(&inbox[start..end], now));
                self.inbox = inbox;
                if self.inbox_read == self.inbox.len() {
                    self.inbox.clear();
                    self.inbox_read = 0;
                }
                self.observe();
            } else if self.peer_done && !self.eof_delivered {
                self.eof_delivered = true;
                self.call(|c, now| c.handle_eof(now));
                self.observe();
            } else {
                return;
            }
        }
    }

    fn half_close(&mut self) {
        self.peer_done = true;
        self.pump();
    }

    fn shutdown(&mut self) {
        if !self.is_closed() {
            self.call(|c, now| c.handle_shutdown(now));
            self.observe();
            self.pump();
        }
    }

    /// `handle_timeout` before any deadline: documented as harmless.
    fn early_timeout(&mut self) {
        if !self.is_closed() {
            self.call(|c, now| c.handle_timeout(now));
            self.observe();
            self.pump();
        }
    }

    /// Time passes by `by`; every deadline reached on the way fires at its
    /// own instant, as a glue waiting on a timer would fire it.
    fn advance(&mut self, by: Duration) {
        if self.clock == Clock::Frozen {
            return;
        }
        let target = self.now + by;
        for _ in 0..MAX_SETTLE_STEPS {
            if self.is_closed() {
                break;
            }
            match self.call(|c, _| c.poll_timeout()) {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.call(|c, now| c.handle_timeout(now));
                    self.observe();
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = self.now.max(target);
    }

    /// Time jumps to the next deadline, if there is one, and it fires.
    fn until_deadline(&mut self) {
        if self.clock == Clock::Frozen || self.is_closed() {
            return;
        }
        if let Some(deadline) = self.call(|c, _| c.poll_timeout()) {
            self.now = self.now.max(deadline);
            self.call(|c, now| c.handle_timeout(now));
            self.observe();
            self.pump();
        }
    }

    /// The peer stops sending and reads everything; time runs from deadline
    /// to deadline until the connection closes. Every connection must end:
    /// one that neither closes nor asks to be woken would live forever.
    fn settle(&mut self, half_close: bool) {
        if half_close {
            self.peer_done = true;
        }
        self.eager_writes = true;
        self.pump();
        let mut checked_error_close = false;
        for _ in 0..MAX_SETTLE_STEPS {
            self.pump();
            if self.is_closed() {
                return;
            }
            if !checked_error_close {
                checked_error_close = true;
                // Everything sent so far has been read by the peer; if the
                // last response said it closes, it must already be closing.
                if let Some(last) = ResponseStream::parse_lenient(&self.out).responses.last() {
                    assert!(
                        !last.close,
                        "connection stays open after a {} with Connection: close",
                        last.status
                    );
                }
            }
            match self.call(|c, _| c.poll_timeout()) {
                Some(deadline) => {
                    self.now = self.now.max(deadline);
                    self.call(|c, now| c.handle_timeout(now));
                    self.observe();
                }
                None => panic!(
                    "connection neither closes nor has a deadline after the peer went quiet \
                     (wants_read: {}, inbox: {} bytes, eof delivered: {})",
                    self.call(|c, _| c.wants_read()),
                    self.unread(),
                    self.eof_delivered
                ),
            }
        }
        panic!("connection still open after {MAX_SETTLE_STEPS} deadlines");
    }

    fn finish(self) -> Outcome {
        Outcome {
            out: self.out,
            events: self.events,
            closed: self.closed,
            counters: [
                &self.stats.requests,
                &self.stats.protocol_errors,
                &self.stats.timeouts,
            ]
            .map(|c| c.load(Relaxed)),
        }
    }
}

/// The instant every run starts at. `Instant` has no public constructor, so
/// the harness reads the clock once per process; from then on every instant
/// is this one plus fabricated durations, and only differences matter.
fn fixed_origin() -> Instant {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// What the peer saw of one connection.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    out: Vec<u8>,
    events: Vec<Event>,
    closed: Option<Close>,
    /// Requests, protocol errors and timeouts counted. (Statuses are in the
    /// output already; a full snapshot costs more than the rest of a run.)
    counters: [u64; 3],
}

// ---------------------------------------------------------------------------
// Reading responses back
// ---------------------------------------------------------------------------

/// One response parsed from the output stream. A body with a length is
/// borrowed from the stream, not copied: `/bytes/N` answers run to 16 MiB.
#[derive(Debug)]
struct Response<'a> {
    status: u16,
    close: bool,
    content_length: Option<u64>,
    allow: bool,
    body: Cow<'a, [u8]>,
}

/// The responses in an output stream, and whether it ended mid-response.
#[derive(Debug, Default)]
struct ResponseStream<'a> {
    responses: Vec<Response<'a>>,
    /// Bytes at the end that do not form a complete response.
    truncated: bool,
}

/// Whether a response was to a HEAD request (and so has no body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadKnowledge {
    Yes,
    No,
    /// The harness does not know the request; guess from what follows.
    Maybe,
}

impl<'a> ResponseStream<'a> {
    /// Parses `out` strictly: every response must be HTTP/1.1 with exactly
    /// one valid length, and nothing may follow the last one unless
    /// `truncation_allowed`. `head(i)` says whether response `i` answers HEAD.
    fn parse(
        out: &'a [u8],
        head: impl Fn(usize) -> HeadKnowledge,
        truncation_allowed: bool,
    ) -> ResponseStream<'a> {
        match Self::try_parse(out, head) {
            Ok(stream) => stream,
            Err((stream, why)) => {
                assert!(
                    truncation_allowed,
                    "response #{} does not parse back: {why}\noutput: {:?}",
                    stream.responses.len(),
                    show(out)
                );
                ResponseStream {
                    truncated: true,
                    ..stream
                }
            }
        }
    }

    /// Parses as much as parses, for checks made before the run has ended.
    fn parse_lenient(out: &'a [u8]) -> ResponseStream<'a> {
        Self::try_parse(out, |_| HeadKnowledge::Maybe).unwrap_or_else(|(s, _)| s)
    }

    fn try_parse(
        out: &'a [u8],
        head: impl Fn(usize) -> HeadKnowledge,
    ) -> Result<ResponseStream<'a>, (ResponseStream<'a>, String)> {
        let mut stream = ResponseStream::default();
        let mut pos = 0;
        while pos < out.len() {
            match parse_one(&out[pos..], head(stream.responses.len())) {
                Ok((response, used)) => {
                    pos += used;
                    // Interim responses do not answer a request.
                    if response.status >= 200 {
                        stream.responses.push(response);
                    }
                }
                Err(why) => return Err((stream, why)),
            }
        }
        Ok(stream)
    }
}

fn parse_one(bytes: &[u8], head: HeadKnowledge) -> Result<(Response<'_>, usize), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete head".into()),
        Err(e) => return Err(format!("invalid head: {e}")),
    };
    if parsed.version != Some(1) {
        return Err(format!("version HTTP/1.{:?}, not 1.1", parsed.version));
    }
    let status = parsed.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    let mut allow = false;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err("two Content-Length headers".into());
            }
            let text = std::str::from_utf8(h.value).map_err(|_| "Content-Length not text")?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("Content-Length {text:?}"));
            }
            content_length = Some(text.parse::<u64>().map_err(|e| e.to_string())?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !h.value.eq_ignore_ascii_case(b"chunked") {
                return Err("Transfer-Encoding other than chunked".into());
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("allow") {
            allow = true;
        }
    }
    if chunked && content_length.is_some() {
        return Err("both Content-Length and chunked".into());
    }
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let rest = &bytes[head_len..];
    let (body, body_len) = if bodiless {
        (Cow::Borrowed(&[][..]), 0)
    } else if chunked {
        match reference_chunked(rest, usize::MAX) {
            Chunked::Complete { body, consumed } => (Cow::Owned(body), consumed),
            Chunked::Incomplete => return Err("chunked body cut short".into()),
            Chunked::Invalid | Chunked::Ambiguous | Chunked::TooLarge => {
                return Err("invalid chunked body".into());
            }
        }
    } else {
        let Some(n) = content_length else {
            return Err(format!("status {status} without a length"));
        };
        let n = usize::try_from(n).map_err(|_| "huge Content-Length")?;
        let is_head = match head {
            HeadKnowledge::Yes => true,
            HeadKnowledge::No => false,
            // A bodiless reading is only plausible if the next response starts
            // right away and the full-length reading does not line up.
            HeadKnowledge::Maybe => {
                n > 0
                    && (rest.is_empty() || rest.starts_with(b"HTTP/"))
                    && !(rest.len() == n || rest.get(n..).is_some_and(|r| r.starts_with(b"HTTP/")))
            }
        };
        if is_head {
            (Cow::Borrowed(&[][..]), 0)
        } else if rest.len() < n {
            return Err(format!(
                "body cut short: Content-Length {n}, {} bytes",
                rest.len()
            ));
        } else {
            (Cow::Borrowed(&rest[..n]), n)
        }
    };
    Ok((
        Response {
            status,
            close,
            content_length,
            allow,
            body,
        },
        head_len + body_len,
    ))
}

/// The checks every run ends with, whatever drove it: the output parses
/// back, and a refusal or `Connection: close` is the last thing sent.
fn check_common(outcome: &Outcome, head: impl Fn(usize) -> HeadKnowledge) -> ResponseStream<'_> {
    assert!(
        outcome.closed.is_some(),
        "settle returns only once the connection closes"
    );
    // An aborted connection discards what it had not written; a graceful one
    // has written everything.
    let stream = ResponseStream::parse(&outcome.out, head, outcome.closed == Some(Close::Abort));
    for (i, r) in stream.responses.iter().enumerate() {
        let last = i + 1 == stream.responses.len();
        if REFUSAL_STATUSES.contains(&r.status) {
            assert!(
                r.close,
                "response #{i} ({}) without Connection: close",
                r.status
            );
        }
        if r.close {
            assert!(
                last,
                "response #{i} ({}, close: {}) is followed by {} more",
                r.status,
                r.close,
                stream.responses.len() - i - 1
            );
            assert!(
                !stream.truncated,
                "bytes follow response #{i} ({}, close: {})",
                r.status, r.close
            );
        }
    }
    stream
}

// ---------------------------------------------------------------------------
// A reference chunked decoder, for responses and as the model's oracle
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Chunked {
    Complete {
        body: Vec<u8>,
        consumed: usize,
    },
    Incomplete,
    /// The declared sizes add up past the limit.
    TooLarge,
    /// Certainly malformed: a server must refuse it.
    Invalid,
    /// Something servers legitimately differ on (extensions, trailers, bare
    /// LF, whitespace, 16-digit sizes); the model makes no prediction.
    Ambiguous,
}

/// Decodes a chunked body strictly (RFC 9112 §7.1), independently of the
/// crate's decoder, flagging anything servers may legitimately treat
/// differently as ambiguous. Sizes are checked against `limit` as each
/// size line is read, before its data.
fn reference_chunked(data: &[u8], limit: usize) -> Chunked {
    let safe_ext = |b: &u8| b.is_ascii_alphanumeric() || b"=-_.".contains(b);
    let mut pos = 0;
    let mut body = Vec::new();
    let mut total: u64 = 0;
    loop {
        let rest = &data[pos..];
        let Some(line_end) = find_crlf(rest) else {
            // An unfinished size line is certainly incomplete only while it
            // is a plain number.
            let digits = rest.strip_suffix(b"\r").unwrap_or(rest);
            return match rest.first() {
                None => Chunked::Incomplete,
                Some(b) if !b.is_ascii_hexdigit() => Chunked::Invalid,
                Some(_) if digits.len() <= 15 && digits.iter().all(u8::is_ascii_hexdigit) => {
                    Chunked::Incomplete
                }
                Some(_) => Chunked::Ambiguous,
            };
        };
        let line = &rest[..line_end];
        if line.contains(&b'\n') || line.contains(&b'\r') {
            return Chunked::Ambiguous;
        }
        let (size_text, ext) = match line.iter().position(|&b| b == b';') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if size_text.is_empty() || !size_text[0].is_ascii_hexdigit() {
            return Chunked::Invalid;
        }
        if !size_text.iter().all(u8::is_ascii_hexdigit) {
            let spaced = size_text.iter().any(|b| *b == b' ' || *b == b'\t');
            return if spaced {
                Chunked::Ambiguous
            } else {
                Chunked::Invalid
            };
        }
        match size_text.len() {
            ..=15 => {}
            16 => return Chunked::Ambiguous,
            _ => return Chunked::Invalid,
        }
        if let Some(ext) = ext
            && (ext.is_empty() || !ext.iter().all(safe_ext))
        {
            return Chunked::Ambiguous;
        }
        let size = size_text.iter().fold(0u64, |n, &b| {
            n * 16 + u64::from((b as char).to_digit(16).unwrap_or(0))
        });
        total += size;
        if total > limit as u64 {
            return Chunked::TooLarge;
        }
        pos += line_end + 2;
        if size == 0 {
            // Trailer section: only a bare empty line is unambiguous.
            return match &data[pos..] {
                [b'\r', b'\n', ..] => Chunked::Complete {
                    body,
                    consumed: pos + 2,
                },
                [] | [b'\r'] => Chunked::Incomplete,
                _ => Chunked::Ambiguous,
            };
        }
        // `size <= total <= limit`, a `usize`.
        let end = pos + size as usize;
        if data.len() < end {
            return Chunked::Incomplete;
        }
        body.extend_from_slice(&data[pos..end]);
        pos = end;
        match &data[pos..] {
            [b'\r', b'\n', ..] => pos += 2,
            [] | [b'\r'] => return Chunked::Incomplete,
            _ => return Chunked::Invalid,
        }
    }
}

/// Bytes for a failure message (`{:?}`): text, cut to a readable length.
fn show(bytes: &[u8]) -> Shown {
    const MAX: usize = 600;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    Shown(if bytes.len() > MAX {
        format!("{text:?}... ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    })
}

struct Shown(String);

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

// ---------------------------------------------------------------------------
// http_connection: raw bytes, input-chosen splits and deadlines
// ---------------------------------------------------------------------------

/// Raw bytes into one connection. Layout: byte 0 chooses the limits and
/// whether the peer half-closes at the end; byte 1 is the number `n` of
/// script bytes that follow; the rest is the byte stream the peer sends.
/// Each script byte is one step: send the next 1-64 or 64-4096 bytes, let
/// time pass (a little, seconds, or to the next deadline), call
/// `handle_timeout` early, read some or all output, shut down, or half-close.
/// Bytes the script does not send are sent at the end.
///
/// The script runs once with time moving. Then the stream runs twice with
/// time frozen, once split as the script says and once in reads as large as
/// the glue makes: both must give identical output, events, close and
/// counters.
pub fn http_connection(data: &[u8]) {
    let (config, script, stream) = match data {
        [config, n, rest @ ..] => {
            let n = usize::from(*n).min(rest.len());
            (*config, &rest[..n], &rest[n..])
        }
        _ => return,
    };
    let limits = limits_for(config);
    let half_close = config & 4 != 0;
    let maybe_head = if contains(stream, b"HEAD") {
        HeadKnowledge::Maybe
    } else {
        HeadKnowledge::No
    };

    // Runs that would repeat one already made are skipped: without steps
    // that move time, shut down or half-close, the scripted run is the
    // frozen split run; without any script, the split run is the whole one.
    let moves_time = script.iter().any(|&step| {
        let arg = (step >> 2) & 3;
        (step & 3 == 2 && arg != 0) || (step & 3 == 3 && arg >= 2)
    });
    let scripted = run_script(limits, Clock::Scripted, script, stream, half_close);
    check_common(&scripted, |_| maybe_head);
    if script.is_empty() {
        return;
    }
    let split = if moves_time {
        run_script(limits, Clock::Frozen, script, stream, half_close)
    } else {
        scripted
    };
    let whole = run_script(limits, Clock::Frozen, &[], stream, half_close);
    check_common(&whole, |_| maybe_head);
    assert!(
        split == whole,
        "the same bytes split differently gave different results\n\
         split: {:?}\nwhole: {:?}\nsplit output: {:?}\nwhole output: {:?}",
        (split.closed, &split.events, split.counters),
        (whole.closed, &whole.events, whole.counters),
        show(&split.out),
        show(&whole.out),
    );
}

fn run_script(
    limits: Limits,
    clock: Clock,
    script: &[u8],
    stream: &[u8],
    half_close: bool,
) -> Outcome {
    let mut d = Driver::new(limits, clock, READ_CHUNK);
    let mut rest = stream;
    for &step in script {
        if d.is_closed() {
            break;
        }
        let arg = usize::from(step >> 2);
        match step & 3 {
            0 | 1 => {
                let len = if step & 3 == 0 {
                    arg + 1
                } else {
                    (arg + 1) * 64
                };
                let (now, later) = rest.split_at(len.min(rest.len()));
                d.send(now);
                rest = later;
            }
            2 => match arg & 3 {
                0 => d.early_timeout(),
                1 => d.advance(Duration::from_millis(100 * (arg as u64 >> 2))),
                2 => d.until_deadline(),
                _ => d.advance(Duration::from_secs(arg as u64 >> 2)),
            },
            _ => match arg & 3 {
                0 => d.peer_reads(usize::MAX),
                1 => d.peer_reads((arg >> 2) * 16 + 1),
                // Shutdown and a mid-stream half-close change what the peer
                // may expect, so they only happen with time moving; the
                // frozen runs compare splits alone.
                2 if clock == Clock::Scripted => d.shutdown(),
                3 if clock == Clock::Scripted => {
                    rest = &[];
                    d.half_close();
                }
                _ => {}
            },
        }
    }
    d.send(rest);
    d.settle(half_close);
    d.finish()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// chunked_body: a chunked request body through the connection
// ---------------------------------------------------------------------------

/// A chunked body, after a first byte that chooses the limits and the
/// split: first through the crate's decoder on its own, then through a
/// connection as the body of `POST /echo`.
///
/// The decoder never consumes more than it is given, keeps the caller's
/// unconsumed bytes bounded, never produces more than the limit, and gives
/// the same result whole and split. Where the independent reference decoder
/// is certain, both the decoder and the connection must agree with it: a
/// valid body within the limit is decoded (and echoed) exactly, one over the
/// limit is refused with 413, a malformed one with 400 and nothing after, and
/// an incomplete one never gets a 200.
pub fn chunked_body(data: &[u8]) {
    let Some((&config, body)) = data.split_first() else {
        return;
    };
    let limits = limits_for(config);
    let limit = limits.max_body_bytes;
    let reference = reference_chunked(body, limit);

    let whole = decode_in_pieces(body, body.len().max(1), limit);
    let piece = usize::from(config >> 2) + 1;
    let split = decode_in_pieces(body, piece, limit);
    assert_eq!(
        whole, split,
        "decoder: whole and in {piece}-byte pieces differ"
    );
    match (&reference, &whole) {
        (Chunked::Complete { body, consumed }, Ok((got, used, true))) => {
            assert!(got == body, "decoder: body {got:?}, reference {body:?}");
            assert_eq!(used, consumed, "decoder: consumed");
        }
        (Chunked::Incomplete, Ok((_, _, false)))
        | (Chunked::TooLarge, Err(ProtocolError::BodyTooLarge))
        | (Chunked::Invalid, Err(ProtocolError::BadChunk))
        | (Chunked::Ambiguous, _) => {}
        (reference, got) => panic!("decoder: {got:?}, reference: {reference:?}"),
    }

    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(body);
    let run = |piece: usize| {
        let mut d = Driver::new(limits, Clock::Frozen, READ_CHUNK);
        for part in request.chunks(piece) {
            d.send(part);
        }
        d.settle(true);
        d.finish()
    };
    let whole = run(READ_CHUNK);
    let stream = check_common(&whole, |_| HeadKnowledge::No);
    let first = stream.responses.first();
    let status = first.map(|r| r.status);
    match reference {
        Chunked::Complete { body: decoded, .. } => {
            let first = first.expect("a valid chunked request got no response");
            assert_eq!(first.status, 200, "valid chunked body refused");
            assert!(
                *first.body == decoded[..],
                "echo differs from the decoded body: sent {:?}, echoed {:?}",
                show(&decoded),
                show(&first.body)
            );
        }
        Chunked::TooLarge => assert_eq!(status, Some(413), "chunked body over the limit"),
        Chunked::Invalid => {
            assert_eq!(status, Some(400), "malformed chunked body");
            assert_eq!(stream.responses.len(), 1, "responses after a 400");
        }
        Chunked::Incomplete => {
            assert_ne!(status, Some(200), "incomplete chunked body answered 200")
        }
        Chunked::Ambiguous => {}
    }
    let split = run(piece);
    assert!(
        split == whole,
        "chunked request split into {piece}-byte reads gave different output\nsplit: {:?}\nwhole: {:?}",
        show(&split.out),
        show(&whole.out),
    );
}

/// Decodes `data` presented `piece` bytes at a time, keeping what the decoder
/// leaves unconsumed as a caller must: the body, the bytes consumed and
/// whether it ended, or the error.
fn decode_in_pieces(
    data: &[u8],
    piece: usize,
    limit: usize,
) -> Result<(Vec<u8>, usize, bool), ProtocolError> {
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut consumed = 0;
    for part in data.chunks(piece) {
        pending.extend_from_slice(part);
        let progress = decoder.decode(&pending, &mut body, limit)?;
        assert!(
            progress.consumed <= pending.len(),
            "decoder consumed {} of {} bytes",
            progress.consumed,
            pending.len()
        );
        assert!(
            body.len() <= limit,
            "decoded {} bytes past the limit {limit}",
            body.len()
        );
        // `decoded()` counts declared chunk sizes as each size line is
        // accepted, so it runs ahead of the body within a chunk.
        assert!(
            decoder.decoded() >= body.len() as u64 && decoder.decoded() <= limit as u64,
            "decoded() is {} with {} body bytes and limit {limit}",
            decoder.decoded(),
            body.len()
        );
        consumed += progress.consumed;
        pending.drain(..progress.consumed);
        if progress.done {
            return Ok((body, consumed, true));
        }
        // What a caller must keep is one unfinished line at most.
        assert!(
            pending.len() <= MAX_TRAILER_BYTES.max(MAX_CHUNK_LINE) + piece,
            "decoder left {} bytes unconsumed",
            pending.len()
        );
    }
    Ok((body, consumed, false))
}

// ---------------------------------------------------------------------------
// http_sequence: structure-aware requests and a model of their responses
// ---------------------------------------------------------------------------

/// Bytes taken from the input in one contiguous run (a length, then the
/// bytes), unlike `Vec<u8>`, whose `Arbitrary` puts a "one more?" byte before
/// every element. Contiguous bytes let libFuzzer's dictionary and
/// comparison-guided mutations write whole tokens (`chunked`, a header
/// value) into a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Octets(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Octets {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Octets(<&[u8]>::arbitrary(u)?.to_vec()))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Octets(<&[u8]>::arbitrary_take_rest(u)?.to_vec()))
    }

    fn size_hint(depth: usize) -> (usize, Option<usize>) {
        <&[u8]>::size_hint(depth)
    }
}

impl std::ops::Deref for Octets {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// A connection's life built from parts: requests, pauses, reads of the
/// output, shutdown and half-close.
#[derive(Debug, Arbitrary)]
pub struct Sequence {
    pub limits: u8,
    pub steps: Vec<Step>,
    /// Whether the peer half-closes once every step has run.
    pub half_close: bool,
}

#[derive(Debug, Arbitrary)]
pub enum Step {
    Request(Box<Request>),
    /// A short pause, in milliseconds; deadlines that fall due fire.
    Pause(u8),
    /// Time jumps to the next deadline, which fires.
    UntilDeadline,
    /// Time moves on by whole seconds.
    Wait(u8),
    /// The peer reads everything written so far.
    ReadAll,
    /// The peer reads this many bytes.
    ReadSome(u16),
    Shutdown,
    HalfClose,
}

#[derive(Debug, Arbitrary)]
pub struct Request {
    pub method: Method,
    pub target: Target,
    pub version: Version,
    pub headers: Vec<Header>,
    pub connection: ConnectionHeader,
    pub body: Body,
    pub corruption: Option<Corruption>,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    /// A well-formed method no server here supports.
    Brew,
    /// `get`: methods are case-sensitive.
    Lowercase,
}

#[derive(Debug, Arbitrary)]
pub enum Target {
    Root,
    Health,
    Stats,
    /// `/bytes/{n}` with `n` = [`bytes_len`] of this: mostly small, up to 64 KiB.
    Bytes(u16),
    Delay(u16),
    Echo,
    PauseAccept(u16),
    /// A path that does not exist.
    Missing(u8),
    /// `/?` with a query.
    Query(u8),
    /// Absolute form: `http://fuzz/`.
    Absolute,
    Asterisk,
    /// Anything at all, made printable unless a corruption says otherwise.
    Raw(Octets),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Version {
    Http11,
    Http10,
}

#[derive(Debug, Arbitrary)]
pub struct Header {
    pub name: HeaderName,
    pub value: Octets,
}

#[derive(Debug, Arbitrary)]
pub enum HeaderName {
    Accept,
    UserAgent,
    RequestId,
    Cookie,
    /// Any token; names the model must control (framing, connection) are
    /// renamed so that they cannot change framing by accident.
    Custom(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum ConnectionHeader {
    Absent,
    Close,
    KeepAlive,
}

#[derive(Debug, Arbitrary)]
pub enum Body {
    None,
    Length(Octets),
    Chunked {
        chunks: Vec<Octets>,
        uppercase_hex: bool,
        leading_zeros: bool,
        extension: bool,
    },
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Corruption {
    /// A head far over `max_head_bytes`.
    OversizedHead(u16),
    /// More header fields than `max_headers`.
    TooManyHeaders(u8),
    /// A Content-Length one past `max_body_bytes`.
    BodyTooLarge,
    /// A Content-Length that differs from the body sent.
    LengthLie(i8),
    /// Both Content-Length and chunked: the smuggling classic.
    ContentLengthAndChunked,
    /// Two different Content-Length values.
    DuplicateContentLength(u8),
    /// A transfer coding the server does not know.
    UnknownCoding(u8),
    /// A chunk-size line that is not a chunk size.
    BadChunkSize(u8),
    /// A chunk's data not followed by CRLF.
    MissingChunkCrlf,
    /// A NUL byte in a header value.
    Nul(u16),
    /// Bytes that are not UTF-8 in a header value.
    InvalidUtf8(u16),
    /// Lines ended by CR alone.
    BareCr,
    /// Lines ended by LF alone.
    BareLf,
    /// `Name : value`.
    SpaceBeforeColon,
    /// A header continued on the next line (obsolete folding).
    ObsFold,
    /// `HTTP/1.2`, `HTTP/2.0`, ...
    BadVersion(u8),
    /// A control byte in the method.
    BadMethod(u8),
}

#[derive(Debug, Arbitrary)]
pub enum Delivery {
    Whole,
    /// Sent in the same read as the next request: pipelining.
    WithNext,
    /// Sent in pieces of these sizes (0 counts as 1), the rest in one piece.
    Split(Octets),
    /// The first [`BYTE_AT_A_TIME_MAX`] bytes one at a time, then the rest.
    ByteAtATime,
}

/// How many bytes [`Delivery::ByteAtATime`] sends singly.
const BYTE_AT_A_TIME_MAX: usize = 256;

/// The `/bytes/{n}` size for a fuzzed `u16`: quadratic, so that most
/// responses are small (and runs fast) while 64 KiB ones still occur.
fn bytes_len(v: u16) -> u64 {
    (u64::from(v) * u64::from(v)) >> 16
}

/// What the model expects one request to get.
#[derive(Debug)]
struct Expect {
    statuses: &'static [u16],
    head: HeadKnowledge,
    /// The exact body, where the model knows it.
    body: Option<Vec<u8>>,
    /// The Content-Length a HEAD response must announce, where known.
    length: Option<u64>,
    allow: bool,
    /// Must say `Connection: close` (a refusal, or the request asked to close).
    close: bool,
}

/// What may follow the last prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Still predicting: responses must match the predictions exactly.
    Predicting,
    /// The connection must close after the last prediction.
    Closed,
    /// The model cannot say; later responses need only parse.
    Unknown,
}

/// Decodes `data` the way `libfuzzer-sys` hands a typed target its input, and
/// runs [`http_sequence`], so replayed corpus files mean what they meant to
/// the fuzzer.
pub fn http_sequence_bytes(data: &[u8]) {
    if let Ok(sequence) = Sequence::arbitrary_take_rest(Unstructured::new(data)) {
        http_sequence(&sequence);
    }
}

/// Runs a [`Sequence`] against one connection and checks the responses
/// against the model's predictions, then the common properties.
pub fn http_sequence(input: &Sequence) {
    let _show = ShowOnPanic(input);
    let limits = limits_for(input.limits);
    let mut d = Driver::new(limits, Clock::Scripted, READ_CHUNK);
    let mut expected: Vec<Expect> = Vec::new();
    let mut expected_events: Vec<Event> = Vec::new();
    let mut tail = Tail::Predicting;
    let mut pipelined: Vec<u8> = Vec::new();
    // Time passed in pauses. Once it nears the shortest deadline (the header
    // timeout; the write deadline also runs while the peer does not read),
    // deadlines may change the outcome and the model stops predicting.
    let mut elapsed = Duration::ZERO;
    let mut any_head = false;
    // Whether time has jumped far enough for a write deadline to abort the
    // connection, discarding responses the peer had not read yet.
    let mut time_jumped = false;
    // After a shutdown the request in flight is finished and pipelined ones
    // behind it may go unanswered.
    let mut shut_down = false;

    for step in &input.steps {
        if !matches!(step, Step::Request(_)) && !pipelined.is_empty() {
            d.send(&std::mem::take(&mut pipelined));
        }
        match step {
            Step::Request(request) => {
                let built = build(request, &limits);
                any_head |= request.method == Method::Head;
                if tail == Tail::Predicting && !d.peer_done {
                    match built.prediction {
                        Prediction::Respond { mut expect, then } => {
                            expect.close = then == Tail::Closed;
                            if let Some(e) = built.event {
                                expected_events.push(e);
                            }
                            expected.push(expect);
                            tail = then;
                        }
                        Prediction::Refuse(statuses) => {
                            expected.push(Expect {
                                statuses,
                                // A refused head may be too broken to
                                // tell HEAD from GET.
                                head: if request.method == Method::Head {
                                    HeadKnowledge::Maybe
                                } else {
                                    HeadKnowledge::No
                                },
                                body: None,
                                length: None,
                                allow: false,
                                close: true,
                            });
                            tail = Tail::Closed;
                        }
                        Prediction::Unknown => tail = Tail::Unknown,
                    }
                }
                pipelined.extend_from_slice(&built.bytes);
                match &request.delivery {
                    Delivery::WithNext => {}
                    Delivery::Whole => d.send(&std::mem::take(&mut pipelined)),
                    Delivery::ByteAtATime => {
                        // The first bytes one at a time, then the rest at
                        // once: a long head a byte at a time costs the
                        // fuzzer more than it teaches it.
                        let all = std::mem::take(&mut pipelined);
                        let (slow, rest) = all.split_at(all.len().min(BYTE_AT_A_TIME_MAX));
                        for b in slow {
                            d.send(std::slice::from_ref(b));
                        }
                        d.send(rest);
                    }
                    Delivery::Split(sizes) => {
                        let all = std::mem::take(&mut pipelined);
                        let mut rest = &all[..];
                        for &size in sizes.iter() {
                            let (now, later) =
                                rest.split_at(usize::from(size.max(1)).min(rest.len()));
                            d.send(now);
                            rest = later;
                        }
                        d.send(rest);
                    }
                }
            }
            Step::Pause(ms) => {
                let by = Duration::from_millis(u64::from(*ms));
                elapsed += by;
                d.advance(by);
            }
            Step::UntilDeadline | Step::Wait(_) | Step::Shutdown => {
                time_jumped = true;
                if tail == Tail::Predicting {
                    tail = Tail::Unknown;
                }
                match step {
                    Step::UntilDeadline => d.until_deadline(),
                    Step::Wait(s) => d.advance(Duration::from_secs(u64::from(*s))),
                    _ => {
                        shut_down = true;
                        d.shutdown();
                    }
                }
            }
            Step::ReadAll => d.peer_reads(usize::MAX),
            Step::ReadSome(n) => d.peer_reads(usize::from(*n)),
            Step::HalfClose => d.half_close(),
        }
        if elapsed >= Duration::from_secs(5) {
            time_jumped = true;
            if tail == Tail::Predicting {
                tail = Tail::Unknown;
            }
        }
    }
    d.send(&pipelined);
    d.settle(input.half_close);
    let outcome = d.finish();

    let head = |i: usize| match expected.get(i) {
        Some(e) => e.head,
        None if any_head => HeadKnowledge::Maybe,
        None => HeadKnowledge::No,
    };
    let stream = check_common(&outcome, head);
    let got = &stream.responses;
    let cut_short = shut_down || time_jumped && outcome.closed == Some(Close::Abort);
    for (i, e) in expected.iter().enumerate() {
        let Some(r) = got.get(i) else {
            if cut_short {
                break;
            }
            panic!(
                "request #{i} got no response ({} responses for {} predicted)\noutput: {:?}",
                got.len(),
                expected.len(),
                show(&outcome.out)
            );
        };
        assert!(
            e.statuses.contains(&r.status),
            "response #{i}: status {}, expected one of {:?}",
            r.status,
            e.statuses
        );
        if let Some(body) = &e.body {
            assert!(
                *r.body == body[..],
                "response #{i}: body {:?}, expected {:?}",
                show(&r.body),
                show(body)
            );
        }
        if let Some(length) = e.length {
            assert_eq!(r.content_length, Some(length), "response #{i}: length");
        }
        if e.allow {
            assert!(r.allow, "response #{i}: 405 without Allow");
        }
        if e.close {
            assert!(
                r.close,
                "response #{i} ({}): no Connection: close",
                r.status
            );
        }
    }
    match tail {
        Tail::Predicting | Tail::Closed => {
            assert!(
                got.len() == expected.len() || cut_short && got.len() < expected.len(),
                "{} responses for {} predicted\noutput: {:?}",
                got.len(),
                expected.len(),
                show(&outcome.out)
            );
            // Requests dropped at a shutdown never make their event.
            let kept = if cut_short { 0 } else { expected_events.len() };
            assert!(
                (kept..=expected_events.len())
                    .any(|k| collapses_to(&expected_events[..k], &outcome.events)),
                "events {:?} for the pauses requested {:?}",
                outcome.events,
                expected_events
            );
        }
        // Later, unpredicted pauses may collapse with predicted ones.
        Tail::Unknown => {}
    }
}

/// Whether `got` is `requested` with runs of pauses requested before the glue
/// polled collapsed into their longest, as the connection documents: each
/// event in `got` is the maximum of a consecutive group of `requested`, the
/// groups covering it in order.
fn collapses_to(requested: &[Event], got: &[Event]) -> bool {
    let pause = |e: &Event| match e {
        Event::PauseAccept(d) => *d,
    };
    // reachable[i][j]: the first i requested make exactly the first j got.
    let mut reachable = vec![vec![false; got.len() + 1]; requested.len() + 1];
    reachable[0][0] = true;
    for i in 0..requested.len() {
        for j in 0..got.len() {
            if !reachable[i][j] {
                continue;
            }
            let mut longest = Duration::ZERO;
            for k in i..requested.len() {
                longest = longest.max(pause(&requested[k]));
                if longest == pause(&got[j]) {
                    reachable[k + 1][j + 1] = true;
                }
            }
        }
    }
    reachable[requested.len()][got.len()]
}

/// Prints the decoded sequence when a check fails, since the raw bytes
/// libFuzzer saves say little about what was sent.
struct ShowOnPanic<'a>(&'a Sequence);

impl Drop for ShowOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("http_sequence input: {:#?}", self.0);
        }
    }
}

/// A request serialised, with the model's prediction for it.
struct Built {
    bytes: Vec<u8>,
    prediction: Prediction,
    event: Option<Event>,
}

enum Prediction {
    /// A response, then the connection goes on as `then` says.
    Respond {
        expect: Expect,
        then: Tail,
    },
    /// Refused with one of these statuses, then closed.
    Refuse(&'static [u16]),
    Unknown,
}

/// Header names the model must control itself, and so never lets a
/// `Custom` name take.
const RESERVED: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "expect",
    "upgrade",
    "te",
    "trailer",
];

fn token(text: &str, fallback: &str) -> String {
    let t: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))
        .take(40)
        .collect();
    if t.is_empty() || RESERVED.iter().any(|r| t.eq_ignore_ascii_case(r)) {
        format!("X-{fallback}{t}")
    } else {
        t
    }
}

/// The value up to its first byte that is not visible ASCII or a space,
/// trimmed: a value no server can misread. Ending at the first such byte
/// (rather than dropping them all) lets a token the fuzzer writes into the
/// field, from the dictionary or a comparison, become the whole value.
fn clean_value(value: &[u8]) -> Vec<u8> {
    let end = value
        .iter()
        .position(|b| !((0x21..0x7f).contains(b) || *b == b' '))
        .unwrap_or(value.len())
        .min(200);
    value[..end].trim_ascii().to_vec()
}

fn build(request: &Request, limits: &Limits) -> Built {
    let corruption = request.corruption;
    // Body corruptions need a request that carries a body.
    let body_corruption = matches!(
        corruption,
        Some(
            Corruption::BodyTooLarge
                | Corruption::LengthLie(_)
                | Corruption::ContentLengthAndChunked
                | Corruption::DuplicateContentLength(_)
                | Corruption::UnknownCoding(_)
                | Corruption::BadChunkSize(_)
                | Corruption::MissingChunkCrlf
        )
    );
    let (method, target) = if body_corruption {
        (Method::Post, &Target::Echo)
    } else {
        (request.method, &request.target)
    };

    let method_text: Vec<u8> = match (corruption, method) {
        (Some(Corruption::BadMethod(b)), _) => vec![b'G', b % 0x20, b'T'],
        (_, Method::Get) => b"GET".to_vec(),
        (_, Method::Head) => b"HEAD".to_vec(),
        (_, Method::Post) => b"POST".to_vec(),
        (_, Method::Put) => b"PUT".to_vec(),
        (_, Method::Delete) => b"DELETE".to_vec(),
        (_, Method::Options) => b"OPTIONS".to_vec(),
        (_, Method::Brew) => b"BREW".to_vec(),
        (_, Method::Lowercase) => b"get".to_vec(),
    };
    let target_text: Vec<u8> = match target {
        Target::Root => b"/".to_vec(),
        Target::Health => b"/health".to_vec(),
        Target::Stats => b"/stats".to_vec(),
        Target::Bytes(n) => format!("/bytes/{}", bytes_len(*n)).into_bytes(),
        Target::Delay(ms) => format!("/delay/{ms}").into_bytes(),
        Target::Echo => b"/echo".to_vec(),
        Target::PauseAccept(ms) => format!("/admin/pause-accept?ms={ms}").into_bytes(),
        Target::Missing(n) => format!("/missing-{n}").into_bytes(),
        Target::Query(n) => format!("/?q={n}").into_bytes(),
        Target::Absolute => b"http://fuzz/".to_vec(),
        Target::Asterisk => b"*".to_vec(),
        Target::Raw(raw) => {
            let mut t: Vec<u8> = raw
                .iter()
                .copied()
                .filter(|b| (0x21..0x7f).contains(b))
                .take(100)
                .collect();
            if t.is_empty() {
                t.push(b'/');
            }
            t
        }
    };
    let version_text: &[u8] = match (corruption, request.version) {
        (Some(Corruption::BadVersion(v)), _) => match v % 4 {
            0 => b"HTTP/1.2",
            1 => b"HTTP/2.0",
            2 => b"HTTP/1",
            _ => b"HTTX/1.1",
        },
        (_, Version::Http11) => b"HTTP/1.1",
        (_, Version::Http10) => b"HTTP/1.0",
    };

    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![(b"Host".to_vec(), b"fuzz".to_vec())];
    for h in &request.headers {
        let name = match &h.name {
            HeaderName::Accept => "Accept".to_string(),
            HeaderName::UserAgent => "User-Agent".to_string(),
            HeaderName::RequestId => "X-Request-Id".to_string(),
            HeaderName::Cookie => "Cookie".to_string(),
            HeaderName::Custom(name) => token(name, "H"),
        };
        headers.push((name.into_bytes(), clean_value(&h.value)));
    }
    match request.connection {
        ConnectionHeader::Absent => {}
        ConnectionHeader::Close => headers.push((b"Connection".to_vec(), b"close".to_vec())),
        ConnectionHeader::KeepAlive => {
            headers.push((b"Connection".to_vec(), b"keep-alive".to_vec()))
        }
    }

    // The body as sent and as the server should decode it. Chunk-size
    // corruptions need chunked framing whatever the body was.
    let chunked = matches!(request.body, Body::Chunked { .. })
        || matches!(
            corruption,
            Some(Corruption::BadChunkSize(_) | Corruption::MissingChunkCrlf)
        );
    let (mut body_bytes, decoded): (Vec<u8>, Vec<u8>) = match &request.body {
        Body::None if body_corruption => (b"hello".to_vec(), b"hello".to_vec()),
        Body::None => (Vec::new(), Vec::new()),
        Body::Length(b) => (b.to_vec(), b.to_vec()),
        Body::Chunked {
            chunks,
            uppercase_hex,
            leading_zeros,
            extension,
        } => {
            let mut wire = Vec::new();
            let mut decoded = Vec::new();
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                let size = if *uppercase_hex {
                    format!("{:X}", chunk.len())
                } else {
                    format!("{:x}", chunk.len())
                };
                if *leading_zeros {
                    wire.extend_from_slice(b"00");
                }
                wire.extend_from_slice(size.as_bytes());
                if *extension {
                    wire.extend_from_slice(b";ext=1");
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                decoded.extend_from_slice(chunk);
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            (wire, decoded)
        }
    };
    if chunked && !matches!(request.body, Body::Chunked { .. }) {
        body_bytes = chunk_once(&decoded);
    }
    let has_body = chunked || !body_bytes.is_empty();
    if chunked {
        headers.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
    } else if has_body || method == Method::Post {
        headers.push((
            b"Content-Length".to_vec(),
            body_bytes.len().to_string().into_bytes(),
        ));
    }

    let mut refuse: Option<&'static [u16]> = None;
    let mut unknown = false;
    match corruption {
        None => {}
        Some(Corruption::OversizedHead(n)) => {
            let pad = limits.max_head_bytes + 64 + usize::from(n % 4096);
            headers.push((b"X-Pad".to_vec(), vec![b'p'; pad]));
            refuse = Some(&[431]);
        }
        Some(Corruption::TooManyHeaders(n)) => {
            let extra = limits.max_headers + 1 + usize::from(n % 8);
            for i in 0..extra {
                headers.push((format!("X-H{i}").into_bytes(), b"v".to_vec()));
            }
            refuse = Some(&[431]);
        }
        Some(Corruption::BodyTooLarge) => {
            set_header(
                &mut headers,
                b"Content-Length",
                (limits.max_body_bytes + 1).to_string().into_bytes(),
            );
            remove_header(&mut headers, b"Transfer-Encoding");
            body_bytes.clear();
            refuse = Some(&[413]);
        }
        Some(Corruption::LengthLie(delta)) => {
            let lie = (body_bytes.len() as i64 + i64::from(delta.max(-100))).max(0);
            set_header(
                &mut headers,
                b"Content-Length",
                lie.to_string().into_bytes(),
            );
            remove_header(&mut headers, b"Transfer-Encoding");
            unknown = true;
        }
        Some(Corruption::ContentLengthAndChunked) => {
            if !chunked {
                // Chunk the body so that either reading is plausible.
                remove_header(&mut headers, b"Content-Length");
                body_bytes = chunk_once(if decoded.is_empty() { b"x" } else { &decoded });
                headers.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
            }
            headers.push((
                b"Content-Length".to_vec(),
                body_bytes.len().to_string().into_bytes(),
            ));
            refuse = Some(&[400]);
        }
        Some(Corruption::DuplicateContentLength(n)) => {
            remove_header(&mut headers, b"Transfer-Encoding");
            if chunked {
                set_header(
                    &mut headers,
                    b"Content-Length",
                    body_bytes.len().to_string().into_bytes(),
                );
            }
            let other = body_bytes.len() + 1 + usize::from(n);
            headers.push((b"Content-Length".to_vec(), other.to_string().into_bytes()));
            refuse = Some(&[400]);
        }
        Some(Corruption::UnknownCoding(n)) => {
            let coding: &[u8] = match n % 4 {
                0 => b"gzip",
                1 => b"gzip, chunked",
                2 => b"x-custom",
                _ => b"chunked, identity",
            };
            remove_header(&mut headers, b"Content-Length");
            set_header(&mut headers, b"Transfer-Encoding", coding.to_vec());
            refuse = Some(&[400, 501]);
        }
        Some(Corruption::BadChunkSize(n)) => {
            let size: &[u8] = match n % 6 {
                0 => b"zz",
                1 => b"-1",
                2 => b"fffffffffffffffffffff",
                3 => b"",
                4 => b"0x5",
                _ => b"+5",
            };
            let mut w = size.to_vec();
            w.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            body_bytes = w;
            refuse = Some(&[400, 413]);
        }
        Some(Corruption::MissingChunkCrlf) => {
            body_bytes = b"5\r\nhelloXX0\r\n\r\n".to_vec();
            refuse = Some(&[400]);
        }
        Some(Corruption::Nul(at)) => {
            let last = headers.len() - 1;
            let v = &mut headers[last].1;
            let at = usize::from(at) % (v.len() + 1);
            v.insert(at, 0);
            // A NUL at the very edge of a value is still inside the line.
            refuse = Some(&[400]);
        }
        Some(Corruption::InvalidUtf8(at)) => {
            let last = headers.len() - 1;
            let v = &mut headers[last].1;
            let at = usize::from(at) % (v.len() + 1);
            v.splice(at..at, [0xff, 0xfe, 0xc3]);
            // obs-text is allowed in field values; servers may accept it.
            unknown = true;
        }
        Some(Corruption::SpaceBeforeColon) => {
            headers[0].0.push(b' ');
            refuse = Some(&[400]);
        }
        Some(Corruption::ObsFold) => {
            headers.push((b"X-Folded".to_vec(), b"a\r\n b".to_vec()));
            refuse = Some(&[400]);
        }
        Some(Corruption::BadVersion(_)) => refuse = Some(&[400, 505]),
        Some(Corruption::BadMethod(_)) => refuse = Some(&[400]),
        Some(Corruption::BareCr) | Some(Corruption::BareLf) => {}
    }

    let eol: &[u8] = match corruption {
        Some(Corruption::BareCr) => b"\r",
        Some(Corruption::BareLf) => b"\n",
        _ => b"\r\n",
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&method_text);
    bytes.push(b' ');
    bytes.extend_from_slice(&target_text);
    bytes.push(b' ');
    bytes.extend_from_slice(version_text);
    bytes.extend_from_slice(eol);
    for (name, value) in &headers {
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(eol);
    }
    bytes.extend_from_slice(eol);
    let head_len = bytes.len();
    bytes.extend_from_slice(&body_bytes);

    if matches!(corruption, Some(Corruption::BareCr)) {
        // Bare CR inside a request line; a strict parser refuses, but some
        // treat the whole thing as an incomplete head until a deadline.
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if matches!(corruption, Some(Corruption::BareLf)) {
        unknown = true;
    }

    // Limits first: a head or header count clearly over the limit is 431 no
    // matter what else is wrong with it. Close to the limit, servers may
    // count the final empty line or not, so the model stays silent.
    let over_head = head_len > limits.max_head_bytes + 4;
    let near_head = head_len + 4 >= limits.max_head_bytes && !over_head;
    let over_count = headers.len() > limits.max_headers;
    if over_head || over_count {
        let other_fault = refuse.is_some_and(|r| r != [431]) || unknown;
        return Built {
            bytes,
            prediction: if other_fault {
                Prediction::Refuse(&[400, 413, 431, 501, 505])
            } else {
                Prediction::Refuse(&[431])
            },
            event: None,
        };
    }
    if near_head {
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if let Some(statuses) = refuse {
        return Built {
            bytes,
            prediction: Prediction::Refuse(statuses),
            event: None,
        };
    }
    if unknown {
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if request.version == Version::Http10 && chunked {
        // Chunked framing in HTTP/1.0 is undefined.
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if decoded.len() > limits.max_body_bytes {
        // Only where the body is certainly read does the model know the
        // limit is what refuses it; elsewhere routing may answer first.
        let echo = method == Method::Post && matches!(target, Target::Echo);
        return Built {
            bytes,
            prediction: if echo {
                Prediction::Refuse(&[413])
            } else {
                Prediction::Unknown
            },
            event: None,
        };
    }

    // A well-formed request: what does it get, and does the connection go on?
    let then = match (request.version, request.connection) {
        (_, ConnectionHeader::Close) | (Version::Http10, ConnectionHeader::Absent) => Tail::Closed,
        (Version::Http10, ConnectionHeader::KeepAlive) => Tail::Unknown,
        (Version::Http11, _) => Tail::Predicting,
    };
    let is_head = method == Method::Head;
    let head = if is_head {
        HeadKnowledge::Yes
    } else {
        HeadKnowledge::No
    };
    let ok = |body: Option<Vec<u8>>, length: Option<u64>| Expect {
        statuses: &[200],
        head,
        body: if is_head { Some(Vec::new()) } else { body },
        length,
        allow: false,
        close: false,
    };
    let mut event = None;
    let (expect, then) = match (method, target, has_body) {
        (Method::Get | Method::Head, Target::Root | Target::Health | Target::Stats, false) => {
            (ok(None, None), then)
        }
        (Method::Get | Method::Head, Target::Bytes(v), false) => {
            let n = bytes_len(*v);
            let body: Vec<u8> = (0..n).map(crate::bytes_endpoint_byte).collect();
            (ok(Some(body), Some(n)), then)
        }
        (Method::Get | Method::Head, Target::Delay(ms), false)
            if u64::from(*ms) <= crate::MAX_DELAY_MS =>
        {
            (ok(None, None), then)
        }
        (Method::Get | Method::Head, Target::Missing(_), false) => (
            Expect {
                statuses: &[404],
                head,
                body: None,
                length: None,
                allow: false,
                close: false,
            },
            Tail::Unknown,
        ),
        (Method::Post, Target::Echo, _) => (ok(Some(decoded), None), then),
        (Method::Post, Target::PauseAccept(ms), _) if *ms <= 10_000 => {
            event = Some(Event::PauseAccept(Duration::from_millis(u64::from(*ms))));
            (ok(None, None), then)
        }
        (Method::Brew, Target::Root, false) => (
            Expect {
                statuses: &[405],
                head: HeadKnowledge::No,
                body: None,
                length: None,
                allow: true,
                close: false,
            },
            Tail::Unknown,
        ),
        _ => {
            return Built {
                bytes,
                prediction: Prediction::Unknown,
                event: None,
            };
        }
    };
    Built {
        bytes,
        prediction: Prediction::Respond { expect, then },
        event,
    }
}

/// `data` as one chunk and the last chunk.
fn chunk_once(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return b"0\r\n\r\n".to_vec();
    }
    let mut w = format!("{:x}\r\n", data.len()).into_bytes();
    w.extend_from_slice(data);
    w.extend_from_slice(b"\r\n0\r\n\r\n");
    w
}

fn set_header(headers: &mut Vec<(Vec<u8>, Vec<u8>)>, name: &[u8], value: Vec<u8>) {
    remove_header(headers, name);
    headers.push((name.to_vec(), value));
}

fn remove_header(headers: &mut Vec<(Vec<u8>, Vec<u8>)>, name: &[u8]) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}
