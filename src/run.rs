//! `floodgate run SCENARIO.toml`: validates the scenario (with `--target`
//! and `--set` overrides) before anything starts, opens `--out DIR`, runs
//! it through `floodgate_runner::run` (as one shard with `--shard`, from a
//! `--start-at` barrier), shows progress (an indicatif bar per phase on a
//! terminal, a line a second otherwise), compares the run with its
//! `--baseline` reports (read and checked before anything starts), writes
//! `DIR/report.json` and beside it every file of `floodgate_render::FILES`
//! (summary.md, report.html, junit.xml), prints the summary and exits with
//! the status's code (5 for a regression of a run that passed).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use floodgate_reports::scenario::Status;
use floodgate_runner::Exit;
use floodgate_runner::compare::{Base, NewScenario};
use floodgate_runner::run::{Progress, RunRequest};
use floodgate_runner::scenario;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::out::OutFile;

/// Flags of `floodgate run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file (TOML), e.g. scenarios/smoke.toml.
    #[arg(value_name = "SCENARIO")]
    file: PathBuf,
    /// Load this target instead of the scenario's (http://HOST:PORT/PATH,
    /// https://..., tcp://HOST:PORT); validated as the file's `target`.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// Where report.json, summary.md, report.html and junit.xml are
    /// written (created if missing).
    #[arg(long, value_name = "DIR", default_value = "floodgate-report")]
    out: PathBuf,
    /// Override a field of the scenario, validated like the file:
    /// `phase.capacity.max=200k/s`, `server.backlog=64`, `seed=7`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Compare the run with this earlier run's report.json (repeat for
    /// several, e.g. the last nights'); read and checked before the run
    /// starts. A regression exits 5 only when the run itself passed: a
    /// failed threshold still exits 1, inconclusive 4, interrupted 130.
    #[arg(long, value_name = "REPORT")]
    baseline: Vec<PathBuf>,
    #[command(flatten)]
    gate: crate::report::compare::Gate,
    /// Run shard INDEX of COUNT (from 0: 0/3, 1/3, 2/3): the connection
    /// slots INDEX, INDEX+COUNT, … of every phase, each with the schedule
    /// it has in the whole run, so the shards together send exactly the
    /// unsharded run. Needs a target and a seed; merge the shards' reports
    /// with `floodgate report merge`.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = crate::flags::shard)]
    shard: Option<floodgate_reports::scenario::Shard>,
    /// Start the first phase at this instant (Unix seconds, or a UTC RFC
    /// 3339 time), after the target is checked: the start barrier that
    /// lines shards on different machines up by wall clock.
    #[arg(long, value_name = "TIME", value_parser = crate::flags::instant)]
    start_at: Option<std::time::SystemTime>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("floodgate run: error: cannot read {name}: {e}");
            return Ok(Exit::Usage.into());
        }
    };
    let mut sets = args.sets.clone();
    if let Some(t) = &args.target {
        sets.push(format!("target={}", toml_string(t)));
    }
    let scenario = match scenario::check(&name, &text, &sets) {
        Ok(s) => s,
        Err(errors) => {
            eprint!("{errors}");
            return Ok(Exit::Usage.into());
        }
    };
    if let Some(shard) = args.shard {
        let why = floodgate_runner::run::shard::check(&scenario, shard);
        if !why.is_empty() {
            for w in why {
                eprintln!("floodgate run: error: {w}");
            }
            return Ok(Exit::Usage.into());
        }
    }
    // Read and checked before the run, so a wrong base costs no run.
    let bases = match read_bases(&args.baseline, &name, &scenario, &text) {
        Ok(b) => b,
        Err(msg) => {
            eprintln!("floodgate run: error: --baseline {msg}");
            return Ok(Exit::Usage.into());
        }
    };
    // Opened before the run, so a directory that cannot be written costs
    // no run.
    let report_path = args.out.join("report.json");
    let out = std::fs::create_dir_all(&args.out)
        .map_err(|e| (report_path.as_path(), e))
        .and_then(|()| OutFile::open(&report_path));
    let out = match out {
        Ok(f) => f,
        Err((path, e)) => {
            eprintln!(
                "floodgate run: error: cannot write --out {}: {e}",
                path.display()
            );
            return Ok(Exit::Usage.into());
        }
    };
    let stop = crate::stop_on_signals()?;
    let request = RunRequest {
        scenario,
        file: name,
        text,
        sets: args.sets,
        shard: args.shard,
        start_at: args.start_at,
    };
    let mut bars = Bars::default();
    let result = floodgate_runner::run::run(request, &stop, &mut |p| bars.show(&p));
    bars.finish();
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floodgate run: error: {e}");
            return Ok(if e.is_invalid_input() {
                Exit::Usage
            } else {
                Exit::CouldNotRun
            }
            .into());
        }
    };
    if !bases.is_empty() {
        let options = args.gate.options(false);
        match floodgate_runner::compare::compare(&bases, &report, "this run", options) {
            Ok(c) => report.baseline = Some(c),
            // The bases were checked before the run: what is left is this
            // run's own report, which the engine wrote.
            Err(e) => {
                eprintln!("floodgate run: error: comparing with the baseline: {e}");
                return Ok(Exit::CouldNotRun.into());
            }
        }
    }
    out.write(|w| {
        report.write_json(&mut *w)?;
        Ok(writeln!(w)?)
    })?;
    let mut stdout = std::io::stdout().lock();
    floodgate_reports::summary::write(&mut stdout, &report).context("writing the summary")?;
    writeln!(stdout, "report: {}", report_path.display()).context("writing the summary")?;
    // The same files `floodgate report render` writes, from the same model.
    let written = floodgate_render::write_all(&report, &args.out)
        .with_context(|| format!("rendering {}", report_path.display()))?;
    for path in written {
        writeln!(stdout, "wrote {}", path.display()).context("writing the summary")?;
    }
    let exit = match report.status {
        Status::Pass => Exit::Pass,
        Status::Fail => Exit::Failed,
        Status::Inconclusive => Exit::Inconclusive,
        Status::Interrupted => Exit::Interrupted,
    };
    Ok(match &report.baseline {
        Some(c) => crate::report::compare::regression_exit(c, exit),
        None => exit,
    }
    .into())
}

