//! The run model: what one run did, as a plain serde model that a result
//! file (`floodgate load --out`) round-trips through without loss — the plan
//! as it ran, the outcome books, percentiles and their HDR histograms, the
//! kernel's evidence, the verdict and the malformed-traffic section. The
//! JSON Schema in `reports/schema/result.schema.json` describes it. Building
//! one from a finished load is the load engine's job; rendering it is
//! `text`'s; reading one back, checked, is `read`'s.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::evidence::EvidenceReport;
use crate::histogram::{self, HistogramError};
use crate::outcome::Outcome;
use crate::series::Interval;
use crate::verdict::{self, ClientSignals, Inputs, Verdict};

/// The result format this crate writes and reads; bumped on incompatible
/// changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The result JSON. Field names carry their units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The format of this document; bumped on incompatible changes.
    pub schema_version: u32,
    pub floodgate_version: String,
    pub seed: u64,
    /// Stopped early (Ctrl-C): the figures cover only the part that ran.
    pub partial: bool,
    pub target: String,
    pub plan: PlanEcho,
    pub started_at_unix_s: f64,
    /// From the start of the schedule until the last request finished.
    pub elapsed_s: f64,
    /// The time over which `achieved_rate_per_s` is computed: the planned
    /// duration when the run went that long, else `elapsed_s`.
    pub window_s: f64,
    /// Requests that were due (open loop) or started (closed loop).
    pub scheduled: u64,
    /// Outcome name → count; every outcome is present. They sum to `scheduled`.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Requests answered with a complete response (any status) per second of `window_s`.
    pub achieved_rate_per_s: f64,
    /// Open loop: the rate asked for.
    pub asked_rate_per_s: Option<f64>,
    pub connects: u64,
    /// Most connections open at once in hold mode.
    pub held_max: Option<u64>,
    /// Response time, from each request's intended send time.
    pub latency_us: Percentiles,
    /// From the actual send to the complete response.
    pub service_time_us: Percentiles,
    pub connect_time_us: Percentiles,
    /// How late the generator itself started sends (open loop only).
    pub generator_lag_us: Percentiles,
    /// HdrHistogram V2 + deflate serialisations, base64 (standard alphabet).
    pub histograms: Histograms,
    /// The kernel's side of the run (TcpExt counter deltas, the listener's
    /// accept queue sampled through sock_diag) when the target listens in
    /// this network namespace; `null` otherwise.
    pub evidence: Option<EvidenceReport>,
    /// The plain-words diagnosis drawn from the evidence and the outcomes.
    pub verdict: Verdict,
    /// `--malformed`: the malformed traffic and what it did to the valid
    /// load; `null` without the flag.
    pub malformed: Option<MalformedReport>,
    /// The run second by second (`series`): what requests intended in each
    /// second did. Absent from files written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Interval>,
    /// The share of the run the generator's event loops were busy rather
    /// than waiting for the network: near 1, the generator itself was the
    /// bottleneck. Absent from files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_busy: Option<f64>,
}

/// Malformed traffic, kept apart from the valid books: `scheduled` and
/// `outcomes` above count valid requests only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MalformedReport {
    /// The share of all requests sent malformed.
    pub fraction: f64,
    /// Malformed inputs that became due; they sum to the outcomes below.
    pub scheduled: u64,
    /// Malformed outcome name → count; every outcome is present.
    pub outcomes: BTreeMap<String, u64>,
    /// Outcomes the reference server never gives a malformed input: a
    /// status below 400, a hang past the read timeout, an unparseable reply.
    pub unexpected: u64,
    /// Where the inputs came from (known requests, or a mutation kind) → count.
    pub by_source: BTreeMap<String, u64>,
    /// Valid requests answered with a 2xx, of all valid requests scheduled.
    pub valid_success_rate: f64,
    /// Valid requests that got no complete response (not counting those the
    /// generator itself was too late to send).
    pub valid_lost: u64,
    /// Valid `POST /echo` requests with a unique token whose echo was checked.
    pub echo_checks: u64,
    /// Echoes that came back with another body: a reply meant for another
    /// request, or a corrupted one.
    pub echo_mismatches: u64,
    /// Malformed inputs that coincided with a failure (an unexpected answer,
    /// or a valid request failing within 100 ms): the ones worth replaying.
    pub coinciding: u64,
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    Closed,
    Open,
}

/// Open-loop arrival process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced arrivals.
    #[default]
    Uniform,
    /// Exponential gaps (a Poisson process) from the seeded RNG.
    Poisson,
}

