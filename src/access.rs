//! The access flags of `floodgate serve` (`--auth-token-file`,
//! `--auth-scope`, `--allow`, `--per-ip-*`), read into proto's
//! `access::Policy`, with the token file's permission check and the warning
//! for a server open to other hosts.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use floodgate_runner::server::access::{AuthScope, IpNet, Policy, Rate, Token, parse_network};
use floodgate_runner::server::token_file;

/// Flags of `floodgate serve` that decide who may use it.
#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// Require `Authorization: Bearer TOKEN` (TOKEN: this file's contents,
    /// without its trailing newline) on every endpoint but /health; others
    /// get 401. The file must not be readable by group or others.
    #[arg(long, value_name = "PATH", help_heading = "Access")]
    auth_token_file: Option<String>,
    /// Which endpoints need the token: all (every one but /health) or admin
    /// (only /admin/*).
    #[arg(
        long,
        value_name = "SCOPE",
        value_enum,
        default_value = "all",
        help_heading = "Access"
    )]
    auth_scope: Scope,
    /// Serve only peers in this network (CIDR: 127.0.0.2/32, 10.0.0.0/8,
    /// ::1/128); repeat for several. Others are closed right after accept.
    /// IPv4-mapped IPv6 peers are judged by their IPv4 address.
    #[arg(long = "allow", value_name = "CIDR", value_parser = parse_network, help_heading = "Access")]
    allow: Vec<IpNet>,
    /// The most connections one client address may hold open; more are
    /// closed at accept.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Access")]
    per_ip_max_connections: Option<u32>,
    /// The requests a second one client address may send on average (more
    /// than 0, at most 1000000); more get 429 with Retry-After. Needs
    /// --per-ip-burst.
    #[arg(
        long,
        value_name = "R",
        requires = "per_ip_burst",
        help_heading = "Access"
    )]
    per_ip_rate: Option<f64>,
    /// The burst --per-ip-rate allows (at least 1).
    #[arg(long, value_name = "B", requires = "per_ip_rate", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Access")]
    per_ip_burst: Option<u32>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Scope {
    All,
    Admin,
}

impl AccessArgs {
    /// The policy these flags ask for, or why they cannot be used (then
    /// `floodgate serve` exits 2 before it listens).
    pub fn policy(&self) -> Result<Policy, String> {
        let token = match &self.auth_token_file {
            None => None,
            Some(path) => Some(read_token(path)?),
        };
        let per_ip_rate = match (self.per_ip_rate, self.per_ip_burst) {
            (Some(rate), Some(burst)) => Some(
                Rate::per_second(rate, NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
                    .ok_or_else(|| {
                        format!(
                            "--per-ip-rate {rate}: must be more than 0 and at most 1000000 a second"
                        )
                    })?,
            ),
            _ => None,
        };
        Ok(Policy {
            allow: self.allow.clone(),
            token,
            auth_scope: match self.auth_scope {
                Scope::All => AuthScope::All,
                Scope::Admin => AuthScope::Admin,
            },
            per_ip_max_connections: self.per_ip_max_connections.and_then(NonZeroU32::new),
            per_ip_rate,
            ..Policy::default()
        })
    }

    /// Whether a token is required anywhere.
    pub fn has_token(&self) -> bool {
        self.auth_token_file.is_some()
    }

    /// The warning for listeners other hosts can reach with neither an
    /// allowlist nor a token, naming the flags that close them.
    pub fn warn_if_open(&self, listen: &[SocketAddr]) {
        if !self.allow.is_empty() || self.auth_token_file.is_some() {
            return;
        }
        for addr in listen.iter().filter(|a| !a.ip().is_loopback()) {
            eprintln!(
                "floodgate serve: warning: {addr} is reachable from other hosts and any of \
                 them may use every endpoint; restrict it with --allow CIDR or \
                 --auth-token-file PATH"
            );
        }
    }
}

/// Reads the token of `--auth-token-file`, refusing a file others can read.
fn read_token(path: &str) -> Result<Token, String> {
    let secret = token_file::read(std::path::Path::new(path))
        .map_err(|e| format!("--auth-token-file {e}"))?;
    Ok(Token::new(&secret).expect("token_file::read refuses an empty token"))
}
