//! The `[[phase]]` tables: each phase's keys (which depend on its `kind`),
//! its values with units applied, and its thresholds; its load is then
//! checked by the engine's plan (`plan_check`).

use std::collections::HashMap;
use std::time::Duration;

use floodgate_loadgen::plan::{CloseWith, Mode};

use super::checker::{Checker, Table};
use super::document::{Node, Value};
use super::model::{BacklogProbe, FindCapacity, LoadSettings, Phase, PhaseKind};
use super::plan_check::check_plan;
use super::suggest::did_you_mean;
use super::threshold::{Metric, Threshold};
use super::validate::{LOAD_KEYS, load_settings};

/// Keys every phase but `pause` takes.
const COMMON_KEYS: &[&str] = &["name", "kind", "warmup", "abort_on_fail", "thresholds"];

/// The keys of each kind besides the common ones, and whether it takes the
/// load settings.
fn kind_keys(kind: &str) -> (&'static [&'static str], bool) {
    match kind {
        "steady" => (&["rate", "duration"], true),
        "ramp" => (&["from", "to", "duration"], true),
        "closed" => (&["duration", "requests"], true),
        "connect-storm" => (&["rate", "duration", "close_with"], true),
        "hold" => (&["duration", "trickle"], true),
        "malformed" => (&["rate", "fraction", "duration"], true),
        "backlog-probe" => (
            &["connects", "window", "serve_timeout", "check_path"],
            false,
        ),
        "pause" => (&["duration"], false),
        "find-capacity" => (
            &[
                "start",
                "max",
                "growth",
                "step",
                "settle",
                "cooldown",
                "precision",
                "confirm",
                "max_steps",
                "max_duration",
                "slo",
                "mode",
            ],
            true,
        ),
        _ => (&[], false),
    }
}

