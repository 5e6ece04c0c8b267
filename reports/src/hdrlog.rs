//! A scenario report's interval latency histograms in HdrHistogram's
//! interval-log format (`.hlog`, what HdrHistogram's `HistogramLogReader`,
//! `HistogramLogProcessor` and plotters read): one line per interval of
//! every phase that sent load (and every find-capacity step), tagged with
//! the phase's name, each histogram "V2 compressed" (V2 + deflate, base64)
//! exactly as the report's `response_time` holds it, so logs of several
//! shards merge without loss. Timestamps count from the report's
//! `started_at_unix_s`, written as both StartTime and BaseTime. The writer
//! is hdrhistogram's own (`serialization::interval_log`); this module only
//! walks the report.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};

use crate::histogram::{self, HistogramError};
use crate::run::Run;
use crate::scenario::ScenarioReport;

/// The interval log format version HdrHistogram's Java writer states.
const LOG_FORMAT: &str = "[Histogram log format version 1.3]";

/// Values are µs; the log's max column is in ms, as HdrHistogram's tools
/// show latencies by default.
const MAX_VALUE_DIVISOR: f64 = 1000.0;

/// Why the log could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("writing the interval log: {0}")]
    Io(#[from] std::io::Error),
    #[error("phase {phase:?}: intervals[{index}].response_time: {why}")]
    Histogram {
        phase: String,
        index: usize,
        why: HistogramError,
    },
    #[error("phase {phase:?}: intervals[{index}]: does not serialise: {why}")]
    Serialize {
        phase: String,
        index: usize,
        why: String,
    },
}

/// The runs of a phase that carry intervals, in time order: its own, or
/// its find-capacity steps'.
pub(crate) fn phase_runs(p: &crate::scenario::PhaseReport) -> impl Iterator<Item = &Run> {
    p.run.iter().chain(
        p.capacity
            .iter()
            .flat_map(|c| c.steps.iter().map(|s| &s.run)),
    )
}

/// A phase name as an interval-log tag: the format forbids `,`, spaces
/// and line breaks in a tag, so those become `_`.
pub fn tag_of(name: &str) -> String {
    let tag: String = name
        .chars()
        .map(|c| match c {
            ',' | ' ' | '\r' | '\n' => '_',
            c => c,
        })
        .collect();
    if tag.is_empty() { "_".into() } else { tag }
}

/// Writes `report`'s interval histograms as an HdrHistogram interval log.
pub fn write_hlog<W: Write>(report: &ScenarioReport, mut w: W) -> Result<(), HlogError> {
    let start = UNIX_EPOCH + Duration::from_secs_f64(report.started_at_unix_s.max(0.0));
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "floodgate {}: scenario {:?}, response times from each request's intended start, µs",
            report.floodgate_version, report.scenario.name
        ))
        .add_comment(LOG_FORMAT)
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(&mut w, &mut serializer)?;
    for p in &report.phases {
        let tag = tag_of(&p.name);
        for run in phase_runs(p) {
            let offset_s = run.started_at_unix_s - report.started_at_unix_s;
            for (index, interval) in run.intervals.iter().enumerate() {
                let h = histogram::decode(&interval.response_time).map_err(|why| {
                    HlogError::Histogram {
                        phase: p.name.clone(),
                        index,
                        why,
                    }
                })?;
                let at = Duration::from_secs_f64((offset_s + interval.start_s).max(0.0));
                let length = Duration::from_secs_f64(interval.duration_s.max(0.0));
                log.write_histogram(&h, at, length, Tag::new(&tag))
                    .map_err(|e| match e {
                        IntervalLogWriterError::IoError(e) => HlogError::Io(e),
                        IntervalLogWriterError::SerializeError(e) => HlogError::Serialize {
                            phase: p.name.clone(),
                            index,
                            why: format!("{e:?}"),
                        },
                    })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn the_log_reads_back_into_the_reports_interval_histograms() {
        let report = crate::sample::report();
        let mut out = Vec::new();
        write_hlog(&report, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("#floodgate "), "{text}");
        assert!(text.contains("#[Histogram log format version 1.3]\n"));

        // Every interval of every phase, in order, with its phase's tag and
        // its absolute start.
        let mut expected = Vec::new();
        for p in &report.phases {
            for run in phase_runs(p) {
                for i in &run.intervals {
                    let at = run.started_at_unix_s + i.start_s;
                    expected.push((tag_of(&p.name), at, i.duration_s, &i.response_time));
                }
            }
        }
        assert!(expected.len() >= 3, "the sample has intervals to write");
        let (mut start_time, mut base_time) = (None, None);
        let mut read = Vec::new();
        for entry in IntervalLogIterator::new(&out) {
            match entry.unwrap() {
                LogEntry::StartTime(t) => start_time = Some(t.as_secs_f64()),
                LogEntry::BaseTime(t) => base_time = Some(t.as_secs_f64()),
                LogEntry::Interval(h) => read.push((
                    h.tag().map(|t| t.as_str().to_owned()).unwrap(),
                    h.start_timestamp().as_secs_f64(),
                    h.duration().as_secs_f64(),
                    h.encoded_histogram().to_owned(),
                    h.max(),
                )),
            }
        }
        let base = base_time.expect("a BaseTime header");
        assert!((base - report.started_at_unix_s).abs() < 0.001);
        assert!((start_time.unwrap() - report.started_at_unix_s).abs() < 0.001);
        assert_eq!(read.len(), expected.len());
        for ((tag, at, length, b64, max), (want_tag, want_at, want_length, want)) in
            read.iter().zip(&expected)
        {
            assert_eq!(tag, want_tag);
            assert!((base + at - want_at).abs() < 0.001, "{at} vs {want_at}");
            assert!((length - want_length).abs() < 0.001);
            let got = histogram::decode(b64).unwrap();
            let want = histogram::decode(want).unwrap();
            assert_eq!(got, want);
            assert_eq!(got.len(), want.len());
            assert!((max - want.max() as f64 / 1000.0).abs() < 0.001);
        }
    }

    #[test]
    fn tags_lose_the_characters_the_format_forbids() {
        assert_eq!(tag_of("warm up,1"), "warm_up_1");
        assert_eq!(tag_of("steady"), "steady");
        assert!(Tag::new(&tag_of("a b\nc,d\r")).is_some());
    }
}
