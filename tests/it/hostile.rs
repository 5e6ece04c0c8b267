//! The hostile-client suite (issue 14), the cases floodgate serve can
//! defend today: the admin surface closed, requests that break RFC 9112
//! §3.2, and a flood of cheap error responses on one connection, each while
//! a background client runs valid keep-alive requests that must all
//! succeed. (TLS, token auth, the allowlist and per-client limits are not
//! built yet.)

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::ServeProcess;
use crate::util::http::{Client, get, read_response};

/// A client sending one valid request on one keep-alive connection until
/// stopped; joins to the number of requests, each of which must have been
/// a 200.
pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Background {
    /// `GET /`, again and again.
    pub(crate) fn start(addr: SocketAddr) -> Background {
        Background::start_with(
            Client::connect(addr),
            "GET / HTTP/1.1\r\nHost: test\r\n\r\n",
        )
    }

    /// `request` on `client`'s connection, again and again.
    pub(crate) fn start_with(mut c: Client, request: &str) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let request = request.to_string();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                c.send(request.as_bytes());
                let r = c.response();
                assert_eq!(r.status, 200, "background request {n}");
                assert!(!r.closes(), "background connection closed at {n}");
                n += 1;
            }
            n
        });
        Background { stop, thread }
    }

    pub(crate) fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("every background request succeeded")
    }
}

/// Sends `bytes`, reads every response until the server closes (bounded),
/// and returns their statuses.
pub(crate) fn statuses_until_close(addr: SocketAddr, bytes: &[u8]) -> Vec<u16> {
    let mut c = Client::connect(addr);
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send(bytes);
    let mut statuses = Vec::new();
    while let Ok(Some(r)) = read_response(&mut c.reader) {
        statuses.push(r.status);
        if r.closes() {
            break;
        }
    }
    // Then the server closes: EOF, nothing more.
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "bytes after the close: {rest:?}");
    statuses
}

#[test]
fn hostile_clients_are_refused_while_a_valid_client_is_served_throughout() {
    let server = ServeProcess::start(&[]);
    let addr = server.addr();
    let background = Background::start(addr);

    // Admin closed: 404, and accepting never pauses.
    let pause =
        b"POST /admin/pause-accept?ms=5000 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(statuses_until_close(addr, pause).first(), Some(&404));
    let asked = Instant::now();
    assert_eq!(get(addr, "/health").status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    // RFC 9112 §3.2: each is 400 with the connection closed, even with a
    // valid request pipelined behind it.
    for bad in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET abc HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST 9echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
    ] {
        let input = format!("{bad}GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            statuses_until_close(addr, input.as_bytes()),
            [400],
            "{bad:?}"
        );
    }

    // 10,000 pipelined 404s on one connection: cut at the cap (100).
    let flood = b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n".repeat(10_000);
    let statuses = statuses_until_close(addr, &flood);
    assert_eq!(statuses.len(), 100);
    assert!(statuses.iter().all(|s| *s == 404));

    // 1-byte chunks, each with a maximal (1 KiB line) extension: refused
    // once the body's extensions pass 16 KiB, not after a gigabyte.
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut line = b"1;".to_vec();
    line.resize(1022, b'x');
    line.extend_from_slice(b"\r\na\r\n");
    chunked.extend_from_slice(&line.repeat(64));
    assert_eq!(statuses_until_close(addr, &chunked), [400]);

    let served = background.finish();
    assert!(served > 0, "the background client sent nothing");
}
