//! The per-thread event loop of a load thread: one epoll instance with
//! edge-triggered registrations, a timer map, a periodic tick (timerfd), and
//! the loop that runs the thread's task queue (`exec`) between waits. What
//! a connection does with readiness is `conn`'s; when a run stops is `run`'s.
//!
//! Why not async-io's reactor: with polling 3.11 every epoll wait also costs
//! a `timerfd_settime`, two `epoll_ctl` re-arms and an eventfd read, and each
//! `readable()` re-arms its one-shot registration with another `epoll_ctl`
//! (measured with `strace -c`: about 7 system calls per request against
//! wrk's 4). Here a socket is registered once, edge-triggered, readiness is a
//! flag, and a wait is one `epoll_pwait2`: a request costs a send, a recv and
//! a share of one wait.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Readiness of one registered socket, set by the loop and cleared by reads
/// and writes that find nothing to do.
#[derive(Default)]
struct Source {
    readable: Cell<bool>,
    /// The peer closed or the socket failed: reads never block again, so
    /// the readable flag must stay set (no further edge will come).
    hup: Cell<bool>,
    writable: Cell<bool>,
    read_waker: RefCell<Option<Waker>>,
    write_waker: RefCell<Option<Waker>>,
    /// Handles read readiness in the loop itself, instead of waking a task.
    inline: RefCell<Option<Rc<dyn OnReadable>>>,
}

/// Read readiness handled inside the reactor's loop, without waking a task:
/// the keep-alive path of a closed-loop connection (`conn`). It must not
/// register or drop sockets of this reactor.
pub(crate) trait OnReadable {
    /// The socket may be readable (`closing`: an error or hang-up was
    /// reported too). Clears `readable` when a read drained the socket.
    /// Returns false to hand the socket back: the task waiting on it is
    /// woken, and the handler is not called again until set again.
    fn on_readable(&self, readable: &Cell<bool>, closing: bool) -> bool;
}

/// One thread's epoll instance and timers. Single-threaded by construction
/// (`Rc`, `Cell`): each load thread owns one.
pub(crate) struct Reactor {
    epoll: OwnedFd,
    /// Registered sockets by key (the epoll event's data); `None` is free.
    sources: RefCell<Vec<Option<Rc<Source>>>>,
    free: RefCell<Vec<usize>>,
    /// Pending timers by (deadline, id).
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer_id: Cell<u64>,
    /// epoll_pwait2 (nanosecond timeouts, Linux 5.11+) works here.
    pwait2: Cell<bool>,
    events: RefCell<Vec<libc::epoll_event>>,
    /// A periodic timerfd in the epoll set, once [`Reactor::start_tick`]
    /// made one, and whether it has fired since the last look.
    tick: RefCell<Option<OwnedFd>>,
    tick_due: Cell<bool>,
}

/// The epoll key of the tick timerfd; socket keys are indexes into `sources`.
const TICK_KEY: u64 = u64::MAX;

