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

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures_lite::future;

use crate::http::{Complete, Expect, Framing, Prepared, Progress, ResponseParser};
use crate::malformed::{MalformedOutcome, Sent};
use crate::measure::{Recorder, record};
use crate::outcome::Outcome;
use crate::plan::{Mode, Plan};
use crate::reactor::{Reactor, Stream};
use crate::schedule::{Schedule, Slot};

mod buffer;
mod connect;
mod deadline;
mod keepalive;
mod malformed;
mod modes;

use buffer::Buffer;
use connect::{Conn, connect, connect_uncounted, open};
pub(crate) use deadline::{Deadline, SWEEP_TICK};
use keepalive::{Resume, Resumed, keep_alive};
use malformed::{malformed_exchange, ms_since, note_failure};
use modes::{connects, hold};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
            target: "http://127.0.0.1:9/".into(),
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
