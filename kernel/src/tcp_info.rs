//! `TCP_INFO` on one socket: the client-side view of a connection that the
//! outcome taxonomy uses to tell a clean connect from one that needed SYN
//! retransmissions, or one whose request bytes were never acknowledged.
//! Only the stable prefix of `struct tcp_info` (Linux 2.6+) is read.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd};

use serde::Serialize;

/// The fields of `struct tcp_info` that floodgate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    /// The TCP state as the kernel numbers it (1 = ESTABLISHED, 2 = SYN_SENT,
    /// 3 = SYN_RECV, 10 = LISTEN; see `include/net/tcp_states.h`).
    pub state: u8,
    /// Retransmissions of the segment at the head of the queue right now; on
    /// a socket still in SYN_SENT this counts the SYN retransmits so far.
    pub retransmits: u8,
    /// Every retransmission over the socket's life. On a client socket that
    /// is ESTABLISHED and has sent nothing yet, a non-zero value means SYN
    /// retransmits: the server dropped the first SYN.
    pub total_retrans: u32,
    /// Segments sent and not yet acknowledged. Non-zero long after a write
    /// means the peer is not acknowledging the request bytes (for example its
    /// accept queue dropped the handshake's final ACK).
    pub unacked: u32,
    /// Smoothed round-trip time.
    pub rtt_us: u32,
    /// Current retransmission timeout.
    pub rto_us: u32,
}

/// `TCP_ESTABLISHED` from `include/net/tcp_states.h`.
pub const STATE_ESTABLISHED: u8 = 1;
/// `TCP_SYN_SENT`.
pub const STATE_SYN_SENT: u8 = 2;
/// `TCP_SYN_RECV`.
pub const STATE_SYN_RECV: u8 = 3;
/// `TCP_LISTEN`.
pub const STATE_LISTEN: u8 = 10;

/// The leading part of the kernel's `struct tcp_info`, laid out as in
/// `include/uapi/linux/tcp.h`. It is declared here rather than taken from
/// `libc` because libc's glibc and musl definitions differ in length; the
/// kernel copies `min(optlen, sizeof)` bytes, so a prefix is always valid.
#[repr(C)]
#[derive(Default)]
struct RawTcpInfo {
    state: u8,
    ca_state: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    options: u8,
    wscale: u8,
    flags: u8,
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
}

/// Reads `TCP_INFO` from a TCP socket (`getsockopt(IPPROTO_TCP, TCP_INFO)`).
///
/// Works on a socket in any state, including a non-blocking connect still in
/// SYN_SENT. Fails with the OS error for a non-TCP descriptor.
pub fn tcp_info(sock: &impl AsFd) -> io::Result<TcpInfo> {
    let mut raw = RawTcpInfo::default();
    let mut len = mem::size_of::<RawTcpInfo>() as libc::socklen_t;
    // SAFETY: `raw` is a plain-old-data buffer of `len` bytes that outlives
    // the call, and the descriptor is borrowed from a live `AsFd`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut raw).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Kernels older than the field list above return fewer bytes; treat the
    // fields they did not fill as zero rather than failing.
    if (len as usize) < mem::offset_of!(RawTcpInfo, total_retrans) + 4 {
        raw.total_retrans = 0;
    }
    Ok(TcpInfo {
        state: raw.state,
        retransmits: raw.retransmits,
        total_retrans: raw.total_retrans,
        unacked: raw.unacked,
        rtt_us: raw.rtt,
        rto_us: raw.rto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn established_loopback_connection_has_no_retransmits() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let info = tcp_info(&client).unwrap();
        assert_eq!(info.state, STATE_ESTABLISHED);
        assert_eq!(info.retransmits, 0);
        assert_eq!(info.total_retrans, 0);
        assert_eq!(info.unacked, 0);
        let listening = tcp_info(&listener).unwrap();
        assert_eq!(listening.state, STATE_LISTEN);
    }

    #[test]
    fn non_tcp_descriptor_is_an_error() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(tcp_info(&udp).is_err());
    }
}
