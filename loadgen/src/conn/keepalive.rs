//! The reactor-run keep-alive path of a closed loop over plain HTTP: the
//! `KeepAlive` handler a slot's task sets on its socket, which reads,
//! parses, records an `ok` and sends the next request with no task woken,
//! and `keep_alive`, which hands the connection to it and takes it back.
//! Finishing a request handed back (`Resumed`) is `exchange`'s; calling the
//! handler on readiness is `reactor`'s (`OnReadable`).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_lite::future;

use super::buffer::Buffer;
use super::{Deadline, Guard, Shared, add, count_finish};
use crate::http::{Complete, CompleteOutcome, Progress, ResponseParser};
use crate::outcome::Outcome;
use crate::reactor::{OnReadable, Stream};
use crate::schedule::Schedule;

/// A request the keep-alive handler handed back without an outcome.
pub(super) struct Resumed {
    pub(super) kind: usize,
    /// Its intended time, which is when it was sent (closed loop).
    pub(super) intended: Instant,
    pub(super) how: Resume,
}

pub(super) enum Resume {
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
        sh.rec(now).schedule_slot(&slot, sh.offset(now));
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
                    sh.rec(intended).response_time(
                        sh.offset(intended),
                        done - intended,
                        done - intended,
                    );
                    count_finish(sh, intended, Outcome::Ok);
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

/// Hands an open connection's next requests to the reactor (`KeepAlive`)
/// until it hands the connection back. `None`: no request is in flight and
/// the slot is done (its schedule ended, or the run is stopping or past its
/// end); otherwise the request to finish. The slot's books and buffers are
/// the handler's meanwhile, and are back in `g`, `buf` and `parser` however
/// this ends, dropped mid-way included.
pub(super) async fn keep_alive(
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
