//! Opening a slot's connections: the non-blocking connect with its timeout
//! and optional source address, the check for a retransmitted SYN, and for
//! https the TLS handshake. What is sent on a connection and how its replies
//! are read is `exchange`'s; what a connect error means is `outcome`'s.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_lite::future;
use socket2::{Domain, Protocol, Socket, Type};

use super::Shared;
use crate::outcome::{Classify, Outcome};
use crate::plan::Mode;
use crate::reactor::Stream;

/// Connects faster than this cannot have retransmitted their SYN: Linux's
/// initial SYN timeout is 1 s; a margin covers lowered route RTOs.
const MIN_SYN_RETRANSMIT: Duration = Duration::from_millis(150);

/// An established connection and what its connect showed.
pub(super) struct Connected {
    pub(super) stream: Stream,
    pub(super) took: Duration,
    /// `TCP_INFO` counted retransmissions during the handshake: SYNs dropped.
    pub(super) syn_retransmitted: bool,
}

/// Connects for a valid request, counting the connect in the result.
pub(super) async fn connect(sh: &Shared, source: Option<IpAddr>) -> Result<Connected, Outcome> {
    sh.rec(Instant::now()).connects += 1;
    connect_uncounted(sh, source).await
}

/// Connects without counting: malformed exchanges keep their own books, so
/// the valid load's connect figures (and the verdict drawn from them) are
/// unchanged by them.
pub(super) async fn connect_uncounted(
    sh: &Shared,
    source: Option<IpAddr>,
) -> Result<Connected, Outcome> {
    let addr = sh.plan.target.addr;
    let t0 = Instant::now();
    let classify = |e: io::Error| Outcome::from_connect_error(&e);
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
    .map_err(classify)?;
    // Nagle would hold a request written in two parts; ours are one write,
    // but a tcp:// payload may be long.
    if matches!(sh.plan.mode, Mode::Requests | Mode::Churn) {
        sock.set_tcp_nodelay(true).map_err(classify)?;
    }
    if let Some(ip) = source {
        bind_source(&sock, ip).map_err(classify)?;
    }
    let mut connected = match sock.connect(&addr.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(classify(e)),
    };
    if !connected {
        // On loopback the handshake usually completes inside the first
        // connect(2); asking again (EISCONN) is one system call where
        // waiting for writability costs an epoll_ctl and a wait.
        match sock.connect(&addr.into()) {
            Ok(()) => connected = true,
            Err(e) if e.raw_os_error() == Some(libc::EISCONN) => connected = true,
            Err(e)
                if e.raw_os_error() == Some(libc::EALREADY)
                    || e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(classify(e)),
        }
    }
    let stream = Stream::new(&sh.reactor, TcpStream::from(sock));
    let deadline = t0 + sh.plan.connect_timeout;
    while !connected {
        let ready = future::or(
            async {
                stream.writable().await;
                true
            },
            async {
                sh.reactor.sleep_until(deadline).await;
                false
            },
        )
        .await;
        if ready {
            // Writable without an error or hang-up event means connected;
            // only then is SO_ERROR's system call skipped.
            if stream.failed() {
                if let Some(e) = stream.get_ref().take_error().map_err(classify)? {
                    return Err(classify(e));
                }
            }
            connected = true;
        } else if Instant::now() >= deadline {
            // (Ctrl-C fires every timer early; a connect in flight still
            // gets its time, within the grace.)
            return Err(Outcome::ConnectTimeout);
        }
    }
    let took = t0.elapsed();
    // A retransmitted SYN waits at least the initial RTO (1 s on Linux), so
    // a faster connect cannot have had one and skips the TCP_INFO call.
    let syn_retransmitted = took >= MIN_SYN_RETRANSMIT
        && crate::kernel::tcp_info(stream.get_ref())
            .map(|i| i.total_retrans > 0)
            .unwrap_or(false);
    Ok(Connected {
        stream,
        took,
        syn_retransmitted,
    })
}

/// Binds to `ip` with the port left to connect(2): IP_BIND_ADDRESS_NO_PORT
/// lets the kernel pick a port per (source, destination) pair, so several
/// source addresses multiply the usable ephemeral ports.
fn bind_source(sock: &Socket, ip: IpAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if ip.is_ipv4() {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    sock.bind(&SocketAddr::new(ip, 0).into())
}

/// An established connection: plain TCP, or TLS over it.
pub(super) struct Conn {
    pub(super) stream: Stream,
    pub(super) tls: Option<Box<rustls::ClientConnection>>,
}

/// Connects, and for an https target completes the TLS handshake within the
/// same connect timeout.
/// Returns the connection, the time it took and whether the SYN was
/// retransmitted.
pub(super) async fn open(
    sh: &Shared,
    source: Option<IpAddr>,
) -> Result<(Conn, Duration, bool), Outcome> {
    let t0 = Instant::now();
    let Connected {
        stream,
        took,
        syn_retransmitted,
    } = connect(sh, source).await?;
    let Some(tls) = &sh.plan.tls else {
        return Ok((Conn { stream, tls: None }, took, syn_retransmitted));
    };
    let mut session = Box::new(tls.session().map_err(|_| Outcome::TlsFailed)?);
    let deadline = t0 + sh.plan.connect_timeout;
    let done = future::or(
        async { Some(crate::tls::handshake(&stream, &mut session).await) },
        async {
            sh.reactor.sleep_until(deadline).await;
            None
        },
    )
    .await;
    match done {
        Some(Ok(())) => {}
        Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(Outcome::TlsFailed),
        Some(Err(e)) => return Err(Outcome::from_io_error(&e)),
        None => return Err(Outcome::ConnectTimeout),
    }
    Ok((
        Conn {
            stream,
            tls: Some(session),
        },
        t0.elapsed(),
        syn_retransmitted,
    ))
}
