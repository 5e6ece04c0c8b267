//! The target URL, checked offline ([`TargetUrl::parse`]) and resolved to
//! an address as a step of its own.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use super::{PlanError, Target, is_request_path};

/// A target URL checked offline ([`TargetUrl::parse`]) and not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// The URL as given.
    pub url: String,
    /// `http`, `https` or `tcp`.
    pub scheme: String,
    /// HOST and PORT as written (the `Host` header).
    pub authority: String,
    /// The host as written: a name, an IPv4 address, or an IPv6 address in
    /// brackets.
    pub host: String,
    /// As written, or 80 for http and 443 for https.
    pub port: u16,
    /// The request target of the one request without a `mix`: `/` when the
    /// URL has none; empty for tcp.
    pub path: String,
}

/// The target URLs a plan takes, for error messages.
const TARGET_FORMS: &str =
    "http://HOST[:PORT][/PATH], https://HOST[:PORT][/PATH] or tcp://HOST:PORT";

impl TargetUrl {
    /// Checks `url` without any lookup: the scheme, a HOST that is a name
    /// (letters, digits, `-`, `.`, `_`), an IPv4 address or an IPv6 address
    /// in brackets, a PORT of 1 to 65535 (needed for tcp://), and a PATH a
    /// request line can carry (none for tcp://). Errors name `target`.
    pub fn parse(url: &str) -> Result<TargetUrl, PlanError> {
        let bad = |problem: &str| {
            PlanError::new("target", format!("{problem}; expected {TARGET_FORMS}"))
                .with_got(format!("{url:?}"))
        };
        let (scheme, rest) = ["http", "https", "tcp"]
            .into_iter()
            .find_map(|s| Some((s, url.strip_prefix(s)?.strip_prefix("://")?)))
            .ok_or_else(|| {
                PlanError::new("target", format!("must be {TARGET_FORMS}"))
                    .with_got(format!("{url:?}"))
            })?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(bad("has user info (USER@), which is not supported"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (addr, after) = v6
                    .split_once(']')
                    .ok_or_else(|| bad("has an IPv6 HOST without its closing ]"))?;
                if addr.parse::<Ipv6Addr>().is_err() {
                    return Err(bad("has a HOST in brackets that is not an IPv6 address"));
                }
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(|| {
                        bad("has something other than :PORT after its IPv6 HOST")
                    })?),
                };
                (&authority[..addr.len() + 2], port)
            }
            None => match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(bad("has an IPv6 HOST without brackets, e.g. [::1]"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("has no HOST"));
        }
        if !host.starts_with('[')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(bad(
                "has a HOST with characters other than letters, digits, '-', '.' and '_'",
            ));
        }
        let port = match (port, scheme) {
            (Some(p), _) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("has a PORT that is not 1 to 65535"))?,
            (None, "http") => 80,
            (None, "https") => 443,
            (None, _) => return Err(bad("has no PORT, which a tcp:// target needs")),
        };
        let path = match scheme {
            "tcp" if path.is_empty() || path == "/" => String::new(),
            "tcp" => return Err(bad("has a PATH, which a tcp:// target does not take")),
            _ if path.is_empty() => "/".to_string(),
            _ if is_request_path(path) => path.to_string(),
            _ => return Err(bad("has a PATH with spaces or control characters")),
        };
        Ok(TargetUrl {
            url: url.to_string(),
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `http://ADDR/`, for an address the caller has.
    pub(super) fn of_addr(addr: SocketAddr) -> TargetUrl {
        let host = match addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        TargetUrl {
            url: format!("http://{addr}/"),
            scheme: "http".to_string(),
            authority: addr.to_string(),
            host,
            port: addr.port(),
            path: "/".to_string(),
        }
    }

    /// Looks the host up (a name through the system resolver) and takes
    /// the first address. Errors name `target`.
    pub fn resolve(&self) -> Result<SocketAddr, PlanError> {
        let bad = |why: String| PlanError::new("target", why).with_got(format!("{:?}", self.url));
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve {:?}: {e}", self.host)))?
            .next()
            .ok_or_else(|| bad(format!("{:?} resolves to no addresses", self.host)))
    }

    pub(super) fn at(self, addr: SocketAddr) -> Target {
        Target {
            url: self.url,
            scheme: self.scheme,
            addr,
            host: self.host,
        }
    }
}
