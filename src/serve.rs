//! `floodgate serve`: flags for the reference server.
//!
//! SKELETON: being written.

use std::process::ExitCode;

/// Flags of `floodgate serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
