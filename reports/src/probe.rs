//! The backlog probe's report as data: what `floodgate probe backlog --out`
//! writes (schema in `reports/schema/probe.schema.json`), the plain-words
//! findings drawn from it, its verdict, and the rule that says whether the
//! measurement holds. Running the probe is floodgate-probe's job.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::evidence::{CounterDelta, EvidenceReport};
use crate::verdict::{self, ClientSignals, QueueSummary, Verdict};

/// What the probe found. `capacity` and `implied_backlog` are the fields
/// scripts rely on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub target: SocketAddr,
    /// Connects that completed inside the window while the target was
    /// paused: the accept queue's capacity.
    pub capacity: u64,
    /// `capacity - 1`: the backlog listen(2) ended up with.
    pub implied_backlog: u64,
    pub configured_backlog: Option<u32>,
    pub somaxconn: Option<u32>,
    /// `min(configured_backlog, somaxconn)`: what the kernel should use.
    pub clamped_backlog: Option<u32>,
    /// The listener's backlog as sock_diag reports it (local targets).
    pub kernel_backlog: Option<u32>,
    /// Connections waiting in the accept queue at the end of the window, as
    /// sock_diag reports it (local targets).
    pub queue_depth: Option<u32>,
    /// SYN-RECV request sockets of the port at the end of the window.
    pub syn_recv: Option<u32>,
    pub pause: String,
    pub connects: u64,
    pub timed_out: u64,
    pub refused: u64,
    pub reset: u64,
    pub other_errors: u64,
    /// Connected connects whose TCP_INFO showed SYN retransmits (expected 0:
    /// the window is shorter than the first retransmit).
    pub syn_retransmitted: u64,
    /// SYNs the client saw dropped, from TCP_INFO: each timed-out connect's
    /// first SYN and its retransmits, plus the retransmits of connects that
    /// completed late. In a namespace of its own this equals the
    /// ListenOverflows delta.
    pub dropped_syns: u64,
    pub window_ms: u64,
    /// Held connections answered with an HTTP response after the resume.
    pub served: u64,
    /// Held connections that got no response within `serve_timeout`.
    pub unserved: u64,
    /// True when the target was in this network namespace, so kernel
    /// counters and sock_diag describe it.
    pub local: bool,
    /// Counter deltas over the probe (local targets).
    pub counters: Option<CounterDelta>,
    /// Plain-words findings, one sentence each.
    pub explanation: Vec<String>,
    pub verdict: Verdict,
    pub evidence: Option<EvidenceReport>,
    /// The lab namespace the probe ran in (`--netns`), removed afterwards;
    /// `None` outside lab mode.
    pub netns: Option<String>,
}

impl ProbeReport {
    /// Fills in the explanation and the verdict from the figures.
    pub fn conclude(&mut self) {
        self.explanation = explain(self);
        self.verdict = verdict::diagnose(&verdict::Inputs {
            counters: self.counters,
            queue: self.evidence.as_ref().and_then(QueueSummary::from_evidence),
            client: ClientSignals {
                connects: self.connects,
                connect_timeouts: self.timed_out,
                syn_retransmitted: self.syn_retransmitted,
                resets: self.reset,
                refused: self.refused,
                ..ClientSignals::default()
            },
        });
    }

    /// Whether the figures measure the queue: it filled (some connects
    /// timed out), something was held, and every held connection was
    /// served after the resume. Otherwise the capacity is only a lower
    /// bound, or the target was not really paused.
    pub fn holds(&self) -> bool {
        self.timed_out > 0 && self.unserved == 0 && self.capacity > 0
    }
}

