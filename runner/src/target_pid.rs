//! The `--pid` of a probe target, checked before anything is stopped: a
//! process (above 0; kill(2) reads 0 and negative numbers as process
//! groups), not this process, its parent or its process group, and the
//! owner of the listener that takes the probe's connects (the listener's
//! socket inode from `floodgate_kernel::target_listeners`, found among the
//! process's descriptors by `floodgate_kernel::holds_socket`). A refusal
//! names the process that does own the listener, when one is visible.

use std::net::SocketAddr;

use floodgate_kernel::{self as kernel, Process};

use crate::probe::ProbeRunError;

/// Checks that `pid` may be stopped to pause the listener at `target`.
pub(crate) fn check(pid: i32, target: SocketAddr) -> Result<(), ProbeRunError> {
    let refuse = |message: String| ProbeRunError::Invalid {
        field: "pid",
        message: format!("{pid}: {message}"),
    };
    if pid <= 0 {
        return Err(refuse(
            "must be above 0 (kill(2) takes 0 as floodgate's own process group, a negative \
             number as a process group, and -1 as every process)"
                .into(),
        ));
    }
    // SAFETY: getppid(2) and getpgrp(2) take nothing and cannot fail.
    let (parent, group) = unsafe { (libc::getppid(), libc::getpgrp()) };
    if pid == std::process::id() as i32 {
        return Err(refuse("is floodgate itself".into()));
    }
    if pid == parent {
        return Err(refuse(format!(
            "is floodgate's parent{}; stopping it would stop what runs the probe",
            named(pid)
        )));
    }
    if pid == group {
        return Err(refuse(format!(
            "leads floodgate's own process group{}; stopping it could stop what runs the probe",
            named(pid)
        )));
    }
    let Some(process) = Process::get(pid) else {
        return Err(refuse(format!("there is no process {pid}")));
    };
    let listeners = kernel::target_listeners(target).map_err(ProbeRunError::Diag)?;
    if listeners.is_empty() {
        return Err(refuse(format!(
            "nothing listens on {target} in this network namespace, so floodgate cannot check \
             that process {pid} owns the target's listener; run the probe where the listener \
             is, or pause it with --pause-endpoint"
        )));
    }
    // Every listener that takes these connects must stop with the process:
    // one that kept accepting would make the count meaningless.
    for listener in &listeners {
        let holds = kernel::holds_socket(pid, listener.inode)
            .map_err(|e| refuse(format!("cannot read /proc/{pid}/fd: {e}")))?;
        if holds {
            continue;
        }
        let owners = kernel::socket_holders(listener.inode);
        let owned_by = if owners.is_empty() {
            "no process visible here holds it".to_owned()
        } else {
            let names: Vec<String> = owners
                .iter()
                .map(|o| format!("process {} ({})", o.pid, o.comm))
                .collect();
            format!("it is owned by {}", names.join(", "))
        };
        return Err(refuse(format!(
            "process {pid} ({}) does not own the listener on {} that takes connects to \
             {target}; {owned_by}",
            process.comm, listener.addr
        )));
    }
    Ok(())
}

/// ` (process PID (COMM))`, or nothing if the process is gone.
fn named(pid: i32) -> String {
    Process::get(pid).map_or_else(String::new, |p| format!(" (process {pid} ({}))", p.comm))
}
