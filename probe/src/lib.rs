//! The backlog probe: stop a listener from accepting, fire a bounded burst
//! of concurrent connects, count how many complete inside the first SYN
//! timeout (that is the accept queue's capacity, backlog + 1), read the queue
//! through sock_diag as corroboration, resume the listener and check that
//! every held connection is then served. [`run`] does it all and gives a
//! [`ProbeReport`].
//!
//! What to probe is a [`Config`] (`config`), which [`Config::new`] checks
//! and completes with the probe's rules (the backlog to expect, the burst
//! size, the limits). How the target is stopped is a
//! [`Pause`] (`pause`): the reference server's `/admin/pause-accept` endpoint
//! ([`PauseEndpoint`]), SIGSTOP/SIGCONT of a process ([`StopSignal`], which
//! resumes the process in `Drop` so no exit path leaves it stopped), or an
//! in-process listener that simply does not accept until told to
//! ([`HeldListener`]). `burst` fires the connects and counts them; `check` is
//! the served-after-resume check, which reads replies with the load
//! generator's parser, `floodgate_proto::client`. Starting a reference
//! server, namespaces and flags belong to the `floodgate` binary, not here.
//!
//! # Threads
//!
//! [`run`] works on the calling thread: connects are non-blocking and polled
//! with poll(2), and the serve check reads with timeouts. At run time there
//! are besides:
//!
//! - `floodgate-evidence`, the kernel evidence sampler, started by
//!   [`floodgate_kernel::Evidence::for_target`] when the target listens in
//!   this network namespace, from before the pause until the resume;
//! - `floodgate-held-listener`, the accept thread a [`HeldListener`] starts
//!   when it is resumed, joined when it is dropped;
//! - no thread but a process: a [`StopSignal`] runs a watchdog `/bin/sh`
//!   from its pause to its resume, which continues the target should the
//!   probe die first.

mod burst;
mod check;
mod config;
mod pause;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floodgate_kernel::{self as kernel, CounterDelta, Evidence, EvidenceReport};
use floodgate_reports::ProbeReport;
use floodgate_reports::verdict;

use burst::{Burst, fire};
use check::serve_check;
pub use config::{
    Config, ConfigError, ConfigInput, Field, MAX_CONNECTS, MAX_DESCRIPTORS, MAX_WINDOW,
    MIN_CONNECTS, MIN_WINDOW, ServeCheck, check_path,
};
pub use pause::{HeldListener, Pause, PauseEndpoint, StopSignal, process_stopped};

/// Why a probe failed. Every variant leaves the target resumed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot pause the target through {endpoint}: {reason}")]
    PauseEndpoint { endpoint: String, reason: String },
    #[error("cannot signal process {pid}: {error}")]
    Signal { pid: i32, error: io::Error },
    #[error("process {pid} did not stop within {waited:?} after SIGSTOP")]
    NotStopped { pid: i32, waited: Duration },
    #[error(
        "{0} connections were already waiting in the accept queue of {1} before the burst; is the target really paused?"
    )]
    QueueNotEmpty(u32, SocketAddr),
    #[error(
        "the accept pause ran out before the burst was counted, so the count would include \
         accepted connections; the machine may be too busy, or the burst too large (try fewer \
         connects)"
    )]
    PauseExpired,
    #[error("cannot open a client socket: {0}")]
    Socket(io::Error),
    #[error(
        "cannot raise the descriptor limit to {wanted}: {error}; raise the hard limit or fire \
         fewer connects"
    )]
    FdLimit { wanted: u64, error: io::Error },
    #[error("interrupted")]
    Interrupted,
}

/// Runs one probe. `pause` is resumed on every path out of this function;
/// `interrupted` (set by a signal handler) makes it stop early with
/// [`ProbeError::Interrupted`], also after resuming.
pub fn run(
    config: &Config,
    pause: &mut dyn Pause,
    interrupted: &AtomicBool,
) -> Result<ProbeReport, ProbeError> {
    let wanted = config.descriptors();
    kernel::raise_fd_limit(Some(wanted)).map_err(|error| ProbeError::FdLimit { wanted, error })?;

    let local = kernel::local_listener(config.target()).is_some();
    let counters_before = if local {
        kernel::read_counters().ok()
    } else {
        None
    };
    let recorder = Evidence::for_target(config.target(), Duration::from_millis(20))
        .ok()
        .flatten();

    let result = fire(config, pause, interrupted, local);
    // Resume on every path, including an error inside the burst.
    let resumed = pause.resume();
    let evidence = recorder.map(|r| r.finish());
    let mut burst = result?;
    resumed?;
    serve_check(config, &mut burst, pause.deadline(), interrupted)?;

    let counters = match (counters_before, kernel::read_counters().ok()) {
        (Some(b), Some(a)) if local => Some(a.since(&b)),
        _ => None,
    };
    Ok(build_report(
        config,
        pause.describe(),
        burst,
        local,
        counters,
        evidence,
    ))
}