/// The findings, in plain words with their numbers.
pub fn explain(r: &ProbeReport) -> Vec<String> {
    let mut out = Vec::new();
    if r.capacity == 0 {
        out.push(format!(
            "no connect completed within {} ms: {} timed out, {} refused, {} reset; nothing to \
             measure (is {} listening, and was it paused rather than gone?)",
            r.window_ms, r.timed_out, r.refused, r.reset, r.target
        ));
        return out;
    }
    out.push(format!(
        "the accept queue held {} connections while the target was paused: backlog {} + 1",
        r.capacity, r.implied_backlog
    ));
    if r.timed_out == 0 {
        out.push(format!(
            "all {} connects completed, so the queue never filled: the capacity is at least {}; \
             fire more connects to measure it",
            r.connects, r.capacity
        ));
    } else {
        out.push(format!(
            "{} of {} connects did not complete within {} ms: their SYNs were dropped because \
             the queue was full",
            r.timed_out, r.connects, r.window_ms
        ));
    }
    match (r.configured_backlog, r.somaxconn, r.clamped_backlog) {
        (Some(asked), Some(max), Some(clamped)) if asked > max => out.push(format!(
            "backlog {asked} was asked for, but net.core.somaxconn is {max} in the target's \
             network namespace, so listen(2) clamped it to {clamped}; the queue holds {clamped} \
             + 1 = {}",
            u64::from(clamped) + 1
        )),
        (Some(asked), _, _) => out.push(format!(
            "backlog {asked} was asked for; the queue should hold {asked} + 1 = {}",
            u64::from(asked) + 1
        )),
        _ => {}
    }
    if let Some(expected) = r.clamped_backlog {
        if r.timed_out > 0 && u64::from(expected) != r.implied_backlog {
            out.push(format!(
                "MISMATCH: the measured backlog {} differs from the expected {expected}",
                r.implied_backlog
            ));
        }
    }
    if let (Some(depth), Some(backlog)) = (r.queue_depth, r.kernel_backlog) {
        let agree = if u64::from(depth) == r.capacity {
            "agrees"
        } else {
            "DISAGREES"
        };
        out.push(format!(
            "sock_diag {agree}: {depth} connections were waiting in the accept queue of a \
             listener with backlog {backlog}, {} SYN-RECV request sockets",
            r.syn_recv.unwrap_or(0)
        ));
    } else if !r.local {
        out.push(
            "the target is not in this network namespace: no sock_diag or counter evidence, the \
             count rests on the client side"
                .to_owned(),
        );
    }
    if let Some(c) = &r.counters {
        out.push(format!(
            "kernel counters: ListenOverflows +{}, ListenDrops +{}, TCPReqQFullDoCookies +{}, \
             TCPReqQFullDrop +{}, TCPSynRetrans +{}; the client saw {} SYNs dropped ({} timed-out \
             connects x (1 + their SYN retransmits), plus retransmits of late connects)",
            c.listen_overflows,
            c.listen_drops,
            c.tcp_req_q_full_do_cookies,
            c.tcp_req_q_full_drop,
            c.tcp_syn_retrans,
            r.dropped_syns,
            r.timed_out
        ));
    }
    if r.unserved == 0 {
        out.push(format!(
            "all {} held connections were served after the target resumed",
            r.served
        ));
    } else {
        out.push(format!(
            "{} of {} held connections got no response after the target resumed",
            r.unserved, r.capacity
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe of a target elsewhere that asked for 1024 under somaxconn 128:
    /// 129 held, 71 dropped, all served.
    fn remote_report() -> ProbeReport {
        let mut r = ProbeReport {
            target: "192.0.2.7:80".parse().unwrap(),
            capacity: 129,
            implied_backlog: 128,
            configured_backlog: Some(1024),
            somaxconn: Some(128),
            clamped_backlog: Some(128),
            kernel_backlog: None,
            queue_depth: None,
            syn_recv: None,
            pause: "SIGSTOP".into(),
            connects: 200,
            timed_out: 71,
            refused: 0,
            reset: 0,
            other_errors: 0,
            syn_retransmitted: 0,
            dropped_syns: 71,
            window_ms: 900,
            served: 129,
            unserved: 0,
            local: false,
            counters: None,
            explanation: Vec::new(),
            verdict: verdict::diagnose(&verdict::Inputs::default()),
            evidence: None,
            netns: None,
        };
        r.conclude();
        r
    }

    #[test]
    fn remote_report_explains_the_clamp_and_its_missing_evidence() {
        let r = remote_report();
        assert_eq!(
            r.explanation,
            [
                "the accept queue held 129 connections while the target was paused: backlog 128 + 1",
                "71 of 200 connects did not complete within 900 ms: their SYNs were dropped because \
                 the queue was full",
                "backlog 1024 was asked for, but net.core.somaxconn is 128 in the target's network \
                 namespace, so listen(2) clamped it to 128; the queue holds 128 + 1 = 129",
                "the target is not in this network namespace: no sock_diag or counter evidence, \
                 the count rests on the client side",
                "all 129 held connections were served after the target resumed",
            ]
        );
        assert_eq!(
            r.verdict.diagnosis,
            verdict::Diagnosis::DroppedSynsSuspected
        );
        assert!(r.verdict.notes[0].contains("rests on client-side signatures"));
    }

    #[test]
    fn a_measurement_holds_only_if_the_queue_filled_and_all_it_held_was_served() {
        let r = remote_report();
        assert!(r.holds());
        let never_filled = ProbeReport {
            timed_out: 0,
            ..r.clone()
        };
        assert!(!never_filled.holds());
        let unserved = ProbeReport {
            served: 128,
            unserved: 1,
            ..r.clone()
        };
        assert!(!unserved.holds());
        let nothing = ProbeReport {
            capacity: 0,
            implied_backlog: 0,
            served: 0,
            ..r
        };
        assert!(!nothing.holds());
    }
}
