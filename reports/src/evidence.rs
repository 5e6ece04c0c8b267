//! What the kernel said about a run, as data: the TcpExt/Tcp counters
//! floodgate explains overflows with and their deltas, and the evidence
//! timeline (phases, listener samples). Reading them from `/proc` and
//! sock_diag is floodgate-kernel's job; interpreting them is `verdict`'s.

use serde::{Deserialize, Serialize};

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
    /// start: counters added, phases and samples moved by the offset.
    pub fn append(&mut self, next: &EvidenceReport, offset_ms: u64) {
        let c = &mut self.counters;
        let n = &next.counters;
        for (a, b) in [
            (&mut c.listen_overflows, n.listen_overflows),
            (&mut c.listen_drops, n.listen_drops),
            (
                &mut c.tcp_req_q_full_do_cookies,
                n.tcp_req_q_full_do_cookies,
            ),
            (&mut c.tcp_req_q_full_drop, n.tcp_req_q_full_drop),
            (&mut c.syncookies_sent, n.syncookies_sent),
            (&mut c.syncookies_recv, n.syncookies_recv),
            (&mut c.syncookies_failed, n.syncookies_failed),
            (&mut c.embryonic_rsts, n.embryonic_rsts),
            (&mut c.tcp_syn_retrans, n.tcp_syn_retrans),
            (&mut c.active_opens, n.active_opens),
            (&mut c.passive_opens, n.passive_opens),
            (&mut c.attempt_fails, n.attempt_fails),
            (&mut c.out_rsts, n.out_rsts),
        ] {
            *a += b;
        }
        self.local_port = self.local_port.or(next.local_port);
        self.interval_ms = next.interval_ms;
        self.duration_ms = offset_ms + next.duration_ms;
        self.phases.extend(next.phases.iter().map(|p| Phase {
            start_ms: p.start_ms + offset_ms,
            end_ms: p.end_ms + offset_ms,
            ..p.clone()
        }));
        self.samples.extend(next.samples.iter().map(|s| Sample {
            t_ms: s.t_ms + offset_ms,
            ..*s
        }));
        self.samples_dropped += next.samples_dropped;
        self.listener_seen |= next.listener_seen;
        self.backlog = next.backlog.or(self.backlog);
        self.max_queue_depth = self.max_queue_depth.max(next.max_queue_depth);
        self.max_syn_recv = self.max_syn_recv.max(next.max_syn_recv);
        self.full_ms += next.full_ms;
        self.errors.extend(next.errors.iter().cloned());
    }

    /// The share of this timeline that phase `name` covers: its counter
    /// deltas, its samples, and the figures drawn from them; `None` when
    /// no phase has that name.
    pub fn phase(&self, name: &str) -> Option<EvidenceReport> {
        let p = self.phases.iter().find(|p| p.name == name)?;
        let samples: Vec<Sample> = self
            .samples
            .iter()
            .filter(|s| (p.start_ms..=p.end_ms).contains(&s.t_ms))
            .copied()
            .collect();
        Some(EvidenceReport {
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
            samples,
            samples_dropped: self.samples_dropped,
            errors: self.errors.clone(),
        })
    }
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
