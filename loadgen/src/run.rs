//! Running a plan: `--threads` OS threads, each with its own single-threaded
//! event loop (`reactor`'s epoll plus `exec`'s task queue) driving its share
//! of the connection slots, and the calling thread waiting and reporting
//! progress. Stopping (the end of `--duration`, Ctrl-C and the
//! grace after it) is decided here; what one slot does is `conn`'s.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::conn::{LiveSlot, SWEEP_TICK, Shared, slot_task};
use crate::exec::LocalQueue;
use crate::measure::{INTERVAL, Interval, LiveSeries, Recorder};
use crate::plan::Plan;
use crate::reactor::Reactor;

/// A finished (or stopped) run.
#[derive(Debug)]
pub struct RunResult {
    /// The whole run's books (every phase's, merged).
    pub recorder: Recorder,
    /// Each phase's books, in order: one per segment of the plan's
    /// profile, or the one phase without a profile.
    pub phases: Vec<Recorder>,
    /// From the start of the schedule to the last thread finishing.
    pub elapsed: Duration,
    /// The time the run started, for the result's timestamp.
    pub started_at: SystemTime,
    /// Stopped by Ctrl-C (the stop flag) before the plan was done.
    pub partial: bool,
}

/// A snapshot for progress display.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub done: u64,
    pub errors: u64,
    pub in_flight: u64,
    /// The highest per-thread response-time p99 so far, in µs.
    pub p99_us: u64,
}

/// Runs `plan` to the end, or until `stop` is set (then in-flight requests
/// get `plan.grace` to finish). `progress` is called about once a second on
/// the calling thread.
pub fn run(plan: &Plan, stop: &Arc<AtomicBool>, progress: impl FnMut(&Snapshot)) -> RunResult {
    run_live(plan, stop, None, progress)
}

