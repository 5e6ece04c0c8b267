//! The charts over the run's one time axis: latency percentiles per
//! interval (log scale), offered against achieved rate, outcomes stacked,
//! and the accept queue against its backlog with the kernel's listen
//! overflows. Each phase is its own line (no line joins two phases), and
//! every phase's start is marked and named.

use std::collections::BTreeSet;
use std::ops::Range;

use floodgate_reports::scenario::ScenarioReport;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{
    BLUE, Drawn, Figure, GREY, ORANGE, PALETTE, VERMILION, caption_font, downsample, drawn,
    label_font, legend, linear_range, log_range, mesh, ms_label, not_sampled, num_label, svg,
    swatch,
};
use crate::RenderError;
use crate::timeline::{PhaseSeries, Point};

/// A line of a chart: its legend, colour and the figure it draws.
type LineSpec = (&'static str, RGBColor, fn(&Point) -> f64);

/// A chart over the run's time axis, as plotters builds it.
type TimeChart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// The run's time axis: from 0 to the end of the last phase.
fn time_range(report: &ScenarioReport, series: &[PhaseSeries]) -> Range<f64> {
    let end = series
        .iter()
        .map(|s| s.end_s)
        .chain(
            series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.t_s + p.duration_s)),
        )
        .fold(report.elapsed_s, f64::max);
    0.0..end.max(1.0)
}

/// Where a point is drawn: the middle of its interval.
fn mid(p: &Point) -> f64 {
    p.t_s + p.duration_s / 2.0
}

/// A dashed grey line at each phase's start, with its name at the top.
fn boundaries<'a, 'b, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    series: &[PhaseSeries],
    lo: Y::ValueType,
    hi: Y::ValueType,
) -> Drawn
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let style = ("sans-serif", 12).into_font().color(&GREY);
    for s in series {
        chart.draw_series(DashedLineSeries::new(
            [(s.start_s, lo.clone()), (s.start_s, hi.clone())],
            4,
            4,
            GREY.mix(0.7).stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" {}", s.name),
            (s.start_s, hi.clone()),
            style.clone(),
        )))?;
    }
    Ok(())
}

/// Builds the chart frame: caption, axes, labels.
fn frame<'a, 'b, Y: AsRangedCoord>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    x: Range<f64>,
    y: Y,
) -> Result<TimeChart<'a, 'b, Y::CoordDescType>, Box<dyn std::error::Error>> {
    Ok(ChartBuilder::on(root)
        .caption(caption, caption_font())
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(76)
        .build_cartesian_2d(x, y)?)
}

/// A phase this short gets a marker on every point, so that a phase of
/// one interval (which makes no line) still shows.
const MARKED_BELOW: usize = 30;

/// Markers on the points of a short line.
fn markers(
    points: &[(f64, f64)],
    color: RGBColor,
) -> impl Iterator<Item = Circle<(f64, f64), u32>> + '_ {
    let short = points.len() < MARKED_BELOW;
    points
        .iter()
        .filter(move |_| short)
        .map(move |&p| Circle::new(p, 3, color.filled()))
}

/// Draws a line of each phase's `points` in `color` (a short one marked),
/// named `name` once in the legend.
fn phase_lines<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut TimeChart<'a, 'b, Y>,
    name: &str,
    color: RGBColor,
    phases: impl Iterator<Item = Vec<(f64, f64)>>,
) -> Drawn {
    for (k, points) in phases.enumerate() {
        chart.draw_series(markers(&points, color))?;
        let drawn = chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
        if k == 0 {
            drawn.label(name).legend(swatch(color));
        }
    }
    Ok(())
}

/// A line's points of one phase, downsampled.
fn line(s: &PhaseSeries, y: fn(&Point) -> f64, with_requests: bool) -> Vec<(f64, f64)> {
    let xy: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter(|p| !with_requests || p.count > 0)
        .map(|p| (mid(p), y(p)))
        .collect();
    downsample(&xy, |i| xy[i])
}

