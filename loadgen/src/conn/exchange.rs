//! The request modes (`--mode requests` and `churn`): a slot's request
//! lifecycle in the closed and the open loop. It takes the next request,
//! opens or reuses a connection, writes the request, reads and parses the
//! reply (`receive`) under the read deadline, and records an outcome,
//! reclassified by what the connect and the socket showed (a retransmitted
//! SYN, request bytes never acknowledged). It also finishes requests the
//! keep-alive handler hands back and, with `--malformed`, interleaves
//! malformed inputs and echo probes. The handler is `keepalive`'s, the
//! malformed exchange `malformed`'s, parsing replies `crate::http`'s.

use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use futures_lite::future;

use super::buffer::Buffer;
use super::connect::{Conn, open};
use super::keepalive::{Resume, Resumed, keep_alive};
use super::malformed::{malformed_exchange, ms_since, note_failure};
use super::{Deadline, Guard};
use crate::http::{Complete, CompleteOutcome, Expect, Framing, Prepared, Progress, ResponseParser};
use crate::malformed::{MalformedOutcome, Sent};
use crate::measure::record;
use crate::outcome::{Classify, Outcome};
use crate::plan::Mode;
use crate::reactor::Stream;

pub(super) async fn write_all(stream: &Stream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `req` and reads its reply.
async fn exchange(
    conn: &mut Conn,
    buf: &mut Buffer,
    parser: &mut ResponseParser,
    req: &Prepared,
    verify: bool,
) -> Result<Complete, Outcome> {
    let sent = match &mut conn.tls {
        None => write_all(&conn.stream, &req.wire).await,
        Some(tls) => crate::tls::send(&conn.stream, tls, &req.wire).await,
    };
    sent.map_err(|e| Outcome::from_io_error(&e))?;
    parser.start(req);
    receive(conn, buf, parser, req, verify, None).await
}

/// Reads the reply to `req` (the parser started). `pending` is a read made
/// already (an EOF or an error) that is taken before any new one.
async fn receive(
    conn: &mut Conn,
    buf: &mut Buffer,
    parser: &mut ResponseParser,
    req: &Prepared,
    verify: bool,
    mut pending: Option<io::Result<usize>>,
) -> Result<Complete, Outcome> {
    let stream = &conn.stream;
    loop {
        if buf.start != buf.end {
            match parser.feed(buf.filled(), req, verify) {
                Ok((n, Progress::Done(c))) => {
                    buf.consume(n);
                    return Ok(c);
                }
                Ok((n, Progress::NeedMore)) => buf.consume(n),
                Err(_) => return Err(Outcome::BadResponse),
            }
        }
        // Readiness first, then one read: a read that would block costs a
        // system call for nothing.
        let spare = buf.spare();
        let got = match (pending.take(), &mut conn.tls) {
            (Some(got), _) => got,
            (None, None) => {
                stream.readable().await;
                stream.read(spare)
            }
            (None, Some(tls)) => crate::tls::recv(stream, tls, spare).await,
        };
        match got {
            Ok(0) => {
                return parser.eof(req, verify).ok_or(Outcome::EofBeforeResponse);
            }
            Ok(n) => buf.end += n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Outcome::from_io_error(&e)),
        }
    }
}

