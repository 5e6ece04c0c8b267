//! The `[server]` keys that secure the reference server a scenario starts,
//! named as `floodgate serve`'s flags are: `tls_cert` + `tls_key` or
//! `tls_self_signed`, `handshake_timeout`, `auth_token_file`, `auth_scope`,
//! `allow`, `per_ip_max_connections`, `per_ip_rate` + `per_ip_burst`. Files
//! are read here, relative to the scenario file's directory, so a bad one is
//! an error at its key; what the run's own clients need to get in (the
//! certificate to trust, the token to send) is kept as a
//! [`ReferenceClient`].

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use floodgate_server::Config as ServerConfig;
use floodgate_server::access::{AuthScope, Rate, Token, parse_network};
use floodgate_server::tls::Tls;

use super::checker::{Checker, Table};
use super::document::{Node, Value};
use super::model::ReferenceClient;

/// The key that turns TLS on in a `[server]` table, if one does.
pub fn tls_key(server: &Node) -> Option<&Node> {
    let on = server
        .get("tls_self_signed")
        .filter(|n| n.value == Value::Boolean(true));
    server.get("tls_cert").or(on)
}

/// Reads the access and TLS keys of `[server]` table `t` into `s`; what
/// the run's clients need is returned. Errors are reported on `c`.
pub fn server_access(c: &mut Checker, t: &Table, s: &mut ServerConfig) -> ReferenceClient {
    let mut client = ReferenceClient::default();
    let base = Path::new(&c.sources.file_name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = |c: &mut Checker, key: &str| -> Option<(PathBuf, &Node)> {
        let n = t.get(key)?;
        let p = c.string(n, &t.field(key), "a file path like \"certs/server.pem\"")?;
        Some((base.join(p), n))
    };
    let (cert, key) = (path(c, "tls_cert"), path(c, "tls_key"));
    tls(c, t, s, &mut client, cert, key);
    if let Some(n) = t.get("handshake_timeout") {
        if let Some(d) = c.duration(n, &t.field("handshake_timeout"), true) {
            match &mut s.tls {
                Some(tls) => tls.handshake_timeout = d,
                None => c.error(
                    &n.span,
                    t.field("handshake_timeout"),
                    "needs tls_cert + tls_key or tls_self_signed = true",
                ),
            }
        }
    }
    if let Some((file, n)) = path(c, "auth_token_file") {
        match floodgate_server::token_file::read_for_header(&file) {
            Err(e) => c.error(&n.span, t.field("auth_token_file"), e),
            Ok(text) => {
                s.access.token = Token::new(text.as_bytes());
                client.bearer = Some(text);
            }
        }
    }
    if let Some(n) = t.get("auth_scope") {
        let field = t.field("auth_scope");
        match c.string(n, &field, "\"all\" or \"admin\"").as_deref() {
            Some("all") => s.access.auth_scope = AuthScope::All,
            Some("admin") => s.access.auth_scope = AuthScope::Admin,
            Some(other) => c.error(
                &n.span,
                field,
                format!("expected \"all\" or \"admin\", found {other:?}"),
            ),
            None => {}
        }
        if t.get("auth_token_file").is_none() {
            c.error(&n.span, t.field("auth_scope"), "needs auth_token_file");
        }
    }
    if let Some(n) = t.get("allow") {
        let field = t.field("allow");
        match &n.value {
            Value::Array(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    let f = format!("{field}[{i}]");
                    if let Some(text) = c.string(item, &f, "a network like \"127.0.0.0/8\"") {
                        match parse_network(&text) {
                            Ok(net) => s.access.allow.push(net),
                            Err(e) => c.error(&item.span, f, e),
                        }
                    }
                }
            }
            _ => c.error(
                &n.span,
                field,
                format!(
                    "expected a list of networks like [\"127.0.0.0/8\", \"::1/128\"], found {}",
                    n.value.found()
                ),
            ),
        }
    }
    if let Some(n) = t.get("per_ip_max_connections") {
        if let Some(v) = c.integer(
            n,
            &t.field("per_ip_max_connections"),
            1,
            u64::from(u32::MAX),
        ) {
            s.access.per_ip_max_connections = NonZeroU32::new(v as u32);
        }
    }
    let rate = t
        .get("per_ip_rate")
        .map(|n| (n, c.rate(n, &t.field("per_ip_rate"), true)));
    let burst = t.get("per_ip_burst").map(|n| {
        let v = c.integer(n, &t.field("per_ip_burst"), 1, u64::from(u32::MAX));
        (n, v.and_then(|v| NonZeroU32::new(v as u32)))
    });
    match (rate, burst) {
        (Some((_, Some(per_s))), Some((_, Some(burst)))) => {
            let n = t.get("per_ip_rate").expect("the rate was read");
            match Rate::per_second(per_s, burst) {
                Some(r) => s.access.per_ip_rate = Some(r),
                None => c.error(
                    &n.span,
                    t.field("per_ip_rate"),
                    "must be more than 0 and at most 1000000/s",
                ),
            }
        }
        (Some((n, _)), None) => c.error(&n.span, t.field("per_ip_rate"), "needs per_ip_burst"),
        (None, Some((n, _))) => c.error(&n.span, t.field("per_ip_burst"), "needs per_ip_rate"),
        _ => {}
    }
    client
}

/// `tls_cert` + `tls_key`, or `tls_self_signed`, into `s.tls`, and the
/// certificate the run's clients trust into `client`.
fn tls(
    c: &mut Checker,
    t: &Table,
    s: &mut ServerConfig,
    client: &mut ReferenceClient,
    cert: Option<(PathBuf, &Node)>,
    key: Option<(PathBuf, &Node)>,
) {
    let self_signed = t
        .get("tls_self_signed")
        .and_then(|n| c.boolean(n, &t.field("tls_self_signed")).map(|b| (b, n)));
    match (cert, key, self_signed) {
        (Some((_, n)), _, Some((true, _))) | (_, Some((_, n)), Some((true, _))) => c.error(
            &n.span,
            t.field("tls_self_signed"),
            "TLS is either tls_cert + tls_key or tls_self_signed = true, not both",
        ),
        (Some((cert, _)), Some((key, n)), _) => {
            match Tls::from_pem_files_with_chain(&cert.to_string_lossy(), &key.to_string_lossy()) {
                Ok((tls, chain)) => {
                    s.tls = Some(tls);
                    client.ca_pem = Some(chain);
                }
                Err(e) => c.error(&n.span, t.field("tls_cert"), e.to_string()),
            }
        }
        (Some((_, n)), None, _) => c.error(&n.span, t.field("tls_cert"), "needs tls_key"),
        (None, Some((_, n)), _) => c.error(&n.span, t.field("tls_key"), "needs tls_cert"),
        (None, None, Some((true, n))) => match Tls::self_signed() {
            Ok(made) => {
                s.tls = Some(made.tls);
                client.ca_pem = Some(made.cert_pem.into_bytes());
            }
            Err(e) => c.error(&n.span, t.field("tls_self_signed"), e.to_string()),
        },
        _ => {}
    }
}
