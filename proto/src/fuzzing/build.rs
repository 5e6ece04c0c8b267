//! The model behind `http_sequence`: [`build`] serialises one [`Request`]
//! and predicts what the connection answers it with.

use std::time::Duration;

use super::responses::HeadKnowledge;
use super::sequence::{
    Body, ConnectionHeader, Corruption, HeaderName, Method, Request, Target, Version, bytes_len,
};
use crate::{Event, Limits};

/// What the model expects one request to get.
#[derive(Debug)]
pub(super) struct Expect {
    pub(super) statuses: &'static [u16],
    pub(super) head: HeadKnowledge,
    /// The exact body, where the model knows it.
    pub(super) body: Option<Vec<u8>>,
    /// The Content-Length a HEAD response must announce, where known.
    pub(super) length: Option<u64>,
    pub(super) allow: bool,
    /// Must say `Connection: close` (a refusal, or the request asked to close).
    pub(super) close: bool,
}

/// What may follow the last prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tail {
    /// Still predicting: responses must match the predictions exactly.
    Predicting,
    /// The connection must close after the last prediction.
    Closed,
    /// The model cannot say; later responses need only parse.
    Unknown,
}

/// A request serialised, with the model's prediction for it.
pub(super) struct Built {
    pub(super) bytes: Vec<u8>,
    pub(super) prediction: Prediction,
    pub(super) event: Option<Event>,
}

pub(super) enum Prediction {
    /// A response, then the connection goes on as `then` says.
    Respond {
        expect: Expect,
        then: Tail,
    },
    /// Refused with one of these statuses, then closed.
    Refuse(&'static [u16]),
    Unknown,
}

/// Header names the model must control itself, and so never lets a
/// `Custom` name take.
const RESERVED: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "expect",
    "upgrade",
    "te",
    "trailer",
];

fn token(text: &str, fallback: &str) -> String {
    let t: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))
        .take(40)
        .collect();
    if t.is_empty() || RESERVED.iter().any(|r| t.eq_ignore_ascii_case(r)) {
        format!("X-{fallback}{t}")
    } else {
        t
    }
}

/// The value up to its first byte that is not visible ASCII or a space,
/// trimmed: a value no server can misread. Ending at the first such byte
/// (rather than dropping them all) lets a token the fuzzer writes into the
/// field, from the dictionary or a comparison, become the whole value.
fn clean_value(value: &[u8]) -> Vec<u8> {
    let end = value
        .iter()
        .position(|b| !((0x21..0x7f).contains(b) || *b == b' '))
        .unwrap_or(value.len())
        .min(200);
    value[..end].trim_ascii().to_vec()
}

