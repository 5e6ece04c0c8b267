//! Response bytes: the fixed responses, precomputed at compile time so the
//! hot path copies (or merely points at) a static slice, and the status line
//! and headers of the few responses whose length is only known at run time.
//!
//! No `Date` header: proto never reads a clock, and RFC 9110 §6.6.1 lets a
//! server without a reliable clock leave it out.

/// The `Connection` header a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnHeader {
    /// None: HTTP/1.1 keep-alive is the default.
    Default,
    /// `Connection: close`: the connection ends after this response.
    Close,
    /// `Connection: keep-alive`: an HTTP/1.0 client asked for it.
    KeepAlive,
}

impl ConnHeader {
    fn line(self) -> &'static [u8] {
        match self {
            ConnHeader::Default => b"",
            ConnHeader::Close => b"Connection: close\r\n",
            ConnHeader::KeepAlive => b"Connection: keep-alive\r\n",
        }
    }
}

/// One fixed response in every form it is sent: with and without its body
/// (HEAD), times the three `Connection` headers.
#[derive(Debug)]
pub(crate) struct Fixed {
    status: u16,
    /// Indexed by `head_only as usize * 3 + conn as usize`.
    forms: [&'static [u8]; 6],
}

impl Fixed {
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn bytes(&self, head_only: bool, conn: ConnHeader) -> &'static [u8] {
        let conn = match conn {
            ConnHeader::Default => 0,
            ConnHeader::Close => 1,
            ConnHeader::KeepAlive => 2,
        };
        let index = usize::from(head_only) * 3 + conn;
        self.forms.get(index).copied().unwrap_or_default()
    }
}

/// Builds a [`Fixed`]; the length literal is checked against the body by a
/// test, since `concat!` cannot count.
macro_rules! fixed {
    ($code:literal, $status:literal, $extra:literal, $ctype:literal, $len:literal, $body:literal) => {
        Fixed {
            status: $code,
            forms: [
                fixed!(@one $status, $extra, $ctype, $len, "", $body),
                fixed!(@one $status, $extra, $ctype, $len, "Connection: close\r\n", $body),
                fixed!(@one $status, $extra, $ctype, $len, "Connection: keep-alive\r\n", $body),
                fixed!(@one $status, $extra, $ctype, $len, "", ""),
                fixed!(@one $status, $extra, $ctype, $len, "Connection: close\r\n", ""),
                fixed!(@one $status, $extra, $ctype, $len, "Connection: keep-alive\r\n", ""),
            ],
        }
    };
    (@one $status:literal, $extra:literal, $ctype:literal, $len:literal, $conn:literal, $body:literal) => {
        concat!(
            "HTTP/1.1 ", $status, "\r\n",
            $extra,
            "Content-Type: ", $ctype, "\r\n",
            "Content-Length: ", $len, "\r\n",
            $conn,
            "\r\n",
            $body
        )
        .as_bytes()
    };
}

pub(crate) const ROOT: Fixed = fixed!(
    200,
    "200 OK",
    "",
    "text/plain",
    "22",
    "hello from floodgate!\n"
);
pub(crate) const HEALTH: Fixed = fixed!(200, "200 OK", "", "text/plain", "3", "ok\n");
pub(crate) const DELAYED: Fixed = fixed!(200, "200 OK", "", "text/plain", "8", "delayed\n");
pub(crate) const PAUSED: Fixed = fixed!(200, "200 OK", "", "text/plain", "14", "accept paused\n");
pub(crate) const BAD_PARAMETER: Fixed = fixed!(
    400,
    "400 Bad Request",
    "",
    "text/plain",
    "18",
    "bad path or query\n"
);
pub(crate) const SERVER_OPTIONS: Fixed = fixed!(
    200,
    "200 OK",
    "Allow: GET, HEAD, POST\r\n",
    "text/plain",
    "0",
    ""
);
pub(crate) const NOT_FOUND: Fixed =
    fixed!(404, "404 Not Found", "", "text/plain", "10", "not found\n");
pub(crate) const NOT_ALLOWED_GET: Fixed = fixed!(
    405,
    "405 Method Not Allowed",
    "Allow: GET, HEAD\r\n",
    "text/plain",
    "19",
    "method not allowed\n"
);
pub(crate) const NOT_ALLOWED_POST: Fixed = fixed!(
    405,
    "405 Method Not Allowed",
    "Allow: POST\r\n",
    "text/plain",
    "19",
    "method not allowed\n"
);

pub(crate) const UNAUTHORIZED: Fixed = fixed!(
    401,
    "401 Unauthorized",
    "WWW-Authenticate: Bearer\r\n",
    "text/plain",
    "13",
    "unauthorized\n"
);

