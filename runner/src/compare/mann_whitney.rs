//! The two-sided Mann-Whitney U test (Wilcoxon rank-sum) in its normal
//! approximation, with the tie correction and the continuity correction,
//! as `scipy.stats.mannwhitneyu(x, y, method="asymptotic")` computes it;
//! and the median the comparison's figures are drawn from. Pure
//! arithmetic over `f64` samples; the normal tail is statrs'.

use statrs::distribution::{ContinuousCDF, Normal};

/// The test's result for samples `x` and `y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of `x`: how many of the (x, y) pairs have x above y, a tie
    /// counting one half.
    pub u: f64,
    /// The standardised statistic of the larger U, continuity-corrected.
    pub z: f64,
    /// The two-sided p-value: how likely a difference at least this large
    /// is when both samples come from one distribution.
    pub p: f64,
}

/// Tests `x` against `y`; `None` when either is empty. When every value
/// ties there is nothing to tell the samples apart: `p` is 1.
pub fn test(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let n = n1 + n2;
    // Every value with the sample it came from (true for x), in order.
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_x = 0.0;
    let mut ties = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && all[end].0 == all[start].0 {
            end += 1;
        }
        // Ranks start..end (1-based start+1 ..= end) share their mean.
        let t = (end - start) as f64;
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let in_x = all[start..end].iter().filter(|(_, from_x)| *from_x).count();
        rank_sum_x += mean_rank * in_x as f64;
        ties += t * t * t - t;
        start = end;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_sum_x - n1f * (n1f + 1.0) / 2.0;
    let u_big = u.max(n1f * n2f - u);
    let mean = n1f * n2f / 2.0;
    let tie_term = if n > 1 { ties / (nf * (nf - 1.0)) } else { 0.0 };
    let variance = n1f * n2f / 12.0 * ((nf + 1.0) - tie_term);
    if variance <= 0.0 {
        return Some(MannWhitney { u, z: 0.0, p: 1.0 });
    }
    let z = (u_big - mean - 0.5) / variance.sqrt();
    let p = (2.0 * Normal::standard().sf(z)).clamp(0.0, 1.0);
    Some(MannWhitney { u, z, p })
}

/// The median of `v` (the mean of the middle two when their number is
/// even); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    /// Without ties, by hand: the pooled ranks of x are 5, 7, 3, 9, 8, so
    /// R = 32 and U = 32 − 5·6/2 = 17; U of y is 20 − 17 = 3. The mean of
    /// U is 10 and its variance 5·4·10/12, so z = (17 − 10 − 0.5)/4.0825 =
    /// 1.5922 and p = 2·(1 − Φ(1.5922)) = 0.11135. scipy 1.x,
    /// `mannwhitneyu(x, y, method="asymptotic")`: U 17.0, p
    /// 0.11134688653314041.
    #[test]
    fn without_ties_u_and_p_are_the_textbook_ones() {
        let t = test(&[19.0, 22.0, 16.0, 29.0, 24.0], &[20.0, 11.0, 17.0, 12.0]).unwrap();
        assert_eq!(t.u, 17.0);
        assert!(close(t.z, 6.5 / (200.0f64 / 12.0).sqrt()), "{t:?}");
        assert!(close(t.p, 0.11134688653314041), "{t:?}");
        // The test is symmetric: y against x has the other U, the same p.
        let r = test(&[20.0, 11.0, 17.0, 12.0], &[19.0, 22.0, 16.0, 29.0, 24.0]).unwrap();
        assert_eq!(r.u, 3.0);
        assert!(close(r.p, t.p));
    }

    /// With ties (2, 2; 3, 3; 4, 4; 5, 5, 5; 8, 8): U 10.0 and p
    /// 0.013668629306088961 from scipy, as above; by hand the tie term is
    /// Σ(t³ − t) = 4·6 + 24 = 48.
    #[test]
    fn ties_are_corrected_as_scipy_does() {
        let x = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0];
        let y = [3.0, 4.0, 5.0, 7.0, 8.0, 8.0, 9.0, 10.0, 11.0];
        let t = test(&x, &y).unwrap();
        assert_eq!(t.u, 10.0);
        assert!(close(t.p, 0.013668629306088961), "{t:?}");
        // Mostly zeros, as the error shares of a healthy run are: scipy
        // gives U 18.0, p 0.3613104285261787.
        let t = test(&[0.0, 0.0, 0.0, 0.0, 1.0], &[0.0; 6]).unwrap();
        assert_eq!(t.u, 18.0);
        assert!(close(t.p, 0.3613104285261787), "{t:?}");
    }

    #[test]
    fn all_equal_or_empty_samples_show_no_difference() {
        assert_eq!(test(&[3.0; 4], &[3.0; 5]).unwrap().p, 1.0);
        assert_eq!(test(&[], &[1.0]), None);
        assert_eq!(test(&[1.0], &[]), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