impl Reactor {
    pub(crate) fn new() -> io::Result<Rc<Reactor>> {
        // SAFETY: epoll_create1 has no memory arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Rc::new(Reactor {
            // SAFETY: fd is a new descriptor that nothing else owns.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            sources: RefCell::default(),
            free: RefCell::default(),
            timers: RefCell::default(),
            next_timer_id: Cell::new(0),
            pwait2: Cell::new(true),
            events: RefCell::new(Vec::with_capacity(1024)),
            tick: RefCell::new(None),
            tick_due: Cell::new(false),
        }))
    }

    /// Starts a timerfd that fires every `every`, so the thread's periodic
    /// work (deadline sweeps, stop checks) needs no timeout on the wait: a
    /// wait with a timeout arms and cancels a kernel timer each time, about
    /// a hundredth of a closed-loop request's CPU.
    pub(crate) fn start_tick(&self, every: Duration) -> io::Result<()> {
        // SAFETY: timerfd_create has no memory arguments.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ts = libc::timespec {
            tv_sec: every.as_secs() as libc::time_t,
            tv_nsec: every.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        // SAFETY: spec lives across the call; no old value is asked for.
        if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: TICK_KEY,
        };
        // SAFETY: both descriptors are open; ev lives across the call.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        *self.tick.borrow_mut() = Some(fd);
        Ok(())
    }

    /// Whether the tick has fired since the last call; `None` without a tick.
    pub(crate) fn take_tick(&self) -> Option<bool> {
        self.tick.borrow().as_ref()?;
        Some(self.tick_due.replace(false))
    }

    /// Waits up to `timeout` (`None`: until something happens) for events,
    /// then wakes the tasks they concern and the timers that are due.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<()> {
        let mut events = self.events.borrow_mut();
        events.clear();
        let cap = events.capacity() as libc::c_int;
        let n = loop {
            let n = self.epoll_wait(events.as_mut_ptr(), cap, timeout);
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        };
        // SAFETY: the kernel initialised the first n entries, n <= capacity.
        unsafe { events.set_len(n) };
        let sources = self.sources.borrow();
        for ev in events.iter() {
            let flags = ev.events;
            if ev.u64 == TICK_KEY {
                self.read_tick();
                continue;
            }
            let Some(Some(src)) = sources.get(ev.u64 as usize) else {
                continue;
            };
            let err = flags & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
            if err || flags & libc::EPOLLRDHUP as u32 != 0 {
                src.hup.set(true);
            }
            if err || flags & (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 != 0 {
                src.readable.set(true);
                let handler = src.inline.borrow().clone();
                let handled = handler.is_some_and(|h| {
                    let kept = h.on_readable(&src.readable, src.hup.get());
                    if !kept {
                        src.inline.borrow_mut().take();
                    }
                    kept
                });
                if !handled {
                    if let Some(w) = src.read_waker.borrow_mut().take() {
                        w.wake();
                    }
                }
            }
            if err || flags & libc::EPOLLOUT as u32 != 0 {
                src.writable.set(true);
                if let Some(w) = src.write_waker.borrow_mut().take() {
                    w.wake();
                }
            }
        }
        drop(sources);
        // A closed-loop run has no timers: no clock read for them.
        if !self.timers.borrow().is_empty() {
            self.fire_timers(Instant::now());
        }
        Ok(())
    }

    /// Clears the tick timerfd's expiration count and notes the tick.
    fn read_tick(&self) {
        if let Some(fd) = self.tick.borrow().as_ref() {
            let mut count = [0u8; 8];
            // SAFETY: count is 8 writable bytes, what a timerfd read needs.
            // A failed read (EAGAIN: already cleared) changes nothing.
            unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
            self.tick_due.set(true);
        }
    }

    fn epoll_wait(
        &self,
        events: *mut libc::epoll_event,
        cap: libc::c_int,
        timeout: Option<Duration>,
    ) -> isize {
        let fd = self.epoll.as_raw_fd();
        if self.pwait2.get() {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            // SAFETY: events points at `cap` writable entries; ts lives
            // across the call (null: no timeout); no signal mask.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    fd,
                    events,
                    cap,
                    ts.as_ref()
                        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec),
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return n as isize;
            }
            self.pwait2.set(false);
        }
        // Rounded up, so a timer never fires early.
        let ms = timeout.map_or(-1, |t| {
            t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
        });
        // SAFETY: events points at `cap` writable entries.
        unsafe { libc::epoll_wait(fd, events, cap, ms) as isize }
    }

    fn fire_timers(&self, now: Instant) {
        let mut timers = self.timers.borrow_mut();
        while let Some(entry) = timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
    }

    /// Wakes every pending timer now, so sleeping tasks look at the stop
    /// flag at once instead of polling it.
    pub(crate) fn fire_all_timers(&self) {
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        for (_, w) in timers {
            w.wake();
        }
    }

    /// The earliest timer deadline.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.borrow().first_key_value().map(|(k, _)| k.0)
    }

    /// Completes at `at`.
    pub(crate) fn sleep_until(self: &Rc<Self>, at: Instant) -> Sleep {
        Sleep {
            reactor: self.clone(),
            at,
            id: None,
        }
    }
}

/// A timer future of a [`Reactor`].
pub(crate) struct Sleep {
    reactor: Rc<Reactor>,
    at: Instant,
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            if let Some(id) = self.id.take() {
                self.reactor.timers.borrow_mut().remove(&(self.at, id));
            }
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = self.reactor.next_timer_id.get();
                self.reactor.next_timer_id.set(id + 1);
                self.id = Some(id);
                id
            }
        };
        let mut timers = self.reactor.timers.borrow_mut();
        let slot = timers
            .entry((self.at, id))
            .or_insert_with(|| cx.waker().clone());
        if !slot.will_wake(cx.waker()) {
            *slot = cx.waker().clone();
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.reactor.timers.borrow_mut().remove(&(self.at, id));
        }
    }
}

/// A non-blocking TCP stream registered with a thread's [`Reactor`].
pub(crate) struct Stream {
    stream: TcpStream,
    source: Rc<Source>,
    /// The epoll registration key, once registered.
    key: Cell<Option<usize>>,
    reactor: Rc<Reactor>,
}

impl Stream {
    /// Wraps a non-blocking `stream` (connected or connecting). It is
    /// registered with epoll only when a task first has to wait on it, so a
    /// connect that completes at once and is closed (`--mode connect` on
    /// loopback) costs no `epoll_ctl`.
    pub(crate) fn new(reactor: &Rc<Reactor>, stream: TcpStream) -> Stream {
        Stream {
            stream,
            source: Rc::new(Source::default()),
            key: Cell::new(None),
            reactor: reactor.clone(),
        }
    }

