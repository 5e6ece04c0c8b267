//! Which processes hold a socket: the `socket:[INODE]` links of
//! `/proc/PID/fd`, matched against the inode sock_diag reports for a
//! listener ([`crate::Listener::inode`]). Reads `/proc` only; it signals
//! nothing and knows nothing of what a caller does with the answer.

use std::io;

/// A process, as `/proc` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    /// `/proc/PID/comm`: the executable's name, cut to 15 bytes; empty if
    /// it could not be read.
    pub comm: String,
}

impl Process {
    /// The process `pid`, or `None` if there is none (no `/proc/PID`).
    pub fn get(pid: i32) -> Option<Process> {
        if pid <= 0 || std::fs::symlink_metadata(format!("/proc/{pid}")).is_err() {
            return None;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Some(Process {
            pid,
            comm: comm.trim_end().to_owned(),
        })
    }
}

/// Whether process `pid` holds a descriptor of the socket with inode
/// `inode`. Fails when `/proc/PID/fd` cannot be read: no such process, or
/// (not as root) another user's.
pub fn holds_socket(pid: i32, inode: u64) -> io::Result<bool> {
    if pid <= 0 {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while we read the directory is simply gone.
        let Ok(entry) = entry else { continue };
        if std::fs::read_link(entry.path()).is_ok_and(|link| link.as_os_str() == want.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every process this one can see that holds the socket with inode
/// `inode`, in PID order; processes whose descriptors cannot be read are
/// left out.
pub fn socket_holders(inode: u64) -> Vec<Process> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter(|&pid| holds_socket(pid, inode).unwrap_or(false))
        .filter_map(Process::get)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    use super::*;

    /// The inode of a socket this process holds, from its own fd link.
    fn inode_of(fd: i32) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let link = link.to_str().unwrap();
        link.strip_prefix("socket:[")
            .and_then(|l| l.strip_suffix(']'))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn this_process_holds_its_own_listener_and_is_found_holding_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = inode_of(listener.as_raw_fd());
        let me = std::process::id() as i32;
        assert!(holds_socket(me, inode).unwrap());
        let holders = socket_holders(inode);
        assert_eq!(holders.iter().map(|p| p.pid).collect::<Vec<_>>(), [me]);
        assert!(!holders[0].comm.is_empty());
        drop(listener);
        assert!(!holds_socket(me, inode).unwrap());
    }

    #[test]
    fn no_process_is_none_and_holds_nothing() {
        // Above the largest pid_max Linux allows (2^22).
        assert_eq!(Process::get(i32::MAX), None);
        assert_eq!(Process::get(0), None);
        assert!(holds_socket(i32::MAX, 1).is_err());
        assert!(holds_socket(-1, 1).is_err());
    }
}
