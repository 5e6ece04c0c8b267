//! Library-level tests of floodgate-server: a real server on 127.0.0.1:0 in
//! this process, driven by blocking `TcpStream` clients. One module per
//! concern; `http` is the test client.

mod http;
mod limits;
mod listen;
mod memory;
mod models;
mod serving;
mod shutdown;
mod timeouts;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use floodgate_proto::Limits;
use floodgate_server::{Config, RunningServer, Server};

/// A config listening on a free loopback port, with the model
/// `FLOODGATE_TEST_MODEL` names (`async`, the default, `reuseport` or
/// `threads`):
/// `.ci/run` runs this suite once per model.
pub fn config() -> Config {
    Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        model: model(),
        ..Config::default()
    }
}

/// The model under test.
pub fn model() -> floodgate_server::Model {
    match std::env::var("FLOODGATE_TEST_MODEL").as_deref() {
        Ok("reuseport") => floodgate_server::Model::ReusePort,
        Ok("threads") => floodgate_server::Model::Threads,
        Ok("async") | Err(_) => floodgate_server::Model::Async,
        Ok(other) => panic!("FLOODGATE_TEST_MODEL={other}: async, reuseport or threads"),
    }
}

pub fn limits() -> Limits {
    Limits::default()
}

pub fn start(config: Config) -> RunningServer {
    Server::bind(config).expect("bind 127.0.0.1:0").start()
}

pub fn addr(server: &RunningServer) -> SocketAddr {
    server.local_addrs()[0]
}

/// Waits until the server has exactly `n` connections open.
pub fn wait_active(server: &RunningServer, n: u64) {
    let stats = server.stats();
    http::wait_until(
        Duration::from_secs(5),
        &format!("{n} active connections"),
        || stats.active.load(Relaxed) == n,
    );
}
