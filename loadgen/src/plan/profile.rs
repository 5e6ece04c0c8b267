//! An open loop's rate over time, for a run of phases: consecutive
//! segments, each moving linearly from one rate to another over its
//! duration (a steady phase is a flat segment, a ramp a sloped one, a pause
//! a segment at rate zero). Each segment is a phase of the run, with books
//! of its own. The schedule turns the profile into intended send times by
//! inverting its cumulative count of arrivals.

use std::time::Duration;

use super::{Mode, PlanError, PlanInput};

/// One segment of a rate profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub duration: Duration,
    /// Requests per second at the segment's start.
    pub from_per_s: f64,
    /// Requests per second at its end.
    pub to_per_s: f64,
}

impl Segment {
    /// A constant rate.
    pub fn steady(rate_per_s: f64, duration: Duration) -> Segment {
        Segment {
            duration,
            from_per_s: rate_per_s,
            to_per_s: rate_per_s,
        }
    }

    /// The arrivals the segment asks for: the area under its rate.
    pub fn arrivals(&self) -> f64 {
        (self.from_per_s + self.to_per_s) / 2.0 * self.duration.as_secs_f64()
    }

    /// The mean rate it asks for.
    pub fn mean_per_s(&self) -> f64 {
        (self.from_per_s + self.to_per_s) / 2.0
    }
}

/// A checked, non-empty list of segments, with each one's start and the
/// arrivals before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    segments: Vec<Segment>,
    /// Offset of each segment's start from the run's start.
    starts: Vec<Duration>,
    /// Arrivals asked for before each segment.
    before: Vec<f64>,
    total: f64,
}

