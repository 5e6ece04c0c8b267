//! The `http_connection` harness: raw bytes, with input-chosen splits,
//! deadlines, reads, shutdown and half-close, run with time moving and
//! twice with time frozen, which must agree.

use std::time::Duration;

use super::driver::{Clock, Driver, FUZZ_TOKEN, Outcome, READ_CHUNK, limits_for, policy_for};
use super::responses::{HeadKnowledge, check_common, show};
use crate::Limits;
use crate::access::AuthScope;

/// Raw bytes into one connection. Layout: byte 0 chooses the limits,
/// whether the peer half-closes at the end, and (bits 4 and 5) the access
/// policy the connection judges each request by; byte 1 is the number `n` of
/// script bytes that follow; the rest is the byte stream the peer sends.
/// Each script byte is one step: send the next 1-64 or 64-4096 bytes, let
/// time pass (a little, seconds, or to the next deadline), call
/// `handle_timeout` early, read some or all output, shut down, or half-close.
/// Bytes the script does not send are sent at the end.
///
/// The script runs once with time moving. Then the stream runs twice with
/// time frozen, once split as the script says and once in reads as large as
/// the glue makes: both must give identical output, events, close and
/// counters. With a policy, no more requests pass its rate than its burst
/// and the time that passed allow, and where the token is needed on every
/// endpoint but /health and the input holds neither the token nor
/// "health", every request is refused (401, or 429 first).
pub fn http_connection(data: &[u8]) {
    let (config, script, stream) = match data {
        [config, n, rest @ ..] => {
            let n = usize::from(*n).min(rest.len());
            (*config, &rest[..n], &rest[n..])
        }
        _ => return,
    };
    let limits = limits_for(config);
    let policy = config >> 4 & 3;
    let half_close = config & 4 != 0;
    let maybe_head = if contains(stream, b"HEAD") {
        HeadKnowledge::Maybe
    } else {
        HeadKnowledge::No
    };

    // Runs that would repeat one already made are skipped: without steps
    // that move time, shut down or half-close, the scripted run is the
    // frozen split run; without any script, the split run is the whole one.
    let moves_time = script.iter().any(|&step| {
        let arg = (step >> 2) & 3;
        (step & 3 == 2 && arg != 0) || (step & 3 == 3 && arg >= 2)
    });
    let run = |clock, script| run_script(limits, policy, clock, script, stream, half_close);
    // Every request needs the token, and the input cannot present it.
    let all_refused = matches!(policy_for(policy), Some(p) if p.auth_scope == AuthScope::All)
        && !contains(stream, FUZZ_TOKEN)
        && !contains(stream, b"health");
    let check = |o: &Outcome| {
        check_common(o, |_| maybe_head);
        let [requests, .., unauthorized, rate_limited] = o.counters;
        assert!(
            !all_refused || requests == unauthorized + rate_limited,
            "{requests} requests without the token, but only {unauthorized} refused with 401 \
             and {rate_limited} with 429\noutput: {:?}",
            show(&o.out)
        );
    };
    let scripted = run(Clock::Scripted, script);
    check(&scripted);
    if script.is_empty() {
        return;
    }
    let split = if moves_time {
        run(Clock::Frozen, script)
    } else {
        scripted
    };
    let whole = run(Clock::Frozen, &[]);
    check(&whole);
    assert!(
        split == whole,
        "the same bytes split differently gave different results\n\
         split: {:?}\nwhole: {:?}\nsplit output: {:?}\nwhole output: {:?}",
        (split.closed, &split.events, split.counters),
        (whole.closed, &whole.events, whole.counters),
        show(&split.out),
        show(&whole.out),
    );
}

fn run_script(
    limits: Limits,
    policy: u8,
    clock: Clock,
    script: &[u8],
    stream: &[u8],
    half_close: bool,
) -> Outcome {
    let mut d = Driver::with_policy(limits, policy_for(policy), clock, READ_CHUNK);
    let mut rest = stream;
    for &step in script {
        if d.is_closed() {
            break;
        }
        let arg = usize::from(step >> 2);
        match step & 3 {
            0 | 1 => {
                let len = if step & 3 == 0 {
                    arg + 1
                } else {
                    (arg + 1) * 64
                };
                let (now, later) = rest.split_at(len.min(rest.len()));
                d.send(now);
                rest = later;
            }
            2 => match arg & 3 {
                0 => d.early_timeout(),
                1 => d.advance(Duration::from_millis(100 * (arg as u64 >> 2))),
                2 => d.until_deadline(),
                _ => d.advance(Duration::from_secs(arg as u64 >> 2)),
            },
            _ => match arg & 3 {
                0 => d.peer_reads(usize::MAX),
                1 => d.peer_reads((arg >> 2) * 16 + 1),
                // Shutdown and a mid-stream half-close change what the peer
                // may expect, so they only happen with time moving; the
                // frozen runs compare splits alone.
                2 if clock == Clock::Scripted => d.shutdown(),
                3 if clock == Clock::Scripted => {
                    rest = &[];
                    d.half_close();
                }
                _ => {}
            },
        }
    }
    d.send(rest);
    d.settle(half_close);
    d.finish()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
