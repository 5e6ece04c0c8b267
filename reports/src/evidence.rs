//! What the kernel said about a run, as data: the TcpExt/Tcp counters
//! floodgate explains overflows with and their deltas, and the evidence
//! timeline (phases, listener samples, counter ticks), anchored to the wall
//! clock so a run's intervals can take their share of it
//! ([`EvidenceReport::queue_between`], [`EvidenceReport::counters_between`]).
//! Reading them from `/proc` and sock_diag is floodgate-kernel's job;
//! interpreting them is `verdict`'s.

use serde::{Deserialize, Serialize};

use crate::series::QueueInterval;

/// The counters floodgate explains overflows with, at one instant.
///
/// Field names are the kernel's (`ListenOverflows` is `listen_overflows`).
/// A counter the running kernel does not have reads as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// TcpExt ListenOverflows: a SYN or a handshake's final ACK arrived while
    /// the accept queue was full, and was dropped.
    pub listen_overflows: u64,
    /// TcpExt ListenDrops: every packet dropped by a listener, overflows
    /// included.
    pub listen_drops: u64,
    /// TcpExt TCPReqQFullDoCookies: the SYN queue was full and a SYN cookie
    /// was sent instead.
    pub tcp_req_q_full_do_cookies: u64,
    /// TcpExt TCPReqQFullDrop: the SYN queue was full and the SYN dropped
    /// (syncookies off).
    pub tcp_req_q_full_drop: u64,
    /// TcpExt SyncookiesSent.
    pub syncookies_sent: u64,
    /// TcpExt SyncookiesRecv: valid cookies received back.
    pub syncookies_recv: u64,
    /// TcpExt SyncookiesFailed: cookies received back that did not validate.
    pub syncookies_failed: u64,
    /// TcpExt EmbryonicRsts: resets sent for handshakes that could not
    /// complete, which `tcp_abort_on_overflow=1` produces.
    pub embryonic_rsts: u64,
    /// TcpExt TCPSynRetrans: SYN and SYN-ACK retransmissions.
    pub tcp_syn_retrans: u64,
    /// Tcp ActiveOpens: connects started in this namespace.
    pub active_opens: u64,
    /// Tcp PassiveOpens: handshakes completed by listeners.
    pub passive_opens: u64,
    /// Tcp AttemptFails: connects that failed (timed out or were reset).
    pub attempt_fails: u64,
    /// Tcp OutRsts: resets sent.
    pub out_rsts: u64,
}

/// `after - before` for every counter, saturating at 0 (a counter never
/// goes down unless the namespace was replaced between the snapshots).
pub type CounterDelta = Counters;

impl Counters {
    /// The change from `before` to `self`.
    pub fn since(&self, before: &Counters) -> CounterDelta {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Counters {
            listen_overflows: d(self.listen_overflows, before.listen_overflows),
            listen_drops: d(self.listen_drops, before.listen_drops),
            tcp_req_q_full_do_cookies: d(
                self.tcp_req_q_full_do_cookies,
                before.tcp_req_q_full_do_cookies,
            ),
            tcp_req_q_full_drop: d(self.tcp_req_q_full_drop, before.tcp_req_q_full_drop),
            syncookies_sent: d(self.syncookies_sent, before.syncookies_sent),
            syncookies_recv: d(self.syncookies_recv, before.syncookies_recv),
            syncookies_failed: d(self.syncookies_failed, before.syncookies_failed),
            embryonic_rsts: d(self.embryonic_rsts, before.embryonic_rsts),
            tcp_syn_retrans: d(self.tcp_syn_retrans, before.tcp_syn_retrans),
            active_opens: d(self.active_opens, before.active_opens),
            passive_opens: d(self.passive_opens, before.passive_opens),
            attempt_fails: d(self.attempt_fails, before.attempt_fails),
            out_rsts: d(self.out_rsts, before.out_rsts),
        }
    }

    /// Adds `other` to every counter.
    pub fn add(&mut self, other: &Counters) {
        for (a, b) in self.fields_mut().into_iter().zip(other.fields()) {
            *a += b;
        }
    }