/// p50, p99 and max per interval on a log axis.
pub fn latency(report: &ScenarioReport, series: &[PhaseSeries]) -> Result<Figure, RenderError> {
    const ID: &str = "chart-latency";
    const TITLE: &str = "Latency percentiles over time";
    let points = || {
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|p| p.count > 0)
    };
    if points().next().is_none() {
        return not_sampled(ID, TITLE, "per-interval latency");
    }
    let y = log_range(points().flat_map(|p| [p.p50_ms, p.p99_ms, p.max_ms]));
    let x = time_range(report, series);
    let lines: [LineSpec; 3] = [
        ("p50", BLUE, |p| p.p50_ms),
        ("p99", ORANGE, |p| p.p99_ms),
        ("max", VERMILION, |p| p.max_ms),
    ];
    let svg = svg(ID, |root| {
        let mut chart = frame(
            root,
            "Latency per interval (log scale)",
            x,
            y.clone().log_scale(),
        )?;
        mesh(
            &mut chart,
            ("seconds into the run", Some(&num_label)),
            ("response time", &ms_label),
        )?;
        boundaries(&mut chart, series, y.start, y.end)?;
        for (name, color, pick) in lines {
            let phases = series
                .iter()
                .filter(|s| s.points.iter().any(|p| p.count > 0))
                .map(|s| {
                    line(s, pick, true)
                        .into_iter()
                        .map(|(x, y)| (x, y.max(1e-3)))
                        .collect()
                });
            phase_lines(&mut chart, name, color, phases)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })?;
    let caption = "p50, p99 and max response time of the requests intended in each interval, \
                   from each request's intended start; dashed lines mark where each phase begins."
        .to_string();
    Ok(drawn(ID, TITLE, caption, svg))
}

/// Offered against achieved requests per second.
pub fn rate(report: &ScenarioReport, series: &[PhaseSeries]) -> Result<Figure, RenderError> {
    const ID: &str = "chart-rate";
    const TITLE: &str = "Offered and achieved rate over time";
    let points = || series.iter().flat_map(|s| &s.points);
    if points().next().is_none() {
        return not_sampled(ID, TITLE, "per-interval rate");
    }
    // Reports written before intervals carried `offered` and `answered`
    // hold zeros there; they still count `ok` per interval.
    let recorded = crate::timeline::load_recorded(points());
    let lines: Vec<LineSpec> = if recorded {
        vec![
            ("offered", GREY, |p| p.offered_per_s),
            ("achieved (answered)", BLUE, |p| p.answered_per_s),
        ]
    } else {
        vec![("ok", BLUE, Point::ok_per_s)]
    };
    let y = linear_range(points().flat_map(|p| lines.iter().map(|l| (l.2)(p)).collect::<Vec<_>>()));
    let x = time_range(report, series);
    let svg = svg(ID, |root| {
        let mut chart = frame(root, "Requests per second", x, y.clone())?;
        mesh(
            &mut chart,
            ("seconds into the run", Some(&num_label)),
            ("requests per second", &num_label),
        )?;
        boundaries(&mut chart, series, y.start, y.end)?;
        for &(name, color, pick) in &lines {
            let phases = series
                .iter()
                .filter(|s| !s.points.is_empty())
                .map(|s| line(s, pick, false));
            phase_lines(&mut chart, name, color, phases)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })?;
    let caption = if recorded {
        "Offered: requests due (open loop) or started (closed loop) in each interval; \
         achieved: those of them that got a complete response, per second. A gap between \
         the lines is load the server did not take."
    } else {
        "This report's intervals do not record offered and answered load (written before \
         they did); the line is the requests per second that ended ok."
    };
    Ok(drawn(ID, TITLE, caption.to_string(), svg))
}

/// Outcomes per second, stacked.
pub fn outcomes(report: &ScenarioReport, series: &[PhaseSeries]) -> Result<Figure, RenderError> {
    const ID: &str = "chart-outcomes";
    const TITLE: &str = "Outcomes over time";
    let points = || series.iter().flat_map(|s| &s.points);
    if points().next().is_none() {
        return not_sampled(ID, TITLE, "per-interval outcomes");
    }
    let by_kind = points().any(|p| !p.outcomes.is_empty());
    let kinds: Vec<String> = if by_kind {
        let set: BTreeSet<_> = points().flat_map(|p| p.outcomes.keys().copied()).collect();
        set.into_iter().map(|o| o.name().to_string()).collect()
    } else {
        vec!["ok".into(), "errors".into()]
    };
    // Requests per second of each kind, in `kinds` order.
    let stack = |p: &Point| -> Vec<f64> {
        let per_s = |n: u64| n as f64 / p.duration_s.max(1e-9);
        if by_kind {
            kinds
                .iter()
                .map(|k| {
                    let n = p
                        .outcomes
                        .iter()
                        .find(|(o, _)| o.name() == k)
                        .map_or(0, |(_, n)| *n);
                    per_s(n)
                })
                .collect()
        } else {
            vec![per_s(p.ok), per_s(p.errors)]
        }
    };
    let y = linear_range(points().map(|p| stack(p).iter().sum()));
    let x = time_range(report, series);
    let svg = svg(ID, |root| {
        let mut chart = frame(root, "Outcomes per second (stacked)", x, y.clone())?;
        mesh(
            &mut chart,
            ("seconds into the run", Some(&num_label)),
            ("requests per second", &num_label),
        )?;
        for s in series.iter().filter(|s| !s.points.is_empty()) {
            let totals: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|p| (mid(p), stack(p).iter().sum()))
                .collect();
            let kept: Vec<&Point> = downsample(&totals, |i| &s.points[i]);
            // Top of the stack first, so each lower layer is drawn over it.
            for k in (0..kinds.len()).rev() {
                let color = PALETTE[k % PALETTE.len()];
                // A step per interval: flat over the time it covers, so an
                // interval of its own (a short closed phase) still shows.
                let layer = kept.iter().flat_map(|p| {
                    let y = stack(p)[..=k].iter().sum::<f64>();
                    [(p.t_s, y), (p.t_s + p.duration_s, y)]
                });
                chart.draw_series(
                    AreaSeries::new(layer, 0.0, color.mix(0.75)).border_style(color),
                )?;
            }
        }
        // One legend entry per kind, drawn once.
        for (k, kind) in kinds.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
                .label(kind.clone())
                .legend(swatch(color));
        }
        boundaries(&mut chart, series, y.start, y.end)?;
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })?;
    let caption = format!(
        "The requests intended in each interval by how they ended ({}), per second, stacked.",
        kinds.join(", ")
    );
    Ok(drawn(ID, TITLE, caption, svg))
}

