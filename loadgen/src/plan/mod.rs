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
//!
//! By file: this one is the input, the plan and the validation; `valid`
//! is [`ValidPlan`] and the preparation of each request's bytes; `mix`,
//! `target` and `profile` (a run of phases' rate profile) are those parts
//! of the input; `error` is [`PlanError`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::http::{Expect, Framing, Prepared};
use crate::malformed::Generator;
use crate::tls::{Tls, TlsError};

mod error;
mod mix;
mod profile;
mod target;
mod valid;

pub use error::PlanError;
pub use mix::{MixEntry, max_body_bytes};
use mix::{check_body_bytes, check_mix};
use profile::check_segments;
pub use profile::{Profile, Segment};
pub use target::TargetUrl;
pub use valid::{ValidPlan, body_byte};

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
    /// An open loop whose rate follows these segments, one after another,
    /// each a phase with books of its own; instead of `rate` and
    /// `duration`.
    pub segments: Vec<Segment>,
    /// `mode` hold: send one byte of a request head that never ends, this
    /// often, on every held connection (slowloris), instead of holding it
    /// silent.
    pub trickle: Option<Duration>,
    /// `--shard i/N`: run only this shard's connection slots (`i`, `i +
    /// N`, … of `connections`), each with the schedule it has in the whole
    /// run, so the N shards together send exactly the unsharded schedule.
    pub shard: Option<Shard>,
}

/// A share of a run; the report's vocabulary.
pub use floodgate_reports::scenario::Shard;

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
    /// The rate over time, when the plan runs phases (`segments`); the
    /// load's `rate_per_s` is then the profile's peak.
    pub profile: Option<Arc<Profile>>,
    /// `mode` hold: a byte of a never-ending request head this often.
    pub trickle: Option<Duration>,
    /// `--shard`: this process runs only the shard's slots. `connections`
    /// and `requests` stay the whole run's, so every slot's schedule is the
    /// one it has unsharded.
    pub shard: Option<Shard>,
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
        let profile = match input.segments.is_empty() {
            true => None,
            false => Some(check_segments(&input)?),
        };
        let load = match (input.rate_per_s, input.closed) {
            _ if profile.is_some() => Load::Open {
                rate_per_s: profile.as_ref().map_or(0.0, Profile::peak_per_s),
                arrival: input.arrival,
            },
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
        if let Some(shard) = input.shard {
            if input.connections < shard.count as usize {
                return Err(PlanError::new(
                    "connections",
                    format!(
                        "must be at least the shard count ({}) under `shard`: each shard runs connection slots of its own",
                        shard.count
                    ),
                )
                .with_got(input.connections));
            }
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
        match (input.mode, input.trickle) {
            (_, Some(Duration::ZERO)) => {
                return Err(PlanError::new("trickle", "must be longer than zero"));
            }
            (Mode::Hold, _) | (_, None) => {}
            (_, Some(_)) => {
                return Err(PlanError::new(
                    "trickle",
                    "is for `mode` hold, whose held connections it trickles a request head on",
                ));
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
        let duration = match (input.duration, input.requests, &profile) {
            (_, _, Some(p)) => Some(p.duration()),
            (None, None, None) => Some(Duration::from_secs(10)),
            (d, _, None) => d,
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
            profile,
            duration,
            tls,
            headers,
            method,
            tcp,
        })
    }

    /// The global indices of the connection slots this process runs: all
    /// of them, or the shard's `index`, `index + count`, ….
    pub fn slots(&self) -> std::iter::StepBy<std::ops::Range<usize>> {
        let (first, step) = self
            .shard
            .map_or((0, 1), |s| (s.index as usize, s.count as usize));
        (first..self.connections).step_by(step)
    }

    /// How many connection slots this process runs.
    pub fn local_connections(&self) -> usize {
        self.shard
            .map_or(self.connections, |s| s.share(self.connections))
    }

    /// The share of the whole run's slots this process runs (1 unsharded):
    /// the share of the rate it is asked for.
    pub fn share(&self) -> f64 {
        self.local_connections() as f64 / self.connections as f64
    }

    /// True when intended send times come from a schedule.
    pub fn is_open(&self) -> bool {
        matches!(self.load, Load::Open { .. })
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

#[cfg(test)]
mod tests;
