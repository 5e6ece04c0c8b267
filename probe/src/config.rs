//! What to probe and how hard: [`ConfigInput`] is what the caller knows,
//! [`Config::new`] holds it to the probe's limits and draws from it the
//! backlog to expect and the default burst size. A [`Config`] is valid by
//! construction; its figures are read through accessors.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The most connects one burst may fire: enough for somaxconn 4096 + 1 plus
/// a margin, small enough to stay a probe rather than a flood.
pub const MAX_CONNECTS: usize = 5000;

/// The fewest connects a burst may fire: one to fill the smallest queue and
/// one to be dropped.
pub const MIN_CONNECTS: usize = 2;

/// The shortest window the probe accepts.
pub const MIN_WINDOW: Duration = Duration::from_millis(10);

/// The longest window: inside the first SYN retransmission timeout (1 s),
/// so a connect that completes in it was never dropped.
pub const MAX_WINDOW: Duration = Duration::from_millis(950);

/// Descriptors a probe needs beyond one per connect.
const SPARE_DESCRIPTORS: u64 = 64;

/// The descriptors the largest burst needs: what to raise the limit to
/// before starting a subject that must accept the whole held queue.
pub const MAX_DESCRIPTORS: u64 = MAX_CONNECTS as u64 + SPARE_DESCRIPTORS;

/// Connects fired beyond the expected capacity, so the queue overflows.
const CONNECTS_MARGIN: usize = 32;

/// The largest somaxconn a Linux kernel defaults to: a burst sized for it
/// fills any queue of default size when no backlog is known.
const DEFAULT_SOMAXCONN_MAX: usize = 4096;

/// What the caller knows about the probe it wants.
#[derive(Debug, Clone)]
pub struct ConfigInput {
    pub target: SocketAddr,
    /// Connects in the burst; `None` for the expected capacity plus a
    /// margin (see [`Config::expected_backlog`]).
    pub connects: Option<usize>,
    /// How long after the burst connects may complete and still count.
    pub window: Duration,
    /// How long held connections get to be served after the resume.
    pub serve_timeout: Duration,
    /// How the held connections are shown served after the resume.
    pub check: ServeCheck,
    /// The backlog the listener was asked for, when known.
    pub configured_backlog: Option<u32>,
    /// `net.core.somaxconn` of this network namespace (the probe's), when
    /// known.
    pub somaxconn: Option<u32>,
    /// The listener's own backlog as sock_diag reports it
    /// (`floodgate_kernel::local_listener`): `Some` exactly when the target
    /// listens in this network namespace.
    pub kernel_backlog: Option<u32>,
}

/// How the probe shows, after the resume, that the held connections were
/// served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeCheck {
    /// `GET PATH` on every held connection: any complete HTTP response
    /// counts.
    Http { path: String },
    /// For any TCP service: the held connections were accepted, seen as
    /// the target's accept queue draining to 0 (sock_diag, so the target
    /// must listen in this network namespace); with `exchange`, each held
    /// connection must also answer `payload` with a reply ending in
    /// `delimiter`.
    Accept {
        exchange: Option<(Vec<u8>, Vec<u8>)>,
    },
}

/// A field of [`ConfigInput`] that [`Config::new`] can refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Connects,
    Window,
    CheckPath,
    Check,
}

