//! `floodgate probe backlog`: the flags, mapped to a
//! `floodgate_runner::ProbeRequest` (the subject and its pause), lab mode
//! (`--netns`: the same command re-run by `floodgate_runner::lab` inside a
//! fresh network namespace, with a hidden `--inside-netns NAME`, where the
//! `--sysctl` values are applied once `floodgate_kernel::lab` has proved
//! the namespace is not the host's), and printing the report. Running the
//! probe is `floodgate_runner::probe`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use floodgate_reports::ProbeReport;
use floodgate_runner::netns as lab;
use floodgate_runner::probe::{DEFAULT_BACKLOG, ServeCheck};
use floodgate_runner::{Exit, ProbeRequest, ProbeRunError, Subject, TargetPause};

use crate::flags;
use crate::out::OutFile;

/// What `floodgate probe backlog --help` adds: the subjects, lab mode and
/// the exit codes (the table every subcommand shares, with the probe's own
/// cases).
fn after_help() -> String {
    format!(
        "{INTRO}{}

For the probe: 0 is measured (the queue filled and every held connection \
was served); 1 is a measurement that does not hold (the queue never filled: \
fire more connects; or a held connection was not served after the resume); \
2 means nothing was paused; 130 resumed the target first.
",
        floodgate_runner::exit::EXIT_CODES_HELP
    )
}

const INTRO: &str = "\
Subjects:
  (no --target)        start a reference server (`floodgate serve --backlog N`)
                       as a child and pause it with SIGSTOP, or with its
                       /admin/pause-accept endpoint given --pause-endpoint
  --subject socket     a bare listener inside floodgate with backlog N that
                       accepts nothing during the burst
  --target HOST:PORT   an existing listener, paused by --pid PID (SIGSTOP, and
                       always SIGCONT afterwards, by a watchdog process if
                       the probe is killed) or --pause-endpoint; PID must own
                       the listener (its socket is among /proc/PID/fd) and
                       be neither floodgate, its parent nor its process group

Lab mode: --netns runs everything in a fresh network namespace (root only),
with the --sysctl values given, and removes it afterwards.

";