/// Appends a `429 Too Many Requests` with `Retry-After: retry_after_s`.
pub(crate) fn too_many_requests(
    out: &mut Vec<u8>,
    retry_after_s: u64,
    head_only: bool,
    conn: ConnHeader,
) {
    const BODY: &[u8] = b"too many requests\n";
    out.extend_from_slice(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: ");
    push_decimal(out, retry_after_s);
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    push_decimal(out, BODY.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(conn.line());
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(BODY);
    }
}

/// The interim response to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The final response for a refused request or a cut deadline, always
/// followed by close. The body depends on the status alone, so output does
/// not depend on which check fired first.
pub(crate) fn closing(status: u16) -> &'static [u8] {
    let fixed = match status {
        408 => &TIMEOUT,
        413 => &TOO_LARGE,
        431 => &HEAD_TOO_LARGE,
        505 => &BAD_VERSION,
        _ => &BAD_REQUEST,
    };
    fixed.bytes(false, ConnHeader::Close)
}

const BAD_REQUEST: Fixed = fixed!(
    400,
    "400 Bad Request",
    "",
    "text/plain",
    "12",
    "bad request\n"
);
const TIMEOUT: Fixed = fixed!(
    408,
    "408 Request Timeout",
    "",
    "text/plain",
    "16",
    "request timeout\n"
);
const TOO_LARGE: Fixed = fixed!(
    413,
    "413 Content Too Large",
    "",
    "text/plain",
    "18",
    "content too large\n"
);
const HEAD_TOO_LARGE: Fixed = fixed!(
    431,
    "431 Request Header Fields Too Large",
    "",
    "text/plain",
    "32",
    "request header fields too large\n"
);
const BAD_VERSION: Fixed = fixed!(
    505,
    "505 HTTP Version Not Supported",
    "",
    "text/plain",
    "27",
    "HTTP version not supported\n"
);

/// Appends a `200 OK` status line and headers for a body of `len` bytes.
pub(crate) fn ok_head(out: &mut Vec<u8>, content_type: &[u8], len: u64, conn: ConnHeader) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: ");
    out.extend_from_slice(content_type);
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(conn.line());
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One response parsed back from output bytes.
    #[derive(Debug)]
    pub(crate) struct Parsed {
        pub(crate) status: u16,
        /// Header fields, names lower-cased.
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: Vec<u8>,
        /// Bytes of output this response took.
        pub(crate) len: usize,
    }

    impl Parsed {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Parses one response from the front of `bytes`, its body delimited by
    /// Content-Length; `head_only` responses (to HEAD) carry no body.
    pub(crate) fn parse_response(bytes: &[u8], head_only: bool) -> Option<Parsed> {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) = resp.parse(bytes).ok()? else {
            return None;
        };
        let headers: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let status = resp.code?;
        let len: usize = if head_only || status == 100 {
            0
        } else {
            headers
                .iter()
                .find(|(name, _)| name == "content-length")?
                .1
                .parse()
                .ok()?
        };
        let body = bytes.get(head_len..head_len + len)?.to_vec();
        Some(Parsed {
            status,
            headers,
            body,
            len: head_len + len,
        })
    }

    #[test]
    fn fixed_responses_are_well_formed() {
        let all = [
            &ROOT,
            &HEALTH,
            &DELAYED,
            &PAUSED,
            &BAD_PARAMETER,
            &NOT_FOUND,
            &NOT_ALLOWED_GET,
            &NOT_ALLOWED_POST,
            &UNAUTHORIZED,
            &BAD_REQUEST,
            &TIMEOUT,
            &TOO_LARGE,
            &HEAD_TOO_LARGE,
            &BAD_VERSION,
        ];
        for fixed in all {
            let full = fixed.bytes(false, ConnHeader::Default);
            let parsed = parse_response(full, false).expect("parses");
            assert_eq!(parsed.status, fixed.status());
            assert_eq!(parsed.len, full.len(), "Content-Length matches the body");
            let body = parsed.body;
            assert!(!body.is_empty());
            for conn in [
                ConnHeader::Default,
                ConnHeader::Close,
                ConnHeader::KeepAlive,
            ] {
                let with_body = fixed.bytes(false, conn);
                let head = fixed.bytes(true, conn);
                assert_eq!(
                    parse_response(with_body, false).map(|r| r.len),
                    Some(with_body.len())
                );
                assert_eq!(
                    &with_body[..head.len()],
                    head,
                    "HEAD form is the head alone"
                );
                assert_eq!(with_body.len() - head.len(), body.len());
                let parsed = parse_response(head, true).expect("parses");
                let expected = match conn {
                    ConnHeader::Default => None,
                    ConnHeader::Close => Some("close"),
                    ConnHeader::KeepAlive => Some("keep-alive"),
                };
                assert_eq!(parsed.header("connection"), expected);
            }
        }
        for status in [400, 408, 413, 431, 505] {
            assert_eq!(
                parse_response(closing(status), false).map(|r| r.status),
                Some(status)
            );
        }
    }

    #[test]
    fn dynamic_head_carries_the_length() {
        for len in [0, 7, 10, 16 << 20, u64::MAX] {
            let mut out = Vec::new();
            ok_head(
                &mut out,
                b"application/octet-stream",
                len,
                ConnHeader::Close,
            );
            let mut headers = [httparse::EMPTY_HEADER; 4];
            let mut resp = httparse::Response::new(&mut headers);
            assert_eq!(resp.parse(&out), Ok(httparse::Status::Complete(out.len())));
            let cl = resp
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .unwrap();
            assert_eq!(cl.value, len.to_string().as_bytes());
        }
    }
}
