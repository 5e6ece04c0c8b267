//! The search driven against fake servers of known capacity: a step passes
//! iff its rate is at most the server's capacity, unless a test says
//! otherwise.

use std::time::Duration;

use floodgate_loadgen::plan::Mode;

use super::{CapacityResult, Search, Step, StepVerdict, Stopped, rate};
use crate::scenario::model::FindCapacity;

const SLOW: &str = "latency.p99 < 10ms measured 14.2 ms";
const LAGGED: &str = "the generator lagged on 3% of requests";

fn spec(start: f64, max: f64, growth: f64, precision: f64) -> FindCapacity {
    FindCapacity {
        start_per_s: start,
        max_per_s: max,
        growth,
        step: Duration::from_secs(10),
        settle: Duration::from_secs(2),
        cooldown: Duration::from_secs(2),
        precision,
        confirm: 1,
        max_steps: 100,
        max_duration: None,
        slo: Vec::new(),
        mode: Mode::Requests,
    }
}

/// The example phase: 1k/s to 500k/s, 5%, the default growth,
/// confirm and max_steps.
fn nightly() -> FindCapacity {
    FindCapacity {
        max_steps: 12,
        ..spec(1_000.0, 500_000.0, 2.0, 0.05)
    }
}

fn fail() -> StepVerdict {
    StepVerdict::Fail { why: SLOW.into() }
}

/// A server that holds `capacity` and no more, every time.
fn knee(capacity: f64) -> impl FnMut(usize, Step) -> StepVerdict {
    move |_, step| {
        if step.rate_per_s <= capacity {
            StepVerdict::Pass
        } else {
            fail()
        }
    }
}

/// Runs the search to its end against `server` (given each step's index
/// and the step), checking on the way what holds for every search: a step
/// is asked for again until it is recorded, every rate is within
/// `[start, max]`, and no more than `max_steps` steps run.
fn drive(
    spec: &FindCapacity,
    mut server: impl FnMut(usize, Step) -> StepVerdict,
) -> CapacityResult {
    let mut search = Search::new(spec);
    let mut i = 0;
    while let Some(step) = search.next_step() {
        assert_eq!(
            search.next_step(),
            Some(step),
            "next without record changed"
        );
        assert!(
            step.rate_per_s >= spec.start_per_s && step.rate_per_s <= spec.max_per_s,
            "step {i} at {}/s is outside [{}, {}]",
            step.rate_per_s,
            spec.start_per_s,
            spec.max_per_s
        );
        assert!(i < spec.max_steps as usize, "step {i} is past max_steps");
        let verdict = server(i, step);
        search.record(step, verdict);
        i += 1;
    }
    assert_eq!(search.next_step(), None, "a search over stays over");
    let result = search.result();
    assert_eq!(result.steps.len(), i);
    result
}

fn rates(result: &CapacityResult) -> Vec<(f64, bool)> {
    result
        .steps
        .iter()
        .map(|(s, _)| (s.rate_per_s, s.confirm))
        .collect()
}

#[test]
fn finds_a_known_capacity_within_precision() {
    let knees = [
        1_000.0, 1_020.0, 3_333.0, 7_777.7, 99_999.0, 250_000.0, 499_000.0,
    ];
    for capacity in knees {
        for start in [100.0, 1_000.0] {
            for growth in [1.5, 2.0, 3.0] {
                for precision in [0.01, 0.05, 0.15] {
                    let spec = spec(start, 500_000.0, growth, precision);
                    let r = drive(&spec, knee(capacity));
                    let case = format!("C {capacity} start {start} growth {growth} p {precision}");
                    let found = r
                        .finding
                        .capacity_per_s
                        .unwrap_or_else(|| panic!("{case}: none"));
                    let first_fail = r
                        .finding
                        .first_fail_per_s
                        .unwrap_or_else(|| panic!("{case}"));
                    assert!(found <= capacity, "{case}: found {found}");
                    assert!(first_fail > capacity, "{case}: first fail {first_fail}");
                    assert!(
                        first_fail - found <= precision * found,
                        "{case}: bracket {found}..{first_fail} is wider than precision"
                    );
                    assert_eq!(r.finding.last_pass_per_s, Some(found), "{case}");
                    assert_eq!(r.finding.first_fail_why.as_deref(), Some(SLOW), "{case}");
                    let last = r.steps.last().map(|(s, v)| (s.rate_per_s, s.confirm, v));
                    assert_eq!(last, Some((found, true, &StepVerdict::Pass)), "{case}");
                    assert!(
                        !r.finding.unstable && !r.finding.generator_bound && !r.finding.reached_max,
                        "{case}"
                    );
                    assert_eq!(r.stopped, None, "{case}");
                }
            }
        }
    }
}

