//! `floodgate check FILE...`: validates scenario files offline (no name is
//! resolved, nothing is connected to or started) and prints every error
//! of every file. Exit 0 when all are valid, 2 otherwise. Parsing and
//! validation are `floodgate_runner::scenario`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use floodgate_runner::Exit;
use floodgate_runner::scenario::{self, LoadError};

/// Flags of `floodgate check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files to validate.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let mut invalid = 0;
    for path in &args.files {
        match scenario::load(path, &[]) {
            Ok(s) => writeln!(
                out,
                "{}: ok: scenario {:?}, {} phase{}",
                path.display(),
                s.name,
                s.phases.len(),
                if s.phases.len() == 1 { "" } else { "s" }
            )
            .context("cannot write to stdout")?,
            Err(e) => {
                invalid += 1;
                match e {
                    LoadError::Invalid(errors) => write!(err, "{errors}"),
                    read @ LoadError::Read { .. } => writeln!(err, "{read}"),
                }
                .context("cannot write to stderr")?;
            }
        }
    }
    if invalid == 0 {
        return Ok(Exit::Pass.into());
    }
    writeln!(
        err,
        "floodgate check: {invalid} of {} file{} invalid",
        args.files.len(),
        if args.files.len() == 1 { "" } else { "s" }
    )
    .context("cannot write to stderr")?;
    Ok(Exit::Usage.into())
}