    /// Adds the socket to the epoll set, edge-triggered. Adding reports the
    /// current readiness too, so nothing that happened before is missed.
    fn register(&self) -> io::Result<()> {
        if self.key.get().is_some() {
            return Ok(());
        }
        let reactor = &self.reactor;
        let key = match reactor.free.borrow_mut().pop() {
            Some(k) => k,
            None => {
                let mut sources = reactor.sources.borrow_mut();
                sources.push(None);
                sources.len() - 1
            }
        };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: key as u64,
        };
        // SAFETY: both descriptors are open; ev lives across the call.
        let rc = unsafe {
            libc::epoll_ctl(
                reactor.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                self.stream.as_raw_fd(),
                &mut ev,
            )
        };
        if rc != 0 {
            reactor.free.borrow_mut().push(key);
            return Err(io::Error::last_os_error());
        }
        reactor.sources.borrow_mut()[key] = Some(self.source.clone());
        self.key.set(Some(key));
        Ok(())
    }

    /// Lets `handler` take this socket's read readiness until it hands the
    /// socket back (or [`Stream::clear_inline`]); registers the socket first.
    /// While it is set, the task that set it waits on
    /// [`Stream::handed_back`].
    pub(crate) fn set_inline(&self, handler: Rc<dyn OnReadable>) -> io::Result<()> {
        self.register()?;
        *self.source.inline.borrow_mut() = Some(handler);
        Ok(())
    }

    /// Takes the read readiness back from the inline handler, if it has it.
    pub(crate) fn clear_inline(&self) {
        self.source.inline.borrow_mut().take();
    }

    /// Completes once the inline handler has handed the socket back.
    pub(crate) fn handed_back(&self) -> HandedBack<'_> {
        HandedBack { stream: self }
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.stream.as_raw_fd()
    }

    /// An error, hang-up or peer close was reported for this socket.
    pub(crate) fn failed(&self) -> bool {
        self.source.hup.get()
    }

    pub(crate) fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// Completes when a read may find data (or EOF, or an error).
    pub(crate) fn readable(&self) -> Ready<'_> {
        Ready {
            stream: self,
            flag: &self.source.readable,
            waker: &self.source.read_waker,
        }
    }

    /// Completes when a write may make progress (or fail).
    pub(crate) fn writable(&self) -> Ready<'_> {
        Ready {
            stream: self,
            flag: &self.source.writable,
            waker: &self.source.write_waker,
        }
    }

    /// One non-blocking read. A short read drained the socket, so the
    /// readable flag is cleared then, without a second read to see EAGAIN;
    /// edge-triggered epoll reports the next arrival, including a FIN that
    /// comes after this read. A FIN that came before it was already
    /// reported (`hup`), so then the flag stays set.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match (&self.stream).read(buf) {
            Ok(n) => {
                if n < buf.len() && n > 0 && !self.source.hup.get() {
                    self.source.readable.set(false);
                }
                Ok(n)
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.source.readable.set(false);
                }
                Err(e)
            }
        }
    }

    /// One non-blocking write.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let r = (&self.stream).write(buf);
        if let Err(e) = &r {
            if e.kind() == io::ErrorKind::WouldBlock {
                self.source.writable.set(false);
            }
        }
        r
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Closing the descriptor removes it from the epoll set; the key is
        // free for the next registration. The handler goes first: it holds
        // the thread's shared state, which holds this reactor.
        self.clear_inline();
        if let Some(key) = self.key.get() {
            self.reactor.sources.borrow_mut()[key] = None;
            self.reactor.free.borrow_mut().push(key);
        }
    }
}

/// Waits until a socket's inline handler hands it back.
pub(crate) struct HandedBack<'a> {
    stream: &'a Stream,
}

impl Future for HandedBack<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let src = &self.stream.source;
        if src.inline.borrow().is_none() {
            return Poll::Ready(());
        }
        let mut w = src.read_waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Waits for a readiness flag.
pub(crate) struct Ready<'a> {
    stream: &'a Stream,
    flag: &'a Cell<bool>,
    waker: &'a RefCell<Option<Waker>>,
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.get() {
            return Poll::Ready(());
        }
        if self.stream.register().is_err() {
            // Without a registration nothing would wake this task; letting
            // the read or write run makes it see the socket's state itself.
            let src = &self.stream.source;
            src.readable.set(true);
            src.writable.set(true);
            return Poll::Ready(());
        }
        let mut w = self.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_ends_a_wait_and_is_taken_once() {
        let reactor = Reactor::new().unwrap();
        assert_eq!(reactor.take_tick(), None, "no tick before start_tick");
        // The clock is read before the tick is armed: read after, a tick
        // that fires 5 ms after arming can look early.
        let started = Instant::now();
        reactor.start_tick(Duration::from_millis(5)).unwrap();
        // Nothing else is registered: only the tick can end this wait
        // before its timeout.
        reactor.wait(Some(Duration::from_secs(3))).unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(5), "woke after {waited:?}");
        assert!(
            waited < Duration::from_secs(2),
            "the timeout ended the wait"
        );
        assert_eq!(reactor.take_tick(), Some(true));
        assert_eq!(reactor.take_tick(), Some(false), "a tick is taken once");
    }
}
