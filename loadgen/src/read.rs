//! Reads a result file written by `floodgate load --out` back: the fields
//! scripts and reports rely on, checked for consistency, with its serialised
//! histograms decoded. Files come from other machines and other versions, so
//! any input gives a value or a [`ReadError`] saying what is wrong, never a
//! panic, and no input can make the reader allocate more than a bounded
//! amount.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::outcome::Outcome;
use crate::result::Percentiles;

/// Result files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// The most bytes one histogram may inflate to. floodgate's own histograms
/// (1 µs to 60 s, 3 significant digits) take a few kilobytes.
const MAX_HISTOGRAM_BYTES: u64 = 4 << 20;

/// The result format this reader understands.
const SCHEMA_VERSION: u32 = 1;

/// HdrHistogram's V2 encoding, and V2 wrapped in zlib (what floodgate
/// writes); each a 4-byte big-endian cookie.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;

/// The V2 header: cookie, payload length, normalising offset, significant
/// digits, lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER_BYTES: usize = 40;

/// A result file, read back and checked.
#[derive(Debug)]
pub struct ReadResult {
    pub seed: u64,
    pub partial: bool,
    pub target: String,
    pub scheduled: u64,
    /// Every outcome floodgate knows, by name, with its count.
    pub outcomes: BTreeMap<String, u64>,
    pub achieved_rate_per_s: f64,
    pub latency_us: Percentiles,
    /// From each request's intended send time; `latency_us` is read from it.
    pub response_time: Histogram<u64>,
    pub service_time: Histogram<u64>,
    pub connect_time: Histogram<u64>,
    pub generator_lag: Histogram<u64>,
}

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
    #[error("outcomes: {0:?} is not an outcome floodgate records")]
    UnknownOutcome(String),
    #[error("outcomes: {0:?} is missing")]
    MissingOutcome(&'static str),
    #[error("outcomes sum to {sum}, but scheduled is {scheduled}: the books do not balance")]
    Books { sum: u128, scheduled: u64 },
    #[error("histograms.{name}: {why}")]
    Histogram { name: &'static str, why: String },
    #[error("latency_us.{field} is {stated}, but the response_time histogram gives {decoded}")]
    Disagrees {
        field: &'static str,
        stated: u64,
        decoded: u64,
    },
}

#[derive(Deserialize)]
struct Raw {
    seed: u64,
    partial: bool,
    target: String,
    scheduled: u64,
    outcomes: BTreeMap<String, u64>,
    achieved_rate_per_s: f64,
    latency_us: Percentiles,
    histograms: RawHistograms,
}

#[derive(Deserialize)]
struct RawHistograms {
    response_time: String,
    service_time: String,
    connect_time: String,
    generator_lag: String,
}

/// Reads and checks one result file's bytes.
pub fn read(bytes: &[u8]) -> Result<ReadResult, ReadError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(bytes.len()));
    }
    // The version first, so a file from a newer floodgate says so rather
    // than failing on whichever field changed.
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let Version { schema_version } = serde_json::from_slice(bytes)?;
    if schema_version != SCHEMA_VERSION {
        return Err(ReadError::Version(schema_version));
    }
    let raw: Raw = serde_json::from_slice(bytes)?;

    for name in raw.outcomes.keys() {
        if !Outcome::ALL.iter().any(|o| o.name() == name) {
            return Err(ReadError::UnknownOutcome(name.clone()));
        }
    }
    if let Some(missing) = Outcome::ALL
        .iter()
        .find(|o| !raw.outcomes.contains_key(o.name()))
    {
        return Err(ReadError::MissingOutcome(missing.name()));
    }
    let sum: u128 = raw.outcomes.values().map(|&n| u128::from(n)).sum();
    if sum != u128::from(raw.scheduled) {
        return Err(ReadError::Books {
            sum,
            scheduled: raw.scheduled,
        });
    }

    let h = &raw.histograms;
    let response_time = histogram("response_time", &h.response_time)?;
    let service_time = histogram("service_time", &h.service_time)?;
    let connect_time = histogram("connect_time", &h.connect_time)?;
    let generator_lag = histogram("generator_lag", &h.generator_lag)?;

    // The percentiles scripts read must be the histogram's own.
    let decoded = Percentiles::of(&response_time);
    let stated = raw.latency_us;
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
                field,
                stated,
                decoded,
            });
        }
    }

    Ok(ReadResult {
        seed: raw.seed,
        partial: raw.partial,
        target: raw.target,
        scheduled: raw.scheduled,
        outcomes: raw.outcomes,
        achieved_rate_per_s: raw.achieved_rate_per_s,
        latency_us: raw.latency_us,
        response_time,
        service_time,
        connect_time,
        generator_lag,
    })
}