    fn fields(&self) -> [u64; 13] {
        [
            self.listen_overflows,
            self.listen_drops,
            self.tcp_req_q_full_do_cookies,
            self.tcp_req_q_full_drop,
            self.syncookies_sent,
            self.syncookies_recv,
            self.syncookies_failed,
            self.embryonic_rsts,
            self.tcp_syn_retrans,
            self.active_opens,
            self.passive_opens,
            self.attempt_fails,
            self.out_rsts,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 13] {
        [
            &mut self.listen_overflows,
            &mut self.listen_drops,
            &mut self.tcp_req_q_full_do_cookies,
            &mut self.tcp_req_q_full_drop,
            &mut self.syncookies_sent,
            &mut self.syncookies_recv,
            &mut self.syncookies_failed,
            &mut self.embryonic_rsts,
            &mut self.tcp_syn_retrans,
            &mut self.active_opens,
            &mut self.passive_opens,
            &mut self.attempt_fails,
            &mut self.out_rsts,
        ]
    }

    /// True when no overflow-related counter moved (the Tcp open counters
    /// are ignored: they move with any traffic).
    pub fn no_overflow_signs(&self) -> bool {
        self.listen_overflows == 0
            && self.listen_drops == 0
            && self.tcp_req_q_full_do_cookies == 0
            && self.tcp_req_q_full_drop == 0
            && self.syncookies_sent == 0
            && self.embryonic_rsts == 0
    }
}

/// The recorded timeline of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvidenceReport {
    /// The wall-clock time (Unix seconds) that `t_ms` and the phases count
    /// from; 0 (and absent from the file) in files written before it
    /// existed.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub started_at_unix_s: f64,
    /// The listener port sampled, if the target was local.
    pub local_port: Option<u16>,
    pub interval_ms: u64,
    pub duration_ms: u64,
    /// Counter changes over the whole run.
    pub counters: CounterDelta,
    /// Counter changes per phase, in order.
    pub phases: Vec<Phase>,
    /// Listener samples (empty when no port was given).
    pub samples: Vec<Sample>,
    /// Samples taken but not kept because the sampler's limit was reached.
    pub samples_dropped: u64,
    /// The counters read every few hundred milliseconds: each tick is the
    /// change since the tick before, and only ticks with a change are kept.
    /// They sum to `counters` unless ticks were dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counter_ticks: Vec<CounterTick>,
    /// Ticks with a change not kept because the recorder's limit was
    /// reached; counter changes after the last tick kept are in `counters`
    /// only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ticks_dropped: u64,
    /// Whether sock_diag ever found a listener on the port.
    pub listener_seen: bool,
    /// The listener's backlog as sock_diag reported it (last seen).
    pub backlog: Option<u32>,
    /// The deepest accept queue seen.
    pub max_queue_depth: u32,
    /// The most SYN-RECV request sockets seen at once, over the samples that
    /// counted them.
    pub max_syn_recv: u32,
    /// Time the accept queue was sampled full (`depth > backlog`, that is
    /// `backlog + 1` connections waiting), in ms: samples seen full times the
    /// interval.
    pub full_ms: u64,
    /// Sampling failures (first few only), so a gap in the timeline is
    /// explained rather than silent.
    pub errors: Vec<String>,
}

impl EvidenceReport {
    /// Appends `next`, recorded from `offset_ms` after this timeline's
    /// start: counters added, phases and samples moved by the offset (and
    /// moved, not copied: a long run's samples are held once).
    pub fn append(&mut self, next: EvidenceReport, offset_ms: u64) {
        self.counters.add(&next.counters);
        if self.started_at_unix_s == 0.0 {
            self.started_at_unix_s = next.started_at_unix_s - offset_ms as f64 / 1000.0;
        }
        self.local_port = self.local_port.or(next.local_port);
        self.interval_ms = next.interval_ms;
        self.duration_ms = offset_ms + next.duration_ms;
        self.phases.extend(next.phases.into_iter().map(|p| Phase {
            start_ms: p.start_ms + offset_ms,
            end_ms: p.end_ms + offset_ms,
            ..p
        }));
        let moved = |mut s: Sample| {
            s.t_ms += offset_ms;
            s
        };
        if self.samples.is_empty() {
            self.samples = next.samples.into_iter().map(moved).collect();
        } else {
            self.samples.extend(next.samples.into_iter().map(moved));
        }
        self.samples_dropped += next.samples_dropped;
        self.counter_ticks
            .extend(next.counter_ticks.into_iter().map(|t| CounterTick {
                t_ms: t.t_ms + offset_ms,
                ..t
            }));
        self.ticks_dropped += next.ticks_dropped;
        self.listener_seen |= next.listener_seen;
        self.backlog = next.backlog.or(self.backlog);
        self.max_queue_depth = self.max_queue_depth.max(next.max_queue_depth);
        self.max_syn_recv = self.max_syn_recv.max(next.max_syn_recv);
        self.full_ms += next.full_ms;
        self.errors.extend(next.errors);
    }

