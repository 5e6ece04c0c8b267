//! Reading the output back: responses parsed strictly, the checks every
//! run ends with, and an independent reference chunked decoder (for chunked
//! responses and as the oracle of `chunked_body`).

use std::borrow::Cow;

use super::driver::Outcome;
use crate::Close;

/// Statuses that only ever refuse a request as too big, too slow or in an
/// unsupported version: each must say `Connection: close` and be the last
/// response. (A 400 may also answer a bad parameter in a well-formed
/// message, on a connection that stays open; a 400 for a protocol error says
/// `Connection: close`, and the close rule covers it.)
const REFUSAL_STATUSES: [u16; 4] = [408, 413, 431, 505];

/// One response parsed from the output stream. A body with a length is
/// borrowed from the stream, not copied: `/bytes/N` answers run to 16 MiB.
#[derive(Debug)]
pub(super) struct Response<'a> {
    pub(super) status: u16,
    pub(super) close: bool,
    pub(super) content_length: Option<u64>,
    pub(super) allow: bool,
    pub(super) body: Cow<'a, [u8]>,
}

/// The responses in an output stream, and whether it ended mid-response.
#[derive(Debug, Default)]
pub(super) struct ResponseStream<'a> {
    pub(super) responses: Vec<Response<'a>>,
    /// Bytes at the end that do not form a complete response.
    pub(super) truncated: bool,
}

/// Whether a response was to a HEAD request (and so has no body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadKnowledge {
    Yes,
    No,
    /// The harness does not know the request; guess from what follows.
    Maybe,
}

impl<'a> ResponseStream<'a> {
    /// Parses `out` strictly: every response must be HTTP/1.1 with exactly
    /// one valid length, and nothing may follow the last one unless
    /// `truncation_allowed`. `head(i)` says whether response `i` answers HEAD.
    pub(super) fn parse(
        out: &'a [u8],
        head: impl Fn(usize) -> HeadKnowledge,
        truncation_allowed: bool,
    ) -> ResponseStream<'a> {
        match Self::try_parse(out, head) {
            Ok(stream) => stream,
            Err((stream, why)) => {
                assert!(
                    truncation_allowed,
                    "response #{} does not parse back: {why}\noutput: {:?}",
                    stream.responses.len(),
                    show(out)
                );
                ResponseStream {
                    truncated: true,
                    ..stream
                }
            }
        }
    }

    /// Parses as much as parses, for checks made before the run has ended.
    pub(super) fn parse_lenient(out: &'a [u8]) -> ResponseStream<'a> {
        Self::try_parse(out, |_| HeadKnowledge::Maybe).unwrap_or_else(|(s, _)| s)
    }

    fn try_parse(
        out: &'a [u8],
        head: impl Fn(usize) -> HeadKnowledge,
    ) -> Result<ResponseStream<'a>, (ResponseStream<'a>, String)> {
        let mut stream = ResponseStream::default();
        let mut pos = 0;
        while pos < out.len() {
            match parse_one(&out[pos..], head(stream.responses.len())) {
                Ok((response, used)) => {
                    pos += used;
                    // Interim responses do not answer a request.
                    if response.status >= 200 {
                        stream.responses.push(response);
                    }
                }
                Err(why) => return Err((stream, why)),
            }
        }
        Ok(stream)
    }
}

fn parse_one(bytes: &[u8], head: HeadKnowledge) -> Result<(Response<'_>, usize), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete head".into()),
        Err(e) => return Err(format!("invalid head: {e}")),
    };
    if parsed.version != Some(1) {
        return Err(format!("version HTTP/1.{:?}, not 1.1", parsed.version));
    }
    let status = parsed.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    let mut allow = false;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err("two Content-Length headers".into());
            }
            let text = std::str::from_utf8(h.value).map_err(|_| "Content-Length not text")?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("Content-Length {text:?}"));
            }
            content_length = Some(text.parse::<u64>().map_err(|e| e.to_string())?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !h.value.eq_ignore_ascii_case(b"chunked") {
                return Err("Transfer-Encoding other than chunked".into());
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("allow") {
            allow = true;
        }
    }
    if chunked && content_length.is_some() {
        return Err("both Content-Length and chunked".into());
    }
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let rest = &bytes[head_len..];
    let (body, body_len) = if bodiless {
        (Cow::Borrowed(&[][..]), 0)
    } else if chunked {
        match reference_chunked(rest, usize::MAX) {
            Chunked::Complete { body, consumed } => (Cow::Owned(body), consumed),
            Chunked::Incomplete => return Err("chunked body cut short".into()),
            Chunked::Invalid | Chunked::Ambiguous | Chunked::TooLarge => {
                return Err("invalid chunked body".into());
            }
        }
    } else {
        let Some(n) = content_length else {
            return Err(format!("status {status} without a length"));
        };
        let n = usize::try_from(n).map_err(|_| "huge Content-Length")?;
        let is_head = match head {
            HeadKnowledge::Yes => true,
            HeadKnowledge::No => false,
            // A bodiless reading is only plausible if the next response starts
            // right away and the full-length reading does not line up.
            HeadKnowledge::Maybe => {
                n > 0
                    && (rest.is_empty() || rest.starts_with(b"HTTP/"))
                    && !(rest.len() == n || rest.get(n..).is_some_and(|r| r.starts_with(b"HTTP/")))
            }
        };
        if is_head {
            (Cow::Borrowed(&[][..]), 0)
        } else if rest.len() < n {
            return Err(format!(
                "body cut short: Content-Length {n}, {} bytes",
                rest.len()
            ));
        } else {
            (Cow::Borrowed(&rest[..n]), n)
        }
    };
    Ok((
        Response {
            status,
            close,
            content_length,
            allow,
            body,
        },
        head_len + body_len,
    ))
}

