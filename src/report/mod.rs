//! `floodgate report …`: what is done with finished runs' report.json
//! offline, one module per subcommand: `render` (the report files, again,
//! from a report.json), `compare` (the baseline gate, whose flags
//! `floodgate run --baseline` shares) and `merge` (a sharded run's shard
//! reports made into one). Nothing here starts a run or touches the
//! network.

use std::process::ExitCode;

use clap::Subcommand;

pub mod compare;
mod merge;
mod render;

/// The subcommands of `floodgate report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Render a run's report.json into summary.md, report.html and junit.xml.
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Render(render::Args),
    /// Compare a run's report.json with one or more base runs' (the last
    /// nights'): a table per phase and metric; exit 5 on a regression.
    #[command(after_help = compare::AFTER_HELP)]
    Compare(compare::Args),
    /// Merge the reports of a sharded run (`floodgate run --shard i/N`)
    /// into the report of the whole run, its thresholds judged again.
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Merge(merge::Args),
}

pub fn run(command: ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::Render(args) => render::run(args),
        ReportCommand::Compare(args) => compare::run(args),
        ReportCommand::Merge(args) => merge::run(args),
    }
}
