//! The Universal Scalability Law fitted to a find-capacity phase's passing
//! steps: X(N) = λN / (1 + σ(N−1) + κN(N−1)), with each step's
//! concurrency from Little's law (N = X·R, R its mean response time).
//!
//! The `usl` crate does this too, but it is archived, takes whole-number
//! concurrency (N = X·R is fractional) and hides the fit's quality; the
//! fit is a small least-squares problem, so it is done here: a linear fit
//! of N/X (which is quadratic in N) as the start, then Levenberg-Marquardt
//! on the throughput residuals with σ, κ kept at or above 0.

use floodgate_reports::scenario::{CapacityStep, UslFit, UslReport};

/// Fewer passing steps than this and no fit is made: three coefficients
/// from fewer points say more about the noise than the server.
pub const MIN_POINTS: usize = 6;

/// One measured step: its concurrency and throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub concurrency: f64,
    pub rate_per_s: f64,
}

/// The model's throughput at concurrency `n`.
pub fn throughput(fit: &UslFit, n: f64) -> f64 {
    fit.lambda_per_s * n / (1.0 + fit.sigma * (n - 1.0) + fit.kappa * n * (n - 1.0))
}

/// A find-capacity phase's USL report from its steps: the passing ones,
/// each as (N = achieved rate × mean response time, achieved rate).
pub fn report(steps: &[CapacityStep]) -> UslReport {
    let points: Vec<Point> = steps
        .iter()
        .filter(|s| s.verdict == "pass")
        .map(|s| Point {
            concurrency: s.run.achieved_rate_per_s * s.run.latency_us.mean / 1e6,
            rate_per_s: s.run.achieved_rate_per_s,
        })
        .filter(|p| p.concurrency.is_finite() && p.concurrency > 0.0 && p.rate_per_s > 0.0)
        .collect();
    let (fit, note) = match fit(&points) {
        Ok(f) => (Some(f), None),
        Err(why) => (None, Some(why)),
    };
    UslReport {
        points: points.len() as u32,
        fit,
        note,
    }
}

/// Fits the law to `points`; says why not when it cannot.
pub fn fit(points: &[Point]) -> Result<UslFit, String> {
    if points.len() < MIN_POINTS {
        return Err(format!(
            "{} passing step{} measured; the fit needs at least {MIN_POINTS}",
            points.len(),
            if points.len() == 1 { "" } else { "s" }
        ));
    }
    let (lo, hi) = points.iter().fold((f64::MAX, 0.0f64), |(lo, hi), p| {
        (lo.min(p.concurrency), hi.max(p.concurrency))
    });
    if hi < 2.0 * lo {
        return Err(format!(
            "the steps' concurrency spans only {lo:.2} to {hi:.2}: too narrow a range to fit"
        ));
    }
    let p = refine(points, linear_start(points));
    let cost = sum_sq(points, p);
    let [lambda, sigma, kappa] = p;
    let mean = points.iter().map(|p| p.rate_per_s).sum::<f64>() / points.len() as f64;
    let total: f64 = points.iter().map(|p| (p.rate_per_s - mean).powi(2)).sum();
    let r_squared = if total > 0.0 { 1.0 - cost / total } else { 1.0 };
    let mut fit = UslFit {
        sigma,
        kappa,
        lambda_per_s: lambda,
        peak_concurrency: None,
        peak_rate_per_s: None,
        r_squared,
    };
    if kappa > 0.0 && sigma < 1.0 {
        let n = ((1.0 - sigma) / kappa).sqrt();
        fit.peak_concurrency = Some(n);
        fit.peak_rate_per_s = Some(throughput(&fit, n));
    }
    Ok(fit)
}

/// Levenberg-Marquardt from `start` on the throughput residuals.
fn refine(points: &[Point], start: [f64; 3]) -> [f64; 3] {
    let mut p = start;
    let mut cost = sum_sq(points, p);
    let mut damping = 1e-3;
    for _ in 0..500 {
        // Normal equations of the linearised residuals, Marquardt-scaled.
        let mut jtj = [[0.0f64; 3]; 3];
        let mut jtr = [0.0f64; 3];
        for pt in points {
            let (f, j) = model_and_jacobian(pt.concurrency, p);
            let r = pt.rate_per_s - f;
            for a in 0..3 {
                jtr[a] += j[a] * r;
                for b in 0..3 {
                    jtj[a][b] += j[a] * j[b];
                }
            }
        }
        let mut improved = false;
        while damping < 1e12 {
            let mut m = jtj;
            for (a, row) in m.iter_mut().enumerate() {
                row[a] += damping * jtj[a][a].max(1e-300);
            }
            let Some(step) = solve3(m, jtr) else {
                damping *= 10.0;
                continue;
            };
            let next = project([p[0] + step[0], p[1] + step[1], p[2] + step[2]]);
            let next_cost = sum_sq(points, next);
            if next_cost < cost {
                let gain = (cost - next_cost) / cost.max(1e-300);
                p = next;
                cost = next_cost;
                damping = (damping / 10.0).max(1e-12);
                improved = gain > 1e-14;
                break;
            }
            damping *= 10.0;
        }
        if !improved {
            break;
        }
    }
    p
}

/// λ, σ, κ from a least-squares fit of N/X = (1 + σ(N−1) + κN(N−1)) / λ,
/// which is linear in 1/λ, σ/λ and κ/λ.
fn linear_start(points: &[Point]) -> [f64; 3] {
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for p in points {
        let n = p.concurrency;
        let row = [1.0, n - 1.0, n * (n - 1.0)];
        let y = n / p.rate_per_s;
        for a in 0..3 {
            v[a] += row[a] * y;
            for b in 0..3 {
                m[a][b] += row[a] * row[b];
            }
        }
    }
    let fallback = points
        .iter()
        .map(|p| p.rate_per_s / p.concurrency)
        .fold(0.0, f64::max);
    match solve3(m, v) {
        Some([a, b, c]) if a > 0.0 => project([1.0 / a, b / a, c / a]),
        _ => [fallback, 0.0, 0.0],
    }
}