impl Field {
    /// The field's name in [`ConfigInput`].
    pub fn name(self) -> &'static str {
        match self {
            Field::Connects => "connects",
            Field::Window => "window",
            Field::CheckPath => "check_path",
            Field::Check => "check",
        }
    }

    /// What the field allows, in words.
    pub fn allowed(self) -> String {
        match self {
            Field::Connects => format!("between {MIN_CONNECTS} and {MAX_CONNECTS}"),
            Field::Window => format!(
                "between {} ms and {} ms, inside the first SYN retransmission timeout (1 s)",
                MIN_WINDOW.as_millis(),
                MAX_WINDOW.as_millis()
            ),
            Field::CheckPath => "a request target that starts with '/' and holds no spaces or \
                                control characters (CR, LF), such as /health"
                .to_owned(),
            Field::Check => "`http`, or `accept` for a target that listens in this network \
                             namespace (the accept check reads its queue through sock_diag), \
                             with a non-empty delimiter when a payload is sent"
                .to_owned(),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`Config::new`] refused its input: the field, the value it was
/// given, and (through [`Field::allowed`]) what it allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be {}, got {value}", field.allowed())]
pub struct ConfigError {
    pub field: Field,
    /// The value refused, as given (`6000`, `2s`).
    pub value: String,
}

impl ConfigError {
    fn new(field: Field, value: impl fmt::Debug) -> ConfigError {
        ConfigError {
            field,
            value: format!("{value:?}"),
        }
    }
}

/// Checks the path the serve check requests (the path of [`ServeCheck::Http`]):
/// it goes into a request line as it is, so it must start with '/' and hold
/// no space or control character that would end or split that line.
/// [`Config::new`] checks it too; this lets a caller refuse it before
/// starting anything.
pub fn check_path(path: &str) -> Result<(), ConfigError> {
    let valid = path.starts_with('/') && !path.chars().any(|c| c == ' ' || c.is_control());
    if !valid {
        return Err(ConfigError::new(Field::CheckPath, path));
    }
    Ok(())
}

/// What to probe and how hard, checked against the probe's limits.
#[derive(Debug, Clone)]
pub struct Config {
    target: SocketAddr,
    connects: usize,
    window: Duration,
    serve_timeout: Duration,
    check: ServeCheck,
    configured_backlog: Option<u32>,
    somaxconn: Option<u32>,
    expected_backlog: Option<u32>,
}

impl Config {
    /// Checks `input` and applies the probe's rules:
    ///
    /// - the target's somaxconn is this namespace's only when the target
    ///   listens here (`kernel_backlog` is `Some`);
    /// - the backlog to expect is the kernel's own when the target is local,
    ///   else `min(configured_backlog, somaxconn)`, with this namespace's
    ///   somaxconn standing in for an unknown one; the report's
    ///   [`Config::clamped_backlog`] claims only the target's;
    /// - connects default to the expected backlog + 1 + 32 (at most
    ///   [`MAX_CONNECTS`]), or 4096 + 1 + 32 when no backlog is known;
    /// - connects must be in `MIN_CONNECTS..=MAX_CONNECTS`, the window in
    ///   `MIN_WINDOW..=MAX_WINDOW`, and the check path pass [`check_path`].
    pub fn new(input: ConfigInput) -> Result<Config, ConfigError> {
        let local = input.kernel_backlog.is_some();
        let expected_backlog = input
            .kernel_backlog
            .or(clamp(input.configured_backlog, input.somaxconn));
        let connects = input
            .connects
            .unwrap_or_else(|| default_connects(expected_backlog));
        if !(MIN_CONNECTS..=MAX_CONNECTS).contains(&connects) {
            return Err(ConfigError::new(Field::Connects, connects));
        }
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&input.window) {
            return Err(ConfigError::new(Field::Window, input.window));
        }
        match &input.check {
            ServeCheck::Http { path } => check_path(path)?,
            ServeCheck::Accept { .. } if !local => {
                return Err(ConfigError::new(Field::Check, "accept"));
            }
            ServeCheck::Accept {
                exchange: Some((_, delimiter)),
            } if delimiter.is_empty() => {
                return Err(ConfigError::new(Field::Check, "accept"));
            }
            ServeCheck::Accept { .. } => {}
        }
        Ok(Config {
            target: input.target,
            connects,
            window: input.window,
            serve_timeout: input.serve_timeout,
            check: input.check,
            configured_backlog: input.configured_backlog,
            somaxconn: input.somaxconn.filter(|_| local),
            expected_backlog,
        })
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Connects in the burst.
    pub fn connects(&self) -> usize {
        self.connects
    }

    /// How long after the burst connects may complete and still count.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long held connections get to be served after the resume.
    pub fn serve_timeout(&self) -> Duration {
        self.serve_timeout
    }

    /// How the held connections are shown served after the resume.
    pub fn check(&self) -> &ServeCheck {
        &self.check
    }

    /// The backlog the listener was asked for, when known.
    pub fn configured_backlog(&self) -> Option<u32> {
        self.configured_backlog
    }

    /// `net.core.somaxconn` of the target's namespace, when known (the
    /// target listens in this one).
    pub fn somaxconn(&self) -> Option<u32> {
        self.somaxconn
    }

    /// `min(configured_backlog, somaxconn)` of the target: the backlog
    /// listen(2) should have given it.
    pub fn clamped_backlog(&self) -> Option<u32> {
        clamp(self.configured_backlog, self.somaxconn)
    }

    /// The backlog the burst is sized for (see [`Config::new`]).
    pub fn expected_backlog(&self) -> Option<u32> {
        self.expected_backlog
    }

    /// The descriptors this burst needs.
    pub fn descriptors(&self) -> u64 {
        self.connects as u64 + SPARE_DESCRIPTORS
    }
}

/// listen(2)'s clamp: the backlog asked for, at most somaxconn.
fn clamp(configured: Option<u32>, somaxconn: Option<u32>) -> Option<u32> {
    match (configured, somaxconn) {
        (Some(c), Some(s)) => Some(c.min(s)),
        (c, _) => c,
    }
}

/// The expected capacity plus a margin when a backlog is known, else enough
/// for the largest default somaxconn.
fn default_connects(expected_backlog: Option<u32>) -> usize {
    match expected_backlog {
        Some(b) => (b as usize + 1 + CONNECTS_MARGIN).min(MAX_CONNECTS),
        None => DEFAULT_SOMAXCONN_MAX + 1 + CONNECTS_MARGIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ConfigInput {
        ConfigInput {
            target: "127.0.0.1:8080".parse().unwrap(),
            connects: None,
            window: Duration::from_millis(900),
            serve_timeout: Duration::from_secs(5),
            check: ServeCheck::Http {
                path: "/health".into(),
            },
            configured_backlog: None,
            somaxconn: None,
            kernel_backlog: None,
        }
    }

    #[test]
    fn a_local_target_is_expected_at_its_kernel_backlog() {
        let c = Config::new(ConfigInput {
            configured_backlog: Some(1024),
            somaxconn: Some(128),
            kernel_backlog: Some(128),
            ..input()
        })
        .unwrap();
        assert_eq!(c.somaxconn(), Some(128));
        assert_eq!(c.clamped_backlog(), Some(128));
        assert_eq!(c.expected_backlog(), Some(128));
        assert_eq!(c.connects(), 128 + 1 + 32);
        assert_eq!(c.descriptors(), 161 + 64);
    }

    #[test]
    fn a_remote_target_is_expected_at_the_clamp_and_claims_no_somaxconn() {
        let c = Config::new(ConfigInput {
            target: "192.0.2.7:80".parse().unwrap(),
            configured_backlog: Some(1024),
            somaxconn: Some(128),
            ..input()
        })
        .unwrap();
        assert_eq!(c.somaxconn(), None);
        assert_eq!(c.clamped_backlog(), Some(1024));
        assert_eq!(c.expected_backlog(), Some(128));
        assert_eq!(c.connects(), 161);
    }

    #[test]
    fn default_connects_without_a_backlog_and_at_the_limit() {
        assert_eq!(Config::new(input()).unwrap().connects(), 4129);
        let huge = Config::new(ConfigInput {
            kernel_backlog: Some(65535),
            ..input()
        })
        .unwrap();
        assert_eq!(huge.connects(), MAX_CONNECTS);
        let given = Config::new(ConfigInput {
            connects: Some(7),
            kernel_backlog: Some(65535),
            ..input()
        })
        .unwrap();
        assert_eq!(given.connects(), 7);
    }

    #[test]
    fn connects_and_window_are_held_to_their_limits() {
        for ok in [MIN_CONNECTS, MAX_CONNECTS] {
            let c = ConfigInput {
                connects: Some(ok),
                ..input()
            };
            assert!(Config::new(c).is_ok(), "{ok}");
        }
        for bad in [0, 1, MAX_CONNECTS + 1] {
            let e = Config::new(ConfigInput {
                connects: Some(bad),
                ..input()
            })
            .unwrap_err();
            assert_eq!(e.field, Field::Connects);
            assert_eq!(e.value, bad.to_string());
        }
        assert_eq!(
            Config::new(ConfigInput {
                connects: Some(6000),
                ..input()
            })
            .unwrap_err()
            .to_string(),
            "connects must be between 2 and 5000, got 6000"
        );
        for ok in [MIN_WINDOW, MAX_WINDOW] {
            let c = ConfigInput {
                window: ok,
                ..input()
            };
            assert!(Config::new(c).is_ok(), "{ok:?}");
        }
        for bad in [Duration::from_millis(9), Duration::from_millis(951)] {
            let e = Config::new(ConfigInput {
                window: bad,
                ..input()
            })
            .unwrap_err();
            assert_eq!(e.field, Field::Window);
        }
        let e = Config::new(ConfigInput {
            window: Duration::from_secs(2),
            ..input()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "window must be between 10 ms and 950 ms, inside the first SYN retransmission \
             timeout (1 s), got 2s"
        );
    }

    #[test]
    fn check_path_must_be_a_request_target_of_one_line() {
        for good in ["/", "/health", "/a?b=c%20d"] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in ["", "health", "/a b", "/a\r\nX: y", "/a\n", "/\t"] {
            let e = Config::new(ConfigInput {
                check: ServeCheck::Http { path: bad.into() },
                ..input()
            })
            .unwrap_err();
            assert_eq!(e.field, Field::CheckPath, "{bad:?}");
            assert_eq!(e.value, format!("{bad:?}"));
        }
    }

    #[test]
    fn the_accept_check_needs_a_local_listener_and_a_delimiter() {
        let accept = |exchange| ServeCheck::Accept { exchange };
        // Not local: the accept queue cannot be read.
        let e = Config::new(ConfigInput {
            check: accept(None),
            ..input()
        })
        .unwrap_err();
        assert_eq!(e.field, Field::Check);
        let local = |check| ConfigInput {
            check,
            kernel_backlog: Some(128),
            ..input()
        };
        assert!(Config::new(local(accept(None))).is_ok());
        let empty = Some((b"PING\r\n".to_vec(), Vec::new()));
        assert_eq!(
            Config::new(local(accept(empty))).unwrap_err().field,
            Field::Check
        );
        let ping = Some((b"PING\r\n".to_vec(), b"\r\n".to_vec()));
        assert!(Config::new(local(accept(ping))).is_ok());
    }
}
