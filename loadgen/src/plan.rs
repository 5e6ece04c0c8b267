//! The validated load plan: [`PlanInput`] is what was asked for, [`Plan`]
//! is what will run, with every request's bytes prepared. All validation
//! lives here, in the input's own words: a [`PlanError`] names the field
//! (`rate`, `mix[1].path`) and says what is allowed, and a front end (the
//! command line's flags) maps the field to its own words. Scheduling,
//! sockets and measurement validate nothing.
//!
//! Validation and name resolution are two steps. [`Plan::validate`] checks
//! the input offline, the target URL included, and gives a [`ValidPlan`]
//! whose target is unresolved (or absent: the caller supplies an address).
//! [`ValidPlan::resolve`] then looks the host up, or
//! [`ValidPlan::with_target_addr`] takes an address the caller has, such as
//! a server it started after validating; either gives the [`Plan`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::{Expect, Framing, Prepared};
use crate::malformed::Generator;
use crate::tls::{Tls, TlsError};

/// What to run, before validation. Errors name these fields as written
/// here, except `rate` (`rate_per_s`) and `ca` (`ca_pem`).
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// `http://HOST[:PORT][/PATH]`, `https://HOST[:PORT][/PATH]` or
    /// `tcp://HOST:PORT`. `None`: an `http://` target whose address the
    /// caller supplies after validation ([`ValidPlan::with_target_addr`]).
    pub target: Option<String>,
    /// `rate`: an open loop of this many requests per second in total.
    pub rate_per_s: Option<f64>,
    /// A closed loop (the default without `rate`).
    pub closed: bool,
    pub arrival: Arrival,
    pub connections: usize,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub threads: usize,
    pub seed: u64,
    pub mode: Mode,
    /// How `mode` connect closes.
    pub close_with: CloseWith,
    /// The method of the one request when there is no `mix` (default GET,
    /// or POST with `body_bytes`).
    pub method: Option<String>,
    /// Extra request headers, `Name: value`.
    pub headers: Vec<String>,
    /// The body size of the one request when there is no `mix`.
    pub body_bytes: usize,
    /// Weighted request kinds, instead of one request from `method`,
    /// `body_bytes` and the target's path.
    pub mix: Option<Vec<MixEntry>>,
    pub verify: bool,
    /// tcp://: the bytes sent per request.
    pub payload: Option<Vec<u8>>,
    /// tcp://: a reply is complete after this many bytes.
    pub expect_bytes: Option<u64>,
    /// tcp://: a reply is complete after this delimiter.
    pub expect_delimiter: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub lag_threshold: Duration,
    pub grace: Duration,
    pub sources: Vec<IpAddr>,
    /// `ca`: PEM roots to trust for an https target.
    pub ca_pem: Option<Vec<u8>>,
    /// No certificate verification for an https target.
    pub insecure: bool,
    /// The fraction of requests sent malformed.
    pub malformed: Option<f64>,
}

/// One weighted request kind of a mix: in a scenario file
/// `{ weight = 8, method = "GET", path = "/" }`, with `body_bytes`
/// defaulting to 0; on the command line `8 GET /` ([`MixEntry::parse_list`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// The share of requests of this kind, relative to the other entries.
    pub weight: u32,
    pub method: String,
    /// The request target, starting with `/`.
    pub path: String,
    /// A request body of this many bytes (a pattern that depends on the seed).
    #[serde(default)]
    pub body_bytes: usize,
}

impl MixEntry {
    /// Parses the command line's mix: `WEIGHT METHOD PATH [BODY_BYTES]`
    /// entries separated by commas or newlines (a mix file has one entry per
    /// line), e.g. `8 GET /, 1 POST /echo 1024`. Blank entries are skipped;
    /// an entry's index in errors (`mix[1].weight`) counts the others. Only
    /// the syntax is checked here: the values are checked with the rest of
    /// the plan.
    pub fn parse_list(list: &str) -> Result<Vec<MixEntry>, PlanError> {
        list.split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, item)| MixEntry::parse(i, item))
            .collect()
    }

    fn parse(i: usize, item: &str) -> Result<MixEntry, PlanError> {
        let err = |field: &str, reason: &str, got: &str| {
            PlanError::new(format!("mix[{i}]{field}"), reason).with_got(format!("{got:?}"))
        };
        let words: Vec<&str> = item.split_whitespace().collect();
        if !(3..=4).contains(&words.len()) {
            return Err(err(
                "",
                "must be 'WEIGHT METHOD PATH [BODY_BYTES]', e.g. '1 POST /echo 1024'",
                item,
            ));
        }
        let weight = words[0]
            .parse()
            .map_err(|_| err(".weight", "must be a whole number, at least 1", words[0]))?;
        let body_bytes = match words.get(3) {
            Some(b) => b
                .parse()
                .map_err(|_| err(".body_bytes", "must be a byte count", b))?,
            None => 0,
        };
        Ok(MixEntry {
            weight,
            method: words[1].to_string(),
            path: words[2].to_string(),
            body_bytes,
        })
    }

    /// For the plan echo: `GET /bytes/10`, `POST /echo (1024 body bytes)`.
    fn label(&self) -> String {
        let MixEntry {
            method,
            path,
            body_bytes,
            ..
        } = self;
        if *body_bytes > 0 {
            format!("{method} {path} ({body_bytes} body bytes)")
        } else {
            format!("{method} {path}")
        }
    }
}

