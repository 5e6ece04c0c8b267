//! The latency percentile spectrum (an HDR plot): each phase's response
//! time against percentile on a 1/(1−p) log axis, read from the phase's
//! whole-run histogram, so the tail (99%, 99.9%, 99.99%) gets as much room
//! as the median.

use floodgate_reports::histogram;
use floodgate_reports::scenario::ScenarioReport;
use plotters::prelude::*;

use super::{
    Figure, PALETTE, caption_font, drawn, legend, linear_range, mesh, ms_label, not_sampled, svg,
    swatch,
};
use crate::RenderError;

/// A phase's spectrum: (1/(1−p), ms) pairs.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
}

/// The x of quantile `q`; the last quantile (1) at one past the count.
fn x_of(q: f64, count: u64) -> f64 {
    if q >= 1.0 {
        (count.max(1) as f64).max(10.0)
    } else {
        1.0 / (1.0 - q)
    }
}

/// `90%`, `99.9%`: the percentile at x = 1/(1−p).
fn percentile_label(x: &f64) -> String {
    let p = (1.0 - 1.0 / x.max(1.0)) * 100.0;
    let digits = (x.log10().round() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

pub fn spectrum(report: &ScenarioReport) -> Result<Figure, RenderError> {
    const ID: &str = "chart-spectrum";
    const TITLE: &str = "Latency percentile spectrum";
    let mut lines = Vec::new();
    for p in report.phases.iter().filter(|p| !p.skipped) {
        // A phase's own run; a find-capacity phase's best pass and first
        // fail.
        let mut runs = Vec::new();
        if let Some(run) = &p.run {
            let name = if p.warmup {
                format!("{} (warm-up)", p.name)
            } else {
                p.name.clone()
            };
            runs.push((name, "histograms.response_time".to_string(), run));
        }
        if let Some(c) = &p.capacity {
            let pick = |rate: Option<f64>, verdict: &str| {
                c.steps
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, s)| Some(s.rate_per_s) == rate && s.verdict == verdict)
            };
            let best = c.finding.capacity_per_s.or(c.finding.last_pass_per_s);
            for (rate, verdict) in [(best, "pass"), (c.finding.first_fail_per_s, "fail")] {
                if let Some((k, s)) = pick(rate, verdict) {
                    runs.push((
                        format!(
                            "{} at {} ({verdict})",
                            p.name,
                            crate::words::rate(s.rate_per_s)
                        ),
                        format!("capacity.steps[{k}].run.histograms.response_time"),
                        &s.run,
                    ));
                }
            }
        }
        for (name, what, run) in runs {
            let h = histogram::decode(&run.histograms.response_time).map_err(|source| {
                RenderError::Histogram {
                    phase: p.name.clone(),
                    what,
                    source,
                }
            })?;
            if h.is_empty() {
                continue;
            }
            let points = h
                .iter_quantiles(5)
                .map(|v| {
                    (
                        x_of(v.quantile_iterated_to(), h.len()),
                        v.value_iterated_to() as f64 / 1000.0,
                    )
                })
                .collect();
            lines.push(Line { name, points });
        }
    }
    if lines.is_empty() {
        return not_sampled(ID, TITLE, "response-time histograms");
    }
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(100.0_f64, f64::max);
    let x_max = 10f64.powf(x_max.log10().ceil());
    let y = linear_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let svg = svg(ID, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Response time by percentile", caption_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(76)
            .build_cartesian_2d((1.0..x_max).log_scale(), y)?;
        mesh(
            &mut chart,
            ("percentile", Some(&percentile_label)),
            ("response time", &ms_label),
        )?;
        for (k, l) in lines.iter().enumerate() {
            let color = PALETTE[(k + 3) % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(l.name.clone())
                .legend(swatch(color));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })?;
    let caption = "Each phase's response time at every percentile of its whole-phase histogram \
                   (for a find-capacity phase, its best passing and first failing step's); \
                   the axis stretches the tail (1/(1−p)), so 99% and 99.9% sit a decade apart."
        .to_string();
    Ok(drawn(ID, TITLE, caption, svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis_reads_in_percent() {
        assert_eq!(percentile_label(&1.0), "0%");
        assert_eq!(percentile_label(&10.0), "90%");
        assert_eq!(percentile_label(&100.0), "99%");
        assert_eq!(percentile_label(&1000.0), "99.9%");
        assert_eq!(percentile_label(&10000.0), "99.99%");
    }
}
