//! The endpoint table: which method and path mean what. Routing only; the
//! connection produces the responses, and `response` holds their bytes.

use std::time::Duration;

use crate::head::parse_decimal;
use crate::{MAX_BYTES_ENDPOINT, MAX_DELAY_MS};

/// What a request asks for, decided from its method and target alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /`: a small fixed body.
    Root,
    /// `GET /health`.
    Health,
    /// `GET /stats`: the counters as JSON.
    Stats,
    /// `GET /bytes/{n}`: `n` bytes of deterministic content.
    Bytes(u64),
    /// `GET /delay/{ms}`: answer after this long.
    Delay(Duration),
    /// `POST /echo`: the body back.
    Echo,
    /// `POST /admin/pause-accept?ms=N`: pause the accept loop.
    PauseAccept(Duration),
    /// A known path with a parameter out of range or not a number: 400,
    /// though the message itself was fine, so the connection stays open.
    BadParameter,
    /// `OPTIONS *`: what the server as a whole takes (RFC 9110 §9.3.7).
    ServerOptions,
    /// An unknown path: 404.
    NotFound,
    /// No valid bearer token where one is needed: 401.
    Unauthorized,
    /// Over the client's request rate: 429, retry after this many seconds.
    TooManyRequests(u64),
    /// A known path with a method it does not take: 405 with this `Allow`.
    MethodNotAllowed(Allow),
}

/// The methods a known path takes, for the `Allow` header of a 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allow {
    GetHead,
    Post,
}

/// Routes a request. HEAD is accepted wherever GET is; the connection
/// leaves the body out. Without `admin`, `/admin/*` is not there (404).
pub(crate) fn route(method: &str, target: &str, admin: bool) -> Route {
    // `head` lets asterisk-form through with OPTIONS only.
    if target == "*" {
        return Route::ServerOptions;
    }
    let (path, query) = split_target(target);
    if !admin && path.starts_with("/admin/") {
        return Route::NotFound;
    }
    let (allow, route) = match path {
        "/" => (Allow::GetHead, Route::Root),
        "/health" => (Allow::GetHead, Route::Health),
        "/stats" => (Allow::GetHead, Route::Stats),
        "/echo" => (Allow::Post, Route::Echo),
        "/admin/pause-accept" => (Allow::Post, pause_accept(query)),
        _ => {
            if let Some(n) = path.strip_prefix("/bytes/") {
                (Allow::GetHead, bytes(n))
            } else if let Some(ms) = path.strip_prefix("/delay/") {
                (Allow::GetHead, delay(ms))
            } else {
                return Route::NotFound;
            }
        }
    };
    let allowed = match allow {
        Allow::GetHead => matches!(method, "GET" | "HEAD"),
        Allow::Post => method == "POST",
    };
    if allowed {
        route
    } else {
        Route::MethodNotAllowed(allow)
    }
}

/// What `target` asks for as far as the bearer token is concerned:
/// `/health` never needs it; `/admin/*` (while served) always does.
pub(crate) fn exposure(target: &str, admin: bool) -> crate::access::Exposure {
    use crate::access::Exposure;
    let (path, _) = split_target(target);
    if path == "/health" {
        Exposure::Health
    } else if admin && path.starts_with("/admin/") {
        Exposure::Admin
    } else {
        Exposure::Other
    }
}

/// Splits an origin-form or absolute-form target into path and query.
fn split_target(target: &str) -> (&str, &str) {
    let origin = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let rest = target.get(..scheme.len())?;
            rest.eq_ignore_ascii_case(scheme).then(|| {
                let authority_and_path = target.get(scheme.len()..).unwrap_or_default();
                authority_and_path
                    .find('/')
                    .and_then(|slash| authority_and_path.get(slash..))
                    .unwrap_or("/")
            })
        })
        .unwrap_or(target);
    origin.split_once('?').unwrap_or((origin, ""))
}

fn bytes(n: &str) -> Route {
    match parse_decimal(n.as_bytes()) {
        Some(n) if n <= MAX_BYTES_ENDPOINT => Route::Bytes(n),
        _ => Route::BadParameter,
    }
}

