//! Where an idle keep-alive connection's user-space memory goes: the heap
//! a server holds for 2,000 connections that each served one request,
//! counted by allocation size (a counting allocator over this test
//! binary), against the bound the crate docs state. Measured: 1,055 B a
//! connection, in three blocks each, 672 B (the task: async-task's header,
//! async-std's task locals, the `Guarded` connection future), 216 B
//! (async-io's `Source`, the socket's registration and its waker slots)
//! and 56 B (a third block, most likely the shutdown listener's entry), and
//! the reactor's shared tables' growth. The count runs in a child process
//! of this test binary running this test alone, so no other test's server
//! (on the same async-std executor) allocates inside its window.
//! `cargo test -p floodgate-server --test it memory -- --nocapture` prints
//! the breakdown.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

use floodgate_server::{Config, Model};

use crate::{addr, config, start, wait_active};

/// Net heap bytes and blocks by size class (8-byte steps up to 4 KiB, the
/// last class holding everything larger) while [`TRACKING`] is on.
struct Counting;

const CLASSES: usize = 513;
static TRACKING: AtomicBool = AtomicBool::new(false);
static BYTES: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
static BLOCKS: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];

fn class(size: usize) -> usize {
    size.div_ceil(8).min(CLASSES - 1)
}

// SAFETY: every call is passed to the system allocator as it came.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Relaxed) {
            BYTES[class(layout.size())].fetch_add(layout.size() as i64, Relaxed);
            BLOCKS[class(layout.size())].fetch_add(1, Relaxed);
        }
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACKING.load(Relaxed) {
            BYTES[class(layout.size())].fetch_sub(layout.size() as i64, Relaxed);
            BLOCKS[class(layout.size())].fetch_sub(1, Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One keep-alive request, answered, on a connection that then stays open;
/// the client side allocates nothing.
fn served(stream: &mut TcpStream) {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: memory\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let mut got = 0;
    // GET / is a fixed response: read until its body's newline.
    while got == 0 || buf[got - 1] != b'\n' {
        let n = stream.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "the server closed a keep-alive connection");
        got += n;
    }
}

#[test]
fn an_idle_keep_alive_connection_holds_about_a_kibibyte_of_heap() {
    const NAME: &str = "memory::an_idle_keep_alive_connection_holds_about_a_kibibyte_of_heap";
    if std::env::var_os("FLOODGATE_MEMORY_ALONE").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("FLOODGATE_MEMORY_ALONE", "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "the child ran it: {stdout}");
        eprint!("{stderr}");
        return;
    }
    const N: usize = 2_000;
    let server = start(Config {
        model: Model::Async,
        ..config()
    });
    let target = addr(&server);
    let mut warm = TcpStream::connect(target).unwrap();
    served(&mut warm);
    drop(warm);
    wait_active(&server, 0);
    let mut streams = Vec::with_capacity(N);
    TRACKING.store(true, Relaxed);
    for _ in 0..N {
        let mut s = TcpStream::connect(target).unwrap();
        served(&mut s);
        streams.push(s);
    }
    wait_active(&server, N as u64);
    TRACKING.store(false, Relaxed);
    let classes: Vec<(usize, i64, i64)> = (0..CLASSES)
        .map(|c| (c * 8, BYTES[c].load(Relaxed), BLOCKS[c].load(Relaxed)))
        .filter(|&(_, _, blocks)| blocks.unsigned_abs() as usize >= N / 2)
        .collect();
    let total: i64 = BYTES.iter().map(|b| b.load(Relaxed)).sum();
    let per = total as f64 / N as f64;
    let mut breakdown = String::new();
    for (size, bytes, blocks) in &classes {
        breakdown.push_str(&format!(
            "\n  {blocks:>6} blocks of ~{size:>4} B: {:>6.0} B per connection",
            *bytes as f64 / N as f64
        ));
    }
    eprintln!("heap per idle connection: {per:.0} B{breakdown}");
    // 1,055 B measured; a fifth more fails, so a regression shows here
    // before it shows in bench/server.sh's RSS.
    assert!(per <= 1280.0, "{per:.0} B per connection{breakdown}");
    drop(streams);
}
