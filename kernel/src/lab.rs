//! Lab namespaces: fresh network namespaces of floodgate's own, so that a
//! probe or a test sees kernel counters that nothing else on the machine
//! moves, and can change `net.*` sysctls without touching the host's. The
//! one copy of this setup that the probe's lab mode, the binary's tests and
//! this crate's tests all use.
//!
//! Two flavours, both root only:
//! - [`in_fresh_netns`] runs a closure on a thread that has left the host's
//!   namespace (unshare(CLONE_NEWNET)); threads and processes it starts
//!   inherit the namespace, which the kernel frees when they are gone.
//! - [`Netns`] is a named namespace (`ip netns add`), for running another
//!   process inside it with `ip netns exec`; deleted when dropped.
//!
//! Only `net.*` sysctls are ever written ([`parse_sysctl`] refuses others):
//! those belong to the network namespace, so writing one inside a lab
//! namespace cannot change the host. And [`write_sysctl`], the one place
//! they are written, first proves that the calling thread is not in the
//! host's namespace ([`outside_host_netns`]), so no caller can write the
//! host's by mistake.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, Socket, Type};

/// Why a lab namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("unshare(CLONE_NEWNET) failed (needs root): {0}")]
    Unshare(io::Error),
    #[error("bringing up lo in the new network namespace: {0}")]
    Loopback(io::Error),
    #[error("lab namespaces need iproute2's `ip` (looked in /usr/sbin, /sbin, /usr/bin, /bin)")]
    NoIp,
    #[error("`ip {args}` failed: {why}")]
    Ip { args: String, why: String },
    #[error(
        "'{0}' is not allowed: only net.* sysctls, which belong to the network namespace, \
         as KEY=VALUE like net.core.somaxconn=64"
    )]
    SysctlKey(String),
    #[error(
        "this is the host's network namespace (/proc/thread-self/ns/net is {same_as}), not a \
         lab namespace: nothing is written here"
    )]
    HostNetns {
        /// Which namespace it was found to be: PID 1's, or that of the
        /// process that started this one.
        same_as: String,
    },
    #[error("cannot tell this network namespace from the host's ({0}), so nothing is written here")]
    NetnsUnknown(String),
    #[error("sysctl {key}={value}: {why}")]
    Sysctl {
        key: String,
        value: String,
        why: String,
    },
}

/// Runs `f` on a new thread inside a fresh network namespace with `lo` up,
/// after writing `sysctls` there; gives back what `f` returns. Processes
/// that `f` starts (and threads it spawns) run in that namespace too.
pub fn in_fresh_netns<T: Send + 'static>(
    sysctls: &[(String, String)],
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LabError> {
    let sysctls = sysctls.to_vec();
    let thread = std::thread::Builder::new()
        .name("floodgate-lab".into())
        .spawn(move || {
            enter_fresh_netns()?;
            for (key, value) in &sysctls {
                write_sysctl(key, value)?;
            }
            Ok(f())
        })
        .map_err(LabError::Unshare)?;
    match thread.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Moves the calling thread into a fresh network namespace and brings up its
/// loopback.
fn enter_fresh_netns() -> Result<(), LabError> {
    // SAFETY: unshare(2) with a constant flag; it affects only this thread
    // and what it starts afterwards.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(LabError::Unshare(io::Error::last_os_error()));
    }
    loopback_up().map_err(LabError::Loopback)
}

/// `ip link set lo up` for the calling thread's namespace, by SIOCSIFFLAGS
/// on a `struct ifreq` (16-byte name, then the flags as a short).
fn loopback_up() -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    let mut ifreq = [0u8; 40];
    ifreq[..2].copy_from_slice(b"lo");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: `ifreq` is a 40-byte buffer, the size of `struct ifreq`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, ifreq.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = i16::from_ne_bytes([ifreq[16], ifreq[17]]) | libc::IFF_UP as i16;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: as above.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, ifreq.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Parses `KEY=VALUE`, allowing only `net.*` keys.
pub fn parse_sysctl(text: &str) -> Result<(String, String), LabError> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(LabError::SysctlKey(text.to_owned()));
    };
    let key = key.trim();
    let valid = key.starts_with("net.")
        && !key.contains("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if !valid {
        return Err(LabError::SysctlKey(key.to_owned()));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

/// Proves that the calling thread is not in the host's network namespace:
/// the device and inode of `/proc/thread-self/ns/net` differ from PID 1's
/// (the host's, as far as this PID namespace can see) and from those of
/// the process that started this one (a lab command is started by the
/// floodgate outside, through `ip netns exec`, which does not fork). The
/// thread's namespace, not the process's: [`in_fresh_netns`] moves one
/// thread alone. Where PID 1's namespace cannot be read (a sandbox may
/// deny it even to root), the parent's alone decides; where neither can,
/// nothing is proved and this fails.
pub fn outside_host_netns() -> Result<(), LabError> {
    use std::os::unix::fs::MetadataExt;
    let id = |path: &str| {
        std::fs::metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| format!("stat {path}: {e}"))
    };
    let ours = id("/proc/thread-self/ns/net").map_err(LabError::NetnsUnknown)?;
    // SAFETY: getppid(2) takes nothing and cannot fail.
    let parent = unsafe { libc::getppid() };
    let references = [
        ("/proc/1/ns/net".to_owned(), "PID 1's".to_owned()),
        (
            format!("/proc/{parent}/ns/net"),
            format!("that of process {parent}, which started floodgate"),
        ),
    ];
    let mut unreadable = Vec::new();
    for (path, name) in references {
        match id(&path) {
            Ok(theirs) if theirs == ours => return Err(LabError::HostNetns { same_as: name }),
            Ok(_) => {}
            Err(why) => unreadable.push(why),
        }
    }
    if unreadable.len() == 2 {
        return Err(LabError::NetnsUnknown(unreadable.join("; ")));
    }
    Ok(())
}

