//! [`ValidPlan`]: a plan checked offline whose target is not yet resolved,
//! and the last step to a [`Plan`]: the one name lookup, or an address the
//! caller has, and every request's bytes prepared for that target.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Load, Malformed, MixEntry, Mode, PROBE_TOKEN_LEN, Plan, PlanError, PlanInput, Profile,
    RequestKind, TargetUrl,
};
use crate::http::{Expect, Framing, Prepared};
use crate::malformed::Generator;
use crate::tls::Tls;

/// A plan checked offline ([`Plan::validate`]) with its target not yet
/// resolved: [`ValidPlan::resolve`] or [`ValidPlan::with_target_addr`]
/// gives the [`Plan`]. Nothing is left to refuse but a failed lookup.
#[derive(Debug, Clone)]
pub struct ValidPlan {
    pub(super) target: Option<TargetUrl>,
    pub(super) input: PlanInput,
    pub(super) load: Load,
    pub(super) profile: Option<Profile>,
    pub(super) duration: Option<Duration>,
    pub(super) tls: Option<Tls>,
    pub(super) headers: Vec<(String, String)>,
    /// The method of the one request when there is no mix.
    pub(super) method: String,
    /// A tcp:// target's one request kind.
    pub(super) tcp: Option<RequestKind>,
}

impl ValidPlan {
    /// The target URL as checked; `None` when the caller is to supply the
    /// address ([`ValidPlan::with_target_addr`]).
    pub fn target(&self) -> Option<&TargetUrl> {
        self.target.as_ref()
    }

    /// What each connection slot will do.
    pub fn mode(&self) -> Mode {
        self.input.mode
    }

    /// How long a connect may take.
    pub fn connect_timeout(&self) -> Duration {
        self.input.connect_timeout
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
            profile,
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
            threads: input.threads.min(
                input
                    .shard
                    .map_or(input.connections, |s| s.share(input.connections)),
            ),
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
            profile: profile.map(Arc::new),
            trickle: input.trickle,
            shard: input.shard,
        }
    }
}

/// The request body: a printable pattern that depends on the seed, so a
/// corrupted echo cannot match by accident.
pub fn body_byte(seed: u64, i: usize) -> u8 {
    b'!' + ((i as u64).wrapping_add(seed) % 90) as u8
}

pub(super) fn prepare_http(
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
