//! The accept loop: one task per listening socket. It takes connections off
//! the kernel's accept queue, hands each to a connection task (or refuses it
//! over `--max-connections`), backs off when descriptors or memory run out,
//! honours `--accept-delay` and `Event::PauseAccept`, and returns, closing
//! its listener, when shutdown begins, or when accept(2) fails in a way no
//! retry can fix (the listener itself is broken), which stops the server.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_io::Timer;
use event_listener::EventListener;
use floodgate_proto::Stats;
use futures_lite::future::or;

use crate::conn;
use crate::listener::Listener;
use crate::shared::{Phase, Shared};

/// First wait after accept(2) fails for lack of descriptors or memory.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The wait doubles up to this, so a starved server retries about once a
/// second and spends almost no CPU.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval for a run of accept errors.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// What ended a wait in the accept loop.
enum Wake {
    Ready,
    Pause,
    Shutdown,
}

/// How to react to a failed accept(2).
#[derive(Debug, PartialEq, Eq)]
enum ErrorAction {
    /// Nothing was pending after all.
    Retry,
    /// An error of one connection (aborted before we took it): skip it.
    Skip,
    /// Out of descriptors, buffers or memory: wait before trying again, so
    /// the loop never spins.
    BackOff,
    /// The listener itself is broken (EBADF, EINVAL, ENOTSOCK, EFAULT, or an
    /// error we do not know): every retry would fail the same way, so the
    /// server stops instead of backing off forever.
    Fatal,
}

fn classify(err: &io::Error) -> ErrorAction {
    if matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) {
        return ErrorAction::Retry;
    }
    match err.raw_os_error() {
        // accept(2), Linux: "already-pending network errors on the new
        // socket" are returned as errors of accept; they belong to that one
        // connection, which is gone.
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ETIMEDOUT,
        ) => ErrorAction::Skip,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => ErrorAction::BackOff,
        _ => ErrorAction::Fatal,
    }
}

/// Rate-limits the log lines for accept errors: the first error of a burst
/// is logged, then one summary per [`LOG_EVERY`].
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn record(&mut self, err: &io::Error, action: &ErrorAction, backoff: Duration) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        self.last = Some(now);
        match action {
            ErrorAction::BackOff => tracing::warn!(
                %err,
                backoff_ms = backoff.as_millis() as u64,
                suppressed,
                "accept failed; backing off (raise `ulimit -n` if this is EMFILE)"
            ),
            _ => tracing::debug!(%err, suppressed, "accept failed; skipped that connection"),
        }
    }
}

