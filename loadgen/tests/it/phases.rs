//! A run of phases (a rate profile): each phase keeps books of its own,
//! asks for its own rate, and the connections carry over from one phase
//! to the next.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floodgate_loadgen::plan::{PlanInput, Segment};
use floodgate_loadgen::report::{build, build_phase};
use floodgate_loadgen::{Outcome, run};

use crate::util::{TestServer, input, ok, plan};

#[test]
fn phases_keep_their_connections_and_their_own_books() {
    let server = TestServer::start(|_, _| ok(b"hi"));
    let plan = plan(PlanInput {
        connections: 4,
        threads: 2,
        segments: vec![
            Segment::steady(200.0, Duration::from_secs(1)),
            // A pause: no request is intended, the connections stay open.
            Segment::steady(0.0, Duration::from_millis(500)),
            Segment {
                duration: Duration::from_secs(1),
                from_per_s: 200.0,
                to_per_s: 600.0,
            },
        ],
        ..input(&server.url("/"))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let ran = run(&plan, &stop, |_| {});
    let whole = build(&plan, &ran);
    let phases: Vec<_> = (0..3).map(|k| build_phase(&plan, &ran, k)).collect();
    // Each phase's books balance and ask for its own arrivals: 200, 0 and
    // the ramp's 400 (uniform arrivals, so within one per connection).
    for (k, (p, asked)) in phases.iter().zip([200, 0, 400]).enumerate() {
        assert_eq!(
            p.outcomes_total(),
            p.scheduled,
            "phase {k}: {:?}",
            p.outcomes
        );
        assert!(
            p.scheduled.abs_diff(asked) <= 4,
            "phase {k}: {} of {asked}",
            p.scheduled
        );
        assert_eq!(
            p.outcomes[&Outcome::Ok],
            p.scheduled,
            "phase {k}: {:?}",
            p.outcomes
        );
    }
    assert_eq!(phases[2].asked_rate_per_s, Some(400.0));
    assert_eq!(phases[2].plan.duration_s, Some(1.0));
    // The whole run is the phases together, over the same four connections.
    assert_eq!(
        whole.scheduled,
        phases.iter().map(|p| p.scheduled).sum::<u64>()
    );
    assert_eq!(whole.connects, 4, "a phase change does not reconnect");
    // Every second of a phase is in its series, each holding its requests.
    assert_eq!(phases[0].intervals.len(), 1);
    assert_eq!(phases[2].intervals.len(), 1);
    assert_eq!(phases[2].intervals[0].ok, phases[2].outcomes[&Outcome::Ok]);
    assert!(phases[1].intervals.is_empty());
}