impl Profile {
    /// Checks `segments` (errors name `segments[i].FIELD`).
    pub fn new(segments: Vec<Segment>) -> Result<Profile, PlanError> {
        if segments.is_empty() {
            return Err(PlanError::new("segments", "must hold at least one segment"));
        }
        for (i, s) in segments.iter().enumerate() {
            if s.duration.is_zero() {
                return Err(PlanError::new(
                    format!("segments[{i}].duration"),
                    "must be longer than zero",
                ));
            }
            for (field, r) in [("from", s.from_per_s), ("to", s.to_per_s)] {
                if !(r.is_finite() && r >= 0.0) {
                    return Err(PlanError::new(
                        format!("segments[{i}].{field}"),
                        "must be 0 or above and finite (requests per second)",
                    )
                    .with_got(r));
                }
            }
        }
        let mut starts = Vec::with_capacity(segments.len());
        let mut before = Vec::with_capacity(segments.len());
        let (mut at, mut total) = (Duration::ZERO, 0.0);
        for s in &segments {
            starts.push(at);
            before.push(total);
            at += s.duration;
            total += s.arrivals();
        }
        if total <= 0.0 {
            return Err(PlanError::new(
                "segments",
                "ask for no request at all: at least one rate must be above 0",
            ));
        }
        Ok(Profile {
            segments,
            starts,
            before,
            total,
        })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Each segment's start, from the run's start.
    pub fn starts(&self) -> &[Duration] {
        &self.starts
    }

    /// The whole profile's length.
    pub fn duration(&self) -> Duration {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// The highest rate anywhere in the profile.
    pub fn peak_per_s(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.from_per_s.max(s.to_per_s))
            .fold(0.0, f64::max)
    }

    /// The arrivals the whole profile asks for.
    pub fn total_arrivals(&self) -> f64 {
        self.total
    }

    /// The segment (phase) that offset `at` falls in; past the end, the last.
    pub fn segment_at(&self, at: Duration) -> usize {
        self.starts.partition_point(|s| *s <= at).saturating_sub(1)
    }

    /// The offset at which `x` arrivals have been asked for (the inverse
    /// of the cumulative count), searching from segment `from` on, with the
    /// segment it fell in; `None` past the end. Zero-rate stretches are
    /// skipped: no arrival is intended inside a pause.
    pub fn time_of(&self, x: f64, from: usize) -> Option<(Duration, usize)> {
        if x > self.total {
            return None;
        }
        let mut k = from.min(self.segments.len() - 1);
        while k + 1 < self.segments.len() && self.before[k + 1] < x {
            k += 1;
        }
        let s = &self.segments[k];
        let d = s.duration.as_secs_f64();
        let rest = (x - self.before[k]).clamp(0.0, s.arrivals());
        // Arrivals by `t` into the segment: a t + (b - a) t² / 2d. Solved
        // for t in the form that stays exact when a or b - a is 0.
        let (a, b) = (s.from_per_s, s.to_per_s);
        let c = (b - a) / (2.0 * d);
        let t = if rest == 0.0 {
            0.0
        } else {
            2.0 * rest / (a + (a * a + 4.0 * c * rest).max(0.0).sqrt())
        };
        let t = t.clamp(0.0, d);
        Some((self.starts[k] + Duration::from_secs_f64(t), k))
    }
}

/// A run of phases (`segments`) takes its rate and length from them.
pub(super) fn check_segments(input: &PlanInput) -> Result<Profile, PlanError> {
    let conflicts = [
        ("rate", input.rate_per_s.is_some()),
        ("closed", input.closed),
        ("duration", input.duration.is_some()),
        ("requests", input.requests.is_some()),
        ("malformed", input.malformed.is_some()),
        ("mode", input.mode == Mode::Hold),
    ];
    if let Some((field, _)) = conflicts.iter().find(|(_, set)| *set) {
        return Err(PlanError::new(
            *field,
            "cannot be combined with `segments`, which set an open loop's rate and length phase by phase",
        ));
    }
    Profile::new(input.segments.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_inverse_count_follows_flat_sloped_and_paused_segments() {
        let p = Profile::new(vec![
            Segment::steady(100.0, secs(2.0)),
            Segment {
                duration: secs(2.0),
                from_per_s: 0.0,
                to_per_s: 200.0,
            },
            Segment::steady(0.0, secs(1.0)),
            Segment::steady(50.0, secs(2.0)),
        ])
        .unwrap();
        assert_eq!(p.total_arrivals(), 200.0 + 200.0 + 0.0 + 100.0);
        assert_eq!(p.duration(), secs(7.0));
        assert_eq!(p.peak_per_s(), 200.0);
        let at = |x: f64| p.time_of(x, 0).map(|(t, k)| (t.as_secs_f64(), k));
        // Flat: 100 arrivals a second.
        assert_eq!(at(50.0), Some((0.5, 0)));
        // The ramp from 0 to 200/s: half its 200 arrivals come in the last
        // 1 - 1/√2 of it.
        let (t, k) = at(300.0).unwrap();
        assert_eq!(k, 1);
        assert!((t - (2.0 + 2.0 / 2f64.sqrt())).abs() < 1e-9, "{t}");
        // Past the pause, into the last segment: no arrival inside it.
        let (t, k) = at(425.0).unwrap();
        assert_eq!(k, 3);
        assert!((t - 5.5).abs() < 1e-9, "{t}");
        assert_eq!(at(500.1), None);
        assert_eq!(p.segment_at(secs(4.5)), 2);
        assert_eq!(p.segment_at(secs(9.0)), 3);
    }

    #[test]
    fn bad_segments_name_their_field() {
        let e = Profile::new(vec![Segment::steady(f64::NAN, secs(1.0))]).unwrap_err();
        assert_eq!(e.field(), "segments[0].from");
        let e = Profile::new(vec![Segment::steady(1.0, Duration::ZERO)]).unwrap_err();
        assert_eq!(e.field(), "segments[0].duration");
        let e = Profile::new(vec![Segment::steady(0.0, secs(1.0))]).unwrap_err();
        assert_eq!(e.field(), "segments");
    }
}