/// The command line's syntax, which [`MixEntry::parse_list`] reads back:
/// `8 GET /`, `1 POST /echo 1024`.
impl std::fmt::Display for MixEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.weight, self.method, self.path)?;
        if self.body_bytes > 0 {
            write!(f, " {}", self.body_bytes)?;
        }
        Ok(())
    }
}

/// Checks the entries of a mix: weights of at least 1 that add up to a
/// `u32`, method tokens, and paths a request line can carry.
fn check_mix(mix: &[MixEntry]) -> Result<(), PlanError> {
    if mix.is_empty() {
        return Err(PlanError::new("mix", "must have at least one entry"));
    }
    let mut total = 0u32;
    for (i, e) in mix.iter().enumerate() {
        let field = |name: &str| format!("mix[{i}].{name}");
        if e.weight == 0 {
            return Err(PlanError::new(field("weight"), "must be at least 1").with_got(0));
        }
        total = total.checked_add(e.weight).ok_or_else(|| {
            PlanError::new(
                field("weight"),
                format!("makes the weights add up to more than {}", u32::MAX),
            )
            .with_got(e.weight)
        })?;
        if !is_method(&e.method) {
            return Err(PlanError::new(
                field("method"),
                "must be an HTTP method token such as GET or POST",
            )
            .with_got(format!("{:?}", e.method)));
        }
        if !is_request_path(&e.path) {
            return Err(PlanError::new(
                field("path"),
                "must start with / and hold no spaces or control characters",
            )
            .with_got(format!("{:?}", e.path)));
        }
        check_body_bytes(&field("body_bytes"), e.body_bytes)?;
    }
    Ok(())
}

/// The largest request body a plan sends: the reference server's limit
/// (`floodgate_proto::Limits::max_body_bytes`), past which `/echo` answers
/// 413. Each request kind's bytes are prepared in memory before the run.
pub fn max_body_bytes() -> usize {
    floodgate_proto::Limits::default().max_body_bytes
}

fn check_body_bytes(field: &str, body_bytes: usize) -> Result<(), PlanError> {
    let max = max_body_bytes();
    if body_bytes > max {
        return Err(PlanError::new(
            field,
            format!("must be at most {max} (the reference server's request body limit)"),
        )
        .with_got(body_bytes));
    }
    Ok(())
}

/// Headers the plan writes itself, from the target (`Host`), the body size
/// (`Content-Length`; bodies are never chunked) and the mode
/// (`Connection: close` in churn): a second copy would contradict the
/// request's framing, the stuff of request smuggling.
const FRAMING_HEADERS: [&str; 4] = ["Content-Length", "Transfer-Encoding", "Host", "Connection"];

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

/// Where the load goes, resolved.
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

/// A target URL checked offline ([`TargetUrl::parse`]) and not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// The URL as given.
    pub url: String,
    /// `http`, `https` or `tcp`.
    pub scheme: String,
    /// HOST and PORT as written (the `Host` header).
    pub authority: String,
    /// The host as written: a name, an IPv4 address, or an IPv6 address in
    /// brackets.
    pub host: String,
    /// As written, or 80 for http and 443 for https.
    pub port: u16,
    /// The request target of the one request without a `mix`: `/` when the
    /// URL has none; empty for tcp.
    pub path: String,
}

/// The target URLs a plan takes, for error messages.
const TARGET_FORMS: &str =
    "http://HOST[:PORT][/PATH], https://HOST[:PORT][/PATH] or tcp://HOST:PORT";

