//! Request heads: parsing with `httparse` and validating how the body is
//! framed. This is where request smuggling is refused: `Content-Length`
//! together with `Transfer-Encoding`, duplicate or malformed lengths, and any
//! transfer coding but a lone `chunked` all end the connection with 400.
//! Routing and bodies live elsewhere.

use std::mem::MaybeUninit;

use crate::{Limits, ProtocolError};

/// Header slots kept on the stack; a `max_headers` above this uses the heap.
const STACK_HEADERS: usize = 100;

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body.
    None,
    /// `Content-Length`, already checked against `max_body_bytes`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A complete, validated request head, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    /// HTTP/1.0 rather than HTTP/1.1.
    pub(crate) http10: bool,
    pub(crate) body: BodyFraming,
    /// Whether the client wants the connection kept open afterwards.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub(crate) expect_continue: bool,
    /// The `Authorization` value; `Some(b"")`, which no token matches, when
    /// the field is repeated.
    pub(crate) authorization: Option<&'a [u8]>,
}

/// Parses a request head from the start of `buf`: the head and its length in
/// bytes, `Ok(None)` if more bytes are needed, or why it is refused. The
/// verdict does not depend on how `buf` was split across reads: only the
/// first `max_head_bytes` are ever parsed.
pub(crate) fn parse<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Head<'a>, usize)>, ProtocolError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'a>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = match stack.get_mut(..limits.max_headers) {
        Some(slots) => slots,
        None => {
            heap.resize_with(limits.max_headers, MaybeUninit::uninit);
            heap.as_mut_slice()
        }
    };
    let window = buf.get(..limits.max_head_bytes).unwrap_or(buf);
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes => {
            return Err(ProtocolError::TooLargeHead);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::TooManyHeaders),
        Err(httparse::Error::Version) => return later_minor_version(buf, window, limits),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(ProtocolError::BadHeader);
        }
        // A bad line ending is in the headers once the request line is done.
        Err(httparse::Error::NewLine) if req.version.is_some() => {
            return Err(ProtocolError::BadHeader);
        }
        Err(_) => return Err(ProtocolError::BadRequestLine),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(ProtocolError::BadRequestLine);
    };
    let http10 = version == 0;

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked_codings = 0usize;
    let mut other_codings = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    let mut host: Option<&[u8]> = None;
    let mut authorization: Option<&[u8]> = None;
    for header in req.headers.iter() {
        let name = header.name;
        // Trimmed only for the few fields looked at: most are skipped.
        let value = || header.value.trim_ascii();
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() || value().contains(&b',') {
                return Err(ProtocolError::DuplicateContentLength);
            }
            content_length = Some(parse_decimal(value()).ok_or(ProtocolError::BadContentLength)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            for coding in value().split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked_codings += 1;
                } else {
                    other_codings = true;
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value().split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue |= value().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err(ProtocolError::DuplicateHost);
            }
            host = Some(value());
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(if authorization.is_some() {
                b""
            } else {
                value()
            });
        }
    }
    check_target_and_host(method, target, host, http10)?;

    let body = match (content_length, transfer_encoding) {
        (Some(_), true) => return Err(ProtocolError::BothLengthAndChunked),
        // HTTP/1.0 has no transfer codings, so a 1.0 peer and this server
        // could disagree on where the body ends: refused.
        (None, true) if http10 || other_codings || chunked_codings != 1 => {
            return Err(ProtocolError::UnknownTransferCoding);
        }
        (None, true) => BodyFraming::Chunked,
        (Some(n), false) if n > limits.max_body_bytes as u64 => {
            return Err(ProtocolError::BodyTooLarge);
        }
        (Some(0) | None, false) => BodyFraming::None,
        (Some(n), false) => BodyFraming::Length(n),
    };
    let head = Head {
        method,
        target,
        http10,
        body,
        keep_alive: !close && (!http10 || keep_alive),
        expect_continue: expect_continue && !http10,
        authorization,
    };
    Ok(Some((head, len)))
}

