//! One load run from a validated plan to its [`Run`]: raise the descriptor
//! limit, start the reference server when the plan names no target, resolve
//! the target, connect once to see that something listens there, record the
//! kernel's evidence when the target is in this network namespace, run the
//! engine, and assemble the run model with its verdict. `floodgate load`
//! calls it; so will every other caller that runs load.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floodgate_kernel::Evidence;
use floodgate_loadgen::plan::{Mode, ValidPlan};
use floodgate_loadgen::run::Snapshot;
use floodgate_loadgen::{Plan, PlanError};
use floodgate_reports::Run;

use crate::reference::InProcess;

/// How often the evidence sampler reads the listener's queue: 20 Hz.
const EVIDENCE_INTERVAL: Duration = Duration::from_millis(50);

/// What to run.
pub struct LoadRequest {
    /// The validated plan (no name looked up yet). Without a target, a
    /// reference server is started for the run and the plan is pointed at
    /// it.
    pub plan: ValidPlan,
    /// The reference server's configuration, when one is started.
    pub server: floodgate_server::Config,
}

/// Why a run could not start. Nothing of the run was sent.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target does not resolve (an input error: exit 2).
    #[error(transparent)]
    Resolve(PlanError),
    #[error("starting the reference server on 127.0.0.1:0: {0}")]
    Server(#[from] floodgate_server::BindError),
    #[error("cannot connect to the target {url} ({addr}); is a server listening there? {error}")]
    Unreachable {
        url: String,
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
}

/// A finished run.
pub struct Finished {
    pub run: Run,
    /// With `malformed`: the malformed inputs that coincided with a failure,
    /// as (file name, bytes), ready to save as `http_connection` fuzz inputs.
    pub malformed_files: Vec<(String, Vec<u8>)>,
}

/// Where a run's load goes: the reference server started for it, or the
/// target's address, looked up once; with the descriptor limit raised.
/// `floodgate load` and `floodgate run` start theirs this one way.
pub struct Subject {
    /// The reference server, when the run started one; stopped by
    /// [`Subject::stop`].
    pub server: Option<InProcess>,
    pub addr: std::net::SocketAddr,
}

impl Subject {
    /// Raises the descriptor limit, then starts the reference server
    /// (`server`) when there is no `target`, or resolves the target (the
    /// only lookup) and, when `preflight` is given, connects once within it
    /// so an unreachable target is one clear error rather than a run full
    /// of `connect_refused`.
    pub fn start(
        target: Option<&floodgate_loadgen::plan::TargetUrl>,
        server: floodgate_server::Config,
        preflight: Option<Duration>,
    ) -> Result<Subject, LoadError> {
        match floodgate_kernel::raise_fd_limit(None) {
            Ok(n) => tracing::debug!(nofile = n, "raised RLIMIT_NOFILE"),
            Err(e) => tracing::warn!("cannot raise RLIMIT_NOFILE: {e}"),
        }
        let Some(url) = target else {
            let server = InProcess::start(server)?;
            let addr = server.addr();
            return Ok(Subject {
                server: Some(server),
                addr,
            });
        };
        let addr = url.resolve().map_err(LoadError::Resolve)?;
        if let Some(timeout) = preflight {
            TcpStream::connect_timeout(&addr, timeout).map_err(|error| LoadError::Unreachable {
                url: url.url.clone(),
                addr,
                error,
            })?;
        }
        Ok(Subject { server: None, addr })
    }

    /// Stops the reference server, if one was started.
    pub fn stop(self) {
        if let Some(server) = self.server {
            server.stop();
        }
    }
}

/// Runs `request` to the end, or until `stop` is set (then in-flight
/// requests get the plan's grace). `started` is called once the plan is
/// resolved, before the first request; `progress` about once a second.
pub fn run(
    request: LoadRequest,
    stop: &Arc<AtomicBool>,
    started: impl FnOnce(&Plan),
    progress: impl FnMut(&Snapshot),
) -> Result<Finished, LoadError> {
    let preflight = matches!(request.plan.mode(), Mode::Requests | Mode::Churn)
        .then(|| request.plan.connect_timeout());
    let subject = Subject::start(request.plan.target(), request.server, preflight)?;
    let plan = request.plan.with_target_addr(subject.addr);
    started(&plan);
    tracing::info!(
        seed = plan.seed,
        target = %plan.target.url,
        connections = plan.connections,
        threads = plan.threads,
        "load starting"
    );
    let evidence = Evidence::for_target(plan.target.addr, EVIDENCE_INTERVAL)
        .inspect_err(|e| tracing::warn!("recording no kernel evidence: {e}"))
        .ok()
        .flatten();
    let ran = floodgate_loadgen::run(&plan, stop, progress);
    let mut run = floodgate_loadgen::report::build(&plan, &ran);
    if let Some(recorder) = evidence {
        run = run.with_evidence(recorder.finish());
    }
    subject.stop();
    let malformed_files = match &plan.malformed {
        Some(m) => {
            floodgate_loadgen::malformed::files_to_save(&m.generator, &ran.recorder.malformed)
        }
        None => Vec::new(),
    };
    Ok(Finished {
        run,
        malformed_files,
    })
}
