//! Running a plan: `--threads` OS threads, each with its own single-threaded
//! executor (async-io's reactor plus an `async_executor::LocalExecutor`)
//! driving its share of the connection slots, and the calling thread waiting
//! and reporting progress. Stopping (the end of `--duration`, Ctrl-C and the
//! grace after it) is decided here; what one slot does is `conn`'s.

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_executor::LocalExecutor;
use async_io::Timer;
use futures_lite::future;

use crate::conn::{LiveSlot, SWEEP_TICK, Shared, slot_task};
use crate::measure::Recorder;
use crate::plan::Plan;

/// A finished (or stopped) run.
#[derive(Debug)]
pub struct RunResult {
    pub recorder: Recorder,
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
}

/// Runs `plan` to the end, or until `stop` is set (then in-flight requests
/// get `plan.grace` to finish). `progress` is called about once a second on
/// the calling thread.
pub fn run(plan: &Plan, stop: &Arc<AtomicBool>, mut progress: impl FnMut(&Snapshot)) -> RunResult {
    let plan = Arc::new(plan.clone());
    let threads = plan.threads.max(1);
    let lives: Vec<Arc<LiveSlot>> = (0..threads).map(|_| Arc::default()).collect();
    let started_at = SystemTime::now();
    let start = Instant::now();
    let end = plan.duration.map(|d| start + d);
    let mut merged = Recorder::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let plan = plan.clone();
                let stop = stop.clone();
                let live = lives[t].clone();
                std::thread::Builder::new()
                    .name(format!("floodgate-load-{t}"))
                    .spawn_scoped(scope, move || {
                        thread_main(plan, t, threads, start, end, stop, live)
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
                Ok(rec) => merged.merge(&rec),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    RunResult {
        recorder: merged,
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
    }
}

fn thread_main(
    plan: Arc<Plan>,
    t: usize,
    threads: usize,
    start: Instant,
    end: Option<Instant>,
    stop: Arc<AtomicBool>,
    live: Arc<LiveSlot>,
) -> Recorder {
    let grace = plan.grace;
    let sh = Rc::new(Shared {
        plan: plan.clone(),
        start,
        end,
        stop: stop.clone(),
        rec: Default::default(),
        live,
        deadlines: Default::default(),
    });
    let ex = LocalExecutor::new();
    let tasks: Vec<_> = (t..plan.connections)
        .step_by(threads)
        .map(|i| ex.spawn(slot_task(sh.clone(), i)))
        .collect();
    let all = async {
        for task in tasks {
            task.await;
        }
    };
    // Past the end of the schedule, in-flight requests get the grace; then
    // the remaining tasks are dropped and count as cancelled.
    let hard_end = end.map(|e| e + grace);
    // The sweeper: fires read deadlines, and watches the stop flag and the
    // hard end, every SWEEP_TICK.
    let stopper = async {
        let mut tick = Timer::interval(SWEEP_TICK);
        loop {
            (&mut tick).await;
            let now = Instant::now();
            for d in sh.deadlines.borrow().iter() {
                d.sweep(now);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if hard_end.is_some_and(|e| now >= e) {
                return;
            }
        }
        // Ctrl-C: in-flight requests get the grace, deadlines still sweep.
        let grace_end = Instant::now() + grace;
        while Instant::now() < grace_end {
            (&mut tick).await;
            let now = Instant::now();
            for d in sh.deadlines.borrow().iter() {
                d.sweep(now);
            }
        }
    };
    async_io::block_on(ex.run(future::or(all, stopper)));
    // Dropping the executor drops unfinished tasks, whose guards record
    // their requests as cancelled.
    drop(ex);
    sh.rec.take()
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, so thousands of
/// connections do not hit EMFILE at the default soft limit of 1024.
/// Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}
