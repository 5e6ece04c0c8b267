//! The `chunked_body` harness: a chunked body through the crate's decoder
//! alone, then through a connection as the body of `POST /echo`, both held
//! to the reference decoder.

use super::driver::{Clock, Driver, READ_CHUNK, limits_for};
use super::responses::{Chunked, HeadKnowledge, check_common, reference_chunked, show};
use crate::ProtocolError;
use crate::chunked::{ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILER_BYTES};

/// A chunked body, after a first byte that chooses the limits and the
/// split: first through the crate's decoder on its own, then through a
/// connection as the body of `POST /echo`.
///
/// The decoder never consumes more than it is given, keeps the caller's
/// unconsumed bytes bounded, never produces more than the limit, and gives
/// the same result whole and split. Where the independent reference decoder
/// is certain, both the decoder and the connection must agree with it: a
/// valid body within the limit is decoded (and echoed) exactly, one over the
/// limit is refused with 413, a malformed one with 400 and nothing after, and
/// an incomplete one never gets a 200.
pub fn chunked_body(data: &[u8]) {
    let Some((&config, body)) = data.split_first() else {
        return;
    };
    let limits = limits_for(config);
    let limit = limits.max_body_bytes;
    let reference = reference_chunked(body, limit);

    let whole = decode_in_pieces(body, body.len().max(1), limit);
    let piece = usize::from(config >> 2) + 1;
    let split = decode_in_pieces(body, piece, limit);
    assert_eq!(
        whole, split,
        "decoder: whole and in {piece}-byte pieces differ"
    );
    match (&reference, &whole) {
        (Chunked::Complete { body, consumed }, Ok((got, used, true))) => {
            assert!(got == body, "decoder: body {got:?}, reference {body:?}");
            assert_eq!(used, consumed, "decoder: consumed");
        }
        (Chunked::Incomplete, Ok((_, _, false)))
        | (Chunked::TooLarge, Err(ProtocolError::BodyTooLarge))
        | (Chunked::Invalid, Err(ProtocolError::BadChunk))
        | (Chunked::Ambiguous, _) => {}
        (reference, got) => panic!("decoder: {got:?}, reference: {reference:?}"),
    }

    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(body);
    let run = |piece: usize| {
        let mut d = Driver::new(limits, Clock::Frozen, READ_CHUNK);
        for part in request.chunks(piece) {
            d.send(part);
        }
        d.settle(true);
        d.finish()
    };
    let whole = run(READ_CHUNK);
    let stream = check_common(&whole, |_| HeadKnowledge::No);
    let first = stream.responses.first();
    let status = first.map(|r| r.status);
    match reference {
        Chunked::Complete { body: decoded, .. } => {
            let first = first.expect("a valid chunked request got no response");
            assert_eq!(first.status, 200, "valid chunked body refused");
            assert!(
                *first.body == decoded[..],
                "echo differs from the decoded body: sent {:?}, echoed {:?}",
                show(&decoded),
                show(&first.body)
            );
        }
        Chunked::TooLarge => assert_eq!(status, Some(413), "chunked body over the limit"),
        Chunked::Invalid => {
            assert_eq!(status, Some(400), "malformed chunked body");
            assert_eq!(stream.responses.len(), 1, "responses after a 400");
        }
        Chunked::Incomplete => {
            assert_ne!(status, Some(200), "incomplete chunked body answered 200")
        }
        Chunked::Ambiguous => {}
    }
    let split = run(piece);
    assert!(
        split == whole,
        "chunked request split into {piece}-byte reads gave different output\nsplit: {:?}\nwhole: {:?}",
        show(&split.out),
        show(&whole.out),
    );
}

/// Decodes `data` presented `piece` bytes at a time, keeping what the decoder
/// leaves unconsumed as a caller must: the body, the bytes consumed and
/// whether it ended, or the error.
fn decode_in_pieces(
    data: &[u8],
    piece: usize,
    limit: usize,
) -> Result<(Vec<u8>, usize, bool), ProtocolError> {
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut consumed = 0;
    for part in data.chunks(piece) {
        pending.extend_from_slice(part);
        let progress = decoder.decode(&pending, &mut body, limit)?;
        assert!(
            progress.consumed <= pending.len(),
            "decoder consumed {} of {} bytes",
            progress.consumed,
            pending.len()
        );
        assert!(
            body.len() <= limit,
            "decoded {} bytes past the limit {limit}",
            body.len()
        );
        // `decoded()` counts declared chunk sizes as each size line is
        // accepted, so it runs ahead of the body within a chunk.
        assert!(
            decoder.decoded() >= body.len() as u64 && decoder.decoded() <= limit as u64,
            "decoded() is {} with {} body bytes and limit {limit}",
            decoder.decoded(),
            body.len()
        );
        consumed += progress.consumed;
        pending.drain(..progress.consumed);
        if progress.done {
            return Ok((body, consumed, true));
        }
        // What a caller must keep is one unfinished line at most.
        assert!(
            pending.len() <= MAX_TRAILER_BYTES.max(MAX_CHUNK_LINE) + piece,
            "decoder left {} bytes unconsumed",
            pending.len()
        );
    }
    Ok((body, consumed, false))
}
