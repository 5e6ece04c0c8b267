//! Classifying socket errors into the outcome taxonomy. The taxonomy itself
//! ([`Outcome`], [`OutcomeCounts`]) is the run model's and lives in
//! floodgate-reports; this module re-exports it.

use std::io;

pub use floodgate_reports::outcome::{Outcome, OutcomeCounts};

/// `io::Error` → [`Outcome`], for errors from connect, read or write;
/// call as `Outcome::from_io_error(&e)` with this trait in scope.
pub trait Classify {
    fn from_connect_error(err: &io::Error) -> Outcome;
    fn from_io_error(err: &io::Error) -> Outcome;
}

impl Classify for Outcome {
    /// Classifies an error from creating, binding or connecting a socket.
    fn from_connect_error(err: &io::Error) -> Outcome {
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => Outcome::ConnectRefused,
            Some(libc::ETIMEDOUT) => Outcome::ConnectTimeout,
            Some(libc::ECONNRESET) | Some(libc::ECONNABORTED) | Some(libc::EPIPE) => {
                Outcome::ConnectReset
            }
            Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => Outcome::LocalPortExhausted,
            Some(libc::EMFILE) | Some(libc::ENFILE) => Outcome::LocalFdExhausted,
            _ if err.kind() == io::ErrorKind::TimedOut => Outcome::ConnectTimeout,
            _ => Outcome::ConnectReset,
        }
    }

    /// Classifies an error from reading or writing an established connection.
    fn from_io_error(err: &io::Error) -> Outcome {
        if err.kind() == io::ErrorKind::InvalidData {
            // Only TLS produces InvalidData on a connection.
            return Outcome::TlsFailed;
        }
        match err.raw_os_error() {
            Some(libc::ETIMEDOUT) => Outcome::ReadTimeout,
            Some(libc::EPIPE) => Outcome::EofBeforeResponse,
            _ => Outcome::Reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errnos() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(
            Outcome::from_connect_error(&e(libc::ECONNREFUSED)),
            Outcome::ConnectRefused
        );
        assert_eq!(
            Outcome::from_connect_error(&e(libc::EADDRNOTAVAIL)),
            Outcome::LocalPortExhausted
        );
        assert_eq!(
            Outcome::from_connect_error(&e(libc::EMFILE)),
            Outcome::LocalFdExhausted
        );
        assert_eq!(
            Outcome::from_connect_error(&e(libc::ETIMEDOUT)),
            Outcome::ConnectTimeout
        );
    }
}
