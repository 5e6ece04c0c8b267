//! Reads a result file written by `floodgate load --out` back into the
//! [`Run`] it was written from, checked: the books balance and every stated
//! percentile is its decoded histogram's. Files come from other machines and other versions, so
//! any input gives a value or a [`ReadError`] saying what is wrong, never a
//! panic, and no input can make the reader allocate more than a bounded
//! amount.

use crate::histogram::HistogramError;
use crate::outcome::Outcome;
use crate::run::{Percentiles, Run, SCHEMA_VERSION};

/// Result files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// Why a result file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the file is {0} bytes, over the {MAX_FILE_BYTES}-byte limit for a result")]
    TooLarge(usize),
    /// Not JSON, or a field missing or of the wrong type; serde_json's
    /// message names the line and column.
    #[error("not a floodgate result: {0}")]
    Json(#[from] serde_json::Error),
    #[error("schema_version {0}: this floodgate reads version {SCHEMA_VERSION}")]
    Version(u32),
    #[error("outcomes: {0:?} is missing")]
    MissingOutcome(&'static str),
    #[error("outcomes sum to {sum}, but scheduled is {scheduled}: the books do not balance")]
    Books { sum: u128, scheduled: u64 },
    #[error("histograms.{name}: {why}")]
    Histogram {
        name: &'static str,
        why: HistogramError,
    },
    #[error("intervals: {0} of them, over the limit of {max}", max = crate::series::MAX_INTERVALS)]
    TooManyIntervals(usize),
    #[error("intervals[{index}].response_time: {why}")]
    Interval { index: usize, why: HistogramError },
    #[error("{name}.{field} is {stated}, but its histogram gives {decoded}")]
    Disagrees {
        name: &'static str,
        field: &'static str,
        stated: u64,
        decoded: u64,
    },
}

/// Reads and checks one result file's bytes.
pub fn read(bytes: &[u8]) -> Result<Run, ReadError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(bytes.len()));
    }
    // The version first, so a file from a newer floodgate says so rather
    // than failing on whichever field changed.
    #[derive(serde::Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let Version { schema_version } = serde_json::from_slice(bytes)?;
    if schema_version != SCHEMA_VERSION {
        return Err(ReadError::Version(schema_version));
    }
    let run: Run = serde_json::from_slice(bytes)?;

    if let Some(missing) = Outcome::ALL.iter().find(|o| !run.outcomes.contains_key(o)) {
        return Err(ReadError::MissingOutcome(missing.name()));
    }
    let sum: u128 = run.outcomes.values().map(|&n| u128::from(n)).sum();
    if sum != u128::from(run.scheduled) {
        return Err(ReadError::Books {
            sum,
            scheduled: run.scheduled,
        });
    }

    let decoded = run
        .histograms
        .decode()
        .map_err(|(name, why)| ReadError::Histogram { name, why })?;

    // The percentiles scripts read must be the histograms' own.
    for (name, stated, h) in [
        ("latency_us", &run.latency_us, &decoded.response_time),
        (
            "service_time_us",
            &run.service_time_us,
            &decoded.service_time,
        ),
        (
            "connect_time_us",
            &run.connect_time_us,
            &decoded.connect_time,
        ),
        (
            "generator_lag_us",
            &run.generator_lag_us,
            &decoded.generator_lag,
        ),
    ] {
        check_percentiles(name, stated, &Percentiles::of(h))?;
    }
    if run.intervals.len() > crate::series::MAX_INTERVALS {
        return Err(ReadError::TooManyIntervals(run.intervals.len()));
    }
    for (index, i) in run.intervals.iter().enumerate() {
        crate::histogram::decode(&i.response_time)
            .map_err(|why| ReadError::Interval { index, why })?;
    }
    Ok(run)
}

