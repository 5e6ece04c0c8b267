//! floodgate's report files, each rendered from the one model of a scenario
//! run (`floodgate_reports::scenario::ScenarioReport`, what `floodgate run`
//! writes as `report.json`): `summary.md` for a CI job summary
//! (`markdown`), `report.html`, one self-contained page with inline SVG
//! charts (`html`, `charts`), `junit.xml` for a CI's test view (`junit`),
//! and, for HdrHistogram's own tools, `latency.hlog` (the interval log,
//! `floodgate_reports::hdrlog`) and `latency.hgrm` (the percentile
//! distribution, `floodgate_reports::hgrm`). [`write_all`] writes them all
//! into a directory.
//!
//! `timeline` reads the intervals onto the run's one time axis, `lttb`
//! downsamples long series for display (the report keeps every interval),
//! `slo` reads a find-capacity phase's SLO from the scenario text, and
//! `words` holds the words and number formats the renderers share.
//!
//! **No renderer computes a figure the model lacks**, and **this crate
//! touches no socket or runtime**: it depends on floodgate-reports and its
//! renderers' libraries only (plotters' SVG backend, minijinja,
//! quick-junit).

mod charts;
pub mod html;
pub mod junit;
pub mod lttb;
pub mod markdown;
mod slo;
pub mod timeline;
mod words;

use std::path::{Path, PathBuf};

use floodgate_reports::histogram::HistogramError;
use floodgate_reports::scenario::ScenarioReport;

pub use charts::MAX_POINTS;

/// The files [`write_all`] writes, in the order it writes them.
pub const FILES: [&str; 5] = [
    "summary.md",
    "report.html",
    "junit.xml",
    "latency.hlog",
    "latency.hgrm",
];

/// Why a report could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("phases {phase:?}: {what}: {source}")]
    Histogram {
        phase: String,
        what: String,
        source: HistogramError,
    },
    #[error("chart {chart}: {why}")]
    Chart { chart: String, why: String },
    #[error("report.html template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("junit.xml: {0}")]
    Junit(String),
    #[error("latency.hlog: {0}")]
    Hlog(#[from] floodgate_reports::hdrlog::HlogError),
    #[error("latency.hgrm: {0}")]
    Hgrm(#[from] floodgate_reports::hgrm::HgrmError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Renders every file of [`FILES`] from `report` and writes them into
/// `dir` (which must exist), returning their paths. Nothing is written
/// unless everything rendered.
pub fn write_all(report: &ScenarioReport, dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
    let series = timeline::phases(report)?;
    let mut hlog = Vec::new();
    floodgate_reports::hdrlog::write_hlog(report, &mut hlog)?;
    let mut hgrm = Vec::new();
    floodgate_reports::hgrm::write_hgrm(report, &mut hgrm)?;
    let rendered: [Vec<u8>; 5] = [
        markdown::render(report)?.into_bytes(),
        html::render(report, &series)?.into_bytes(),
        junit::render(report)?.into_bytes(),
        hlog,
        hgrm,
    ];
    FILES
        .iter()
        .zip(rendered)
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| RenderError::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}