impl TargetUrl {
    /// Checks `url` without any lookup: the scheme, a HOST that is a name
    /// (letters, digits, `-`, `.`, `_`), an IPv4 address or an IPv6 address
    /// in brackets, a PORT of 1 to 65535 (needed for tcp://), and a PATH a
    /// request line can carry (none for tcp://). Errors name `target`.
    pub fn parse(url: &str) -> Result<TargetUrl, PlanError> {
        let bad = |problem: &str| {
            PlanError::new("target", format!("{problem}; expected {TARGET_FORMS}"))
                .with_got(format!("{url:?}"))
        };
        let (scheme, rest) = ["http", "https", "tcp"]
            .into_iter()
            .find_map(|s| Some((s, url.strip_prefix(s)?.strip_prefix("://")?)))
            .ok_or_else(|| {
                PlanError::new("target", format!("must be {TARGET_FORMS}"))
                    .with_got(format!("{url:?}"))
            })?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(bad("has user info (USER@), which is not supported"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (addr, after) = v6
                    .split_once(']')
                    .ok_or_else(|| bad("has an IPv6 HOST without its closing ]"))?;
                if addr.parse::<Ipv6Addr>().is_err() {
                    return Err(bad("has a HOST in brackets that is not an IPv6 address"));
                }
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(|| {
                        bad("has something other than :PORT after its IPv6 HOST")
                    })?),
                };
                (&authority[..addr.len() + 2], port)
            }
            None => match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(bad("has an IPv6 HOST without brackets, e.g. [::1]"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("has no HOST"));
        }
        if !host.starts_with('[')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(bad(
                "has a HOST with characters other than letters, digits, '-', '.' and '_'",
            ));
        }
        let port = match (port, scheme) {
            (Some(p), _) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("has a PORT that is not 1 to 65535"))?,
            (None, "http") => 80,
            (None, "https") => 443,
            (None, _) => return Err(bad("has no PORT, which a tcp:// target needs")),
        };
        let path = match scheme {
            "tcp" if path.is_empty() || path == "/" => String::new(),
            "tcp" => return Err(bad("has a PATH, which a tcp:// target does not take")),
            _ if path.is_empty() => "/".to_string(),
            _ if is_request_path(path) => path.to_string(),
            _ => return Err(bad("has a PATH with spaces or control characters")),
        };
        Ok(TargetUrl {
            url: url.to_string(),
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `http://ADDR/`, for an address the caller has.
    fn of_addr(addr: SocketAddr) -> TargetUrl {
        let host = match addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        TargetUrl {
            url: format!("http://{addr}/"),
            scheme: "http".to_string(),
            authority: addr.to_string(),
            host,
            port: addr.port(),
            path: "/".to_string(),
        }
    }

    /// Looks the host up (a name through the system resolver) and takes
    /// the first address. Errors name `target`.
    pub fn resolve(&self) -> Result<SocketAddr, PlanError> {
        let bad = |why: String| PlanError::new("target", why).with_got(format!("{:?}", self.url));
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve {:?}: {e}", self.host)))?
            .next()
            .ok_or_else(|| bad(format!("{:?} resolves to no addresses", self.host)))
    }

    fn at(self, addr: SocketAddr) -> Target {
        Target {
            url: self.url,
            scheme: self.scheme,
            addr,
            host: self.host,
        }
    }
}

/// One request kind of the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKind {
    pub weight: u32,
    /// For the plan echo: `GET /bytes/10`, `POST /echo (1024 bytes)`, `tcp payload`.
    pub label: String,
    pub prepared: Prepared,
}

/// A validated plan with its target resolved: what runs.
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

/// An input that cannot run: the field, named as in [`PlanInput`] (`rate`,
/// `target`, `mix[1].path`, `headers[2]`), what is wrong with it and what is
/// allowed. Other fields the reason mentions are written in backticks
/// (`` `closed` ``), so a front end can put all of them in its own words.
///
/// Displays as `FIELD: REASON, got VALUE`, e.g.
/// `rate: must be above 0 and finite (requests per second), got -1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    field: String,
    reason: String,
    got: Option<String>,
}

