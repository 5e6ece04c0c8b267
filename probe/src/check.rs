//! The served-after-resume check: one request on every held connection and
//! a bounded wait for each response, or, for any TCP service, the target's
//! accept queue draining (and an optional payload answered on each held
//! connection). Also the blocking exchange it shares
//! with [`crate::PauseEndpoint`]: replies are read from a `TcpStream` with
//! floodgate-proto's [`ResponseParser`], the same parser the load generator
//! uses.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use floodgate_proto::client::{Complete, Expect, Framing, Prepared, Progress, ResponseParser};

use crate::burst::Burst;
use crate::{Config, ProbeError, ServeCheck};

/// How often the accept check reads the accept queue.
const QUEUE_POLL: Duration = Duration::from_millis(10);

/// Checks (bounded by the serve timeout from the end of the pause) that the
/// held connections were served, as [`Config::check`] says.
pub(crate) fn serve_check(
    config: &Config,
    burst: &mut Burst,
    pause_until: Option<Instant>,
    interrupted: &AtomicBool,
) -> Result<(), ProbeError> {
    let start = pause_until.unwrap_or_else(Instant::now).max(Instant::now());
    let deadline = start + config.serve_timeout();
    let request = match config.check() {
        ServeCheck::Http { path } => request(format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            config.target()
        )),
        ServeCheck::Accept { exchange } => {
            let waiting = drained(config, deadline, interrupted)?;
            let Some((payload, delimiter)) = exchange else {
                // Every held connection but those still queued was accepted.
                let held = burst.held.len() as u64;
                let left = u64::from(waiting).min(held);
                burst.served += held - left;
                burst.unserved += left;
                burst.held.clear();
                return Ok(());
            };
            Prepared {
                wire: payload.clone(),
                framing: Framing::Delimiter(delimiter.clone()),
                expect: Expect::Anything,
            }
        }
    };
    let mut streams = Vec::with_capacity(burst.held.len());
    for sock in burst.held.drain(..) {
        let mut stream: TcpStream = sock.into();
        let ok = stream.set_nonblocking(false).is_ok()
            && stream
                .set_write_timeout(Some(config.serve_timeout()))
                .is_ok()
            && stream.write_all(&request.wire).is_ok();
        if ok {
            streams.push(stream);
        } else {
            burst.unserved += 1;
        }
    }
    for mut stream in streams {
        if interrupted.load(Ordering::Relaxed) {
            return Err(ProbeError::Interrupted);
        }
        match read_reply(&mut stream, &request, deadline) {
            Reply::Complete(_) | Reply::Head => burst.served += 1,
            Reply::Nothing(_) => burst.unserved += 1,
        }
    }
    Ok(())
}

/// Waits until the target's accept queue is empty, the deadline passes or
/// the probe is interrupted; returns the connections still waiting.
fn drained(
    config: &Config,
    deadline: Instant,
    interrupted: &AtomicBool,
) -> Result<u32, ProbeError> {
    loop {
        if interrupted.load(Ordering::Relaxed) {
            return Err(ProbeError::Interrupted);
        }
        let waiting = floodgate_kernel::local_listener(config.target())
            .map_or(0, |state| state.queue_depth());
        if waiting == 0 || Instant::now() >= deadline {
            return Ok(waiting);
        }
        std::thread::sleep(QUEUE_POLL);
    }
}

/// A request without a body whose reply is an HTTP response with any body.
pub(crate) fn request(wire: String) -> Prepared {
    Prepared {
        wire: wire.into_bytes(),
        framing: Framing::Http {
            head_request: false,
        },
        expect: Expect::Anything,
    }
}

/// How reading one response ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The whole response.
    Complete(Complete),
    /// Its head, but not all of its body: the peer closed, a read failed,
    /// the deadline passed or [`READ_LIMIT`] bytes were read first.
    Head,
    /// No response head; why, in words.
    Nothing(String),
}

/// The most bytes read of one response. Any head fits; past it, a body
/// still streaming only says again that the peer answered.
const READ_LIMIT: usize = 64 * 1024;

