//! A find-capacity phase's charts: each step's rate against its p99 (the
//! SLO's p99 limit as a line, the capacity marked, failing steps crossed),
//! and, when the report has a Universal Scalability Law fit, the fitted
//! throughput curve over concurrency with the steps it was fitted to
//! (concurrency from Little's law, N = X·R, R the step's mean response
//! time).

use floodgate_reports::scenario::{CapacityReport, PhaseReport, ScenarioReport, UslFit};
use plotters::prelude::*;

use super::{
    BLUE, Figure, GREEN, GREY, VERMILION, caption_font, drawn, legend, line_swatch, linear_range,
    log_range, mesh, ms_label, num_label, svg,
};
use crate::{RenderError, slo, words};

/// The capacity curve, and the USL chart when there is a fit.
pub fn figures(report: &ScenarioReport, p: &PhaseReport) -> Result<Vec<Figure>, RenderError> {
    let Some(c) = &p.capacity else {
        return Ok(Vec::new());
    };
    let slug = slug(&p.name);
    let mut out = vec![curve(report, p, c, &slug)?];
    if let Some(fit) = c.usl.as_ref().and_then(|u| u.fit) {
        out.push(usl(p, c, &fit, &slug)?);
    }
    Ok(out)
}

/// A phase name fit for an element id.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn curve(
    report: &ScenarioReport,
    p: &PhaseReport,
    c: &CapacityReport,
    slug: &str,
) -> Result<Figure, RenderError> {
    let id = format!("chart-capacity-{slug}");
    let limit_ms = slo::p99_limit_ms(report, p);
    let p99 = |us: u64| us as f64 / 1000.0;
    let x = linear_range(c.steps.iter().map(|s| s.rate_per_s));
    let y = log_range(
        c.steps
            .iter()
            .map(|s| p99(s.run.latency_us.p99))
            .chain(limit_ms),
    );
    let svg = svg(&id, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{}: rate against p99", p.name), caption_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(76)
            .build_cartesian_2d(x.clone(), y.clone().log_scale())?;
        mesh(
            &mut chart,
            ("step rate (requests per second)", Some(&num_label)),
            ("p99 response time", &ms_label),
        )?;
        // The SLO's limit, the capacity and the first failing rate, each a
        // dashed line named in the legend: (ends, dash and gap, style, name).
        let rules = [
            limit_ms.map(|l| {
                let name = format!("SLO: p99 < {}", ms_label(&l));
                (
                    [(x.start, l), (x.end, l)],
                    (8, 5),
                    VERMILION.stroke_width(2),
                    name,
                )
            }),
            c.finding.capacity_per_s.map(|cap| {
                let name = format!("capacity {}", words::rate(cap));
                (
                    [(cap, y.start), (cap, y.end)],
                    (8, 5),
                    GREEN.stroke_width(2),
                    name,
                )
            }),
            c.finding.first_fail_per_s.map(|f| {
                let name = format!("first fail {}", words::rate(f));
                (
                    [(f, y.start), (f, y.end)],
                    (3, 4),
                    VERMILION.stroke_width(1),
                    name,
                )
            }),
        ];
        for (ends, (dash, gap), style, name) in rules.into_iter().flatten() {
            chart
                .draw_series(DashedLineSeries::new(ends, dash, gap, style))?
                .label(name)
                .legend(line_swatch(style));
        }
        let at = |s: &floodgate_reports::scenario::CapacityStep| {
            (s.rate_per_s, p99(s.run.latency_us.p99).max(1e-3))
        };
        let steps = |verdict: &'static str| c.steps.iter().filter(move |s| s.verdict == verdict);
        chart
            .draw_series(steps("pass").map(|s| Circle::new(at(s), 6, GREEN.filled())))?
            .label("step passed")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, GREEN.filled()));
        chart
            .draw_series(steps("fail").map(|s| Cross::new(at(s), 7, VERMILION.stroke_width(3))))?
            .label("step failed")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, VERMILION.stroke_width(3)));
        chart
            .draw_series(
                steps("inconclusive").map(|s| TriangleMarker::new(at(s), 7, GREY.filled())),
            )?
            .label("step inconclusive")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, GREY.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })?;
    let slo_words = match limit_ms {
        Some(l) => format!(
            "the dashed red line is the SLO's p99 limit ({})",
            ms_label(&l)
        ),
        None => "the SLO states no p99 limit to draw".to_string(),
    };
    let caption = format!(
        "Each measured step's rate against its p99: green passed, red failed, grey inconclusive; \
         {slo_words}; the green line is the capacity (the knee), the thin red one the first failing rate. {}.",
        words::bracket(c)
    );
    Ok(drawn(
        &id,
        &format!("Capacity curve of {}", p.name),
        caption,
        svg,
    ))
}

/// X(N) = λN / (1 + σ(N−1) + κN(N−1)).
fn usl_rate(fit: &UslFit, n: f64) -> f64 {
    fit.lambda_per_s * n / (1.0 + fit.sigma * (n - 1.0) + fit.kappa * n * (n - 1.0))
}

fn usl(
    p: &PhaseReport,
    c: &CapacityReport,
    fit: &UslFit,
    slug: &str,
) -> Result<Figure, RenderError> {
    let id = format!("chart-usl-{slug}");
    // Little's law: the concurrency each passing step held.
    let points: Vec<(f64, f64)> = c
        .steps
        .iter()
        .filter(|s| s.verdict == "pass")
        .map(|s| {
            let x = s.run.achieved_rate_per_s;
            (x * s.run.latency_us.mean / 1e6, x)
        })
        .collect();
    let n_max = points
        .iter()
        .map(|p| p.0)
        .chain(fit.peak_concurrency.map(|n| n * 1.5))
        .fold(2.0_f64, f64::max)
        * 1.1;
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let n = 1.0 + (n_max - 1.0) * i as f64 / 200.0;
            (n, usl_rate(fit, n))
        })
        .collect();
    let x = 0.0..n_max;
    let y = linear_range(curve.iter().chain(&points).map(|p| p.1));
    let svg = svg(&id, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{}: Universal Scalability Law fit", p.name),
                caption_font(),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(76)
            .build_cartesian_2d(x, y)?;
        mesh(
            &mut chart,
            ("concurrency N = X·R (Little's law)", None),
            ("throughput X (requests per second)", &num_label),
        )?;
        chart
            .draw_series(LineSeries::new(curve.iter().copied(), BLUE.stroke_width(2)))?
            .label(format!(
                "USL: σ {:.4}, κ {:.6}, R² {:.3}",
                fit.sigma, fit.kappa, fit.r_squared
            ))
            .legend(line_swatch(BLUE.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 6, GREEN.filled())))?
            .label("passing steps")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, GREEN.filled()));
        if let (Some(n), Some(x)) = (fit.peak_concurrency, fit.peak_rate_per_s) {
            chart
                .draw_series(std::iter::once(Cross::new(
                    (n, x),
                    8,
                    VERMILION.stroke_width(3),
                )))?
                .label(format!("predicted peak {}", words::rate(x)))
                .legend(|(x, y)| Cross::new((x + 10, y), 5, VERMILION.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })?;
    let caption = c.usl.as_ref().map_or_else(String::new, words::usl);
    Ok(drawn(
        &id,
        &format!("Scalability model of {}", p.name),
        caption,
        svg,
    ))
}
