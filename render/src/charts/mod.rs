//! report.html's charts, each an inline SVG drawn by plotters into a
//! String (no fonts are read: the SVG names `sans-serif` and the browser
//! draws the text): the time charts over the run's one time axis (`time`),
//! the find-capacity curve and the USL fit (`capacity`), and the latency
//! percentile spectrum (`spectrum`). Long series are drawn through
//! [`crate::lttb`]; the report keeps every interval.

mod capacity;
mod spectrum;
mod time;

use floodgate_reports::scenario::ScenarioReport;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;
use serde::Serialize;

use crate::RenderError;
use crate::timeline::PhaseSeries;

/// Chart size in SVG pixels (the page scales them to its width).
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 340;

/// The most points one line of a chart draws.
pub const MAX_POINTS: usize = 800;

/// One chart of the page.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `chart-latency`, `chart-capacity-<phase>`, …: the `<figure>`'s id.
    pub id: String,
    pub title: String,
    /// What the chart shows, in words, and what it lacks.
    pub caption: String,
    pub svg: String,
    /// `drawn`, or `not-sampled` when the report holds nothing to draw
    /// (the SVG is then an empty frame that says so).
    pub state: &'static str,
}

/// Every chart of the report, in page order.
pub fn all(report: &ScenarioReport, series: &[PhaseSeries]) -> Result<Vec<Figure>, RenderError> {
    let mut out = vec![
        time::latency(report, series)?,
        time::rate(report, series)?,
        time::outcomes(report, series)?,
        time::accept_queue(report, series)?,
    ];
    for p in report.phases.iter().filter(|p| p.capacity.is_some()) {
        out.extend(capacity::figures(report, p)?);
    }
    out.push(spectrum::spectrum(report)?);
    Ok(out)
}

/// What drawing returns inside a chart function.
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws one chart into an SVG string with `draw`, mapping plotters'
/// errors to [`RenderError::Chart`] under `id`.
fn svg(
    id: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> Result<String, RenderError> {
    svg_sized(id, HEIGHT, draw)
}

/// [`svg`], `height` pixels high.
fn svg_sized(
    id: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> Result<String, RenderError> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (WIDTH, height)).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drawn.map_err(|e| RenderError::Chart {
            chart: id.to_string(),
            why: e.to_string(),
        })?;
    }
    Ok(s)
}

/// A drawn figure.
fn drawn(id: &str, title: &str, caption: String, svg: String) -> Figure {
    Figure {
        id: id.into(),
        title: title.into(),
        caption,
        svg,
        state: "drawn",
    }
}

/// An empty frame that says what is missing, for a chart the report holds
/// no data for.
fn not_sampled(id: &str, title: &str, what: &str) -> Result<Figure, RenderError> {
    const NOT_SAMPLED_HEIGHT: u32 = 80;
    let svg = svg_sized(id, NOT_SAMPLED_HEIGHT, |root| {
        let style = ("sans-serif", 20).into_font().color(&GREY);
        root.draw(&Text::new(
            format!("{what}: not sampled"),
            (30, NOT_SAMPLED_HEIGHT as i32 / 2 - 10),
            style,
        ))?;
        Ok(())
    })?;
    Ok(Figure {
        id: id.into(),
        title: title.into(),
        caption: format!("{what}: not sampled in this report."),
        svg,
        state: "not-sampled",
    })
}

/// A chart of the page, as plotters builds it over its two axes.
type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// How an axis's labels read: a value to its words.
type Label<'c, T> = &'c dyn Fn(&T) -> String;

/// Draws a chart's grid and axes: the faint grid, each axis named, its
/// labels read through `x_label` (plotters' own numbers when `None`) and
/// `y_label`, in [`label_font`].
fn mesh<X, Y>(
    chart: &mut Chart<'_, '_, X, Y>,
    (x_desc, x_label): (&str, Option<Label<'_, X::ValueType>>),
    (y_desc, y_label): (&str, Label<'_, Y::ValueType>),
) -> Drawn
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(LIGHT)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(y_label)
        .label_style(label_font());
    if let Some(x_label) = x_label {
        mesh.x_label_formatter(x_label);
    }
    mesh.draw()?;
    Ok(())
}

/// Draws the legend at `position`, over a white box.
fn legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut Chart<'a, 'b, X, Y>,
    position: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font(label_font())
        .draw()?;
    Ok(())
}

/// A legend swatch: a short line in `style`.
fn line_swatch(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style)
}

/// A legend swatch: a short line of `color`, as the time charts draw it.
fn swatch(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    line_swatch(color.stroke_width(3))
}

/// The font of axis labels and legends.
fn label_font() -> TextStyle<'static> {
    ("sans-serif", 14).into_font().into()
}

/// The font of a chart's caption line.
fn caption_font() -> TextStyle<'static> {
    ("sans-serif", 18).into_font().into()
}

/// Colours, picked to stay apart for colour-blind readers (Okabe-Ito).
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const VERMILION: RGBColor = RGBColor(213, 94, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const SKY: RGBColor = RGBColor(86, 180, 233);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
pub const GREY: RGBColor = RGBColor(120, 120, 120);
pub const PALETTE: [RGBColor; 8] = [GREEN, VERMILION, ORANGE, BLUE, PURPLE, SKY, YELLOW, GREY];

/// A positive range around `values` for a log axis: a margin either side,
/// and a decade when they are all one value.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.01..10.0;
    }
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    if hi / lo < 10.0 {
        let mid = (lo * hi).sqrt();
        return mid / 3.2..mid * 3.2;
    }
    lo..hi
}

/// `0..max` with a margin, never empty.
fn linear_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let hi = values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    0.0..if hi > 0.0 { hi * 1.1 } else { 1.0 }
}

/// A value on a log latency axis: `0.5 ms`, `20 ms`, `1.5 s`.
fn ms_label(v: &f64) -> String {
    if *v >= 1000.0 {
        format!("{} s", trim(v / 1000.0))
    } else {
        format!("{} ms", trim(*v))
    }
}

/// The faint grid between labelled lines.
pub const LIGHT: RGBColor = RGBColor(238, 238, 238);

/// A count or rate on an axis: `2000`, `1.5`, `0.25`.
fn num_label(v: &f64) -> String {
    trim(*v)
}

/// A number with no more digits than it needs.
fn trim(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The points of `phase` that `pick` draws, through LTTB on `y`.
fn downsample<T: Copy>(xy: &[(f64, f64)], keep: impl Fn(usize) -> T) -> Vec<T> {
    crate::lttb::lttb(xy, MAX_POINTS)
        .into_iter()
        .map(keep)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_only_the_digits_they_need() {
        assert_eq!(ms_label(&20.0), "20 ms");
        assert_eq!(ms_label(&0.5), "0.5 ms");
        assert_eq!(ms_label(&1500.0), "1.5 s");
        assert_eq!(ms_label(&2.26), "2.3 ms");
    }

    #[test]
    fn a_log_range_is_never_empty() {
        let r = log_range([5.0, 5.0].into_iter());
        assert!(r.start > 0.0 && r.end / r.start >= 10.0, "{r:?}");
        let r = log_range([0.0].into_iter());
        assert!(r.start > 0.0 && r.end > r.start);
    }
}
