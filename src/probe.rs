//! `floodgate probe`: flags and orchestration.
//!
//! SKELETON: being written.

use std::process::ExitCode;

/// Flags of `floodgate probe`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