pub(super) fn build(request: &Request, limits: &Limits) -> Built {
    let corruption = request.corruption;
    // Body corruptions need a request that carries a body.
    let body_corruption = matches!(
        corruption,
        Some(
            Corruption::BodyTooLarge
                | Corruption::LengthLie(_)
                | Corruption::ContentLengthAndChunked
                | Corruption::DuplicateContentLength(_)
                | Corruption::UnknownCoding(_)
                | Corruption::BadChunkSize(_)
                | Corruption::MissingChunkCrlf
        )
    );
    let (method, target) = if body_corruption {
        (Method::Post, &Target::Echo)
    } else {
        (request.method, &request.target)
    };

    let method_text: Vec<u8> = match (corruption, method) {
        (Some(Corruption::BadMethod(b)), _) => vec![b'G', b % 0x20, b'T'],
        (_, Method::Get) => b"GET".to_vec(),
        (_, Method::Head) => b"HEAD".to_vec(),
        (_, Method::Post) => b"POST".to_vec(),
        (_, Method::Put) => b"PUT".to_vec(),
        (_, Method::Delete) => b"DELETE".to_vec(),
        (_, Method::Options) => b"OPTIONS".to_vec(),
        (_, Method::Brew) => b"BREW".to_vec(),
        (_, Method::Lowercase) => b"get".to_vec(),
    };
    let target_text: Vec<u8> = match target {
        Target::Root => b"/".to_vec(),
        Target::Health => b"/health".to_vec(),
        Target::Stats => b"/stats".to_vec(),
        Target::Bytes(n) => format!("/bytes/{}", bytes_len(*n)).into_bytes(),
        Target::Delay(ms) => format!("/delay/{ms}").into_bytes(),
        Target::Echo => b"/echo".to_vec(),
        Target::PauseAccept(ms) => format!("/admin/pause-accept?ms={ms}").into_bytes(),
        Target::Missing(n) => format!("/missing-{n}").into_bytes(),
        Target::Query(n) => format!("/?q={n}").into_bytes(),
        Target::Absolute => b"http://fuzz/".to_vec(),
        Target::Asterisk => b"*".to_vec(),
        Target::Raw(raw) => {
            let mut t: Vec<u8> = raw
                .iter()
                .copied()
                .filter(|b| (0x21..0x7f).contains(b))
                .take(100)
                .collect();
            if t.is_empty() {
                t.push(b'/');
            }
            t
        }
    };
    let version_text: &[u8] = match (corruption, request.version) {
        (Some(Corruption::BadVersion(v)), _) => match v % 4 {
            0 => b"HTTP/0.9",
            1 => b"HTTP/2.0",
            2 => b"HTTP/1",
            _ => b"HTTX/1.1",
        },
        (_, Version::Http11) => b"HTTP/1.1",
        (_, Version::Http10) => b"HTTP/1.0",
    };

    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![(b"Host".to_vec(), b"fuzz".to_vec())];
    for h in &request.headers {
        let name = match &h.name {
            HeaderName::Accept => "Accept".to_string(),
            HeaderName::UserAgent => "User-Agent".to_string(),
            HeaderName::RequestId => "X-Request-Id".to_string(),
            HeaderName::Cookie => "Cookie".to_string(),
            HeaderName::Custom(name) => token(name, "H"),
        };
        headers.push((name.into_bytes(), clean_value(&h.value)));
    }
    match request.connection {
        ConnectionHeader::Absent => {}
        ConnectionHeader::Close => headers.push((b"Connection".to_vec(), b"close".to_vec())),
        ConnectionHeader::KeepAlive => {
            headers.push((b"Connection".to_vec(), b"keep-alive".to_vec()))
        }
    }

    // The body as sent and as the server should decode it. Chunk-size
    // corruptions need chunked framing whatever the body was.
    let chunked = matches!(request.body, Body::Chunked { .. })
        || matches!(
            corruption,
            Some(Corruption::BadChunkSize(_) | Corruption::MissingChunkCrlf)
        );
    let (mut body_bytes, decoded): (Vec<u8>, Vec<u8>) = match &request.body {
        Body::None if body_corruption => (b"hello".to_vec(), b"hello".to_vec()),
        Body::None => (Vec::new(), Vec::new()),
        Body::Length(b) => (b.to_vec(), b.to_vec()),
        Body::Chunked {
            chunks,
            uppercase_hex,
            leading_zeros,
            extension,
        } => {
            let mut wire = Vec::new();
            let mut decoded = Vec::new();
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                let size = if *uppercase_hex {
                    format!("{:X}", chunk.len())
                } else {
                    format!("{:x}", chunk.len())
                };
                if *leading_zeros {
                    wire.extend_from_slice(b"00");
                }
                wire.extend_from_slice(size.as_bytes());
                if *extension {
                    wire.extend_from_slice(b";ext=1");
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                decoded.extend_from_slice(chunk);
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            (wire, decoded)
        }
    };
    if chunked && !matches!(request.body, Body::Chunked { .. }) {
        body_bytes = chunk_once(&decoded);
    }
    let has_body = chunked || !body_bytes.is_empty();
    if chunked {
        headers.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
    } else if has_body || method == Method::Post {
        headers.push((
            b"Content-Length".to_vec(),
            body_bytes.len().to_string().into_bytes(),
        ));
    }

    let mut refuse: Option<&'static [u16]> = None;
    let mut unknown = false;
    match corruption {
        None => {}
        Some(Corruption::OversizedHead(n)) => {
            let pad = limits.max_head_bytes + 64 + usize::from(n % 4096);
            headers.push((b"X-Pad".to_vec(), vec![b'p'; pad]));
            refuse = Some(&[431]);
        }
        Some(Corruption::TooManyHeaders(n)) => {
            let extra = limits.max_headers + 1 + usize::from(n % 8);
            for i in 0..extra {
                headers.push((format!("X-H{i}").into_bytes(), b"v".to_vec()));
            }
            refuse = Some(&[431]);
        }
        Some(Corruption::BodyTooLarge) => {
            set_header(
                &mut headers,
                b"Content-Length",
                (limits.max_body_bytes + 1).to_string().into_bytes(),
            );
            remove_header(&mut headers, b"Transfer-Encoding");
            body_bytes.clear();
            refuse = Some(&[413]);
        }
        Some(Corruption::LengthLie(delta)) => {
            let lie = (body_bytes.len() as i64 + i64::from(delta.max(-100))).max(0);
            set_header(
                &mut headers,
                b"Content-Length",
                lie.to_string().into_bytes(),
            );
            remove_header(&mut headers, b"Transfer-Encoding");
            unknown = true;
        }
        Some(Corruption::ContentLengthAndChunked) => {
            if !chunked {
                // Chunk the body so that either reading is plausible.
                remove_header(&mut headers, b"Content-Length");
                body_bytes = chunk_once(if decoded.is_empty() { b"x" } else { &decoded });
                headers.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
            }
            headers.push((
                b"Content-Length".to_vec(),
                body_bytes.len().to_string().into_bytes(),
            ));
            refuse = Some(&[400]);
        }
        Some(Corruption::DuplicateContentLength(n)) => {
            remove_header(&mut headers, b"Transfer-Encoding");
            if chunked {
                set_header(
                    &mut headers,
                    b"Content-Length",
                    body_bytes.len().to_string().into_bytes(),
                );
            }
            let other = body_bytes.len() + 1 + usize::from(n);
            headers.push((b"Content-Length".to_vec(), other.to_string().into_bytes()));
            refuse = Some(&[400]);
        }
        Some(Corruption::UnknownCoding(n)) => {
            let coding: &[u8] = match n % 4 {
                0 => b"gzip",
                1 => b"gzip, chunked",
                2 => b"x-custom",
                _ => b"chunked, identity",
            };
            remove_header(&mut headers, b"Content-Length");
            set_header(&mut headers, b"Transfer-Encoding", coding.to_vec());
            refuse = Some(&[400, 501]);
        }
        Some(Corruption::BadChunkSize(n)) => {
            let size: &[u8] = match n % 6 {
                0 => b"zz",
                1 => b"-1",
                2 => b"fffffffffffffffffffff",
                3 => b"",
                4 => b"0x5",
                _ => b"+5",
            };
            let mut w = size.to_vec();
            w.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            body_bytes = w;
            refuse = Some(&[400, 413]);
        }
        Some(Corruption::MissingChunkCrlf) => {
            body_bytes = b"5\r\nhelloXX0\r\n\r\n".to_vec();
            refuse = Some(&[400]);
        }
        Some(Corruption::Nul(at)) => {
            let last = headers.len() - 1;
            let v = &mut headers[last].1;
            let at = usize::from(at) % (v.len() + 1);
            v.insert(at, 0);
            // A NUL at the very edge of a value is still inside the line.
            refuse = Some(&[400]);
        }
        Some(Corruption::InvalidUtf8(at)) => {
            let last = headers.len() - 1;
            let v = &mut headers[last].1;
            let at = usize::from(at) % (v.len() + 1);
            v.splice(at..at, [0xff, 0xfe, 0xc3]);
            // obs-text is allowed in field values; servers may accept it.
            unknown = true;
        }
        Some(Corruption::SpaceBeforeColon) => {
            headers[0].0.push(b' ');
            refuse = Some(&[400]);
        }
        Some(Corruption::ObsFold) => {
            headers.push((b"X-Folded".to_vec(), b"a\r\n b".to_vec()));
            refuse = Some(&[400]);
        }
        Some(Corruption::BadVersion(_)) => refuse = Some(&[400, 505]),
        Some(Corruption::BadMethod(_)) => refuse = Some(&[400]),
        Some(Corruption::BareCr) | Some(Corruption::BareLf) => {}
    }

    let eol: &[u8] = match corruption {
        Some(Corruption::BareCr) => b"\r",
        Some(Corruption::BareLf) => b"\n",
        _ => b"\r\n",
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&method_text);
    bytes.push(b' ');
    bytes.extend_from_slice(&target_text);
    bytes.push(b' ');
    bytes.extend_from_slice(version_text);
    bytes.extend_from_slice(eol);
    for (name, value) in &headers {
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(eol);
    }
    bytes.extend_from_slice(eol);
    let head_len = bytes.len();
    bytes.extend_from_slice(&body_bytes);

    if matches!(corruption, Some(Corruption::BareCr)) {
        // Bare CR inside a request line; a strict parser refuses, but some
        // treat the whole thing as an incomplete head until a deadline.
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if matches!(corruption, Some(Corruption::BareLf)) {
        unknown = true;
    }

    // Limits first: a head or header count clearly over the limit is 431 no
    // matter what else is wrong with it. Close to the limit, servers may
    // count the final empty line or not, so the model stays silent.
    let over_head = head_len > limits.max_head_bytes + 4;
    let near_head = head_len + 4 >= limits.max_head_bytes && !over_head;
    let over_count = headers.len() > limits.max_headers;
    if over_head || over_count {
        let other_fault = refuse.is_some_and(|r| r != [431]) || unknown;
        return Built {
            bytes,
            prediction: if other_fault {
                Prediction::Refuse(&[400, 413, 431, 501, 505])
            } else {
                Prediction::Refuse(&[431])
            },
            event: None,
        };
    }
    if near_head {
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if let Some(statuses) = refuse {
        return Built {
            bytes,
            prediction: Prediction::Refuse(statuses),
            event: None,
        };
    }
    if unknown {
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if request.version == Version::Http10 && chunked {
        // Chunked framing in HTTP/1.0 is undefined.
        return Built {
            bytes,
            prediction: Prediction::Unknown,
            event: None,
        };
    }
    if decoded.len() > limits.max_body_bytes {
        // Only where the body is certainly read does the model know the
        // limit is what refuses it; elsewhere routing may answer first.
        let echo = method == Method::Post && matches!(target, Target::Echo);
        return Built {
            bytes,
            prediction: if echo {
                Prediction::Refuse(&[413])
            } else {
                Prediction::Unknown
            },
            event: None,
        };
    }

    // A well-formed request: what does it get, and does the connection go on?
    let then = match (request.version, request.connection) {
        (_, ConnectionHeader::Close) | (Version::Http10, ConnectionHeader::Absent) => Tail::Closed,
        (Version::Http10, ConnectionHeader::KeepAlive) => Tail::Unknown,
        (Version::Http11, _) => Tail::Predicting,
    };
    let is_head = method == Method::Head;
    let head = if is_head {
        HeadKnowledge::Yes
    } else {
        HeadKnowledge::No
    };
    let ok = |body: Option<Vec<u8>>, length: Option<u64>| Expect {
        statuses: &[200],
        head,
        body: if is_head { Some(Vec::new()) } else { body },
        length,
        allow: false,
        close: false,
    };
    let mut event = None;
    let (expect, then) = match (method, target, has_body) {
        (Method::Get | Method::Head, Target::Root | Target::Health | Target::Stats, false) => {
            (ok(None, None), then)
        }
        (Method::Get | Method::Head, Target::Bytes(v), false) => {
            let n = bytes_len(*v);
            let body: Vec<u8> = (0..n).map(crate::bytes_endpoint_byte).collect();
            (ok(Some(body), Some(n)), then)
        }
        (Method::Get | Method::Head, Target::Delay(ms), false)
            if u64::from(*ms) <= crate::MAX_DELAY_MS =>
        {
            (ok(None, None), then)
        }
        (Method::Get | Method::Head, Target::Missing(_), false) => (
            Expect {
                statuses: &[404],
                head,
                body: None,
                length: None,
                allow: false,
                close: false,
            },
            Tail::Unknown,
        ),
        (Method::Post, Target::Echo, _) => (ok(Some(decoded), None), then),
        (Method::Post, Target::PauseAccept(ms), _) if *ms <= 10_000 && limits.admin => {
            event = Some(Event::PauseAccept(Duration::from_millis(u64::from(*ms))));
            (ok(None, None), then)
        }
        (Method::Brew, Target::Root, false) => (
            Expect {
                statuses: &[405],
                head: HeadKnowledge::No,
                body: None,
                length: None,
                allow: true,
                close: false,
            },
            Tail::Unknown,
        ),
        _ => {
            return Built {
                bytes,
                prediction: Prediction::Unknown,
                event: None,
            };
        }
    };
    Built {
        bytes,
        prediction: Prediction::Respond { expect, then },
        event,
    }
}

/// `data` as one chunk and the last chunk.
fn chunk_once(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return b"0\r\n\r\n".to_vec();
    }
    let mut w = format!("{:x}\r\n", data.len()).into_bytes();
    w.extend_from_slice(data);
    w.extend_from_slice(b"\r\n0\r\n\r\n");
    w
}

fn set_header(headers: &mut Vec<(Vec<u8>, Vec<u8>)>, name: &[u8], value: Vec<u8>) {
    remove_header(headers, name);
    headers.push((name.to_vec(), value));
}

fn remove_header(headers: &mut Vec<(Vec<u8>, Vec<u8>)>, name: &[u8]) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}