/// RFC 9112 §3.2: the request-target is in one of the four forms, in one
/// its method takes, and the `Host` is valid: present (once, which the
/// caller checked) on HTTP/1.1, `uri-host [":" port]` or empty, and, for
/// an absolute-form target, naming the same authority (compared without
/// case and default port).
fn check_target_and_host(
    method: &str,
    target: &str,
    host: Option<&[u8]>,
    http10: bool,
) -> Result<(), ProtocolError> {
    let host = match host {
        Some(h) if !valid_authority(h) => return Err(ProtocolError::BadHost),
        Some(h) => Some(h),
        None if http10 => None,
        None => return Err(ProtocolError::MissingHost),
    };
    let t = target.as_bytes();
    if method == "CONNECT" {
        // authority-form: uri-host ":" port, the port required.
        let has_port = t
            .rsplit(|&b| b == b':')
            .next()
            .is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
        return match valid_authority(t) && has_port && t.contains(&b':') {
            true => Ok(()),
            false => Err(ProtocolError::BadTarget),
        };
    }
    if t.first() == Some(&b'/') {
        return Ok(());
    }
    if t == b"*" {
        return match method {
            "OPTIONS" => Ok(()),
            _ => Err(ProtocolError::BadTarget),
        };
    }
    // absolute-form, of the schemes this server answers.
    let Some((scheme, authority)) = ["http", "https"].iter().find_map(|scheme| {
        let rest = t.get(..scheme.len() + 3)?;
        let prefix = [scheme.as_bytes(), b"://"].concat();
        rest.eq_ignore_ascii_case(&prefix).then(|| {
            let after = &t[prefix.len()..];
            let end = after
                .iter()
                .position(|b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(after.len());
            (*scheme, &after[..end])
        })
    }) else {
        return Err(ProtocolError::BadTarget);
    };
    // userinfo is refused (RFC 9110 §4.2.4), and a URI has a host.
    if authority.is_empty() || !valid_authority(authority) {
        return Err(ProtocolError::BadTarget);
    }
    let default_port = if scheme == "http" { ":80" } else { ":443" };
    let normal = |a: &[u8]| -> Vec<u8> {
        let a = a.strip_suffix(default_port.as_bytes()).unwrap_or(a);
        a.to_ascii_lowercase()
    };
    match host {
        Some(h) if normal(h) != normal(authority) => Err(ProtocolError::BadHost),
        _ => Ok(()),
    }
}

/// `uri-host [":" port]` (RFC 3986 §3.2.2, §3.2.3), or empty: an
/// IP-literal in brackets (IPv6), or a reg-name (which covers IPv4) of
/// unreserved characters, percent-encodings and sub-delims.
fn valid_authority(v: &[u8]) -> bool {
    let (host, port) = if let Some(inner) = v.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = std::str::from_utf8(&inner[..close]).unwrap_or("");
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        (&[][..], &inner[close + 1..])
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(colon) => (&v[..colon], &v[colon..]),
            None => (v, &[][..]),
        }
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = host.get(i + 1..i + 3).unwrap_or_default();
                if hex.len() != 2 || !hex.iter().all(u8::is_ascii_hexdigit) {
                    return false;
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    port_ok
}

/// A non-empty run of ASCII digits that fits in a `u64`.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// RFC 9110 §2.5: a request in a later HTTP/1.x than 1.1 is processed as
/// HTTP/1.1. httparse knows only 1.0 and 1.1, so such a head is parsed again
/// from a copy with the minor digit rewritten; its method and target are
/// then taken from `buf` at the same offsets (the bytes there are equal).
/// Any other version is refused as [`version_error`] says.
fn later_minor_version<'a>(
    buf: &'a [u8],
    window: &[u8],
    limits: &Limits,
) -> Result<Option<(Head<'a>, usize)>, ProtocolError> {
    let Some(at) = later_minor_at(window) else {
        return Err(version_error(window));
    };
    let mut copy = window.to_vec();
    if let Some(minor) = copy.get_mut(at) {
        *minor = b'1';
    }
    let Some((head, len)) = parse(&copy, limits)? else {
        return match buf.len() > limits.max_head_bytes {
            true => Err(ProtocolError::TooLargeHead),
            false => Ok(None),
        };
    };
    let base = copy.as_ptr() as usize;
    let rebase_bytes = |s: &[u8]| -> Option<&'a [u8]> {
        if s.is_empty() {
            // A repeated `Authorization` is a static empty slice.
            return Some(&[]);
        }
        let start = (s.as_ptr() as usize).checked_sub(base)?;
        buf.get(start..start.checked_add(s.len())?)
    };
    let rebase = |s: &str| std::str::from_utf8(rebase_bytes(s.as_bytes())?).ok();
    let authorization = match head.authorization {
        None => None,
        Some(value) => Some(rebase_bytes(value).ok_or(ProtocolError::BadHeader)?),
    };
    match (rebase(head.method), rebase(head.target)) {
        (Some(method), Some(target)) => Ok(Some((
            Head {
                method,
                target,
                authorization,
                ..head
            },
            len,
        ))),
        _ => Err(ProtocolError::BadRequestLine),
    }
}

/// Where the minor digit of an `HTTP/1.2` to `HTTP/1.9` request line is in
/// `window`, if that is its version; the line may be unfinished. Empty lines
/// before it are skipped, as httparse skips them.
fn later_minor_at(window: &[u8]) -> Option<usize> {
    let start = window.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = window.get(start..)?;
    let first = line.iter().position(|&b| b == b' ')?;
    let second = first + 1 + line.get(first + 1..)?.iter().position(|&b| b == b' ')?;
    match line.get(second + 1..)? {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            b'2'..=b'9',
            rest @ ..,
        ] if matches!(rest.first(), None | Some(b'\r' | b'\n')) => Some(start + second + 1 + 7),
        _ => None,
    }
}

/// `httparse` reports any bad version the same way; one that starts like
/// `HTTP/<digit>` is a version this server does not speak (505), anything
/// else a malformed request line (400). `httparse` fails at the first wrong
/// byte, so only the prefix up to it may decide, or the verdict would depend
/// on how the bytes were split.
fn version_error(window: &[u8]) -> ProtocolError {
    let line = window
        .split(|&b| b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())
        .unwrap_or_default();
    // The target cannot contain a space, so the version follows the second.
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', digit, ..] if digit.is_ascii_digit() => {
            ProtocolError::BadVersion
        }
        _ => ProtocolError::BadRequestLine,
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