    /// The share of this timeline that phase `name` covers: its counter
    /// deltas and the figures drawn from its samples (deepest queue, time
    /// full, most SYN-RECV), but not the samples or ticks themselves, which
    /// stay in this timeline once (a scenario report's `evidence`): read a
    /// phase's slice by wall-clock time with [`EvidenceReport::samples_between`]
    /// and [`EvidenceReport::ticks_between`]. `None` when no phase has that
    /// name.
    pub fn phase(&self, name: &str) -> Option<EvidenceReport> {
        let p = self.phases.iter().find(|p| p.name == name)?;
        let samples = self.samples_in(p.start_ms as f64, p.end_ms as f64 + 1.0);
        Some(EvidenceReport {
            started_at_unix_s: self.started_at_unix_s,
            local_port: self.local_port,
            interval_ms: self.interval_ms,
            duration_ms: p.end_ms.saturating_sub(p.start_ms),
            counters: p.counters,
            phases: vec![p.clone()],
            max_queue_depth: samples.iter().map(|s| s.queue_depth).max().unwrap_or(0),
            max_syn_recv: samples.iter().filter_map(|s| s.syn_recv).max().unwrap_or(0),
            full_ms: samples.iter().filter(|s| s.queue_depth > s.backlog).count() as u64
                * self.interval_ms,
            listener_seen: self.listener_seen,
            backlog: self.backlog,
            samples: Vec::new(),
            samples_dropped: self.samples_dropped,
            counter_ticks: Vec::new(),
            ticks_dropped: self.ticks_dropped,
            errors: self.errors.clone(),
        })
    }

    /// The samples taken in `[from, to)` (Unix seconds): a phase's or an
    /// interval's slice of the timeline, borrowed.
    pub fn samples_between(&self, from_unix_s: f64, to_unix_s: f64) -> &[Sample] {
        if self.started_at_unix_s <= 0.0 {
            return &[];
        }
        self.samples_in(self.ms_at(from_unix_s), self.ms_at(to_unix_s))
    }

    /// The counter ticks read in `[from, to)` (Unix seconds), borrowed.
    pub fn ticks_between(&self, from_unix_s: f64, to_unix_s: f64) -> &[CounterTick] {
        if self.started_at_unix_s <= 0.0 {
            return &[];
        }
        self.ticks_in(self.ms_at(from_unix_s), self.ms_at(to_unix_s))
    }

    /// The samples with `from <= t_ms < to` (ms into the timeline); the
    /// recorder keeps them in time order.
    fn samples_in(&self, from_ms: f64, to_ms: f64) -> &[Sample] {
        let lo = self.samples.partition_point(|s| (s.t_ms as f64) < from_ms);
        let hi = self.samples.partition_point(|s| (s.t_ms as f64) < to_ms);
        &self.samples[lo..hi.max(lo)]
    }

    /// The ticks with `from <= t_ms < to` (ms into the timeline).
    fn ticks_in(&self, from_ms: f64, to_ms: f64) -> &[CounterTick] {
        let lo = self
            .counter_ticks
            .partition_point(|t| (t.t_ms as f64) < from_ms);
        let hi = self
            .counter_ticks
            .partition_point(|t| (t.t_ms as f64) < to_ms);
        &self.counter_ticks[lo..hi.max(lo)]
    }

