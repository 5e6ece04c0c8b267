//! The validated scenario: what a scenario file means, with every unit
//! applied (`Duration`s, requests per second, fractions) and every default
//! filled in. Nothing here can be invalid; how it was written (spans, keys)
//! is left behind in the `ScenarioFile`.

use std::time::Duration;

use floodgate_loadgen::plan::{Arrival, CloseWith, MixEntry, Mode, PlanInput};
use floodgate_server::Config as ServerConfig;

use super::threshold::Threshold;

/// A send later than this after its intended time, on an idle connection,
/// counts as the generator's own lateness (`generator_lagged`): a loaded CI
/// runner's wake-ups are often 10 ms late, which is still the schedule
/// held; later than this, and more than 1% of requests, the phase is
/// inconclusive.
pub const LAG_THRESHOLD: Duration = Duration::from_millis(25);

/// The share of an open loop's requests the generator may send late
/// (`generator_lagged`) before a phase is inconclusive: `max_lag`.
pub const DEFAULT_MAX_LAG: f64 = 0.01;

/// A validated scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// `None`: drawn at random when the run starts (and recorded).
    pub seed: Option<u64>,
    /// The target URL, checked offline but not resolved; `None`: the
    /// reference server is started, configured by `server`.
    pub target: Option<String>,
    /// Judged over the whole run.
    pub thresholds: Vec<Threshold>,
    /// `max_lag`: the share of requests the generator may send late before
    /// a phase says nothing about the server (exit 4).
    pub max_lag: f64,
    /// The `[server]` table over `floodgate serve`'s defaults; its `listen`
    /// address is the runner's choice.
    pub server: ServerConfig,
    /// How the run's own clients get into that server.
    pub reference: ReferenceClient,
    /// In the order they run.
    pub phases: Vec<Phase>,
}

/// What the run's own clients (the load, the backlog probe) need to use
/// the reference server a scenario starts: the certificate to trust when it
/// serves TLS, and the token to send when it asks for one.
#[derive(Debug, Clone, Default)]
pub struct ReferenceClient {
    /// PEM certificates to trust (the self-signed certificate, or the
    /// `tls_cert` chain).
    pub ca_pem: Option<Vec<u8>>,
    /// The bearer token, printable ASCII.
    pub bearer: Option<String>,
}

impl ReferenceClient {
    /// The `Authorization` header line the run's requests carry, if any.
    pub fn authorization_header(&self) -> Option<String> {
        self.authorization().map(|v| format!("Authorization: {v}"))
    }

    /// That header's value, `Bearer TOKEN`.
    pub fn authorization(&self) -> Option<String> {
        self.bearer.as_ref().map(|t| format!("Bearer {t}"))
    }
}

impl Scenario {
    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// How long the phases take back to back, when every phase says:
    /// `None` when a closed phase ends by request count, or a find-capacity
    /// phase has no `max_duration`.
    pub fn planned_duration(&self) -> Option<Duration> {
        self.phases.iter().map(Phase::planned_duration).sum()
    }
}

/// One phase of a scenario.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Unique in the scenario; `--set phase.NAME.KEY=VALUE` uses it.
    pub name: String,
    pub kind: PhaseKind,
    /// Measured and reported, never judged.
    pub warmup: bool,
    /// Stop the run at the first failed threshold window.
    pub abort_on_fail: bool,
    pub thresholds: Vec<Threshold>,
    /// `[defaults]` with this phase's overrides; unused by `pause` and
    /// `backlog-probe`.
    pub load: LoadSettings,
}

impl Phase {
    /// How long the phase runs, when that is known before it runs.
    pub fn planned_duration(&self) -> Option<Duration> {
        match &self.kind {
            PhaseKind::Steady { duration, .. }
            | PhaseKind::Ramp { duration, .. }
            | PhaseKind::ConnectStorm { duration, .. }
            | PhaseKind::Hold { duration, .. }
            | PhaseKind::Malformed { duration, .. }
            | PhaseKind::Pause { duration } => Some(*duration),
            PhaseKind::Closed { duration, .. } => *duration,
            PhaseKind::BacklogProbe(p) => Some(p.window + p.serve_timeout),
            PhaseKind::FindCapacity(f) => f.max_duration,
        }
    }

    /// The load engine's input for this phase's load (for a ramp, at its
    /// highest rate; for find-capacity, one step at `start`), or `None`
    /// for a phase that sends no load. `seed` is the scenario's.
    pub fn plan_input(&self, target: Option<&str>, seed: u64) -> Option<PlanInput> {
        let l = &self.load;
        let mut input = PlanInput {
            target: target.map(str::to_string),
            arrival: l.arrival,
            connections: l.connections,
            threads: l.threads.unwrap_or(1),
            seed,
            mix: l.mix.clone(),
            connect_timeout: l.connect_timeout,
            read_timeout: l.read_timeout,
            lag_threshold: LAG_THRESHOLD,
            grace: Duration::from_secs(2),
            ..PlanInput::default()
        };
        match &self.kind {
            PhaseKind::Steady {
                rate_per_s,
                duration,
            } => {
                input.rate_per_s = Some(*rate_per_s);
                input.duration = Some(*duration);
            }
            PhaseKind::Ramp {
                from_per_s,
                to_per_s,
                duration,
            } => {
                input.rate_per_s = Some(from_per_s.max(*to_per_s));
                input.duration = Some(*duration);
            }
            PhaseKind::Closed { duration, requests } => {
                input.closed = true;
                input.duration = *duration;
                input.requests = *requests;
            }
            PhaseKind::ConnectStorm {
                rate_per_s,
                duration,
                close_with,
            } => {
                input.rate_per_s = Some(*rate_per_s);
                input.duration = Some(*duration);
                input.mode = Mode::Connect;
                input.close_with = *close_with;
            }
            PhaseKind::Hold { duration, trickle } => {
                input.trickle = *trickle;
                input.closed = true;
                input.duration = Some(*duration);
                input.mode = Mode::Hold;
            }
            PhaseKind::Malformed {
                rate_per_s,
                fraction,
                duration,
            } => {
                input.rate_per_s = *rate_per_s;
                input.closed = rate_per_s.is_none();
                input.duration = Some(*duration);
                input.malformed = Some(*fraction);
            }
            PhaseKind::FindCapacity(f) => {
                input.rate_per_s = Some(f.start_per_s);
                input.duration = Some(f.step);
                input.mode = f.mode;
            }
            PhaseKind::BacklogProbe(_) | PhaseKind::Pause { .. } => return None,
        }
        Some(input)
    }
}