/// λ above 0, σ and κ at or above 0.
fn project([lambda, sigma, kappa]: [f64; 3]) -> [f64; 3] {
    [lambda.max(1e-12), sigma.max(0.0), kappa.max(0.0)]
}

fn model_and_jacobian(n: f64, [lambda, sigma, kappa]: [f64; 3]) -> (f64, [f64; 3]) {
    let d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
    let f = lambda * n / d;
    let dd = lambda * n / (d * d);
    (f, [n / d, -dd * (n - 1.0), -dd * n * (n - 1.0)])
}

fn sum_sq(points: &[Point], p: [f64; 3]) -> f64 {
    points
        .iter()
        .map(|pt| (pt.rate_per_s - model_and_jacobian(pt.concurrency, p).0).powi(2))
        .sum()
}

/// Solves the 3×3 system by Gaussian elimination with partial pivoting;
/// `None` when it is singular.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        for row in col + 1..3 {
            let k = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (x, p) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= k * p;
            }
            v[row] -= k * v[col];
        }
    }
    let mut x = [0.0f64; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|c| m[row][c] * x[c]).sum();
        x[row] = (v[row] - s) / m[row][row];
    }
    x.iter().all(|x| x.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(lambda: f64, sigma: f64, kappa: f64, ns: &[f64], noise: &[f64]) -> Vec<Point> {
        let truth = UslFit {
            sigma,
            kappa,
            lambda_per_s: lambda,
            peak_concurrency: None,
            peak_rate_per_s: None,
            r_squared: 1.0,
        };
        ns.iter()
            .zip(noise.iter().cycle())
            .map(|(&n, e)| Point {
                concurrency: n,
                rate_per_s: throughput(&truth, n) * (1.0 + e),
            })
            .collect()
    }

    fn within(got: f64, want: f64, share: f64) -> bool {
        (got - want).abs() <= want.abs() * share
    }

    #[test]
    fn known_coefficients_are_recovered_from_noisy_points() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0];
        // ±1% noise, fixed so the test is repeatable.
        let noise = [
            0.01, -0.008, 0.004, -0.01, 0.006, -0.003, 0.009, -0.007, 0.002,
        ];
        for (lambda, sigma, kappa) in [(1000.0, 0.05, 0.001), (250.0, 0.2, 0.0005)] {
            let fit = fit(&synthetic(lambda, sigma, kappa, &ns, &noise)).unwrap();
            assert!(within(fit.sigma, sigma, 0.10), "σ {} vs {sigma}", fit.sigma);
            assert!(within(fit.kappa, kappa, 0.10), "κ {} vs {kappa}", fit.kappa);
            assert!(
                within(fit.lambda_per_s, lambda, 0.10),
                "λ {}",
                fit.lambda_per_s
            );
            assert!(fit.r_squared > 0.99, "R² {}", fit.r_squared);
            let peak = ((1.0 - sigma) / kappa).sqrt();
            assert!(within(fit.peak_concurrency.unwrap(), peak, 0.10));
        }
    }

    #[test]
    fn the_refinement_finds_the_coefficients_from_a_poor_start() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0];
        let points = synthetic(1000.0, 0.05, 0.001, &ns, &[0.0]);
        let [lambda, sigma, kappa] = refine(&points, [400.0, 0.0, 0.0]);
        assert!(within(sigma, 0.05, 0.01), "σ {sigma}");
        assert!(within(kappa, 0.001, 0.01), "κ {kappa}");
        assert!(within(lambda, 1000.0, 0.01), "λ {lambda}");
        // Noisy points: the least-squares fit beats the linear start on
        // the residuals it minimises.
        let noisy = synthetic(1000.0, 0.05, 0.001, &ns, &[0.05, -0.04, 0.03, -0.05]);
        let start = linear_start(&noisy);
        assert!(sum_sq(&noisy, refine(&noisy, start)) < sum_sq(&noisy, start));
    }

    #[test]
    fn exact_points_fit_exactly() {
        let ns = [1.0, 3.0, 5.0, 10.0, 20.0, 40.0];
        let fit = fit(&synthetic(500.0, 0.1, 0.002, &ns, &[0.0])).unwrap();
        assert!(within(fit.sigma, 0.1, 1e-6), "{fit:?}");
        assert!(within(fit.kappa, 0.002, 1e-6), "{fit:?}");
        assert!(within(fit.lambda_per_s, 500.0, 1e-6), "{fit:?}");
        assert!(fit.r_squared > 0.999_999);
    }

    #[test]
    fn linear_scaling_has_no_peak() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        let fit = fit(&synthetic(100.0, 0.0, 0.0, &ns, &[0.0])).unwrap();
        assert!(fit.kappa < 1e-9 && fit.sigma < 1e-9, "{fit:?}");
        assert_eq!(fit.peak_concurrency, None);
        assert!(within(fit.lambda_per_s, 100.0, 1e-6));
    }

    #[test]
    fn too_few_or_too_alike_points_are_refused_with_the_reason() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0];
        let err = fit(&synthetic(100.0, 0.1, 0.01, &ns, &[0.0])).unwrap_err();
        assert_eq!(err, "5 passing steps measured; the fit needs at least 6");
        let alike = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5];
        let err = fit(&synthetic(100.0, 0.1, 0.01, &alike, &[0.0])).unwrap_err();
        assert!(err.contains("too narrow"), "{err}");
    }
}