/// Reads the `--baseline` reports and checks that each ran this scenario
/// (the hash of its text); the error names the file.
fn read_bases(
    paths: &[PathBuf],
    file: &str,
    scenario: &scenario::Scenario,
    text: &str,
) -> Result<Vec<Base>, String> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let bases = crate::report::compare::read_bases(paths)?;
    let sha256 = floodgate_runner::run::scenario_sha256(text);
    let new = NewScenario {
        file: "this run",
        name: &scenario.name,
        scenario_file: file,
        sha256: &sha256,
    };
    floodgate_runner::compare::check_scenario(&bases, new, false).map_err(|e| e.to_string())?;
    Ok(bases)
}

/// A string as a TOML string literal, for the `--target` override.
fn toml_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// One indicatif bar per phase on a terminal; a log line a second
/// otherwise.
#[derive(Default)]
struct Bars {
    current: Option<(usize, Option<ProgressBar>)>,
}

impl Bars {
    fn show(&mut self, p: &Progress) {
        if self.current.as_ref().is_none_or(|(i, _)| *i != p.phase) {
            self.finish();
            let bar = std::io::stderr().is_terminal().then(|| {
                let len = p.planned.map_or(0, |d| d.as_secs().max(1));
                let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
                let style =
                    ProgressStyle::with_template("{prefix:>16} {elapsed_precise} [{bar:24}] {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style.progress_chars("=> "));
                bar.set_prefix(format!("{} [{}]", p.name, p.kind));
                bar
            });
            self.current = Some((p.phase, bar));
        }
        let figures = match &p.load {
            Some(s) => {
                let secs = s.elapsed.as_secs_f64().max(1e-9);
                format!(
                    "{:.0}/s  p99 {:.2} ms  {} errors",
                    s.done as f64 / secs,
                    s.p99_us as f64 / 1000.0,
                    s.errors
                )
            }
            None => String::new(),
        };
        let note = p.note.as_deref().unwrap_or("");
        match &self.current {
            Some((_, Some(bar))) => {
                bar.set_position(p.elapsed.as_secs());
                bar.set_message(format!("{figures}  {note}"));
            }
            _ => tracing::info!(
                phase = p.name,
                kind = p.kind,
                n = format!("{}/{}", p.phase + 1, p.phases),
                elapsed_s = format!("{:.0}", p.elapsed.as_secs_f64()),
                "{figures} {note}"
            ),
        }
    }

    fn finish(&mut self) {
        if let Some((_, Some(bar))) = self.current.take() {
            bar.finish();
        }
    }
}
