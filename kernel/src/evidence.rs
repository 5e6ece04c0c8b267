//! The evidence recorder: a background thread that, for the length of a run,
//! samples a local listener's queues through sock_diag and the TcpExt
//! counters at a fixed interval, and hands back a serialisable timeline.
//!
//! Every [`TICK`] (and at each phase mark and the finish) it reads all the
//! counters and keeps the change since the tick before, when there is one,
//! so a run's intervals can each take their own counter deltas.
//!
//! One thread named `floodgate-evidence` exists between [`Evidence::start`]
//! and [`Recorder::finish`]; it waits on a channel with a timeout, so a
//! finish or a phase mark is handled at once rather than after a sleep.
//! Memory is bounded: past [`MAX_SAMPLES`] samples and [`MAX_TICKS`] ticks
//! they are counted, not kept.

use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floodgate_reports::evidence::{CounterTick, EvidenceReport, Phase, Sample};

use super::counters::{CounterFiles, Counters, CountersError};
use super::diag::{Diag, local_listener};

/// Samples kept per run: 2.7 hours at 10 Hz.
pub const MAX_SAMPLES: usize = 100_000;

/// How often every counter is read, for the per-interval deltas: a change
/// is attributed to the interval it was read in, at most this late.
pub const TICK: Duration = Duration::from_millis(250);

/// Ticks with a change kept per run: 3.5 hours of counters that change
/// at every tick (a connection-churning load), 5.6 MB.
pub const MAX_TICKS: usize = 50_000;

/// The slowest sampling interval the recorder accepts: 10 Hz.
pub const MAX_INTERVAL: Duration = Duration::from_millis(100);

/// Why the recorder could not start.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("sampling interval {0:?} is outside 1 ms..=100 ms (10 Hz or faster)")]
    Interval(Duration),
    #[error(transparent)]
    Counters(#[from] CountersError),
    #[error("cannot start the evidence thread: {0}")]
    Spawn(std::io::Error),
}

/// Entry point: `Evidence::for_target(addr, Duration::from_millis(50))`.
pub struct Evidence;

impl Evidence {
    /// Starts recording for a run against `target`, if its listener is in
    /// this network namespace: the counters and sock_diag describe only this
    /// namespace, so for any other target there is nothing to record and
    /// this gives `Ok(None)`. `interval` must be at most 100 ms.
    ///
    /// This is the one place that decides whether kernel counters are read
    /// for a target; callers never read them for a target that is not local.
    pub fn for_target(
        target: SocketAddr,
        interval: Duration,
    ) -> Result<Option<Recorder>, EvidenceError> {
        if local_listener(target).is_none() {
            return Ok(None);
        }
        Evidence::start(Some(target.port()), interval).map(Some)
    }

    /// Starts recording. `local_port` is the listener's port to sample
    /// (`None`: only the counters are recorded, at marks and the finish).
    pub(crate) fn start(
        local_port: Option<u16>,
        interval: Duration,
    ) -> Result<Recorder, EvidenceError> {
        if interval.is_zero() || interval > MAX_INTERVAL {
            return Err(EvidenceError::Interval(interval));
        }
        // Opened in the caller's network namespace, which the sampling
        // thread shares; it reads through these same files.
        let mut files = CounterFiles::open()?;
        let base = files.read()?;
        let started = Instant::now();
        let started_at = SystemTime::now();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("floodgate-evidence".into())
            .spawn(move || {
                let mut report = sample_loop(rx, files, local_port, interval, base, started);
                report.started_at_unix_s = started_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                report
            })
            .map_err(EvidenceError::Spawn)?;
        Ok(Recorder {
            tx,
            thread: Some(thread),
        })
    }
}

/// A running recorder. Dropping it without [`Recorder::finish`] stops the
/// thread and discards the timeline.
pub struct Recorder {
    /// Commands to the sampling thread; the thread also stops when this
    /// sender is dropped.
    tx: mpsc::Sender<Command>,
    thread: Option<JoinHandle<EvidenceReport>>,
}

enum Command {
    Mark(String),
    Finish,
}

