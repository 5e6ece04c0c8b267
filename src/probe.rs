//! `floodgate probe backlog`: flags, choosing the probe subject (a reference
//! server child, an in-process listener, or a target given by address), the
//! lab mode that re-runs the probe inside a fresh network namespace, and
//! printing the result. The probe itself is `floodgate_probe`.
//!
//! Lab mode (`--netns`) creates `floodgate-<pid>-<n>` with `ip netns add`,
//! brings up its loopback, and re-executes this same command under
//! `ip netns exec` with a hidden `--inside-netns NAME`; that inner process
//! applies the `--sysctl` values (only `net.*` keys, which are per namespace)
//! and runs the probe. The outer process only waits, forwards SIGINT/SIGTERM
//! and deletes the namespace on every exit path (a `Drop` guard).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use floodgate_kernel::{self as kernel, lab};
use floodgate_probe::{
    self as probe, Config, ConfigError, ConfigInput, Field, HeldListener, Pause, PauseEndpoint,
    StopSignal,
};
use floodgate_reports::ProbeReport;

use crate::flags;

const AFTER_HELP: &str = "\
Subjects:
  (no --target)        start a reference server (`floodgate serve --backlog N`)
                       as a child and pause it with SIGSTOP, or with its
                       /admin/pause-accept endpoint given --pause-endpoint
  --subject socket     a bare listener inside floodgate with backlog N that
                       accepts nothing during the burst
  --target HOST:PORT   an existing listener, paused by --pid PID (SIGSTOP, and
                       always SIGCONT afterwards, by a watchdog process if
                       the probe is killed) or --pause-endpoint

Lab mode: --netns runs everything in a fresh network namespace (root only),
with the --sysctl values given, and removes it afterwards.

Exit codes:
  0  measured: the queue filled and every held connection was served
  1  error, the queue never filled (fire more connects), or a held
     connection was not served after the resume
  130 interrupted (the target was resumed first)";

/// Flags of `floodgate probe backlog`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// Probe an existing listener instead of starting a reference server.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["netns", "subject"])]
    target: Option<String>,
    /// Pause by POST /admin/pause-accept?ms=... (floodgate's reference server).
    #[arg(long, conflicts_with = "pid")]
    pause_endpoint: bool,
    /// Pause the target process with SIGSTOP (always resumed with SIGCONT).
    #[arg(long, value_name = "PID", requires = "target")]
    pid: Option<i32>,
    /// What to probe when there is no --target.
    #[arg(long, value_enum, default_value_t = Subject::Server)]
    subject: Subject,
    /// The listen(2) backlog of the subject started here (default 128); with
    /// --target, the backlog the target asked for, if known, to compare.
    #[arg(long, value_name = "N")]
    backlog: Option<u32>,
    /// Connects in the burst (default: the expected capacity + 32, or 4129
    /// when unknown; at most 5000).
    #[arg(long, value_name = "N")]
    connects: Option<usize>,
    /// How long connects may take and still count; below the first SYN
    /// retransmission (1 s).
    #[arg(long, value_name = "DURATION", default_value = "900ms", value_parser = flags::duration)]
    window: Duration,
    /// How long held connections get to be answered after the resume.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = flags::duration)]
    serve_timeout: Duration,
    /// Path requested on every held connection after the resume.
    #[arg(long, value_name = "PATH", default_value = "/health")]
    check_path: String,
    /// Write the report as JSON (top-level `capacity`, `implied_backlog`).
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
    /// Run in a fresh network namespace (root), removed afterwards.
    #[arg(long)]
    netns: bool,
    /// A net.* sysctl for the namespace, e.g. net.core.somaxconn=64
    /// (repeatable; needs --netns).
    #[arg(long = "sysctl", value_name = "KEY=VALUE", value_parser = parse_sysctl)]
    sysctls: Vec<(String, String)>,
    /// Set by --netns on the command it re-runs inside the namespace.
    #[arg(long, value_name = "NAME", hide = true, conflicts_with = "netns")]
    inside_netns: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Subject {
    /// The reference server, as a child process.
    Server,
    /// A bare listener in this process.
    Socket,
}

