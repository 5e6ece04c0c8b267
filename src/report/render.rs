//! `floodgate report render RUN.json --out DIR`: reads a scenario report
//! (`floodgate_reports::scenario::read`, checked) and writes every report
//! file `floodgate run --out` writes beside report.json
//! (`floodgate_render::write_all`), listing them. A file that is not a
//! report, or an `--out` that cannot be made, exits 2 before anything is
//! written.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use floodgate_runner::Exit;

/// Flags of `floodgate report render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report.json of a `floodgate run`.
    #[arg(value_name = "RUN.json")]
    file: PathBuf,
    /// Where the files are written (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.file.display();
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("floodgate report render: error: cannot read {name}: {e}");
            return Ok(Exit::Usage.into());
        }
    };
    let report = match floodgate_reports::scenario::read(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floodgate report render: error: {name}: {e}");
            return Ok(Exit::Usage.into());
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!(
            "floodgate report render: error: cannot create --out {}: {e}",
            args.out.display()
        );
        return Ok(Exit::Usage.into());
    }
    let written = match floodgate_render::write_all(&report, &args.out) {
        Ok(w) => w,
        // An interval histogram that does not decode is the input's
        // fault; anything else (a file that cannot be written, a chart or
        // template that fails) is floodgate's, and exits 3.
        Err(e @ floodgate_render::RenderError::Histogram { .. }) => {
            eprintln!("floodgate report render: error: {name}: {e}");
            return Ok(Exit::Usage.into());
        }
        Err(e) => return Err(e).context(format!("rendering {name}")),
    };
    let mut stdout = std::io::stdout().lock();
    for path in written {
        writeln!(stdout, "wrote {}", path.display()).context("writing to stdout")?;
    }
    Ok(Exit::Pass.into())
}
