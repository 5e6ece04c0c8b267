//! A slot's side of `--malformed`: one malformed input sent on a connection
//! of its own and read until the server closes or the deadline fires, and
//! the times of the coincidence log that ties failed valid requests to the
//! inputs sent around them. Generating inputs and classifying replies is
//! `crate::malformed`'s; when a slot sends one is the request loop's
//! (`exchange`).

use std::io;
use std::net::IpAddr;
use std::time::Instant;

use futures_lite::future;

use super::connect::connect_uncounted;
use super::exchange::write_all;
use super::{Deadline, Shared};
use crate::malformed::{MAX_REPLY_BYTES, MalformedOutcome, classify};
use crate::outcome::Outcome;

/// Milliseconds from `start` to `t`, for the coincidence log.
pub(super) fn ms_since(start: Instant, t: Instant) -> u32 {
    t.saturating_duration_since(start).as_millis() as u32
}

/// With `--malformed`, remembers when a valid request failed, so malformed
/// inputs sent around that time can be saved.
pub(super) fn note_failure(sh: &Shared, intended: Instant, o: Outcome) {
    if sh.plan.malformed.is_none() || matches!(o, Outcome::Ok | Outcome::SynRetransmitted) {
        return;
    }
    let end = ms_since(sh.start, Instant::now());
    sh.rec(intended)
        .malformed
        .failure(ms_since(sh.start, intended), end);
}

/// Sends one malformed input on a connection of its own, half-closes, and
/// reads until the server closes or `--read-timeout` passes. The slot's
/// deadline is reused: the slot does nothing else meanwhile.
pub(super) async fn malformed_exchange(
    sh: &Shared,
    source: Option<IpAddr>,
    input: &[u8],
    deadline: &Deadline,
) -> MalformedOutcome {
    let Ok(c) = connect_uncounted(sh, source).await else {
        return MalformedOutcome::ConnectFailed;
    };
    let stream = c.stream;
    deadline.arm(Instant::now() + sh.plan.read_timeout);
    let work = async {
        // A server may answer and close before it has read everything; a
        // failed write is then no failure of the exchange, and what it sent
        // is still read below.
        let _ = write_all(&stream, input).await;
        // The half-close tells the server no more bytes come, so an input
        // cut short ends now instead of at the server's head timeout.
        let _ = stream.get_ref().shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        let mut truncated = false;
        // On the heap: an array here would sit in every slot's task, used
        // or not (see the size test in `mod.rs`).
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            stream.readable().await;
            match stream.read(&mut chunk) {
                Ok(0) => return classify(&reply, truncated),
                Ok(n) => {
                    let keep = n.min(MAX_REPLY_BYTES - reply.len());
                    reply.extend_from_slice(&chunk[..keep]);
                    truncated |= keep < n;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                // A reset ends the reply as a close does; what came before
                // it still counts.
                Err(_) => return classify(&reply, true),
            }
        }
    };
    let o = future::or(work, async {
        deadline.expired().await;
        MalformedOutcome::Hung
    })
    .await;
    deadline.disarm();
    o
}