/// What a phase does.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseKind {
    /// `steady`: an open loop at a constant rate.
    Steady { rate_per_s: f64, duration: Duration },
    /// `ramp`: an open loop whose rate moves linearly from `from` to `to`
    /// over the same connections.
    Ramp {
        from_per_s: f64,
        to_per_s: f64,
        duration: Duration,
    },
    /// `closed`: each connection sends its next request when the last is
    /// answered, for a duration, a request count, or whichever ends first.
    Closed {
        duration: Option<Duration>,
        requests: Option<u64>,
    },
    /// `connect-storm`: connect and close at a rate (`--mode connect`).
    ConnectStorm {
        rate_per_s: f64,
        duration: Duration,
        close_with: CloseWith,
    },
    /// `hold`: `connections` idle connections held for the duration.
    Hold {
        duration: Duration,
        /// Trickle a never-ending request head, a byte this often, on
        /// every held connection (slowloris) instead of holding it silent.
        trickle: Option<Duration>,
    },
    /// `malformed`: valid load (open loop with a rate, closed without) of
    /// which `fraction` is sent malformed (`--malformed`).
    Malformed {
        rate_per_s: Option<f64>,
        fraction: f64,
        duration: Duration,
    },
    /// `backlog-probe`: the probe of `floodgate probe backlog`, judged by
    /// `probe.capacity`.
    BacklogProbe(BacklogProbe),
    /// `pause`: nothing, for a cooldown.
    Pause { duration: Duration },
    /// `find-capacity`: the highest rate that holds the SLO.
    FindCapacity(FindCapacity),
}

impl PhaseKind {
    /// The names a phase's `kind` is written with.
    pub const NAMES: [&'static str; 9] = [
        "steady",
        "ramp",
        "closed",
        "connect-storm",
        "hold",
        "malformed",
        "backlog-probe",
        "pause",
        "find-capacity",
    ];

    /// The name of this kind, as written.
    pub fn name(&self) -> &'static str {
        match self {
            PhaseKind::Steady { .. } => "steady",
            PhaseKind::Ramp { .. } => "ramp",
            PhaseKind::Closed { .. } => "closed",
            PhaseKind::ConnectStorm { .. } => "connect-storm",
            PhaseKind::Hold { .. } => "hold",
            PhaseKind::Malformed { .. } => "malformed",
            PhaseKind::BacklogProbe(_) => "backlog-probe",
            PhaseKind::Pause { .. } => "pause",
            PhaseKind::FindCapacity(_) => "find-capacity",
        }
    }
}

/// The settings of a `backlog-probe` phase, as `floodgate probe backlog`'s
/// flags; the subject's backlog is `[server] backlog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogProbe {
    /// Connects in the burst; `None`: the probe's default.
    pub connects: Option<usize>,
    pub window: Duration,
    pub serve_timeout: Duration,
    pub check_path: String,
}

/// The settings of a `find-capacity` phase.
#[derive(Debug, Clone, PartialEq)]
pub struct FindCapacity {
    pub start_per_s: f64,
    pub max_per_s: f64,
    /// The rate is multiplied by this per step until a step fails.
    pub growth: f64,
    /// The measured part of each step.
    pub step: Duration,
    /// Load at the step's rate before it is measured.
    pub settle: Duration,
    /// No load after each step.
    pub cooldown: Duration,
    /// Bisection stops when the bracket is within this fraction of the
    /// passing rate.
    pub precision: f64,
    /// Re-runs of the best passing rate, each of which must pass.
    pub confirm: u32,
    pub max_steps: u32,
    pub max_duration: Option<Duration>,
    /// What each step must hold.
    pub slo: Vec<Threshold>,
    /// What a step sends: requests (default) or connects.
    pub mode: Mode,
}

/// `[defaults]` and the per-phase overrides of a load.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSettings {
    pub connections: usize,
    /// `None`: the number of cores, at run time.
    pub threads: Option<usize>,
    pub arrival: Arrival,
    /// `None`: one `GET` of the target's path.
    pub mix: Option<Vec<MixEntry>>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for LoadSettings {
    /// `floodgate load`'s defaults.
    fn default() -> LoadSettings {
        LoadSettings {
            connections: 50,
            threads: None,
            arrival: Arrival::Uniform,
            mix: None,
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(10),
        }
    }
}