const DEFAULT_BACKLOG: u32 = 128;
const EXIT_INTERRUPTED: u8 = 130;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.sysctls.is_empty() && !args.netns && args.inside_netns.is_none() {
        bail!(
            "--sysctl changes kernel settings, so it is only allowed with --netns (a fresh \
             network namespace); without it, it would change this host's settings"
        );
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    if args.netns {
        return rerun_in_new_netns(&interrupted);
    }
    if args.inside_netns.is_some() {
        for (key, value) in &args.sysctls {
            lab::write_sysctl(key, value).with_context(|| format!("--sysctl {key}={value}"))?;
        }
    }
    probe_here(&args, &interrupted)
}

fn probe_here(args: &Args, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let somaxconn = lab::somaxconn();
    // Raise the descriptor limit before any child starts, so a reference
    // server started here inherits room for the whole held queue.
    let wanted = probe::MAX_DESCRIPTORS;
    if let Err(e) = kernel::raise_fd_limit(Some(wanted)) {
        tracing::warn!(
            "cannot raise the descriptor limit to {wanted}: {e}; a large burst may run out of \
             descriptors"
        );
    }
    let mut server = None;
    let (target, mut pause, configured): (SocketAddr, Box<dyn Pause>, Option<u32>) =
        match &args.target {
            Some(target) => {
                let addr = resolve(target)?;
                let pause: Box<dyn Pause> = match (args.pid, args.pause_endpoint) {
                    (Some(pid), _) => Box::new(StopSignal::new(pid)),
                    (None, true) => Box::new(PauseEndpoint::new(addr, pause_length(args))),
                    (None, false) => bail!(
                        "--target needs a way to stop it from accepting: --pid PID (SIGSTOP) or \
                         --pause-endpoint (floodgate's reference server)"
                    ),
                };
                (addr, pause, args.backlog)
            }
            None => {
                let backlog = args.backlog.unwrap_or(DEFAULT_BACKLOG);
                match args.subject {
                    Subject::Server => {
                        let child = ServerChild::start(backlog)?;
                        let addr = child.addr;
                        let pause: Box<dyn Pause> = if args.pause_endpoint {
                            Box::new(PauseEndpoint::new(addr, pause_length(args)))
                        } else {
                            Box::new(StopSignal::new(child.pid()))
                        };
                        server = Some(child);
                        (addr, pause, Some(backlog))
                    }
                    Subject::Socket if args.pause_endpoint => bail!(
                        "--subject socket has no /admin/pause-accept endpoint; drop \
                         --pause-endpoint (the socket simply does not accept while probed)"
                    ),
                    Subject::Socket => {
                        let backlog_arg = i32::try_from(backlog)
                            .with_context(|| format!("--backlog {backlog} is above i32::MAX"))?;
                        let listener =
                            HeldListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), backlog_arg)
                                .context("binding a listener on 127.0.0.1:0")?;
                        let addr = listener.local_addr();
                        (addr, Box::new(listener), Some(backlog))
                    }
                }
            }
        };
    let config = Config::new(ConfigInput {
        target,
        connects: args.connects,
        window: args.window,
        serve_timeout: args.serve_timeout,
        check_path: args.check_path.clone(),
        configured_backlog: configured,
        somaxconn,
        // The kernel's own backlog for the listener, when it is local, sizes
        // the burst better than any flag.
        kernel_backlog: kernel::local_listener(target).map(|s| s.backlog()),
    })
    .map_err(flag_error)?;
    let result = probe::run(&config, pause.as_mut(), interrupted);
    // Resume (StopSignal's Drop) before the server child is killed.
    drop(pause);
    drop(server);
    let report = match result {
        Ok(r) => r,
        Err(probe::ProbeError::Interrupted) => {
            eprintln!("floodgate: interrupted; the target was resumed");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("probing the accept queue of {target}"));
        }
    };
    floodgate_reports::text::write_probe(&report, std::io::stdout().lock())
        .context("writing the report to stdout")?;
    if let Some(path) = &args.out {
        write_json(path, &report, args.inside_netns.as_deref())?;
    }
    Ok(if report.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Names the flag behind a field the probe's configuration refused.
fn flag_error(e: ConfigError) -> anyhow::Error {
    let flag = match e.field {
        Field::Connects => "--connects",
        Field::Window => "--window",
    };
    anyhow!("{flag} {}: must be {}", e.value, e.field.allowed())
}

/// The accept pause asked of `/admin/pause-accept`: the burst's window plus
/// room to fire the connects and read the queue on a busy machine. The
/// server cannot end a pause early, so the serve check waits this out; a
/// pause that runs out mid-burst fails the probe (`PauseExpired`) rather
/// than miscounting.
fn pause_length(args: &Args) -> Duration {
    args.window + Duration::from_secs(3)
}

fn resolve(target: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    target
        .to_socket_addrs()
        .with_context(|| format!("--target {target}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("--target {target}: the name resolved to no address"))
}

/// Writes the report, with `netns` the lab namespace's name (or null).
fn write_json(path: &Path, report: &ProbeReport, netns: Option<&str>) -> anyhow::Result<()> {
    let report = ProbeReport {
        netns: netns.map(str::to_owned),
        ..report.clone()
    };
    let json = serde_json::to_vec_pretty(&report).context("serialising the probe report")?;
    std::fs::write(path, json).with_context(|| format!("writing --out {}", path.display()))
}

/// A `floodgate serve` child on 127.0.0.1:0; killed by its own PID when
/// dropped, and by the kernel if this process dies first (PDEATHSIG).
struct ServerChild {
    child: Child,
    addr: SocketAddr,
}

impl ServerChild {
    fn start(backlog: u32) -> anyhow::Result<ServerChild> {
        let exe = std::env::current_exe().context("finding the floodgate executable")?;
        let mut cmd = Command::new(&exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--backlog"])
            .arg(backlog.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
        // this child if floodgate dies, so a SIGSTOPped server is never left
        // behind.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the server's stdout is piped")?;
        let mut server = ServerChild {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        // Read the `listening on ADDR` line on a thread, so a server that
        // hangs before printing it cannot hang the probe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("floodgate-serve-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let addr = lines.by_ref().map_while(Result::ok).find_map(|line| {
                    line.strip_prefix("listening on ")
                        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                });
                let _ = tx.send(addr);
                // Keep draining, so the server never blocks on a full pipe.
                for _ in lines {}
            })
            .context("starting the server-stdout thread")?;
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(addr)) => server.addr = addr,
            Ok(None) => bail!("floodgate serve exited before printing `listening on ADDR`"),
            Err(_) => bail!("floodgate serve printed no `listening on ADDR` within 10 s"),
        }
        Ok(server)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `--sysctl KEY=VALUE`, allowing only `net.*` keys.
fn parse_sysctl(text: &str) -> Result<(String, String), String> {
    lab::parse_sysctl(text).map_err(|e| e.to_string())
}

/// Lab mode for any subcommand: creates a fresh network namespace with `lo`
/// up, re-runs this process's own command line inside it (minus `--netns`,
/// plus `--inside-netns NAME`, which the subcommand must accept as a hidden
/// flag and answer by applying its `--sysctl`s with [`lab::write_sysctl`]),
/// waits for it while forwarding SIGINT/SIGTERM, deletes the namespace on
/// every path, and returns the inner exit code. `floodgate load --netns` can use
/// it as it is.
pub(crate) fn rerun_in_new_netns(interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let ns = lab::Netns::create().context("creating the lab network namespace")?;
    let exe = std::env::current_exe().context("finding the floodgate executable")?;
    // Re-run this very command inside the namespace, minus --netns.
    let args: Vec<_> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--netns")
        .collect();
    let mut child = ns
        .command(&exe)
        .args(&args)
        .args(["--inside-netns", ns.name()])
        .spawn()
        .with_context(|| format!("starting the probe in network namespace {}", ns.name()))?;
    let mut forwarded = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the probe")? {
            break status;
        }
        if interrupted.load(Ordering::Relaxed) && !forwarded {
            // The inner probe resumes its target and exits on SIGTERM.
            // SAFETY: kill(2) on our own child's PID, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(ns);
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