/// [`run`], with each phase's completed intervals published to `live` as
/// the run goes on (see [`LiveSeries`]).
pub fn run_live(
    plan: &Plan,
    stop: &Arc<AtomicBool>,
    live: Option<Arc<LiveSeries>>,
    mut progress: impl FnMut(&Snapshot),
) -> RunResult {
    let plan = Arc::new(plan.clone());
    let threads = plan.threads.max(1);
    let lives: Vec<Arc<LiveSlot>> = (0..threads).map(|_| Arc::default()).collect();
    let started_at = SystemTime::now();
    let start = Instant::now();
    let end = plan.duration.map(|d| start + d);
    let mut phases: Vec<Recorder> = Vec::new();
    let live_series = live;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let plan = plan.clone();
                let stop = stop.clone();
                let live = lives[t].clone();
                let series = live_series.clone();
                std::thread::Builder::new()
                    .name(format!("floodgate-load-{t}"))
                    .spawn_scoped(scope, move || {
                        thread_main(plan, (t, threads), start, end, stop, live, series)
                    })
                    .expect("spawn a load thread")
            })
            .collect();
        let mut last_report = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(&snapshot(&lives, start));
            }
        }
        for h in handles {
            match h.join() {
                Ok(recs) if phases.is_empty() => phases = recs,
                Ok(recs) => {
                    for (a, b) in phases.iter_mut().zip(&recs) {
                        a.merge(b);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut recorder = Recorder::default();
    for p in &phases {
        recorder.merge(p);
    }
    if phases.len() > 1 {
        // Each phase's series counts from its own start; merged, they
        // would mean nothing.
        recorder.series = Default::default();
    }
    RunResult {
        recorder,
        phases,
        elapsed: start.elapsed(),
        started_at,
        partial: stop.load(Ordering::Relaxed),
    }
}

fn snapshot(lives: &[Arc<LiveSlot>], start: Instant) -> Snapshot {
    let sum = |f: fn(&LiveSlot) -> u64| lives.iter().map(|l| f(l)).sum();
    Snapshot {
        elapsed: start.elapsed(),
        done: sum(|l| l.done.load(Ordering::Relaxed)),
        errors: sum(|l| l.errors.load(Ordering::Relaxed)),
        in_flight: sum(|l| l.in_flight.load(Ordering::Relaxed)),
        p99_us: lives
            .iter()
            .map(|l| l.p99_us.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0),
    }
}

/// Load thread `t` of `threads`.
fn thread_main(
    plan: Arc<Plan>,
    (t, threads): (usize, usize),
    start: Instant,
    end: Option<Instant>,
    stop: Arc<AtomicBool>,
    live: Arc<LiveSlot>,
    series: Option<Arc<LiveSeries>>,
) -> Vec<Recorder> {
    let reactor = Reactor::new().expect("create an epoll instance for a load thread");
    let mut shared = Shared::new(
        plan.clone(),
        start,
        end,
        stop.clone(),
        live,
        reactor.clone(),
    );
    shared.series = series;
    let sh = Rc::new(shared);
    let ex = LocalQueue::new();
    // Slot indices are the whole run's (a shard runs every Nth), so each
    // slot draws the schedule it has unsharded.
    let tasks: Vec<_> = plan
        .slots()
        .skip(t)
        .step_by(threads)
        .map(|i| ex.spawn(slot_task(sh.clone(), i)))
        .collect();
    let done = Rc::new(Cell::new(false));
    let all = ex.spawn({
        let done = done.clone();
        async move {
            for task in tasks {
                task.await;
            }
            done.set(true);
        }
    });
    drive(
        &ex,
        &reactor,
        &done,
        &sh,
        stop.as_ref(),
        end.map(|e| e + plan.grace),
    );
    // Dropping the queue drops unfinished tasks, whose guards record their
    // requests as cancelled.
    drop(all);
    drop(ex);
    publish(&sh, Instant::now(), true);
    sh.recs.take()
}

/// Publishes this thread's completed intervals to the live series, if
/// there is one: those whose requests have all had their read timeout
/// (all of them at the end of the run).
fn publish(sh: &Shared, now: Instant, all: bool) {
    let Some(series) = &sh.series else {
        return;
    };
    let starts: Vec<Duration> = match &sh.plan.profile {
        Some(p) => p.starts().to_vec(),
        None => vec![Duration::ZERO],
    };
    let total = sh.plan.duration.unwrap_or_default();
    let mut published = sh.published.borrow_mut();
    published.resize(starts.len(), 0);
    let recs = sh.recs.borrow();
    for (p, rec) in recs.iter().enumerate() {
        let end = starts.get(p + 1).copied().unwrap_or(total);
        let intervals =
            (end.saturating_sub(starts[p]).as_secs_f64() / INTERVAL.as_secs_f64()).ceil() as usize;
        while published[p] < intervals {
            let k = published[p];
            let done_at = sh.start + starts[p] + INTERVAL * (k as u32 + 1) + sh.plan.read_timeout;
            if !all && now < done_at {
                break;
            }
            let empty = Interval::default();
            series.publish(p, k, rec.series.intervals.get(k).unwrap_or(&empty));
            published[p] += 1;
        }
    }
}

/// The thread's event loop: runs ready tasks, sweeps read deadlines and
/// watches for the stop flag every `SWEEP_TICK` (the reactor's tick), and
/// waits on epoll until something happens or the next timer is due.
/// Returns when every slot is done, at `hard_end` (the end of the schedule
/// plus the grace), or at the end of the grace after Ctrl-C.
fn drive(
    ex: &LocalQueue,
    reactor: &Reactor,
    done: &Cell<bool>,
    sh: &Shared,
    stop: &AtomicBool,
    hard_end: Option<Instant>,
) {
    /// Tasks run between two looks at epoll, so a busy thread still reads
    /// new readiness and timers.
    const BATCH: usize = 256;
    // With the tick, a wait needs a timeout only for the reactor's timers
    // (open loop); without one (no timerfd), every wait ends by the next sweep.
    let ticking = reactor.start_tick(SWEEP_TICK).is_ok();
    let mut next_sweep = Instant::now() + SWEEP_TICK;
    let mut grace_end: Option<Instant> = None;
    // Half a second in, so the first progress line has a figure.
    let mut next_p99 = Instant::now() + Duration::from_millis(500);
    let mut iteration = Instant::now();
    // The loop's own time and its time waiting in epoll since the last
    // sweep, added to the books of the phase running at each sweep (not
    // per iteration: this loop is the engine's hot path).
    let mut clock = LoopClock::default();
    loop {
        let mut ran = 0;
        while ran < BATCH && ex.try_tick() {
            ran += 1;
        }
        if done.get() {
            clock.flush(sh, iteration);
            return;
        }
        let now = Instant::now();
        let sweep = reactor.take_tick().unwrap_or(now >= next_sweep);
        if sweep {
            clock.flush(sh, now);
            next_sweep = now + SWEEP_TICK;
            for d in sh.deadlines.borrow().iter() {
                d.sweep(now);
            }
            if hard_end.is_some_and(|e| now >= e) || grace_end.is_some_and(|e| now >= e) {
                return;
            }
            if grace_end.is_none() && stop.load(Ordering::Relaxed) {
                // Ctrl-C: in-flight requests get the grace; sleeping slots
                // wake now and see the flag.
                grace_end = Some(now + sh.plan.grace);
                reactor.fire_all_timers();
            }
            if now >= next_p99 {
                // Progress shows the p99 so far; computing it walks the
                // histogram, so once a second is enough.
                next_p99 = now + Duration::from_secs(1);
                let k = match &sh.plan.profile {
                    Some(p) => p.segment_at(sh.offset(now)),
                    None => 0,
                };
                let p99 = sh.recs.borrow()[k].response.value_at_quantile(0.99);
                sh.live.p99_us.store(p99, Ordering::Relaxed);
                publish(sh, now, false);
            }
        }
        let timeout = if ran == BATCH {
            Some(Duration::ZERO)
        } else {
            let sweep_at = (!ticking).then_some(next_sweep);
            let until = match (reactor.next_timer(), sweep_at) {
                (Some(t), Some(s)) => Some(t.min(s)),
                (t, s) => t.or(s),
            };
            until.map(|u| u.saturating_duration_since(now))
        };
        let waited = reactor.wait(timeout);
        // How much of its time the loop spends waiting for the network:
        // a loop that never waits is the run's bottleneck itself.
        let after = Instant::now();
        clock.time += after - iteration;
        if timeout != Some(Duration::ZERO) {
            clock.idle += after - now;
        }
        iteration = after;
        if let Err(e) = waited {
            clock.flush(sh, after);
            tracing::error!("epoll wait failed on a load thread: {e}");
            return;
        }
    }
}

/// A load thread's event-loop time not yet in the books.
#[derive(Default)]
struct LoopClock {
    time: Duration,
    idle: Duration,
}

impl LoopClock {
    /// Adds the time so far to the books of the phase running at `now`.
    fn flush(&mut self, sh: &Shared, now: Instant) {
        let k = match &sh.plan.profile {
            Some(p) => p.segment_at(sh.offset(now)),
            None => 0,
        };
        let mut recs = sh.recs.borrow_mut();
        recs[k].loop_time += std::mem::take(&mut self.time);
        recs[k].loop_idle += std::mem::take(&mut self.idle);
    }
}
