//! From the spanned document to a [`Scenario`]: the top-level keys, the
//! `[server]` and `[defaults]` tables, then each `[[phase]]` (`phase.rs`).
//! Every error is collected, in the text's order and without duplicates
//! (a bad `[defaults]` value is reported once, not once per phase).
//! Offline: nothing is resolved or connected to.

use floodgate_loadgen::plan::{Arrival, MixEntry, TargetUrl};
use floodgate_server::Config as ServerConfig;

use super::access;
use super::checker::{Checker, Table};
use super::diagnostic::{Diagnostic, Sources};
use super::document::{Node, Value};
use super::model::{LoadSettings, ReferenceClient, Scenario};
use super::phase;

/// The keys of the top level.
const ROOT_KEYS: &[&str] = &[
    "name",
    "seed",
    "target",
    "thresholds",
    "max_lag",
    "server",
    "defaults",
    "phase",
];

/// The keys of `[server]`: `floodgate serve`'s flags, but `listen`.
const SERVER_KEYS: &[&str] = &[
    "backlog",
    "accept_delay",
    "max_connections",
    "reuse_port",
    "reuse_address",
    "model",
    "admin",
    "max_requests_per_connection",
    "max_errors_per_connection",
    "header_timeout",
    "idle_timeout",
    "body_timeout",
    "write_timeout",
    "shutdown_grace",
    "max_head_bytes",
    "max_headers",
    "max_body_bytes",
    "tls_cert",
    "tls_key",
    "tls_self_signed",
    "handshake_timeout",
    "auth_token_file",
    "auth_scope",
    "allow",
    "per_ip_max_connections",
    "per_ip_rate",
    "per_ip_burst",
];

/// The load settings `[defaults]` holds and each load phase may override.
pub const LOAD_KEYS: &[&str] = &[
    "connections",
    "threads",
    "arrival",
    "mix",
    "connect_timeout",
    "read_timeout",
];

/// Checks the document; every error at once.
pub fn validate(root: &Node, sources: &Sources) -> Result<Scenario, Vec<Diagnostic>> {
    let mut c = Checker::new(sources);
    let scenario = read(&mut c, root);
    let mut diagnostics = c.diagnostics;
    diagnostics.sort();
    diagnostics.dedup();
    match scenario {
        Some(s) if diagnostics.is_empty() => Ok(s),
        _ => Err(diagnostics),
    }
}

fn read(c: &mut Checker, root: &Node) -> Option<Scenario> {
    let t = c.table(root, "", ROOT_KEYS)?;
    let name = c
        .required(
            &t,
            "name",
            "a scenario needs a name, e.g. name = \"nightly\"",
        )
        .and_then(|n| {
            let s = c.string(n, "name", "a name like \"nightly\"")?;
            if s.trim().is_empty() {
                c.error(&n.span, "name", "must not be empty");
                return None;
            }
            Some(s)
        });
    let max_lag = match t.get("max_lag") {
        None => Some(super::model::DEFAULT_MAX_LAG),
        Some(n) => c.share(n, "max_lag", 1.0, true),
    };
    let seed = t
        .get("seed")
        .map(|n| c.integer(n, "seed", 0, i64::MAX as u64));
    let target = t.get("target").map(|n| {
        let url = c.string(n, "target", "a URL like \"http://127.0.0.1:8080/\"")?;
        match TargetUrl::parse(&url) {
            Ok(_) => Some(url),
            Err(e) => {
                c.error(&n.span, "target", e.message());
                None
            }
        }
    });
    let thresholds = t
        .get("thresholds")
        .map(|n| c.thresholds(n, "thresholds"))
        .unwrap_or_default();
    let server = match t.get("server") {
        Some(n) => server(c, n),
        None => Some((ServerConfig::default(), ReferenceClient::default())),
    };
    let defaults = match t.get("defaults") {
        Some(n) => c
            .table(n, "defaults", LOAD_KEYS)
            .map(|d| load_settings(c, &d, &LoadSettings::default())),
        None => Some(LoadSettings::default()),
    };
    let defaults_table = t.get("defaults");
    let phases = match c.required(
        &t,
        "phase",
        "a scenario needs at least one [[phase]] with a name and a kind",
    ) {
        Some(n) => phase::phases(
            c,
            n,
            defaults_table,
            defaults.as_ref(),
            target.as_ref().and_then(|t| t.as_deref()),
        ),
        None => None,
    };
    // A key that is there but invalid fails the whole; one that is absent
    // takes its default.
    let seed = match seed {
        Some(v) => Some(v?),
        None => None,
    };
    let target = match target {
        Some(v) => Some(v?),
        None => None,
    };
    let (server, reference) = server?;
    if let (Some(tls), None) = (t.get("server").and_then(access::tls_key), &target) {
        let probed = phases
            .iter()
            .flatten()
            .any(|p| matches!(p.kind, super::model::PhaseKind::BacklogProbe(_)));
        if probed {
            c.error(
                &tls.span,
                "server",
                "a backlog-probe phase pauses the reference server through its admin \
                 endpoint in plain HTTP; run the probe in a scenario without TLS",
            );
            return None;
        }
    }
    Some(Scenario {
        name: name?,
        seed,
        target,
        thresholds,
        max_lag: max_lag?,
        server,
        reference,
        phases: phases?,
    })
}

