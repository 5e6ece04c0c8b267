//! The client side of one HTTP/1.1 (or raw TCP) exchange, sans-IO: request
//! bytes are precomputed once per request kind ([`Prepared`]), and
//! [`ResponseParser`] takes the bytes read so far and says how many it
//! consumed and whether the response is complete. Framing by Content-Length,
//! chunked transfer coding, or connection close; `tcp://` replies by byte
//! count or delimiter. Bodies are checked as they stream past (`--verify`),
//! never stored. Sockets and clocks belong to the callers (floodgate-loadgen's
//! connections, floodgate-probe's blocking reads), and so does what a
//! [`Complete`] response means for their books.

/// How much of a response head may be buffered before it is a bad response.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The longest reply buffered while looking for `--expect-delimiter`.
pub const MAX_DELIMITED_BYTES: usize = 1 << 20;

/// What a response body must be, when `--verify` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Nothing checked beyond framing and status.
    Anything,
    /// The body must equal these bytes (`POST /echo`).
    Echo(Vec<u8>),
    /// `n` bytes of [`crate::bytes_endpoint_byte`] (`GET /bytes/{n}`).
    Bytes(u64),
}

/// How a reply is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// An HTTP/1.1 response; `head_request` means no body follows.
    Http { head_request: bool },
    /// `tcp://`: complete after this many bytes.
    Bytes(u64),
    /// `tcp://`: complete after this delimiter.
    Delimiter(Vec<u8>),
}

/// One request kind, with its bytes ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The whole request (head and body), written as is.
    pub wire: Vec<u8>,
    pub framing: Framing,
    pub expect: Expect,
}

/// A response that was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complete {
    /// The status code (200 for a `tcp://` reply).
    pub status: u16,
    /// The server said it will close (or the body was close-delimited).
    pub close: bool,
    /// `--verify` found a difference.
    pub mismatch: bool,
}

/// Why a response did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed response head")]
    Head,
    #[error("response head longer than {MAX_HEAD_BYTES} bytes")]
    HeadTooLong,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("malformed chunked body")]
    Chunked,
    #[error("reply longer than {MAX_DELIMITED_BYTES} bytes without the delimiter")]
    NoDelimiter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// This many body bytes are still to come.
    Length(u64),
    /// Reading until the connection closes.
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailer,
    RawBytes(u64),
    RawDelimiter,
}

/// Whether a response is complete yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    Done(Complete),
}

/// Parses one reply at a time; reuse it for every request on a connection.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    status: u16,
    close: bool,
    mismatch: bool,
    /// Body bytes seen so far, for verification offsets.
    body_offset: u64,
    /// Where the delimiter search resumes, so a long reply is scanned once.
    scanned: usize,
    /// The last head parsed, byte for byte, and what it said. A keep-alive
    /// server mostly sends the same head again (a Date header changes once
    /// a second), and the same bytes parse the same way, so a repeat costs
    /// one comparison instead of a parse (two thirds of the client's own
    /// work per request against nginx). Kept across [`ResponseParser::start`].
    memo: Option<(Vec<u8>, Head)>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser {
            state: State::Head,
            status: 0,
            close: false,
            mismatch: false,
            body_offset: 0,
            scanned: 0,
            memo: None,
        }
    }
}

impl ResponseParser {
    /// Prepares for the reply to `req`.
    pub fn start(&mut self, req: &Prepared) {
        let memo = self.memo.take();
        *self = ResponseParser {
            memo,
            ..ResponseParser::default()
        };
        match &req.framing {
            Framing::Http { .. } => {}
            Framing::Bytes(n) => {
                self.status = 200;
                self.state = State::RawBytes(*n)
            }
            Framing::Delimiter(_) => {
                self.status = 200;
                self.state = State::RawDelimiter
            }
        }
    }