/// Flags of `floodgate probe backlog`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = after_help())]
pub struct Args {
    /// Probe an existing listener instead of starting a reference server.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["netns", "subject"])]
    target: Option<String>,
    /// Pause by POST /admin/pause-accept?ms=... (floodgate's reference server).
    #[arg(long, conflicts_with = "pid")]
    pause_endpoint: bool,
    /// With --target --pause-endpoint: send `Authorization: Bearer TOKEN`
    /// (TOKEN: this file's contents, which no one else may read) with the
    /// pause request, for a server started with --auth-token-file.
    #[arg(long, value_name = "PATH", requires = "pause_endpoint")]
    auth_token_file: Option<PathBuf>,
    /// Pause the target process with SIGSTOP (always resumed with SIGCONT);
    /// it must own the --target listener.
    // Negative numbers parse, so that they are refused in words of ours.
    #[arg(
        long,
        value_name = "PID",
        requires = "target",
        allow_negative_numbers = true
    )]
    pid: Option<i32>,
    /// What to probe when there is no --target.
    #[arg(long, value_enum, default_value_t = SubjectArg::Server)]
    subject: SubjectArg,
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
    /// Path requested on every held connection after the resume (--check http).
    #[arg(long, value_name = "PATH", default_value = "/health")]
    check_path: String,
    /// How the held connections are shown served after the resume: http
    /// (GET --check-path on each) or accept, for any TCP service (the
    /// target's accept queue drains to 0, seen through sock_diag: the
    /// target must listen in this network namespace). Default: accept for
    /// a tcp://HOST:PORT target, else http.
    #[arg(long, value_enum, value_name = "KIND")]
    check: Option<CheckArg>,
    /// --check accept: also send this on every held connection (escapes
    /// \r \n \t \xNN, as load's --payload) ...
    #[arg(long, value_name = "BYTES", requires = "check_delimiter")]
    check_payload: Option<String>,
    /// ... and count it served once its reply ends with this.
    #[arg(long, value_name = "BYTES", requires = "check_payload")]
    check_delimiter: Option<String>,
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
enum CheckArg {
    /// GET --check-path on every held connection.
    Http,
    /// The accept queue drains (any TCP service).
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SubjectArg {
    /// The reference server, as a child process.
    Server,
    /// A bare listener in this process.
    Socket,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // --inside-netns claims a lab namespace: prove it before anything else,
    // so that a hand-typed one can neither write the host's sysctls nor
    // label a report with a namespace it did not run in.
    if let Some(name) = &args.inside_netns {
        if let Err(e) = lab::outside_host_netns() {
            return Ok(usage(&format!("--inside-netns {name}: {e}")));
        }
    }
    if !args.sysctls.is_empty() && !args.netns && args.inside_netns.is_none() {
        return Ok(usage(
            "--sysctl changes kernel settings, so it is only allowed with --netns (a fresh \
             network namespace); without it, it would change this host's settings",
        ));
    }
    // Every flag is checked before anything starts, in lab mode too.
    let request = match request(&args) {
        Ok(r) => r,
        Err(message) => return Ok(usage(&message)),
    };
    if let Err(e) = request.check() {
        return Ok(usage(&refusal(&e).unwrap_or_else(|| e.to_string())));
    }
    // Opened before anything starts (in lab mode, before the namespace), so
    // a path that cannot be written costs no probe.
    let out = match args.out.as_deref().map(OutFile::open).transpose() {
        Ok(out) => out,
        Err((path, e)) => {
            return Ok(usage(&format!(
                "cannot write --out {}: {e}",
                path.display()
            )));
        }
    };
    let interrupted = crate::stop_on_signals()?;
    if args.netns {
        // Re-run this very command inside the namespace, minus --netns.
        let rest: Vec<_> = std::env::args_os()
            .skip(1)
            .filter(|a| a != "--netns")
            .collect();
        let status = floodgate_runner::lab::rerun_in_netns(&rest, &interrupted)?;
        // The command inside wrote the report if it exited 0 or 1; else a
        // file created here is removed again when `out` is dropped.
        if let (Some(out), Some(0 | 1)) = (out, status.code()) {
            out.keep();
        }
        return Ok(match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(Exit::CouldNotRun.code())),
            None => Exit::CouldNotRun.into(),
        });
    }
    if args.inside_netns.is_some() {
        for (key, value) in &args.sysctls {
            match lab::write_sysctl(key, value) {
                Ok(()) => {}
                Err(e @ (lab::LabError::HostNetns { .. } | lab::LabError::NetnsUnknown(_))) => {
                    return Ok(usage(&format!("--sysctl {key}={value}: {e}")));
                }
                Err(e) => return Err(e).with_context(|| format!("--sysctl {key}={value}")),
            }
        }
    }
    let report = match floodgate_runner::run_probe(&request, &interrupted) {
        Ok(r) => r,
        Err(ProbeRunError::Interrupted) => {
            eprintln!("floodgate: interrupted; the target was resumed");
            return Ok(Exit::Interrupted.into());
        }
        Err(e) if e.is_invalid_input() => {
            return Ok(usage(&refusal(&e).unwrap_or_else(|| e.to_string())));
        }
        Err(e) => {
            eprintln!("floodgate probe backlog: error: {e}");
            return Ok(Exit::CouldNotRun.into());
        }
    };
    floodgate_reports::text::write_probe(&report, std::io::stdout().lock())
        .context("writing the report to stdout")?;
    if let Some(out) = out {
        out.write(|w| write_json(w, &report, args.inside_netns.as_deref()))?;
    }
    Ok(if report.holds() {
        Exit::Pass.into()
    } else {
        Exit::Failed.into()
    })
}

