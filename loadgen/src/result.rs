//! The result of a run as a plain serde model: what `--out FILE.json`
//! writes, what scripts read, and what the JSON Schema in
//! `loadgen/schema/result.schema.json` describes. Rendering text is
//! `summary`'s job; measuring is `measure`'s.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::kernel::EvidenceReport;
use crate::malformed::{MalformedOutcome, Source};
use crate::measure::Recorder;
use crate::outcome::Outcome;
use crate::plan::{Arrival, CloseWith, Load, Mode, Plan};
use crate::run::RunResult;
use crate::verdict::{self, ClientSignals, Inputs, Verdict};

/// The result JSON. Field names carry their units.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
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
    pub outcomes: BTreeMap<&'static str, u64>,
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
}

/// Malformed traffic, kept apart from the valid books: `scheduled` and
/// `outcomes` above count valid requests only.
#[derive(Debug, Clone, Serialize)]
pub struct MalformedReport {
    /// The share of all requests sent malformed.
    pub fraction: f64,
    /// Malformed inputs that became due; they sum to the outcomes below.
    pub scheduled: u64,
    /// Malformed outcome name → count; every outcome is present.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Outcomes the reference server never gives a malformed input: a
    /// status below 400, a hang past the read timeout, an unparseable reply.
    pub unexpected: u64,
    /// Where the inputs came from (known requests, or a mutation kind) → count.
    pub by_source: BTreeMap<&'static str, u64>,
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

/// The plan as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEcho {
    /// `closed` or `open`.
    pub load: &'static str,
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

#[derive(Debug, Clone, Serialize)]
pub struct MixEcho {
    pub weight: u32,
    pub request: String,
    /// How many scheduled requests were of this kind.
    pub scheduled: u64,
}

/// Percentiles of one histogram, in µs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct Histograms {
    pub response_time: String,
    pub service_time: String,
    pub connect_time: String,
    pub generator_lag: String,
}