/// Keep-alive (or, in churn mode, one-shot) request/response. With
/// `--malformed`, malformed inputs go on connections of their own, and echo
/// probes carry a token unique to the request.
pub(super) async fn requests(g: &mut Guard, index: usize, source: Option<IpAddr>) {
    let sh = g.sh.clone();
    let plan = sh.plan.clone();
    let mut conn: Option<Conn> = None;
    let mut fresh_syn_retransmitted = false;
    let mut buf = Buffer::new();
    let mut parser = ResponseParser::default();
    let deadline = Rc::new(Deadline::default());
    sh.deadlines.borrow_mut().push(deadline.clone());
    // How many malformed inputs and echo probes this slot has sent: the
    // numbers that make each one reproducible and each token unique.
    let mut malformed_n = 0u64;
    let mut probe_n = 0u64;
    let mut probe: Option<Prepared> = None;
    // Closed loop over plain HTTP without --malformed: an open connection's
    // requests are run by the reactor (`KeepAlive`) until something other
    // than an `ok` on a kept connection happens.
    let keep_alive_inline = !plan.is_open()
        && plan.mode == Mode::Requests
        && plan.tls.is_none()
        && plan.malformed.is_none();
    // A request the keep-alive handler handed back, to finish here.
    let mut resumed: Option<Resumed> = None;
    loop {
        let (intended, sent, is_probe, result) = if let Some(r) = resumed.take() {
            let req = &plan.kinds[r.kind].prepared;
            let established = conn.as_mut().expect("handed back on an open connection");
            let result = match r.how {
                Resume::Done(result) => result,
                Resume::WriteFailed(e) => Err(Outcome::from_io_error(&e)),
                Resume::InFlight { written, read } => {
                    future::or(
                        async {
                            write_all(&established.stream, &req.wire[written..])
                                .await
                                .map_err(|e| Outcome::from_io_error(&e))?;
                            receive(established, &mut buf, &mut parser, req, plan.verify, read)
                                .await
                        },
                        async {
                            deadline.expired().await;
                            Err(Outcome::ReadTimeout)
                        },
                    )
                    .await
                }
            };
            deadline.disarm();
            (r.intended, r.intended, false, result)
        } else {
            let Some((intended, slot)) = g.next().await else {
                break;
            };
            if slot.malformed {
                g.begin_malformed();
                let m = plan
                    .malformed
                    .as_ref()
                    .expect("malformed slots come from a --malformed plan");
                let input = m.generator.input(index, malformed_n);
                let start_ms = ms_since(sh.start, Instant::now());
                let o = malformed_exchange(&sh, source, &input.bytes, &deadline).await;
                {
                    let mut rec = sh.rec(intended);
                    rec.malformed.by_source[input.source as usize] += 1;
                    if !matches!(o, MalformedOutcome::ConnectFailed) {
                        rec.malformed.remember(Sent {
                            slot: index as u32,
                            n: malformed_n,
                            start_ms,
                            end_ms: ms_since(sh.start, Instant::now()),
                            unexpected: o.unexpected(),
                        });
                    }
                }
                malformed_n += 1;
                g.finish_malformed(o);
                continue;
            }
            g.begin();
            let is_probe = plan
                .malformed
                .as_ref()
                .is_some_and(|m| m.probe_kind == slot.kind);
            let req = match &plan.malformed {
                Some(m) if is_probe => {
                    let token = crate::plan::probe_token(plan.seed, index, probe_n);
                    probe_n += 1;
                    let mut wire = m.probe_head.clone();
                    wire.extend_from_slice(&token);
                    &*probe.insert(Prepared {
                        wire,
                        framing: Framing::Http {
                            head_request: false,
                        },
                        expect: Expect::Echo(token),
                    })
                }
                _ => &plan.kinds[slot.kind].prepared,
            };
            let reused = conn.is_some();
            let established = match &mut conn {
                Some(c) => c,
                None => match open(&sh, source).await {
                    Ok((established, took, syn_retransmitted)) => {
                        record(&mut sh.rec(intended).connect, took);
                        fresh_syn_retransmitted = syn_retransmitted;
                        buf.clear();
                        conn.insert(established)
                    }
                    Err(o) => {
                        note_failure(&sh, intended, o);
                        g.finish(o);
                        continue;
                    }
                },
            };
            // Closed loop on an open connection: the request goes out now, at
            // its intended time (read when the last one ended).
            let sent = if reused && !plan.is_open() {
                intended
            } else {
                Instant::now()
            };
            deadline.arm(sent + plan.read_timeout);
            let result = future::or(
                exchange(
                    established,
                    &mut buf,
                    &mut parser,
                    req,
                    plan.verify || is_probe,
                ),
                async {
                    deadline.expired().await;
                    Err(Outcome::ReadTimeout)
                },
            )
            .await;
            deadline.disarm();
            (intended, sent, is_probe, result)
        };
        let done = Instant::now();
        g.ended_at = Some(done);
        let outcome = match result {
            Ok(c) => {
                sh.rec(intended)
                    .response_time(sh.offset(intended), done - intended, done - sent);
                if c.close || plan.mode == Mode::Churn {
                    conn = None;
                }
                match c.outcome() {
                    Outcome::Ok if fresh_syn_retransmitted => Outcome::SynRetransmitted,
                    o => o,
                }
            }
            Err(Outcome::ReadTimeout) => {
                // Unacknowledged request bytes mean the server never took
                // the connection: its accept queue dropped the final ACK.
                let unacked = conn
                    .as_ref()
                    .and_then(|c| crate::kernel::tcp_info(c.stream.get_ref()).ok())
                    .is_some_and(|i| i.unacked > 0);
                conn = None;
                if unacked {
                    Outcome::RequestUnacked
                } else {
                    Outcome::ReadTimeout
                }
            }
            Err(o) => {
                conn = None;
                o
            }
        };
        fresh_syn_retransmitted = false;
        if is_probe {
            let mut rec = sh.rec(intended);
            rec.malformed.echo_checks += 1;
            if outcome == Outcome::VerifyMismatch {
                rec.malformed.echo_mismatches += 1;
            }
        }
        note_failure(&sh, intended, outcome);
        g.finish(outcome);
        // (Bytes left past a reply are fed before any read by `receive`;
        // the handler only feeds after a read, so such a connection stays
        // with the task.)
        if keep_alive_inline && outcome == Outcome::Ok && buf.start == buf.end {
            if let Some(established) = &conn {
                match keep_alive(g, &established.stream, &mut buf, &mut parser, &deadline).await {
                    Some(r) => resumed = Some(r),
                    None => break,
                }
            }
        }
    }
}
