//! `floodgate report …`: what is done with a finished run's report.json
//! offline, one module per subcommand: `render` (the report files, again,
//! from a report.json). Nothing here starts a run or touches the network.

use std::process::ExitCode;

use clap::Subcommand;

mod render;

/// The subcommands of `floodgate report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Render a run's report.json into summary.md, report.html and junit.xml.
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Render(render::Args),
}

pub fn run(command: ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::Render(args) => render::run(args),
    }
}
