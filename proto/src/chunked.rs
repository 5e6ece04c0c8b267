//! `ChunkedDecoder`: a sans-IO decoder for the chunked transfer coding
//! (RFC 9112 §7.1), built on `httparse::parse_chunk_size`.
//!
//! It owns chunk framing only: size lines (extensions tolerated, but each
//! line is bounded, and so are the extensions of a whole body), the CRLF
//! after each chunk's data, and the trailer
//! section (tolerated, bounded, discarded). It does not buffer: bytes it
//! cannot use yet (an unfinished line) are left unconsumed for the caller to
//! present again with more bytes appended. Because every line is bounded,
//! what the caller must keep is bounded too.

use crate::ProtocolError;

/// The longest chunk-size line accepted, extensions and CRLF included.
pub(crate) const MAX_CHUNK_LINE: usize = 1024;

/// The most chunk-extension bytes (everything on a size line between its hex
/// digits and its CRLF) one body may carry, as hyper and Node.js bound them
/// (16 KiB). Without it a client could send 1-byte chunks each with a
/// 1,000-byte extension: a 1 MiB body would take a gigabyte on the wire and
/// as long as the client likes to trickle it.
pub(crate) const MAX_CHUNK_EXTENSION_BYTES: usize = 16 * 1024;

/// The largest trailer section accepted, final CRLF included.
pub(crate) const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// What one [`ChunkedDecoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes of `input` used; the rest must be passed again, with more after it.
    pub(crate) consumed: usize,
    /// The last chunk and the trailer section have been read: the body ended
    /// after `consumed` bytes, and what follows belongs to the next request.
    pub(crate) done: bool,
}

