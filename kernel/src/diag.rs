//! A listener's queues as the kernel sees them, through NETLINK_SOCK_DIAG:
//! accept-queue depth (`idiag_rqueue`), backlog (`idiag_wqueue`), the
//! socket's inode (`idiag_inode`, which names it in `/proc/PID/fd`) and the
//! SYN-RECV request sockets waiting for a handshake's final ACK.
//!
//! The request is hand-built from the layouts in
//! `include/uapi/linux/inet_diag.h` and `include/uapi/linux/netlink.h`
//! (a 16-byte `nlmsghdr` then a 56-byte `inet_diag_req_v2`); replies are read
//! with explicit offsets, so no struct layout is assumed beyond those
//! headers. Sockets are dumped for both IPv4 and IPv6 and filtered by local
//! port here, which is cheap at the sampling rates floodgate uses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::Serialize;

/// Why sock_diag could not be queried.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("cannot open a NETLINK_SOCK_DIAG socket: {0}")]
    Open(io::Error),
    #[error("sock_diag request failed: {0}")]
    Io(io::Error),
    #[error("sock_diag reply is malformed: {0}")]
    Malformed(&'static str),
}

/// One listening socket on the port asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Finished handshakes waiting for accept(2) (`idiag_rqueue`).
    pub queue_depth: u32,
    /// The backlog listen(2) set, after the somaxconn clamp
    /// (`idiag_wqueue`). The queue holds `backlog + 1` connections.
    pub backlog: u32,
    /// The socket's inode (`idiag_inode`): a process holds this listener
    /// exactly when one of its descriptors links to `socket:[inode]`.
    pub inode: u64,
}

/// Every listener on one local port, and the SYN-RECV request sockets of
/// that port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortState {
    pub listeners: Vec<Listener>,
    /// Handshakes half done: SYN received, SYN-ACK sent, final ACK not yet
    /// processed (the "SYN queue").
    pub syn_recv: u32,
}

impl PortState {
    /// Accept-queue depth summed over the port's listeners (several with
    /// SO_REUSEPORT, or one IPv4 and one IPv6).
    pub fn queue_depth(&self) -> u32 {
        self.listeners.iter().map(|l| l.queue_depth).sum()
    }

