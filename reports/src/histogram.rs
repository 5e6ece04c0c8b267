//! The one histogram codec of result files: HdrHistogram V2 + deflate,
//! base64 (standard alphabet), as `--out` writes them. Decoding is bounded:
//! no input can make it allocate more than [`MAX_HISTOGRAM_BYTES`].

use std::io::Read;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

/// The most bytes one histogram may inflate to. floodgate's own histograms
/// (1 µs to 60 s, 3 significant digits) take a few kilobytes.
pub const MAX_HISTOGRAM_BYTES: u64 = 4 << 20;

/// HdrHistogram's V2 encoding, and V2 wrapped in zlib (what floodgate
/// writes); each a 4-byte big-endian cookie.
pub(crate) const V2_COOKIE: u32 = 0x1c84_9313;
pub(crate) const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;

/// The V2 header: cookie, payload length, normalising offset, significant
/// digits, lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER_BYTES: usize = 40;

/// Why a histogram string does not decode (or a histogram does not encode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    #[error("not base64: {0}")]
    Base64(String),
    #[error("too short")]
    TooShort,
    #[error("cookie {0:#010x} is not HdrHistogram V2+deflate")]
    Cookie(u32),
    #[error("compressed length {0} runs past the end")]
    CompressedLength(u32),
    #[error("does not inflate: {0}")]
    Inflate(String),
    #[error("inflates past {MAX_HISTOGRAM_BYTES} bytes")]
    TooLarge,
    #[error("V2 header cut short")]
    HeaderCutShort,
    #[error("inner cookie {0:#010x} is not HdrHistogram V2")]
    InnerCookie(u32),
    #[error("payload length {stated} but only {available} bytes follow the header")]
    PayloadLength { stated: u32, available: usize },
    #[error("does not decode: {0}")]
    Decode(String),
    #[error("does not encode: {0}")]
    Encode(String),
}

/// Encodes a histogram as a result file stores it.
pub fn encode(h: &Histogram<u64>) -> Result<String, HistogramError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes one histogram string of a result file. The stream is inflated
/// here, within [`MAX_HISTOGRAM_BYTES`], and its header checked against what
/// was inflated before hdrhistogram sees it: hdrhistogram sizes its buffer
/// from the header's payload length, so a 40-byte file could otherwise ask
/// for gigabytes.
pub fn decode(b64: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| HistogramError::Base64(e.to_string()))?;
    let (cookie, rest) = be_u32(&bytes).ok_or(HistogramError::TooShort)?;
    if cookie != V2_DEFLATE_COOKIE {
        return Err(HistogramError::Cookie(cookie));
    }
    let (compressed_len, rest) = be_u32(rest).ok_or(HistogramError::TooShort)?;
    let stream = usize::try_from(compressed_len)
        .ok()
        .and_then(|n| rest.get(..n))
        .ok_or(HistogramError::CompressedLength(compressed_len))?;
    let mut v2 = Vec::new();
    flate2::read::ZlibDecoder::new(stream)
        .take(MAX_HISTOGRAM_BYTES + 1)
        .read_to_end(&mut v2)
        .map_err(|e| HistogramError::Inflate(e.to_string()))?;
    if v2.len() as u64 > MAX_HISTOGRAM_BYTES {
        return Err(HistogramError::TooLarge);
    }
    let payload = v2
        .get(V2_HEADER_BYTES..)
        .ok_or(HistogramError::HeaderCutShort)?;
    let (inner_cookie, rest) = be_u32(&v2).ok_or(HistogramError::TooShort)?;
    if inner_cookie != V2_COOKIE {
        return Err(HistogramError::InnerCookie(inner_cookie));
    }
    let (payload_len, _) = be_u32(rest).ok_or(HistogramError::TooShort)?;
    if payload_len as usize > payload.len() {
        return Err(HistogramError::PayloadLength {
            stated: payload_len,
            available: payload.len(),
        });
    }
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &v2[..])
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))
}

fn be_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
    }

    #[test]
    fn histograms_round_trip_exactly() {
        let mut h = histogram();
        for us in [1, 5, 900, 20_000, 59_000_000] {
            h.record(us).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).expect("decodes");
        assert_eq!(back, h);
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
        assert_eq!(
            decode(&b64),
            Err(HistogramError::PayloadLength {
                stated: u32::MAX,
                available: 0
            })
        );
    }

    #[test]
    fn garbage_says_what_is_wrong() {
        assert!(matches!(decode("!!"), Err(HistogramError::Base64(_))));
        assert_eq!(decode(""), Err(HistogramError::TooShort));
        assert_eq!(decode("AAAAAAAA"), Err(HistogramError::Cookie(0)));
    }
}
