//! One connection slot at run time: a task on its thread's executor that
//! takes requests from its [`Schedule`], waits for their intended times,
//! connects, writes the prepared bytes, reads the reply (readiness first,
//! then one non-blocking read) and records exactly one outcome per request.
//! In a closed loop over plain HTTP, an open connection's later requests
//! are run by the reactor itself (`KeepAlive`: read, parse, record, send the
//! next) until anything but an `ok` on a kept connection happens; the slot's
//! task then takes the request over where the handler left it.
//! With `--malformed`, a slot sends each malformed input on a connection of
//! its own (never on its keep-alive one) and turns a share of its valid
//! requests into `POST /echo` probes with a unique token.
//! Classifying failures is `outcome`'s job and parsing replies is `http`'s;
//! threads, stopping and merging live in `run`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::http::{Complete, Expect, Framing, Prepared, Progress, ResponseParser};
use crate::malformed::{MAX_REPLY_BYTES, MalformedOutcome, Sent, classify};
use crate::measure::{Recorder, record};
use crate::outcome::Outcome;
use crate::plan::{CloseWith, Mode, Plan};
use crate::reactor::{OnReadable, Reactor, Stream};
use crate::schedule::{Schedule, Slot};

/// Connects faster than this cannot have retransmitted their SYN: Linux's
/// initial SYN timeout is 1 s; a margin covers lowered route RTOs.
const MIN_SYN_RETRANSMIT: Duration = Duration::from_millis(150);

/// Live counters of one thread, read by the progress reporter on another.
/// Aligned so that threads never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LiveSlot {
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    /// This thread's response-time p99 so far, refreshed once a second.
    pub p99_us: AtomicU64,
}

/// Adds `n` (wrapping: `u64::MAX` subtracts one) to a live counter. Only
/// the owning thread writes its counters, so a plain load and store is
/// enough and avoids a locked instruction per request.
fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Counts a request's outcome in the thread's books and live counters.
fn count_finish(sh: &Shared, o: Outcome) {
    sh.rec.borrow_mut().outcome(o);
    add(&sh.live.in_flight, u64::MAX);
    add(&sh.live.done, 1);
    if o != Outcome::Ok {
        add(&sh.live.errors, 1);
    }
}

/// What the slots of one thread share.
pub(crate) struct Shared {
    pub plan: Arc<Plan>,
    /// Offsets in schedules count from here.
    pub start: Instant,
    /// No request is scheduled at or after this.
    pub end: Option<Instant>,
    /// Set by Ctrl-C: stop scheduling.
    pub stop: Arc<AtomicBool>,
    pub rec: RefCell<Recorder>,
    pub live: Arc<LiveSlot>,
    /// This thread's event loop.
    pub reactor: Rc<Reactor>,
    /// Every slot's read deadline, checked by the thread's sweeper.
    pub deadlines: RefCell<Vec<Rc<Deadline>>>,
}

/// A slot's read deadline. Per-request reactor timers cost system calls
/// (an eventfd notify, a timerfd update and a re-arm, a few per request);
/// one sweeper per thread checking these cells every `SWEEP_TICK` costs
/// none, at the price of timeouts firing up to one tick late.
#[derive(Default)]
pub(crate) struct Deadline {
    at: Cell<Option<Instant>>,
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// How often the sweeper checks read deadlines: the slack of `--read-timeout`.
pub(crate) const SWEEP_TICK: Duration = Duration::from_millis(20);

impl Deadline {
    fn arm(&self, at: Instant) {
        self.fired.set(false);
        self.at.set(Some(at));
    }

    fn disarm(&self) {
        self.at.set(None);
    }

    /// Fires the deadline if it has passed; called by the sweeper.
    pub(crate) fn sweep(&self, now: Instant) {
        if self.at.get().is_some_and(|at| now >= at) {
            self.at.set(None);
            self.fired.set(true);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Completes once the armed deadline has fired.
    fn expired(&self) -> Expired<'_> {
        Expired(self)
    }
}

struct Expired<'a>(&'a Deadline);

impl Future for Expired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.get() {
            return Poll::Ready(());
        }
        let mut w = self.0.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A slot's accounting; its `Drop` makes the books balance even when the
/// executor drops the task mid-request at the end of the grace period.
struct Guard {
    sh: Rc<Shared>,
    /// `None` while a keep-alive connection's inline handler holds it.
    schedule: Option<Schedule>,
    /// A slot taken from the schedule whose intended time has not come.
    pending: Option<Slot>,
    /// A scheduled request has no outcome yet.
    in_flight: bool,
    /// Whether due-but-unsent requests count as cancelled on drop (not in
    /// hold mode, whose schedule is one connect per slot).
    drain: bool,
    /// A malformed exchange has no outcome yet.
    malformed_in_flight: bool,
    /// Closed loop: when the last request ended, which is when the next one
    /// is due, so the clock is read once per request, not twice.
    ended_at: Option<Instant>,
}

impl Guard {
    fn finish(&mut self, o: Outcome) {
        count_finish(&self.sh, o);
        self.in_flight = false;
    }