fn delay(ms: &str) -> Route {
    match parse_decimal(ms.as_bytes()) {
        Some(ms) if ms <= MAX_DELAY_MS => Route::Delay(Duration::from_millis(ms)),
        _ => Route::BadParameter,
    }
}

/// `ms=N` in the query, at most [`MAX_DELAY_MS`]: a longer pause, a
/// missing one or one that is not a number is a bad parameter (400), never
/// silently capped.
fn pause_accept(query: &str) -> Route {
    let ms = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|ms| parse_decimal(ms.as_bytes()));
    match ms {
        Some(ms) if ms <= MAX_DELAY_MS => Route::PauseAccept(Duration::from_millis(ms)),
        _ => Route::BadParameter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        let ms = Duration::from_millis;
        let cases: &[(&str, &str, Route)] = &[
            ("GET", "/", Route::Root),
            ("HEAD", "/", Route::Root),
            ("GET", "/?x=1", Route::Root),
            ("GET", "http://example.test/health", Route::Health),
            ("GET", "HTTP://example.test", Route::Root),
            ("GET", "/health", Route::Health),
            ("GET", "/stats", Route::Stats),
            ("GET", "/bytes/0", Route::Bytes(0)),
            ("GET", "/bytes/16777216", Route::Bytes(16 << 20)),
            ("GET", "/bytes/16777217", Route::BadParameter),
            ("GET", "/bytes/", Route::BadParameter),
            ("GET", "/bytes/1k", Route::BadParameter),
            ("GET", "/bytes/99999999999999999999999", Route::BadParameter),
            ("GET", "/bytes", Route::NotFound),
            ("GET", "/delay/60000", Route::Delay(ms(60_000))),
            ("GET", "/delay/60001", Route::BadParameter),
            ("POST", "/echo", Route::Echo),
            (
                "POST",
                "/admin/pause-accept?ms=250",
                Route::PauseAccept(ms(250)),
            ),
            (
                "POST",
                "/admin/pause-accept?a=b&ms=7",
                Route::PauseAccept(ms(7)),
            ),
            (
                "POST",
                "/admin/pause-accept?ms=60000",
                Route::PauseAccept(ms(60_000)),
            ),
            ("POST", "/admin/pause-accept?ms=60001", Route::BadParameter),
            (
                "POST",
                "/admin/pause-accept?ms=99999999999999",
                Route::BadParameter,
            ),
            ("POST", "/admin/pause-accept", Route::BadParameter),
            ("POST", "/admin/pause-accept?ms=x", Route::BadParameter),
            ("POST", "/", Route::MethodNotAllowed(Allow::GetHead)),
            ("get", "/", Route::MethodNotAllowed(Allow::GetHead)),
            (
                "DELETE",
                "/bytes/5",
                Route::MethodNotAllowed(Allow::GetHead),
            ),
            ("GET", "/echo", Route::MethodNotAllowed(Allow::Post)),
            ("HEAD", "/echo", Route::MethodNotAllowed(Allow::Post)),
            (
                "GET",
                "/admin/pause-accept?ms=5",
                Route::MethodNotAllowed(Allow::Post),
            ),
            (
                "GET",
                "/admin/pause-accept",
                Route::MethodNotAllowed(Allow::Post),
            ),
            ("GET", "/nope", Route::NotFound),
            ("POST", "/nope", Route::NotFound),
            ("OPTIONS", "*", Route::ServerOptions),
        ];
        for &(method, target, expected) in cases {
            assert_eq!(route(method, target, true), expected, "{method} {target}");
        }
    }

    #[test]
    fn without_admin_the_admin_paths_are_not_there() {
        for (method, target) in [
            ("POST", "/admin/pause-accept?ms=250"),
            ("GET", "/admin/pause-accept"),
            ("POST", "/admin/anything"),
            ("POST", "http://x/admin/pause-accept?ms=1"),
        ] {
            assert_eq!(route(method, target, false), Route::NotFound, "{target}");
        }
        assert_eq!(route("GET", "/health", false), Route::Health);
    }
}
