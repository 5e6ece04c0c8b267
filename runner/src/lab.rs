//! Lab mode: running a command of floodgate's inside a fresh, named network
//! namespace (`floodgate_kernel::lab::Netns`), so what it measures and the
//! `net.*` sysctls it sets belong to that namespace alone. The namespace is
//! deleted on every path out, and SIGINT/SIGTERM are forwarded to the
//! command inside.

use std::ffi::OsString;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use floodgate_kernel::lab::{LabError, Netns};

/// Why the lab run could not start or be waited for.
#[derive(Debug, thiserror::Error)]
pub enum LabRunError {
    #[error("creating the lab network namespace: {0}")]
    Netns(#[from] LabError),
    #[error("finding the floodgate executable: {0}")]
    Exe(std::io::Error),
    #[error("starting the command in network namespace {name}: {error}")]
    Spawn { name: String, error: std::io::Error },
    #[error("waiting for the command in network namespace {name}: {error}")]
    Wait { name: String, error: std::io::Error },
}

/// Creates a namespace with `lo` up, runs this executable with `args` plus
/// `--inside-netns NAME` inside it, and waits for it, sending it SIGTERM
/// once `interrupted` is set; gives back its exit status.
pub fn rerun_in_netns(
    args: &[OsString],
    interrupted: &AtomicBool,
) -> Result<ExitStatus, LabRunError> {
    let ns = Netns::create()?;
    let exe = std::env::current_exe().map_err(LabRunError::Exe)?;
    let name = ns.name().to_owned();
    let mut child = ns
        .command(&exe)
        .args(args)
        .args(["--inside-netns", &name])
        .spawn()
        .map_err(|error| LabRunError::Spawn {
            name: name.clone(),
            error,
        })?;
    let mut forwarded = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(error) => return Err(LabRunError::Wait { name, error }),
        }
        if interrupted.load(Ordering::Relaxed) && !forwarded {
            // The command inside resumes what it paused and exits on SIGTERM.
            // SAFETY: kill(2) on our own child's PID, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            forwarded = true;
        }
        // Polling the child: a wait that also wakes for the interrupt flag.
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(ns);
    Ok(status)
}