fn check_percentiles(
    name: &'static str,
    stated: &Percentiles,
    decoded: &Percentiles,
) -> Result<(), ReadError> {
    for (field, stated, decoded) in [
        ("count", stated.count, decoded.count),
        ("min", stated.min, decoded.min),
        ("p50", stated.p50, decoded.p50),
        ("p90", stated.p90, decoded.p90),
        ("p99", stated.p99, decoded.p99),
        ("p999", stated.p999, decoded.p999),
        ("max", stated.max, decoded.max),
    ] {
        if stated != decoded {
            return Err(ReadError::Disagrees {
                name,
                field,
                stated,
                decoded,
            });
        }
    }
    Ok(())
}

/// The `report_json` fuzz target's harness: any bytes, read as a result
/// file, give a value or an error, never a panic; what is accepted is
/// consistent (the books balance, the stated percentiles are the decoded
/// histograms') and survives being written and read again unchanged.
#[cfg(any(test, fuzzing))]
pub fn fuzz_report_json(data: &[u8]) {
    let Ok(run) = read(data) else {
        return;
    };
    assert_eq!(run.outcomes_total(), run.scheduled);
    let mut again = Vec::new();
    run.write_json(&mut again)
        .expect("a run read back writes again");
    let back = read(&again).expect("a run written again reads again");
    assert_eq!(back, run);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real result of `floodgate load --out`, committed as a fuzz seed.
    fn sample() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/report_json/open-poisson.json"
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn read_value(v: &serde_json::Value) -> Result<Run, ReadError> {
        read(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn reads_back_every_field_floodgate_writes() {
        let v = sample();
        let run = read_value(&v).expect("reads");
        // Nothing is lost: writing the model gives back the file's JSON.
        assert_eq!(serde_json::to_value(&run).unwrap(), v);
        let decoded = run.histograms.decode().unwrap();
        assert_eq!(run.latency_us, Percentiles::of(&decoded.response_time));
    }

    /// Breaks a good result in one way.
    type Breakage = fn(&mut serde_json::Value);

    #[test]
    fn says_what_is_wrong() {
        let cases: [(Breakage, &str); 8] = [
            (|v| v["schema_version"] = 2.into(), "schema_version 2"),
            (|v| v["scheduled"] = 5.into(), "books do not balance"),
            (|v| v["outcomes"]["teleported"] = 0.into(), "`teleported`"),
            (
                |v| {
                    v["outcomes"].as_object_mut().unwrap().remove("reset");
                },
                "\"reset\" is missing",
            ),
            (|v| v["latency_us"]["p99"] = 1.into(), "latency_us.p99 is 1"),
            (
                |v| v["connect_time_us"]["max"] = 1.into(),
                "connect_time_us.max is 1",
            ),
            (
                |v| v["histograms"]["service_time"] = "!!".into(),
                "histograms.service_time: not base64",
            ),
            (|v| v["seed"] = "seven".into(), "line 1 column"),
        ];
        for (break_it, expected) in cases {
            let mut v = sample();
            break_it(&mut v);
            let err = read_value(&v).expect_err(expected).to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn fuzz_harness_accepts_a_real_result() {
        fuzz_report_json(&serde_json::to_vec(&sample()).unwrap());
    }

    /// Every committed input of the `report_json` fuzz target replays
    /// through its harness on stable Rust; the seeds are real results of
    /// `floodgate load --out`, so each must also read back cleanly. Both
    /// folders must hold inputs: an empty replay would prove nothing.
    #[test]
    fn fuzz_inputs_replay_cleanly() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        for kind in ["corpus", "regressions"] {
            let dir = fuzz.join(kind).join("report_json");
            let mut replayed = 0;
            for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "md") {
                    continue;
                }
                let data = std::fs::read(&path).unwrap();
                fuzz_report_json(&data);
                replayed += 1;
                if kind == "corpus" {
                    if let Err(e) = read(&data) {
                        panic!("{}: {e}", path.display());
                    }
                }
            }
            assert!(replayed > 0, "{} holds no input", dir.display());
        }
    }
}