#[test]
fn grows_then_bisects_then_confirms() {
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), knee(5_000.0));
    let explore = |rate| (rate, false);
    assert_eq!(
        rates(&r),
        [
            explore(1_000.0),
            explore(2_000.0),
            explore(4_000.0),
            explore(8_000.0),
            explore(6_000.0),
            explore(5_000.0),
            explore(5_500.0),
            explore(5_250.0),
            (5_000.0, true),
        ]
    );
    assert_eq!(r.finding.capacity_per_s, Some(5_000.0));
    assert_eq!(r.finding.last_pass_per_s, Some(5_000.0));
    assert_eq!(r.finding.first_fail_per_s, Some(5_250.0));
    assert_eq!(
        r.summary(),
        format!(
            "capacity 5,000 req/s (bracket 5,000–5,250/s, 9 steps); \
             first failing step 5,250/s: {SLOW}"
        )
    );
}

#[test]
fn a_failing_start_gives_no_capacity() {
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), knee(500.0));
    assert_eq!(rates(&r), [(1_000.0, false)]);
    assert_eq!(r.finding.capacity_per_s, None);
    assert_eq!(r.finding.last_pass_per_s, None);
    assert_eq!(r.finding.first_fail_per_s, Some(1_000.0));
    assert_eq!(r.finding.first_fail_why.as_deref(), Some(SLOW));
    assert_eq!(r.stopped, None);
    assert_eq!(
        r.summary(),
        format!(
            "no capacity: the first rate, 1,000/s, failed (1 step); \
             first failing step 1,000/s: {SLOW}"
        )
    );
}

#[test]
fn max_passing_is_reached_max_and_clamps_the_last_growth_step() {
    let r = drive(&spec(1_000.0, 10_000.0, 3.0, 0.05), knee(1e9));
    assert_eq!(
        rates(&r),
        [
            (1_000.0, false),
            (3_000.0, false),
            (9_000.0, false),
            (10_000.0, false),
            (10_000.0, true),
        ]
    );
    assert!(r.finding.reached_max);
    assert_eq!(r.finding.capacity_per_s, Some(10_000.0));
    assert_eq!(r.finding.first_fail_per_s, None);
    assert_eq!(r.summary(), "at least 10,000 req/s (max reached, 5 steps)");
}

#[test]
fn a_failed_confirm_becomes_the_first_fail_and_the_search_goes_below_it() {
    // Holds 5,000/s, except that the first confirm of 5,000/s fails.
    let mut confirms = 0;
    let server = |_, step: Step| {
        if step.confirm && step.rate_per_s == 5_000.0 {
            confirms += 1;
            if confirms == 1 {
                return fail();
            }
        }
        knee(5_000.0)(0, step)
    };
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), server);
    let tail: Vec<_> = rates(&r).into_iter().skip(8).collect();
    assert_eq!(
        tail,
        [
            (5_000.0, true),
            (4_500.0, false),
            (4_750.0, false),
            (4_875.0, false),
            (4_875.0, true),
        ]
    );
    assert_eq!(r.finding.capacity_per_s, Some(4_875.0));
    assert_eq!(r.finding.first_fail_per_s, Some(5_000.0));
    assert_eq!(r.finding.first_fail_why.as_deref(), Some(SLOW));
    // Passing and failing at the same rate is flaky, not a higher rate
    // passing above a lower fail.
    assert!(!r.finding.unstable);
}

