//! Tests of the access decisions: the allowlist and per-client connection
//! cap at accept, the token and the per-client rate per request (through a
//! real `Connection`), and the bound on per-client state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::memory::Driver;
use crate::{Connection, Limits};

const TOKEN: &[u8] = b"s3cret-token-0123456789";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn access(policy: Policy) -> (Arc<Access>, Instant) {
    let t0 = Instant::now();
    (Arc::new(Access::new(policy, t0)), t0)
}

fn with_token(scope: AuthScope) -> Policy {
    Policy {
        token: Token::new(TOKEN),
        auth_scope: scope,
        ..Policy::default()
    }
}

/// Sends `requests` on one connection from `peer` at `now` and returns the
/// raw output, with the connection's counters.
fn exchange(
    access: &Arc<Access>,
    peer: IpAddr,
    limits: Limits,
    now: Instant,
    requests: &[u8],
) -> (Vec<u8>, Arc<Stats>) {
    let stats = Arc::new(Stats::default());
    let client = access.admit(peer, &stats).expect("admitted");
    let conn = Connection::with_client(limits, stats.clone(), Some(client), now);
    let mut driver = Driver::with_hooks(conn, stats.clone(), now, usize::MAX, ());
    driver.set_eager_writes(true);
    driver.send(requests);
    (driver.output().to_vec(), stats)
}

fn get(path: &str, authorization: Option<&str>) -> Vec<u8> {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").into_bytes()
}

fn statuses(out: &[u8]) -> Vec<u16> {
    let mut rest = out;
    let mut codes = Vec::new();
    while !rest.is_empty() {
        let parsed = crate::response::tests::parse_response(rest, false).expect("parses");
        rest = &rest[parsed.len..];
        codes.push(parsed.status);
    }
    codes
}

#[test]
fn wrong_tokens_of_any_length_get_the_same_401_and_health_needs_none() {
    let (access, t0) = access(with_token(AuthScope::All));
    let peer = ip("127.0.0.1");
    let mut last_byte = TOKEN.to_vec();
    *last_byte.last_mut().unwrap() ^= 1;
    let same_length = "x".repeat(TOKEN.len());
    let wrong = [
        Some(format!("Bearer {same_length}")),
        Some("Bearer short".to_string()),
        Some(format!("Bearer {}", "y".repeat(4000))),
        Some(format!("Bearer {}", String::from_utf8(last_byte).unwrap())),
        Some(format!("Basic {}", String::from_utf8_lossy(TOKEN))),
        Some("Bearer".to_string()),
        None,
    ];
    let mut refusals = Vec::new();
    for auth in &wrong {
        let (out, stats) = exchange(
            &access,
            peer,
            Limits::default(),
            t0,
            &get("/", auth.as_deref()),
        );
        assert_eq!(statuses(&out), [401], "{auth:?}");
        assert_eq!(stats.snapshot().unauthorized, 1);
        refusals.push(out);
    }
    assert!(
        refusals.windows(2).all(|w| w[0] == w[1]),
        "every 401 is the same bytes"
    );
    let text = String::from_utf8(refusals[0].clone()).unwrap();
    assert!(text.contains("\r\nWWW-Authenticate: Bearer\r\n"), "{text}");

    let good = format!("Bearer {}", String::from_utf8_lossy(TOKEN));
    let lower = format!("bearer   {}", String::from_utf8_lossy(TOKEN));
    for auth in [good.as_str(), lower.as_str()] {
        let (out, _) = exchange(&access, peer, Limits::default(), t0, &get("/", Some(auth)));
        assert_eq!(statuses(&out), [200], "{auth}");
    }
    let (out, _) = exchange(&access, peer, Limits::default(), t0, &get("/health", None));
    assert_eq!(statuses(&out), [200]);
    // A second Authorization field, even a right one, is no credential.
    let twice = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: {good}\r\nAuthorization: {good}\r\n\r\n"
    );
    let (out, _) = exchange(&access, peer, Limits::default(), t0, twice.as_bytes());
    assert_eq!(statuses(&out), [401]);
}

#[test]
fn a_refused_request_keeps_the_connection_and_its_body_framing() {
    let (access, t0) = access(with_token(AuthScope::All));
    let good = format!("Bearer {}", String::from_utf8_lossy(TOKEN));
    let mut input = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    input.extend(get("/", Some(&good)));
    let (out, _) = exchange(&access, ip("127.0.0.1"), Limits::default(), t0, &input);
    assert_eq!(statuses(&out), [401, 200]);
}