/// Decodes one base64 V2+deflate histogram. The stream is inflated here,
/// within [`MAX_HISTOGRAM_BYTES`], and its header checked against what was
/// inflated before hdrhistogram sees it: hdrhistogram sizes its buffer from
/// the header's payload length, so a 40-byte file could otherwise ask for
/// gigabytes.
fn histogram(name: &'static str, b64: &str) -> Result<Histogram<u64>, ReadError> {
    decode_histogram(b64).map_err(|why| ReadError::Histogram { name, why })
}

/// Decodes one histogram string of a result file (base64 of HdrHistogram
/// V2+deflate, as `--out` writes them), e.g. to merge results, within the
/// same memory bound as [`read`]; the error says what is wrong with it.
pub fn decode_histogram(b64: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64: {e}"))?;
    let (cookie, rest) = be_u32(&bytes).ok_or("too short")?;
    if cookie != V2_DEFLATE_COOKIE {
        return Err(format!(
            "cookie {cookie:#010x} is not HdrHistogram V2+deflate"
        ));
    }
    let (compressed_len, rest) = be_u32(rest).ok_or("too short")?;
    let stream = usize::try_from(compressed_len)
        .ok()
        .and_then(|n| rest.get(..n))
        .ok_or_else(|| format!("compressed length {compressed_len} runs past the end"))?;
    let mut v2 = Vec::new();
    flate2::read::ZlibDecoder::new(stream)
        .take(MAX_HISTOGRAM_BYTES + 1)
        .read_to_end(&mut v2)
        .map_err(|e| format!("does not inflate: {e}"))?;
    if v2.len() as u64 > MAX_HISTOGRAM_BYTES {
        return Err(format!("inflates past {MAX_HISTOGRAM_BYTES} bytes"));
    }
    let payload = v2.get(V2_HEADER_BYTES..).ok_or("V2 header cut short")?;
    let (inner_cookie, rest) = be_u32(&v2).ok_or("too short")?;
    if inner_cookie != V2_COOKIE {
        return Err(format!(
            "inner cookie {inner_cookie:#010x} is not HdrHistogram V2"
        ));
    }
    let (payload_len, _) = be_u32(rest).ok_or("too short")?;
    if payload_len as usize > payload.len() {
        return Err(format!(
            "payload length {payload_len} but only {} bytes follow the header",
            payload.len()
        ));
    }
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &v2[..])
        .map_err(|e| format!("does not decode: {e:?}"))
}

fn be_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