#[test]
fn a_pass_refuted_by_its_confirm_is_not_the_capacity() {
    // confirm = 2: the second confirm of 5,000/s fails, so 5,000/s is not
    // confirmed though it passed twice.
    let mut confirms = 0;
    let server = |_, step: Step| {
        if step.confirm && step.rate_per_s == 5_000.0 {
            confirms += 1;
            if confirms == 2 {
                return fail();
            }
        }
        knee(5_000.0)(0, step)
    };
    let spec = FindCapacity {
        confirm: 2,
        ..spec(1_000.0, 500_000.0, 2.0, 0.05)
    };
    let r = drive(&spec, server);
    assert_eq!(r.finding.capacity_per_s, Some(4_875.0));
    let confirms: Vec<_> = rates(&r).into_iter().filter(|s| s.1).collect();
    assert_eq!(
        confirms,
        [
            (5_000.0, true),
            (5_000.0, true),
            (4_875.0, true),
            (4_875.0, true)
        ]
    );
}

#[test]
fn a_failed_confirm_of_the_start_leaves_no_capacity() {
    let server = |_, step: Step| {
        if step.confirm {
            fail()
        } else {
            StepVerdict::Pass
        }
    };
    let r = drive(&spec(1_000.0, 1_500.0, 2.0, 0.5), server);
    assert_eq!(
        rates(&r),
        [
            (1_000.0, false),
            (1_500.0, false),
            (1_500.0, true),
            (1_000.0, true)
        ]
    );
    assert_eq!(r.finding.capacity_per_s, None);
    assert_eq!(r.finding.last_pass_per_s, None);
    assert_eq!(r.finding.first_fail_per_s, Some(1_000.0));
    assert!(!r.finding.reached_max);
}

#[test]
fn a_lower_fail_after_a_higher_pass_is_unstable() {
    // Holds 5,000/s until its first confirm fails, then only 4,200/s: the
    // bisection's 4,500/s and 4,250/s fail below 5,000/s that passed.
    let mut degraded = false;
    let server = |_, step: Step| {
        if step.confirm && step.rate_per_s == 5_000.0 {
            degraded = true;
            return fail();
        }
        knee(if degraded { 4_200.0 } else { 5_000.0 })(0, step)
    };
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), server);
    assert!(r.finding.unstable);
    assert_eq!(r.finding.first_fail_per_s, Some(4_250.0));
    assert_eq!(r.finding.capacity_per_s, Some(4_125.0));
    assert!(r.summary().contains("unstable"), "{}", r.summary());
}

#[test]
fn inconclusive_steps_bound_the_search_and_mark_it_generator_bound() {
    // The server holds anything; the generator cannot send above 4,000/s.
    let server = |_, step: Step| {
        if step.rate_per_s > 4_000.0 {
            StepVerdict::Inconclusive { why: LAGGED.into() }
        } else {
            StepVerdict::Pass
        }
    };
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), server);
    assert_eq!(
        rates(&r),
        [
            (1_000.0, false),
            (2_000.0, false),
            (4_000.0, false),
            (8_000.0, false),
            (6_000.0, false),
            (5_000.0, false),
            (4_500.0, false),
            (4_250.0, false),
            (4_125.0, false),
            (4_000.0, true),
        ]
    );
    assert!(r.finding.generator_bound);
    assert_eq!(r.finding.capacity_per_s, Some(4_000.0));
    assert_eq!(r.finding.first_fail_per_s, None);
    assert!(!r.finding.reached_max);
    assert_eq!(
        r.summary(),
        format!(
            "at least 4,000 req/s (generator-bound, 10 steps); \
             inconclusive at 4,125/s: {LAGGED}"
        )
    );
}

#[test]
fn an_inconclusive_step_below_the_first_fail_is_generator_bound() {
    // The server holds 5,000/s; the generator cannot send above 4,500/s.
    let server = |i, step: Step| {
        if step.rate_per_s > 4_500.0 && step.rate_per_s <= 5_000.0 {
            StepVerdict::Inconclusive { why: LAGGED.into() }
        } else {
            knee(5_000.0)(i, step)
        }
    };
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), server);
    assert!(r.finding.generator_bound);
    assert_eq!(r.finding.first_fail_per_s, Some(6_000.0));
    let found = r
        .finding
        .capacity_per_s
        .expect("a pass below the generator's limit");
    assert!(found <= 4_500.0);
    assert!(r.summary().starts_with("at least "), "{}", r.summary());
}