    /// Consumes what it can of `buf`; returns the bytes consumed and whether
    /// the reply is complete. Bytes after a complete reply are not consumed.
    pub fn feed(
        &mut self,
        buf: &[u8],
        req: &Prepared,
        verify: bool,
    ) -> Result<(usize, Progress), ResponseError> {
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            match self.state {
                State::Head => {
                    // Most servers send a handful of headers: a small array
                    // is cheap to set up per response; a long head retries.
                    let repeat = self
                        .memo
                        .as_ref()
                        .filter(|(bytes, _)| rest.starts_with(bytes))
                        .map(|&(_, head)| head);
                    let head = match repeat {
                        Some(head) => Ok(Some(head)),
                        None => {
                            let head = match parse_head::<16>(rest) {
                                Err(Some(httparse::Error::TooManyHeaders)) => {
                                    parse_head::<128>(rest)
                                }
                                other => other,
                            };
                            if let Ok(Some(h)) = &head {
                                // The head ends at its first blank line, so
                                // a later reply starting with these bytes
                                // has exactly this head.
                                let mut bytes =
                                    self.memo.take().map(|(b, _)| b).unwrap_or_default();
                                bytes.clear();
                                bytes.extend_from_slice(&rest[..h.len]);
                                self.memo = Some((bytes, *h));
                            }
                            head
                        }
                    };
                    let Head {
                        len,
                        status,
                        close,
                        length,
                        chunked,
                    } = match head {
                        Ok(Some(h)) => h,
                        Ok(None) => {
                            if rest.len() >= MAX_HEAD_BYTES {
                                return Err(ResponseError::HeadTooLong);
                            }
                            return Ok((used, Progress::NeedMore));
                        }
                        Err(None) => return Err(ResponseError::ContentLength),
                        Err(Some(_)) => return Err(ResponseError::Head),
                    };
                    used += len;
                    self.status = status;
                    self.close = close;
                    let no_body = matches!(req.framing, Framing::Http { head_request: true })
                        || (100..200).contains(&status)
                        || status == 204
                        || status == 304;
                    self.state = if no_body {
                        State::Length(0)
                    } else if chunked {
                        State::ChunkSize
                    } else if let Some(l) = length {
                        State::Length(l)
                    } else {
                        self.close = true;
                        State::UntilClose
                    };
                }
                State::Length(0) => return Ok((used, Progress::Done(self.finish(req, verify)))),
                State::Length(left) => {
                    let take = (rest.len() as u64).min(left) as usize;
                    if take == 0 {
                        return Ok((used, Progress::NeedMore));
                    }
                    self.body(&rest[..take], req, verify);
                    used += take;
                    self.state = State::Length(left - take as u64);
                }
                State::UntilClose => {
                    self.body(rest, req, verify);
                    return Ok((buf.len(), Progress::NeedMore));
                }
                State::ChunkSize => {
                    let Some(line_end) = find_crlf(rest) else {
                        if rest.len() > 1024 {
                            return Err(ResponseError::Chunked);
                        }
                        return Ok((used, Progress::NeedMore));
                    };
                    let line = &rest[..line_end];
                    let hex_end = line
                        .iter()
                        .position(|b| !b.is_ascii_hexdigit())
                        .unwrap_or(line.len());
                    if hex_end == 0 || hex_end > 15 {
                        return Err(ResponseError::Chunked);
                    }
                    let mut size = 0u64;
                    for b in &line[..hex_end] {
                        size = size * 16 + (*b as char).to_digit(16).unwrap_or(0) as u64;
                    }
                    used += line_end + 2;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    let take = (rest.len() as u64).min(left) as usize;
                    if take == 0 {
                        return Ok((used, Progress::NeedMore));
                    }
                    self.body(&rest[..take], req, verify);
                    used += take;
                    self.state = if left == take as u64 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData(left - take as u64)
                    };
                }
                State::ChunkDataEnd => {
                    if rest.len() < 2 {
                        return Ok((used, Progress::NeedMore));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ResponseError::Chunked);
                    }
                    used += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailer => {
                    let Some(line_end) = find_crlf(rest) else {
                        if rest.len() > 8192 {
                            return Err(ResponseError::Chunked);
                        }
                        return Ok((used, Progress::NeedMore));
                    };
                    used += line_end + 2;
                    if line_end == 0 {
                        self.state = State::Length(0);
                    }
                }
                State::RawBytes(left) => {
                    let take = (rest.len() as u64).min(left) as usize;
                    used += take;
                    self.state = State::RawBytes(left - take as u64);
                    if left == take as u64 {
                        return Ok((used, Progress::Done(self.finish(req, verify))));
                    }
                    return Ok((used, Progress::NeedMore));
                }
                State::RawDelimiter => {
                    let Framing::Delimiter(delim) = &req.framing else {
                        return Err(ResponseError::NoDelimiter);
                    };
                    // The search restarts a little before where the last one
                    // stopped, so a delimiter split across reads is found.
                    let from = self.scanned.saturating_sub(delim.len());
                    if let Some(pos) = find(&rest[from..], delim) {
                        used += from + pos + delim.len();
                        return Ok((used, Progress::Done(self.finish(req, verify))));
                    }
                    if rest.len() > MAX_DELIMITED_BYTES {
                        return Err(ResponseError::NoDelimiter);
                    }
                    self.scanned = rest.len();
                    // Nothing consumed: the caller keeps the bytes buffered.
                    return Ok((used, Progress::NeedMore));
                }
            }
        }
    }

    /// The peer closed the connection; completes a close-delimited body.
    pub fn eof(&mut self, req: &Prepared, verify: bool) -> Option<Complete> {
        if self.state == State::UntilClose {
            return Some(self.finish(req, verify));
        }
        None
    }

    /// True once any byte of the reply has been parsed past the head.
    pub fn started(&self) -> bool {
        self.state != State::Head
    }

    fn body(&mut self, chunk: &[u8], req: &Prepared, verify: bool) {
        if verify && !self.mismatch {
            let ok = match &req.expect {
                Expect::Anything => true,
                Expect::Echo(body) => {
                    let off = self.body_offset as usize;
                    body.get(off..off + chunk.len()) == Some(chunk)
                }
                Expect::Bytes(n) => {
                    self.body_offset + chunk.len() as u64 <= *n
                        && chunk.iter().enumerate().all(|(i, b)| {
                            *b == crate::bytes_endpoint_byte(self.body_offset + i as u64)
                        })
                }
            };
            self.mismatch = !ok;
        }
        self.body_offset += chunk.len() as u64;
    }

    fn finish(&mut self, req: &Prepared, verify: bool) -> Complete {
        if verify && (200..300).contains(&self.status) {
            let want = match &req.expect {
                Expect::Anything => None,
                Expect::Echo(body) => Some(body.len() as u64),
                Expect::Bytes(n) => Some(*n),
            };
            if want.is_some_and(|w| w != self.body_offset) {
                self.mismatch = true;
            }
        }
        let done = Complete {
            status: self.status,
            close: self.close,
            mismatch: self.mismatch,
        };
        self.state = State::Head;
        done
    }
}

/// What the client needs from a response head.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Bytes of the head, blank line included.
    len: usize,
    status: u16,
    /// HTTP/1.0 without keep-alive, or `Connection: close`.
    close: bool,
    length: Option<u64>,
    chunked: bool,
}

/// Parses a response head with room for `N` headers: `Ok(None)` until it is
/// complete; `Err(None)` for a bad or conflicting Content-Length.
fn parse_head<const N: usize>(buf: &[u8]) -> Result<Option<Head>, Option<httparse::Error>> {
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Some(e)),
    };
    let mut head = Head {
        len,
        status: resp.code.unwrap_or(0),
        close: resp.version == Some(0),
        length: None,
        chunked: false,
    };
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(None)?;
            if head.length.is_some_and(|l| l != v) {
                return Err(None);
            }
            head.length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = h.value.eq_ignore_ascii_case(b"chunked")
                || h.value.to_ascii_lowercase().ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                head.close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                head.close = false;
            }
        }
    }
    Ok(Some(head))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