/// The keys a phase of `kind` takes (every key of every kind when the kind
/// is unknown, so typos are still found).
fn allowed_keys(kind: Option<&str>) -> Vec<&'static str> {
    let mut keys = match kind {
        Some("pause") => vec!["name", "kind"],
        _ => COMMON_KEYS.to_vec(),
    };
    let kinds = match kind {
        Some(k) if PhaseKind::NAMES.contains(&k) => vec![k],
        _ => PhaseKind::NAMES.to_vec(),
    };
    for k in kinds {
        let (own, load) = kind_keys(k);
        let load: &[&str] = if load { LOAD_KEYS } else { &[] };
        for key in own.iter().chain(load) {
            if !keys.contains(key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Reads the `phase` array. `defaults` are the `[defaults]` settings (if
/// they read), `defaults_node` their table, `target` the scenario's valid
/// target URL, for the plan check.
pub fn phases(
    c: &mut Checker,
    node: &Node,
    defaults_node: Option<&Node>,
    defaults: Option<&LoadSettings>,
    target: Option<&str>,
) -> Option<Vec<Phase>> {
    let Value::Array(items) = &node.value else {
        c.error(
            &node.span,
            "phase",
            format!("expected [[phase]] tables, found {}", node.value.found()),
        );
        return None;
    };
    if items.is_empty() {
        c.error(&node.span, "phase", "a scenario needs at least one phase");
        return None;
    }
    let base = defaults.cloned().unwrap_or_default();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut ok = defaults.is_some();
    for (i, item) in items.iter().enumerate() {
        if let Some(n) = item.get("name") {
            if let Value::String(name) = &n.value {
                if let Some(first) = names.insert(name.clone(), i) {
                    c.error(
                        &n.span,
                        format!("phase[{i}].name"),
                        format!(
                            "{name:?} is already the name of phase[{first}]; phase names must be unique"
                        ),
                    );
                }
            }
        }
        let before = c.diagnostics.len();
        let phase = read_phase(c, i, item, &base, defaults_node, target);
        match phase {
            Some(p) if c.diagnostics.len() == before => out.push(p),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_phase(
    c: &mut Checker,
    i: usize,
    node: &Node,
    base: &LoadSettings,
    defaults_node: Option<&Node>,
    target: Option<&str>,
) -> Option<Phase> {
    let path = format!("phase[{i}]");
    let kind_name = match node.get("kind") {
        Some(n) => c
            .string(n, &format!("{path}.kind"), "a phase kind like \"steady\"")
            .and_then(|k| {
                if PhaseKind::NAMES.contains(&k.as_str()) {
                    return Some(k);
                }
                let hint = match did_you_mean(&k, PhaseKind::NAMES) {
                    Some(m) => format!("did you mean \"{m}\"?"),
                    None => format!("kinds are {}", PhaseKind::NAMES.join(", ")),
                };
                c.error(
                    &n.span,
                    format!("{path}.kind"),
                    format!("unknown phase kind {k:?}; {hint}"),
                );
                None
            }),
        None => None,
    };
    // Typos are found against every phase key; a key of another kind is
    // then named as such.
    let t = c.table(node, &path, &allowed_keys(None))?;
    if let Some(kind) = &kind_name {
        let allowed = allowed_keys(Some(kind));
        if let Value::Table(entries) = &node.value {
            for (key, _) in entries {
                if !allowed.contains(&key.name.as_str())
                    && allowed_keys(None).contains(&key.name.as_str())
                {
                    c.error(
                        &key.span,
                        t.field(&key.name),
                        format!(
                            "is not a key of a {kind} phase; it takes {}",
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
    }
    if node.get("kind").is_none() {
        c.error(
            &node.span,
            t.field("kind"),
            format!(
                "missing; a phase has a kind: {}",
                PhaseKind::NAMES.join(", ")
            ),
        );
    }
    let name = c
        .required(&t, "name", "a phase has a name, e.g. name = \"warmup\"")
        .and_then(|n| {
            let s = c.string(n, &t.field("name"), "a name like \"warmup\"")?;
            let fine = !s.is_empty()
                && s.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !fine {
                c.error(
                    &n.span,
                    t.field("name"),
                    format!("must be letters, digits, - and _ (it is used in `--set phase.NAME.KEY`), found {s:?}"),
                );
            }
            Some(s)
        });
    let flag = |c: &mut Checker, key: &str| {
        t.get(key)
            .and_then(|n| c.boolean(n, &t.field(key)))
            .unwrap_or(false)
    };
    let warmup = flag(c, "warmup");
    let abort_on_fail = flag(c, "abort_on_fail");
    let thresholds = t
        .get("thresholds")
        .map(|n| c.thresholds(n, &t.field("thresholds")))
        .unwrap_or_default();
    let kind_name = kind_name?;
    let before = c.diagnostics.len();
    let kind = read_kind(c, &t, &kind_name);
    let (_, takes_load) = kind_keys(&kind_name);
    let load = if takes_load {
        load_settings(c, &t, base)
    } else {
        base.clone()
    };
    let phase = Phase {
        name: name.unwrap_or_default(),
        kind,
        warmup,
        abort_on_fail,
        thresholds,
        load,
    };
    check_thresholds(c, &t, &phase);
    if takes_load {
        check_plan(c, &t, defaults_node, &phase, target, before);
    }
    Some(phase)
}

/// The values of each kind. A value that fails to read is reported and
/// replaced by a valid stand-in, so the plan check still sees the rest.
fn read_kind(c: &mut Checker, t: &Table, kind: &str) -> PhaseKind {
    let needs = |keys: &str| format!("a {kind} phase needs {keys}");
    let duration = |c: &mut Checker, why: &str| {
        c.required(t, "duration", why)
            .and_then(|n| c.duration(n, &t.field("duration"), true))
            .unwrap_or(Duration::from_secs(1))
    };
    let rate = |c: &mut Checker, key: &str, why: &str| {
        c.required(t, key, why)
            .and_then(|n| c.rate(n, &t.field(key), true))
            .unwrap_or(1.0)
    };
    let opt_duration = |c: &mut Checker, key: &str, nonzero: bool| {
        t.get(key)
            .and_then(|n| c.duration(n, &t.field(key), nonzero))
    };
    match kind {
        "steady" => PhaseKind::Steady {
            rate_per_s: rate(c, "rate", &needs("`rate` and `duration`")),
            duration: duration(c, &needs("`rate` and `duration`")),
        },
        "ramp" => {
            let why = needs("`from`, `to` and `duration`");
            let end = |c: &mut Checker, key: &str| {
                c.required(t, key, &why)
                    .and_then(|n| Some((n, c.rate(n, &t.field(key), false)?)))
            };
            let from = end(c, "from");
            let to = end(c, "to");
            if let (Some((_, f)), Some((n, to))) = (from, to) {
                if f == to {
                    c.error(
                        &n.span,
                        t.field("to"),
                        "must differ from `from`; for a constant rate use a steady phase",
                    );
                }
            }
            PhaseKind::Ramp {
                from_per_s: from.map_or(0.0, |(_, r)| r),
                to_per_s: to.map_or(1.0, |(_, r)| r),
                duration: duration(c, &why),
            }
        }
        "closed" => {
            let duration = opt_duration(c, "duration", true);
            let requests = t
                .get("requests")
                .and_then(|n| c.integer(n, &t.field("requests"), 1, u64::MAX));
            if t.get("duration").is_none() && t.get("requests").is_none() {
                c.error(
                    &t.node.span,
                    t.field("duration"),
                    "missing; a closed phase needs `duration`, `requests` or both",
                );
            }
            PhaseKind::Closed { duration, requests }
        }
        "connect-storm" => {
            let why = needs("`rate` and `duration`");
            let close_with = match t.get("close_with") {
                Some(n) => match c
                    .string(n, &t.field("close_with"), "\"fin\" or \"rst\"")
                    .as_deref()
                {
                    Some("fin") | None => CloseWith::Fin,
                    Some("rst") => CloseWith::Rst,
                    Some(other) => {
                        c.error(
                            &n.span,
                            t.field("close_with"),
                            format!("expected \"fin\" or \"rst\", found {other:?}"),
                        );
                        CloseWith::Fin
                    }
                },
                None => CloseWith::Fin,
            };
            PhaseKind::ConnectStorm {
                rate_per_s: rate(c, "rate", &why),
                duration: duration(c, &why),
                close_with,
            }
        }
        "hold" => PhaseKind::Hold {
            duration: duration(c, &needs("`duration` (and holds `connections`)")),
            trickle: opt_duration(c, "trickle", true),
        },
        "malformed" => {
            let why = needs("`fraction` and `duration`");
            let fraction = c
                .required(t, "fraction", &why)
                .and_then(|n| c.share(n, &t.field("fraction"), 0.5, true))
                .unwrap_or(0.1);
            PhaseKind::Malformed {
                rate_per_s: t
                    .get("rate")
                    .and_then(|n| c.rate(n, &t.field("rate"), true)),
                fraction,
                duration: duration(c, &why),
            }
        }
        "backlog-probe" => {
            let connects = t
                .get("connects")
                .and_then(|n| c.integer(n, &t.field("connects"), 2, MAX_CONNECTS));
            let window = match t.get("window") {
                Some(n) => match c.duration(n, &t.field("window"), true) {
                    Some(w) if (WINDOW_MIN..=WINDOW_MAX).contains(&w) => w,
                    Some(w) => {
                        c.error(
                            &n.span,
                            t.field("window"),
                            format!(
                                "must be from 10ms to 950ms (inside the first 1 s SYN timeout), found {w:?}"
                            ),
                        );
                        WINDOW_MAX
                    }
                    None => WINDOW_MAX,
                },
                None => Duration::from_millis(900),
            };
            let check_path = match t.get("check_path") {
                Some(n) => {
                    let p = c.string(n, &t.field("check_path"), "a path like \"/health\"");
                    if let Some(p) = p.as_ref().filter(|p| !p.starts_with('/')) {
                        c.error(
                            &n.span,
                            t.field("check_path"),
                            format!("must start with /, found {p:?}"),
                        );
                    }
                    p.unwrap_or_default()
                }
                None => "/health".to_string(),
            };
            PhaseKind::BacklogProbe(BacklogProbe {
                connects: connects.map(|n| n as usize),
                window,
                serve_timeout: opt_duration(c, "serve_timeout", true)
                    .unwrap_or(Duration::from_secs(5)),
                check_path,
            })
        }
        "pause" => PhaseKind::Pause {
            duration: duration(c, &needs("`duration`")),
        },
        _ => PhaseKind::FindCapacity(find_capacity(c, t)),
    }
}

/// The probe's own bounds (`floodgate probe backlog`): at most 5000
/// connects, and a window inside the first SYN retransmission timeout.
const MAX_CONNECTS: u64 = 5000;
const WINDOW_MIN: Duration = Duration::from_millis(10);
const WINDOW_MAX: Duration = Duration::from_millis(950);

fn find_capacity(c: &mut Checker, t: &Table) -> FindCapacity {
    let why = "a find-capacity phase needs `start`, `max`, `step` and `slo`";
    let rate = |c: &mut Checker, key: &str| {
        c.required(t, key, why)
            .and_then(|n| Some((n, c.rate(n, &t.field(key), true)?)))
    };
    let start = rate(c, "start");
    let max = rate(c, "max");
    if let (Some((_, s)), Some((n, m))) = (start, max) {
        if m <= s {
            c.error(
                &n.span,
                t.field("max"),
                format!("must be above `start` ({s}/s), found {m}/s"),
            );
        }
    }
    let duration = |c: &mut Checker, key: &str, nonzero: bool, default: Duration| {
        t.get(key)
            .and_then(|n| c.duration(n, &t.field(key), nonzero))
            .unwrap_or(default)
    };
    let step = c
        .required(t, "step", why)
        .and_then(|n| c.duration(n, &t.field("step"), true))
        .unwrap_or(Duration::from_secs(1));
    let precision = t
        .get("precision")
        .and_then(|n| c.share(n, &t.field("precision"), 1.0, false))
        .unwrap_or(0.05);
    let int = |c: &mut Checker, key: &str, min, max, default| {
        t.get(key)
            .and_then(|n| c.integer(n, &t.field(key), min, max))
            .unwrap_or(default) as u32
    };
    let slo = match c.required(t, "slo", why) {
        Some(n) => {
            let slo = c.thresholds(n, &t.field("slo"));
            if matches!(&n.value, Value::Array(a) if a.is_empty()) {
                c.error(
                    &n.span,
                    t.field("slo"),
                    "must hold at least one threshold, e.g. [\"latency.p99 < 10ms\"]",
                );
            }
            slo
        }
        None => Vec::new(),
    };
    let mode = match t.get("mode") {
        Some(n) => match c
            .string(n, &t.field("mode"), "\"requests\" or \"connect\"")
            .as_deref()
        {
            Some("requests") | None => Mode::Requests,
            Some("connect") => Mode::Connect,
            Some(other) => {
                c.error(
                    &n.span,
                    t.field("mode"),
                    format!("expected \"requests\" or \"connect\", found {other:?}"),
                );
                Mode::Requests
            }
        },
        None => Mode::Requests,
    };
    FindCapacity {
        start_per_s: start.map_or(1.0, |(_, r)| r),
        max_per_s: max.map_or(2.0, |(_, r)| r),
        growth: t
            .get("growth")
            .and_then(|n| c.factor(n, &t.field("growth")))
            .unwrap_or(2.0),
        step,
        settle: duration(c, "settle", false, Duration::from_secs(2)),
        cooldown: duration(c, "cooldown", false, Duration::from_secs(2)),
        precision,
        confirm: int(c, "confirm", 0, 100, 1),
        max_steps: int(c, "max_steps", 1, 1000, 12),
        max_duration: t
            .get("max_duration")
            .and_then(|n| c.duration(n, &t.field("max_duration"), true)),
        slo,
        mode,
    }
}

/// Thresholds that cannot apply to this phase: a result another kind of
/// phase measures, or a window longer than what it covers.
fn check_thresholds(c: &mut Checker, t: &Table, phase: &Phase) {
    let lists: Vec<(&str, &[Threshold], Option<Duration>)> = match &phase.kind {
        PhaseKind::FindCapacity(f) => vec![
            ("thresholds", &phase.thresholds, None),
            ("slo", &f.slo, Some(f.step)),
        ],
        _ => vec![("thresholds", &phase.thresholds, phase.planned_duration())],
    };
    for (key, list, covers) in lists {
        let Some(Value::Array(nodes)) = t.get(key).map(|n| &n.value) else {
            continue;
        };
        // Only thresholds that parsed are in `list`; match them to their
        // nodes by text.
        for (j, node) in nodes.iter().enumerate() {
            let Value::String(text) = &node.value else {
                continue;
            };
            let Some(th) = list.iter().find(|th| &th.text == text) else {
                continue;
            };
            let field = format!("{}[{j}]", t.field(key));
            let measured_by = match th.metric {
                Metric::Capacity => Some("find-capacity"),
                Metric::ProbeCapacity => Some("backlog-probe"),
                _ => None,
            };
            let in_slo = key == "slo";
            if let Some(kind) = measured_by {
                if in_slo {
                    c.error(
                        &node.span,
                        field.clone(),
                        format!(
                            "{} is the result of a whole {kind} phase, not something a step can hold",
                            th.metric
                        ),
                    );
                } else if phase.kind.name() != kind {
                    c.error(
                        &node.span,
                        field.clone(),
                        format!("{} is measured only by a {kind} phase", th.metric),
                    );
                }
            }
            if let (Some(over), Some(covers)) = (th.over, covers) {
                if over > covers {
                    let what = if in_slo { "step" } else { "phase" };
                    c.error(
                        &node.span,
                        field,
                        format!("the window ({over:?}) is longer than the {what} ({covers:?})"),
                    );
                }
            }
        }
    }
}