#[test]
fn admin_scope_leaves_the_rest_open_but_admin_needs_the_token() {
    let (access, t0) = access(with_token(AuthScope::Admin));
    let peer = ip("127.0.0.1");
    let admin = Limits {
        admin: true,
        ..Limits::default()
    };
    let pause = |auth: Option<&str>| {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        format!(
            "POST /admin/pause-accept?ms=1 HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let (out, _) = exchange(&access, peer, admin, t0, &get("/", None));
    assert_eq!(statuses(&out), [200]);
    let (out, _) = exchange(&access, peer, admin, t0, &pause(None));
    assert_eq!(statuses(&out), [401]);
    let (out, _) = exchange(&access, peer, admin, t0, &pause(Some("Bearer nope")));
    assert_eq!(statuses(&out), [401]);
    let good = format!("Bearer {}", String::from_utf8_lossy(TOKEN));
    let (out, _) = exchange(&access, peer, admin, t0, &pause(Some(&good)));
    assert_eq!(statuses(&out), [200]);
    // Without --admin the paths are not there, token or not.
    let (out, _) = exchange(&access, peer, Limits::default(), t0, &pause(None));
    assert_eq!(statuses(&out), [404]);
}

#[test]
fn the_allowlist_judges_ipv4_mapped_peers_by_their_ipv4_address() {
    let stats = Stats::default();
    let (access, _) = access(Policy {
        allow: vec!["127.0.0.2/32".parse().unwrap(), "fd00::/8".parse().unwrap()],
        ..Policy::default()
    });
    for (peer, allowed) in [
        ("127.0.0.1", false),
        ("127.0.0.2", true),
        ("::ffff:127.0.0.1", false),
        ("::ffff:127.0.0.2", true),
        ("::1", false),
        ("fd12::1", true),
    ] {
        let verdict = access.admit(ip(peer), &stats).map(|c| c.peer());
        match allowed {
            true => assert!(verdict.is_ok(), "{peer}"),
            false => assert_eq!(verdict.unwrap_err(), Refusal::NotAllowed, "{peer}"),
        }
    }
    assert_eq!(stats.snapshot().refused_by_allowlist, 3);
    let mapped = access.admit(ip("::ffff:127.0.0.2"), &stats).unwrap();
    assert_eq!(mapped.peer(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
}

#[test]
fn per_ip_connections_refuse_the_excess_of_one_address_only() {
    let stats = Stats::default();
    let (access, _) = access(Policy {
        per_ip_max_connections: NonZeroU32::new(2),
        ..Policy::default()
    });
    let a = ip("127.0.0.2");
    let first = access.admit(a, &stats).unwrap();
    let _second = access.admit(ip("::ffff:127.0.0.2"), &stats).unwrap();
    assert_eq!(
        access.admit(a, &stats).unwrap_err(),
        Refusal::TooManyConnections
    );
    let others: Vec<_> = (3..=5)
        .map(|i| {
            access
                .admit(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)), &stats)
                .unwrap()
        })
        .collect();
    assert_eq!(stats.snapshot().refused_per_ip, 1);
    drop(first);
    let _again = access.admit(a, &stats).unwrap();
    drop(others);
    assert_eq!(
        access.tracked_connections(),
        1,
        "closed addresses leave no entry"
    );
}

#[test]
fn the_rate_limit_answers_429_with_retry_after_and_spares_other_clients() {
    let (access, t0) = access(Policy {
        per_ip_rate: Rate::per_second(1.0, NonZeroU32::new(3).unwrap()),
        ..Policy::default()
    });
    let a = ip("127.0.0.2");
    let four = get("/", None).repeat(4);
    let (out, stats) = exchange(&access, a, Limits::default(), t0, &four);
    assert_eq!(statuses(&out), [200, 200, 200, 429]);
    assert_eq!(stats.snapshot().rate_limited, 1);
    assert_eq!(stats.snapshot().status.get("429"), Some(&1));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\r\nRetry-After: 1\r\n"), "{text}");
    // Another address has its own budget.
    let (out, _) = exchange(&access, ip("127.0.0.3"), Limits::default(), t0, &four);
    assert_eq!(statuses(&out), [200, 200, 200, 429]);
    // One interval later, one more request conforms.
    let later = t0 + Duration::from_millis(1001);
    let (out, _) = exchange(
        &access,
        a,
        Limits::default(),
        later,
        &get("/", None).repeat(2),
    );
    assert_eq!(statuses(&out), [200, 429]);
}

#[test]
fn a_slow_rate_says_how_long_to_wait() {
    let (access, t0) = access(Policy {
        per_ip_rate: Rate::per_second(0.1, NonZeroU32::MIN),
        ..Policy::default()
    });
    let (out, _) = exchange(
        &access,
        ip("10.0.0.1"),
        Limits::default(),
        t0,
        &get("/", None).repeat(2),
    );
    assert_eq!(statuses(&out), [200, 429]);
    assert!(String::from_utf8_lossy(&out).contains("\r\nRetry-After: 10\r\n"));
}

/// Judges one request of `peer` at `now` without a connection.
fn hit(access: &Arc<Access>, stats: &Stats, peer: IpAddr, now: Instant) -> Result<(), Denial> {
    let client = access.admit(peer, stats).unwrap();
    client.judge(Exposure::Other, None, stats, now)
}

fn nth_address(i: u32) -> IpAddr {
    // 127.0.0.0/8 has 2^24 addresses: a sweep over distinct loopback peers.
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | (i & 0x00ff_ffff)))
}