impl Recorder {
    /// Closes the current phase and opens one called `name` (the first phase,
    /// from `start`, is called `run`). Counter deltas are kept per phase.
    pub fn mark(&self, name: &str) {
        let _ = self.tx.send(Command::Mark(name.to_owned()));
    }

    /// Stops sampling and returns the timeline. Takes one last sample first,
    /// so the totals include everything up to this call.
    pub fn finish(mut self) -> EvidenceReport {
        let _ = self.tx.send(Command::Finish);
        let thread = self.thread.take().expect("finish consumes the recorder");
        match thread.join() {
            Ok(report) => report,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.tx.send(Command::Finish);
            let _ = thread.join();
        }
    }
}

const MAX_ERRORS: usize = 8;

fn sample_loop(
    rx: mpsc::Receiver<Command>,
    mut files: CounterFiles,
    port: Option<u16>,
    interval: Duration,
    base: Counters,
    started: Instant,
) -> EvidenceReport {
    let ms = |at: Instant| at.duration_since(started).as_millis() as u64;
    let mut report = EvidenceReport {
        local_port: port,
        interval_ms: interval.as_millis() as u64,
        ..EvidenceReport::default()
    };
    // The socket is opened here, in the sampling thread's namespace, which a
    // new thread shares with the thread that started it.
    let mut diag = match port.map(|_| Diag::open()).transpose() {
        Ok(d) => d,
        Err(e) => {
            note_error(&mut report, e.to_string());
            None
        }
    };
    let mut phase_name = "run".to_owned();
    let mut phase_start = (started, base);
    let mut last = base;
    let mut next = started;
    // The counters at the last tick, and when the next is due.
    let mut ticked = base;
    let mut next_tick = started + TICK;
    loop {
        let now = Instant::now();
        // Without a listener to sample, the ticks, marks and the finish
        // read the counters.
        let wake = if diag.is_none() { next_tick } else { next };
        let command = match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Command::Finish),
        };
        let now = Instant::now();
        let previous = last;
        // A listener sample needs the TcpExt counters alone; a tick and a
        // phase's bounds need them all.
        let tick = command.is_some() || now >= next_tick;
        let read = if tick {
            files.read().map(|c| last = c)
        } else {
            files.refresh_tcp_ext(&mut last)
        };
        if let Err(e) = read {
            note_error(&mut report, e.to_string());
        }
        if tick {
            keep_tick(&mut report, ms(now), last.since(&ticked));
            ticked = last;
            next_tick += TICK;
            if next_tick <= now {
                next_tick = now + TICK;
            }
        }
        if let (Some(port), Some(diag)) = (port, &mut diag) {
            take_sample(
                &mut report,
                diag,
                port,
                ms(now),
                last.since(&base).listen_overflows,
                syn_activity(&previous, &last),
            );
        }
        match command {
            None => next += interval,
            Some(Command::Mark(name)) => {
                report.phases.push(Phase {
                    name: std::mem::replace(&mut phase_name, name),
                    start_ms: ms(phase_start.0),
                    end_ms: ms(now),
                    counters: last.since(&phase_start.1),
                });
                phase_start = (now, last);
            }
            Some(Command::Finish) => {
                report.phases.push(Phase {
                    name: phase_name,
                    start_ms: ms(phase_start.0),
                    end_ms: ms(now),
                    counters: last.since(&phase_start.1),
                });
                report.counters = last.since(&base);
                report.duration_ms = ms(now);
                return report;
            }
        }
        // A slow sampler (a loaded machine) skips missed ticks instead of
        // bursting to catch up.
        if next < now {
            next = now + interval;
        }
    }
}

/// Keeps a tick's counter change, if there was one and there is room.
fn keep_tick(
    report: &mut EvidenceReport,
    t_ms: u64,
    counters: floodgate_reports::evidence::CounterDelta,
) {
    if counters == Default::default() {
        return;
    }
    if report.counter_ticks.len() < MAX_TICKS {
        report.counter_ticks.push(CounterTick { t_ms, counters });
    } else {
        report.ticks_dropped += 1;
    }
}

