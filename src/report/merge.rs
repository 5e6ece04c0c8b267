//! `floodgate report merge A.json B.json ... --out MERGED.json`: reads each
//! shard's report (checked as every report reader checks it), merges them
//! with `floodgate_runner::merge`, writes the merged report, prints its
//! summary and exits with the merged status's code: the thresholds are
//! judged on the whole run. A set that does not merge (a shard missing or
//! given twice, different scenarios or shard counts, an unsharded report)
//! exits 2 and writes nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use floodgate_reports::scenario::Status;
use floodgate_runner::Exit;

use crate::out::OutFile;

/// Flags of `floodgate report merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shards' report.json files, one per shard, in any order.
    #[arg(value_name = "REPORT", required = true)]
    reports: Vec<PathBuf>,
    /// Where the merged report is written.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        let name = path.display().to_string();
        let read = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| floodgate_reports::scenario::read(&b).map_err(|e| e.to_string()));
        match read {
            Ok(r) => reports.push((name, r)),
            Err(e) => {
                eprintln!("floodgate report merge: error: {name}: {e}");
                return Ok(Exit::Usage.into());
            }
        }
    }
    let merged = match floodgate_runner::merge::merge(&reports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("floodgate report merge: error: {e}");
            return Ok(Exit::Usage.into());
        }
    };
    let out = match OutFile::open(&args.out) {
        Ok(f) => f,
        Err((path, e)) => {
            eprintln!(
                "floodgate report merge: error: cannot write --out {}: {e}",
                path.display()
            );
            return Ok(Exit::Usage.into());
        }
    };
    out.write(|w| {
        merged.write_json(&mut *w)?;
        Ok(writeln!(w)?)
    })?;
    let mut stdout = std::io::stdout().lock();
    floodgate_reports::summary::write(&mut stdout, &merged).context("writing the summary")?;
    writeln!(stdout, "merged report: {}", args.out.display()).context("writing the summary")?;
    Ok(match merged.status {
        Status::Pass => Exit::Pass,
        Status::Fail => Exit::Failed,
        Status::Inconclusive => Exit::Inconclusive,
        Status::Interrupted => Exit::Interrupted,
    }
    .into())
}
