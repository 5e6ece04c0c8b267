//! The validated load plan: [`PlanInput`] is what the command line said,
//! [`Plan`] is what will run, with every request's bytes prepared. All flag
//! validation lives here so the messages name the flag and what is allowed;
//! scheduling, sockets and measurement do not.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

use crate::http::{Expect, Framing, Prepared};
use crate::malformed::Generator;
use crate::tls::{Tls, TlsError};

/// Flags as given, before validation.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// `--target`: `http://host:port/path` or `tcp://host:port`.
    pub target: String,
    pub rate_per_s: Option<f64>,
    pub closed: bool,
    pub arrival: Arrival,
    pub connections: usize,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub threads: usize,
    pub seed: u64,
    pub mode: Mode,
    /// `--close-with`, for `--mode connect`.
    pub close_with: CloseWith,
    pub method: Option<String>,
    /// `--header 'Name: value'`, repeatable.
    pub headers: Vec<String>,
    pub body_bytes: usize,
    /// `--mix`: comma-separated `WEIGHT METHOD PATH [BODY_BYTES]`.
    pub mix: Option<String>,
    pub verify: bool,
    pub payload: Option<Vec<u8>>,
    pub expect_bytes: Option<u64>,
    pub expect_delimiter: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub lag_threshold: Duration,
    pub grace: Duration,
    pub sources: Vec<IpAddr>,
    /// `--ca`: PEM roots to trust for an https target.
    pub ca_pem: Option<Vec<u8>>,
    /// `--insecure`: no certificate verification for an https target.
    pub insecure: bool,
    /// `--malformed`: the fraction of requests sent malformed.
    pub malformed: Option<f64>,
}

/// The plan's vocabulary is the run model's, so a result echoes it as is.
pub use floodgate_reports::run::{Arrival, CloseWith, Mode};

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Load {
    /// Each connection sends its next request when the last one is answered.
    Closed,
    /// Requests at fixed intended times, `rate_per_s` in total.
    Open { rate_per_s: f64, arrival: Arrival },
}

/// Where the load goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// `http`, `https` or `tcp`.
    pub scheme: String,
    pub addr: SocketAddr,
    /// The host as written in the URL (the TLS server name).
    pub host: String,
}

/// One request kind of the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKind {
    pub weight: u32,
    /// For the plan echo: `GET /bytes/10`, `POST /echo (1024 bytes)`, `tcp payload`.
    pub label: String,
    pub prepared: Prepared,
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub load: Load,
    pub mode: Mode,
    pub close_with: CloseWith,
    pub connections: usize,
    /// Stop scheduling after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests in total.
    pub requests: Option<u64>,
    pub threads: usize,
    pub seed: u64,
    pub kinds: Vec<RequestKind>,
    pub verify: bool,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// An idle connection whose send starts later than this after its
    /// intended time counts the request as `generator_lagged`.
    pub lag_threshold: Duration,
    /// How long in-flight requests may finish after Ctrl-C or the end.
    pub grace: Duration,
    /// Source addresses connects are spread over (empty: the kernel picks).
    pub sources: Vec<IpAddr>,
    /// For an https target.
    pub tls: Option<Tls>,
    /// `--malformed`: malformed traffic mixed into the load.
    pub malformed: Option<Malformed>,
}

/// Malformed traffic mixed into valid load (`--malformed FRACTION`).
#[derive(Debug, Clone)]
pub struct Malformed {
    /// The share of scheduled requests sent malformed, each on its own
    /// connection.
    pub fraction: f64,
    pub generator: Generator,
    /// The index in `Plan::kinds` of the `POST /echo` request with a unique
    /// token that stands in for a share of valid requests; it is last, and
    /// the schedule draws it apart from the weights.
    pub probe_kind: usize,
    /// The probe's head, without its body: the token is appended per request.
    pub probe_head: Vec<u8>,
}

/// The length of an echo probe's token: 16 hex digits of the seed, 8 of the
/// slot, 8 of the request's number on the slot.
pub const PROBE_TOKEN_LEN: usize = 32;

/// The unique body of echo probe `n` of slot `slot`.
pub fn probe_token(seed: u64, slot: usize, n: u64) -> Vec<u8> {
    format!("{seed:016x}{:08x}{:08x}", slot as u32, n as u32).into_bytes()
}

