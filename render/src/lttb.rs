//! Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013) for
//! display: which of a long series' points a chart draws so that its shape
//! (peaks and dips included) survives. It picks indices into the caller's
//! points and never changes or drops the data itself.

/// The indices of at most `threshold` points of `points` (x ascending)
/// that keep the series' visual shape: the first and the last always, and
/// from each of `threshold - 2` equal buckets in between, the point that
/// makes the largest triangle with the point kept before it and the mean
/// of the next bucket. With `threshold` below 3 or at least the number of
/// points, every index.
pub fn lttb(points: &[(f64, f64)], threshold: usize) -> Vec<usize> {
    let n = points.len();
    if threshold < 3 || threshold >= n {
        return (0..n).collect();
    }
    let buckets = threshold - 2;
    // Every point but the first and the last, cut into `buckets` runs.
    let bucket = |b: usize| {
        let inner = n - 2;
        let start = 1 + b * inner / buckets;
        let end = 1 + (b + 1) * inner / buckets;
        start..end
    };
    let mut kept = Vec::with_capacity(threshold);
    kept.push(0);
    let mut a = 0;
    for b in 0..buckets {
        let next = if b + 1 < buckets {
            bucket(b + 1)
        } else {
            n - 1..n
        };
        let len = next.len().max(1) as f64;
        let (cx, cy) = points[next]
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p.0, y + p.1));
        let (cx, cy) = (cx / len, cy / len);
        let (ax, ay) = points[a];
        let mut best = (f64::NEG_INFINITY, a);
        for i in bucket(b) {
            let (x, y) = points[i];
            let area = ((ax - cx) * (y - ay) - (ax - x) * (cy - ay)).abs();
            if area > best.0 {
                best = (area, i);
            }
        }
        a = best.1;
        kept.push(a);
    }
    kept.push(n - 1);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_series_is_kept_whole() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 1.0)).collect();
        assert_eq!(lttb(&points, 10), (0..10).collect::<Vec<_>>());
        assert_eq!(lttb(&points, 500), (0..10).collect::<Vec<_>>());
        assert_eq!(lttb(&points, 2), (0..10).collect::<Vec<_>>());
        assert!(lttb(&[], 100).is_empty());
    }

    #[test]
    fn a_long_series_keeps_its_ends_and_its_spikes() {
        // An hour of seconds, flat at 1 ms but for a stall at 2,000 s and a
        // dip at 3,000 s.
        let mut points: Vec<(f64, f64)> = (0..3_600).map(|i| (i as f64, 1.0)).collect();
        points[2_000].1 = 900.0;
        points[3_000].1 = -50.0;
        let kept = lttb(&points, 300);
        assert_eq!(kept.len(), 300);
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&3_599));
        assert!(
            kept.windows(2).all(|w| w[0] < w[1]),
            "ascending, no repeats"
        );
        assert!(kept.contains(&2_000), "the stall is drawn");
        assert!(kept.contains(&3_000), "the dip is drawn");
    }

    #[test]
    fn every_bucket_gives_one_point() {
        // A sine: the shape needs points spread over the whole range.
        let points: Vec<(f64, f64)> = (0..1_000)
            .map(|i| (i as f64, (i as f64 / 50.0).sin()))
            .collect();
        let kept = lttb(&points, 100);
        assert_eq!(kept.len(), 100);
        let gaps: Vec<usize> = kept.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g <= 2 * 1_000 / 98), "{gaps:?}");
    }
}
