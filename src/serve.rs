//! `floodgate serve`: the reference server's flags (the TLS ones checked
//! and their certificate loaded before anything starts), the `listening on
//! ADDR` lines on stdout (after the self-signed certificate's fingerprint), SIGINT/SIGTERM handling and the exit code. The server
//! itself is `floodgate_server`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use floodgate_runner::server::{self, Config, Limits, Outcome, Server};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::flags;

/// The exit code when the shutdown grace ran out and connections were reset.
pub const EXIT_FORCED: u8 = 3;

/// What `floodgate serve --help` adds: the limits, the shutdown, and the
/// exit codes (the table every subcommand shares, with serve's own case).
fn after_help() -> String {
    format!(
        "When --max-connections are open, a new connection is accepted, answered \
503 Service Unavailable with Connection: close, closed, and counted as \
rejected_by_limit in GET /stats.

On SIGINT or SIGTERM the server stops listening at once (new connects are \
refused), closes idle connections, and lets in-flight requests finish with \
Connection: close. A second signal exits at once.

{}

floodgate serve exits 0 when every connection finished within \
--shutdown-grace, and 3 when it could not start (an address already in use), \
a listener broke (accept(2) failed in a way no retry can fix), or the grace \
ran out and the remaining connections were reset.
",
        floodgate_runner::exit::EXIT_CODES_HELP
    )
}

/// The shortest `--header-timeout`, `--idle-timeout` and `--write-timeout`:
/// zero would cut every connection before its first read.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest `--accept-delay`: past a minute the listener no longer
/// reproduces an overflow, it just stops serving.
const MAX_ACCEPT_DELAY: Duration = Duration::from_secs(60);

/// A connection timeout: a duration of at least [`MIN_TIMEOUT`].
fn timeout(text: &str) -> Result<Duration, String> {
    let d = flags::duration(text)?;
    if d < MIN_TIMEOUT {
        return Err("must be at least 1ms".to_string());
    }
    Ok(d)
}

/// `--accept-delay`: a duration (a bare number is milliseconds) of at most
/// [`MAX_ACCEPT_DELAY`].
fn accept_delay(text: &str) -> Result<Duration, String> {
    let d = flags::duration_or_millis(text)?;
    if d > MAX_ACCEPT_DELAY {
        return Err("must be at most 60s".to_string());
    }
    Ok(d)
}

/// `--model`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModelArg {
    Async,
    Reuseport,
    Threads,
}

/// Flags of `floodgate serve`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = after_help())]
pub struct Args {
    /// Address to listen on; repeat for several. Port 0 picks a free port.
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: Vec<SocketAddr>,
    /// The listen(2) backlog; the kernel clamps it at net.core.somaxconn, and
    /// the log states the effective value.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    backlog: u32,
    /// Turn SO_REUSEADDR off (it is on by default).
    #[arg(long)]
    no_reuse_address: bool,
    /// Set SO_REUSEPORT, so several servers can share a port.
    #[arg(long)]
    reuse_port: bool,
    /// How connections are spread and run: async (one listener per address,
    /// connections as tasks on async-std's executor), reuseport (one
    /// listener per core on one port with SO_REUSEPORT, each with its own
    /// accept loop, the kernel spreading connections across them) or
    /// threads (an OS thread per connection, at most --max-connections,
    /// default 4096; plain HTTP only).
    #[arg(long, value_enum, value_name = "MODEL", default_value = "async")]
    model: ModelArg,
    /// Answer at most N requests on one connection; the last carries
    /// `Connection: close` (default: no limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_requests_per_connection: Option<u32>,
    /// Close a connection with its Nth error response (404, 405, a bad
    /// parameter's 400), so a flood of cheap errors cannot pin it; 1-65535.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    max_errors_per_connection: u16,
    /// Serve the admin endpoints (`POST /admin/pause-accept?ms=N`, at most
    /// 60000), which let a client stop the server accepting; without it
    /// they are 404. Off loopback they need --auth-token-file.
    #[arg(long)]
    admin: bool,
    /// Wait this long before each accept(2), to make accept-queue overflow
    /// reproducible: 5 (milliseconds), 500us, 1s; at most 60s.
    #[arg(long, value_name = "MS", value_parser = accept_delay)]
    accept_delay: Option<Duration>,
    /// Serve at most N connections at once; more are answered 503 and closed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Time from a request's first byte to the end of its head (then 408);
    /// for a connection's first request, from accept (one that sends
    /// nothing is closed then); at least 1ms.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = timeout)]
    header_timeout: Duration,
    /// Time a keep-alive connection is kept open between requests; at least 1ms.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = timeout)]
    idle_timeout: Duration,
    /// Time without write progress before a connection is reset, so a client
    /// that never reads cannot pin memory; at least 1ms.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = timeout)]
    write_timeout: Duration,
    /// Time in-flight requests get to finish after SIGINT/SIGTERM (then exit 3).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = flags::duration)]
    shutdown_grace: Duration,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", help_heading = "TLS")]
    tls_cert: Option<String>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", help_heading = "TLS")]
    tls_key: Option<String>,
    /// Serve HTTPS with an ephemeral self-signed certificate for localhost,
    /// 127.0.0.1 and ::1, made at start-up, for loopback testing; its
    /// SHA-256 fingerprint is printed beside the `listening on` lines.
    #[arg(long, help_heading = "TLS")]
    tls_self_signed: bool,
    /// With --tls-self-signed: write its certificate (PEM) here, for
    /// clients to trust (`floodgate load --ca PATH`).
    #[arg(long, value_name = "PATH", help_heading = "TLS")]
    tls_self_signed_out: Option<String>,
    /// Time from accept to the end of the TLS handshake; a client that has
    /// not finished it by then is closed (it delays no other); at least 1ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = timeout, help_heading = "TLS")]
    handshake_timeout: Duration,
    #[command(flatten)]
    access: crate::access::AccessArgs,
}