/// Writes one `net.*` sysctl of the calling thread's network namespace and
/// reads it back, after proving that namespace is not the host's
/// ([`outside_host_netns`]).
pub fn write_sysctl(key: &str, value: &str) -> Result<(), LabError> {
    let (key, value) = parse_sysctl(&format!("{key}={value}"))?;
    outside_host_netns()?;
    let fail = |why: String| LabError::Sysctl {
        key: key.clone(),
        value: value.clone(),
        why,
    };
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, format!("{value}\n"))
        .map_err(|e| fail(format!("writing {}: {e}", path.display())))?;
    let back = std::fs::read_to_string(&path)
        .map_err(|e| fail(format!("reading back {}: {e}", path.display())))?;
    let back = back.split_whitespace().collect::<Vec<_>>().join(" ");
    let want = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if back != want {
        return Err(fail(format!("the kernel kept {back}")));
    }
    Ok(())
}

/// `net.core.somaxconn` of the calling thread's namespace, if readable.
pub fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A named network namespace this process created, with `lo` up; deleted
/// when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    ip: PathBuf,
}

impl Netns {
    /// Creates `floodgate-<pid>-<n>`.
    pub fn create() -> Result<Netns, LabError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let ip = find_ip()?;
        let name = format!(
            "floodgate-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&ip, &["netns", "add", &name])?;
        let ns = Netns { name, ip };
        run_ip(&ns.ip, &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run_ip(&self.ip, &["netns", "delete", &self.name]) {
            tracing::warn!("could not delete network namespace {}: {e}", self.name);
        }
    }
}

fn find_ip() -> Result<PathBuf, LabError> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(LabError::NoIp)
}

fn run_ip(ip: &Path, args: &[&str]) -> Result<(), LabError> {
    let fail = |why: String| LabError::Ip {
        args: args.join(" "),
        why,
    };
    let out = Command::new(ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("running {}: {e}", ip.display())))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{} ({}; needs root)",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )));
    }
    Ok(())
}

/// A listener on 127.0.0.1 that never accepts, with TCP_DEFER_ACCEPT: a handshake's bare final ACK is
/// ignored, so each connection stays a SYN-RECV request socket until its
/// client sends data. That lets a test choose the moment each handshake
/// completes into the accept queue, and so overflow the queue at ACK time
/// deterministically.
pub fn deferring_listener(backlog: i32) -> io::Result<(Socket, SocketAddr)> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    sock.listen(backlog)?;
    let addr = sock
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))?;
    let secs: libc::c_int = 30;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const secs).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((sock, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_sysctls_are_allowed() {
        assert_eq!(
            parse_sysctl("net.core.somaxconn = 64").unwrap(),
            ("net.core.somaxconn".to_owned(), "64".to_owned())
        );
        for bad in [
            "vm.swappiness=1",
            "net..x=1",
            "net.core/../x=1",
            "somaxconn",
        ] {
            let err = parse_sysctl(bad).unwrap_err().to_string();
            assert!(err.contains("only net.* sysctls"), "{bad}: {err}");
        }
    }

    #[test]
    fn no_sysctl_is_written_in_the_host_namespace() {
        // Test threads run in the namespace the test binary started in,
        // PID 1's.
        // Writing the value it has: a regression would change nothing.
        let host = somaxconn().expect("somaxconn is readable");
        let err = write_sysctl("net.core.somaxconn", &host.to_string()).unwrap_err();
        assert!(matches!(err, LabError::HostNetns { .. }), "{err}");
        assert!(
            err.to_string().contains("host's network namespace"),
            "{err}"
        );
        assert_eq!(somaxconn(), Some(host));
        // A lab namespace is not the host's.
        assert!(in_fresh_netns(&[], outside_host_netns).unwrap().is_ok());
    }

    #[test]
    fn a_sysctl_written_in_a_lab_namespace_leaves_the_host_alone() {
        let host = somaxconn().expect("somaxconn is readable");
        let wanted = if host == 77 { 78 } else { 77 };
        let inside = in_fresh_netns(
            &[("net.core.somaxconn".into(), wanted.to_string())],
            somaxconn,
        )
        .expect("a lab namespace (root)");
        assert_eq!(inside, Some(wanted));
        assert_eq!(somaxconn(), Some(host));
    }
}
