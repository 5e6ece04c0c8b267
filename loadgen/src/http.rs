//! The client side of one HTTP/1.1 (or raw TCP) exchange: the sans-IO
//! response parser is `floodgate_proto::client`, re-exported here whole;
//! this module adds only what a complete response means for the run's books
//! ([`CompleteOutcome`]). Sockets and clocks live in `conn`.

pub use floodgate_proto::client::*;

use crate::outcome::Outcome;

/// A complete response → the request's [`Outcome`]; call as
/// `complete.outcome()` with this trait in scope.
pub trait CompleteOutcome {
    fn outcome(&self) -> Outcome;
}

impl CompleteOutcome for Complete {
    /// The request's outcome: a `--verify` mismatch, else by status.
    fn outcome(&self) -> Outcome {
        if self.mismatch {
            Outcome::VerifyMismatch
        } else {
            Outcome::from_status(self.status)
        }
    }
}
