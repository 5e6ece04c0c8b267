//! TLS for `https://` targets: building the rustls client configuration from
//! `--ca PEM` or `--insecure`, and driving a `rustls::ClientConnection` over
//! a connection's non-blocking `Stream` (handshake, encrypted writes,
//! readiness-first reads). Which requests to send and how replies are
//! framed stay in `conn` and `http`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::reactor::Stream;

/// What an https target needs to connect.
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    /// The name the certificate must carry: the target's host.
    pub server_name: ServerName<'static>,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TlsError {
    #[error("--ca: no PEM certificate found ({0})")]
    NoCertificate(String),
    #[error("--ca: certificate rejected: {0}")]
    BadCertificate(String),
    #[error(
        "an https:// target needs --ca PEM (trust these roots) or --insecure (no verification)"
    )]
    NoTrust,
    #[error("--target: {0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

impl Tls {
    /// A configuration trusting the roots in `ca_pem`, or nothing at all
    /// with `insecure`, for a server called `host`.
    pub fn new(host: &str, ca_pem: Option<&[u8]>, insecure: bool) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let mut config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        } else {
            let pem = ca_pem.ok_or(TlsError::NoTrust)?;
            let mut roots = RootCertStore::empty();
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| TlsError::NoCertificate(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
                found += 1;
            }
            if found == 0 {
                return Err(TlsError::NoCertificate("the file has none".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::ServerName(host.to_string()))?;
        Ok(Tls {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A client session for one connection.
    pub(crate) fn session(&self) -> io::Result<ClientConnection> {
        ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(io::Error::other)
    }
}

/// `--insecure`: accepts any certificate, but still checks the handshake
/// signatures so the session is a real one.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `Read`/`Write` over a [`Stream`] for rustls' `read_tls`/`write_tls`.
struct Io<'a>(&'a Stream);

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes out every TLS record rustls has queued.
pub(crate) async fn flush(stream: &Stream, tls: &mut ClientConnection) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(&mut Io(stream)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads TLS records once the socket is readable and decrypts them.
/// `Ok(false)` means the peer closed the TCP connection.
async fn fill(stream: &Stream, tls: &mut ClientConnection) -> io::Result<bool> {
    loop {
        stream.readable().await;
        match tls.read_tls(&mut Io(stream)) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                // Alerts or key updates may need an answer.
                flush(stream, tls).await?;
                return Ok(true);
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Completes the handshake. Errors of kind `InvalidData` are TLS failures
/// (for example an untrusted certificate).
pub(crate) async fn handshake(stream: &Stream, tls: &mut ClientConnection) -> io::Result<()> {
    while tls.is_handshaking() {
        flush(stream, tls).await?;
        if tls.is_handshaking() && tls.wants_read() && !fill(stream, tls).await? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    flush(stream, tls).await
}

/// Sends `bytes` as application data.
pub(crate) async fn send(
    stream: &Stream,
    tls: &mut ClientConnection,
    bytes: &[u8],
) -> io::Result<()> {
    tls.writer().write_all(bytes)?;
    flush(stream, tls).await
}

/// Reads decrypted bytes into `buf`, waiting for readiness first; 0 at the
/// end of the stream (close_notify or TCP close).
pub(crate) async fn recv(
    stream: &Stream,
    tls: &mut ClientConnection,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut eof = false;
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The peer closed without close_notify: for framing, an EOF.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        // At EOF rustls answers the next read with Ok(0) or UnexpectedEof.
        eof = !fill(stream, tls).await?;
    }
}
