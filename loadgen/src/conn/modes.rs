//! The two modes without requests: `--mode connect` (connect, then close
//! by FIN or RST) and `--mode hold` (one connection per slot, held idle to
//! the end, or trickling a request head that never ends). Opening the connection is `connect`'s; the request modes are
//! `exchange`'s.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::future;
use socket2::SockRef;

use super::Guard;
use super::connect::connect;
use crate::measure::record;
use crate::outcome::{Classify, Outcome};
use crate::plan::CloseWith;

/// `--mode connect`: each request is a connect, then a close by FIN or RST.
pub(super) async fn connects(g: &mut Guard, source: Option<IpAddr>) {
    let sh = g.sh.clone();
    while let Some((intended, _)) = g.next().await {
        g.begin();
        let outcome = match connect(&sh, source).await {
            Ok(c) => {
                {
                    let mut rec = sh.rec(intended);
                    record(&mut rec.connect, c.took);
                    rec.response_time(sh.offset(intended), intended.elapsed(), c.took);
                }
                if sh.plan.close_with == CloseWith::Rst {
                    // Linger 0 makes close(2) send RST; a failure here only
                    // means a FIN is sent instead.
                    let _ = SockRef::from(c.stream.get_ref()).set_linger(Some(Duration::ZERO));
                }
                drop(c.stream);
                if c.syn_retransmitted {
                    Outcome::SynRetransmitted
                } else {
                    Outcome::Ok
                }
            }
            Err(o) => o,
        };
        g.finish(outcome);
    }
}

/// `--mode hold`: one connect per slot, then hold it idle until the end.
pub(super) async fn hold(g: &mut Guard, source: Option<IpAddr>) {
    let sh = g.sh.clone();
    let Some((intended, _)) = g.next().await else {
        return;
    };
    g.begin();
    let c = match connect(&sh, source).await {
        Ok(c) => c,
        Err(o) => {
            g.finish(o);
            return;
        }
    };
    {
        let mut rec = sh.rec(intended);
        record(&mut rec.connect, c.took);
        record(&mut rec.response, intended.elapsed());
        rec.opened();
    }
    let mut byte = [0u8; 1];
    // Without an end (not possible for a valid hold plan), an hour stands in.
    let end = sh
        .end
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    // With `trickle`: the next byte of a request head that never ends.
    let mut trickled = 0usize;
    let mut next_byte = sh.plan.trickle.map(|_| Instant::now());
    let outcome = loop {
        let now = Instant::now();
        if sh.stop.load(Ordering::Relaxed) || now >= end {
            break if c.syn_retransmitted {
                Outcome::SynRetransmitted
            } else {
                Outcome::Ok
            };
        }
        if let (Some(at), Some(every)) = (next_byte, sh.plan.trickle) {
            if now >= at {
                let byte = slow_head_byte(trickled);
                match c.stream.write(std::slice::from_ref(&byte)) {
                    Ok(_) => trickled += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => break Outcome::from_io_error(&e),
                }
                next_byte = Some(at + every);
            }
        }
        let wake_at = next_byte.map_or(end, |b| b.min(end));
        let woke = future::or(
            async {
                c.stream.readable().await;
                true
            },
            async {
                // Ctrl-C fires this timer early.
                sh.reactor.sleep_until(wake_at).await;
                false
            },
        )
        .await;
        if woke {
            match c.stream.read(&mut byte) {
                Ok(0) => break Outcome::EofBeforeResponse,
                // A server that talks first is still holding the connection.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break Outcome::from_io_error(&e),
            }
        }
    };
    sh.rec(intended).closed();
    g.finish(outcome);
}

/// Byte `n` of the request head a trickling held connection sends: a
/// request line, then one header whose value never ends.
fn slow_head_byte(n: usize) -> u8 {
    const START: &[u8] = b"GET / HTTP/1.1\r\nHost: floodgate\r\nX-Slow: ";
    START.get(n).copied().unwrap_or(b'a')
}