/// The `report_json` fuzz target's harness: any bytes, read as a result
/// file, give a value or an error, never a panic; what is accepted is
/// consistent (the books balance, the stated percentiles are the decoded
/// histogram's) and survives being encoded and read again.
#[cfg(any(test, fuzzing))]
pub fn fuzz_report_json(data: &[u8]) {
    let Ok(read) = read(data) else {
        return;
    };
    let sum: u128 = read.outcomes.values().map(|&n| u128::from(n)).sum();
    assert_eq!(sum, u128::from(read.scheduled));
    assert_eq!(
        Percentiles::of(&read.response_time).p99,
        read.latency_us.p99
    );
    for h in [
        &read.response_time,
        &read.service_time,
        &read.connect_time,
        &read.generator_lag,
    ] {
        let again = decode_histogram(&crate::result::encode(h))
            .expect("a histogram read back encodes and reads again");
        assert_eq!(again.len(), h.len());
        assert_eq!(again.max(), h.max());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in [100, 200, 300, 5_000] {
            h.record(v).unwrap();
        }
        let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut outcomes = serde_json::Map::new();
        for o in Outcome::ALL {
            outcomes.insert(o.name().into(), 0.into());
        }
        outcomes.insert("ok".into(), 3.into());
        outcomes.insert("read_timeout".into(), 1.into());
        serde_json::json!({
            "schema_version": 1,
            "seed": 7,
            "partial": false,
            "target": "http://127.0.0.1:1/",
            "scheduled": 4,
            "outcomes": outcomes,
            "achieved_rate_per_s": 4.0,
            "latency_us": Percentiles::of(&h),
            "histograms": {
                "response_time": crate::result::encode(&h),
                "service_time": crate::result::encode(&h),
                "connect_time": crate::result::encode(&empty),
                "generator_lag": crate::result::encode(&empty),
            },
        })
    }

    fn read_value(v: &serde_json::Value) -> Result<ReadResult, ReadError> {
        read(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn reads_back_what_floodgate_writes() {
        let r = read_value(&sample()).expect("reads");
        assert_eq!((r.seed, r.scheduled, r.outcomes["ok"]), (7, 4, 3));
        assert_eq!(r.response_time.len(), 4);
        assert_eq!(r.latency_us.p50, r.response_time.value_at_quantile(0.5));
    }

    /// Breaks a good result in one way.
    type Breakage = fn(&mut serde_json::Value);

    #[test]
    fn says_what_is_wrong() {
        let cases: [(Breakage, &str); 7] = [
            (|v| v["schema_version"] = 2.into(), "schema_version 2"),
            (|v| v["scheduled"] = 5.into(), "books do not balance"),
            (|v| v["outcomes"]["teleported"] = 0.into(), "\"teleported\""),
            (
                |v| {
                    v["outcomes"].as_object_mut().unwrap().remove("reset");
                },
                "\"reset\" is missing",
            ),
            (|v| v["latency_us"]["p99"] = 1.into(), "latency_us.p99 is 1"),
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
    fn a_lying_payload_length_is_refused_without_allocating_it() {
        // A V2 header claiming a 4 GiB payload, wrapped as floodgate wraps it.
        let mut v2 = Vec::new();
        v2.extend_from_slice(&V2_COOKIE.to_be_bytes());
        v2.extend_from_slice(&u32::MAX.to_be_bytes());
        v2.extend_from_slice(&0u32.to_be_bytes());
        v2.extend_from_slice(&3u32.to_be_bytes());
        v2.extend_from_slice(&1u64.to_be_bytes());
        v2.extend_from_slice(&60_000_000u64.to_be_bytes());
        v2.extend_from_slice(&1.0f64.to_be_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &v2).unwrap();
        let z = z.finish().unwrap();
        let mut wire = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        wire.extend_from_slice(&(z.len() as u32).to_be_bytes());
        wire.extend_from_slice(&z);
        let b64 = base64::engine::general_purpose::STANDARD.encode(wire);
        let err = decode_histogram(&b64).unwrap_err();
        assert!(err.contains("payload length 4294967295"), "{err}");
    }

    #[test]
    fn fuzz_harness_accepts_a_real_result() {
        fuzz_report_json(&serde_json::to_vec(&sample()).unwrap());
    }

    /// Every committed input of the `report_json` fuzz target replays
    /// through its harness on stable Rust; the seeds are real results of
    /// `floodgate load --out`, so each must also read back cleanly.
    #[test]
    fn fuzz_inputs_replay_cleanly() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut seeds = 0;
        for kind in ["corpus", "regressions"] {
            let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join("report_json")) else {
                continue;
            };
            for entry in dir {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                fuzz_report_json(&data);
                if kind == "corpus" {
                    seeds += 1;
                    if let Err(e) = read(&data) {
                        panic!("{}: {e}", path.display());
                    }
                }
            }
        }
        assert!(seeds > 0, "fuzz/corpus/report_json/ has no seeds");
    }
}
