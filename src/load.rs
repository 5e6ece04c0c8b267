//! `floodgate load`: the flags (parsed input), turning them into a plan
//! input validated offline, putting plan errors in the flags' words, Ctrl-C
//! handling, progress display, and writing the summary and `--out` JSON.
//! Running it (the reference server when no `--target` is given, the
//! target's resolution, evidence, the engine) is `floodgate_runner::load`.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use floodgate_runner::plan::{Arrival, CloseWith, MixEntry, Mode, Plan, PlanError, PlanInput};
use floodgate_runner::{Exit, LoadError, LoadRequest};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::flags::duration;
use crate::out::OutFile;

/// Flags of `floodgate load`; boxed so the subcommand enum stays small.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: Box<Flags>,
}

/// The flags themselves.
#[derive(Debug, clap::Args)]
struct Flags {
    /// `http://HOST:PORT/PATH`, `https://HOST:PORT/PATH` or `tcp://HOST:PORT`.
    /// Without it, a reference server is started on 127.0.0.1 (port 0) for
    /// the run.
    #[arg(long)]
    target: Option<String>,
    /// Open loop: this many requests per second in total, at intended times.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Closed loop (the default): each connection sends its next request
    /// when the last one is answered.
    #[arg(long)]
    closed: bool,
    /// Open-loop arrivals: evenly spaced or a Poisson process.
    #[arg(long, value_enum, default_value = "uniform")]
    arrival: ArrivalArg,
    /// Connection slots (in hold mode: connections to hold).
    #[arg(long, short = 'c', default_value_t = 50)]
    connections: usize,
    /// How long to schedule requests (e.g. 10s, 500ms, 2m); 10s if neither
    /// this nor --requests is given.
    #[arg(long, short = 'd', value_parser = duration)]
    duration: Option<Duration>,
    /// Stop after this many requests in total.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Load threads (default: the number of cores).
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// Seed of the schedule and request mix (default: random, and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// requests (keep-alive), churn (a connection per request), connect
    /// (connect then close), hold (open and keep idle).
    #[arg(long, value_enum, default_value = "requests")]
    mode: ModeArg,
    /// How --mode connect closes: fin, or rst (SO_LINGER 0).
    #[arg(long, value_enum, default_value = "fin")]
    close_with: CloseArg,
    /// Request method (default GET, or POST with --body-bytes).
    #[arg(long)]
    method: Option<String>,
    /// An extra request header, `Name: value` (repeatable); not
    /// Content-Length, Transfer-Encoding, Host or Connection, which the body
    /// size, --target and --mode decide.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Request body size in bytes; at most 1048576 (1 MiB, the reference
    /// server's request body limit).
    #[arg(long, default_value_t = 0)]
    body_bytes: usize,
    /// Weighted request mix: `WEIGHT METHOD PATH [BODY_BYTES]`, comma-separated,
    /// e.g. '8 GET /, 1 POST /echo 1024, 1 GET /bytes/4096'; BODY_BYTES at
    /// most 1048576.
    #[arg(long, conflicts_with = "mix_file")]
    mix: Option<String>,
    /// A file with one mix entry per line.
    #[arg(long, value_name = "FILE")]
    mix_file: Option<PathBuf>,
    /// Check every /echo and /bytes/N body byte for byte.
    #[arg(long)]
    verify: bool,
    /// tcp://: the bytes to send per request (`\r`, `\n`, `\t`, `\\`, `\xNN` escapes).
    #[arg(long, conflicts_with = "payload_file")]
    payload: Option<String>,
    /// tcp://: a file whose bytes are sent per request.
    #[arg(long, value_name = "FILE")]
    payload_file: Option<PathBuf>,
    /// tcp://: the reply is complete after this many bytes.
    #[arg(long, value_name = "N")]
    expect_bytes: Option<u64>,
    /// tcp://: the reply is complete after this delimiter (escapes as --payload).
    #[arg(long, value_name = "STR")]
    expect_delimiter: Option<String>,
    #[arg(long, value_parser = duration, default_value = "3s")]
    connect_timeout: Duration,
    #[arg(long, value_parser = duration, default_value = "10s")]
    read_timeout: Duration,
    /// An idle connection starting a send later than this past its intended
    /// time counts the request as generator_lagged.
    #[arg(long, value_parser = duration, default_value = "10ms")]
    lag_threshold: Duration,
    /// After Ctrl-C or the end of --duration, how long in-flight requests may finish.
    #[arg(long, value_parser = duration, default_value = "2s")]
    grace: Duration,
    /// Source addresses to spread connects over, comma-separated
    /// (e.g. 127.0.0.2,127.0.0.3), to extend the ephemeral ports.
    #[arg(long, value_delimiter = ',')]
    source: Vec<IpAddr>,
    /// https://: trust the root certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// https://: do not verify the server's certificate.
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// Write the result as JSON to this file. It is opened before the run
    /// starts (exit 2 if it cannot be written) and written after it.
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
    /// Send this fraction of requests (above 0, at most 0.5) malformed, each
    /// on its own connection: known-malformed requests and fresh mutations
    /// of a valid one, reproducible with --seed. The result gets a
    /// `malformed` section.
    #[arg(long, value_name = "FRACTION", allow_negative_numbers = true)]
    malformed: Option<f64>,
    /// Save every malformed input that coincided with a failure (an
    /// unexpected answer, or a valid request failing within 100 ms) into
    /// this directory, as http_connection fuzz inputs named by hash.
    #[arg(long, value_name = "DIR", requires = "malformed")]
    malformed_save: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ArrivalArg {
    Uniform,
    Poisson,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Requests,
    Churn,
    Connect,
    Hold,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CloseArg {
    Fin,
    Rst,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let args = *args.flags;
    let seed = args.seed.unwrap_or_else(random_seed);
    // The files the flags name are input too: one that cannot be read is a
    // usage error, found before anything starts.
    let mix_text = match mix_text(&args) {
        Ok(text) => text,
        Err(e) => return Ok(input_error(&e)),
    };
    let mix = match mix_text.as_deref().map(MixEntry::parse_list) {
        Some(Err(e)) => return Ok(usage_error(&args, &e)),
        Some(Ok(mix)) => Some(mix),
        None => None,
    };
    // Validate the flags before starting anything.
    let input = match plan_input(&args, seed, mix) {
        Ok(input) => input,
        Err(e) => return Ok(input_error(&e)),
    };
    let plan = match Plan::validate(input) {
        Ok(valid) => valid,
        Err(e) => return Ok(usage_error(&args, &e)),
    };
    // Opened before the run, so a path that cannot be written costs no run.
    let out = match args.out.as_deref().map(OutFile::open).transpose() {
        Ok(out) => out,
        Err((path, e)) => {
            eprintln!(
                "floodgate load: error: cannot write --out {}: {e}",
                path.display()
            );
            return Ok(Exit::Usage.into());
        }
    };
    let stop = crate::stop_on_signals()?;
    let request = LoadRequest {
        plan,
        server: floodgate_runner::server::Config::default(),
    };
    let progress = Progress::default();
    let finished = floodgate_runner::run_load(
        request,
        &stop,
        |plan| progress.start(plan),
        |s| progress.show(s),
    );
    progress.finish();
    let finished = match finished {
        Ok(f) => f,
        Err(LoadError::Resolve(e)) => return Ok(usage_error(&args, &e)),
        Err(LoadError::Unreachable { url, addr, error }) => {
            eprintln!(
                "floodgate load: error: cannot connect to --target {url} ({addr}): {error}; is a \
                 server listening there?"
            );
            return Ok(Exit::CouldNotRun.into());
        }
        Err(e) => {
            eprintln!("floodgate load: error: {e}");
            return Ok(Exit::CouldNotRun.into());
        }
    };
    let result = &finished.run;
    if let Some(dir) = &args.malformed_save {
        save_malformed(dir, &finished.malformed_files)?;
    }
    floodgate_reports::text::write(result, std::io::stdout().lock())
        .context("writing the summary to stdout")?;
    if let Some(out) = out {
        out.write(|w| Ok(result.write_json(w)?))?;
    }
    if result.partial {
        return Ok(Exit::Interrupted.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// On a terminal, an indicatif bar (over the duration, or the request
/// count); otherwise one log line a second.
#[derive(Default)]
struct Progress {
    bar: std::cell::OnceCell<Option<(ProgressBar, bool)>>,
}

impl Progress {
    fn start(&self, plan: &Plan) {
        let bar = std::io::stderr().is_terminal().then(|| {
            let len = match (plan.requests, plan.duration) {
                (Some(n), _) => n,
                (None, Some(d)) => d.as_secs().max(1),
                (None, None) => 0,
            };
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            (bar, plan.requests.is_some())
        });
        let _ = self.bar.set(bar);
    }

    fn show(&self, s: &floodgate_runner::Snapshot) {
        let secs = s.elapsed.as_secs_f64();
        let rate = s.done as f64 / secs.max(1e-9);
        let p99_ms = s.p99_us as f64 / 1000.0;
        match self.bar.get() {
            Some(Some((bar, by_count))) => {
                bar.set_position(if *by_count {
                    s.done
                } else {
                    s.elapsed.as_secs()
                });
                bar.set_message(format!(
                    "{rate:.0}/s  {} in flight  p99 {p99_ms:.3} ms  {} errors",
                    s.in_flight, s.errors
                ));
            }
            _ => tracing::info!(
                elapsed_s = format!("{secs:.1}"),
                done = s.done,
                rate_per_s = format!("{rate:.0}"),
                in_flight = s.in_flight,
                p99_ms = format!("{p99_ms:.3}"),
                errors = s.errors,
                "progress"
            ),
        }
    }

    fn finish(&self) {
        if let Some(Some((bar, _))) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// The text of `--mix`, or of the `--mix-file` (one entry per line).
fn mix_text(args: &Flags) -> anyhow::Result<Option<String>> {
    Ok(match &args.mix_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --mix-file {}", path.display()))?,
        ),
        None => args.mix.clone(),
    })
}

fn plan_input(args: &Flags, seed: u64, mix: Option<Vec<MixEntry>>) -> anyhow::Result<PlanInput> {
    let payload = match (&args.payload, &args.payload_file) {
        (Some(p), _) => Some(crate::flags::unescape(p)),
        (None, Some(path)) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading --payload-file {}", path.display()))?,
        ),
        (None, None) => None,
    };
    let ca_pem = match &args.ca {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading --ca {}", path.display()))?)
        }
        None => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(PlanInput {
        target: args.target.clone(),
        rate_per_s: args.rate,
        closed: args.closed,
        arrival: match args.arrival {
            ArrivalArg::Uniform => Arrival::Uniform,
            ArrivalArg::Poisson => Arrival::Poisson,
        },
        connections: args.connections,
        duration: args.duration,
        requests: args.requests,
        threads: args.threads.unwrap_or(cores),
        seed,
        mode: match args.mode {
            ModeArg::Requests => Mode::Requests,
            ModeArg::Churn => Mode::Churn,
            ModeArg::Connect => Mode::Connect,
            ModeArg::Hold => Mode::Hold,
        },
        close_with: match args.close_with {
            CloseArg::Fin => CloseWith::Fin,
            CloseArg::Rst => CloseWith::Rst,
        },
        method: args.method.clone(),
        headers: args.headers.clone(),
        body_bytes: args.body_bytes,
        mix,
        verify: args.verify,
        payload,
        expect_bytes: args.expect_bytes,
        expect_delimiter: args.expect_delimiter.as_deref().map(crate::flags::unescape),
        connect_timeout: args.connect_timeout,
        read_timeout: args.read_timeout,
        lag_threshold: args.lag_threshold,
        grace: args.grace,
        sources: args.source.clone(),
        ca_pem,
        insecure: args.insecure,
        malformed: args.malformed,
        segments: Vec::new(),
        trickle: None,
        shard: None,
    })
}

/// Reports a plan error in the words of the flags, and gives the exit code
/// for flags that cannot run.
fn usage_error(args: &Flags, e: &PlanError) -> ExitCode {
    eprintln!("floodgate load: error: {}", flag_message(args, e));
    Exit::Usage.into()
}

/// Reports a file named by a flag that cannot be read (the error's context
/// names the flag and the file): invalid input.
fn input_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("floodgate load: error: {e:#}");
    Exit::Usage.into()
}

/// `e` with its field and the fields its reason names (in backticks) put
/// as flags: `rate: must be above 0 ..., got 0` reads
/// `--rate 0: must be above 0 ...`.
fn flag_message(args: &Flags, e: &PlanError) -> String {
    let flag = flag_of(args, e.field());
    let reason: String = e
        .reason()
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                flag_of(args, part)
            } else {
                part.to_string()
            }
        })
        .collect();
    match e.got() {
        Some(got) => format!("{flag} {got}: {reason}"),
        None => format!("{flag}: {reason}"),
    }
}

