//! A sharded scenario run (`floodgate run --shard i/N --start-at T`): what
//! a shard may run (`check`), the start barrier that lines shards on
//! different machines up by wall clock (`wait_until`), and the host name a
//! report records. Which requests a shard sends is loadgen's (`Plan::slots`:
//! the whole run's connection slots `i`, `i + N`, …, each with its
//! whole-run schedule); merging the shards' reports is `crate::merge`'s.
//!
//! Closed-loop phases (`closed`, `connect-storm`, `hold`) split their
//! connections only: a closed loop has no schedule to split, each shard's
//! connections send as fast as they are answered. A `find-capacity` phase
//! climbs a fixed ladder of rates (`crate::capacity::ladder`) rather than
//! searching: a shard that chose its next rate from its own share of the
//! measurements would walk different rates from the others; the merge
//! judges each rung on all shards' figures and replays the search over
//! them. `backlog-probe` is refused: N probes pausing one listener's accept
//! queue at once measure nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use floodgate_reports::scenario::Shard;

use crate::scenario::{PhaseKind, Scenario};

/// Why `scenario` cannot run as shard `shard`, one sentence per reason
/// (empty: it can). Checked before anything starts.
pub fn check(scenario: &Scenario, shard: Shard) -> Vec<String> {
    let mut why = Vec::new();
    if scenario.target.is_none() {
        why.push(format!(
            "--shard {shard} needs a target (--target URL or the scenario's `target`): \
             shards that each started a reference server of their own would load different servers"
        ));
    }
    if scenario.seed.is_none() {
        why.push(format!(
            "--shard {shard} needs the scenario's `seed` (or --set seed=N): every shard must draw \
             the same schedule, and without a seed each would pick its own"
        ));
    }
    for p in &scenario.phases {
        match &p.kind {
            PhaseKind::BacklogProbe(_) => why.push(format!(
                "phase {:?}: backlog-probe cannot run under --shard: it pauses the target's accept \
                 queue, and N shards pausing it at once measure nothing; run it unsharded",
                p.name
            )),
            PhaseKind::Pause { .. } => {}
            _ if p.load.connections < shard.count as usize => why.push(format!(
                "phase {:?}: {} connections cannot be split over {} shards: each shard needs one \
                 of its own (set `connections` to at least {})",
                p.name, p.load.connections, shard.count, shard.count
            )),
            _ => {}
        }
    }
    why
}

/// Waits until `at` (the start barrier), or until `stop` is set; returns
/// at once when `at` has passed, with a warning, since the shard is late
/// and its intervals will not line up with the others'.
pub fn wait_until(at: SystemTime, stop: &AtomicBool) {
    match at.duration_since(SystemTime::now()) {
        Ok(d) => tracing::info!(wait_s = d.as_secs_f64(), "waiting for --start-at"),
        Err(late) => {
            tracing::warn!(
                late_s = late.duration().as_secs_f64(),
                "--start-at has passed: starting now, out of step with the other shards"
            );
            return;
        }
    }
    // Short sleeps against the wall clock, so Ctrl-C is heard and a clock
    // step does not strand the wait.
    while !stop.load(Ordering::Relaxed) {
        match at.duration_since(SystemTime::now()) {
            Ok(left) if !left.is_zero() => {
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            _ => return,
        }
    }
}

/// This machine's name, as the kernel holds it.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