fn build_report(
    config: &Config,
    pause: String,
    burst: Burst,
    local: bool,
    counters: Option<CounterDelta>,
    evidence: Option<EvidenceReport>,
) -> ProbeReport {
    let capacity = burst.served + burst.unserved;
    let mut report = ProbeReport {
        target: config.target(),
        capacity,
        implied_backlog: capacity.saturating_sub(1),
        configured_backlog: config.configured_backlog(),
        somaxconn: config.somaxconn(),
        clamped_backlog: config.clamped_backlog(),
        kernel_backlog: burst.kernel_backlog,
        queue_depth: burst.queue_depth,
        syn_recv: burst.syn_recv,
        pause,
        connects: burst.connects,
        timed_out: burst.timed_out,
        refused: burst.refused,
        reset: burst.reset,
        other_errors: burst.other_errors,
        syn_retransmitted: burst.syn_retransmitted,
        dropped_syns: burst.dropped_syns,
        window_ms: config.window().as_millis() as u64,
        served: burst.served,
        unserved: burst.unserved,
        local,
        counters,
        explanation: Vec::new(),
        verdict: verdict::diagnose(&verdict::Inputs::default()),
        evidence,
        netns: None,
    };
    report.conclude();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn probe_held(backlog: i32, connects: usize) -> ProbeReport {
        let mut held = HeldListener::bind("127.0.0.1:0".parse().unwrap(), backlog).unwrap();
        let target = held.local_addr();
        let config = Config::new(ConfigInput {
            target,
            connects: Some(connects),
            window: Duration::from_millis(300),
            serve_timeout: Duration::from_secs(5),
            check: ServeCheck::Http {
                path: "/health".into(),
            },
            configured_backlog: Some(backlog as u32),
            somaxconn: None,
            kernel_backlog: kernel::local_listener(target).map(|l| l.backlog()),
        })
        .unwrap();
        run(&config, &mut held, &AtomicBool::new(false)).unwrap()
    }

    #[test]
    fn held_listener_capacity_is_backlog_plus_one() {
        for backlog in [1, 8] {
            let r = probe_held(backlog, backlog as usize + 10);
            assert_eq!(r.capacity, backlog as u64 + 1, "{:#?}", r.explanation);
            assert_eq!(r.implied_backlog, backlog as u64);
            assert_eq!(r.timed_out, 9);
            assert_eq!(r.queue_depth, Some(backlog as u32 + 1));
            assert_eq!(r.kernel_backlog, Some(backlog as u32));
            assert_eq!(r.served, backlog as u64 + 1);
            assert_eq!(r.unserved, 0);
            assert!(r.local);
        }
    }

    fn remote_report() -> ProbeReport {
        let config = Config::new(ConfigInput {
            target: "192.0.2.7:80".parse().unwrap(),
            connects: Some(200),
            window: Duration::from_millis(900),
            serve_timeout: Duration::from_secs(5),
            check: ServeCheck::Http {
                path: "/health".into(),
            },
            configured_backlog: Some(1024),
            somaxconn: Some(128),
            kernel_backlog: None,
        })
        .unwrap();
        let burst = Burst {
            held: Vec::new(),
            connects: 200,
            timed_out: 71,
            refused: 0,
            reset: 0,
            other_errors: 0,
            syn_retransmitted: 0,
            dropped_syns: 71,
            queue_depth: None,
            kernel_backlog: None,
            syn_recv: None,
            served: 129,
            unserved: 0,
        };
        build_report(&config, "SIGSTOP".into(), burst, false, None, None)
    }

    /// The report counts what the burst held and carries the config's
    /// figures and rules; what they mean is floodgate-reports' (`explain`).
    #[test]
    fn remote_report_counts_the_held_connections() {
        let r = remote_report();
        assert_eq!(r.capacity, 129);
        assert_eq!(r.implied_backlog, 128);
        // This namespace's somaxconn says nothing of a target elsewhere.
        assert_eq!((r.somaxconn, r.clamped_backlog), (None, Some(1024)));
        assert_eq!((r.connects, r.timed_out, r.window_ms), (200, 71, 900));
        assert!(!r.local);
        assert!(r.explanation[0].contains("backlog 128 + 1"));
    }
}