/// What each connection slot does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Keep-alive requests over long-lived connections.
    #[default]
    Requests,
    /// Connect, then close: one "request" is one connect.
    Connect,
    /// Open connections and keep them idle until the end.
    Hold,
    /// A new connection for every request.
    Churn,
}

/// How `--mode connect` closes each connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseWith {
    #[default]
    Fin,
    /// SO_LINGER 0: the close sends RST and leaves no TIME_WAIT.
    Rst,
}

/// The plan as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEcho {
    pub load: LoadKind,
    pub rate_per_s: Option<f64>,
    pub arrival: Option<Arrival>,
    pub mode: Mode,
    pub close_with: Option<CloseWith>,
    pub connections: usize,
    pub threads: usize,
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
    pub requests_mix: Vec<MixEcho>,
    pub verify: bool,
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub lag_threshold_ms: u64,
    pub grace_ms: u64,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixEcho {
    pub weight: u32,
    pub request: String,
    /// How many scheduled requests were of this kind.
    pub scheduled: u64,
}

/// Percentiles of one histogram, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles {
                count: 0,
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The four histograms of a run, each as [`crate::histogram::encode`] writes
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub response_time: String,
    pub service_time: String,
    pub connect_time: String,
    pub generator_lag: String,
}

impl Run {
    /// Attaches the kernel evidence recorded while the run went on (only
    /// when the target listened in this network namespace) and draws the
    /// verdict again from it.
    /// Each interval also gets its share of the timeline
    /// ([`Run::fill_intervals`]).
    pub fn with_evidence(mut self, evidence: EvidenceReport) -> Run {
        let counts = |o: Outcome| self.outcomes.get(&o).copied().unwrap_or(0);
        self.verdict = draw_verdict(counts, self.connects, Some(&evidence));
        self.fill_intervals(&evidence);
        self.evidence = Some(evidence);
        self
    }

    /// Attaches phase `name`'s share of `timeline` (the recording this run
    /// was a phase of): the share's counters and figures as this run's
    /// evidence ([`EvidenceReport::phase`]: without the samples and ticks,
    /// which stay in `timeline` once), the verdict drawn again from it, and
    /// each interval's accept queue and counter changes read from
    /// `timeline` by wall-clock time ([`Run::fill_intervals`]). Without
    /// such a phase, only the intervals are filled.
    pub fn with_share_of(mut self, timeline: &EvidenceReport, name: &str) -> Run {
        if let Some(share) = timeline.phase(name) {
            let counts = |o: Outcome| self.outcomes.get(&o).copied().unwrap_or(0);
            self.verdict = draw_verdict(counts, self.connects, Some(&share));
            self.evidence = Some(share);
        }
        self.fill_intervals(timeline);
        self
    }

    /// Gives each interval the accept queue sampled and the counter changes
    /// read in it, from `timeline` (this run's evidence, or a longer
    /// timeline that holds it), matched by wall-clock time: an interval
    /// runs from `started_at_unix_s + start_s` for `duration_s`. Intervals
    /// the timeline does not cover keep what they had.
    pub fn fill_intervals(&mut self, timeline: &EvidenceReport) {
        for i in &mut self.intervals {
            let from = self.started_at_unix_s + i.start_s;
            let to = from + i.duration_s;
            if let Some(q) = timeline.queue_between(from, to) {
                i.accept_queue = Some(q);
            }
            if let Some(k) = timeline.counters_between(from, to) {
                i.kernel = Some(k);
            }
        }
    }

