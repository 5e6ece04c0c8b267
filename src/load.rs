//! `floodgate load`: flags and orchestration.
//!
//! SKELETON: being written.

use std::process::ExitCode;

/// Flags of `floodgate load`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