    /// Backlog summed over the port's listeners.
    pub fn backlog(&self) -> u32 {
        self.listeners.iter().map(|l| l.backlog).sum()
    }
}

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR_LEN: usize = 16;
const REQ_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_msg)`: family, state, timer, retrans, a 48-byte
/// `inet_diag_sockid`, then expires, rqueue, wqueue, uid, inode.
const DIAG_MSG_LEN: usize = 72;
const TCP_SYN_RECV: u8 = 3;
const TCP_LISTEN: u8 = 10;
/// Request sockets are `TCP_NEW_SYN_RECV` inside the kernel; some kernels
/// report them with that state number.
const TCP_NEW_SYN_RECV: u8 = 12;

/// Reads the state of every TCP listener bound to local `port` in the
/// calling process's network namespace, and counts the port's SYN-RECV
/// request sockets. An empty `listeners` means nothing listens on that port
/// here (for example, the target is on another host or in another
/// namespace).
///
/// Counting SYN-RECV makes the kernel walk its whole established hash, every
/// bucket of it, twice (once per address family): 3.7 ms per call with the
/// 262,144-bucket table of a 24 GiB machine, however few sockets there are.
/// [`port_listeners`] reads the listeners alone, from the listening hash:
/// 71 µs.
pub fn port_state(port: u16) -> Result<PortState, DiagError> {
    Diag::open()?.port_state(port)
}

/// The listeners bound to local `port`, without the SYN-RECV count: cheap
/// enough to sample many times a second.
pub fn port_listeners(port: u16) -> Result<Vec<Listener>, DiagError> {
    Diag::open()?.port_listeners(port)
}

/// A sock_diag socket and its reply buffer, kept for repeated queries (the
/// evidence sampler makes 20 a second): a query is then a send and a few
/// receives, without creating and releasing a socket each time.
pub(crate) struct Diag {
    /// `None` after a failed query, until the next one opens a fresh socket.
    sock: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl Diag {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Diag, DiagError> {
        Ok(Diag {
            sock: Some(open()?),
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// As [`port_state`].
    pub(crate) fn port_state(&mut self, port: u16) -> Result<PortState, DiagError> {
        self.query(port, true)
    }

    /// As [`port_listeners`].
    pub(crate) fn port_listeners(&mut self, port: u16) -> Result<Vec<Listener>, DiagError> {
        Ok(self.query(port, false)?.listeners)
    }

    fn query(&mut self, port: u16, with_syn_recv: bool) -> Result<PortState, DiagError> {
        let sock = match self.sock.take() {
            Some(sock) => sock,
            None => open()?,
        };
        let result = query(&sock, &mut self.buf, port, with_syn_recv);
        // A dump cut short may leave replies queued that the next query
        // would read as its own: after an error, the next query opens a
        // fresh socket.
        if result.is_ok() {
            self.sock = Some(sock);
        }
        result
    }
}

fn query(
    sock: &OwnedFd,
    buf: &mut [u8],
    port: u16,
    with_syn_recv: bool,
) -> Result<PortState, DiagError> {
    let mut state = PortState::default();
    let mut states = 1u32 << TCP_LISTEN;
    if with_syn_recv {
        states |= (1u32 << TCP_SYN_RECV) | (1u32 << TCP_NEW_SYN_RECV);
    }
    for family in [libc::AF_INET, libc::AF_INET6] {
        dump(sock, buf, family as u8, states, |msg| {
            let sport = u16::from_be_bytes([msg[4], msg[5]]);
            if sport != port {
                return;
            }
            match msg[1] {
                TCP_LISTEN => {
                    let ip = parse_ip(msg[0], &msg[8..24]);
                    state.listeners.push(Listener {
                        addr: SocketAddr::new(ip, sport),
                        queue_depth: u32_at(msg, 56),
                        backlog: u32_at(msg, 60),
                        inode: u64::from(u32_at(msg, 68)),
                    });
                }
                TCP_SYN_RECV | TCP_NEW_SYN_RECV => state.syn_recv += 1,
                _ => {}
            }
        })?;
    }
    Ok(state)
}

/// The listeners that would take a connect to `target`, if that listener is
/// in the calling process's network namespace: same port, and the same
/// address, a wildcard address, or loopback for loopback. `None` means the
/// target is not local, so kernel counters here say nothing about it.
pub fn local_listener(target: SocketAddr) -> Option<PortState> {
    let state = port_state(target.port()).ok()?;
    state
        .listeners
        .iter()
        .any(|l| takes_connects_to(l.addr.ip(), target.ip()))
        .then_some(state)
}

/// The listeners in the calling thread's network namespace that would take
/// a connect to `target` (as [`local_listener`] matches them), without the
/// SYN-RECV count; empty when none does.
pub fn target_listeners(target: SocketAddr) -> Result<Vec<Listener>, DiagError> {
    let mut listeners = port_listeners(target.port())?;
    listeners.retain(|l| takes_connects_to(l.addr.ip(), target.ip()));
    Ok(listeners)
}

fn takes_connects_to(listener: IpAddr, target: IpAddr) -> bool {
    listener == target
        || listener.is_unspecified()
        || (listener.is_loopback() && target.is_loopback())
        || matches!((listener, target), (IpAddr::V6(v6), IpAddr::V4(v4)) if v6.to_ipv4_mapped() == Some(v4))
}

fn open() -> Result<OwnedFd, DiagError> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(DiagError::Open(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn request(family: u8, states: u32) -> [u8; NLMSG_HDR_LEN + REQ_V2_LEN] {
    let mut buf = [0u8; NLMSG_HDR_LEN + REQ_V2_LEN];
    buf[0..4].copy_from_slice(&((NLMSG_HDR_LEN + REQ_V2_LEN) as u32).to_ne_bytes());
    buf[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    buf[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    // inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed
    // inet_diag_sockid (no socket id filter: a dump of every socket).
    buf[16] = family;
    buf[17] = libc::IPPROTO_TCP as u8;
    buf[20..24].copy_from_slice(&states.to_ne_bytes());
    buf
}

/// Sends one dump request and calls `each` with every `inet_diag_msg`.
fn dump(
    sock: &OwnedFd,
    buf: &mut [u8],
    family: u8,
    states: u32,
    mut each: impl FnMut(&[u8]),
) -> Result<(), DiagError> {
    let req = request(family, states);
    // SAFETY: `req` is a valid buffer of `req.len()` bytes; an unconnected
    // netlink socket sends to the kernel (port id 0).
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(DiagError::Io(io::Error::last_os_error()));
    }
    loop {
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(DiagError::Io(err));
        }
        let mut rest = &buf[..n as usize];
        while rest.len() >= NLMSG_HDR_LEN {
            let len = u32_at(rest, 0) as usize;
            if len < NLMSG_HDR_LEN || len > rest.len() {
                return Err(DiagError::Malformed("netlink message length out of range"));
            }
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            let payload = &rest[NLMSG_HDR_LEN..len];
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let errno = payload
                        .get(0..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or(DiagError::Malformed("short NLMSG_ERROR"))?;
                    if errno == 0 {
                        return Ok(());
                    }
                    return Err(DiagError::Io(io::Error::from_raw_os_error(-errno)));
                }
                SOCK_DIAG_BY_FAMILY if payload.len() >= DIAG_MSG_LEN => each(payload),
                SOCK_DIAG_BY_FAMILY => {
                    return Err(DiagError::Malformed("inet_diag_msg shorter than 72 bytes"));
                }
                _ => {}
            }
            // Messages are 4-byte aligned (NLMSG_ALIGN).
            let advance = (len + 3) & !3;
            rest = rest.get(advance..).unwrap_or(&[]);
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_ip(family: u8, raw: &[u8]) -> IpAddr {
    if i32::from(family) == libc::AF_INET6 {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&raw[..16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::net::TcpStream;

    fn listener(addr: &str, backlog: i32) -> (Socket, SocketAddr) {
        let addr: SocketAddr = addr.parse().unwrap();
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        sock.bind(&addr.into()).unwrap();
        sock.listen(backlog).unwrap();
        let local = sock.local_addr().unwrap().as_socket().unwrap();
        (sock, local)
    }

    #[test]
    fn reports_backlog_and_accept_queue_depth_of_a_listener() {
        let (_sock, addr) = listener("127.0.0.1:0", 7);
        // Only the listener on our address: a concurrent test's IPv6
        // listener may hold the same port number.
        let ours = |addr: SocketAddr| {
            let state = port_state(addr.port()).unwrap();
            let mine: Vec<_> = state
                .listeners
                .into_iter()
                .filter(|l| l.addr == addr)
                .collect();
            assert_eq!(mine.len(), 1, "one listener on {addr}");
            mine[0]
        };
        assert_eq!(ours(addr).backlog, 7);
        assert_eq!(ours(addr).queue_depth, 0);

        // Connections this test never accepts sit in the accept queue.
        let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let depth = ours(addr).queue_depth;
            if depth == 3 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "queue depth stayed {depth}"
            );
            std::thread::yield_now();
        }
        drop(clients);
    }

    /// In a fresh network namespace (root) whose `lo` has ::1, so the test
    /// never depends on the host's IPv6 setup and sees its listener alone.
    /// A kernel without IPv6 is a visible `SKIP:` line, and a failure when
    /// the `CI` environment variable is set: CI must run this test.
    #[test]
    fn sees_ipv6_listeners() {
        let state = crate::lab::in_fresh_netns(&[], || {
            // /proc/sys/net shows the calling thread's namespace.
            if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
                return None;
            }
            // Bringing up lo (in_fresh_netns did) gives it ::1 unless IPv6
            // is disabled on it; enable it, in this namespace only.
            crate::lab::write_sysctl("net.ipv6.conf.lo.disable_ipv6", "0").unwrap();
            let (sock, addr) = listener("[::1]:0", 5);
            let state = port_state(addr.port()).unwrap();
            drop(sock);
            Some(state)
        })
        .expect("a fresh network namespace (root)");
        let Some(state) = state else {
            let why = "SKIP: sees_ipv6_listeners: no IPv6 in this kernel (/proc/sys/net/ipv6)";
            eprintln!("{why}");
            assert!(std::env::var_os("CI").is_none(), "{why}, and CI is set");
            return;
        };
        // The namespace is the test's own: its listener is the only one.
        assert_eq!(state.listeners.len(), 1, "{state:?}");
        assert!(state.listeners[0].addr.is_ipv6(), "{state:?}");
        assert_eq!(state.listeners[0].backlog, 5);
    }

    #[test]
    fn local_listener_matches_by_address() {
        let (_sock, addr) = listener("127.0.0.1:0", 3);
        assert_eq!(local_listener(addr).map(|s| s.backlog()), Some(3));
        let other: SocketAddr = SocketAddr::new("192.0.2.1".parse().unwrap(), addr.port());
        assert!(local_listener(other).is_none());
    }

    #[test]
    fn target_listeners_carry_the_inode_of_the_listening_socket() {
        let (sock, addr) = listener("127.0.0.1:0", 3);
        let fd = sock.as_raw_fd();
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let found = target_listeners(addr).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            link.to_str(),
            Some(format!("socket:[{}]", found[0].inode).as_str())
        );
        let other: SocketAddr = SocketAddr::new("192.0.2.1".parse().unwrap(), addr.port());
        assert!(target_listeners(other).unwrap().is_empty());
    }

    #[test]
    fn unused_port_has_no_listener() {
        let (sock, addr) = listener("127.0.0.1:0", 1);
        drop(sock);
        let state = port_state(addr.port()).unwrap();
        assert!(state.listeners.is_empty());
    }
}