    /// The runs of several phases as one, for thresholds judged over all of
    /// them: books, connects and histograms added up, the achieved rate
    /// over their windows together, the plan and the malformed section of
    /// the first, `evidence` (the whole run's) and the verdict drawn from
    /// it all. `None` without runs, or when a histogram does not decode.
    pub fn combine(runs: &[&Run], evidence: Option<&EvidenceReport>) -> Option<Run> {
        let (first, rest) = runs.split_first()?;
        let mut all = (*first).clone();
        let mut h = all.histograms.decode().ok()?;
        for r in rest {
            h.add(&r.histograms.decode().ok()?).ok()?;
            all.scheduled += r.scheduled;
            for (o, n) in &r.outcomes {
                *all.outcomes.entry(*o).or_default() += n;
            }
            all.connects += r.connects;
            all.elapsed_s += r.elapsed_s;
            all.window_s += r.window_s;
            all.partial |= r.partial;
            all.generator_busy = match (all.generator_busy, r.generator_busy) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        let asked: Option<f64> = runs
            .iter()
            .map(|r| r.asked_rate_per_s.map(|a| a * r.window_s))
            .sum();
        all.asked_rate_per_s = asked.map(|a| a / all.window_s.max(1e-9));
        all.refigure(&h).ok()?;
        all.intervals = Vec::new();
        all.evidence = None;
        let counts = |o: Outcome| all.outcomes.get(&o).copied().unwrap_or(0);
        all.verdict = draw_verdict(counts, all.connects, evidence);
        all.evidence = evidence.cloned();
        Some(all)
    }

    /// Draws the figures of a run whose books were added up from others':
    /// the achieved rate from the outcomes over `window_s`, and the
    /// percentiles and encoded histograms from `h`, the runs' histograms
    /// added.
    pub fn refigure(&mut self, h: &Decoded) -> Result<(), HistogramError> {
        let answered: u64 = ANSWERED
            .iter()
            .map(|o| self.outcomes.get(o).copied().unwrap_or(0))
            .sum();
        self.achieved_rate_per_s =
            (answered as f64 / self.window_s.max(1e-9) * 10.0).round() / 10.0;
        self.latency_us = Percentiles::of(&h.response_time);
        self.service_time_us = Percentiles::of(&h.service_time);
        self.connect_time_us = Percentiles::of(&h.connect_time);
        self.generator_lag_us = Percentiles::of(&h.generator_lag);
        self.histograms = Histograms::encode(
            &h.response_time,
            &h.service_time,
            &h.connect_time,
            &h.generator_lag,
        )?;
        Ok(())
    }

    /// Writes the result as pretty-printed JSON.
    pub fn write_json<W: std::io::Write>(&self, w: W) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(w, self)
    }

    /// The sum of all outcome counts; equals `scheduled` when the books balance.
    pub fn outcomes_total(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

/// The verdict from the outcome counts, and from the kernel's evidence once
/// [`Run::with_evidence`] attaches it.
pub fn draw_verdict(
    counts: impl Fn(Outcome) -> u64,
    connects: u64,
    evidence: Option<&EvidenceReport>,
) -> Verdict {
    let client = ClientSignals::from_outcomes(connects, counts);
    verdict::diagnose(&Inputs::from_evidence(evidence, client))
}

/// The outcomes of requests that got a complete response, whatever its
/// status.
pub const ANSWERED: [Outcome; 7] = [
    Outcome::Ok,
    Outcome::Http1xx,
    Outcome::Http3xx,
    Outcome::Http4xx,
    Outcome::Http5xx,
    Outcome::VerifyMismatch,
    Outcome::SynRetransmitted,
];

impl Histograms {
    /// Encodes the four histograms of a run.
    pub fn encode(
        response_time: &Histogram<u64>,
        service_time: &Histogram<u64>,
        connect_time: &Histogram<u64>,
        generator_lag: &Histogram<u64>,
    ) -> Result<Histograms, HistogramError> {
        Ok(Histograms {
            response_time: histogram::encode(response_time)?,
            service_time: histogram::encode(service_time)?,
            connect_time: histogram::encode(connect_time)?,
            generator_lag: histogram::encode(generator_lag)?,
        })
    }

    /// Decodes the four, naming the first that does not decode.
    pub fn decode(&self) -> Result<Decoded, (&'static str, HistogramError)> {
        let one = |name: &'static str, b64: &str| histogram::decode(b64).map_err(|e| (name, e));
        Ok(Decoded {
            response_time: one("response_time", &self.response_time)?,
            service_time: one("service_time", &self.service_time)?,
            connect_time: one("connect_time", &self.connect_time)?,
            generator_lag: one("generator_lag", &self.generator_lag)?,
        })
    }
}

/// A run's histograms, decoded (to merge runs, or draw them).
#[derive(Debug, Clone)]
pub struct Decoded {
    /// From each request's intended send time; `latency_us` is read from it.
    pub response_time: Histogram<u64>,
    pub service_time: Histogram<u64>,
    pub connect_time: Histogram<u64>,
    pub generator_lag: Histogram<u64>,
}

impl Decoded {
    /// Adds `other`'s counts to these, histogram by histogram.
    pub fn add(&mut self, other: &Decoded) -> Result<(), HistogramError> {
        for (a, b) in [
            (&mut self.response_time, &other.response_time),
            (&mut self.service_time, &other.service_time),
            (&mut self.connect_time, &other.connect_time),
            (&mut self.generator_lag, &other.generator_lag),
        ] {
            a.add(b)
                .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
        }
        Ok(())
    }
}
