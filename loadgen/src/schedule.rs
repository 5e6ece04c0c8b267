//! Per-connection schedules: which request kind each request is and, in
//! open loop, when it is intended to be sent. Each connection slot draws
//! from its own ChaCha stream of the run's seed, so the schedule depends only
//! on the seed, the slot and the plan, never on timing, thread count or
//! sharding: a shard (`--shard i/N`) runs the whole run's slots `i`, `i +
//! N`, … with their whole-run schedules, so the N shards' schedules
//! together are exactly the unsharded one. Sending and waiting live in
//! `conn`.

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::plan::{Arrival, Load, Plan, Profile};

/// The requests of one connection slot.
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: ChaCha8Rng,
    /// Cumulative weights of the request kinds; empty when there is one kind.
    cumulative: Vec<u32>,
    /// `None` in closed loop.
    open: Option<OpenState>,
    /// Requests left for this slot (`None`: until the end time).
    remaining: Option<u64>,
    /// No request is intended at or after this offset from the start.
    end: Option<Duration>,
    /// `--malformed`: which requests are malformed or echo probes.
    malformed: Option<MalformedDraw>,
}

/// Draws for `--malformed` from a stream of their own, so adding them does
/// not change which valid kinds the main stream picks.
#[derive(Debug, Clone)]
struct MalformedDraw {
    rng: ChaCha8Rng,
    fraction: f64,
    probe_kind: usize,
}

#[derive(Debug, Clone)]
enum OpenState {
    /// One rate throughout.
    Constant {
        /// Mean gap between this slot's arrivals, in seconds.
        mean_gap_s: f64,
        arrival: Arrival,
        /// The next intended offset from the start of the run, in seconds.
        next_s: f64,
    },
    /// A rate profile (phases): the slot's arrivals are points on the
    /// profile's cumulative count, `connections` apart (uniform) or drawn
    /// as a Poisson process of the slot's share of the rate.
    Profiled {
        profile: Arc<Profile>,
        arrival: Arrival,
        /// Mean distance between this slot's points: the connection count.
        spacing: f64,
        /// The cumulative count of the next arrival.
        next_x: f64,
        /// The segment the last arrival fell in (the search starts there).
        segment: usize,
    },
}

/// One scheduled request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Intended send time as an offset from the run's start (zero in closed
    /// loop, where the send time is whenever the connection is free).
    pub offset: Duration,
    /// Index into `Plan::kinds` (meaningless when `malformed`).
    pub kind: usize,
    /// `--malformed`: this request is a malformed input on its own connection.
    pub malformed: bool,
}

