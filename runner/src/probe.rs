//! One backlog probe from a request to its report: choose the subject (a
//! reference server child, a bare listener in this process, or an existing
//! target) and how to pause it, raise the descriptor limit, size the burst
//! from the kernel's own backlog when the listener is local, run the probe,
//! and resume and stop the subject on every path. `floodgate probe backlog`
//! calls it. A target's `--pid` is checked first (`target_pid`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floodgate_kernel::{self as kernel, lab};
pub use floodgate_probe::ServeCheck;
use floodgate_probe::{
    Config, ConfigError, ConfigInput, HeldListener, Pause, PauseEndpoint, ProbeError, StopSignal,
};
use floodgate_reports::ProbeReport;

use crate::{reference, target_pid};

/// The backlog of a subject started here when none is asked for.
pub const DEFAULT_BACKLOG: u32 = 128;

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A reference server started as a child (`floodgate serve --backlog
    /// N`), paused with SIGSTOP, or with its `/admin/pause-accept` endpoint.
    ServerChild { backlog: u32, pause_endpoint: bool },
    /// A bare listener in this process with this backlog, which accepts
    /// nothing while probed.
    Socket { backlog: u32 },
    /// An existing listener at `HOST:PORT`, and the backlog it asked for if
    /// known (to compare).
    Target {
        target: String,
        pause: TargetPause,
        backlog: Option<u32>,
    },
}

/// How an existing target is stopped from accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPause {
    /// SIGSTOP to this process, always SIGCONT afterwards. It must own the
    /// target's listener, and be neither this process, its parent nor its
    /// process group: [`run`] refuses any other before stopping anything.
    Pid(i32),
    /// floodgate's reference server: `POST /admin/pause-accept`.
    Endpoint,
}

/// A probe to run.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub subject: Subject,
    /// Connects in the burst; `None` for the probe's default.
    pub connects: Option<usize>,
    pub window: Duration,
    pub serve_timeout: Duration,
    /// How the held connections are shown served after the resume.
    pub check: ServeCheck,
    /// The `Authorization` value (`Bearer TOKEN`) sent with the pause
    /// request, for a target whose admin endpoints need a token (the serve
    /// check counts any complete response, a 401 too).
    pub authorization: Option<String>,
}

/// Why a probe gave no report.
#[derive(Debug, thiserror::Error)]
pub enum ProbeRunError {
    /// The request itself is invalid (exit 2), found before anything was
    /// paused: `field` is the request's field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The probe's limits refused the request (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("starting the reference server: {0}")]
    Server(#[from] reference::ChildError),
    #[error("binding a listener on 127.0.0.1:0: {0}")]
    Listener(std::io::Error),
    /// The target's listener could not be read to check `--pid` against it.
    #[error("reading the target's listener through sock_diag, to check the PID: {0}")]
    Diag(kernel::DiagError),
    /// Stopped by SIGINT/SIGTERM; the target was resumed first.
    #[error("interrupted; the target was resumed")]
    Interrupted,
    #[error("probing the accept queue of {target}: {error}")]
    Probe {
        target: SocketAddr,
        error: ProbeError,
    },
}

impl ProbeRunError {
    /// Whether this is the request's fault (exit 2) rather than a failure
    /// to run (exit 3).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            ProbeRunError::Invalid { .. } | ProbeRunError::Config(_)
        )
    }
}

impl ProbeRequest {
    /// Checks what can be checked of the request offline, before anything
    /// starts (also where the probe runs elsewhere, in a lab namespace):
    /// the check path. [`run`] checks it first too.
    pub fn check(&self) -> Result<(), ProbeRunError> {
        if let ServeCheck::Http { path } = &self.check {
            floodgate_probe::check_path(path)?;
        }
        Ok(())
    }
}

/// Runs `request`; `interrupted` (set by a signal handler) stops it early,
/// after resuming the target.
pub fn run(request: &ProbeRequest, interrupted: &AtomicBool) -> Result<ProbeReport, ProbeRunError> {
    request.check()?;
    let somaxconn = lab::somaxconn();
    // Raise the descriptor limit before any child starts, so a reference
    // server started here inherits room for the whole held queue.
    let wanted = floodgate_probe::MAX_DESCRIPTORS;
    if let Err(e) = kernel::raise_fd_limit(Some(wanted)) {
        tracing::warn!(
            "cannot raise the descriptor limit to {wanted}: {e}; a large burst may run out of \
             descriptors"
        );
    }
    // The pause length asked of `/admin/pause-accept`: the burst's window
    // plus room to fire the connects and read the queue on a busy machine.
    // The server cannot end a pause early, so the serve check waits this
    // out; a pause that runs out mid-burst fails the probe (`PauseExpired`)
    // rather than miscounting.
    let pause_length = request.window + Duration::from_secs(3);
    let mut child = None;
    let (target, mut pause, configured): (SocketAddr, Box<dyn Pause>, Option<u32>) = match &request
        .subject
    {
        Subject::Target {
            target,
            pause,
            backlog,
        } => {
            let addr = resolve(target)?;
            let pause: Box<dyn Pause> = match pause {
                TargetPause::Pid(pid) => {
                    target_pid::check(*pid, addr)?;
                    Box::new(StopSignal::new(*pid))
                }
                TargetPause::Endpoint => Box::new(
                    PauseEndpoint::new(addr, pause_length)
                        .with_authorization(request.authorization.clone()),
                ),
            };
            (addr, pause, *backlog)
        }
        Subject::ServerChild {
            backlog,
            pause_endpoint,
        } => {
            let mut args = vec!["--backlog".to_string(), backlog.to_string()];
            if *pause_endpoint {
                args.push("--admin".into());
            }
            let server = reference::Child::start(&args)?;
            let addr = server.addr();
            let pause: Box<dyn Pause> = if *pause_endpoint {
                Box::new(PauseEndpoint::new(addr, pause_length))
            } else {
                Box::new(StopSignal::new(server.pid()))
            };
            child = Some(server);
            (addr, pause, Some(*backlog))
        }
        Subject::Socket { backlog } => {
            let backlog_arg = i32::try_from(*backlog).map_err(|_| ProbeRunError::Invalid {
                field: "backlog",
                message: format!("{backlog} is above {}", i32::MAX),
            })?;
            let listener = HeldListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), backlog_arg)
                .map_err(ProbeRunError::Listener)?;
            let addr = listener.local_addr();
            (addr, Box::new(listener), Some(*backlog))
        }
    };
    let config = Config::new(ConfigInput {
        target,
        connects: request.connects,
        window: request.window,
        serve_timeout: request.serve_timeout,
        check: request.check.clone(),
        configured_backlog: configured,
        somaxconn,
        // The kernel's own backlog for the listener, when it is local, sizes
        // the burst better than any flag.
        kernel_backlog: kernel::local_listener(target).map(|s| s.backlog()),
    })?;
    let result = floodgate_probe::run(&config, pause.as_mut(), interrupted);
    // Resume (StopSignal's Drop) before the server child is killed.
    drop(pause);
    drop(child);
    match result {
        Ok(report) => Ok(report),
        Err(ProbeError::Interrupted) => Err(ProbeRunError::Interrupted),
        Err(error) => Err(ProbeRunError::Probe { target, error }),
    }
}

fn resolve(target: &str) -> Result<SocketAddr, ProbeRunError> {
    let invalid = |message: String| ProbeRunError::Invalid {
        field: "target",
        message,
    };
    target
        .to_socket_addrs()
        .map_err(|e| invalid(format!("{target}: expected HOST:PORT ({e})")))?
        .next()
        .ok_or_else(|| invalid(format!("{target}: the name resolved to no address")))
}