/// The accept queue's depth against its backlog, with listen overflows.
pub fn accept_queue(
    report: &ScenarioReport,
    series: &[PhaseSeries],
) -> Result<Figure, RenderError> {
    const ID: &str = "chart-accept-queue";
    const TITLE: &str = "Accept queue over time";
    let points = || series.iter().flat_map(|s| &s.points);
    if points().all(|p| p.queue.is_none()) {
        return not_sampled(ID, TITLE, "accept-queue depth");
    }
    let overflows_sampled = points().any(|p| p.listen_overflows.is_some());
    let y = linear_range(
        points()
            .filter_map(|p| p.queue)
            .flat_map(|q| [q.max_depth as f64, q.backlog as f64]),
    );
    let y2 = linear_range(
        points()
            .filter_map(|p| p.listen_overflows)
            .map(|n| n as f64),
    );
    let x = time_range(report, series);
    let svg = svg(ID, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Accept queue depth and backlog", caption_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(76)
            .right_y_label_area_size(if overflows_sampled { 76 } else { 0 })
            .build_cartesian_2d(x.clone(), y.clone())?
            .set_secondary_coord(x, y2.clone());
        mesh(
            &mut chart,
            ("seconds into the run", Some(&num_label)),
            ("connections queued", &num_label),
        )?;
        boundaries(&mut chart, series, y.start, y.end)?;
        if overflows_sampled {
            chart
                .configure_secondary_axes()
                .y_desc("listen overflows per interval")
                .label_style(label_font())
                .draw()?;
            let bars = points().filter_map(|p| {
                p.listen_overflows.filter(|n| *n > 0).map(|n| {
                    Rectangle::new(
                        [(p.t_s, 0.0), (p.t_s + p.duration_s, n as f64)],
                        ORANGE.mix(0.6).filled(),
                    )
                })
            });
            chart
                .draw_secondary_series(bars)?
                .label("listen overflows (kernel)")
                .legend(swatch(ORANGE));
        }
        let lines: [LineSpec; 2] = [
            ("deepest queue sampled", BLUE, |p| {
                p.queue.map_or(0.0, |q| q.max_depth as f64)
            }),
            ("backlog", VERMILION, |p| {
                p.queue.map_or(0.0, |q| q.backlog as f64)
            }),
        ];
        for (name, color, pick) in lines {
            let phases = series
                .iter()
                .filter(|s| s.points.iter().any(|p| p.queue.is_some()))
                .map(|s| {
                    let sampled: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .filter(|p| p.queue.is_some())
                        .map(|p| (mid(p), pick(p)))
                        .collect();
                    downsample(&sampled, |i| sampled[i])
                });
            phase_lines(&mut chart, name, color, phases)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })?;
    let mut caption = "The deepest accept queue sampled in each interval against the listener's \
                       backlog: a queue at its backlog drops handshakes."
        .to_string();
    if overflows_sampled {
        caption.push_str(
            " Bars: the kernel's ListenOverflows counter over each interval (right axis).",
        );
    } else {
        caption.push_str(" The kernel's listen-overflow counters were not sampled per interval.");
    }
    Ok(drawn(ID, TITLE, caption, svg))
}