pub(crate) fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serialising into a Vec only fails on histograms too large to encode,
    // which the fixed bounds rule out; an empty string would then show it.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl LoadResult {
    pub fn new(plan: &Plan, run: &RunResult) -> LoadResult {
        let rec: &Recorder = &run.recorder;
        let elapsed_s = run.elapsed.as_secs_f64();
        let window = match plan.duration {
            Some(d) if !run.partial && run.elapsed >= d => d,
            _ => run.elapsed,
        };
        let window_s = window.as_secs_f64().max(1e-9);
        let answered = answered(&rec.outcomes);
        let (rate_per_s, arrival) = match plan.load {
            Load::Closed => (None, None),
            Load::Open {
                rate_per_s,
                arrival,
            } => (Some(rate_per_s), Some(arrival)),
        };
        LoadResult {
            schema_version: 1,
            floodgate_version: env!("CARGO_PKG_VERSION").to_string(),
            seed: plan.seed,
            partial: run.partial,
            target: plan.target.url.clone(),
            plan: PlanEcho {
                load: if plan.is_open() { "open" } else { "closed" },
                rate_per_s,
                arrival,
                mode: plan.mode,
                close_with: (plan.mode == Mode::Connect).then_some(plan.close_with),
                connections: plan.connections,
                threads: plan.threads,
                duration_s: plan.duration.map(|d| d.as_secs_f64()),
                requests: plan.requests,
                requests_mix: plan
                    .kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| MixEcho {
                        weight: k.weight,
                        request: k.label.clone(),
                        scheduled: rec.scheduled_by_kind.get(i).copied().unwrap_or(0),
                    })
                    .collect(),
                verify: plan.verify,
                connect_timeout_ms: ms(plan.connect_timeout),
                read_timeout_ms: ms(plan.read_timeout),
                lag_threshold_ms: ms(plan.lag_threshold),
                grace_ms: ms(plan.grace),
                sources: plan.sources.iter().map(|s| s.to_string()).collect(),
            },
            started_at_unix_s: run
                .started_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            elapsed_s,
            window_s,
            scheduled: rec.scheduled,
            outcomes: Outcome::ALL
                .iter()
                .map(|o| (o.name(), rec.outcomes.get(*o)))
                .collect(),
            achieved_rate_per_s: (answered as f64 / window_s * 10.0).round() / 10.0,
            asked_rate_per_s: rate_per_s,
            connects: rec.connects,
            held_max: (plan.mode == Mode::Hold).then_some(rec.open_max),
            latency_us: Percentiles::of(&rec.response),
            service_time_us: Percentiles::of(&rec.service),
            connect_time_us: Percentiles::of(&rec.connect),
            generator_lag_us: Percentiles::of(&rec.lag),
            histograms: Histograms {
                response_time: encode(&rec.response),
                service_time: encode(&rec.service),
                connect_time: encode(&rec.connect),
                generator_lag: encode(&rec.lag),
            },
            evidence: None,
            verdict: draw_verdict(|o| rec.outcomes.get(o), rec.connects, None),
            malformed: plan
                .malformed
                .as_ref()
                .map(|m| malformed_report(m.fraction, rec)),
        }
    }

    /// Attaches the kernel evidence recorded while the run went on (only
    /// when the target listened in this network namespace) and draws the
    /// verdict again from it.
    pub fn with_evidence(mut self, evidence: EvidenceReport) -> LoadResult {
        let counts = |o: Outcome| self.outcomes.get(o.name()).copied().unwrap_or(0);
        self.verdict = draw_verdict(counts, self.connects, Some(&evidence));
        self.evidence = Some(evidence);
        self
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

fn malformed_report(fraction: f64, rec: &Recorder) -> MalformedReport {
    let m = &rec.malformed;
    let counts = &rec.outcomes;
    let success = counts.get(Outcome::Ok) + counts.get(Outcome::SynRetransmitted);
    let answered = answered(counts);
    MalformedReport {
        fraction,
        scheduled: m.scheduled,
        outcomes: MalformedOutcome::ALL
            .iter()
            .map(|o| (o.name(), m.get(*o)))
            .collect(),
        unexpected: MalformedOutcome::ALL
            .iter()
            .filter(|o| o.unexpected())
            .map(|o| m.get(*o))
            .sum(),
        by_source: Source::ALL
            .iter()
            .map(|s| (s.name(), m.by_source[*s as usize]))
            .collect(),
        valid_success_rate: if rec.scheduled == 0 {
            0.0
        } else {
            success as f64 / rec.scheduled as f64
        },
        valid_lost: rec
            .scheduled
            .saturating_sub(answered + counts.get(Outcome::GeneratorLagged)),
        echo_checks: m.echo_checks,
        echo_mismatches: m.echo_mismatches,
        coinciding: m.coinciding().len() as u64,
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The verdict from the outcome counts, and from the kernel's evidence once
/// [`LoadResult::with_evidence`] attaches it.
fn draw_verdict(
    counts: impl Fn(Outcome) -> u64,
    connects: u64,
    evidence: Option<&EvidenceReport>,
) -> Verdict {
    let client = ClientSignals::from_outcomes(connects, counts);
    verdict::diagnose(&Inputs::from_evidence(evidence, client))
}

/// Requests that got a complete response, whatever its status.
fn answered(counts: &crate::outcome::OutcomeCounts) -> u64 {
    [
        Outcome::Ok,
        Outcome::Http1xx,
        Outcome::Http3xx,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::VerifyMismatch,
        Outcome::SynRetransmitted,
    ]
    .iter()
    .map(|o| counts.get(*o))
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{histogram, record};

    #[test]
    fn histograms_round_trip_exactly() {
        let mut h = histogram();
        for us in [1, 5, 900, 20_000, 59_000_000] {
            record(&mut h, Duration::from_micros(us));
        }
        let back = crate::read::decode_histogram(&encode(&h)).expect("decodes");
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