/// A flag that cannot run, with the flag named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "--target {0:?}: expected http://HOST:PORT/PATH, https://HOST:PORT/PATH or tcp://HOST:PORT"
    )]
    TargetScheme(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("--ca and --insecure are for https:// targets")]
    TlsOnPlain,
    #[error("--target {url:?}: cannot resolve {host:?}: {reason}")]
    Resolve {
        url: String,
        host: String,
        reason: String,
    },
    #[error("--rate {0}: must be a positive number of requests per second")]
    Rate(f64),
    #[error(
        "--rate and --closed exclude each other: choose open loop (--rate R) or closed loop (--closed)"
    )]
    RateAndClosed,
    #[error("--connections 0: at least one connection is needed")]
    Connections,
    #[error("--threads 0: at least one thread is needed")]
    Threads,
    #[error("--duration 0: must be longer than zero")]
    Duration,
    #[error("--requests 0: at least one request is needed")]
    Requests,
    #[error("--header {0:?}: expected 'Name: value'")]
    Header(String),
    #[error(
        "--mix {item:?}: {reason}; expected comma-separated 'WEIGHT METHOD PATH [BODY_BYTES]', e.g. '8 GET /, 1 POST /echo 1024'"
    )]
    Mix { item: String, reason: String },
    #[error("--method {0:?}: expected an HTTP method token such as GET or POST")]
    Method(String),
    #[error(
        "--payload/--payload-file are for tcp:// targets; for http:// use --body-bytes or --mix"
    )]
    PayloadOnHttp,
    #[error(
        "a tcp:// target needs --payload or --payload-file, and --expect-bytes N or --expect-delimiter STR"
    )]
    TcpNeedsPayloadAndExpect,
    #[error("--expect-bytes and --expect-delimiter exclude each other")]
    BothExpects,
    #[error(
        "--mode hold needs no --requests: it opens --connections and holds them for --duration"
    )]
    HoldWithRequests,
    #[error("--connect-timeout and --read-timeout must be longer than zero")]
    Timeout,
    #[error("--malformed {0}: must be a fraction above 0 and at most 0.5, e.g. 0.1")]
    MalformedFraction(f64),
    #[error("--malformed needs an http:// target and --mode requests or churn")]
    MalformedTarget,
}