impl PlanError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> PlanError {
        PlanError {
            field: field.into(),
            reason: reason.into(),
            got: None,
        }
    }

    /// The offending value, as the field's display: numbers bare, strings
    /// quoted.
    fn with_got(mut self, got: impl std::fmt::Display) -> PlanError {
        self.got = Some(got.to_string());
        self
    }

    /// The field path: `rate`, `target`, `mix[1].path`, `headers[2]`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong and what is allowed, without the value; other fields
    /// are named in backticks.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The offending value when one value is the problem (not for two
    /// fields that exclude each other): `-1`, `"ftp://x"`.
    pub fn got(&self) -> Option<&str> {
        self.got.as_deref()
    }

    /// The reason followed by the offending value: everything but the field.
    pub fn message(&self) -> String {
        match &self.got {
            Some(got) => format!("{}, got {got}", self.reason),
            None => self.reason.clone(),
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for PlanError {}

/// A TLS setup error, with the field to blame.
fn tls_error(e: TlsError, target: &str) -> PlanError {
    match e {
        TlsError::NoCertificate(why) => {
            PlanError::new("ca", format!("must hold PEM certificates: {why}"))
        }
        TlsError::BadCertificate(why) => {
            PlanError::new("ca", format!("holds a certificate that is rejected: {why}"))
        }
        TlsError::NoTrust => PlanError::new(
            "ca",
            "is needed for an https:// target (PEM roots to trust), unless `insecure` (no verification)",
        ),
        TlsError::ServerName(_) => {
            PlanError::new("target", "has a HOST that is not a valid TLS server name")
                .with_got(format!("{target:?}"))
        }
        TlsError::Rustls(why) => PlanError::new("target", format!("TLS setup failed: {why}")),
    }
}

impl Plan {
    /// Validates `input` ([`Plan::validate`]) and resolves its target
    /// ([`ValidPlan::resolve`]): for a caller with a target URL and nothing
    /// to do between the two steps.
    pub fn new(input: PlanInput) -> Result<Plan, PlanError> {
        Plan::validate(input)?.resolve()
    }

    /// Checks `input` offline: no lookup, no connection. The target URL is
    /// parsed and checked ([`TargetUrl::parse`]) but not resolved; without
    /// one, the rest is checked for an `http://` target whose address the
    /// caller supplies.
    pub fn validate(input: PlanInput) -> Result<ValidPlan, PlanError> {
        let target = input.target.as_deref().map(TargetUrl::parse).transpose()?;
        let scheme = target.as_ref().map_or("http", |t| t.scheme.as_str());
        let load = match (input.rate_per_s, input.closed) {
            (Some(_), true) => {
                return Err(PlanError::new(
                    "rate",
                    "cannot be combined with `closed`: choose an open loop (`rate`) or a closed loop (`closed`)",
                ));
            }
            (Some(r), false) if !(r.is_finite() && r > 0.0) => {
                return Err(PlanError::new(
                    "rate",
                    "must be above 0 and finite (requests per second)",
                )
                .with_got(r));
            }
            (Some(rate_per_s), false) => Load::Open {
                rate_per_s,
                arrival: input.arrival,
            },
            (None, _) => Load::Closed,
        };
        if input.connections == 0 {
            return Err(PlanError::new("connections", "must be at least 1").with_got(0));
        }
        if input.threads == 0 {
            return Err(PlanError::new("threads", "must be at least 1").with_got(0));
        }
        if let Some(d @ Duration::ZERO) = input.duration {
            return Err(
                PlanError::new("duration", "must be longer than zero").with_got(format!("{d:?}"))
            );
        }
        if input.requests == Some(0) {
            return Err(PlanError::new("requests", "must be at least 1").with_got(0));
        }
        for (field, t) in [
            ("connect_timeout", input.connect_timeout),
            ("read_timeout", input.read_timeout),
        ] {
            if t.is_zero() {
                return Err(
                    PlanError::new(field, "must be longer than zero").with_got(format!("{t:?}"))
                );
            }
        }
        if let (Mode::Hold, Some(n)) = (input.mode, input.requests) {
            return Err(PlanError::new(
                "requests",
                "must be unset in `mode` hold, which opens `connections` connections and holds them for `duration`",
            )
            .with_got(n));
        }
        // Neither a duration nor a request count: ten seconds, like wrk.
        let duration = match (input.duration, input.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        if let Some(f) = input.malformed {
            if !(f > 0.0 && f <= 0.5) {
                return Err(PlanError::new(
                    "malformed",
                    "must be a fraction above 0 and at most 0.5 (e.g. 0.1)",
                )
                .with_got(f));
            }
            if scheme != "http" || !matches!(input.mode, Mode::Requests | Mode::Churn) {
                return Err(PlanError::new(
                    "malformed",
                    "needs an http:// target and `mode` requests or churn",
                ));
            }
        }
        let tls = if let Some(t) = target.as_ref().filter(|t| t.scheme == "https") {
            Some(
                Tls::new(&t.host, input.ca_pem.as_deref(), input.insecure)
                    .map_err(|e| tls_error(e, &t.url))?,
            )
        } else if input.ca_pem.is_some() {
            return Err(PlanError::new("ca", "is for https:// targets"));
        } else if input.insecure {
            return Err(PlanError::new("insecure", "is for https:// targets"));
        } else {
            None
        };
        let mut headers = Vec::new();
        let mut method = String::new();
        let tcp = if scheme == "tcp" {
            for (field, given) in [
                ("mix", input.mix.is_some()),
                ("method", input.method.is_some()),
                ("headers", !input.headers.is_empty()),
                ("body_bytes", input.body_bytes > 0),
            ] {
                if given {
                    return Err(PlanError::new(
                        field,
                        "is for http:// and https:// targets; a tcp:// target sends `payload`",
                    ));
                }
            }
            let connect_or_hold = matches!(input.mode, Mode::Connect | Mode::Hold);
            let framing = match (input.expect_bytes, &input.expect_delimiter) {
                (Some(_), Some(_)) => {
                    return Err(PlanError::new(
                        "expect_delimiter",
                        "cannot be combined with `expect_bytes`: a reply ends after a byte count or after a delimiter",
                    ));
                }
                (None, Some(d)) if d.is_empty() => {
                    return Err(
                        PlanError::new("expect_delimiter", "must not be empty").with_got("\"\"")
                    );
                }
                (Some(n), None) => Framing::Bytes(n),
                (None, Some(d)) => Framing::Delimiter(d.clone()),
                (None, None) if connect_or_hold => Framing::Bytes(0),
                (None, None) => {
                    return Err(PlanError::new(
                        "expect_bytes",
                        "is needed (or `expect_delimiter`) for a tcp:// target in `mode` requests or churn, to know where a reply ends",
                    ));
                }
            };
            let payload = match &input.payload {
                Some(p) => p.clone(),
                None if connect_or_hold => Vec::new(),
                None => {
                    return Err(PlanError::new(
                        "payload",
                        "is needed for a tcp:// target in `mode` requests or churn: the bytes sent per request",
                    ));
                }
            };
            Some(RequestKind {
                weight: 1,
                label: format!("tcp payload ({} bytes)", payload.len()),
                prepared: Prepared {
                    wire: payload,
                    framing,
                    expect: Expect::Anything,
                },
            })
        } else {
            if input.payload.is_some() {
                return Err(PlanError::new(
                    "payload",
                    "is for tcp:// targets; an http:// or https:// target sends `body_bytes` or `mix`",
                ));
            }
            for (i, h) in input.headers.iter().enumerate() {
                let bad = |reason: &str| {
                    PlanError::new(format!("headers[{i}]"), reason).with_got(format!("{h:?}"))
                };
                match h.split_once(':') {
                    Some((name, value))
                        if !name.is_empty()
                            && name.bytes().all(is_token)
                            && is_field_value(value) =>
                    {
                        if FRAMING_HEADERS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                            return Err(bad(
                                "must not set Content-Length, Transfer-Encoding, Host or Connection: \
                                 the body size, `target` and `mode` decide them",
                            ));
                        }
                        headers.push((name.to_string(), value.trim().to_string()))
                    }
                    _ => {
                        return Err(bad(
                            "must be 'Name: value', with a token Name and no CR or LF \
                             (or other control character but tab) in the value",
                        ));
                    }
                }
            }
            match &input.mix {
                Some(mix) => {
                    if input.method.is_some() {
                        return Err(PlanError::new(
                            "method",
                            "cannot be combined with `mix`: each mix entry names its method",
                        ));
                    }
                    if input.body_bytes > 0 {
                        return Err(PlanError::new(
                            "body_bytes",
                            "cannot be combined with `mix`: each mix entry sets its body size",
                        ));
                    }
                    check_mix(mix)?;
                }
                None => {
                    check_body_bytes("body_bytes", input.body_bytes)?;
                    method = match &input.method {
                        Some(m) => m.clone(),
                        None if input.body_bytes > 0 => "POST".to_string(),
                        None => "GET".to_string(),
                    };
                    if !is_method(&method) {
                        return Err(PlanError::new(
                            "method",
                            "must be an HTTP method token such as GET or POST",
                        )
                        .with_got(format!("{method:?}")));
                    }
                }
            }
            None
        };
        Ok(ValidPlan {
            target,
            input,
            load,
            duration,
            tls,
            headers,
            method,
            tcp,
        })
    }

    /// True when intended send times come from a schedule.
    pub fn is_open(&self) -> bool {
        matches!(self.load, Load::Open { .. })
    }
}

/// A plan checked offline ([`Plan::validate`]) with its target not yet
/// resolved: [`ValidPlan::resolve`] or [`ValidPlan::with_target_addr`]
/// gives the [`Plan`]. Nothing is left to refuse but a failed lookup.
#[derive(Debug, Clone)]
pub struct ValidPlan {
    target: Option<TargetUrl>,
    input: PlanInput,
    load: Load,
    duration: Option<Duration>,
    tls: Option<Tls>,
    headers: Vec<(String, String)>,
    /// The method of the one request when there is no mix.
    method: String,
    /// A tcp:// target's one request kind.
    tcp: Option<RequestKind>,
}

impl ValidPlan {
    /// The target URL as checked; `None` when the caller is to supply the
    /// address ([`ValidPlan::with_target_addr`]).
    pub fn target(&self) -> Option<&TargetUrl> {
        self.target.as_ref()
    }

    /// Resolves the target's host ([`TargetUrl::resolve`]), the one step
    /// that looks anything up. Errors name `target`, as does a plan without
    /// a target URL, which has nothing to resolve.
    pub fn resolve(mut self) -> Result<Plan, PlanError> {
        let url = self.target.take().ok_or_else(|| {
            PlanError::new(
                "target",
                "is not set, so there is nothing to resolve: give a URL, or supply the address",
            )
        })?;
        let addr = url.resolve()?;
        Ok(self.finish(url, addr))
    }

    /// The plan that connects to `addr` without a lookup. With a target URL
    /// its scheme, host (the `Host` header, the TLS server name) and path
    /// stay; without one the target is `http://ADDR/`.
    pub fn with_target_addr(mut self, addr: SocketAddr) -> Plan {
        let url = self
            .target
            .take()
            .unwrap_or_else(|| TargetUrl::of_addr(addr));
        self.finish(url, addr)
    }

    /// Prepares every request's bytes for `url` (its `Host` header, and the
    /// path of the one request without a mix) and connects to `addr`.
    fn finish(self, url: TargetUrl, addr: SocketAddr) -> Plan {
        let ValidPlan {
            input,
            load,
            duration,
            tls,
            headers,
            method,
            tcp,
            ..
        } = self;
        let host_header = &url.authority;
        let close = input.mode == Mode::Churn;
        let mut kinds = match tcp {
            Some(kind) => vec![kind],
            None => input
                .mix
                .unwrap_or_else(|| {
                    vec![MixEntry {
                        weight: 1,
                        method,
                        path: url.path.clone(),
                        body_bytes: input.body_bytes,
                    }]
                })
                .into_iter()
                .map(|e| RequestKind {
                    weight: e.weight,
                    label: e.label(),
                    prepared: prepare_http(
                        &e.method,
                        &e.path,
                        host_header,
                        &headers,
                        e.body_bytes,
                        close,
                        input.seed,
                    ),
                })
                .collect(),
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
        Plan {
            target: url.at(addr),
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
        }
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_method(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(is_token)
}

/// A header field value: visible characters, spaces and tabs; no CR, LF or
/// other control character that could end the line or confuse a parser.
fn is_field_value(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() && c != '\t')
}

/// A request line's target: from `/`, with no space or control character
/// to break the line.
fn is_request_path(path: &str) -> bool {
    path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c.is_control())
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
            target: Some(target.to_string()),
            connections: 4,
            threads: 1,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            ..PlanInput::default()
        }
    }

    fn mix(list: &str) -> Vec<MixEntry> {
        MixEntry::parse_list(list).unwrap()
    }

    /// `input` is refused, naming `field`, with `needle` in the message.
    #[track_caller]
    fn check(input: PlanInput, field: &str, needle: &str) {
        let e = Plan::validate(input).map(|_| ()).expect_err(field);
        assert_eq!(e.field(), field, "{e}");
        assert!(e.to_string().contains(needle), "{field}: {e}");
    }

    #[test]
    fn bad_input_names_the_field() {
        let ok = || input("http://127.0.0.1:1/");
        let cases: Vec<(PlanInput, &str, &str)> = vec![
            (input("ftp://x"), "target", "must be http://HOST"),
            (input("http:/x/"), "target", "got \"http:/x/\""),
            (input("http:///"), "target", "has no HOST"),
            (input("http://:80/"), "target", "has no HOST"),
            (input("tcp://127.0.0.1"), "target", "has no PORT"),
            (
                input("http://h:0/"),
                "target",
                "PORT that is not 1 to 65535",
            ),
            (
                input("http://h:65536/"),
                "target",
                "PORT that is not 1 to 65535",
            ),
            (
                input("http://h:x/"),
                "target",
                "PORT that is not 1 to 65535",
            ),
            (input("http://::1/"), "target", "IPv6 HOST without brackets"),
            (input("http://[::1/"), "target", "without its closing ]"),
            (input("http://[nope]/"), "target", "not an IPv6 address"),
            (input("http://[::1]x/"), "target", "other than :PORT"),
            (input("http://u@h/"), "target", "user info"),
            (input("http://a b/"), "target", "characters other than"),
            (input("http://h/a b"), "target", "PATH with spaces"),
            (input("tcp://h:1/x"), "target", "does not take"),
            (
                PlanInput {
                    body_bytes: 10,
                    ..input("tcp://127.0.0.1:1")
                },
                "body_bytes",
                "is for http:// and https:// targets",
            ),
            (
                PlanInput {
                    headers: vec!["A: b".into()],
                    ..input("tcp://127.0.0.1:1")
                },
                "headers",
                "is for http:// and https:// targets",
            ),
            (
                PlanInput {
                    rate_per_s: Some(0.0),
                    ..ok()
                },
                "rate",
                "must be above 0 and finite (requests per second), got 0",
            ),
            (
                PlanInput {
                    rate_per_s: Some(-1.0),
                    ..ok()
                },
                "rate",
                "got -1",
            ),
            (
                PlanInput {
                    rate_per_s: Some(f64::INFINITY),
                    ..ok()
                },
                "rate",
                "got inf",
            ),
            (
                PlanInput {
                    rate_per_s: Some(5.0),
                    closed: true,
                    ..ok()
                },
                "rate",
                "cannot be combined with `closed`",
            ),
            (
                PlanInput {
                    connections: 0,
                    ..ok()
                },
                "connections",
                "must be at least 1, got 0",
            ),
            (
                PlanInput { threads: 0, ..ok() },
                "threads",
                "must be at least 1, got 0",
            ),
            (
                PlanInput {
                    duration: Some(Duration::ZERO),
                    ..ok()
                },
                "duration",
                "must be longer than zero",
            ),
            (
                PlanInput {
                    requests: Some(0),
                    ..ok()
                },
                "requests",
                "must be at least 1, got 0",
            ),
            (
                PlanInput {
                    read_timeout: Duration::ZERO,
                    ..ok()
                },
                "read_timeout",
                "must be longer than zero",
            ),
            (
                PlanInput {
                    connect_timeout: Duration::ZERO,
                    ..ok()
                },
                "connect_timeout",
                "must be longer than zero",
            ),
            (
                PlanInput {
                    mode: Mode::Hold,
                    requests: Some(5),
                    ..ok()
                },
                "requests",
                "must be unset in `mode` hold",
            ),
            (
                PlanInput {
                    method: Some("GE T".into()),
                    ..ok()
                },
                "method",
                "got \"GE T\"",
            ),
            (
                PlanInput {
                    headers: vec!["A: b".into(), "C: d".into(), "nocolon".into()],
                    ..ok()
                },
                "headers[2]",
                "must be 'Name: value'",
            ),
            (
                PlanInput {
                    body_bytes: (1 << 20) + 1,
                    ..ok()
                },
                "body_bytes",
                "must be at most 1048576 (the reference server's request body limit), got 1048577",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /, 1 POST /echo 1048577")),
                    ..ok()
                },
                "mix[1].body_bytes",
                "must be at most 1048576",
            ),
            (
                PlanInput {
                    headers: vec!["X-A: b\r\nX-B: c".into()],
                    ..ok()
                },
                "headers[0]",
                "no CR or LF",
            ),
            (
                PlanInput {
                    headers: vec!["X-A: b\0c".into()],
                    ..ok()
                },
                "headers[0]",
                "no CR or LF",
            ),
            (
                PlanInput {
                    headers: vec!["X-A: b".into(), "content-length: 5".into()],
                    ..ok()
                },
                "headers[1]",
                "must not set Content-Length",
            ),
            (
                PlanInput {
                    headers: vec!["Transfer-Encoding: chunked".into()],
                    ..ok()
                },
                "headers[0]",
                "must not set Content-Length, Transfer-Encoding, Host or Connection",
            ),
            (
                PlanInput {
                    headers: vec!["HOST: elsewhere".into()],
                    ..ok()
                },
                "headers[0]",
                "`target`",
            ),
            (
                PlanInput {
                    headers: vec!["Connection: close".into()],
                    ..ok()
                },
                "headers[0]",
                "`mode`",
            ),
            (
                input("http://127.0.0.1:1/a b"),
                "target",
                "PATH with spaces or control characters",
            ),
            (
                input("http://127.0.0.1:1/a\r\nX: y"),
                "target",
                "PATH with spaces or control characters",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /, 0 GET /")),
                    ..ok()
                },
                "mix[1].weight",
                "must be at least 1, got 0",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /, 4294967295 GET /")),
                    ..ok()
                },
                "mix[1].weight",
                "makes the weights add up to more than 4294967295",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /, 1 G\"T /")),
                    ..ok()
                },
                "mix[1].method",
                "must be an HTTP method token",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /, 1 GET echo")),
                    ..ok()
                },
                "mix[1].path",
                "must start with /",
            ),
            (
                PlanInput {
                    mix: Some(vec![MixEntry {
                        weight: 1,
                        method: "GET".into(),
                        path: "/a b".into(),
                        body_bytes: 0,
                    }]),
                    ..ok()
                },
                "mix[0].path",
                "no spaces",
            ),
            (
                PlanInput {
                    mix: Some(Vec::new()),
                    ..ok()
                },
                "mix",
                "must have at least one entry",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /")),
                    body_bytes: 10,
                    ..ok()
                },
                "body_bytes",
                "cannot be combined with `mix`",
            ),
            (
                PlanInput {
                    mix: Some(mix("1 GET /")),
                    method: Some("GET".into()),
                    ..ok()
                },
                "method",
                "cannot be combined with `mix`",
            ),
            (
                PlanInput {
                    payload: Some(b"x".to_vec()),
                    ..ok()
                },
                "payload",
                "is for tcp:// targets",
            ),
            (
                PlanInput {
                    insecure: true,
                    ..ok()
                },
                "insecure",
                "is for https:// targets",
            ),
            (
                PlanInput {
                    ca_pem: Some(Vec::new()),
                    ..ok()
                },
                "ca",
                "is for https:// targets",
            ),
            (
                input("https://127.0.0.1:1/"),
                "ca",
                "is needed for an https:// target",
            ),
            (
                PlanInput {
                    ca_pem: Some(b"junk".to_vec()),
                    ..input("https://127.0.0.1:1/")
                },
                "ca",
                "must hold PEM certificates",
            ),
            (
                input("tcp://127.0.0.1:1"),
                "expect_bytes",
                "is needed (or `expect_delimiter`) for a tcp:// target",
            ),
            (
                PlanInput {
                    expect_bytes: Some(4),
                    ..input("tcp://127.0.0.1:1")
                },
                "payload",
                "is needed for a tcp:// target",
            ),
            (
                PlanInput {
                    expect_bytes: Some(4),
                    expect_delimiter: Some(b"\n".to_vec()),
                    ..input("tcp://127.0.0.1:1")
                },
                "expect_delimiter",
                "cannot be combined with `expect_bytes`",
            ),
            (
                PlanInput {
                    expect_delimiter: Some(Vec::new()),
                    ..input("tcp://127.0.0.1:1")
                },
                "expect_delimiter",
                "must not be empty",
            ),
            (
                PlanInput {
                    malformed: Some(0.1),
                    mode: Mode::Connect,
                    ..ok()
                },
                "malformed",
                "needs an http:// target",
            ),
            (
                PlanInput {
                    malformed: Some(0.1),
                    ..input("tcp://127.0.0.1:1")
                },
                "malformed",
                "needs an http:// target",
            ),
        ];
        for (input, field, needle) in cases {
            check(input, field, needle);
        }
        for f in [0.0, 0.51, -1.0, f64::NAN] {
            check(
                PlanInput {
                    malformed: Some(f),
                    ..ok()
                },
                "malformed",
                &format!("must be a fraction above 0 and at most 0.5 (e.g. 0.1), got {f}"),
            );
        }
    }

    #[test]
    fn an_error_displays_field_colon_message() {
        let e = Plan::validate(PlanInput {
            rate_per_s: Some(-1.0),
            ..input("http://127.0.0.1:1/")
        })
        .map(|_| ())
        .unwrap_err();
        assert_eq!(e.field(), "rate");
        assert_eq!(
            e.reason(),
            "must be above 0 and finite (requests per second)"
        );
        assert_eq!(e.got(), Some("-1"));
        assert_eq!(
            e.to_string(),
            "rate: must be above 0 and finite (requests per second), got -1"
        );
    }

    #[test]
    fn mix_syntax_round_trips() {
        let list = "8 GET /, 1 POST /echo 1024,\n\n 1   GET /bytes/4096 \n";
        let entries = mix(list);
        assert_eq!(
            entries,
            vec![
                MixEntry {
                    weight: 8,
                    method: "GET".into(),
                    path: "/".into(),
                    body_bytes: 0,
                },
                MixEntry {
                    weight: 1,
                    method: "POST".into(),
                    path: "/echo".into(),
                    body_bytes: 1024,
                },
                MixEntry {
                    weight: 1,
                    method: "GET".into(),
                    path: "/bytes/4096".into(),
                    body_bytes: 0,
                },
            ]
        );
        let written: Vec<String> = entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            written,
            ["8 GET /", "1 POST /echo 1024", "1 GET /bytes/4096"]
        );
        // A mix file: one entry per line.
        assert_eq!(mix(&written.join("\n")), entries);
        assert_eq!(mix(&written.join(", ")), entries);
        assert_eq!(mix(" , \n"), []);
    }

    #[test]
    fn mix_syntax_errors_name_the_entry() {
        for (list, field, needle) in [
            (
                "1 GET /, 1 GET",
                "mix[1]",
                "must be 'WEIGHT METHOD PATH [BODY_BYTES]'",
            ),
            ("1 GET /, 1 GET / 2 3", "mix[1]", "got \"1 GET / 2 3\""),
            (
                ",,x GET /",
                "mix[0].weight",
                "must be a whole number, at least 1, got \"x\"",
            ),
            ("-1 GET /", "mix[0].weight", "got \"-1\""),
            (
                "1 GET /, 2 POST /echo lots",
                "mix[1].body_bytes",
                "must be a byte count, got \"lots\"",
            ),
        ] {
            let e = MixEntry::parse_list(list).expect_err(list);
            assert_eq!(e.field(), field, "{list}: {e}");
            assert!(e.to_string().contains(needle), "{list}: {e}");
        }
    }

    #[test]
    fn a_mix_entry_deserializes_with_body_bytes_defaulting_to_0() {
        let e: MixEntry =
            serde_json::from_str(r#"{"weight": 8, "method": "GET", "path": "/"}"#).unwrap();
        assert_eq!(e, mix("8 GET /")[0]);
        let e: MixEntry = serde_json::from_str(
            r#"{"weight": 1, "method": "POST", "path": "/echo", "body_bytes": 1024}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap()["body_bytes"], 1024);
        assert!(
            serde_json::from_str::<MixEntry>(
                r#"{"weight": 1, "method": "GET", "path": "/", "body": 1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn target_urls_are_checked_offline() {
        let t = TargetUrl::parse("http://example.com/x?y=1").unwrap();
        assert_eq!(
            (
                t.scheme.as_str(),
                t.authority.as_str(),
                t.host.as_str(),
                t.port,
                t.path.as_str()
            ),
            ("http", "example.com", "example.com", 80, "/x?y=1")
        );
        let t = TargetUrl::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (
                t.authority.as_str(),
                t.host.as_str(),
                t.port,
                t.path.as_str()
            ),
            ("[::1]:8443", "[::1]", 8443, "/")
        );
        assert_eq!(TargetUrl::parse("https://h").unwrap().port, 443);
        let t = TargetUrl::parse("tcp://10.0.0.1:6379/").unwrap();
        assert_eq!((t.port, t.path.as_str()), (6379, ""));
        assert_eq!(
            TargetUrl::parse("http://[::1]:9/").unwrap().resolve(),
            Ok("[::1]:9".parse().unwrap())
        );
    }

    /// A host that does not resolve (`.invalid` never does) is a valid
    /// plan; only the lookup fails, naming the target.
    #[test]
    fn a_host_that_does_not_resolve_validates_and_fails_at_resolve() {
        let valid = Plan::validate(input("http://no-such-host.invalid:8080/x")).unwrap();
        assert_eq!(valid.target().unwrap().host, "no-such-host.invalid");
        let e = valid.clone().resolve().unwrap_err();
        assert_eq!(e.field(), "target", "{e}");
        assert!(
            e.to_string()
                .contains("cannot resolve \"no-such-host.invalid\""),
            "{e}"
        );
        assert_eq!(e.got(), Some("\"http://no-such-host.invalid:8080/x\""));
        // With an address supplied, no lookup: the URL still gives the
        // Host header and the path.
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let plan = valid.with_target_addr(addr);
        assert_eq!(plan.target.addr, addr);
        assert_eq!(plan.target.url, "http://no-such-host.invalid:8080/x");
        assert_eq!(
            plan.kinds[0].prepared.wire,
            b"GET /x HTTP/1.1\r\nHost: no-such-host.invalid:8080\r\n\r\n"
        );
        assert!(Plan::new(input("http://no-such-host.invalid/")).is_err());
    }

    /// Without a target the rest is checked for an http:// target, and the
    /// caller's address becomes it.
    #[test]
    fn without_a_target_the_caller_supplies_the_address() {
        let no_target = || PlanInput {
            target: None,
            ..input("")
        };
        check(
            PlanInput {
                connections: 0,
                ..no_target()
            },
            "connections",
            "must be at least 1",
        );
        check(
            PlanInput {
                payload: Some(b"x".to_vec()),
                ..no_target()
            },
            "payload",
            "is for tcp:// targets",
        );
        let valid = Plan::validate(PlanInput {
            malformed: Some(0.1),
            body_bytes: 2,
            ..no_target()
        })
        .unwrap();
        assert_eq!(valid.target(), None);
        let e = valid.clone().resolve().unwrap_err();
        assert_eq!(e.field(), "target", "{e}");
        for (addr, host) in [("127.0.0.1:8080", "127.0.0.1"), ("[::1]:8080", "[::1]")] {
            let plan = valid.clone().with_target_addr(addr.parse().unwrap());
            assert_eq!(plan.target.url, format!("http://{addr}/"));
            assert_eq!(plan.target.scheme, "http");
            assert_eq!(plan.target.host, host);
            let head = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n\r\n");
            assert!(plan.kinds[0].prepared.wire.starts_with(head.as_bytes()));
            let probe = plan.malformed.as_ref().unwrap();
            assert!(
                String::from_utf8_lossy(&probe.probe_head).contains(&format!("Host: {addr}\r\n"))
            );
        }
    }

    #[test]
    fn http_request_bytes() {
        let plan = Plan::new(PlanInput {
            mix: Some(mix("3 GET /bytes/10, 1 POST /echo 4")),
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