    /// `t` (Unix seconds) as milliseconds into this timeline.
    fn ms_at(&self, t_unix_s: f64) -> f64 {
        (t_unix_s - self.started_at_unix_s) * 1000.0
    }

    /// Whether the timeline covers `[from, to)` (Unix seconds) at all.
    fn overlaps(&self, from_unix_s: f64, to_unix_s: f64) -> bool {
        self.started_at_unix_s > 0.0
            && self.ms_at(to_unix_s) > 0.0
            && self.ms_at(from_unix_s) < self.duration_ms as f64
    }

    /// The accept queue over `[from, to)` (Unix seconds): the samples taken
    /// in it; `None` without one.
    pub fn queue_between(&self, from_unix_s: f64, to_unix_s: f64) -> Option<QueueInterval> {
        if !self.overlaps(from_unix_s, to_unix_s) {
            return None;
        }
        let (from, to) = (self.ms_at(from_unix_s), self.ms_at(to_unix_s));
        let mut q: Option<QueueInterval> = None;
        for s in self.samples_in(from, to) {
            let q = q.get_or_insert(QueueInterval {
                max_depth: 0,
                backlog: 0,
                samples: 0,
            });
            q.max_depth = q.max_depth.max(s.queue_depth);
            q.backlog = q.backlog.max(s.backlog);
            q.samples += 1;
        }
        q
    }

    /// The counter changes over `[from, to)` (Unix seconds): those of the
    /// ticks read in it (a tick's change is counted where it was read, so
    /// a change lands at most one tick late); `None` when the timeline does
    /// not cover the span, or its ticks stopped before it (dropped).
    pub fn counters_between(&self, from_unix_s: f64, to_unix_s: f64) -> Option<CounterDelta> {
        if !self.overlaps(from_unix_s, to_unix_s) {
            return None;
        }
        let (from, to) = (self.ms_at(from_unix_s), self.ms_at(to_unix_s));
        let last_kept = self.counter_ticks.last().map_or(0, |t| t.t_ms);
        if self.ticks_dropped > 0 && to > last_kept as f64 {
            return None;
        }
        let mut sum = Counters::default();
        for t in self.ticks_in(from, to) {
            sum.add(&t.counters);
        }
        Some(sum)
    }
}

/// The change of the counters since the tick before, read `t_ms` into the
/// timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterTick {
    pub t_ms: u64,
    pub counters: CounterDelta,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_unset(t: &f64) -> bool {
    *t == 0.0
}

/// Counter deltas between two marks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub counters: CounterDelta,
}

