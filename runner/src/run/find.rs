//! A `find-capacity` phase: the search (`crate::capacity`) chooses each
//! step's rate (under `--shard`, every shard climbs the same fixed ladder
//! instead, and the merge judges it); each step here is one engine run of
//! two segments (the settle, not measured, then the measured step, with
//! fresh books), its own share of the kernel's evidence, the SLO judged on
//! it ([`judge_step`], which the merge uses too), then a cooldown without
//! load and a health check before the next.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use floodgate_loadgen::plan::Segment;
use floodgate_reports::scenario::{CapacityReport, CapacityStep, Judged};

use super::judge::{self, Measured};
use super::{Ctx, RunError};
use crate::capacity::{Search, Step, StepVerdict, Stopped};
use crate::scenario::FindCapacity;
use floodgate_reports::Run;

/// Runs the search of phase `index` to its end.
pub(super) fn run(
    ctx: &mut Ctx,
    index: usize,
    f: &FindCapacity,
) -> Result<CapacityReport, RunError> {
    let phase = &ctx.scenario.phases[index];
    // A shard climbs the ladder whatever its share shows.
    let ladder = ctx.shard.map(|_| crate::capacity::ladder(f));
    let mut search = match ladder {
        Some(_) => Search::for_ladder(f),
        None => Search::new(f),
    };
    let mut steps = Vec::new();
    let t0 = Instant::now();
    let mut bracket = String::from("starting");
    loop {
        let step = match &ladder {
            Some(rungs) => match rungs.get(steps.len()) {
                Some(&rate_per_s) => Step {
                    rate_per_s,
                    confirm: false,
                },
                None => break,
            },
            None => match search.next_step() {
                Some(step) => step,
                None => break,
            },
        };
        if ctx.stop.load(Ordering::Relaxed) {
            search.stop(Stopped::Interrupted);
            break;
        }
        if f.max_duration.is_some_and(|m| t0.elapsed() >= m) {
            search.stop(Stopped::MaxDuration);
            break;
        }
        let mut input = phase
            .plan_input(ctx.target.as_deref(), ctx.seed)
            .expect("a find-capacity phase sends load");
        input.rate_per_s = None;
        input.duration = None;
        input.segments = [
            (!f.settle.is_zero()).then(|| Segment::steady(step.rate_per_s, f.settle)),
            Some(Segment::steady(step.rate_per_s, f.step)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let measured = input.segments.len() - 1;
        let plan = ctx.plan(phase, input)?;
        let recorder = ctx.record();
        let names: Vec<String> = ["settle", "step"][1 - measured..]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let note = format!(
            "step {} at {}/s{}; {bracket}",
            steps.len() + 1,
            step.rate_per_s.round(),
            if step.confirm { " (confirm)" } else { "" }
        );
        let saved = std::mem::replace(&mut ctx.evidence, recorder);
        let ran = ctx.run_engine(&plan, index, &names, Some(note));
        let recorder = std::mem::replace(&mut ctx.evidence, saved);
        let mut run = floodgate_loadgen::report::build_phase(&plan, &ran, measured);
        // The step keeps its share's figures; its samples are the whole
        // run's timeline's too (the phase's recorder goes on under the
        // step's), which keeps them once. The step's intervals take their
        // share by wall-clock time, not by the marks, which follow the
        // engine's segments only within a progress tick.
        if let Some(timeline) = recorder.map(|r| r.finish()) {
            run = run.with_share_of(&timeline, "step");
        }
        let verdict = if ran.partial {
            search.stop(Stopped::Interrupted);
            None
        } else {
            Some(judge_step(f, &run, ctx.scenario.max_lag))
        };
        let Some(verdict) = verdict else {
            break;
        };
        let (name, why) = match &verdict {
            StepVerdict::Pass => ("pass", None),
            StepVerdict::Fail { why } => ("fail", Some(why.clone())),
            StepVerdict::Inconclusive { why } => ("inconclusive", Some(why.clone())),
        };
        steps.push(CapacityStep {
            rate_per_s: step.rate_per_s,
            confirm: step.confirm,
            verdict: name.to_string(),
            why,
            run,
        });
        search.record(step, verdict);
        let r = search.result();
        bracket = format!(
            "bracket {}–{}",
            r.finding
                .last_pass_per_s
                .map_or("?".into(), |x| format!("{}/s", x.round())),
            r.finding
                .first_fail_per_s
                .map_or("?".into(), |x| format!("{}/s", x.round()))
        );
        cooldown(ctx, index, f.cooldown, phase.load.connect_timeout);
    }
    let r = search.result();
    let summary = match ctx.shard {
        Some(shard) => format!(
            "shard {shard}'s share of a ladder of {} rates, judged on every shard's figures \
             by `floodgate report merge`; this share alone: {}",
            steps.len(),
            r.summary()
        ),
        None => r.summary(),
    };
    Ok(CapacityReport {
        finding: r.finding.clone(),
        stopped: r.stopped.map(|s| s.to_string()),
        summary,
        usl: Some(crate::usl::report(&steps)),
        steps,
    })
}

/// What a measured step shows against the phase's SLO: inconclusive when
/// the generator fell short, else a pass, or a fail naming each failed
/// term with its measured value and the run's verdict.
pub(crate) fn judge_step(f: &FindCapacity, run: &Run, max_lag: f64) -> StepVerdict {
    if let Some(why) = judge::inconclusive(run, max_lag) {
        return StepVerdict::Inconclusive { why };
    }
    let measured = Measured {
        run: Some(run),
        ..Measured::default()
    };
    let failed: Vec<String> = f
        .slo
        .iter()
        .map(|t| judge::judge(t, measured, false))
        .filter(|r| r.status == Judged::Fail)
        .map(|r| {
            let m = r
                .measured
                .map(|m| format!(" measured {m}"))
                .unwrap_or_default();
            let n = r.note.map(|n| format!(" ({n})")).unwrap_or_default();
            format!("{}{m}{n}", r.threshold)
        })
        .collect();
    if failed.is_empty() {
        StepVerdict::Pass
    } else {
        StepVerdict::Fail {
            why: format!("{}; verdict: {}", failed.join(", "), run.verdict.summary),
        }
    }
}

/// No load for `cooldown`, then a health check: the target accepts a
/// connection again (waited for up to ten connect timeouts).
fn cooldown(ctx: &mut Ctx, index: usize, cooldown: Duration, connect_timeout: Duration) {
    ctx.wait(cooldown, index);
    let until = Instant::now() + connect_timeout * 10;
    while !ctx.stop.load(Ordering::Relaxed) {
        if TcpStream::connect_timeout(&ctx.addr, connect_timeout).is_ok() {
            return;
        }
        if Instant::now() >= until {
            tracing::warn!(
                "the target at {} accepts no connection after the cooldown; the next step goes on",
                ctx.addr
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
