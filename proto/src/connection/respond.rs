//! The response half of a connection: from a routed, complete request to
//! the bytes queued for it (fixed, built at run time, or the lazy `/bytes`
//! stream), with the `Connection` header keep-alive and close decide.

use std::time::Instant;

use super::{Connection, Event, Phase, Request, Waiting};
use crate::Stats;
use crate::response::{self, ConnHeader};
use crate::routes::{Allow, Route};

/// The size of one piece of a `/bytes` body, and the low-water mark below
/// which the next piece is produced.
pub(super) const PIECE: usize = 16 * 1024;

/// `bytes_endpoint_byte(i)` for `i` in `0..PIECE + 26`: any piece of a
/// `/bytes` body is one slice of it, starting at `offset % 26`.
static PATTERN: [u8; PIECE + 26] = pattern();

const fn pattern() -> [u8; PIECE + 26] {
    let mut bytes = [0u8; PIECE + 26];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    bytes
}

impl Connection {
    /// Produces the response to a complete request. `more` says whether
    /// input follows it, which decides close after a peer's EOF.
    pub(super) fn respond(
        &mut self,
        route: Route,
        request: Request,
        body: &[u8],
        more: bool,
        now: Instant,
    ) {
        match route {
            Route::Root => self.send_fixed(&response::ROOT, request, more),
            Route::Health => self.send_fixed(&response::HEALTH, request, more),
            Route::NotFound => self.send_fixed(&response::NOT_FOUND, request, more),
            Route::ServerOptions => self.send_fixed(&response::SERVER_OPTIONS, request, more),
            Route::BadParameter => self.send_fixed(&response::BAD_PARAMETER, request, more),
            Route::Unauthorized => self.send_fixed(&response::UNAUTHORIZED, request, more),
            Route::TooManyRequests(retry_after_s) => {
                let conn = self.error_conn_header(request, more);
                self.stats.record_status(429);
                response::too_many_requests(
                    self.output.vec(),
                    retry_after_s,
                    request.head_only,
                    conn,
                );
                if conn == ConnHeader::Close {
                    self.enter_closing();
                }
            }
            Route::MethodNotAllowed(allow) => {
                Stats::bump(&self.stats.protocol_errors);
                let fixed = match allow {
                    Allow::GetHead => &response::NOT_ALLOWED_GET,
                    Allow::Post => &response::NOT_ALLOWED_POST,
                };
                self.send_fixed(fixed, request, more);
            }
            Route::PauseAccept(pause) => {
                // Pauses requested back to back collapse into the longest.
                self.event = Some(match self.event {
                    Some(Event::PauseAccept(queued)) => Event::PauseAccept(queued.max(pause)),
                    None => Event::PauseAccept(pause),
                });
                self.send_fixed(&response::PAUSED, request, more);
            }
            Route::Delay(delay) if delay.is_zero() => {
                self.send_fixed(&response::DELAYED, request, more);
            }
            Route::Delay(delay) => {
                self.phase = Phase::Delay(request);
                let due = now.checked_add(delay);
                self.set_waiting(Waiting::Delay, due);
            }
            Route::Stats => {
                let json =
                    serde_json::to_vec(&self.stats.snapshot()).unwrap_or_else(|_| b"{}".to_vec());
                self.send_dynamic(b"application/json", &json, request, more);
            }
            Route::Echo => self.send_dynamic(b"application/octet-stream", body, request, more),
            Route::Bytes(n) => {
                let conn = self.conn_header(request, more);
                self.stats.record_status(200);
                response::ok_head(self.output.vec(), b"application/octet-stream", n, conn);
                if !request.head_only && n > 0 {
                    self.phase = Phase::Stream {
                        offset: 0,
                        remaining: n,
                        close_after: conn == ConnHeader::Close,
                    };
                    self.fill();
                } else if conn == ConnHeader::Close {
                    self.enter_closing();
                }
            }
        }
    }

    /// Which `Connection` header the response to `request` carries.
    pub(super) fn conn_header(&self, request: Request, more: bool) -> ConnHeader {
        if !request.keep_alive || self.shutting_down || (self.read_closed && !more) {
            ConnHeader::Close
        } else if request.http10 {
            ConnHeader::KeepAlive
        } else {
            ConnHeader::Default
        }
    }

    /// The `Connection` header of an error response, which counts against
    /// `max_errors_per_connection`: the last one allowed closes.
    fn error_conn_header(&mut self, request: Request, more: bool) -> ConnHeader {
        self.error_responses = self.error_responses.saturating_add(1);
        if self.error_responses >= self.limits.max_errors_per_connection {
            ConnHeader::Close
        } else {
            self.conn_header(request, more)
        }
    }

    pub(super) fn send_fixed(&mut self, fixed: &response::Fixed, request: Request, more: bool) {
        let conn = if fixed.status() >= 400 {
            self.error_conn_header(request, more)
        } else {
            self.conn_header(request, more)
        };
        self.stats.record_status(fixed.status());
        self.output
            .push_static(fixed.bytes(request.head_only, conn));
        if conn == ConnHeader::Close {
            self.enter_closing();
        }
    }

    pub(super) fn send_dynamic(
        &mut self,
        content_type: &[u8],
        body: &[u8],
        request: Request,
        more: bool,
    ) {
        let conn = self.conn_header(request, more);
        self.stats.record_status(200);
        let out = self.output.vec();
        response::ok_head(out, content_type, body.len() as u64, conn);
        if !request.head_only {
            out.extend_from_slice(body);
        }
        if conn == ConnHeader::Close {
            self.enter_closing();
        }
    }

    /// Tops up a `/bytes` body while less than a piece is pending; returns
    /// whether the body just ended.
    pub(super) fn fill(&mut self) -> bool {
        let Phase::Stream {
            offset,
            remaining,
            close_after,
        } = &mut self.phase
        else {
            return false;
        };
        while *remaining > 0 && self.output.pending().len() < PIECE {
            let len = usize::try_from(*remaining).unwrap_or(PIECE).min(PIECE);
            let start = (*offset % 26) as usize;
            let piece = PATTERN.get(start..start + len).unwrap_or_default();
            self.output.vec().extend_from_slice(piece);
            *offset += len as u64;
            *remaining -= len as u64;
        }
        if *remaining > 0 {
            return false;
        }
        if *close_after {
            self.enter_closing();
        } else {
            self.phase = Phase::Head;
        }
        true
    }
}