#[test]
fn an_inconclusive_start_gives_no_capacity() {
    let server = |_, _| StepVerdict::Inconclusive { why: LAGGED.into() };
    let r = drive(&spec(1_000.0, 500_000.0, 2.0, 0.05), server);
    assert_eq!(r.steps.len(), 1);
    assert_eq!(r.finding.capacity_per_s, None);
    assert_eq!(r.finding.first_fail_per_s, None);
    assert!(r.finding.generator_bound);
    assert!(
        r.summary()
            .starts_with("no capacity: the generator could not hold 1,000/s"),
        "{}",
        r.summary()
    );
}

#[test]
fn max_steps_bounds_every_step_including_confirms() {
    for max_steps in 0..=20 {
        let spec = FindCapacity {
            max_steps,
            ..spec(1_000.0, 500_000.0, 2.0, 0.05)
        };
        let r = drive(&spec, knee(100_000.0));
        assert!(r.steps.len() <= max_steps as usize, "max_steps {max_steps}");
        // The whole search takes 8 growth, 4 bisection and 1 confirm step.
        if max_steps < 13 {
            assert_eq!(r.stopped, Some(Stopped::MaxSteps), "max_steps {max_steps}");
            assert_eq!(r.steps.len(), max_steps as usize, "max_steps {max_steps}");
        } else {
            assert_eq!(r.stopped, None, "max_steps {max_steps}");
            assert_eq!(r.steps.len(), 13, "max_steps {max_steps}");
        }
    }
}

#[test]
fn a_search_cut_short_by_max_steps_spends_its_last_step_confirming() {
    // The example phase against a 100k/s server needs 13 steps;
    // with 12 it confirms a coarser pass (96k/s) rather than none.
    let r = drive(&nightly(), knee(100_000.0));
    assert_eq!(r.steps.len(), 12);
    assert_eq!(r.stopped, Some(Stopped::MaxSteps));
    let last = r.steps.last().expect("steps ran");
    assert!(last.0.confirm && last.1 == StepVerdict::Pass);
    let found = r.finding.capacity_per_s.expect("a confirmed capacity");
    assert_eq!(Some(found), r.finding.last_pass_per_s);
    assert_eq!(found, 96_000.0);
    assert!(r.summary().ends_with("; stopped early: max_steps reached"));
}

#[test]
fn one_step_cannot_confirm_anything() {
    let spec = FindCapacity {
        max_steps: 1,
        ..spec(1_000.0, 500_000.0, 2.0, 0.05)
    };
    let r = drive(&spec, knee(100_000.0));
    assert_eq!(rates(&r), [(1_000.0, false)]);
    assert_eq!(r.finding.capacity_per_s, None);
    assert_eq!(r.finding.last_pass_per_s, Some(1_000.0));
    assert_eq!(r.stopped, Some(Stopped::MaxSteps));
    assert_eq!(
        r.summary(),
        "no confirmed capacity: the best pass, 1,000/s, was not confirmed (1 step); \
         stopped early: max_steps reached"
    );
}

#[test]
fn confirm_zero_takes_the_best_pass_as_it_is() {
    let spec = FindCapacity {
        confirm: 0,
        ..spec(1_000.0, 500_000.0, 2.0, 0.05)
    };
    let r = drive(&spec, knee(5_000.0));
    assert!(r.steps.iter().all(|(s, _)| !s.confirm));
    assert_eq!(r.steps.len(), 8);
    assert_eq!(r.finding.capacity_per_s, Some(5_000.0));
}

#[test]
fn stop_ends_the_search_with_the_steps_so_far() {
    for why in [Stopped::MaxDuration, Stopped::Interrupted] {
        let mut search = Search::new(&spec(1_000.0, 500_000.0, 2.0, 0.05));
        for _ in 0..3 {
            let step = search.next_step().expect("a step");
            search.record(step, StepVerdict::Pass);
        }
        // Stopped with the fourth step asked for and never recorded.
        assert!(search.next_step().is_some());
        search.stop(why);
        assert_eq!(search.next_step(), None);
        let r = search.result();
        assert_eq!(r.stopped, Some(why));
        assert_eq!(r.steps.len(), 3);
        assert_eq!(r.finding.capacity_per_s, None);
        assert_eq!(r.finding.last_pass_per_s, Some(4_000.0));
    }
}