fn server(c: &mut Checker, node: &Node) -> Option<(ServerConfig, ReferenceClient)> {
    let t = c.table(node, "server", SERVER_KEYS)?;
    let before = c.diagnostics.len();
    let mut s = ServerConfig::default();
    let int = |c: &mut Checker, key: &str, min, max| {
        t.get(key)
            .and_then(|n| c.integer(n, &t.field(key), min, max))
    };
    let duration = |c: &mut Checker, key: &str, nonzero| {
        t.get(key)
            .and_then(|n| c.duration(n, &t.field(key), nonzero))
    };
    let bytes = |c: &mut Checker, key: &str| {
        let n = t.get(key)?;
        let v = c.size(n, &t.field(key))?;
        if v == 0 {
            c.error(&n.span, t.field(key), "must be at least 1 byte, found 0");
            return None;
        }
        usize::try_from(v).ok()
    };
    let max_u32 = u64::from(u32::MAX);
    if let Some(v) = int(c, "backlog", 1, max_u32) {
        s.backlog = v as u32;
    }
    if let Some(v) = duration(c, "accept_delay", false) {
        s.accept_delay = (!v.is_zero()).then_some(v);
    }
    if let Some(v) = int(c, "max_connections", 1, max_u32) {
        s.max_connections = Some(v as usize);
    }
    if let Some(n) = t.get("reuse_port") {
        s.reuse_port = c.boolean(n, &t.field("reuse_port")).unwrap_or_default();
    }
    if let Some(n) = t.get("model") {
        let field = t.field("model");
        const MODELS: &str = "\"async\", \"reuseport\" or \"threads\"";
        match c.string(n, &field, MODELS).as_deref() {
            Some("async") => s.model = floodgate_server::Model::Async,
            Some("reuseport") => s.model = floodgate_server::Model::ReusePort,
            Some("threads") => s.model = floodgate_server::Model::Threads,
            Some(other) => c.error(
                &n.span,
                field,
                format!("expected {MODELS}, found {other:?}"),
            ),
            None => {}
        }
    }
    if let Some(n) = t.get("reuse_address") {
        s.reuse_address = c.boolean(n, &t.field("reuse_address")).unwrap_or(true);
    }
    if let Some(v) = int(c, "max_requests_per_connection", 1, max_u32) {
        s.limits.max_requests_per_connection = std::num::NonZeroU32::new(v as u32);
    }
    if let Some(v) = int(c, "max_errors_per_connection", 1, u64::from(u16::MAX)) {
        s.limits.max_errors_per_connection = v as u16;
    }
    if let Some(n) = t.get("admin") {
        s.limits.admin = c.boolean(n, &t.field("admin")).unwrap_or_default();
    }
    let limits = &mut s.limits;
    for (key, slot) in [
        ("header_timeout", &mut limits.header_timeout),
        ("idle_timeout", &mut limits.idle_timeout),
        ("body_timeout", &mut limits.body_timeout),
        ("write_timeout", &mut limits.write_timeout),
    ] {
        if let Some(v) = duration(c, key, true) {
            *slot = v;
        }
    }
    if let Some(v) = duration(c, "shutdown_grace", false) {
        s.shutdown_grace = v;
    }
    if let Some(v) = bytes(c, "max_head_bytes") {
        s.limits.max_head_bytes = v;
    }
    if let Some(v) = bytes(c, "max_body_bytes") {
        s.limits.max_body_bytes = v;
    }
    if let Some(v) = int(c, "max_headers", 1, 10_000) {
        s.limits.max_headers = v as usize;
    }
    let client = access::server_access(c, &t, &mut s);
    if let (floodgate_server::Model::Threads, Some(_), Some(n)) = (s.model, &s.tls, t.get("model"))
    {
        c.error(
            &n.span,
            t.field("model"),
            "\"threads\" serves plain HTTP only; use \"async\" or \"reuseport\" with TLS",
        );
    }
    (c.diagnostics.len() == before).then_some((s, client))
}

