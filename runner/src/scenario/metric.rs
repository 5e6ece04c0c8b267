//! The metrics a threshold can name (`latency.p99`, `outcome.reset`,
//! `listen_overflows`, `verdict`, …) and the diagnoses a `verdict`
//! threshold compares with, by the names written in scenario files.

use std::fmt;

use floodgate_reports::Outcome;
use floodgate_reports::verdict::Diagnosis;

/// A statistic of a time distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

impl Stat {
    pub const ALL: [Stat; 6] = [
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::Max,
        Stat::Mean,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
            Stat::Mean => "mean",
        }
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Response time from the intended send.
    Latency(Stat),
    /// Response time from the actual send.
    Service(Stat),
    /// Connect time.
    Connect(Stat),
    /// Requests per second achieved.
    RateAchieved,
    /// Achieved rate over the rate asked for.
    RateRatio,
    /// The share of requests whose outcome is not `ok`.
    Errors,
    /// The count of one outcome (or its share, with `%`).
    Outcome(Outcome),
    ListenOverflows,
    ListenDrops,
    SynCookies,
    SynRetransmitted,
    /// The deepest accept queue sampled.
    QueueMaxDepth,
    /// The result of a find-capacity phase, in requests per second.
    Capacity,
    /// The accept-queue capacity a backlog-probe phase measured.
    ProbeCapacity,
    /// The kernel-evidence verdict's diagnosis.
    Verdict,
}

impl Metric {
    /// Every metric a threshold can name, in the order the docs list them.
    pub fn all() -> Vec<Metric> {
        let mut all = Vec::new();
        for family in [Metric::Latency, Metric::Service, Metric::Connect] {
            all.extend(Stat::ALL.into_iter().map(family));
        }
        all.extend([Metric::RateAchieved, Metric::RateRatio, Metric::Errors]);
        all.extend(Outcome::ALL.into_iter().map(Metric::Outcome));
        all.extend([
            Metric::ListenOverflows,
            Metric::ListenDrops,
            Metric::SynCookies,
            Metric::SynRetransmitted,
            Metric::QueueMaxDepth,
            Metric::Capacity,
            Metric::ProbeCapacity,
            Metric::Verdict,
        ]);
        all
    }

    /// The name as written in a threshold: `latency.p99`, `outcome.reset`.
    pub fn name(self) -> String {
        match self {
            Metric::Latency(s) => format!("latency.{}", s.name()),
            Metric::Service(s) => format!("service.{}", s.name()),
            Metric::Connect(s) => format!("connect.{}", s.name()),
            Metric::RateAchieved => "rate.achieved".into(),
            Metric::RateRatio => "rate.ratio".into(),
            Metric::Errors => "errors".into(),
            Metric::Outcome(o) => format!("outcome.{}", o.name()),
            Metric::ListenOverflows => "listen_overflows".into(),
            Metric::ListenDrops => "listen_drops".into(),
            Metric::SynCookies => "syn_cookies".into(),
            Metric::SynRetransmitted => "syn_retransmitted".into(),
            Metric::QueueMaxDepth => "queue.max_depth".into(),
            Metric::Capacity => "capacity".into(),
            Metric::ProbeCapacity => "probe.capacity".into(),
            Metric::Verdict => "verdict".into(),
        }
    }

    pub(super) fn parse(name: &str) -> Option<Metric> {
        Metric::all().into_iter().find(|m| m.name() == name)
    }

    /// What the value is and an example, for messages.
    /// Whether the run keeps it per second, so `over WINDOW` can judge it.
    pub fn has_series(self) -> bool {
        matches!(
            self,
            Metric::Latency(_) | Metric::Errors | Metric::RateAchieved
        )
    }

    pub(super) fn expected(self) -> &'static str {
        match self {
            Metric::Latency(_) | Metric::Service(_) | Metric::Connect(_) => {
                "a duration like \"25ms\""
            }
            Metric::RateAchieved | Metric::Capacity => "a rate like \"500/s\"",
            Metric::RateRatio => "a ratio like 0.95 or \"95%\"",
            Metric::Errors => "a share like \"0.1%\" (or 0)",
            Metric::Outcome(_) => "a count like 0 or a share like \"0.1%\"",
            Metric::Verdict => "a diagnosis",
            _ => "a whole number like 0",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Every diagnosis a verdict can name. `every_diagnosis_is_listed` keeps
/// it complete: `Diagnosis` has no list of its own.
pub const DIAGNOSES: [Diagnosis; 7] = [
    Diagnosis::AcceptQueueOverflow,
    Diagnosis::SynQueueCookies,
    Diagnosis::SynQueueDrops,
    Diagnosis::AbortOnOverflowResets,
    Diagnosis::ClientLimits,
    Diagnosis::DroppedSynsSuspected,
    Diagnosis::NoOverflow,
];

/// The snake_case name of a diagnosis, as in the result JSON.
pub fn diagnosis_name(d: Diagnosis) -> &'static str {
    match d {
        Diagnosis::AcceptQueueOverflow => "accept_queue_overflow",
        Diagnosis::SynQueueCookies => "syn_queue_cookies",
        Diagnosis::SynQueueDrops => "syn_queue_drops",
        Diagnosis::AbortOnOverflowResets => "abort_on_overflow_resets",
        Diagnosis::ClientLimits => "client_limits",
        Diagnosis::DroppedSynsSuspected => "dropped_syns_suspected",
        Diagnosis::NoOverflow => "no_overflow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_diagnosis_is_listed() {
        // A new variant fails to compile here until DIAGNOSES has it.
        fn listed(d: Diagnosis) -> bool {
            match d {
                Diagnosis::AcceptQueueOverflow
                | Diagnosis::SynQueueCookies
                | Diagnosis::SynQueueDrops
                | Diagnosis::AbortOnOverflowResets
                | Diagnosis::ClientLimits
                | Diagnosis::DroppedSynsSuspected
                | Diagnosis::NoOverflow => DIAGNOSES.contains(&d),
            }
        }
        for d in DIAGNOSES {
            assert!(listed(d));
            // The names are the result JSON's.
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", diagnosis_name(d)));
        }
    }

    #[test]
    fn every_outcome_is_a_metric() {
        for o in Outcome::ALL {
            let name = format!("outcome.{}", o.name());
            assert_eq!(Metric::parse(&name), Some(Metric::Outcome(o)));
        }
    }
}