/// Where the decoder is within the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes still to come.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes one chunked body, across as many calls as the bytes need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Body bytes produced so far, checked against the limit before any
    /// chunk's data is accepted.
    decoded: u64,
    /// Trailer bytes consumed so far, checked against [`MAX_TRAILER_BYTES`].
    trailer_bytes: usize,
    /// Extension bytes of the size lines so far, checked against
    /// [`MAX_CHUNK_EXTENSION_BYTES`].
    extension_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub(crate) fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            decoded: 0,
            trailer_bytes: 0,
            extension_bytes: 0,
        }
    }

    /// Body bytes decoded so far.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Decodes as much of `input` as possible, appending chunk data to
    /// `body`. A chunk whose size would take the body past `limit` bytes is
    /// refused with [`ProtocolError::BodyTooLarge`] before any of its data is
    /// accepted. The result is the same however the body is split across
    /// calls. Once done, further calls consume nothing.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Progress, ProtocolError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            let used = match self.state {
                State::Done => {
                    return Ok(Progress {
                        consumed: pos,
                        done: true,
                    });
                }
                State::Size => self.size_line(rest, limit)?,
                State::Data(remaining) => {
                    let take = rest
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    body.extend_from_slice(rest.get(..take).unwrap_or_default());
                    // `take <= remaining`, so this cannot underflow.
                    let left = remaining - take as u64;
                    if left == 0 {
                        self.state = State::DataEnd;
                    } else {
                        self.state = State::Data(left);
                    }
                    (take > 0).then_some(take)
                }
                State::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        self.state = State::Size;
                        Some(2)
                    }
                    [] | [b'\r'] => None,
                    _ => return Err(ProtocolError::BadChunk),
                },
                State::Trailers => self.trailer_line(rest)?,
            };
            match used {
                Some(n) => pos += n,
                None => {
                    return Ok(Progress {
                        consumed: pos,
                        done: false,
                    });
                }
            }
        }
    }

    /// Reads one chunk-size line; `None` means it is not complete yet.
    fn size_line(&mut self, rest: &[u8], limit: usize) -> Result<Option<usize>, ProtocolError> {
        // `parse_chunk_size` accepts a line with no digits at all as size 0;
        // RFC 9112 requires at least one hex digit.
        match rest.first() {
            None => return Ok(None),
            Some(b) if !b.is_ascii_hexdigit() => return Err(ProtocolError::BadChunk),
            Some(_) => {}
        }
        // Parse only a bounded window, so the verdict on an over-long line is
        // the same whether it arrives whole or a byte at a time.
        let window = rest.get(..MAX_CHUNK_LINE).unwrap_or(rest);
        match httparse::parse_chunk_size(window) {
            Err(_) => Err(ProtocolError::BadChunk),
            Ok(httparse::Status::Partial) if rest.len() > MAX_CHUNK_LINE => {
                Err(ProtocolError::BadChunk)
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Ok(httparse::Status::Complete((used, size))) => {
                let digits = window.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                // `used` covers the digits, the extensions and the CRLF.
                self.extension_bytes += used.saturating_sub(digits + 2);
                if self.extension_bytes > MAX_CHUNK_EXTENSION_BYTES {
                    return Err(ProtocolError::BadChunk);
                }
                let total = self
                    .decoded
                    .checked_add(size)
                    .ok_or(ProtocolError::BodyTooLarge)?;
                if total > limit as u64 {
                    return Err(ProtocolError::BodyTooLarge);
                }
                self.decoded = total;
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                };
                Ok(Some(used))
            }
        }
    }

    /// Reads one trailer line (or the empty line that ends the body); `None`
    /// means it is not complete yet. Trailer fields are checked for shape and
    /// discarded.
    fn trailer_line(&mut self, rest: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let budget = MAX_TRAILER_BYTES.saturating_sub(self.trailer_bytes);
        let window = rest.get(..budget).unwrap_or(rest);
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            return if rest.len() > budget {
                Err(ProtocolError::BadChunk)
            } else {
                Ok(None)
            };
        };
        let line = window.get(..lf).unwrap_or_default();
        let Some((b'\r', field)) = line.split_last() else {
            // A bare LF: refused, since peers disagree on what it means.
            return Err(ProtocolError::BadChunk);
        };
        let used = lf + 1;
        self.trailer_bytes += used;
        if field.is_empty() {
            self.state = State::Done;
            return Ok(Some(used));
        }
        let well_formed = !field.contains(&b'\r')
            && field
                .iter()
                .position(|&b| b == b':')
                .is_some_and(|colon| colon > 0);
        // CANARY: a deliberately planted bug, compiled only with `--features
        // canary`, so the fuzzing smoke test (fuzz/smoke.sh) can prove that
        // libFuzzer, searching from the ordinary corpus, still reaches deep
        // into request handling: a panic on a `Content-Length` trailer field
        // after a chunked body (a field RFC 9110 forbids in trailers, the
        // stuff of request smuggling).
        #[cfg(feature = "canary")]
        assert!(
            !(well_formed
                && field
                    .split(|&b| b == b':')
                    .next()
                    .is_some_and(|name| name.eq_ignore_ascii_case(b"content-length"))),
            "canary: Content-Length trailer"
        );
        if well_formed {
            Ok(Some(used))
        } else {
            Err(ProtocolError::BadChunk)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` in one call, then again a byte at a time, and checks
    /// both give `expected`: the body and the bytes consumed, or the error.
    fn check(input: &[u8], limit: usize, expected: Result<(&[u8], usize), ProtocolError>) {
        let mut body = Vec::new();
        let whole = ChunkedDecoder::new()
            .decode(input, &mut body, limit)
            .and_then(|p| {
                if p.done {
                    Ok((body.as_slice(), p.consumed))
                } else {
                    Err(ProtocolError::BadChunk)
                }
            });
        match (&whole, &expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "whole: {input:?}"),
            _ => assert_eq!(whole.err(), expected.err(), "whole: {input:?}"),
        }

        // Byte at a time, keeping unconsumed bytes as a caller would.
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut pending = Vec::new();
        let mut consumed_total = 0;
        let mut outcome = Err(ProtocolError::BadChunk);
        for &b in input {
            pending.push(b);
            match decoder.decode(&pending, &mut body, limit) {
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
                Ok(p) => {
                    assert!(p.consumed <= pending.len());
                    consumed_total += p.consumed;
                    pending.drain(..p.consumed);
                    assert!(pending.len() <= MAX_TRAILER_BYTES + 1);
                    if p.done {
                        outcome = Ok((body.as_slice(), consumed_total));
                        break;
                    }
                }
            }
        }
        match (&outcome, &expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "trickled: {input:?}"),
            _ => assert_eq!(outcome.err(), expected.err(), "trickled: {input:?}"),
        }
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let ok = |body: &'static [u8], n: usize| Ok((body, n));
        check(b"0\r\n\r\n", 10, ok(b"", 5));
        check(b"5\r\nhello\r\n0\r\n\r\n", 10, ok(b"hello", 15));
        check(b"5\r\nhello\r\n0\r\n\r\nGET", 10, ok(b"hello", 15));
        check(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 10, ok(b"abcde", 20));
        check(b"A\r\n0123456789\r\n0\r\n\r\n", 10, ok(b"0123456789", 20));
        check(b"a\r\n0123456789\r\n0\r\n\r\n", 10, ok(b"0123456789", 20));
        check(b"3;name=value\r\nabc\r\n0\r\n\r\n", 10, ok(b"abc", 24));
        check(b"3 ;x\r\nabc\r\n0\r\n\r\n", 10, ok(b"abc", 16));
        check(
            b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
            10,
            ok(b"abc", 35),
        );
    }

    #[test]
    fn refuses_malformed_chunks() {
        let bad = Err(ProtocolError::BadChunk);
        check(b"\r\n\r\n", 10, bad);
        check(b" 5\r\nhello\r\n0\r\n\r\n", 10, bad);
        check(b"x\r\n", 10, bad);
        check(b"-1\r\n", 10, bad);
        check(b"0x5\r\nhello\r\n0\r\n\r\n", 10, bad);
        check(b"5\r\nhelloXY0\r\n\r\n", 10, bad);
        check(b"5\r\nhello\n0\r\n\r\n", 10, bad);
        check(b"5\rhello", 10, bad);
        check(b"0\r\nno colon\r\n\r\n", 10, bad);
        check(b"0\r\n: empty name\r\n\r\n", 10, bad);
        check(b"0\r\nX: bare lf\n\r\n", 10, bad);
        check(b"0\r\n\n", 10, bad);
        // Seventeen hex digits do not fit in 64 bits.
        check(b"10000000000000000\r\n", usize::MAX, bad);
    }

    #[test]
    fn limits_body_at_exactly_the_bound() {
        check(b"5\r\nhello\r\n0\r\n\r\n", 5, Ok((b"hello", 15)));
        check(
            b"5\r\nhello\r\n0\r\n\r\n",
            4,
            Err(ProtocolError::BodyTooLarge),
        );
        check(
            b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
            5,
            Err(ProtocolError::BodyTooLarge),
        );
        check(
            b"fffffffffffffff\r\n",
            1 << 40,
            Err(ProtocolError::BodyTooLarge),
        );
    }

    #[test]
    fn bounds_size_lines_and_trailers() {
        let line = |len: usize| {
            let mut v = b"1;".to_vec();
            v.resize(len - 2, b'x');
            v.extend_from_slice(b"\r\n");
            v.extend_from_slice(b"a\r\n0\r\n\r\n");
            v
        };
        let at = line(MAX_CHUNK_LINE);
        check(&at, 10, Ok((b"a", at.len())));
        check(&line(MAX_CHUNK_LINE + 1), 10, Err(ProtocolError::BadChunk));

        let trailers = |len: usize| {
            // "0\r\n" + "X:" + padding + "\r\n" + "\r\n"; the trailer section
            // is everything after "0\r\n".
            let mut v = b"0\r\nX:".to_vec();
            v.resize(3 + len - 4, b'y');
            v.extend_from_slice(b"\r\n\r\n");
            v
        };
        let at = trailers(MAX_TRAILER_BYTES);
        check(&at, 10, Ok((b"", at.len())));
        check(
            &trailers(MAX_TRAILER_BYTES + 1),
            10,
            Err(ProtocolError::BadChunk),
        );
    }

    /// One-byte chunks, each with an extension filling its line: the body
    /// is refused once its extensions pass 16 KiB, long before the body
    /// limit, whether the bytes come at once or trickle in.
    #[test]
    fn bounds_the_extensions_of_a_whole_body() {
        let body = |chunks: usize| {
            let mut line = b"1;".to_vec();
            line.resize(MAX_CHUNK_LINE - 2, b'x');
            line.extend_from_slice(b"\r\na\r\n");
            let mut v = line.repeat(chunks);
            v.extend_from_slice(b"0\r\n\r\n");
            v
        };
        // Each line carries 1,021 extension bytes: 16 lines fit, 17 do not.
        let per_line = MAX_CHUNK_LINE - 3;
        let fit = MAX_CHUNK_EXTENSION_BYTES / per_line;
        let at = body(fit);
        check(&at, 1 << 20, Ok((&b"a".repeat(fit), at.len())));
        check(&body(fit + 1), 1 << 20, Err(ProtocolError::BadChunk));
        check(&body(1000), 1 << 20, Err(ProtocolError::BadChunk));
    }

    #[test]
    fn done_decoder_consumes_nothing_more() {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let first = decoder.decode(b"0\r\n\r\n", &mut body, 0);
        assert_eq!(
            first,
            Ok(Progress {
                consumed: 5,
                done: true
            })
        );
        assert_eq!(
            decoder.decode(b"1\r\na\r\n", &mut body, 10),
            Ok(Progress {
                consumed: 0,
                done: true
            })
        );
        assert_eq!(decoder.decoded(), 0);
    }
}