impl Plan {
    /// Validates `input`, resolving the target host and preparing requests.
    pub fn new(input: PlanInput) -> Result<Plan, PlanError> {
        let target = parse_target(&input.target)?;
        let load = match (input.rate_per_s, input.closed) {
            (Some(_), true) => return Err(PlanError::RateAndClosed),
            (Some(r), false) if !(r.is_finite() && r > 0.0) => return Err(PlanError::Rate(r)),
            (Some(rate_per_s), false) => Load::Open {
                rate_per_s,
                arrival: input.arrival,
            },
            (None, _) => Load::Closed,
        };
        if input.connections == 0 {
            return Err(PlanError::Connections);
        }
        if input.threads == 0 {
            return Err(PlanError::Threads);
        }
        if input.duration == Some(Duration::ZERO) {
            return Err(PlanError::Duration);
        }
        if input.requests == Some(0) {
            return Err(PlanError::Requests);
        }
        if input.connect_timeout.is_zero() || input.read_timeout.is_zero() {
            return Err(PlanError::Timeout);
        }
        if input.mode == Mode::Hold && input.requests.is_some() {
            return Err(PlanError::HoldWithRequests);
        }
        // Neither --duration nor --requests: ten seconds, like wrk.
        let duration = match (input.duration, input.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        if let Some(f) = input.malformed {
            if !(f > 0.0 && f <= 0.5) {
                return Err(PlanError::MalformedFraction(f));
            }
            if target.scheme != "http" || !matches!(input.mode, Mode::Requests | Mode::Churn) {
                return Err(PlanError::MalformedTarget);
            }
        }
        let tls = if target.scheme == "https" {
            Some(Tls::new(
                &target.host,
                input.ca_pem.as_deref(),
                input.insecure,
            )?)
        } else if input.ca_pem.is_some() || input.insecure {
            return Err(PlanError::TlsOnPlain);
        } else {
            None
        };
        let (path, host_header) = match target.scheme.as_str() {
            "http" | "https" => {
                let rest = &input.target[target.scheme.len() + "://".len()..];
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let path = if path.is_empty() { "/" } else { path };
                (path.to_string(), authority.to_string())
            }
            _ => (String::new(), String::new()),
        };
        let mut kinds = if target.scheme == "tcp" {
            if input.expect_bytes.is_some() && input.expect_delimiter.is_some() {
                return Err(PlanError::BothExpects);
            }
            let framing = match (input.expect_bytes, &input.expect_delimiter) {
                (Some(n), None) => Framing::Bytes(n),
                (None, Some(d)) if !d.is_empty() => Framing::Delimiter(d.clone()),
                _ if input.mode == Mode::Connect || input.mode == Mode::Hold => Framing::Bytes(0),
                _ => return Err(PlanError::TcpNeedsPayloadAndExpect),
            };
            let payload = match &input.payload {
                Some(p) => p.clone(),
                None if input.mode == Mode::Connect || input.mode == Mode::Hold => Vec::new(),
                None => return Err(PlanError::TcpNeedsPayloadAndExpect),
            };
            vec![RequestKind {
                weight: 1,
                label: format!("tcp payload ({} bytes)", payload.len()),
                prepared: Prepared {
                    wire: payload,
                    framing,
                    expect: Expect::Anything,
                },
            }]
        } else {
            if input.payload.is_some() {
                return Err(PlanError::PayloadOnHttp);
            }
            let mut headers = Vec::new();
            for h in &input.headers {
                match h.split_once(':') {
                    Some((name, value))
                        if !name.is_empty()
                            && name.bytes().all(is_token)
                            && !value.contains(['\r', '\n']) =>
                    {
                        headers.push((name.to_string(), value.trim().to_string()))
                    }
                    _ => return Err(PlanError::Header(h.clone())),
                }
            }
            let close = input.mode == Mode::Churn;
            let specs = match &input.mix {
                Some(mix) => parse_mix(mix)?,
                None => {
                    let method = match &input.method {
                        Some(m) => m.clone(),
                        None if input.body_bytes > 0 => "POST".to_string(),
                        None => "GET".to_string(),
                    };
                    if method.is_empty() || !method.bytes().all(is_token) {
                        return Err(PlanError::Method(method));
                    }
                    vec![(1, method, path, input.body_bytes)]
                }
            };
            specs
                .into_iter()
                .map(|(weight, method, path, body_len)| RequestKind {
                    weight,
                    label: if body_len > 0 {
                        format!("{method} {path} ({body_len} body bytes)")
                    } else {
                        format!("{method} {path}")
                    },
                    prepared: prepare_http(
                        &method,
                        &path,
                        &host_header,
                        &headers,
                        body_len,
                        close,
                        input.seed,
                    ),
                })
                .collect()
        };
        let malformed = input.malformed.map(|fraction| {
            let close = if input.mode == Mode::Churn {
                "Connection: close\r\n"
            } else {
                ""
            };
            let probe_head = format!(
                "POST /echo HTTP/1.1\r\nHost: {host_header}\r\nContent-Length: {PROBE_TOKEN_LEN}\r\n{close}\r\n"
            )
            .into_bytes();
            kinds.push(RequestKind {
                weight: 1,
                label: format!(
                    "POST /echo with a unique token (--malformed: {}% of valid requests, apart from the weights)",
                    crate::malformed::PROBE_SHARE * 100.0
                ),
                prepared: Prepared {
                    wire: probe_head.clone(),
                    framing: Framing::Http {
                        head_request: false,
                    },
                    expect: Expect::Anything,
                },
            });
            Malformed {
                fraction,
                generator: Generator::new(input.seed),
                probe_kind: kinds.len() - 1,
                probe_head,
            }
        });
        Ok(Plan {
            target,
            load,
            mode: input.mode,
            close_with: input.close_with,
            connections: input.connections,
            duration,
            requests: input.requests,
            threads: input.threads.min(input.connections),
            seed: input.seed,
            kinds,
            verify: input.verify,
            connect_timeout: input.connect_timeout,
            read_timeout: input.read_timeout,
            lag_threshold: input.lag_threshold,
            grace: input.grace,
            sources: input.sources,
            tls,
            malformed,
        })
    }

    /// True when intended send times come from a schedule.
    pub fn is_open(&self) -> bool {
        matches!(self.load, Load::Open { .. })
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_target(url: &str) -> Result<Target, PlanError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("tcp://") {
        ("tcp", rest)
    } else {
        return Err(PlanError::TargetScheme(url.to_string()));
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if authority.is_empty() {
        return Err(PlanError::TargetScheme(url.to_string()));
    }
    // A missing port means 80 for http and 443 for https; tcp:// must say
    // its port.
    let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
        p.parse::<u16>().is_ok() && (!h.starts_with('[') || h.ends_with(']'))
    });
    let host = if has_port {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    } else {
        authority
    };
    let with_port = if has_port {
        authority.to_string()
    } else if scheme == "http" {
        format!("{authority}:80")
    } else if scheme == "https" {
        format!("{authority}:443")
    } else {
        return Err(PlanError::TargetScheme(url.to_string()));
    };
    let lookup = with_port.trim_start_matches('[').replace("]:", ":");
    let resolved = with_port
        .to_socket_addrs()
        .or_else(|_| lookup.to_socket_addrs())
        .map_err(|e| PlanError::Resolve {
            url: url.to_string(),
            host: authority.to_string(),
            reason: e.to_string(),
        })?
        .next();
    let addr = resolved.ok_or_else(|| PlanError::Resolve {
        url: url.to_string(),
        host: authority.to_string(),
        reason: "no addresses".to_string(),
    })?;
    Ok(Target {
        url: url.to_string(),
        scheme: scheme.to_string(),
        addr,
        host: host.to_string(),
    })
}

type MixItem = (u32, String, String, usize);

fn parse_mix(mix: &str) -> Result<Vec<MixItem>, PlanError> {
    let mut items = Vec::new();
    for item in mix
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let err = |reason: &str| PlanError::Mix {
            item: item.to_string(),
            reason: reason.to_string(),
        };
        let words: Vec<&str> = item.split_whitespace().collect();
        if !(3..=4).contains(&words.len()) {
            return Err(err("expected 3 or 4 words"));
        }
        let weight: u32 = words[0]
            .parse()
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| err("WEIGHT must be a positive integer"))?;
        let method = words[1].to_string();
        if !method.bytes().all(is_token) {
            return Err(err("METHOD must be a token such as GET"));
        }
        let path = words[2].to_string();
        if !path.starts_with('/') {
            return Err(err("PATH must start with /"));
        }
        let body = match words.get(3) {
            Some(b) => b
                .parse()
                .map_err(|_| err("BODY_BYTES must be a byte count"))?,
            None => 0,
        };
        items.push((weight, method, path, body));
    }
    if items.is_empty() {
        return Err(PlanError::Mix {
            item: mix.to_string(),
            reason: "no requests".to_string(),
        });
    }
    Ok(items)
}

