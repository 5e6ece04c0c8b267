//! `floodgate report ...`: commands over report files that start nothing.
//! `compare` is the baseline gate (`compare.rs`, whose flags `floodgate
//! run --baseline` shares).

use std::process::ExitCode;

pub mod compare;

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Compare a run's report.json with one or more base runs' (the last
    /// nights'): a table per phase and metric; exit 5 on a regression.
    #[command(after_help = compare::AFTER_HELP)]
    Compare(compare::Args),
}

pub fn run(command: ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::Compare(args) => compare::run(args),
    }
}