/// The load settings of table `t` over `base`. Values that fail to
/// read are reported and left as in `base`, so the plan can still check
/// the rest.
pub fn load_settings(c: &mut Checker, t: &Table, base: &LoadSettings) -> LoadSettings {
    let mut l = base.clone();
    if let Some(n) = t.get("connections") {
        if let Some(v) = c.integer(n, &t.field("connections"), 0, 1_000_000) {
            l.connections = v as usize;
        }
    }
    if let Some(n) = t.get("threads") {
        if let Some(v) = c.integer(n, &t.field("threads"), 0, 1024) {
            l.threads = Some(v as usize);
        }
    }
    if let Some(n) = t.get("arrival") {
        let field = t.field("arrival");
        match c.string(n, &field, "\"uniform\" or \"poisson\"").as_deref() {
            Some("uniform") => l.arrival = Arrival::Uniform,
            Some("poisson") => l.arrival = Arrival::Poisson,
            Some(other) => c.error(
                &n.span,
                field,
                format!("expected \"uniform\" or \"poisson\", found {other:?}"),
            ),
            None => {}
        }
    }
    for key in ["connect_timeout", "read_timeout"] {
        if let Some(n) = t.get(key) {
            if let Some(d) = c.duration(n, &t.field(key), false) {
                match key {
                    "connect_timeout" => l.connect_timeout = d,
                    _ => l.read_timeout = d,
                }
            }
        }
    }
    if let Some(n) = t.get("mix") {
        if let Some(mix) = mix(c, n, &t.field("mix")) {
            l.mix = Some(mix);
        }
    }
    l
}

/// A mix: `[{ weight = 8, method = "GET", path = "/" }, ...]`. Only the
/// types are read here; the plan checks the values.
fn mix(c: &mut Checker, node: &Node, field: &str) -> Option<Vec<MixEntry>> {
    let Value::Array(items) = &node.value else {
        c.error(
            &node.span,
            field,
            format!(
                "expected a list like [{{ weight = 1, method = \"GET\", path = \"/\" }}], found {}",
                node.value.found()
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let Some(e) = c.table(item, &path, &["weight", "method", "path", "body_bytes"]) else {
            ok = false;
            continue;
        };
        let weight = c
            .required(&e, "weight", "each mix entry has a weight, e.g. weight = 1")
            .and_then(|n| c.integer(n, &e.field("weight"), 0, u64::from(u32::MAX)));
        let method = c
            .required(
                &e,
                "method",
                "each mix entry has a method, e.g. method = \"GET\"",
            )
            .and_then(|n| c.string(n, &e.field("method"), "a method like \"GET\""));
        let req_path = c
            .required(&e, "path", "each mix entry has a path, e.g. path = \"/\"")
            .and_then(|n| c.string(n, &e.field("path"), "a path like \"/\""));
        let body_bytes = match e.get("body_bytes") {
            Some(n) => c
                .size(n, &e.field("body_bytes"))
                .and_then(|b| usize::try_from(b).ok()),
            None => Some(0),
        };
        match (weight, method, req_path, body_bytes) {
            (Some(weight), Some(method), Some(path), Some(body_bytes)) => out.push(MixEntry {
                weight: weight as u32,
                method,
                path,
                body_bytes,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