/// How the listeners speak, from the TLS flags.
enum Tls {
    Plain,
    Files(server::tls::Tls),
    SelfSigned(server::tls::SelfSigned),
}

/// What the TLS flags allow, for a refusal's message.
const TLS_ALLOWED: &str = "TLS is either --tls-cert PEM --tls-key PEM, or --tls-self-signed \
(optionally with --tls-self-signed-out PATH), or neither for plain HTTP";

impl Args {
    /// Reads the certificate and key (or makes the self-signed pair); a
    /// bad combination or unusable file is a usage error.
    fn tls(&self) -> Result<Tls, String> {
        let tls = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (None, None, false) => {
                if self.tls_self_signed_out.is_some() {
                    return Err(format!(
                        "--tls-self-signed-out needs --tls-self-signed; {TLS_ALLOWED}"
                    ));
                }
                return Ok(Tls::Plain);
            }
            (Some(_), _, true) | (_, Some(_), true) => {
                return Err(format!(
                    "--tls-self-signed cannot be used with --tls-cert or --tls-key; {TLS_ALLOWED}"
                ));
            }
            (Some(_), None, false) => {
                return Err(format!("--tls-cert needs --tls-key; {TLS_ALLOWED}"));
            }
            (None, Some(_), false) => {
                return Err(format!("--tls-key needs --tls-cert; {TLS_ALLOWED}"));
            }
            (Some(cert), Some(key), false) => {
                if self.tls_self_signed_out.is_some() {
                    return Err(format!(
                        "--tls-self-signed-out needs --tls-self-signed; {TLS_ALLOWED}"
                    ));
                }
                Tls::Files(server::tls::Tls::from_pem_files(cert, key).map_err(|e| e.to_string())?)
            }
            (None, None, true) => {
                Tls::SelfSigned(server::tls::Tls::self_signed().map_err(|e| e.to_string())?)
            }
        };
        Ok(tls)
    }
}