/// The checks every run ends with, whatever drove it: the output parses
/// back, and a refusal or `Connection: close` is the last thing sent.
pub(super) fn check_common(
    outcome: &Outcome,
    head: impl Fn(usize) -> HeadKnowledge,
) -> ResponseStream<'_> {
    assert!(
        outcome.closed.is_some(),
        "settle returns only once the connection closes"
    );
    // An aborted connection discards what it had not written; a graceful one
    // has written everything.
    let stream = ResponseStream::parse(&outcome.out, head, outcome.closed == Some(Close::Abort));
    for (i, r) in stream.responses.iter().enumerate() {
        let last = i + 1 == stream.responses.len();
        if REFUSAL_STATUSES.contains(&r.status) {
            assert!(
                r.close,
                "response #{i} ({}) without Connection: close",
                r.status
            );
        }
        if r.close {
            assert!(
                last,
                "response #{i} ({}, close: {}) is followed by {} more",
                r.status,
                r.close,
                stream.responses.len() - i - 1
            );
            assert!(
                !stream.truncated,
                "bytes follow response #{i} ({}, close: {})",
                r.status, r.close
            );
        }
    }
    stream
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Chunked {
    Complete {
        body: Vec<u8>,
        consumed: usize,
    },
    Incomplete,
    /// The declared sizes add up past the limit.
    TooLarge,
    /// Certainly malformed: a server must refuse it.
    Invalid,
    /// Something servers legitimately differ on (extensions, trailers, bare
    /// LF, whitespace, 16-digit sizes); the model makes no prediction.
    Ambiguous,
}

/// The longest size line, CRLF included, the reference decoder predicts an
/// outcome for: servers bound these lines as they choose (this crate's
/// decoder at 1 KiB), so a longer one is ambiguous.
const REFERENCE_MAX_SIZE_LINE: usize = 256;

/// Decodes a chunked body strictly (RFC 9112 §7.1), independently of the
/// crate's decoder, flagging anything servers may legitimately treat
/// differently as ambiguous. Sizes are checked against `limit` as each
/// size line is read, before its data.
pub(super) fn reference_chunked(data: &[u8], limit: usize) -> Chunked {
    let safe_ext = |b: &u8| b.is_ascii_alphanumeric() || b"=-_.".contains(b);
    let mut pos = 0;
    let mut body = Vec::new();
    let mut total: u64 = 0;
    loop {
        let rest = &data[pos..];
        let Some(line_end) = find_crlf(rest) else {
            // An unfinished size line is certainly incomplete only while it
            // is a plain number.
            let digits = rest.strip_suffix(b"\r").unwrap_or(rest);
            return match rest.first() {
                None => Chunked::Incomplete,
                Some(b) if !b.is_ascii_hexdigit() => Chunked::Invalid,
                Some(_) if digits.len() <= 15 && digits.iter().all(u8::is_ascii_hexdigit) => {
                    Chunked::Incomplete
                }
                Some(_) => Chunked::Ambiguous,
            };
        };
        let line = &rest[..line_end];
        if line.contains(&b'\n') || line.contains(&b'\r') {
            return Chunked::Ambiguous;
        }
        // How long a size line (extensions included) a server accepts is
        // its own bound: past a short one, no prediction.
        if line.len() + 2 > REFERENCE_MAX_SIZE_LINE {
            return Chunked::Ambiguous;
        }
        let (size_text, ext) = match line.iter().position(|&b| b == b';') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if size_text.is_empty() || !size_text[0].is_ascii_hexdigit() {
            return Chunked::Invalid;
        }
        if !size_text.iter().all(u8::is_ascii_hexdigit) {
            let spaced = size_text.iter().any(|b| *b == b' ' || *b == b'\t');
            return if spaced {
                Chunked::Ambiguous
            } else {
                Chunked::Invalid
            };
        }
        match size_text.len() {
            ..=15 => {}
            16 => return Chunked::Ambiguous,
            _ => return Chunked::Invalid,
        }
        if let Some(ext) = ext
            && (ext.is_empty() || !ext.iter().all(safe_ext))
        {
            return Chunked::Ambiguous;
        }
        let size = size_text.iter().fold(0u64, |n, &b| {
            n * 16 + u64::from((b as char).to_digit(16).unwrap_or(0))
        });
        total += size;
        if total > limit as u64 {
            return Chunked::TooLarge;
        }
        pos += line_end + 2;
        if size == 0 {
            // Trailer section: only a bare empty line is unambiguous.
            return match &data[pos..] {
                [b'\r', b'\n', ..] => Chunked::Complete {
                    body,
                    consumed: pos + 2,
                },
                [] | [b'\r'] => Chunked::Incomplete,
                _ => Chunked::Ambiguous,
            };
        }
        // `size <= total <= limit`, a `usize`.
        let end = pos + size as usize;
        if data.len() < end {
            return Chunked::Incomplete;
        }
        body.extend_from_slice(&data[pos..end]);
        pos = end;
        match &data[pos..] {
            [b'\r', b'\n', ..] => pos += 2,
            [] | [b'\r'] => return Chunked::Incomplete,
            _ => return Chunked::Invalid,
        }
    }
}

/// Bytes for a failure message (`{:?}`): text, cut to a readable length.
pub(super) fn show(bytes: &[u8]) -> Shown {
    const MAX: usize = 600;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    Shown(if bytes.len() > MAX {
        format!("{text:?}... ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    })
}

pub(super) struct Shown(String);

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}
