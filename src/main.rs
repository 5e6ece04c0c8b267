//! The `floodgate` command: parses arguments and hands them to the library
//! crates. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod access;
mod check;
mod flags;
mod load;
mod out;
mod probe;
mod report;
mod run;
mod serve;

/// Load, fuzz and probe a server socket.
#[derive(Debug, Parser)]
#[command(name = "floodgate", version, about, long_about = None, after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference HTTP/1.1 server.
    Serve(serve::Args),
    /// Run a scenario file: phases, thresholds, a report and an exit code.
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Run(run::Args),
    /// Load a server (by default, a reference server started for the run).
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Load(load::Args),
    /// Validate scenario files offline; nothing is started (exit 0 or 2).
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Check(check::Args),
    /// Probe a listener's accept queue.
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Work with finished runs' report.json (offline): render, compare, merge.
    #[command(subcommand)]
    Report(report::ReportCommand),
}

#[derive(Debug, Subcommand)]
enum ProbeCommand {
    /// Measure the accept-queue capacity of a listener and explain overflows.
    #[command(after_help = floodgate_runner::exit::EXIT_CODES_HELP)]
    Backlog(probe::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run::run(args),
        Command::Load(args) => load::run(args),
        Command::Probe(ProbeCommand::Backlog(args)) => probe::run(args),
        Command::Check(args) => check::run(args),
        Command::Report(command) => report::run(command),
    };
    match result {
        Ok(code) => code,
        // What is left to end up here failed while running (an IO edge
        // the subcommand could not get past): the run could not be done.
        Err(err) => {
            eprintln!("floodgate: error: {err:#}");
            floodgate_runner::Exit::CouldNotRun.into()
        }
    }
}

/// A flag that SIGINT (Ctrl-C) and SIGTERM set: the subcommands that run
/// something stop scheduling when it is, and write what ran.
pub fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    Ok(stop)
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`); stdout is
/// kept for machine-readable lines such as `listening on ADDR`. They are
/// coloured only when stderr is a terminal and `NO_COLOR` is unset or
/// empty: a file or a pipe gets plain text.
fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .init();
}
