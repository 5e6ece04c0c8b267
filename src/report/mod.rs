//! `floodgate report ...`: commands over reports that were already
//! written; nothing is run. `merge` makes a sharded run's shard reports
//! into one.

pub mod merge;

/// The subcommands of `floodgate report`.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of a sharded run (`floodgate run --shard i/N`)
    /// into the report of the whole run, its thresholds judged again.
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Merge(merge::Args),
}

/// Runs one `floodgate report` subcommand.
pub fn run(command: ReportCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        ReportCommand::Merge(args) => merge::run(args),
    }
}
