//! The `http_sequence` harness: runs a [`Sequence`] against one connection
//! and checks every response against the model's predictions.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use super::build::{Expect, Prediction, Tail, build};
use super::driver::{Clock, Driver, READ_CHUNK, limits_for};
use super::responses::{HeadKnowledge, check_common, show};
use super::sequence::{BYTE_AT_A_TIME_MAX, Delivery, Method, Sequence, Step};
use crate::{Close, Event, Limits};

/// Decodes `data` the way `libfuzzer-sys` hands a typed target its input, and
/// runs [`http_sequence`], so replayed corpus files mean what they meant to
/// the fuzzer.
pub fn http_sequence_bytes(data: &[u8]) {
    if let Ok(sequence) = Sequence::arbitrary_take_rest(Unstructured::new(data)) {
        http_sequence(&sequence);
    }
}

/// Runs a [`Sequence`] against one connection and checks the responses
/// against the model's predictions, then the common properties.
pub fn http_sequence(input: &Sequence) {
    let _show = ShowOnPanic(input);
    // The model predicts keep-alive per request; the per-connection error
    // cap is left to `http_connection` and the unit tests.
    let limits = Limits {
        max_errors_per_connection: u16::MAX,
        ..limits_for(input.limits)
    };
    let mut d = Driver::new(limits, Clock::Scripted, READ_CHUNK);
    let mut expected: Vec<Expect> = Vec::new();
    let mut expected_events: Vec<Event> = Vec::new();
    let mut tail = Tail::Predicting;
    let mut pipelined: Vec<u8> = Vec::new();
    // Time passed in pauses. Once it nears the shortest deadline (the header
    // timeout; the write deadline also runs while the peer does not read),
    // deadlines may change the outcome and the model stops predicting.
    let mut elapsed = Duration::ZERO;
    let mut any_head = false;
    // Whether time has jumped far enough for a write deadline to abort the
    // connection, discarding responses the peer had not read yet.
    let mut time_jumped = false;
    // After a shutdown the request in flight is finished and pipelined ones
    // behind it may go unanswered.
    let mut shut_down = false;

    for step in &input.steps {
        if !matches!(step, Step::Request(_)) && !pipelined.is_empty() {
            d.send(&std::mem::take(&mut pipelined));
        }
        match step {
            Step::Request(request) => {
                let built = build(request, &limits);
                any_head |= request.method == Method::Head;
                if tail == Tail::Predicting && !d.peer_done() {
                    match built.prediction {
                        Prediction::Respond { mut expect, then } => {
                            expect.close = then == Tail::Closed;
                            if let Some(e) = built.event {
                                expected_events.push(e);
                            }
                            expected.push(expect);
                            tail = then;
                        }
                        Prediction::Refuse(statuses) => {
                            expected.push(Expect {
                                statuses,
                                // A refused head may be too broken to
                                // tell HEAD from GET.
                                head: if request.method == Method::Head {
                                    HeadKnowledge::Maybe
                                } else {
                                    HeadKnowledge::No
                                },
                                body: None,
                                length: None,
                                allow: false,
                                close: true,
                            });
                            tail = Tail::Closed;
                        }
                        Prediction::Unknown => tail = Tail::Unknown,
                    }
                }
                pipelined.extend_from_slice(&built.bytes);
                match &request.delivery {
                    Delivery::WithNext => {}
                    Delivery::Whole => d.send(&std::mem::take(&mut pipelined)),
                    Delivery::ByteAtATime => {
                        // The first bytes one at a time, then the rest at
                        // once: a long head a byte at a time costs the
                        // fuzzer more than it teaches it.
                        let all = std::mem::take(&mut pipelined);
                        let (slow, rest) = all.split_at(all.len().min(BYTE_AT_A_TIME_MAX));
                        for b in slow {
                            d.send(std::slice::from_ref(b));
                        }
                        d.send(rest);
                    }
                    Delivery::Split(sizes) => {
                        let all = std::mem::take(&mut pipelined);
                        let mut rest = &all[..];
                        for &size in sizes.iter() {
                            let (now, later) =
                                rest.split_at(usize::from(size.max(1)).min(rest.len()));
                            d.send(now);
                            rest = later;
                        }
                        d.send(rest);
                    }
                }
            }
            Step::Pause(ms) => {
                let by = Duration::from_millis(u64::from(*ms));
                elapsed += by;
                d.advance(by);
            }
            Step::UntilDeadline | Step::Wait(_) | Step::Shutdown => {
                time_jumped = true;
                if tail == Tail::Predicting {
                    tail = Tail::Unknown;
                }
                match step {
                    Step::UntilDeadline => d.until_deadline(),
                    Step::Wait(s) => d.advance(Duration::from_secs(u64::from(*s))),
                    _ => {
                        shut_down = true;
                        d.shutdown();
                    }
                }
            }
            Step::ReadAll => d.peer_reads(usize::MAX),
            Step::ReadSome(n) => d.peer_reads(usize::from(*n)),
            Step::HalfClose => d.half_close(),
        }
        if elapsed >= Duration::from_secs(5) {
            time_jumped = true;
            if tail == Tail::Predicting {
                tail = Tail::Unknown;
            }
        }
    }
    d.send(&pipelined);
    d.settle(input.half_close);
    let outcome = d.finish();

    let head = |i: usize| match expected.get(i) {
        Some(e) => e.head,
        None if any_head => HeadKnowledge::Maybe,
        None => HeadKnowledge::No,
    };
    let stream = check_common(&outcome, head);
    let got = &stream.responses;
    let cut_short = shut_down || time_jumped && outcome.closed == Some(Close::Abort);
    for (i, e) in expected.iter().enumerate() {
        let Some(r) = got.get(i) else {
            if cut_short {
                break;
            }
            panic!(
                "request #{i} got no response ({} responses for {} predicted)\noutput: {:?}",
                got.len(),
                expected.len(),
                show(&outcome.out)
            );
        };
        assert!(
            e.statuses.contains(&r.status),
            "response #{i}: status {}, expected one of {:?}",
            r.status,
            e.statuses
        );
        if let Some(body) = &e.body {
            assert!(
                *r.body == body[..],
                "response #{i}: body {:?}, expected {:?}",
                show(&r.body),
                show(body)
            );
        }
        if let Some(length) = e.length {
            assert_eq!(r.content_length, Some(length), "response #{i}: length");
        }
        if e.allow {
            assert!(r.allow, "response #{i}: 405 without Allow");
        }
        if e.close {
            assert!(
                r.close,
                "response #{i} ({}): no Connection: close",
                r.status
            );
        }
    }
    match tail {
        Tail::Predicting | Tail::Closed => {
            assert!(
                got.len() == expected.len() || cut_short && got.len() < expected.len(),
                "{} responses for {} predicted\noutput: {:?}",
                got.len(),
                expected.len(),
                show(&outcome.out)
            );
            // Requests dropped at a shutdown never make their event.
            let kept = if cut_short { 0 } else { expected_events.len() };
            assert!(
                (kept..=expected_events.len())
                    .any(|k| collapses_to(&expected_events[..k], &outcome.events)),
                "events {:?} for the pauses requested {:?}",
                outcome.events,
                expected_events
            );
        }
        // Later, unpredicted pauses may collapse with predicted ones.
        Tail::Unknown => {}
    }
}

/// Whether `got` is `requested` with runs of pauses requested before the glue
/// polled collapsed into their longest, as the connection documents: each
/// event in `got` is the maximum of a consecutive group of `requested`, the
/// groups covering it in order.
fn collapses_to(requested: &[Event], got: &[Event]) -> bool {
    let pause = |e: &Event| match e {
        Event::PauseAccept(d) => *d,
    };
    // reachable[i][j]: the first i requested make exactly the first j got.
    let mut reachable = vec![vec![false; got.len() + 1]; requested.len() + 1];
    reachable[0][0] = true;
    for i in 0..requested.len() {
        for j in 0..got.len() {
            if !reachable[i][j] {
                continue;
            }
            let mut longest = Duration::ZERO;
            for k in i..requested.len() {
                longest = longest.max(pause(&requested[k]));
                if longest == pause(&got[j]) {
                    reachable[k + 1][j + 1] = true;
                }
            }
        }
    }
    reachable[requested.len()][got.len()]
}

/// Prints the decoded sequence when a check fails, since the raw bytes
/// libFuzzer saves say little about what was sent.
struct ShowOnPanic<'a>(&'a Sequence);

impl Drop for ShowOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("http_sequence input: {:#?}", self.0);
        }
    }
}
