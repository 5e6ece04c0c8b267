//! The connect-mode baseline for bench/load.sh: a minimal blocking
//! connect-then-close loop on one thread. Built with plain `rustc -O` by the
//! script, not part of the workspace. Prints "CONNECTS SECONDS".

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: connect_loop ADDR SECONDS");
    let secs: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: connect_loop ADDR SECONDS");
    let t0 = Instant::now();
    let mut ok = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        if let Ok(s) = TcpStream::connect(addr) {
            drop(s);
            ok += 1;
        }
    }
    println!("{ok} {}", t0.elapsed().as_secs_f64());
}
