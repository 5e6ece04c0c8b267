//! Tiny thread-per-connection HTTP/1.1 servers for tests, each bound to
//! 127.0.0.1:0 and stopped when dropped, plus a helper to build plans.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use floodgate_loadgen::{Plan, PlanInput};

/// What a test server does with each request; gets the request number
/// (counting from 0 across connections), the body, and returns the reply.
pub type Handler = dyn Fn(u64, &[u8]) -> Vec<u8> + Send + Sync;

/// A keep-alive HTTP/1.1 server that answers with `handler`.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The source address of every accepted connection.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(handler: impl Fn(u64, &[u8]) -> Vec<u8> + Send + Sync + 'static) -> TestServer {
        TestServer::start_with(false, handler)
    }

    /// Like [`TestServer::start`], but closes each connection after one reply.
    pub fn start_closing(
        handler: impl Fn(u64, &[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::start_with(true, handler)
    }

    /// Like [`TestServer::start`], over TLS with `tls/server.pem` (signed by
    /// `tls/ca.pem`, for localhost and 127.0.0.1).
    pub fn start_tls(
        handler: impl Fn(u64, &[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::start_inner(false, Some(tls_server_config()), handler)
    }

    fn start_with(
        close_after_reply: bool,
        handler: impl Fn(u64, &[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::start_inner(close_after_reply, None, handler)
    }

    fn start_inner(
        close_after_reply: bool,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(u64, &[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let count = Arc::new(AtomicU64::new(0));
        let stop2 = stop.clone();
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let peers2 = peers.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(peer) = conn.peer_addr() {
                    peers2.lock().unwrap().push(peer);
                }
                let handler = handler.clone();
                let count = count.clone();
                match &tls {
                    None => {
                        std::thread::spawn(move || {
                            serve(conn, &*handler, &count, close_after_reply)
                        });
                    }
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(config.clone()) else {
                            continue;
                        };
                        let stream = rustls::StreamOwned::new(session, conn);
                        std::thread::spawn(move || {
                            serve(stream, &*handler, &count, close_after_reply)
                        });
                    }
                }
            }
        });
        TestServer {
            addr,
            peers,
            stop,
            accept: Some(accept),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve<S: Read + Write>(
    mut conn: S,
    handler: &Handler,
    count: &AtomicU64,
    close_after_reply: bool,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Reads one request: the head, then Content-Length bytes of body.
        let (head_len, body_len) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, len);
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + body_len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let n = count.fetch_add(1, Ordering::Relaxed);
        let reply = handler(n, &buf[head_len..head_len + body_len]);
        buf.drain(..head_len + body_len);
        if conn.write_all(&reply).is_err() || close_after_reply {
            return;
        }
    }
}

/// `200 OK` with `body`.
pub fn ok(body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

/// A plan input with short timeouts and one thread.
pub fn input(target: &str) -> PlanInput {
    PlanInput {
        target: Some(target.to_string()),
        connections: 2,
        threads: 1,
        seed: 1,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        // Generous: these tests check the server-side story, not the
        // generator's punctuality on a shared, busy machine.
        lag_threshold: Duration::from_secs(1),
        grace: Duration::from_secs(1),
        ..PlanInput::default()
    }
}

pub fn plan(input: PlanInput) -> Plan {
    Plan::new(input).expect("valid plan")
}

/// A file under `loadgen/tests/it/tls/`.
pub fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tls")
        .join(name)
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls_file("server.pem"))
        .expect("read server.pem")
        .collect::<Result<_, _>>()
        .expect("parse server.pem");
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).expect("read server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    Arc::new(config)
}
