//! TLS termination: the server's certificate (from PEM files, or an
//! ephemeral self-signed one for loopback testing), the handshake in the
//! connection's own task under a deadline, and the TLS stream as a
//! `Transport` for the one connection driver in `conn`. rustls with the
//! ring provider does the cryptography (through futures-rustls); what
//! happens over the stream after the handshake is `conn`'s business.

use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use floodgate_proto::Stats;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use futures_rustls::server::TlsStream;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::shared::{PhaseWatch, Shared};
use crate::transport::Transport;

/// The default `--handshake-timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// At most one log line per this interval for handshake failures; the
/// rest are counted in `Stats::tls_handshake_failures` only.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The largest certificate or key file read: a chain of a few
/// certificates is a few KiB.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// What a TLS listener serves with: the rustls configuration and the
/// handshake deadline.
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// Time from accept to the end of the handshake; a client that has not
    /// finished it by then is closed. It delays no other connection.
    pub handshake_timeout: Duration,
}

/// The ephemeral certificate of [`Tls::self_signed`], for clients to trust.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub tls: Tls,
    /// The certificate, PEM, as `floodgate load --ca` reads it.
    pub cert_pem: String,
    /// SHA-256 of the certificate's DER, as lowercase hex pairs joined by `:`.
    pub fingerprint: String,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate file {path}: {error}")]
    ReadCert { path: String, error: io::Error },
    #[error("key file {path}: {error}")]
    ReadKey { path: String, error: io::Error },
    #[error("certificate file {path}: no PEM certificate in it ({detail})")]
    NoCert { path: String, detail: String },
    #[error("key file {path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1) ({detail})")]
    NoKey { path: String, detail: String },
    #[error("the key does not match the certificate, or is unusable: {0}")]
    Mismatch(String),
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
}

impl Tls {
    /// The certificate chain in `cert_path` and its private key in
    /// `key_path`, both PEM; fails if either is unreadable or the key does
    /// not belong to the first certificate.
    pub fn from_pem_files(cert_path: &str, key_path: &str) -> Result<Tls, TlsError> {
        Tls::from_pem_files_with_chain(cert_path, key_path).map(|(tls, _)| tls)
    }

    /// [`Tls::from_pem_files`], and the chain's PEM as read, for a client
    /// of this server to trust.
    pub fn from_pem_files_with_chain(
        cert_path: &str,
        key_path: &str,
    ) -> Result<(Tls, Vec<u8>), TlsError> {
        let cert_pem =
            crate::files::read_regular(cert_path.as_ref(), MAX_PEM_BYTES).map_err(|error| {
                TlsError::ReadCert {
                    path: cert_path.into(),
                    error,
                }
            })?;
        let key_pem =
            crate::files::read_regular(key_path.as_ref(), MAX_PEM_BYTES).map_err(|error| {
                TlsError::ReadKey {
                    path: key_path.into(),
                    error,
                }
            })?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::NoCert {
                path: cert_path.into(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCert {
                path: cert_path.into(),
                detail: "the file has none".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
            path: key_path.into(),
            detail: e.to_string(),
        })?;
        Ok((Tls::from_der(certs, key)?, cert_pem))
    }

    /// An ephemeral self-signed certificate for `localhost`, `127.0.0.1`
    /// and `::1`, made at start-up and never stored unless the caller does.
    pub fn self_signed() -> Result<SelfSigned, TlsError> {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
        let cert = made.cert.der().clone();
        let fingerprint = fingerprint(&cert);
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
        Ok(SelfSigned {
            tls: Tls::from_der(vec![cert], key)?,
            cert_pem: made.cert.pem(),
            fingerprint,
        })
    }

    fn from_der(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Mismatch(e.to_string()))?
            .with_no_client_auth()
            // Checks that the key's public half is the certificate's.
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Mismatch(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }
}

/// SHA-256 of a certificate's DER, as `ab:cd:...` (what `openssl x509
/// -fingerprint -sha256` prints, in lowercase).
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

/// Why a handshake did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Timeout,
    /// Not TLS (plaintext HTTP, random bytes), a TLS alert, or a reset.
    Refused,
}

/// Runs the handshake on `stream` within the handshake timeout, then serves
/// the TLS stream with the connection driver. A failed handshake is counted
/// and closes the connection; no other connection waits for it.
pub(crate) async fn serve(
    stream: Async<TcpStream>,
    shared: Arc<Shared>,
    client: Option<floodgate_proto::access::Client>,
) {
    let Some(tls) = &shared.tls else {
        return;
    };
    let mut watch = PhaseWatch::new(&shared);
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let deadline = Instant::now() + tls.handshake_timeout;
    // Boxed: the handshake's state (rustls' buffers among it) is only
    // needed until it ends, and must not stay part of the task's size.
    let mut accept = Box::pin(acceptor.accept(stream));
    let mut timer = Timer::at(deadline);
    let done = future::poll_fn(|cx| {
        if let Poll::Ready(r) = accept.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|_| Failure::Refused));
        }
        if Pin::new(&mut timer).poll(cx).is_ready() {
            return Poll::Ready(Err(Failure::Timeout));
        }
        // A connection still in its handshake has nothing in flight: a
        // shutdown closes it at once.
        if watch.poll_changed(&shared, cx).is_ready() {
            return Poll::Ready(Err(Failure::Refused));
        }
        Poll::Pending
    })
    .await;
    drop(accept);
    match done {
        Ok(stream) => crate::conn::drive(TlsTransport(stream), shared.clone(), client).await,
        Err(failure) => record_failure(&shared.stats, failure),
    }
}

/// Counts a failed handshake, and logs it at most once per [`LOG_EVERY`].
fn record_failure(stats: &Stats, failure: Failure) {
    Stats::bump(&stats.tls_handshake_failures);
    static LAST_LOG_MS: AtomicU64 = AtomicU64::new(0);
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let now_ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
    let last = LAST_LOG_MS.load(Ordering::Relaxed);
    if last != 0 && now_ms < last + LOG_EVERY.as_millis() as u64 {
        return;
    }
    if LAST_LOG_MS
        .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        let total = stats.tls_handshake_failures.load(Ordering::Relaxed);
        match failure {
            Failure::Timeout => tracing::info!(
                total,
                "TLS handshake not finished within --handshake-timeout; connection closed \
                 (logged at most every 5 s)"
            ),
            Failure::Refused => tracing::info!(
                total,
                "TLS handshake failed (not TLS, or refused); connection closed \
                 (logged at most every 5 s)"
            ),
        }
    }
}

/// A TLS stream after its handshake, as the connection driver's transport.
pub(crate) struct TlsTransport(TlsStream<Async<TcpStream>>);

impl Transport for TlsTransport {
    fn into_socket(self) -> Async<TcpStream> {
        self.0.into_inner().0
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            // A peer that closes TCP without close_notify has closed all
            // the same; treated like a plain EOF, so a response it waits
            // for after a half-close is still sent.
            Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
                Poll::Ready(Ok(0))
            }
            other => other,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Whatever stopped a write is records rustls still holds: once they
        // are out, it takes more.
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // close_notify, the records before it, then the FIN.
        Pin::new(&mut self.0).poll_close(cx)
    }
}