#[test]
fn stop_after_the_search_is_over_changes_nothing() {
    let spec = spec(1_000.0, 500_000.0, 2.0, 0.05);
    let mut search = Search::new(&spec);
    let mut server = knee(5_000.0);
    while let Some(step) = search.next_step() {
        search.record(step, server(0, step));
    }
    let before = search.result();
    search.stop(Stopped::Interrupted);
    assert_eq!(search.result(), before);
    assert_eq!(before.stopped, None);
}

#[test]
fn stop_after_max_steps_ran_out_keeps_max_steps() {
    let spec = FindCapacity {
        max_steps: 2,
        ..spec(1_000.0, 500_000.0, 2.0, 0.05)
    };
    let mut search = Search::new(&spec);
    while let Some(step) = search.next_step() {
        search.record(step, StepVerdict::Pass);
    }
    search.stop(Stopped::MaxDuration);
    let r = search.result();
    assert_eq!(r.stopped, Some(Stopped::MaxSteps));
    assert_eq!(rates(&r), [(1_000.0, false), (1_000.0, true)]);
    assert_eq!(r.finding.capacity_per_s, Some(1_000.0));
}

#[test]
fn a_precision_too_fine_for_floating_point_still_ends() {
    let spec = FindCapacity {
        max_steps: 1_000,
        ..spec(1_000.0, 500_000.0, 2.0, 0.0)
    };
    let r = drive(&spec, knee(5_000.0));
    assert_eq!(r.stopped, None);
    assert!(r.steps.len() < 100, "{} steps", r.steps.len());
    assert_eq!(r.finding.capacity_per_s, Some(5_000.0));
}

#[test]
fn connect_mode_counts_connects() {
    let spec = FindCapacity {
        mode: Mode::Connect,
        ..spec(1_000.0, 500_000.0, 2.0, 0.05)
    };
    let r = drive(&spec, knee(5_000.0));
    assert!(r.summary().starts_with("capacity 5,000 connects/s"));
}

#[test]
fn rates_read_as_people_write_them() {
    let cases = [
        (0.5, "0.5"),
        (12.25, "12.25"),
        (50.0, "50"),
        (100.0, "100"),
        (1_020.0, "1,020"),
        (1_406.25, "1,406"),
        (999_999.6, "1,000,000"),
        (12_345_678.0, "12,345,678"),
    ];
    for (r, shown) in cases {
        assert_eq!(rate(r), shown, "{r}");
    }
}

#[test]
fn a_ladder_climbs_from_start_to_max_by_one_factor() {
    let spec = FindCapacity {
        max_steps: 7,
        ..spec(250.0, 2_000.0, 2.0, 0.05)
    };
    let rungs = super::ladder(&spec);
    assert_eq!(rungs.len(), 7);
    assert_eq!((rungs[0], rungs[6]), (250.0, 2_000.0));
    for w in rungs.windows(2) {
        assert!((w[1] / w[0] - 2f64.sqrt()).abs() < 1e-9, "{rungs:?}");
    }
    let one = FindCapacity {
        max_steps: 1,
        ..spec.clone()
    };
    assert_eq!(super::ladder(&one), [250.0]);
}

#[test]
fn a_replayed_ladder_brackets_the_knee_between_its_rungs() {
    let spec = FindCapacity {
        max_steps: 7,
        ..spec(250.0, 2_000.0, 2.0, 0.05)
    };
    let mut server = knee(900.0);
    let rungs = super::ladder(&spec);
    let steps: Vec<_> = rungs
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let step = Step {
                rate_per_s: r,
                confirm: false,
            };
            (r, server(i, step))
        })
        .collect();
    let r = Search::replay(&spec, steps);
    // The rungs either side of 900/s: 707/s passed, 1,000/s failed.
    assert_eq!(r.finding.capacity_per_s, Some(rungs[3]));
    assert_eq!(r.finding.first_fail_per_s, Some(rungs[4]));
    assert!(!r.finding.unstable);
    assert!(
        r.summary()
            .starts_with("capacity 707 req/s (bracket 707–1,000/s, 7 steps)"),
        "{}",
        r.summary()
    );
}
