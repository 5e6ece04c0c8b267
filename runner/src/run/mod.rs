//! `floodgate run`: a validated scenario run phase after phase in this
//! process, against its target or a reference server started for it, each
//! phase with its own books and its own share of the kernel's evidence,
//! every threshold judged, and the [`ScenarioReport`] whose status the exit
//! code is drawn from.
//!
//! Consecutive `steady`, `ramp` and `pause` phases with the same load
//! settings run as one engine run over one rate profile (a segment each), so
//! a phase change does not reconnect: kept-alive connections carry over.
//! Every other kind runs on its own (`closed`, `connect-storm`, `hold` and
//! `malformed` open fresh connections; `backlog-probe` is the probe's;
//! `find-capacity` is a run per step, `find`). `judge` judges thresholds;
//! `status` attaches evidence, judges phases and the whole run, and draws
//! the status.

pub(crate) mod find;
pub mod judge;
pub mod shard;
pub(crate) mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floodgate_kernel::Evidence;
use floodgate_loadgen::measure::LiveSeries;
use floodgate_loadgen::plan::{Plan, PlanError, PlanInput, Segment, TargetUrl};
use floodgate_loadgen::run::Snapshot;
use floodgate_reports::evidence::EvidenceReport;
use floodgate_reports::scenario::{
    Judged, PhaseReport, SCENARIO_SCHEMA, ScenarioEcho, ScenarioReport, Shard,
};
use sha2::{Digest, Sha256};

use crate::load::{LoadError, Subject};
use crate::probe::{ProbeRequest, Subject as ProbeSubject, TargetPause};
use crate::scenario::{Phase, PhaseKind, Scenario};
use status::{finish_phases, judge_whole_run, status};

/// How often the evidence sampler reads the listener's queue: 20 Hz.
const EVIDENCE_INTERVAL: Duration = Duration::from_millis(50);

/// A scenario to run, with the text it was read from.
pub struct RunRequest {
    pub scenario: Scenario,
    /// The path as given.
    pub file: String,
    pub text: String,
    /// The `--set` overrides, as given.
    pub sets: Vec<String>,
    /// `--shard i/N`: run this shard's share of every phase (checked with
    /// [`shard::check`] first).
    pub shard: Option<Shard>,
    /// `--start-at`: the start barrier. The subject is started and checked,
    /// then the first phase waits for this instant, so shards on different
    /// machines start together.
    pub start_at: Option<SystemTime>,
}

/// What is going on, about once a second.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// Index of the phase running, of `phases`.
    pub phase: usize,
    pub phases: usize,
    pub name: &'a str,
    pub kind: &'static str,
    /// Since the phase started.
    pub elapsed: Duration,
    /// How long the phase runs, when known.
    pub planned: Option<Duration>,
    /// The load's live figures, for a phase that sends load.
    pub load: Option<Snapshot>,
    /// find-capacity: the step and the bracket, in words.
    pub note: Option<String>,
}

/// Why a scenario could not run (exit 3, or 2 for a target that does not
/// resolve). Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Start(#[from] LoadError),
    /// A phase's plan was refused once its target was known; validation
    /// should have caught it.
    #[error("phase {phase:?}: {error}")]
    Plan { phase: String, error: PlanError },
}

impl RunError {
    /// Whether the input was at fault (exit 2) rather than the run (exit 3).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, RunError::Start(LoadError::Resolve(_)))
    }
}

/// What the phases share while the scenario runs.
struct Ctx<'a> {
    scenario: &'a Scenario,
    target: Option<String>,
    addr: std::net::SocketAddr,
    seed: u64,
    shard: Option<Shard>,
    start: Instant,
    /// The evidence recorder of the phase or chain running.
    evidence: Option<floodgate_kernel::Recorder>,
    /// The evidence of the phases that ran, one timeline.
    whole_evidence: Option<EvidenceReport>,
    /// The phase whose window failed with `abort_on_fail`, stopping the
    /// engine mid-phase.
    aborted: Option<String>,
    stop: &'a Arc<AtomicBool>,
    progress: &'a mut dyn FnMut(Progress),
}