/// Writes `req` on `stream` (within `timeout`) and reads its reply (by
/// `timeout` from now).
pub(crate) fn exchange(stream: &mut TcpStream, req: &Prepared, timeout: Duration) -> Reply {
    let written = stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(&req.wire));
    if let Err(e) = written {
        return Reply::Nothing(e.to_string());
    }
    read_reply(stream, req, Instant::now() + timeout)
}

/// Reads the reply to `req` from a blocking `stream` until it is complete,
/// the peer closes, or `deadline`. Bytes that arrive with the end of the
/// reply and belong after it are dropped.
pub(crate) fn read_reply(stream: &mut TcpStream, req: &Prepared, deadline: Instant) -> Reply {
    let mut parser = ResponseParser::default();
    parser.start(req);
    // Bytes read but not yet consumed: at most a partial head.
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut read = 0;
    let cut_short = |parser: &ResponseParser, why: &dyn std::fmt::Display| {
        if parser.started() {
            Reply::Head
        } else {
            Reply::Nothing(why.to_string())
        }
    };
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return cut_short(&parser, &"no response in time");
        };
        if let Err(e) = stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))) {
            return cut_short(&parser, &e);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                return match parser.eof(req, false) {
                    Some(done) => Reply::Complete(done),
                    None => cut_short(&parser, &"the connection closed before a response"),
                };
            }
            Ok(n) => n,
            // A read timeout; the deadline decides.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return cut_short(&parser, &e),
        };
        read += n;
        pending.extend_from_slice(&chunk[..n]);
        match parser.feed(&pending, req, false) {
            Ok((_, Progress::Done(done))) => return Reply::Complete(done),
            Ok((used, Progress::NeedMore)) => drop(pending.drain(..used)),
            Err(e) => return cut_short(&parser, &e),
        }
        if read >= READ_LIMIT {
            return cut_short(&parser, &format!("no response head in {READ_LIMIT} bytes"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::mpsc;

    use super::*;

    /// Has a peer on loopback read the request, write `reply` and then close
    /// (or, with `close` false, hold the connection until the read is
    /// done), and reads it with `read_reply` within `wait`.
    fn reply_to(reply: &'static [u8], close: bool, wait: Duration) -> Reply {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let peer = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                conn.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            conn.write_all(reply).unwrap();
            if !close {
                let _ = done_rx.recv();
            }
        });
        let req = request("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".into());
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(&req.wire).unwrap();
        let got = read_reply(&mut stream, &req, Instant::now() + wait);
        drop(done_tx);
        peer.join().unwrap();
        got
    }

    fn complete(status: u16, close: bool) -> Reply {
        Reply::Complete(Complete {
            status,
            close,
            mismatch: false,
        })
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn a_framed_reply_is_complete_without_waiting_for_the_close() {
        let length = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
        assert_eq!(reply_to(length, false, WAIT), complete(200, false));
        let chunked =
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n";
        assert_eq!(reply_to(chunked, false, WAIT), complete(503, false));
    }

    #[test]
    fn a_close_delimited_reply_is_complete_at_the_close() {
        let reply = b"HTTP/1.0 200 OK\r\n\r\nbody until close";
        assert_eq!(reply_to(reply, true, WAIT), complete(200, true));
    }

    #[test]
    fn a_head_with_its_body_cut_short_is_an_answer_but_not_complete() {
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(reply_to(short, true, WAIT), Reply::Head);
        let slow = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(
            reply_to(slow, false, Duration::from_millis(100)),
            Reply::Head
        );
    }

    #[test]
    fn silence_a_close_or_not_http_is_no_answer() {
        assert_eq!(
            reply_to(b"", false, Duration::from_millis(100)),
            Reply::Nothing("no response in time".into())
        );
        assert_eq!(
            reply_to(b"", true, WAIT),
            Reply::Nothing("the connection closed before a response".into())
        );
        assert_eq!(
            reply_to(b"SSH-2.0-OpenSSH_9.6\r\n", true, WAIT),
            Reply::Nothing("malformed response head".into())
        );
    }
}
