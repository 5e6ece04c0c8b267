//! The outcome taxonomy: every scheduled request ends in exactly one
//! [`Outcome`], and load-test failures are counted by this enum, never by
//! error strings. Classifying a socket error into an outcome is the load
//! engine's job (`floodgate_loadgen::outcome`), not this crate's.

use serde::{Deserialize, Serialize};

/// How one scheduled request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A complete 2xx response (or, for `tcp://`, the expected reply); in
    /// connect and hold modes, a clean connect.
    Ok,
    /// A complete response with a 1xx status.
    #[serde(rename = "http_1xx")]
    Http1xx,
    /// A complete response with a 3xx status.
    #[serde(rename = "http_3xx")]
    Http3xx,
    /// A complete response with a 4xx status.
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// A complete response with a 5xx status (or any status outside 100..=599).
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// The connect did not finish within the connect timeout (or ETIMEDOUT).
    ConnectTimeout,
    /// The connect was refused (ECONNREFUSED): nothing listens there.
    ConnectRefused,
    /// The connect was reset (ECONNRESET during the handshake).
    ConnectReset,
    /// Connected, but `TCP_INFO` shows the SYN was retransmitted: the server
    /// dropped SYNs (SYN queue or accept queue full).
    SynRetransmitted,
    /// Connected and the request was written, but its bytes were never
    /// acknowledged before the read timeout: the server side dropped the
    /// handshake's final ACK (accept queue full).
    RequestUnacked,
    /// No complete response within the read timeout.
    ReadTimeout,
    /// The connection was reset while the request was in flight.
    Reset,
    /// The server closed the connection before the response was complete.
    EofBeforeResponse,
    /// The response did not parse as HTTP/1.1 (or violated its framing).
    BadResponse,
    /// `https://`: the TLS handshake or a TLS record failed (for example an
    /// untrusted certificate, or a server that does not speak TLS).
    TlsFailed,
    /// `--verify`: the body differed from what was expected.
    VerifyMismatch,
    /// No local port was free for the connect (EADDRNOTAVAIL).
    LocalPortExhausted,
    /// No file descriptor was free for the socket (EMFILE or ENFILE).
    LocalFdExhausted,
    /// The generator itself was late to send (its thread did not run in time,
    /// not because a connection was busy); the request was not sent and its
    /// lateness went to the generator-lag histogram.
    GeneratorLagged,
    /// Still in flight or queued when the run was stopped (Ctrl-C, or the
    /// grace after `--duration` ran out). Needed so the books balance.
    Cancelled,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 20] = [
        Outcome::Ok,
        Outcome::Http1xx,
        Outcome::Http3xx,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::ConnectTimeout,
        Outcome::ConnectRefused,
        Outcome::ConnectReset,
        Outcome::SynRetransmitted,
        Outcome::RequestUnacked,
        Outcome::ReadTimeout,
        Outcome::Reset,
        Outcome::EofBeforeResponse,
        Outcome::BadResponse,
        Outcome::TlsFailed,
        Outcome::VerifyMismatch,
        Outcome::LocalPortExhausted,
        Outcome::LocalFdExhausted,
        Outcome::GeneratorLagged,
        Outcome::Cancelled,
    ];

    /// The snake_case name used in the result JSON and the summary.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http1xx => "http_1xx",
            Outcome::Http3xx => "http_3xx",
            Outcome::Http4xx => "http_4xx",
            Outcome::Http5xx => "http_5xx",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::ConnectRefused => "connect_refused",
            Outcome::ConnectReset => "connect_reset",
            Outcome::SynRetransmitted => "syn_retransmitted",
            Outcome::RequestUnacked => "request_unacked",
            Outcome::ReadTimeout => "read_timeout",
            Outcome::Reset => "reset",
            Outcome::EofBeforeResponse => "eof_before_response",
            Outcome::BadResponse => "bad_response",
            Outcome::TlsFailed => "tls_failed",
            Outcome::VerifyMismatch => "verify_mismatch",
            Outcome::LocalPortExhausted => "local_port_exhausted",
            Outcome::LocalFdExhausted => "local_fd_exhausted",
            Outcome::GeneratorLagged => "generator_lagged",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// The index of this outcome in [`Outcome::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a complete response with this status code.
    pub fn from_status(code: u16) -> Outcome {
        match code {
            200..=299 => Outcome::Ok,
            100..=199 => Outcome::Http1xx,
            300..=399 => Outcome::Http3xx,
            400..=499 => Outcome::Http4xx,
            _ => Outcome::Http5xx,
        }
    }
}

/// Counts per outcome, indexed by [`Outcome::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts([u64; Outcome::ALL.len()]);

impl OutcomeCounts {
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        self.0[outcome.index()] += n;
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Everything that is not [`Outcome::Ok`].
    pub fn errors(&self) -> u64 {
        self.total() - self.get(Outcome::Ok)
    }

    pub fn merge(&mut self, other: &OutcomeCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Non-zero counts, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .iter()
            .map(|o| (*o, self.get(*o)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o:?}");
        }
    }

    #[test]
    fn serde_names_are_the_report_names() {
        for o in Outcome::ALL {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.name()));
            assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), o);
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(Outcome::from_status(204), Outcome::Ok);
        assert_eq!(Outcome::from_status(101), Outcome::Http1xx);
        assert_eq!(Outcome::from_status(301), Outcome::Http3xx);
        assert_eq!(Outcome::from_status(404), Outcome::Http4xx);
        assert_eq!(Outcome::from_status(503), Outcome::Http5xx);
    }
}