#[test]
fn a_sweep_over_100000_addresses_leaves_the_rate_table_bounded() {
    let stats = Stats::default();
    let (access, t0) = access(Policy {
        per_ip_rate: Rate::per_second(10.0, NonZeroU32::new(5).unwrap()),
        max_tracked_clients: 1000,
        ..Policy::default()
    });
    for i in 0..100_000 {
        // 10 µs apart: the whole sweep is a second, shorter than nothing.
        let now = t0 + Duration::from_micros(u64::from(i) * 10);
        assert_eq!(hit(&access, &stats, nth_address(i), now), Ok(()));
        assert!(access.tracked_rates() <= 1000);
    }
    assert_eq!(access.tracked_rates(), 1000);
    assert_eq!(stats.snapshot().rate_table_full, 99_000);
    // A client the table holds is still limited while the sweep goes on.
    let held = nth_address(0);
    let now = t0 + Duration::from_millis(1000);
    let verdicts: Vec<_> = (0..6).map(|_| hit(&access, &stats, held, now)).collect();
    assert!(verdicts.iter().any(Result::is_err), "{verdicts:?}");
    // Once the burst has refilled (0.6 s), idle entries make room again.
    let later = t0 + Duration::from_secs(10);
    assert_eq!(hit(&access, &stats, ip("10.1.2.3"), later), Ok(()));
    assert!(access.tracked_rates() < 10, "{}", access.tracked_rates());
}

#[test]
fn a_million_distinct_clients_cost_at_most_the_default_table() {
    // Everything the policy allocates, measured on this thread by the
    // counting allocator the test binary installs.
    let (access, live, peak) = crate::fuzzing::alloc::measured(|| {
        let stats = Stats::default();
        let (access, t0) = access(Policy {
            per_ip_rate: Rate::per_second(1.0, NonZeroU32::new(10).unwrap()),
            per_ip_max_connections: NonZeroU32::new(4),
            ..Policy::default()
        });
        for i in 0..1_000_000u32 {
            let peer = IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i)));
            let now = t0 + Duration::from_micros(u64::from(i));
            let client = access.admit(peer, &stats).unwrap();
            let _ = client.judge(Exposure::Other, None, &stats, now);
        }
        access
    });
    assert_eq!(access.tracked_rates(), MAX_TRACKED_CLIENTS);
    assert_eq!(access.tracked_connections(), 0);
    println!("after 1,000,000 distinct clients: {live} heap bytes held, {peak} at most");
    assert!(live <= 3 << 20, "{live}");
    assert!(peak <= 5 << 20, "{peak}");
}

#[test]
fn tokens_are_never_printed() {
    let policy = with_token(AuthScope::All);
    let debug = format!("{policy:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(Token::new(b"").is_none());
}

#[test]
fn rates_out_of_range_are_refused() {
    let one = NonZeroU32::MIN;
    assert!(Rate::per_second(0.0, one).is_none());
    assert!(Rate::per_second(-1.0, one).is_none());
    assert!(Rate::per_second(f64::NAN, one).is_none());
    assert!(Rate::per_second(2e6, one).is_none());
    assert_eq!(
        Rate::per_second(4.0, one).map(|r| r.interval),
        Some(Duration::from_millis(250))
    );
}
