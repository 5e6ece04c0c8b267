//! Building listening sockets with `socket2`: address reuse, port reuse and
//! the listen(2) backlog, and reading back the backlog the kernel actually
//! applied. Accepting connections lives in `accept.rs`, not here.

use std::net::{SocketAddr, TcpListener};

use async_io::Async;
use socket2::{Domain, Protocol, Socket, Type};

use crate::{BindError, Config};

/// A bound, listening socket registered with the reactor.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) socket: Async<TcpListener>,
    pub(crate) addr: SocketAddr,
}

/// Binds and listens on `addr` with the socket options in `config`.
pub(crate) fn bind(addr: SocketAddr, config: &Config) -> Result<Listener, BindError> {
    let listen_error = |source| BindError::Listen { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(listen_error)?;
    // Set both options explicitly, so `--no-reuse-address` means off even on
    // a platform whose default differs.
    socket
        .set_reuse_address(config.reuse_address)
        .map_err(listen_error)?;
    if config.reuse_port {
        socket.set_reuse_port(true).map_err(listen_error)?;
    }
    socket.bind(&addr.into()).map_err(listen_error)?;
    // listen(2) takes an int; anything larger is clamped by the kernel anyway.
    let backlog = i32::try_from(config.backlog).unwrap_or(i32::MAX);
    socket.listen(backlog).map_err(listen_error)?;
    let std_listener: TcpListener = socket.into();
    let local = std_listener.local_addr().map_err(listen_error)?;
    let effective = effective_backlog(&std_listener);
    match effective {
        Some(effective) if effective < u64::from(config.backlog) => tracing::warn!(
            addr = %local,
            requested = config.backlog,
            effective,
            "listen backlog clamped by the kernel (net.core.somaxconn)"
        ),
        Some(effective) => tracing::info!(
            addr = %local,
            requested = config.backlog,
            effective,
            "listening"
        ),
        None => tracing::info!(
            addr = %local,
            requested = config.backlog,
            "listening (effective backlog unknown on this platform)"
        ),
    }
    // Registering with the reactor here, rather than when serving starts,
    // turns a reactor failure into a bind error the caller can report.
    let socket = Async::new(std_listener).map_err(|source| BindError::Listen {
        addr: local,
        source,
    })?;
    Ok(Listener {
        socket,
        addr: local,
    })
}

/// The accept-queue capacity the kernel applied to a listening socket.
///
/// Linux reports it through TCP_INFO: for a socket in LISTEN state,
/// `tcpi_sacked` holds `sk_max_ack_backlog` (the listen(2) backlog after the
/// clamp at `net.core.somaxconn`) and `tcpi_unacked` the queue's current
/// length; this is the same number `ss -ltn` shows as Send-Q.
#[cfg(target_os = "linux")]
pub(crate) fn effective_backlog(listener: &TcpListener) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is a live socket owned by `listener`; `info` and `len`
    // describe a writable buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(u64::from(info.tcpi_sacked))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn effective_backlog(_listener: &TcpListener) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(backlog: u32) -> Config {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            backlog,
            ..Config::default()
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn effective_backlog_is_the_requested_one_below_somaxconn() {
        let l = bind(SocketAddr::from(([127, 0, 0, 1], 0)), &config(77)).unwrap();
        assert_eq!(effective_backlog(l.socket.get_ref()), Some(77));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn effective_backlog_is_clamped_at_somaxconn() {
        let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let l = bind(SocketAddr::from(([127, 0, 0, 1], 0)), &config(u32::MAX)).unwrap();
        assert_eq!(effective_backlog(l.socket.get_ref()), Some(somaxconn));
    }
}
