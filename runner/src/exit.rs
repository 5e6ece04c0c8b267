//! What a finished command means, as the exit codes every subcommand uses:
//! one meaning each, documented in `--help` and README.md.

/// The exit codes of `floodgate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything ran and every check held.
    Pass = 0,
    /// A threshold or check failed (the output says which, with the value).
    Failed = 1,
    /// Usage error or invalid input, found before anything started.
    Usage = 2,
    /// Could not run: target unreachable, the reference server did not
    /// start, an internal error.
    CouldNotRun = 3,
    /// Inconclusive: the generator, not the server, fell short.
    Inconclusive = 4,
    /// A regression against a baseline.
    Regression = 5,
    /// Interrupted (Ctrl-C); what ran is written.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The table `--help` and README.md print.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    pass: it ran and every check held
  1    a check or threshold failed (the output says which)
  2    usage error or invalid input (nothing was started)
  3    could not run (target unreachable, server did not start, internal error)
  4    inconclusive: the generator itself fell short
  5    regression against a baseline
  130  interrupted (Ctrl-C); the partial result is written";

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(exit.code())
    }
}
