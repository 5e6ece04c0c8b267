//! The two modes without requests: `--mode connect` (connect, then close
//! by FIN or RST) and `--mode hold` (one connection per slot, held idle to
//! the end). Opening the connection is `connect`'s; the request modes are
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
    let outcome = loop {
        if sh.stop.load(Ordering::Relaxed) || Instant::now() >= end {
            break if c.syn_retransmitted {
                Outcome::SynRetransmitted
            } else {
                Outcome::Ok
            };
        }
        let woke = future::or(
            async {
                c.stream.readable().await;
                true
            },
            async {
                // Ctrl-C fires this timer early.
                sh.reactor.sleep_until(end).await;
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
