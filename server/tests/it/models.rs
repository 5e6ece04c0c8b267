//! What sets the concurrency models apart (the rest of the suite runs
//! against each, `FLOODGATE_TEST_MODEL`): the threads model serves each
//! connection on an OS thread of its own, and only while it is open.

use std::time::Duration;

use floodgate_server::{Config, Model};

use crate::http::{Client, wait_until};
use crate::{addr, config, start, wait_active};

/// This process's threads named `conn PORT`: the threads model's
/// connection threads of the server on `port`.
#[cfg(target_os = "linux")]
fn connection_threads(port: u16) -> usize {
    let name = format!("conn {port}");
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn the_threads_model_serves_each_connection_on_a_thread_of_its_own() {
    let server = start(Config {
        model: Model::Threads,
        ..config()
    });
    let port = addr(&server).port();
    assert_eq!(connection_threads(port), 0);
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(addr(&server))).collect();
    for c in &mut clients {
        assert_eq!(c.get("/health").status, 200);
    }
    wait_active(&server, 3);
    assert_eq!(connection_threads(port), 3);
    drop(clients);
    wait_active(&server, 0);
    wait_until(
        Duration::from_secs(5),
        "the connection threads to end",
        || connection_threads(port) == 0,
    );
}