/// One sample of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the recorder started.
    pub t_ms: u64,
    pub queue_depth: u32,
    pub backlog: u32,
    /// SYN-RECV request sockets on the port; `None` when not counted, which
    /// is whenever the accept queue was empty and no SYN had been dropped or
    /// answered with a cookie since the last sample (counting walks every
    /// TCP socket in the namespace).
    pub syn_recv: Option<u32>,
    /// ListenOverflows since the recorder started.
    pub listen_overflows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{STARTED_AT_UNIX_S, run};

    fn sample(t_ms: u64, queue_depth: u32) -> Sample {
        Sample {
            t_ms,
            queue_depth,
            backlog: 128,
            syn_recv: None,
            listen_overflows: 0,
        }
    }

    /// Two seconds of evidence from the sample scenario's start.
    fn timeline() -> EvidenceReport {
        let overflows = Counters {
            listen_overflows: 3,
            ..Counters::default()
        };
        let opens = Counters {
            active_opens: 4,
            passive_opens: 4,
            ..Counters::default()
        };
        let mut counters = overflows;
        counters.add(&opens);
        EvidenceReport {
            started_at_unix_s: STARTED_AT_UNIX_S,
            local_port: Some(8080),
            interval_ms: 50,
            duration_ms: 2_000,
            counters,
            samples: vec![sample(100, 2), sample(600, 5), sample(1_200, 1)],
            counter_ticks: vec![
                CounterTick {
                    t_ms: 250,
                    counters: overflows,
                },
                CounterTick {
                    t_ms: 1_250,
                    counters: opens,
                },
            ],
            listener_seen: true,
            backlog: Some(128),
            ..EvidenceReport::default()
        }
    }

    #[test]
    fn each_interval_takes_the_samples_and_ticks_of_its_own_wall_clock_span() {
        // The run starts half a second into the timeline: its first second
        // holds the samples at 600 and 1200 ms and the tick at 1250 ms.
        let run = run(0.5, 3, 1_000).with_evidence(timeline());
        let [first, second, third] = &run.intervals[..] else {
            panic!("three intervals");
        };
        assert_eq!(
            first.accept_queue,
            Some(QueueInterval {
                max_depth: 5,
                backlog: 128,
                samples: 2
            })
        );
        let k = first.kernel.unwrap();
        assert_eq!(
            (k.active_opens, k.passive_opens, k.listen_overflows),
            (4, 4, 0)
        );
        // Covered by the timeline, but nothing sampled or changed in it.
        assert_eq!(second.accept_queue, None);
        assert_eq!(second.kernel, Some(Counters::default()));
        // Past the timeline's end.
        assert_eq!((third.accept_queue, third.kernel), (None, None));
    }

    #[test]
    fn a_timeline_without_its_wall_clock_start_gives_intervals_nothing() {
        let mut old = timeline();
        old.started_at_unix_s = 0.0;
        let run = run(0.0, 2, 1_000).with_evidence(old);
        assert!(
            run.intervals
                .iter()
                .all(|i| i.accept_queue.is_none() && i.kernel.is_none())
        );
    }

    #[test]
    fn ticks_stopped_by_the_limit_leave_later_intervals_unknown() {
        let mut full = timeline();
        full.ticks_dropped = 1;
        let run = run(0.0, 2, 1_000).with_evidence(full);
        // The last tick kept is at 1250 ms: the first second is known, the
        // second (which it does not cover to its end) is not.
        assert_eq!(run.intervals[0].kernel.unwrap().listen_overflows, 3);
        assert_eq!(run.intervals[1].kernel, None);
    }

    #[test]
    fn a_phase_keeps_its_figures_and_leaves_its_samples_in_the_timeline() {
        let mut t = timeline();
        t.phases = vec![Phase {
            name: "late".into(),
            start_ms: 250,
            end_ms: 2_000,
            counters: Counters::default(),
        }];
        let p = t.phase("late").unwrap();
        // Its figures are those of the samples at 600 and 1200 ms (not the
        // one at 100 ms, before it): the deepest is 5.
        assert_eq!((p.max_queue_depth, p.backlog), (5, Some(128)));
        // The samples and ticks themselves are held once, by the timeline.
        assert!(p.samples.is_empty() && p.counter_ticks.is_empty());
        // A phase's slice, by wall-clock time: from 0.25 s into the
        // timeline to its end.
        let (from, to) = (STARTED_AT_UNIX_S + 0.25, STARTED_AT_UNIX_S + 2.0);
        let depths: Vec<u32> = t
            .samples_between(from, to)
            .iter()
            .map(|s| s.queue_depth)
            .collect();
        assert_eq!(depths, [5, 1]);
        // The tick at 250 ms holds changes from before the phase, but is
        // read at its start: it is the slice's.
        let ticks: Vec<u64> = t.ticks_between(from, to).iter().map(|t| t.t_ms).collect();
        assert_eq!(ticks, [250, 1_250]);
        assert!(t.samples_between(to, to + 1.0).is_empty());
    }

    #[test]
    fn append_moves_the_samples_and_ticks_by_the_offset() {
        let t = timeline();
        let mut whole = EvidenceReport::default();
        whole.append(t.clone(), 0);
        whole.append(t, 3_000);
        assert_eq!(whole.started_at_unix_s, STARTED_AT_UNIX_S);
        let at: Vec<u64> = whole.counter_ticks.iter().map(|t| t.t_ms).collect();
        assert_eq!(at, [250, 1_250, 3_250, 4_250]);
        let at: Vec<u64> = whole.samples.iter().map(|s| s.t_ms).collect();
        assert_eq!(at, [100, 600, 1_200, 3_100, 3_600, 4_200]);
    }
}