    fn begin(&mut self) {
        self.in_flight = true;
        add(&self.sh.live.in_flight, 1);
    }

    fn begin_malformed(&mut self) {
        self.malformed_in_flight = true;
        add(&self.sh.live.in_flight, 1);
    }

    fn finish_malformed(&mut self, o: MalformedOutcome) {
        self.sh.rec.borrow_mut().malformed.outcome(o);
        self.malformed_in_flight = false;
        add(&self.sh.live.in_flight, u64::MAX);
        add(&self.sh.live.done, 1);
        if o.unexpected() {
            add(&self.sh.live.errors, 1);
        }
    }

    /// Waits until `t`, or until the stop flag is set (the thread's loop
    /// then fires every timer, see `Reactor::fire_all_timers`).
    async fn wait_until(&mut self, t: Instant) {
        if !self.sh.stop.load(Ordering::Relaxed) {
            self.sh.reactor.sleep_until(t).await;
        }
    }

    /// The next request: its intended send time and what it is; `None` to stop.
    async fn next(&mut self) -> Option<(Instant, Slot)> {
        let sh = self.sh.clone();
        loop {
            if sh.stop.load(Ordering::Relaxed) {
                return None;
            }
            let slot = match self.pending.take() {
                Some(s) => s,
                None => self.schedule.as_mut()?.next_slot()?,
            };
            if !sh.plan.is_open() {
                let now = self.ended_at.take().unwrap_or_else(Instant::now);
                if sh.end.is_some_and(|e| now >= e) {
                    return None;
                }
                sh.rec.borrow_mut().schedule_slot(&slot);
                return Some((now, slot));
            }
            let intended = sh.start + slot.offset;
            if Instant::now() < intended {
                // The connection is idle before the intended time, so any
                // lateness past it is the generator's own, not the server's.
                self.pending = Some(slot);
                self.wait_until(intended).await;
                if sh.stop.load(Ordering::Relaxed) {
                    return None;
                }
                self.pending = None;
                let late = Instant::now().saturating_duration_since(intended);
                let mut rec = sh.rec.borrow_mut();
                rec.schedule_slot(&slot);
                record(&mut rec.lag, late);
                // Hold mode opens each slot's one connection however late:
                // the point there is how many are held, not when.
                if late > sh.plan.lag_threshold && sh.plan.mode != Mode::Hold {
                    if slot.malformed {
                        rec.malformed.outcome(MalformedOutcome::GeneratorLagged);
                    } else {
                        rec.outcome(Outcome::GeneratorLagged);
                    }
                    add(&sh.live.done, 1);
                    add(&sh.live.errors, 1);
                    continue;
                }
                return Some((intended, slot));
            }
            // Due already: the connection was busy, and the wait counts in
            // this request's response time (no coordinated omission).
            sh.rec.borrow_mut().schedule_slot(&slot);
            return Some((intended, slot));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut rec = self.sh.rec.borrow_mut();
        if self.in_flight {
            rec.outcome(Outcome::Cancelled);
            add(&self.sh.live.in_flight, u64::MAX);
        }
        if self.malformed_in_flight {
            rec.malformed.outcome(MalformedOutcome::Cancelled);
            add(&self.sh.live.in_flight, u64::MAX);
        }
        if self.drain && self.sh.plan.is_open() {
            let now = Instant::now();
            let cutoff = self.sh.end.map_or(now, |e| e.min(now));
            let mut slot = self
                .pending
                .take()
                .or_else(|| self.schedule.as_mut()?.next_slot());
            while let Some(s) = slot {
                if self.sh.start + s.offset > cutoff {
                    break;
                }
                rec.schedule_slot(&s);
                if s.malformed {
                    rec.malformed.outcome(MalformedOutcome::Cancelled);
                } else {
                    rec.outcome(Outcome::Cancelled);
                }
                slot = self.schedule.as_mut().and_then(Schedule::next_slot);
            }
        }
    }
}

/// Runs connection slot `index` until its schedule ends or the run stops.
pub(crate) async fn slot_task(sh: Rc<Shared>, index: usize) {
    let mut g = Guard {
        schedule: Some(Schedule::new(&sh.plan, index)),
        sh: sh.clone(),
        pending: None,
        in_flight: false,
        drain: sh.plan.mode != Mode::Hold,
        malformed_in_flight: false,
        ended_at: None,
    };
    let source =
        (!sh.plan.sources.is_empty()).then(|| sh.plan.sources[index % sh.plan.sources.len()]);
    match sh.plan.mode {
        Mode::Requests | Mode::Churn => requests(&mut g, index, source).await,
        Mode::Connect => connects(&mut g, source).await,
        Mode::Hold => hold(&mut g, source).await,
    }
}

/// An established connection and what its connect showed.
struct Connected {
    stream: Stream,
    took: Duration,
    /// `TCP_INFO` counted retransmissions during the handshake: SYNs dropped.
    syn_retransmitted: bool,
}

/// Connects for a valid request, counting the connect in the result.
async fn connect(sh: &Shared, source: Option<IpAddr>) -> Result<Connected, Outcome> {
    sh.rec.borrow_mut().connects += 1;
    connect_uncounted(sh, source).await
}

/// Connects without counting: malformed exchanges keep their own books, so
/// the valid load's connect figures (and the verdict drawn from them) are
/// unchanged by them.
async fn connect_uncounted(sh: &Shared, source: Option<IpAddr>) -> Result<Connected, Outcome> {
    let addr = sh.plan.target.addr;
    let t0 = Instant::now();
    let classify = |e: io::Error| Outcome::from_connect_error(&e);
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
    .map_err(classify)?;
    // Nagle would hold a request written in two parts; ours are one write,
    // but a tcp:// payload may be long.
    if matches!(sh.plan.mode, Mode::Requests | Mode::Churn) {
        sock.set_tcp_nodelay(true).map_err(classify)?;
    }
    if let Some(ip) = source {
        bind_source(&sock, ip).map_err(classify)?;
    }
    let mut connected = match sock.connect(&addr.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(classify(e)),
    };
    if !connected {
        // On loopback the handshake usually completes inside the first
        // connect(2); asking again (EISCONN) is one system call where
        // waiting for writability costs an epoll_ctl and a wait.
        match sock.connect(&addr.into()) {
            Ok(()) => connected = true,
            Err(e) if e.raw_os_error() == Some(libc::EISCONN) => connected = true,
            Err(e)
                if e.raw_os_error() == Some(libc::EALREADY)
                    || e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(classify(e)),
        }
    }
    let stream = Stream::new(&sh.reactor, TcpStream::from(sock));
    let deadline = t0 + sh.plan.connect_timeout;
    while !connected {
        let ready = future::or(
            async {
                stream.writable().await;
                true
            },
            async {
                sh.reactor.sleep_until(deadline).await;
                false
            },
        )
        .await;
        if ready {
            // Writable without an error or hang-up event means connected;
            // only then is SO_ERROR's system call skipped.
            if stream.failed() {
                if let Some(e) = stream.get_ref().take_error().map_err(classify)? {
                    return Err(classify(e));
                }
            }
            connected = true;
        } else if Instant::now() >= deadline {
            // (Ctrl-C fires every timer early; a connect in flight still
            // gets its time, within the grace.)
            return Err(Outcome::ConnectTimeout);
        }
    }
    let took = t0.elapsed();
    // A retransmitted SYN waits at least the initial RTO (1 s on Linux), so
    // a faster connect cannot have had one and skips the TCP_INFO call.
    let syn_retransmitted = took >= MIN_SYN_RETRANSMIT
        && crate::kernel::tcp_info(stream.get_ref())
            .map(|i| i.total_retrans > 0)
            .unwrap_or(false);
    Ok(Connected {
        stream,
        took,
        syn_retransmitted,
    })
}

/// Binds to `ip` with the port left to connect(2): IP_BIND_ADDRESS_NO_PORT
/// lets the kernel pick a port per (source, destination) pair, so several
/// source addresses multiply the usable ephemeral ports.
fn bind_source(sock: &Socket, ip: IpAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if ip.is_ipv4() {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    sock.bind(&SocketAddr::new(ip, 0).into())
}

/// The read buffer of one connection; it grows only for long heads or
/// delimited replies.
struct Buffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buffer {
    const INITIAL: usize = 16 * 1024;

    fn new() -> Buffer {
        Buffer {
            data: vec![0; Buffer::INITIAL],
            start: 0,
            end: 0,
        }
    }

    /// A buffer without storage, left behind while another owner has the
    /// real one.
    fn moved() -> Buffer {
        Buffer {
            data: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
    }

    /// Free space at the end, after compacting or growing if there is none.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.data.len() * 2;
                self.data.resize(len, 0);
            }
        }
        &mut self.data[self.end..]
    }
}

async fn write_all(stream: &Stream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `req` and reads its reply.
/// An established connection: plain TCP, or TLS over it.
struct Conn {
    stream: Stream,
    tls: Option<Box<rustls::ClientConnection>>,
}

/// Connects, and for an https target completes the TLS handshake within the
/// same connect timeout.
/// Returns the connection, the time it took and whether the SYN was
/// retransmitted.
async fn open(sh: &Shared, source: Option<IpAddr>) -> Result<(Conn, Duration, bool), Outcome> {
    let t0 = Instant::now();
    let Connected {
        stream,
        took,
        syn_retransmitted,
    } = connect(sh, source).await?;
    let Some(tls) = &sh.plan.tls else {
        return Ok((Conn { stream, tls: None }, took, syn_retransmitted));
    };
    let mut session = Box::new(tls.session().map_err(|_| Outcome::TlsFailed)?);
    let deadline = t0 + sh.plan.connect_timeout;
    let done = future::or(
        async { Some(crate::tls::handshake(&stream, &mut session).await) },
        async {
            sh.reactor.sleep_until(deadline).await;
            None
        },
    )
    .await;
    match done {
        Some(Ok(())) => {}
        Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(Outcome::TlsFailed),
        Some(Err(e)) => return Err(Outcome::from_io_error(&e)),
        None => return Err(Outcome::ConnectTimeout),
    }
    Ok((
        Conn {
            stream,
            tls: Some(session),
        },
        t0.elapsed(),
        syn_retransmitted,
    ))
}

async fn exchange(
    conn: &mut Conn,
    buf: &mut Buffer,
    parser: &mut ResponseParser,
    req: &Prepared,
    verify: bool,
) -> Result<Complete, Outcome> {
    let sent = match &mut conn.tls {
        None => write_all(&conn.stream, &req.wire).await,
        Some(tls) => crate::tls::send(&conn.stream, tls, &req.wire).await,
    };
    sent.map_err(|e| Outcome::from_io_error(&e))?;
    parser.start(req);
    receive(conn, buf, parser, req, verify, None).await
}

/// Reads the reply to `req` (the parser started). `pending` is a read made
/// already (an EOF or an error) that is taken before any new one.
async fn receive(
    conn: &mut Conn,
    buf: &mut Buffer,
    parser: &mut ResponseParser,
    req: &Prepared,
    verify: bool,
    mut pending: Option<io::Result<usize>>,
) -> Result<Complete, Outcome> {
    let stream = &conn.stream;
    loop {
        if buf.start != buf.end {
            match parser.feed(buf.filled(), req, verify) {
                Ok((n, Progress::Done(c))) => {
                    buf.consume(n);
                    return Ok(c);
                }
                Ok((n, Progress::NeedMore)) => buf.consume(n),
                Err(_) => return Err(Outcome::BadResponse),
            }
        }
        // Readiness first, then one read: a read that would block costs a
        // system call for nothing.
        let spare = buf.spare();
        let got = match (pending.take(), &mut conn.tls) {
            (Some(got), _) => got,
            (None, None) => {
                stream.readable().await;
                stream.read(spare)
            }
            (None, Some(tls)) => crate::tls::recv(stream, tls, spare).await,
        };
        match got {
            Ok(0) => {
                return parser.eof(req, verify).ok_or(Outcome::EofBeforeResponse);
            }
            Ok(n) => buf.end += n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Outcome::from_io_error(&e)),
        }
    }
}

/// A request the keep-alive handler handed back without an outcome.
struct Resumed {
    kind: usize,
    /// Its intended time, which is when it was sent (closed loop).
    intended: Instant,
    how: Resume,
}

enum Resume {
    /// The reply is complete but is not an `ok` on a connection that stays
    /// open, or it could not be parsed.
    Done(Result<Complete, Outcome>),
    /// Writing the request failed.
    WriteFailed(io::Error),
    /// In flight: `written` bytes of the request are sent, and `read` is a
    /// read the handler made (an EOF or an error) that must be seen first.
    InFlight {
        written: usize,
        read: Option<io::Result<usize>>,
    },
}

/// The keep-alive path of a closed-loop plain-HTTP connection, run by the
/// reactor on each read readiness with no task woken: read, parse, record
/// an `ok`, send the next request. Anything else (another outcome, a close,
/// EOF, an error, a short write, the end of the slot's schedule or of the
/// run) hands the connection back to the slot's task, which goes on as it
/// would have from there. Against nginx this took user time per request
/// from 1.00 to 0.71 µs (medians of 5 runs): the task's wake and poll
/// chain had been the largest share of it.
struct KeepAlive {
    sh: Rc<Shared>,
    fd: std::os::fd::RawFd,
    deadline: Rc<Deadline>,
    st: RefCell<KeepAliveState>,
}

struct KeepAliveState {
    buf: Buffer,
    parser: ResponseParser,
    /// The slot's schedule (`Guard`'s while the task has the connection).
    schedule: Option<Schedule>,
    /// The request in flight: its kind and intended (= sent) time.
    current: Option<(usize, Instant)>,
    ended_at: Option<Instant>,
    /// Set when handing back: `None` inside means no request is in flight
    /// (the schedule or the run ended).
    handback: Option<Option<Resumed>>,
}

impl KeepAlive {
    /// Starts the slot's next request at `now`, as `Guard::next` and the
    /// task would in a closed loop. False when it handed back instead.
    fn start_next(&self, st: &mut KeepAliveState, now: Instant) -> bool {
        let sh = &self.sh;
        let slot = if sh.stop.load(Ordering::Relaxed) || sh.end.is_some_and(|e| now >= e) {
            None
        } else {
            st.schedule.as_mut().and_then(Schedule::next_slot)
        };
        let Some(slot) = slot else {
            st.handback = Some(None);
            return false;
        };
        sh.rec.borrow_mut().schedule_slot(&slot);
        add(&sh.live.in_flight, 1);
        st.current = Some((slot.kind, now));
        let req = &sh.plan.kinds[slot.kind].prepared;
        st.parser.start(req);
        self.deadline.arm(now + sh.plan.read_timeout);
        let wire = &req.wire;
        // SAFETY: `wire` is a live buffer of `wire.len()` bytes; the socket
        // is open while the handler is set (its stream clears it on drop).
        let n = unsafe {
            libc::send(
                self.fd,
                wire.as_ptr().cast(),
                wire.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 && n as usize == wire.len() {
            return true;
        }
        let how = if n >= 0 {
            Resume::InFlight {
                written: n as usize,
                read: None,
            }
        } else {
            let e = io::Error::last_os_error();
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                Resume::InFlight {
                    written: 0,
                    read: None,
                }
            } else {
                Resume::WriteFailed(e)
            }
        };
        self.hand_back(st, how);
        false
    }

    fn hand_back(&self, st: &mut KeepAliveState, how: Resume) {
        let (kind, intended) = st.current.expect("a request is in flight");
        st.handback = Some(Some(Resumed {
            kind,
            intended,
            how,
        }));
    }
}

impl OnReadable for KeepAlive {
    fn on_readable(&self, readable: &Cell<bool>, closing: bool) -> bool {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let sh = &self.sh;
        if closing {
            match st.current {
                Some((kind, _)) => {
                    let written = sh.plan.kinds[kind].prepared.wire.len();
                    let how = Resume::InFlight {
                        written,
                        read: None,
                    };
                    self.hand_back(st, how);
                }
                None => st.handback = Some(None),
            }
            return false;
        }
        loop {
            let Some((kind, intended)) = st.current else {
                st.handback = Some(None);
                return false;
            };
            let written = sh.plan.kinds[kind].prepared.wire.len();
            let spare = st.buf.spare();
            let cap = spare.len();
            // SAFETY: `spare` is writable for `cap` bytes; the socket is open
            // while the handler is set.
            let n = unsafe { libc::recv(self.fd, spare.as_mut_ptr().cast(), cap, 0) };
            if n <= 0 {
                let got = if n == 0 {
                    Ok(0)
                } else {
                    Err(io::Error::last_os_error())
                };
                match &got {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        readable.set(false);
                        return true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => {}
                }
                let how = Resume::InFlight {
                    written,
                    read: Some(got),
                };
                self.hand_back(st, how);
                return false;
            }
            let n = n as usize;
            st.buf.end += n;
            let req = &sh.plan.kinds[kind].prepared;
            match st.parser.feed(st.buf.filled(), req, sh.plan.verify) {
                Ok((used, Progress::NeedMore)) => st.buf.consume(used),
                Ok((used, Progress::Done(c))) => {
                    st.buf.consume(used);
                    if c.close || c.outcome() != Outcome::Ok || st.buf.start != st.buf.end {
                        // (Bytes past the reply, before the next request
                        // was sent, are the task's to judge.)
                        self.hand_back(st, Resume::Done(Ok(c)));
                        return false;
                    }
                    let done = Instant::now();
                    self.deadline.disarm();
                    {
                        let mut rec = sh.rec.borrow_mut();
                        record(&mut rec.response, done - intended);
                        record(&mut rec.service, done - intended);
                    }
                    count_finish(sh, Outcome::Ok);
                    st.current = None;
                    st.ended_at = Some(done);
                    if !self.start_next(st, done) {
                        return false;
                    }
                }
                Err(_) => {
                    self.hand_back(st, Resume::Done(Err(Outcome::BadResponse)));
                    return false;
                }
            }
            if n < cap {
                // A short read drained the socket (see `Stream::read`).
                readable.set(false);
                return true;
            }
        }
    }
}

/// Keep-alive (or, in churn mode, one-shot) request/response. With
/// `--malformed`, malformed inputs go on connections of their own, and echo
/// probes carry a token unique to the request.
async fn requests(g: &mut Guard, index: usize, source: Option<IpAddr>) {
    let sh = g.sh.clone();
    let plan = sh.plan.clone();
    let mut conn: Option<Conn> = None;
    let mut fresh_syn_retransmitted = false;
    let mut buf = Buffer::new();
    let mut parser = ResponseParser::default();
    let deadline = Rc::new(Deadline::default());
    sh.deadlines.borrow_mut().push(deadline.clone());
    // How many malformed inputs and echo probes this slot has sent: the
    // numbers that make each one reproducible and each token unique.
    let mut malformed_n = 0u64;
    let mut probe_n = 0u64;
    let mut probe: Option<Prepared> = None;
    // Closed loop over plain HTTP without --malformed: an open connection's
    // requests are run by the reactor (`KeepAlive`) until something other
    // than an `ok` on a kept connection happens.
    let keep_alive_inline = !plan.is_open()
        && plan.mode == Mode::Requests
        && plan.tls.is_none()
        && plan.malformed.is_none();
    // A request the keep-alive handler handed back, to finish here.
    let mut resumed: Option<Resumed> = None;
    loop {
        let (intended, sent, is_probe, result) = if let Some(r) = resumed.take() {
            let req = &plan.kinds[r.kind].prepared;
            let established = conn.as_mut().expect("handed back on an open connection");
            let result = match r.how {
                Resume::Done(result) => result,
                Resume::WriteFailed(e) => Err(Outcome::from_io_error(&e)),
                Resume::InFlight { written, read } => {
                    future::or(
                        async {
                            write_all(&established.stream, &req.wire[written..])
                                .await
                                .map_err(|e| Outcome::from_io_error(&e))?;
                            receive(established, &mut buf, &mut parser, req, plan.verify, read)
                                .await
                        },
                        async {
                            deadline.expired().await;
                            Err(Outcome::ReadTimeout)
                        },
                    )
                    .await
                }
            };
            deadline.disarm();
            (r.intended, r.intended, false, result)
        } else {
            let Some((intended, slot)) = g.next().await else {
                break;
            };
            if slot.malformed {
                g.begin_malformed();
                let m = plan
                    .malformed
                    .as_ref()
                    .expect("malformed slots come from a --malformed plan");
                let input = m.generator.input(index, malformed_n);
                let start_ms = ms_since(sh.start, Instant::now());
                let o = malformed_exchange(&sh, source, &input.bytes, &deadline).await;
                {
                    let mut rec = sh.rec.borrow_mut();
                    rec.malformed.by_source[input.source as usize] += 1;
                    if !matches!(o, MalformedOutcome::ConnectFailed) {
                        rec.malformed.remember(Sent {
                            slot: index as u32,
                            n: malformed_n,
                            start_ms,
                            end_ms: ms_since(sh.start, Instant::now()),
                            unexpected: o.unexpected(),
                        });
                    }
                }
                malformed_n += 1;
                g.finish_malformed(o);
                continue;
            }
            g.begin();
            let is_probe = plan
                .malformed
                .as_ref()
                .is_some_and(|m| m.probe_kind == slot.kind);
            let req = match &plan.malformed {
                Some(m) if is_probe => {
                    let token = crate::plan::probe_token(plan.seed, index, probe_n);
                    probe_n += 1;
                    let mut wire = m.probe_head.clone();
                    wire.extend_from_slice(&token);
                    &*probe.insert(Prepared {
                        wire,
                        framing: Framing::Http {
                            head_request: false,
                        },
                        expect: Expect::Echo(token),
                    })
                }
                _ => &plan.kinds[slot.kind].prepared,
            };
            let reused = conn.is_some();
            let established = match &mut conn {
                Some(c) => c,
                None => match open(&sh, source).await {
                    Ok((established, took, syn_retransmitted)) => {
                        record(&mut sh.rec.borrow_mut().connect, took);
                        fresh_syn_retransmitted = syn_retransmitted;
                        buf.clear();
                        conn.insert(established)
                    }
                    Err(o) => {
                        note_failure(&sh, intended, o);
                        g.finish(o);
                        continue;
                    }
                },
            };
            // Closed loop on an open connection: the request goes out now, at
            // its intended time (read when the last one ended).
            let sent = if reused && !plan.is_open() {
                intended
            } else {
                Instant::now()
            };
            deadline.arm(sent + plan.read_timeout);
            let result = future::or(
                exchange(
                    established,
                    &mut buf,
                    &mut parser,
                    req,
                    plan.verify || is_probe,
                ),
                async {
                    deadline.expired().await;
                    Err(Outcome::ReadTimeout)
                },
            )
            .await;
            deadline.disarm();
            (intended, sent, is_probe, result)
        };
        let done = Instant::now();
        g.ended_at = Some(done);
        let outcome = match result {
            Ok(c) => {
                {
                    let mut rec = sh.rec.borrow_mut();
                    record(&mut rec.response, done - intended);
                    record(&mut rec.service, done - sent);
                }
                if c.close || plan.mode == Mode::Churn {
                    conn = None;
                }
                match c.outcome() {
                    Outcome::Ok if fresh_syn_retransmitted => Outcome::SynRetransmitted,
                    o => o,
                }
            }
            Err(Outcome::ReadTimeout) => {
                // Unacknowledged request bytes mean the server never took
                // the connection: its accept queue dropped the final ACK.
                let unacked = conn
                    .as_ref()
                    .and_then(|c| crate::kernel::tcp_info(c.stream.get_ref()).ok())
                    .is_some_and(|i| i.unacked > 0);
                conn = None;
                if unacked {
                    Outcome::RequestUnacked
                } else {
                    Outcome::ReadTimeout
                }
            }
            Err(o) => {
                conn = None;
                o
            }
        };
        fresh_syn_retransmitted = false;
        if is_probe {
            let mut rec = sh.rec.borrow_mut();
            rec.malformed.echo_checks += 1;
            if outcome == Outcome::VerifyMismatch {
                rec.malformed.echo_mismatches += 1;
            }
        }
        note_failure(&sh, intended, outcome);
        g.finish(outcome);
        // (Bytes left past a reply are fed before any read by `receive`;
        // the handler only feeds after a read, so such a connection stays
        // with the task.)
        if keep_alive_inline && outcome == Outcome::Ok && buf.start == buf.end {
            if let Some(established) = &conn {
                match keep_alive(g, &established.stream, &mut buf, &mut parser, &deadline).await {
                    Some(r) => resumed = Some(r),
                    None => break,
                }
            }
        }
    }
}

/// Hands an open connection's next requests to the reactor (`KeepAlive`)
/// until it hands the connection back. `None`: no request is in flight and
/// the slot is done (its schedule ended, or the run is stopping or past its
/// end); otherwise the request to finish. The slot's books and buffers are
/// the handler's meanwhile, and are back in `g`, `buf` and `parser` however
/// this ends, dropped mid-way included.
async fn keep_alive(
    g: &mut Guard,
    stream: &Stream,
    buf: &mut Buffer,
    parser: &mut ResponseParser,
    deadline: &Rc<Deadline>,
) -> Option<Resumed> {
    /// Puts the handler's state back where the task keeps it.
    struct Back<'a> {
        g: &'a mut Guard,
        stream: &'a Stream,
        buf: &'a mut Buffer,
        parser: &'a mut ResponseParser,
        ka: Rc<KeepAlive>,
    }
    impl Drop for Back<'_> {
        fn drop(&mut self) {
            self.stream.clear_inline();
            let mut st = self.ka.st.borrow_mut();
            self.g.schedule = st.schedule.take();
            self.g.in_flight = st.current.is_some();
            self.g.ended_at = st.ended_at;
            *self.buf = std::mem::replace(&mut st.buf, Buffer::moved());
            *self.parser = std::mem::take(&mut st.parser);
        }
    }
    let now = g.ended_at.take().unwrap_or_else(Instant::now);
    let ka = Rc::new(KeepAlive {
        sh: g.sh.clone(),
        fd: stream.raw_fd(),
        deadline: deadline.clone(),
        st: RefCell::new(KeepAliveState {
            buf: std::mem::replace(buf, Buffer::moved()),
            parser: std::mem::take(parser),
            schedule: g.schedule.take(),
            current: None,
            ended_at: None,
            handback: None,
        }),
    });
    let back = Back {
        g,
        stream,
        buf,
        parser,
        ka: ka.clone(),
    };
    let started = ka.start_next(&mut ka.st.borrow_mut(), now);
    if started {
        if stream.set_inline(ka.clone()).is_ok() {
            // Until handed back, or until the deadline of the request in
            // flight fires (a deadline the handler re-armed meanwhile for a
            // newer request reads as not fired, so the wait goes on).
            future::or(stream.handed_back(), deadline.expired()).await;
        } else {
            // Not registered: the task's own read path copes (see `Ready`).
            let mut st = ka.st.borrow_mut();
            let written = st
                .current
                .map_or(0, |(kind, _)| ka.sh.plan.kinds[kind].prepared.wire.len());
            let how = Resume::InFlight {
                written,
                read: None,
            };
            ka.hand_back(&mut st, how);
        }
    }
    stream.clear_inline();
    let (handback, current) = {
        let mut st = ka.st.borrow_mut();
        (st.handback.take(), st.current)
    };
    drop(back);
    match handback {
        Some(h) => h,
        // The request in flight ran out of time.
        None => current.map(|(kind, intended)| Resumed {
            kind,
            intended,
            how: Resume::Done(Err(Outcome::ReadTimeout)),
        }),
    }
}

