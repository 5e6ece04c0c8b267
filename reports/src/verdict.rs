//! The verdict: one plain-words diagnosis of a run's connection failures,
//! with the numbers it rests on, from the kernel's counter deltas, the
//! listener samples and the client-side outcome counts.
//!
//! This module only interprets numbers it is given; collecting them is
//! floodgate-kernel's job (kernel side) and the runner's (client side). When
//! the target is not in this network namespace there are no kernel numbers,
//! and the verdict says that it rests on client-side signatures alone.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::evidence::{CounterDelta, EvidenceReport};
use crate::outcome::Outcome;

/// What the client saw, counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSignals {
    /// Connects attempted.
    pub connects: u64,
    /// Connects that never completed in time.
    pub connect_timeouts: u64,
    /// Connects that completed only after SYN retransmits (TCP_INFO).
    pub syn_retransmitted: u64,
    /// `syn_retransmitted` split by connect time in whole seconds, ascending:
    /// `(1, 20)` means 20 connects took between 1 s and 2 s.
    pub syn_retransmit_buckets: Vec<(u32, u64)>,
    /// Connected, but the request bytes stayed unacknowledged.
    pub request_unacked: u64,
    /// Connects or connections reset by the peer.
    pub resets: u64,
    /// Connects refused (nothing listening, or the listener closed).
    pub refused: u64,
    /// EADDRNOTAVAIL: the client ran out of ephemeral ports.
    pub local_port_exhausted: u64,
    /// EMFILE/ENFILE: the client ran out of descriptors.
    pub local_fd_exhausted: u64,
    /// Requests the generator could not send on time.
    pub generator_lagged: u64,
}

impl ClientSignals {
    /// The client side from a load run's outcome counts (`count(outcome)`
    /// gives how many requests ended that way) and its connect count. The
    /// per-second SYN-retransmit buckets are left empty: outcome counts do
    /// not carry connect times.
    pub fn from_outcomes(connects: u64, count: impl Fn(Outcome) -> u64) -> ClientSignals {
        ClientSignals {
            connects,
            connect_timeouts: count(Outcome::ConnectTimeout),
            syn_retransmitted: count(Outcome::SynRetransmitted),
            syn_retransmit_buckets: Vec::new(),
            request_unacked: count(Outcome::RequestUnacked),
            resets: count(Outcome::ConnectReset) + count(Outcome::Reset),
            refused: count(Outcome::ConnectRefused),
            local_port_exhausted: count(Outcome::LocalPortExhausted),
            local_fd_exhausted: count(Outcome::LocalFdExhausted),
            generator_lagged: count(Outcome::GeneratorLagged),
        }
    }
}

/// The listener as sock_diag saw it over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    pub backlog: u32,
    pub max_queue_depth: u32,
    /// Time the queue was seen full, in ms.
    pub full_ms: u64,
}

impl QueueSummary {
    /// Picks the queue summary out of a recorder's report, if it saw the
    /// listener.
    pub fn from_evidence(report: &EvidenceReport) -> Option<QueueSummary> {
        Some(QueueSummary {
            backlog: report.backlog?,
            max_queue_depth: report.max_queue_depth,
            full_ms: report.full_ms,
        })
    }
}

/// Everything the verdict is drawn from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// Kernel counter deltas for the run; `None` when the target is not in
    /// this network namespace (its counters are not ours to read).
    pub counters: Option<CounterDelta>,
    /// The target listener's queue; `None` when it could not be sampled.
    pub queue: Option<QueueSummary>,
    pub client: ClientSignals,
}

impl Inputs {
    /// The inputs for a run recorded by floodgate-kernel's evidence recorder: pass the
    /// recorder's report when the target was local (its counters and queue
    /// samples describe the target), `None` when it was not.
    pub fn from_evidence(evidence: Option<&EvidenceReport>, client: ClientSignals) -> Inputs {
        Inputs {
            counters: evidence.map(|e| e.counters),
            queue: evidence.and_then(QueueSummary::from_evidence),
            client,
        }
    }
}

/// The cause named by a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    /// The accept queue was full and SYNs or final ACKs were dropped.
    AcceptQueueOverflow,
    /// The SYN queue was full and the kernel answered with SYN cookies.
    SynQueueCookies,
    /// The SYN queue was full and SYNs were dropped (no cookies).
    SynQueueDrops,
    /// `tcp_abort_on_overflow=1`: handshakes completing into a full accept
    /// queue were reset.
    AbortOnOverflowResets,
    /// The client, not the server, ran out of something.
    ClientLimits,
    /// Connect failures that look like dropped SYNs, with no kernel numbers
    /// to say which queue (the target is not local).
    DroppedSynsSuspected,
    NoOverflow,
}