/// Whether a SYN was dropped, or answered with a cookie, between two
/// counter readings: a sign the SYN queue may be under pressure.
fn syn_activity(before: &Counters, after: &Counters) -> bool {
    after.listen_drops != before.listen_drops
        || after.tcp_req_q_full_do_cookies != before.tcp_req_q_full_do_cookies
        || after.tcp_req_q_full_drop != before.tcp_req_q_full_drop
        || after.syncookies_sent != before.syncookies_sent
}

fn take_sample(
    report: &mut EvidenceReport,
    diag: &mut Diag,
    port: u16,
    t_ms: u64,
    listen_overflows: u64,
    syn_activity: bool,
) {
    let listeners = match diag.port_listeners(port) {
        Ok(l) => l,
        Err(e) => return note_error(report, e.to_string()),
    };
    if listeners.is_empty() {
        return;
    }
    let queue_depth = listeners.iter().map(|l| l.queue_depth).sum();
    let backlog = listeners.iter().map(|l| l.backlog).sum();
    // Counting SYN-RECV walks every TCP socket in the namespace (see
    // `port_state`); at 20 Hz that was a fifth of a closed-loop run's CPU.
    // The SYN queue can only be under pressure while connections wait in the
    // accept queue or SYNs are being dropped or answered with cookies, so
    // only then is it counted.
    let syn_recv = if queue_depth > 0 || syn_activity {
        match diag.port_state(port) {
            Ok(s) => Some(s.syn_recv),
            Err(e) => {
                note_error(report, e.to_string());
                None
            }
        }
    } else {
        None
    };
    let sample = Sample {
        t_ms,
        queue_depth,
        backlog,
        syn_recv,
        listen_overflows,
    };
    report.listener_seen = true;
    report.backlog = Some(sample.backlog);
    report.max_queue_depth = report.max_queue_depth.max(sample.queue_depth);
    report.max_syn_recv = report.max_syn_recv.max(sample.syn_recv.unwrap_or(0));
    if sample.queue_depth > sample.backlog {
        report.full_ms += report.interval_ms;
    }
    if report.samples.len() < MAX_SAMPLES {
        report.samples.push(sample);
    } else {
        report.samples_dropped += 1;
    }
}

fn note_error(report: &mut EvidenceReport, error: String) {
    if report.errors.len() < MAX_ERRORS && !report.errors.contains(&error) {
        report.errors.push(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::net::{SocketAddr, TcpStream};

    #[test]
    fn records_a_filling_accept_queue_at_ten_hertz_or_faster() {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        listener.bind(&any.into()).unwrap();
        listener.listen(16).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let recorder = Evidence::start(Some(addr.port()), Duration::from_millis(20)).unwrap();
        let clients: Vec<_> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        recorder.mark("filled");
        // Wait (bounded) until the sampler has seen the queue holding all four.
        let deadline = Instant::now() + Duration::from_secs(2);
        while crate::port_state(addr.port()).unwrap().queue_depth() < 4 {
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(250) {
            std::thread::park_timeout(Duration::from_millis(250) - started.elapsed());
        }
        let report = recorder.finish();
        drop(clients);
        assert!(report.listener_seen);
        assert_eq!(report.backlog, Some(16));
        assert_eq!(report.max_queue_depth, 4);
        // 250 ms at a 20 ms interval: at least 10 Hz means at least 3 samples.
        assert!(
            report.samples.len() >= 3,
            "{} samples",
            report.samples.len()
        );
        assert_eq!(
            report
                .phases
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["run", "filled"]
        );
        assert_eq!(report.full_ms, 0);
        // The counter ticks hold every change the whole-run delta has (the
        // four connects at least), at times inside the run, on a wall clock.
        let mut ticked = floodgate_reports::evidence::Counters::default();
        for t in &report.counter_ticks {
            assert!(t.t_ms <= report.duration_ms);
            ticked.add(&t.counters);
        }
        assert_eq!(report.ticks_dropped, 0);
        assert_eq!(ticked, report.counters);
        assert!(report.counters.active_opens >= 4);
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - report.started_at_unix_s).abs() < 60.0);
    }

    #[test]
    fn rejects_intervals_slower_than_ten_hertz() {
        let err = Evidence::start(None, Duration::from_millis(500))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "sampling interval 500ms is outside 1 ms..=100 ms (10 Hz or faster)"
        );
    }
}
