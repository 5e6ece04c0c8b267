//! The served-after-resume check: one request on every held connection and
//! a bounded wait for each response.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::burst::Burst;
use crate::{Config, ProbeError};

/// Sends one request on every held connection and waits (bounded) for the
/// responses.
pub(crate) fn serve_check(
    config: &Config,
    burst: &mut Burst,
    pause_until: Option<Instant>,
    interrupted: &AtomicBool,
) -> Result<(), ProbeError> {
    let start = pause_until.unwrap_or_else(Instant::now).max(Instant::now());
    let deadline = start + config.serve_timeout();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        config.check_path(),
        config.target()
    );
    let mut streams = Vec::with_capacity(burst.held.len());
    for sock in burst.held.drain(..) {
        let mut stream: TcpStream = sock.into();
        let ok = stream.set_nonblocking(false).is_ok()
            && stream
                .set_write_timeout(Some(config.serve_timeout()))
                .is_ok()
            && stream.write_all(request.as_bytes()).is_ok();
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
        match read_response(&mut stream, deadline) {
            Some(_) => burst.served += 1,
            None => burst.unserved += 1,
        }
    }
    Ok(())
}

/// Reads until the peer closes or the deadline; returns the status code of
/// the HTTP response read, if any.
fn read_response(stream: &mut TcpStream, deadline: Instant) -> Option<u16> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.len() > 64 * 1024 || response_complete(&seen) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    status_code(&seen)
}

/// Writes `request` on `stream` and reads one response (complete by
/// Content-Length, or by the peer closing), within `timeout`.
pub(crate) fn exchange_on(
    stream: &mut TcpStream,
    request: &str,
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if response_complete(&seen) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if seen.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(seen)
}

/// Whether `seen` holds a whole response with a Content-Length body. A
/// response without Content-Length is complete only when the peer closes.
fn response_complete(seen: &[u8]) -> bool {
    let Some(head_end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&seen[..head_end]);
    let length = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|len| seen.len() >= head_end + 4 + len)
}

pub(crate) fn status_code(response: &[u8]) -> Option<u16> {
    let line = response.split(|b| *b == b'\n').next()?;
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_completeness_follows_content_length() {
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        ));
        assert!(!response_complete(b"HTTP/1.1 200 OK\r\n\r\nok"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"SSH-2.0\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