/// Milliseconds from `start` to `t`, for the coincidence log.
fn ms_since(start: Instant, t: Instant) -> u32 {
    t.saturating_duration_since(start).as_millis() as u32
}

/// With `--malformed`, remembers when a valid request failed, so malformed
/// inputs sent around that time can be saved.
fn note_failure(sh: &Shared, intended: Instant, o: Outcome) {
    if sh.plan.malformed.is_none() || matches!(o, Outcome::Ok | Outcome::SynRetransmitted) {
        return;
    }
    let end = ms_since(sh.start, Instant::now());
    sh.rec
        .borrow_mut()
        .malformed
        .failure(ms_since(sh.start, intended), end);
}

/// Sends one malformed input on a connection of its own, half-closes, and
/// reads until the server closes or `--read-timeout` passes. The slot's
/// deadline is reused: the slot does nothing else meanwhile.
async fn malformed_exchange(
    sh: &Shared,
    source: Option<IpAddr>,
    input: &[u8],
    deadline: &Deadline,
) -> MalformedOutcome {
    let Ok(c) = connect_uncounted(sh, source).await else {
        return MalformedOutcome::ConnectFailed;
    };
    let stream = c.stream;
    deadline.arm(Instant::now() + sh.plan.read_timeout);
    let work = async {
        // A server may answer and close before it has read everything; a
        // failed write is then no failure of the exchange, and what it sent
        // is still read below.
        let _ = write_all(&stream, input).await;
        // The half-close tells the server no more bytes come, so an input
        // cut short ends now instead of at the server's head timeout.
        let _ = stream.get_ref().shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        let mut truncated = false;
        // On the heap: an array here would sit in every slot's task, used
        // or not (see the size test below).
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            stream.readable().await;
            match stream.read(&mut chunk) {
                Ok(0) => return classify(&reply, truncated),
                Ok(n) => {
                    let keep = n.min(MAX_REPLY_BYTES - reply.len());
                    reply.extend_from_slice(&chunk[..keep]);
                    truncated |= keep < n;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                // A reset ends the reply as a close does; what came before
                // it still counts.
                Err(_) => return classify(&reply, true),
            }
        }
    };
    let o = future::or(work, async {
        deadline.expired().await;
        MalformedOutcome::Hung
    })
    .await;
    deadline.disarm();
    o
}