/// The flag (or the part of one) that sets the plan field at `path`:
/// `rate` is `--rate`, `mix[1].path` is `--mix entry 2 PATH`.
fn flag_of(args: &Flags, path: &str) -> String {
    let mix = || match &args.mix_file {
        Some(file) => format!("--mix-file {}", file.display()),
        None => "--mix".to_string(),
    };
    if let Some((index, rest)) = path
        .strip_prefix("mix[")
        .and_then(|p| p.split_once(']'))
        .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)))
    {
        let word = match rest {
            ".weight" => " WEIGHT",
            ".method" => " METHOD",
            ".path" => " PATH",
            ".body_bytes" => " BODY_BYTES",
            _ => "",
        };
        return format!("{} entry {}{word}", mix(), index + 1);
    }
    match path {
        "mix" => mix(),
        // The value is in the message; which --header it was is plain.
        _ if path.starts_with("headers[") => "--header".to_string(),
        "payload" if args.payload_file.is_some() => "--payload-file".to_string(),
        "sources" => "--source".to_string(),
        _ => format!("--{}", path.replace('_', "-")),
    }
}

/// Writes the malformed inputs that coincided with a failure into `dir`,
/// ready to copy into `fuzz/regressions/http_connection/` for replay.
fn save_malformed(dir: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating --malformed-save {}", dir.display()))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("writing --malformed-save {}", path.display()))?;
    }
    eprintln!(
        "floodgate load: saved {} malformed input(s) that coincided with a failure to {}",
        files.len(),
        dir.display()
    );
    Ok(())
}

/// A seed from the clock and the PID; it is printed, so any run can be repeated.
fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    nanos ^ (u64::from(std::process::id()) << 40)
}