impl Args {
    fn config(&self, tls: Option<server::tls::Tls>, access: server::access::Policy) -> Config {
        Config {
            listen: self.listen.clone(),
            backlog: self.backlog,
            reuse_address: !self.no_reuse_address,
            reuse_port: self.reuse_port,
            model: match self.model {
                ModelArg::Async => server::Model::Async,
                ModelArg::Reuseport => server::Model::ReusePort,
                ModelArg::Threads => server::Model::Threads,
            },
            accept_delay: self.accept_delay,
            max_connections: self
                .max_connections
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            limits: Limits {
                header_timeout: self.header_timeout,
                idle_timeout: self.idle_timeout,
                write_timeout: self.write_timeout,
                admin: self.admin,
                max_requests_per_connection: self
                    .max_requests_per_connection
                    .and_then(std::num::NonZeroU32::new),
                max_errors_per_connection: self.max_errors_per_connection,
                ..Limits::default()
            },
            shutdown_grace: self.shutdown_grace,
            tls: tls.map(|tls| server::tls::Tls {
                handshake_timeout: self.handshake_timeout,
                ..tls
            }),
            access,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(open) = args
        .listen
        .iter()
        .find(|a| args.admin && !args.access.has_token() && !a.ip().is_loopback())
    {
        eprintln!(
            "floodgate serve: error: --admin on {open}: the admin endpoints let any client \
             stop the server accepting, so off loopback (127.0.0.0/8, ::1) they need a \
             token: add --auth-token-file PATH"
        );
        return Ok(floodgate_runner::Exit::Usage.into());
    }
    let access = match args.access.policy() {
        Ok(policy) => policy,
        Err(message) => {
            eprintln!("floodgate serve: error: {message}");
            return Ok(floodgate_runner::Exit::Usage.into());
        }
    };
    args.access.warn_if_open(&args.listen);
    let tls = match args.tls() {
        Ok(tls) => tls,
        Err(message) => {
            eprintln!("floodgate serve: error: {message}");
            return Ok(floodgate_runner::Exit::Usage.into());
        }
    };
    if matches!(args.model, ModelArg::Threads) && !matches!(tls, Tls::Plain) {
        eprintln!(
            "floodgate serve: error: --model threads serves plain HTTP only; use --model async \
             or reuseport with TLS"
        );
        return Ok(floodgate_runner::Exit::Usage.into());
    }
    let (tls, self_signed) = match tls {
        Tls::Plain => (None, None),
        Tls::Files(tls) => (Some(tls), None),
        Tls::SelfSigned(made) => {
            if let Some(path) = &args.tls_self_signed_out {
                if let Err(err) = std::fs::write(path, &made.cert_pem) {
                    eprintln!(
                        "floodgate serve: error: --tls-self-signed-out {path}: {err}; \
                         it takes a file path this process can write"
                    );
                    return Ok(floodgate_runner::Exit::Usage.into());
                }
            }
            tracing::info!(
                sha256 = %made.fingerprint,
                "serving TLS with an ephemeral self-signed certificate (localhost, 127.0.0.1, ::1)"
            );
            (Some(made.tls), Some(made.fingerprint))
        }
    };
    let server = Server::bind(args.config(tls, access))?;
    // Installed before the `listening on` lines, so a signal sent as soon as
    // a caller sees them is handled as a shutdown, not by the default action.
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("cannot install SIGINT/SIGTERM handlers")?;
    {
        let mut out = std::io::stdout().lock();
        if let Some(fingerprint) = &self_signed {
            writeln!(out, "tls self-signed certificate sha256 {fingerprint}")
                .context("cannot write to stdout")?;
        }
        for addr in server.local_addrs() {
            writeln!(out, "listening on {addr}").context("cannot write to stdout")?;
        }
        out.flush().context("cannot write to stdout")?;
    }
    let running = server.start();

    // The server ends after a signal, or by itself when a listener breaks;
    // this thread turns the first signal into a shutdown and the second into
    // an exit, while the main thread waits for the server either way.
    let stopper = running.stopper();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                tracing::info!(signal, "shutting down");
                stopper.stop();
            }
            if let Some(signal) = signals.next() {
                tracing::warn!(signal, "second signal: exiting without draining");
                std::process::exit(i32::from(EXIT_FORCED));
            }
        })
        .context("cannot start the signal thread")?;

    match running.wait() {
        Outcome::Drained => Ok(ExitCode::SUCCESS),
        Outcome::AcceptFailed { addr, errno } => {
            let cause = errno.map_or_else(
                || "an unknown error".to_string(),
                |errno| std::io::Error::from_raw_os_error(errno).to_string(),
            );
            anyhow::bail!("accept(2) on {addr} failed for good ({cause}); the server stopped")
        }
        Outcome::Forced { open_connections } => {
            tracing::warn!(
                open_connections,
                exit_code = EXIT_FORCED,
                "connections reset after the shutdown grace"
            );
            Ok(ExitCode::from(EXIT_FORCED))
        }
    }
}