/// A diagnosis and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub diagnosis: Diagnosis,
    /// One sentence with the numbers, for the human summary.
    pub summary: String,
    /// Further findings (secondary causes, caveats), one sentence each.
    pub notes: Vec<String>,
}

/// Draws the verdict. The first matching cause wins, most specific first;
/// other signs found are added as notes.
pub fn diagnose(inputs: &Inputs) -> Verdict {
    let c = &inputs.client;
    let mut notes = Vec::new();
    let client_limits = c.local_port_exhausted + c.local_fd_exhausted + c.generator_lagged;

    let Some(k) = &inputs.counters else {
        notes.push(
            "the target is not in this network namespace: this verdict rests on client-side \
             signatures (connect outcomes, SYN retransmits from TCP_INFO), not kernel counters"
                .to_owned(),
        );
        return remote_verdict(inputs, client_limits, notes);
    };

    let cookies = k.tcp_req_q_full_do_cookies.max(k.syncookies_sent);
    let (diagnosis, mut summary) = if k.embryonic_rsts > 0 && k.listen_overflows > 0 {
        let mut s = format!(
            "accept queue overflowed and handshakes were reset (tcp_abort_on_overflow): \
             EmbryonicRsts +{}, ListenOverflows +{}, {} connections reset",
            k.embryonic_rsts, k.listen_overflows, c.resets
        );
        client_clause(&mut s, c);
        (Diagnosis::AbortOnOverflowResets, s)
    } else if k.listen_overflows > 0 {
        let mut s = format!(
            "accept queue overflowed: {} SYNs dropped (ListenOverflows +{})",
            k.listen_overflows, k.listen_overflows
        );
        client_clause(&mut s, c);
        (Diagnosis::AcceptQueueOverflow, s)
    } else if cookies > 0 {
        let s = format!(
            "SYN queue overflowed and was answered with SYN cookies: TCPReqQFullDoCookies +{}, \
             SyncookiesSent +{}, SyncookiesRecv +{}, SyncookiesFailed +{}",
            k.tcp_req_q_full_do_cookies, k.syncookies_sent, k.syncookies_recv, k.syncookies_failed
        );
        (Diagnosis::SynQueueCookies, s)
    } else if k.tcp_req_q_full_drop > 0 {
        let mut s = format!(
            "SYN queue overflowed without SYN cookies: {} SYNs dropped (TCPReqQFullDrop +{})",
            k.tcp_req_q_full_drop, k.tcp_req_q_full_drop
        );
        client_clause(&mut s, c);
        (Diagnosis::SynQueueDrops, s)
    } else if client_limits > 0 {
        (Diagnosis::ClientLimits, client_limits_sentence(c))
    } else {
        let s = format!(
            "no overflow: ListenOverflows +0, TCPReqQFullDrop +0, TCPReqQFullDoCookies +0 over {} \
             connects, {} timed out",
            c.connects, c.connect_timeouts
        );
        (Diagnosis::NoOverflow, s)
    };

    if let Some(q) = &inputs.queue {
        if diagnosis != Diagnosis::NoOverflow && diagnosis != Diagnosis::ClientLimits {
            let _ = write!(
                summary,
                "; queue pinned at {} of {} for {:.1} s",
                q.max_queue_depth,
                q.backlog + 1,
                q.full_ms as f64 / 1000.0
            );
        } else {
            let _ = write!(
                summary,
                "; deepest accept queue {} of {}",
                q.max_queue_depth,
                q.backlog + 1
            );
        }
    }
    summary.push('.');

    if cookies > 0 && diagnosis != Diagnosis::SynQueueCookies {
        notes.push(format!(
            "the SYN queue filled too and the kernel sent SYN cookies (TCPReqQFullDoCookies +{}, \
             SyncookiesSent +{}); the kernel logs this as \"Possible SYN flooding\" though there \
             is no attack",
            k.tcp_req_q_full_do_cookies, k.syncookies_sent
        ));
    }
    if k.tcp_req_q_full_drop > 0 && diagnosis != Diagnosis::SynQueueDrops {
        notes.push(format!(
            "the SYN queue also dropped {} SYNs without cookies (TCPReqQFullDrop +{})",
            k.tcp_req_q_full_drop, k.tcp_req_q_full_drop
        ));
    }
    if client_limits > 0 && diagnosis != Diagnosis::ClientLimits {
        notes.push(client_limits_sentence(c));
    }
    if c.request_unacked > 0 {
        notes.push(format!(
            "{} connections completed on the client while the server dropped the final ACK: \
             their request bytes stayed unacknowledged",
            c.request_unacked
        ));
    }
    Verdict {
        diagnosis,
        summary,
        notes,
    }
}