/// The flags as a probe request, or what is wrong with them.
fn request(args: &Args) -> Result<ProbeRequest, String> {
    let subject = match (&args.target, args.subject) {
        (Some(target), _) => Subject::Target {
            target: target.strip_prefix("tcp://").unwrap_or(target).to_string(),
            pause: match (args.pid, args.pause_endpoint) {
                (Some(pid), _) => TargetPause::Pid(pid),
                (None, true) => TargetPause::Endpoint,
                (None, false) => {
                    return Err("--target needs a way to stop it from accepting: --pid PID \
                                (SIGSTOP) or --pause-endpoint (floodgate's reference server)"
                        .into());
                }
            },
            backlog: args.backlog,
        },
        (None, SubjectArg::Server) => Subject::ServerChild {
            backlog: args.backlog.unwrap_or(DEFAULT_BACKLOG),
            pause_endpoint: args.pause_endpoint,
        },
        (None, SubjectArg::Socket) if args.pause_endpoint => {
            return Err(
                "--subject socket has no /admin/pause-accept endpoint; drop \
                        --pause-endpoint (the socket simply does not accept while probed)"
                    .into(),
            );
        }
        (None, SubjectArg::Socket) => Subject::Socket {
            backlog: args.backlog.unwrap_or(DEFAULT_BACKLOG),
        },
    };
    Ok(ProbeRequest {
        subject,
        connects: args.connects,
        window: args.window,
        serve_timeout: args.serve_timeout,
        check: serve_check(args)?,
        authorization: match &args.auth_token_file {
            None => None,
            Some(path) => {
                let token = floodgate_runner::server::token_file::read_for_header(path)
                    .map_err(|e| format!("--auth-token-file {e}"))?;
                Some(format!("Bearer {token}"))
            }
        },
    })
}

/// `--check` and its payload as the probe's serve check.
fn serve_check(args: &Args) -> Result<ServeCheck, String> {
    let tcp = args
        .target
        .as_deref()
        .is_some_and(|t| t.starts_with("tcp://"));
    let exchange = match (&args.check_payload, &args.check_delimiter) {
        (Some(p), Some(d)) => Some((crate::flags::unescape(p), crate::flags::unescape(d))),
        _ => None,
    };
    match args.check.unwrap_or(if tcp {
        CheckArg::Accept
    } else {
        CheckArg::Http
    }) {
        CheckArg::Http if exchange.is_some() => Err(
            "--check-payload: sent only with --check accept (for a tcp:// target, the \
                 default); --check http sends GET --check-path"
                .into(),
        ),
        CheckArg::Http => Ok(ServeCheck::Http {
            path: args.check_path.clone(),
        }),
        CheckArg::Accept => Ok(ServeCheck::Accept { exchange }),
    }
}

/// A refused request in the flags' words: `--FLAG VALUE: must be ...`.
fn refusal(e: &ProbeRunError) -> Option<String> {
    match e {
        ProbeRunError::Invalid { field, message } => Some(format!("{} {message}", flag_of(field))),
        ProbeRunError::Config(e) => Some(format!(
            "{} {}: must be {}",
            flag_of(e.field.name()),
            e.value,
            e.field.allowed()
        )),
        _ => None,
    }
}

/// The flag behind a field of the probe request.
fn flag_of(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

fn usage(message: &str) -> ExitCode {
    eprintln!("floodgate probe backlog: error: {message}");
    Exit::Usage.into()
}

/// Writes the report as JSON, with `netns` the lab namespace's name (or
/// null).
fn write_json(w: impl Write, report: &ProbeReport, netns: Option<&str>) -> anyhow::Result<()> {
    let report = ProbeReport {
        netns: netns.map(str::to_owned),
        ..report.clone()
    };
    serde_json::to_writer_pretty(w, &report).context("serialising the probe report")
}

/// Parses `--sysctl KEY=VALUE`, allowing only `net.*` keys.
fn parse_sysctl(text: &str) -> Result<(String, String), String> {
    lab::parse_sysctl(text).map_err(|e| e.to_string())
}
