//! `floodgate report compare BASE.json [BASE2.json ...] NEW.json`: reads
//! the reports (a bad one is exit 2, named), compares them through
//! `floodgate_runner::compare`, prints the table and exits 0, or 5 on a
//! regression in `fail` mode. Also the baseline flags and the reading of
//! base reports that `floodgate run --baseline` shares.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use floodgate_reports::scenario::{self, ScenarioReport};
use floodgate_runner::Exit;
use floodgate_runner::compare::{self as gate, Base, Mode, Options};

/// What a regression is, for `--help`.
pub const AFTER_HELP: &str = "\
A row is a regression only when the change, in the worse direction (latency
and errors up, rates and capacity down), is beyond --tolerance, the
Mann-Whitney U test of the base runs' per-second figures against the new
run's gives p < 0.05, and, with two or more base runs, the new figure lies
outside their spread. Runs of different scenarios (scenario sha256) are
refused (exit 2) unless --force.

Exit codes: 0 no regression (or --baseline-mode warn), 5 a regression,
2 a file that cannot be read or runs of different scenarios.";

/// The gate's flags, shared with `floodgate run --baseline`.
#[derive(Debug, Clone, clap::Args)]
pub struct Gate {
    /// The smallest change that can count: `5%` or `0.05`.
    #[arg(long, value_name = "SHARE", default_value = "5%", value_parser = gate::parse_tolerance)]
    pub tolerance: f64,
    /// `fail`: a regression exits 5; `warn`: it is shown, the exit code is
    /// the run's.
    #[arg(long = "baseline-mode", value_enum, default_value_t = ModeArg::Fail)]
    pub mode: ModeArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Fail,
    Warn,
}

impl Gate {
    pub fn options(&self, force: bool) -> Options {
        Options {
            tolerance: self.tolerance,
            mode: match self.mode {
                ModeArg::Fail => Mode::Fail,
                ModeArg::Warn => Mode::Warn,
            },
            force,
        }
    }
}

/// Flags of `floodgate report compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base reports (report.json of earlier runs), then the new one.
    #[arg(value_name = "REPORT", num_args = 2.., required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    gate: Gate,
    /// Compare runs of different scenarios anyway.
    #[arg(long)]
    force: bool,
}

/// Reads a scenario report; the error names the file.
pub fn read_report(path: &Path) -> Result<ScenarioReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    scenario::read(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads every base report; the error names the first file that fails.
pub fn read_bases(paths: &[PathBuf]) -> Result<Vec<Base>, String> {
    paths
        .iter()
        .map(|p| {
            read_report(p).map(|report| Base {
                file: p.display().to_string(),
                report,
            })
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let usage = |msg: &dyn std::fmt::Display| {
        eprintln!("floodgate report compare: error: {msg}");
        Ok(Exit::Usage.into())
    };
    let Some((new_path, base_paths)) = args.files.split_last() else {
        return usage(&"give the base reports, then the new one");
    };
    let bases = match read_bases(base_paths) {
        Ok(b) => b,
        Err(msg) => return usage(&msg),
    };
    let new = match read_report(new_path) {
        Ok(r) => r,
        Err(msg) => return usage(&msg),
    };
    let new_file = new_path.display().to_string();
    let options = args.gate.options(args.force);
    let comparison = match gate::compare(&bases, &new, &new_file, options) {
        Ok(c) => c,
        Err(e @ gate::CompareError::DifferentScenario(_)) => {
            return usage(&format!("{e}; --force compares them anyway"));
        }
        Err(e) => return usage(&e),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{new_file} against {}:",
        comparison.base_files.join(", ")
    )
    .context("writing the table")?;
    floodgate_reports::compare::write_table(&mut stdout, &comparison)
        .context("writing the table")?;
    Ok(regression_exit(&comparison, Exit::Pass).into())
}

/// The exit code of a run that ended with `exit`, given its comparison: a
/// regression in fail mode turns a pass into exit 5; anything else (a
/// failed threshold, inconclusive, interrupted) keeps its own code.
pub fn regression_exit(c: &floodgate_reports::compare::Comparison, exit: Exit) -> Exit {
    if exit == Exit::Pass && c.regression && c.mode == Mode::Fail.as_str() {
        Exit::Regression
    } else {
        exit
    }
}