fn remote_verdict(inputs: &Inputs, client_limits: u64, notes: Vec<String>) -> Verdict {
    let c = &inputs.client;
    let (diagnosis, mut summary) = if client_limits > 0 {
        (Diagnosis::ClientLimits, client_limits_sentence(c))
    } else if c.connect_timeouts + c.syn_retransmitted + c.request_unacked > 0 {
        let mut s = "connects needed SYN retransmits or timed out, the signature of SYNs dropped \
                     by a full accept or SYN queue (or by packet loss)"
            .to_owned();
        client_clause(&mut s, c);
        (Diagnosis::DroppedSynsSuspected, s)
    } else {
        let s = format!(
            "no overflow seen from the client: {} connects, none timed out or needed a SYN \
             retransmit",
            c.connects
        );
        (Diagnosis::NoOverflow, s)
    };
    summary.push('.');
    Verdict {
        diagnosis,
        summary,
        notes,
    }
}

/// Appends ", 50 connects timed out, 37 connected only after SYN retransmits
/// (1 s: 20, 2 s: 17)" with the parts that are non-zero.
fn client_clause(s: &mut String, c: &ClientSignals) {
    if c.connect_timeouts > 0 {
        let _ = write!(s, ", {} connects timed out", c.connect_timeouts);
    }
    if c.syn_retransmitted > 0 {
        let _ = write!(
            s,
            ", {} connected only after SYN retransmits",
            c.syn_retransmitted
        );
        if !c.syn_retransmit_buckets.is_empty() {
            let parts: Vec<String> = c
                .syn_retransmit_buckets
                .iter()
                .map(|(secs, n)| format!("{secs} s: {n}"))
                .collect();
            let _ = write!(s, " ({})", parts.join(", "));
        }
    }
    if c.request_unacked > 0 {
        let _ = write!(s, ", {} requests unacknowledged", c.request_unacked);
    }
}