impl Schedule {
    /// The schedule of connection slot `index` of `plan`.
    pub fn new(plan: &Plan, index: usize) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        rng.set_stream(index as u64);
        let mut cumulative = Vec::new();
        // The echo probe of `--malformed` is drawn apart from the weights.
        let weighted = match &plan.malformed {
            Some(m) => &plan.kinds[..m.probe_kind],
            None => &plan.kinds[..],
        };
        if weighted.len() > 1 {
            let mut sum = 0;
            for k in weighted {
                sum += k.weight;
                cumulative.push(sum);
            }
        }
        let c = plan.connections as u64;
        let remaining = plan
            .requests
            .map(|n| n / c + u64::from((index as u64) < n % c));
        let open = match (plan.load, &plan.profile) {
            (Load::Closed, _) => None,
            (Load::Open { arrival, .. }, Some(profile)) => {
                let spacing = plan.connections as f64;
                let next_x = match arrival {
                    // Half a unit in: the arrivals sit mid-way between whole
                    // counts, so none falls on a phase boundary.
                    Arrival::Uniform => index as f64 + 0.5,
                    Arrival::Poisson => exponential(&mut rng, spacing),
                };
                Some(OpenState::Profiled {
                    profile: profile.clone(),
                    arrival,
                    spacing,
                    next_x,
                    segment: 0,
                })
            }
            (
                Load::Open {
                    rate_per_s,
                    arrival,
                },
                None,
            ) => {
                let mean_gap_s = plan.connections as f64 / rate_per_s;
                let next_s = match arrival {
                    // Slots are staggered so the total is evenly spaced.
                    Arrival::Uniform => mean_gap_s * index as f64 / plan.connections as f64,
                    Arrival::Poisson => exponential(&mut rng, mean_gap_s),
                };
                Some(OpenState::Constant {
                    mean_gap_s,
                    arrival,
                    next_s,
                })
            }
        };
        let malformed = plan.malformed.as_ref().map(|m| {
            let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
            rng.set_stream((1 << 32) + index as u64);
            MalformedDraw {
                rng,
                fraction: m.fraction,
                probe_kind: m.probe_kind,
            }
        });
        Schedule {
            rng,
            cumulative,
            open,
            remaining,
            end: plan.duration,
            malformed,
        }
    }

    /// The next request, or `None` when this slot is done.
    pub fn next_slot(&mut self) -> Option<Slot> {
        if self.remaining == Some(0) {
            return None;
        }
        let offset = match &mut self.open {
            None => Duration::ZERO,
            Some(OpenState::Constant {
                mean_gap_s,
                arrival,
                next_s,
            }) => {
                let now = *next_s;
                let gap = match arrival {
                    Arrival::Uniform => *mean_gap_s,
                    Arrival::Poisson => exponential(&mut self.rng, *mean_gap_s),
                };
                *next_s += gap;
                Duration::from_secs_f64(now)
            }
            Some(OpenState::Profiled {
                profile,
                arrival,
                spacing,
                next_x,
                segment,
            }) => {
                let (at, k) = profile.time_of(*next_x, *segment)?;
                *segment = k;
                *next_x += match arrival {
                    Arrival::Uniform => *spacing,
                    Arrival::Poisson => exponential(&mut self.rng, *spacing),
                };
                at
            }
        };
        if self.open.is_some() && self.end.is_some_and(|end| offset >= end) {
            return None;
        }
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        let mut kind = if self.cumulative.is_empty() {
            0
        } else {
            let total = *self.cumulative.last().unwrap_or(&1);
            let x = self.rng.random_range(0..total);
            self.cumulative.partition_point(|c| *c <= x)
        };
        let mut malformed = false;
        if let Some(m) = &mut self.malformed {
            if m.rng.random_bool(m.fraction) {
                malformed = true;
            } else if m.rng.random_bool(crate::malformed::PROBE_SHARE) {
                kind = m.probe_kind;
            }
        }
        Some(Slot {
            offset,
            kind,
            malformed,
        })
    }
}

fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u: f64 = rng.random();
    -(1.0 - u).ln() * mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanInput;

    fn plan(seed: u64, arrival: Arrival) -> Plan {
        Plan::new(PlanInput {
            target: Some("http://127.0.0.1:1/".into()),
            rate_per_s: Some(1000.0),
            arrival,
            connections: 4,
            threads: 2,
            duration: Some(Duration::from_secs(1)),
            seed,
            mix: Some(crate::plan::MixEntry::parse_list("3 GET /, 1 POST /echo 10").unwrap()),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            ..PlanInput::default()
        })
        .unwrap()
    }

    fn all(plan: &Plan) -> Vec<Vec<Slot>> {
        (0..plan.connections)
            .map(|i| {
                let mut s = Schedule::new(plan, i);
                std::iter::from_fn(|| s.next_slot()).collect()
            })
            .collect()
    }

    /// Every request of the plan's slots (a shard's, or all), as (intended
    /// time, kind, malformed), sorted.
    fn requests(plan: &Plan) -> Vec<(Duration, usize, bool)> {
        let mut out: Vec<_> = plan
            .slots()
            .flat_map(|i| {
                let mut s = Schedule::new(plan, i);
                std::iter::from_fn(move || s.next_slot())
            })
            .map(|s| (s.offset, s.kind, s.malformed))
            .collect();
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    #[test]
    fn the_shards_together_are_the_unsharded_schedule() {
        use crate::plan::{Segment, Shard};
        let input = |arrival, segments: bool, shard| PlanInput {
            target: Some("http://127.0.0.1:1/".into()),
            rate_per_s: (!segments).then_some(900.0),
            arrival,
            // Not a multiple of 2, 3 or 4: the remainders go to the first shards.
            connections: 7,
            threads: 2,
            duration: (!segments).then(|| Duration::from_secs(1)),
            segments: match segments {
                true => vec![
                    Segment::steady(400.0, Duration::from_millis(500)),
                    Segment {
                        duration: Duration::from_millis(500),
                        from_per_s: 400.0,
                        to_per_s: 1200.0,
                    },
                ],
                false => Vec::new(),
            },
            malformed: (!segments).then_some(0.1),
            seed: 11,
            mix: Some(crate::plan::MixEntry::parse_list("3 GET /, 1 POST /echo 10").unwrap()),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            shard,
            ..PlanInput::default()
        };
        for arrival in [Arrival::Uniform, Arrival::Poisson] {
            for segments in [false, true] {
                let whole = requests(&Plan::new(input(arrival, segments, None)).unwrap());
                assert!(whole.len() > 400, "{}", whole.len());
                for n in 1..=4 {
                    let mut union = Vec::new();
                    let mut slots = 0;
                    for i in 0..n {
                        let shard = Shard::new(i, n);
                        let plan = Plan::new(input(arrival, segments, shard)).unwrap();
                        slots += plan.local_connections();
                        assert_eq!(plan.local_connections(), plan.slots().count());
                        // 7 slots over n shards: the first 7 % n get one more.
                        let share = 7 / n as usize + usize::from((i as usize) < 7 % n as usize);
                        assert_eq!(plan.local_connections(), share, "{i}/{n}");
                        union.extend(requests(&plan));
                    }
                    assert_eq!(slots, 7);
                    union.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    assert_eq!(union, whole, "{arrival:?}, segments {segments}, {n} shards");
                }
            }
        }
    }

    #[test]
    fn a_shard_needs_a_connection_of_its_own() {
        let e = Plan::validate(PlanInput {
            connections: 2,
            threads: 1,
            shard: crate::plan::Shard::new(0, 3),
            ..PlanInput::default()
        })
        .unwrap_err();
        assert_eq!(e.field(), "connections");
    }

    #[test]
    fn same_seed_same_schedule() {
        let a = all(&plan(7, Arrival::Poisson));
        assert_eq!(a, all(&plan(7, Arrival::Poisson)));
        assert_ne!(a, all(&plan(8, Arrival::Poisson)));
        // The mix follows the weights roughly: 3 of 4 are GET /.
        let kinds: Vec<usize> = a.iter().flatten().map(|s| s.kind).collect();
        let gets = kinds.iter().filter(|k| **k == 0).count() as f64 / kinds.len() as f64;
        assert!((0.65..0.85).contains(&gets), "{gets}");
    }

    #[test]
    fn rate_and_end_are_respected() {
        for arrival in [Arrival::Uniform, Arrival::Poisson] {
            let slots = all(&plan(1, arrival));
            let n: usize = slots.iter().map(Vec::len).sum();
            // 1000/s for 1 s; Poisson varies by a few standard deviations (~32).
            assert!((850..1150).contains(&n), "{arrival:?}: {n}");
            assert!(
                slots
                    .iter()
                    .flatten()
                    .all(|s| s.offset < Duration::from_secs(1))
            );
        }
        // Uniform slots interleave into an evenly spaced total: 1 ms apart.
        let mut offsets: Vec<Duration> = all(&plan(1, Arrival::Uniform))
            .into_iter()
            .flatten()
            .map(|s| s.offset)
            .collect();
        offsets.sort();
        for w in offsets.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap > Duration::from_micros(990) && gap < Duration::from_micros(1010),
                "{gap:?}"
            );
        }
    }
}