/// Accepts until shutdown begins. If accept(2) fails in a way no retry can
/// fix, logs the cause, records it in `shared` (which starts the shutdown of
/// the whole server) and returns.
pub(crate) async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    let mut phase_listener = shared.listen_phase();
    let mut pause_listener = shared.listen_pause();
    let mut backoff = BACKOFF_MIN;
    let mut log = ErrorLog {
        last: None,
        suppressed: 0,
    };
    let mut refused = RefusalLog::default();
    loop {
        if shared.phase() != Phase::Running {
            return;
        }
        if let Some(until) = shared.paused_until(Instant::now()) {
            tracing::debug!(addr = %listener.addr, "accept paused");
            if let Wake::Shutdown = sleep_until(until, &mut phase_listener).await {
                phase_listener = shared.listen_phase();
            }
            continue;
        }
        let wake = or(
            async {
                let _ = listener.socket.readable().await;
                Wake::Ready
            },
            or(
                async {
                    (&mut pause_listener).await;
                    Wake::Pause
                },
                async {
                    (&mut phase_listener).await;
                    Wake::Shutdown
                },
            ),
        )
        .await;
        match wake {
            Wake::Ready => {}
            Wake::Pause => {
                pause_listener = shared.listen_pause();
                continue;
            }
            Wake::Shutdown => {
                phase_listener = shared.listen_phase();
                continue;
            }
        }
        if let Some(delay) = shared.accept_delay {
            if let Wake::Shutdown = sleep_until(Instant::now() + delay, &mut phase_listener).await {
                phase_listener = shared.listen_phase();
                continue;
            }
        }
        // A pause requested while we waited applies to this connection too.
        if shared.phase() != Phase::Running || shared.paused_until(Instant::now()).is_some() {
            continue;
        }

        match listener.socket.get_ref().accept() {
            Ok((stream, peer)) => {
                backoff = BACKOFF_MIN;
                Stats::bump(&shared.stats.accepted);
                // The allowlist and the per-IP connection cap, decided in
                // proto (which counts the refusal); the refused peer is
                // closed here, before it costs a task.
                let client = match &shared.access {
                    None => None,
                    Some(access) => match access.admit(peer.ip(), &shared.stats) {
                        Ok(client) => Some(client),
                        Err(refusal) => {
                            refused.record(peer, refusal);
                            drop(stream);
                            continue;
                        }
                    },
                };
                match shared.try_acquire() {
                    Some(permit) => conn::spawn(stream, permit, shared.clone(), client),
                    None => {
                        conn::reject(stream, shared.stats.refuse_over_limit());
                    }
                }
            }
            Err(err) => {
                let action = classify(&err);
                if action == ErrorAction::Retry {
                    continue;
                }
                if action == ErrorAction::Fatal {
                    shared.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        addr = %listener.addr,
                        %err,
                        "accept failed on a broken listener; stopping the server"
                    );
                    shared.fail_accept(listener.addr, &err);
                    return;
                }
                shared.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                log.record(&err, &action, backoff);
                if action == ErrorAction::BackOff {
                    let wake = sleep_until(Instant::now() + backoff, &mut phase_listener).await;
                    if let Wake::Shutdown = wake {
                        phase_listener = shared.listen_phase();
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Waits until `until` or a phase change, whichever comes first.
async fn sleep_until(until: Instant, phase_listener: &mut EventListener) -> Wake {
    or(
        async {
            Timer::at(until).await;
            Wake::Ready
        },
        async {
            phase_listener.await;
            Wake::Shutdown
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_exhaustion_backs_off_and_aborted_connections_are_skipped() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify(&os(libc::EMFILE)), ErrorAction::BackOff);
        assert_eq!(classify(&os(libc::ENFILE)), ErrorAction::BackOff);
        assert_eq!(classify(&os(libc::ENOBUFS)), ErrorAction::BackOff);
        assert_eq!(classify(&os(libc::ENOMEM)), ErrorAction::BackOff);
        assert_eq!(classify(&os(libc::ECONNABORTED)), ErrorAction::Skip);
        assert_eq!(classify(&os(libc::EPROTO)), ErrorAction::Skip);
        assert_eq!(classify(&os(libc::EAGAIN)), ErrorAction::Retry);
        assert_eq!(classify(&os(libc::EINTR)), ErrorAction::Retry);
        assert_eq!(classify(&os(libc::EINVAL)), ErrorAction::Fatal);
        assert_eq!(classify(&os(libc::EBADF)), ErrorAction::Fatal);
        assert_eq!(classify(&os(libc::ENOTSOCK)), ErrorAction::Fatal);
    }

    #[test]
    fn a_broken_listener_ends_the_accept_loop_and_starts_the_shutdown() {
        let config = crate::Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..crate::Config::default()
        };
        let listener = crate::listener::bind(config.listen[0], &config).unwrap();
        let addr = listener.addr;
        // A listener shut down for reading polls readable and fails every
        // accept(2) with EINVAL: an error no retry can fix.
        socket2::SockRef::from(listener.socket.get_ref())
            .shutdown(std::net::Shutdown::Read)
            .unwrap();
        let shared = Arc::new(Shared::new(config.limits, Arc::default(), None, None));
        let ended = futures_lite::future::block_on(or(
            async {
                accept_loop(listener, shared.clone()).await;
                true
            },
            async {
                Timer::after(Duration::from_secs(5)).await;
                false
            },
        ));
        assert!(ended, "the accept loop kept retrying a broken listener");
        assert_eq!(shared.accept_failure(), Some((addr, Some(libc::EINVAL))));
        assert_eq!(shared.phase(), Phase::Draining);
        assert_eq!(shared.stats.accept_errors.load(Ordering::Relaxed), 1);
    }
}

/// Logs peers closed at accept by the access policy, at most once per
/// [`LOG_EVERY`] with the count since the last line, so a refused flood
/// cannot flood the log.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    since: u64,
}

impl RefusalLog {
    fn record(&mut self, peer: std::net::SocketAddr, refusal: floodgate_proto::access::Refusal) {
        self.since += 1;
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return;
        }
        tracing::warn!(%peer, ?refusal, refused = self.since, "peer closed at accept");
        self.last = Some(now);
        self.since = 0;
    }
}