/// The request body: a printable pattern that depends on the seed, so a
/// corrupted echo cannot match by accident.
pub fn body_byte(seed: u64, i: usize) -> u8 {
    b'!' + ((i as u64).wrapping_add(seed) % 90) as u8
}

fn prepare_http(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(String, String)],
    body_len: usize,
    close: bool,
    seed: u64,
) -> Prepared {
    let mut wire = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
    for (name, value) in headers {
        wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if body_len > 0 || method == "POST" || method == "PUT" {
        wire.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    }
    if close {
        wire.extend_from_slice(b"Connection: close\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    let body: Vec<u8> = (0..body_len).map(|i| body_byte(seed, i)).collect();
    wire.extend_from_slice(&body);
    let expect = if method == "POST" && path == "/echo" {
        Expect::Echo(body)
    } else if let Some(n) = path.strip_prefix("/bytes/").and_then(|n| n.parse().ok()) {
        if method == "GET" {
            Expect::Bytes(n)
        } else {
            Expect::Anything
        }
    } else {
        Expect::Anything
    };
    Prepared {
        wire,
        framing: Framing::Http {
            head_request: method == "HEAD",
        },
        expect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(target: &str) -> PlanInput {
        PlanInput {
            target: target.to_string(),
            connections: 4,
            threads: 1,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            ..PlanInput::default()
        }
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let err = |i: PlanInput| Plan::new(i).unwrap_err().to_string();
        assert!(err(input("ftp://x")).starts_with("--target \"ftp://x\""));
        assert!(
            err(PlanInput {
                rate_per_s: Some(0.0),
                ..input("http://127.0.0.1:1/")
            })
            .starts_with("--rate 0")
        );
        assert!(
            err(PlanInput {
                connections: 0,
                ..input("http://127.0.0.1:1/")
            })
            .starts_with("--connections 0")
        );
        assert!(
            err(PlanInput {
                rate_per_s: Some(5.0),
                closed: true,
                ..input("http://127.0.0.1:1/")
            })
            .starts_with("--rate and --closed")
        );
        assert!(
            err(PlanInput {
                mix: Some("x GET /".into()),
                ..input("http://127.0.0.1:1/")
            })
            .starts_with("--mix")
        );
        assert!(err(input("tcp://127.0.0.1:1")).contains("tcp:// target needs --payload"));
        for f in [0.0, 0.51, -1.0, f64::NAN] {
            assert!(
                err(PlanInput {
                    malformed: Some(f),
                    ..input("http://127.0.0.1:1/")
                })
                .starts_with(&format!("--malformed {f}: must be a fraction")),
                "{f}"
            );
        }
        assert!(
            err(PlanInput {
                malformed: Some(0.1),
                mode: Mode::Connect,
                ..input("http://127.0.0.1:1/")
            })
            .starts_with("--malformed needs an http:// target")
        );
    }

    #[test]
    fn http_request_bytes() {
        let plan = Plan::new(PlanInput {
            mix: Some("3 GET /bytes/10, 1 POST /echo 4".into()),
            ..input("http://127.0.0.1:8080/ignored")
        })
        .unwrap();
        assert_eq!(plan.target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(plan.kinds.len(), 2);
        assert_eq!(plan.kinds[0].weight, 3);
        assert_eq!(
            plan.kinds[0].prepared.wire,
            b"GET /bytes/10 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert_eq!(plan.kinds[0].prepared.expect, Expect::Bytes(10));
        let post = &plan.kinds[1].prepared;
        assert!(post.wire.starts_with(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 4\r\n\r\n"
        ));
        assert_eq!(
            post.expect,
            Expect::Echo(post.wire[post.wire.len() - 4..].to_vec())
        );
    }
}
