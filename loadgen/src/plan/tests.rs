//! The plan's validation, table by table: every refusal names its field.
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
        assert!(String::from_utf8_lossy(&probe.probe_head).contains(&format!("Host: {addr}\r\n")));
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
    assert!(
        post.wire.starts_with(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 4\r\n\r\n"
        )
    );
    assert_eq!(
        post.expect,
        Expect::Echo(post.wire[post.wire.len() - 4..].to_vec())
    );
}

#[test]
fn trickle_is_for_held_connections_and_segments_for_open_loops() {
    let t = "http://127.0.0.1:1/";
    check(
        PlanInput {
            trickle: Some(Duration::from_millis(100)),
            ..input(t)
        },
        "trickle",
        "is for `mode` hold",
    );
    check(
        PlanInput {
            mode: Mode::Hold,
            closed: true,
            duration: Some(Duration::from_secs(1)),
            trickle: Some(Duration::ZERO),
            ..input(t)
        },
        "trickle",
        "longer than zero",
    );
    check(
        PlanInput {
            rate_per_s: Some(10.0),
            segments: vec![Segment::steady(10.0, Duration::from_secs(1))],
            ..input(t)
        },
        "rate",
        "cannot be combined with `segments`",
    );
    let plan = Plan::new(PlanInput {
        segments: vec![
            Segment::steady(10.0, Duration::from_secs(1)),
            Segment::steady(30.0, Duration::from_secs(2)),
        ],
        ..input(t)
    })
    .unwrap();
    assert_eq!(plan.duration, Some(Duration::from_secs(3)));
    assert!(matches!(plan.load, Load::Open { rate_per_s, .. } if rate_per_s == 30.0));
}