fn client_limits_sentence(c: &ClientSignals) -> String {
    let mut parts = Vec::new();
    if c.local_port_exhausted > 0 {
        parts.push(format!(
            "{} connects found no free local port (EADDRNOTAVAIL)",
            c.local_port_exhausted
        ));
    }
    if c.local_fd_exhausted > 0 {
        parts.push(format!(
            "{} connects found no free descriptor (EMFILE/ENFILE)",
            c.local_fd_exhausted
        ));
    }
    if c.generator_lagged > 0 {
        parts.push(format!(
            "{} requests were sent late by the generator",
            c.generator_lagged
        ));
    }
    format!("client-side limits, not the server: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(inputs: Inputs, diagnosis: Diagnosis, summary: &str) -> Verdict {
        let v = diagnose(&inputs);
        assert_eq!(v.diagnosis, diagnosis);
        assert_eq!(v.summary, summary);
        v
    }

    #[test]
    fn accept_queue_overflow_reads_like_the_issue_example() {
        let inputs = Inputs {
            counters: Some(CounterDelta {
                listen_overflows: 250,
                listen_drops: 250,
                tcp_syn_retrans: 200,
                ..CounterDelta::default()
            }),
            queue: Some(QueueSummary {
                backlog: 128,
                max_queue_depth: 129,
                full_ms: 4100,
            }),
            client: ClientSignals {
                connects: 1000,
                connect_timeouts: 50,
                syn_retransmitted: 37,
                syn_retransmit_buckets: vec![(1, 20), (2, 17)],
                ..ClientSignals::default()
            },
        };
        let v = check(
            inputs,
            Diagnosis::AcceptQueueOverflow,
            "accept queue overflowed: 250 SYNs dropped (ListenOverflows +250), 50 connects timed \
             out, 37 connected only after SYN retransmits (1 s: 20, 2 s: 17); queue pinned at 129 \
             of 129 for 4.1 s.",
        );
        assert!(v.notes.is_empty());
    }

    #[test]
    fn cookies_alone_are_a_syn_queue_verdict() {
        let inputs = Inputs {
            counters: Some(CounterDelta {
                tcp_req_q_full_do_cookies: 40,
                syncookies_sent: 40,
                syncookies_recv: 38,
                ..CounterDelta::default()
            }),
            ..Inputs::default()
        };
        check(
            inputs,
            Diagnosis::SynQueueCookies,
            "SYN queue overflowed and was answered with SYN cookies: TCPReqQFullDoCookies +40, \
             SyncookiesSent +40, SyncookiesRecv +38, SyncookiesFailed +0.",
        );
    }

    #[test]
    fn cookies_beside_an_accept_overflow_become_a_note() {
        let inputs = Inputs {
            counters: Some(CounterDelta {
                listen_overflows: 3,
                tcp_req_q_full_do_cookies: 5,
                syncookies_sent: 5,
                ..CounterDelta::default()
            }),
            ..Inputs::default()
        };
        let v = diagnose(&inputs);
        assert_eq!(v.diagnosis, Diagnosis::AcceptQueueOverflow);
        assert_eq!(v.notes.len(), 1);
        assert!(
            v.notes[0].contains("Possible SYN flooding"),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn syn_drops_without_cookies() {
        let inputs = Inputs {
            counters: Some(CounterDelta {
                tcp_req_q_full_drop: 12,
                ..CounterDelta::default()
            }),
            client: ClientSignals {
                connects: 100,
                connect_timeouts: 4,
                ..ClientSignals::default()
            },
            ..Inputs::default()
        };
        check(
            inputs,
            Diagnosis::SynQueueDrops,
            "SYN queue overflowed without SYN cookies: 12 SYNs dropped (TCPReqQFullDrop +12), 4 \
             connects timed out.",
        );
    }

    #[test]
    fn abort_on_overflow_resets() {
        let inputs = Inputs {
            counters: Some(CounterDelta {
                listen_overflows: 9,
                embryonic_rsts: 6,
                ..CounterDelta::default()
            }),
            client: ClientSignals {
                connects: 20,
                resets: 6,
                ..ClientSignals::default()
            },
            ..Inputs::default()
        };
        check(
            inputs,
            Diagnosis::AbortOnOverflowResets,
            "accept queue overflowed and handshakes were reset (tcp_abort_on_overflow): \
             EmbryonicRsts +6, ListenOverflows +9, 6 connections reset.",
        );
    }

    #[test]
    fn client_limits_when_the_kernel_saw_nothing() {
        let inputs = Inputs {
            counters: Some(CounterDelta::default()),
            client: ClientSignals {
                connects: 30000,
                local_port_exhausted: 1200,
                ..ClientSignals::default()
            },
            ..Inputs::default()
        };
        check(
            inputs,
            Diagnosis::ClientLimits,
            "client-side limits, not the server: 1200 connects found no free local port \
             (EADDRNOTAVAIL).",
        );
    }

    #[test]
    fn no_overflow_with_queue_depth() {
        let inputs = Inputs {
            counters: Some(CounterDelta::default()),
            queue: Some(QueueSummary {
                backlog: 1024,
                max_queue_depth: 3,
                full_ms: 0,
            }),
            client: ClientSignals {
                connects: 500,
                ..ClientSignals::default()
            },
        };
        check(
            inputs,
            Diagnosis::NoOverflow,
            "no overflow: ListenOverflows +0, TCPReqQFullDrop +0, TCPReqQFullDoCookies +0 over \
             500 connects, 0 timed out; deepest accept queue 3 of 1025.",
        );
    }

    #[test]
    fn client_signals_from_outcome_counts() {
        let c = ClientSignals::from_outcomes(10, |o| match o {
            Outcome::ConnectTimeout => 2,
            Outcome::SynRetransmitted => 3,
            Outcome::ConnectReset => 1,
            Outcome::Reset => 4,
            _ => 0,
        });
        assert_eq!(c.connect_timeouts, 2);
        assert_eq!(c.syn_retransmitted, 3);
        assert_eq!(c.resets, 5);
        assert_eq!(c.connects, 10);
    }

    #[test]
    fn remote_target_says_it_rests_on_client_signatures() {
        let inputs = Inputs {
            client: ClientSignals {
                connects: 100,
                syn_retransmitted: 7,
                syn_retransmit_buckets: vec![(1, 7)],
                ..ClientSignals::default()
            },
            ..Inputs::default()
        };
        let v = check(
            inputs,
            Diagnosis::DroppedSynsSuspected,
            "connects needed SYN retransmits or timed out, the signature of SYNs dropped by a \
             full accept or SYN queue (or by packet loss), 7 connected only after SYN \
             retransmits (1 s: 7).",
        );
        assert!(v.notes[0].contains("rests on client-side signatures"));
    }
}