/// `--mode connect`: each request is a connect, then a close by FIN or RST.
async fn connects(g: &mut Guard, source: Option<IpAddr>) {
    let sh = g.sh.clone();
    while let Some((intended, _)) = g.next().await {
        g.begin();
        let outcome = match connect(&sh, source).await {
            Ok(c) => {
                {
                    let mut rec = sh.rec.borrow_mut();
                    record(&mut rec.connect, c.took);
                    record(&mut rec.service, c.took);
                    record(&mut rec.response, intended.elapsed());
                }
                if sh.plan.close_with == CloseWith::Rst {
                    // Linger 0 makes close(2) send RST; a failure here only
                    // means a FIN is sent instead.
                    let _ = SockRef::from(c.stream.get_ref()).set_linger(Some(Duration::ZERO));
                }
                drop(c.stream);
                if c.syn_retransmitted {
                    Outcome::SynRetransmitted
                } else {
                    Outcome::Ok
                }
            }
            Err(o) => o,
        };
        g.finish(outcome);
    }
}

/// `--mode hold`: one connect per slot, then hold it idle until the end.
async fn hold(g: &mut Guard, source: Option<IpAddr>) {
    let sh = g.sh.clone();
    let Some((intended, _)) = g.next().await else {
        return;
    };
    g.begin();
    let c = match connect(&sh, source).await {
        Ok(c) => c,
        Err(o) => {
            g.finish(o);
            return;
        }
    };
    {
        let mut rec = sh.rec.borrow_mut();
        record(&mut rec.connect, c.took);
        record(&mut rec.response, intended.elapsed());
        rec.opened();
    }
    let mut byte = [0u8; 1];
    // Without an end (not possible for a valid hold plan), an hour stands in.
    let end = sh
        .end
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    let outcome = loop {
        if sh.stop.load(Ordering::Relaxed) || Instant::now() >= end {
            break if c.syn_retransmitted {
                Outcome::SynRetransmitted
            } else {
                Outcome::Ok
            };
        }
        let woke = future::or(
            async {
                c.stream.readable().await;
                true
            },
            async {
                // Ctrl-C fires this timer early.
                sh.reactor.sleep_until(end).await;
                false
            },
        )
        .await;
        if woke {
            match c.stream.read(&mut byte) {
                Ok(0) => break Outcome::EofBeforeResponse,
                // A server that talks first is still holding the connection.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break Outcome::from_io_error(&e),
            }
        }
    };
    sh.rec.borrow_mut().closed();
    g.finish(outcome);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanInput;

    /// Every connection slot is one task, whatever the mode, and a task's
    /// state is as large as the largest state any of its modes can be in.
    /// A user holding 100,000 idle connections (`--mode hold`) pays that
    /// size 100,000 times, so a buffer inside a rarely taken path must live
    /// on the heap, not in the task.
    #[test]
    fn a_connection_slot_task_is_small() {
        let plan = Plan::new(PlanInput {
            target: Some("http://127.0.0.1:9/".into()),
            connections: 1,
            threads: 1,
            requests: Some(1),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            ..PlanInput::default()
        })
        .unwrap();
        let sh = Rc::new(Shared {
            plan: Arc::new(plan),
            start: Instant::now(),
            end: None,
            stop: Arc::default(),
            rec: RefCell::default(),
            live: Arc::default(),
            reactor: Reactor::new().unwrap(),
            deadlines: RefCell::default(),
        });
        let task = slot_task(sh, 0);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "a slot task takes {size} bytes");
    }
}