/// Runs `request` to the end, until Ctrl-C sets `stop` (the report is then
/// partial, status interrupted), or until a phase with `abort_on_fail`
/// fails. `progress` is called about once a second.
pub fn run(
    request: RunRequest,
    stop: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ScenarioReport, RunError> {
    let scenario = &request.scenario;
    let target = scenario
        .target
        .as_deref()
        .map(TargetUrl::parse)
        .transpose()
        .map_err(|e| RunError::Start(LoadError::Resolve(e)))?;
    let preflight = scenario.phases.first().map(|p| p.load.connect_timeout);
    // A backlog-probe phase pauses the reference server through its admin
    // endpoint; the server this run starts listens on loopback only.
    let mut server = scenario.server.clone();
    server.limits.admin |= scenario
        .phases
        .iter()
        .any(|p| matches!(p.kind, PhaseKind::BacklogProbe(_)));
    let subject = Subject::start(target.as_ref(), server, preflight)?;
    let seed = scenario.seed.unwrap_or_else(rand::random);
    let target_url = match &target {
        Some(t) => t.url.clone(),
        None => format!("http://{}/", subject.addr),
    };
    if let Some(at) = request.start_at {
        shard::wait_until(at, stop);
    }
    tracing::info!(scenario = %scenario.name, seed, target = %target_url, shard = ?request.shard, "run starting");
    let started_at = SystemTime::now();
    let mut ctx = Ctx {
        scenario,
        target: scenario.target.clone(),
        addr: subject.addr,
        seed,
        shard: request.shard,
        start: Instant::now(),
        evidence: None,
        whole_evidence: None,
        aborted: None,
        stop,
        progress,
    };
    let mut phases: Vec<PhaseReport> = Vec::new();
    let mut aborted = None;
    let mut i = 0;
    while i < scenario.phases.len() {
        if stop.load(Ordering::Relaxed) || aborted.is_some() {
            phases.push(skipped(&scenario.phases[i], ctx.start));
            i += 1;
            continue;
        }
        let group = chain(&scenario.phases[i..]);
        let at = ctx.start.elapsed();
        ctx.evidence = ctx.record();
        let mut reports = run_group(&mut ctx, i, group)?;
        let evidence = ctx.evidence.take().map(|r| r.finish());
        finish_phases(
            &scenario.phases[i..i + group],
            &mut reports,
            evidence.as_ref(),
            scenario.max_lag,
        );
        if let Some(e) = evidence {
            ctx.whole_evidence
                .get_or_insert_with(EvidenceReport::default)
                .append(e, at.as_millis() as u64);
        }
        if let Some(name) = ctx.aborted.take() {
            aborted = Some(name);
        }
        for (p, report) in scenario.phases[i..i + group].iter().zip(&mut reports) {
            let failed = report.thresholds.iter().any(|t| t.status == Judged::Fail);
            if p.abort_on_fail && failed && report.inconclusive.is_none() {
                aborted = Some(p.name.clone());
            }
        }
        phases.extend(reports);
        i += group;
    }
    let whole_evidence = ctx.whole_evidence.take();
    subject.stop();
    let interrupted = stop.load(Ordering::Relaxed);
    let thresholds = judge_whole_run(scenario, &phases, whole_evidence.as_ref());
    let (status, reasons) = status(
        scenario,
        &phases,
        &thresholds,
        interrupted,
        aborted.as_deref(),
    );
    Ok(ScenarioReport {
        schema: SCENARIO_SCHEMA.to_string(),
        floodgate_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: ScenarioEcho {
            name: scenario.name.clone(),
            file: request.file,
            sha256: scenario_sha256(&request.text),
            text: request.text,
            sets: request.sets,
        },
        seed,
        target: target_url,
        started_at_unix_s: started_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        elapsed_s: ctx.start.elapsed().as_secs_f64(),
        partial: interrupted || aborted.is_some(),
        status,
        reasons,
        phases,
        thresholds,
        evidence: whole_evidence,
        baseline: None,
        shard: request.shard,
        host: shard::host_name(),
        hosts: Vec::new(),
    })
}

/// The scenario hash a report records (`scenario.sha256`): SHA-256 of the
/// scenario text as read, hex. `--set` and `--target` do not change it.
pub fn scenario_sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How many phases from the first of `phases` run as one engine run: a
/// run of `steady`, `ramp` and `pause` phases with the same load settings,
/// starting and ending with one that sends load (a pause at either end
/// runs alone, as a wait).
fn chain(phases: &[Phase]) -> usize {
    let chains = |p: &Phase| {
        matches!(
            p.kind,
            PhaseKind::Steady { .. } | PhaseKind::Ramp { .. } | PhaseKind::Pause { .. }
        )
    };
    let sends = |p: &Phase| matches!(p.kind, PhaseKind::Steady { .. } | PhaseKind::Ramp { .. });
    let Some(first) = phases.first().filter(|p| sends(p)) else {
        return 1;
    };
    let mut last_sending = 0;
    for (k, p) in phases.iter().enumerate().skip(1) {
        let same_load = matches!(p.kind, PhaseKind::Pause { .. }) || p.load == first.load;
        if !chains(p) || !same_load {
            break;
        }
        if sends(p) {
            last_sending = k;
        }
    }
    last_sending + 1
}

/// A phase's rate segment, in a chain.
fn segment(p: &Phase) -> Segment {
    match &p.kind {
        PhaseKind::Steady {
            rate_per_s,
            duration,
        } => Segment::steady(*rate_per_s, *duration),
        PhaseKind::Ramp {
            from_per_s,
            to_per_s,
            duration,
        } => Segment {
            duration: *duration,
            from_per_s: *from_per_s,
            to_per_s: *to_per_s,
        },
        PhaseKind::Pause { duration } => Segment::steady(0.0, *duration),
        _ => unreachable!("only steady, ramp and pause phases chain"),
    }
}

impl Ctx<'_> {
    /// The engine's plan for `input`, pointed at the run's target.
    fn plan(&self, phase: &Phase, mut input: PlanInput) -> Result<Plan, RunError> {
        if phase.load.threads.is_none() {
            input.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        input.shard = self.shard;
        if self.target.is_none() {
            // The reference server this run started: trust its certificate
            // and send its token.
            let reference = &self.scenario.reference;
            if let Some(ca) = &reference.ca_pem {
                input.target = Some(format!("https://{}/", self.addr));
                input.ca_pem = Some(ca.clone());
            }
            input.headers.extend(reference.authorization_header());
        }
        floodgate_loadgen::Plan::validate(input)
            .map(|v| v.with_target_addr(self.addr))
            .map_err(|error| RunError::Plan {
                phase: phase.name.clone(),
                error,
            })
    }

    /// A new evidence recorder for the target, when it listens here.
    fn record(&self) -> Option<floodgate_kernel::Recorder> {
        Evidence::for_target(self.addr, EVIDENCE_INTERVAL)
            .inspect_err(|e| tracing::warn!("recording no kernel evidence: {e}"))
            .ok()
            .flatten()
    }

    /// Opens an evidence phase called `name` now.
    fn mark(&self, name: &str) {
        if let Some(e) = &self.evidence {
            e.mark(name);
        }
    }

    /// Runs `plan`, opening evidence phase `names[k]` at the start of
    /// segment `k`, and reporting progress as phase `first + k`.
    fn run_engine(
        &mut self,
        plan: &Plan,
        first: usize,
        names: &[String],
        note: Option<String>,
    ) -> floodgate_loadgen::run::RunResult {
        let starts: Vec<Duration> = match &plan.profile {
            Some(p) => p.starts().to_vec(),
            None => vec![Duration::ZERO],
        };
        self.mark(&names[0]);
        let mut marked = 1;
        let phases = self.scenario.phases.len();
        let scenario = self.scenario;
        // The phases of this run that stop it at their first failed
        // window (`abort_on_fail` with `over` thresholds), by segment.
        let watched: Vec<(usize, &Phase)> = names
            .iter()
            .enumerate()
            .filter_map(|(k, name)| {
                let p = scenario.phases.get(first + k).filter(|p| &p.name == name)?;
                let windowed = p.thresholds.iter().any(|t| t.over.is_some());
                (p.abort_on_fail && !p.warmup && windowed).then_some((k, p))
            })
            .collect();
        let live = (!watched.is_empty()).then(|| Arc::new(LiveSeries::new(plan.threads)));
        // With a watch, the engine stops on its own flag, which Ctrl-C sets
        // through the progress tick as well as a failed window.
        let own_stop = Arc::new(AtomicBool::new(false));
        let stop = if live.is_some() { &own_stop } else { self.stop };
        let global_stop = self.stop;
        let mut aborted = None;
        let evidence = self.evidence.as_ref();
        let progress = &mut *self.progress;
        let ran = floodgate_loadgen::run_live(plan, stop, live.clone(), |s: &Snapshot| {
            if let Some(live) = &live {
                if global_stop.load(Ordering::Relaxed) {
                    own_stop.store(true, Ordering::Relaxed);
                }
                for (k, p) in &watched {
                    let intervals = floodgate_loadgen::report::interval_models(&live.complete(*k));
                    let failed = p
                        .thresholds
                        .iter()
                        .filter(|t| t.over.is_some())
                        .any(|t| judge::judge_intervals(t, &intervals).status == Judged::Fail);
                    if failed && aborted.is_none() {
                        tracing::warn!(phase = %p.name, "a window failed with abort_on_fail: stopping the run");
                        aborted = Some(p.name.clone());
                        own_stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            // The evidence phases follow the segments within a second (the
            // progress tick); the run's own books split exactly.
            while marked < starts.len() && s.elapsed >= starts[marked] {
                if let Some(e) = evidence {
                    e.mark(&names[marked]);
                }
                marked += 1;
            }
            let k = marked - 1;
            // The segments of a chain are phases; a find-capacity step's
            // (settle, step) are one phase's.
            let index = if names.len() > 1
                && first + k < phases
                && names[k] == scenario.phases[first + k].name
            {
                first + k
            } else {
                first
            };
            let p = &scenario.phases[index];
            progress(Progress {
                phase: index,
                phases,
                name: &p.name,
                kind: p.kind.name(),
                elapsed: s.elapsed.saturating_sub(starts[index - first]),
                planned: p.planned_duration(),
                load: Some(*s),
                note: note.clone(),
            });
        });
        if aborted.is_some() {
            self.aborted = aborted;
        }
        ran
    }

    /// Waits `d`, or until Ctrl-C; progress once a second.
    fn wait(&mut self, d: Duration, index: usize) {
        let p = &self.scenario.phases[index];
        let t0 = Instant::now();
        let mut next = t0;
        while t0.elapsed() < d && !self.stop.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                next += Duration::from_secs(1);
                (self.progress)(Progress {
                    phase: index,
                    phases: self.scenario.phases.len(),
                    name: &p.name,
                    kind: p.kind.name(),
                    elapsed: t0.elapsed(),
                    planned: Some(d),
                    load: None,
                    note: None,
                });
            }
            std::thread::sleep(Duration::from_millis(50).min(d.saturating_sub(t0.elapsed())));
        }
    }

    /// Seconds since the scenario started.
    fn since(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Runs `count` phases from `first` (one chain, or one phase).
fn run_group(ctx: &mut Ctx, first: usize, count: usize) -> Result<Vec<PhaseReport>, RunError> {
    let scenario = ctx.scenario;
    let phases = &scenario.phases[first..first + count];
    let start_s = ctx.since();
    let p = &phases[0];
    let mut report = phase_report(p, start_s);
    match &p.kind {
        PhaseKind::Steady { .. } | PhaseKind::Ramp { .. } => {
            let mut input = p
                .plan_input(ctx.target.as_deref(), ctx.seed)
                .expect("a steady or ramp phase sends load");
            input.rate_per_s = None;
            input.duration = None;
            input.segments = phases.iter().map(segment).collect();
            let plan = ctx.plan(p, input)?;
            let names: Vec<String> = phases.iter().map(|p| p.name.clone()).collect();
            let ran = ctx.run_engine(&plan, first, &names, None);
            let starts = plan.profile.as_ref().map(|p| p.starts().to_vec());
            let mut out = Vec::new();
            for (k, phase) in phases.iter().enumerate() {
                let offset = starts.as_ref().map_or(Duration::ZERO, |s| s[k]);
                let run = floodgate_loadgen::report::build_phase(&plan, &ran, k);
                let mut r = PhaseReport {
                    elapsed_s: run.elapsed_s,
                    skipped: ran.partial && ran.elapsed < offset,
                    ..phase_report(phase, start_s + offset.as_secs_f64())
                };
                if !matches!(phase.kind, PhaseKind::Pause { .. }) {
                    r.run = Some(run);
                }
                out.push(r);
            }
            return Ok(out);
        }
        PhaseKind::Pause { duration } => ctx.wait(*duration, first),
        PhaseKind::Closed { .. }
        | PhaseKind::ConnectStorm { .. }
        | PhaseKind::Hold { .. }
        | PhaseKind::Malformed { .. } => {
            let input = p
                .plan_input(ctx.target.as_deref(), ctx.seed)
                .expect("the phase sends load");
            let plan = ctx.plan(p, input)?;
            let ran = ctx.run_engine(&plan, first, std::slice::from_ref(&p.name), None);
            report.run = Some(floodgate_loadgen::report::build(&plan, &ran));
        }
        PhaseKind::BacklogProbe(b) => {
            ctx.mark(&p.name);
            let request = ProbeRequest {
                subject: ProbeSubject::Target {
                    target: ctx.addr.to_string(),
                    pause: TargetPause::Endpoint,
                    backlog: Some(scenario.server.backlog).filter(|_| ctx.target.is_none()),
                },
                connects: b.connects,
                window: b.window,
                serve_timeout: b.serve_timeout,
                check: floodgate_probe::ServeCheck::Http {
                    path: b.check_path.clone(),
                },
                authorization: ctx
                    .target
                    .is_none()
                    .then(|| scenario.reference.authorization())
                    .flatten(),
            };
            match crate::probe::run(&request, ctx.stop) {
                Ok(probe) => report.probe = Some(probe),
                Err(e) => {
                    report.inconclusive = Some(format!("the probe could not run: {e}"));
                }
            }
        }
        PhaseKind::FindCapacity(f) => {
            report.capacity = Some(find::run(ctx, first, f)?);
        }
    }
    report.elapsed_s = ctx.since() - start_s;
    Ok(vec![report])
}

/// A phase that did not run.
fn skipped(p: &Phase, start: Instant) -> PhaseReport {
    PhaseReport {
        skipped: true,
        ..phase_report(p, start.elapsed().as_secs_f64())
    }
}

/// The report of phase `p`, started `start_s` into the run, before it has
/// any figure.
fn phase_report(p: &Phase, start_s: f64) -> PhaseReport {
    PhaseReport::new(&p.name, p.kind.name(), p.warmup, start_s)
}
