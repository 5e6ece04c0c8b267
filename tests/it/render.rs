//! The report files of `floodgate_render` on the sample scenario report of
//! `schema` (every optional part present once): what a reader of
//! summary.md, report.html and junit.xml checks first.

use std::collections::BTreeMap;

use floodgate_reports::Outcome;
use floodgate_reports::evidence::Counters;
use floodgate_reports::scenario::{Judged, ScenarioReport};
use floodgate_reports::series::QueueInterval;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

use crate::schema::sample_scenario_report;

fn summary(r: &ScenarioReport) -> String {
    floodgate_render::markdown::render(r).expect("summary.md renders")
}

fn html(r: &ScenarioReport) -> String {
    let series = floodgate_render::timeline::phases(r).expect("the intervals decode");
    floodgate_render::html::render(r, &series).expect("report.html renders")
}

/// The `<figure id="ID" ...>...</figure>` of a page.
fn figure<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<figure id=\"{id}\""))
        .unwrap_or_else(|| panic!("no figure {id}"));
    let len = page[start..]
        .find("</figure>")
        .expect("the figure is closed");
    &page[start..start + len]
}

/// The point lists of a figure's polylines (what plotters draws a line as).
fn polylines(figure: &str) -> Vec<usize> {
    figure
        .split("<polyline")
        .skip(1)
        .map(|p| {
            let points = p.split("points=\"").nth(1).unwrap_or("");
            let points = &points[..points.find('"').unwrap_or(0)];
            points.split_whitespace().count()
        })
        .collect()
}

#[test]
fn summary_md_leads_with_the_status_then_every_threshold_with_what_was_measured() {
    let md = summary(&sample_scenario_report());
    assert!(md.starts_with("# floodgate run `checkout`: FAIL\n"), "{md}");
    let status = md
        .find("**FAIL**: a threshold failed.")
        .expect("the status");
    let reason = md
        .find("- latency.p99 < 25ms over 1s failed: 31.0ms from 0s")
        .expect("the reason");
    let thresholds = md.find("## Thresholds").expect("the thresholds");
    assert!(status < reason && reason < thresholds, "{md}");
    for row in [
        "| **FAIL** | `latency.p99 < 25ms over 1s` | whole run | measured 31.0ms (the first window over 25ms) |",
        "| pass | `probe.capacity == 9` | backlog | measured 9 |",
        "| not judged | `errors < 1%` | warm | measured 0% (a warm-up phase is measured, never judged) |",
    ] {
        assert!(md.contains(row), "no {row:?} in\n{md}");
    }
}

#[test]
fn summary_md_has_capacity_with_its_bracket_the_usl_fit_the_baseline_and_sparklines() {
    let md = summary(&sample_scenario_report());
    for line in [
        "- capacity 100/s; bracket: last pass 100/s, first fail 200/s; stopped: max_steps reached",
        "- USL fit over 6 passing steps: σ (contention) 0.0200, κ (coherency) 0.000100, λ 950/s, predicted peak 31000/s at concurrency 99.0, R² 0.980",
        "| 200/s | **fail** | ",
        "| warm | latency.p99 (ms) | 20.1 | 24.3 | +20.9% | 0.0001 | **yes** |",
        "- p99 per second `▁`",
        "- verdict: ",
    ] {
        assert!(md.contains(line), "no {line:?} in\n{md}");
    }
    assert!(md.contains("| soak | steady | | | did not run |"), "{md}");
    // A long phase's sparkline is 60 characters, however long the phase.
    let mut r = sample_scenario_report();
    let run = r.phases[0].run.as_mut().unwrap();
    let one = run.intervals[0].clone();
    run.intervals = (0..600)
        .map(|s| floodgate_reports::series::Interval {
            start_s: s as f64,
            ..one.clone()
        })
        .collect();
    let md = summary(&r);
    let spark = md
        .lines()
        .find(|l| l.starts_with("- p99 per second `"))
        .expect("a p99 sparkline");
    assert_eq!(
        spark.split('`').nth(1).unwrap().chars().count(),
        60,
        "{spark}"
    );
}

#[test]
fn junit_has_a_case_per_threshold_failing_exactly_where_the_run_failed() {
    let mut r = sample_scenario_report();
    r.scenario.text =
        "name = \"checkout\"\n[[phase]]\nname = \"capacity\"\nkind = \"find-capacity\"\n\
                       slo = [\"latency.p99 < 10ms\", \"errors < 0.1%\"]\n"
            .into();
    let xml = floodgate_render::junit::render(&r).expect("junit.xml renders");
    let report = Report::deserialize_from_str(&xml).expect("junit.xml parses");
    // One suite per phase and one for the whole run.
    assert_eq!(report.test_suites.len(), r.phases.len() + 1);
    let cases: Vec<_> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    let thresholds =
        r.phases.iter().map(|p| p.thresholds.len()).sum::<usize>() + r.thresholds.len();
    // Each threshold, the capacity found, and each SLO term.
    assert_eq!(cases.len(), thresholds + 1 + 2, "{xml}");
    let failed: Vec<(&str, Option<&str>)> = cases
        .iter()
        .filter_map(|c| match &c.status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                ..
            } => Some((c.name.as_str(), message.as_ref().map(|m| m.as_str()))),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [(
            "latency.p99 < 25ms over 1s",
            Some("latency.p99 < 25ms over 1s: measured 31.0ms (the first window over 25ms)")
        )]
    );
    let expected_fails = r
        .phases
        .iter()
        .flat_map(|p| &p.thresholds)
        .chain(&r.thresholds)
        .filter(|t| t.status == Judged::Fail)
        .count();
    assert_eq!(failed.len(), expected_fails);
    let skipped: Vec<&str> = cases
        .iter()
        .filter(|c| matches!(c.status, TestCaseStatus::Skipped { .. }))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["errors < 1%"],
        "the warm-up's threshold is not judged"
    );
    let slo: Vec<&str> = cases
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| n.starts_with("slo: "))
        .collect();
    assert_eq!(slo, ["slo: latency.p99 < 10ms", "slo: errors < 0.1%"]);
}

#[test]
fn report_html_loads_nothing_and_draws_every_chart() {
    let page = html(&sample_scenario_report());
    for fetch in [
        "<script",
        "src=",
        "href=",
        "@import",
        "url(",
        "<link",
        "@font-face",
    ] {
        assert!(!page.contains(fetch), "the page has {fetch:?}");
    }
    for id in [
        "chart-latency",
        "chart-rate",
        "chart-outcomes",
        "chart-capacity-capacity",
        "chart-usl-capacity",
        "chart-spectrum",
    ] {
        let f = figure(&page, id);
        assert!(f.contains("data-state=\"drawn\""), "{id} is not drawn");
        assert!(f.contains("<svg"), "{id} has no svg");
        assert!(polylines(f).iter().any(|&n| n >= 2), "{id} draws no line");
    }
    // The sample's intervals carry no accept queue: the chart says so.
    let f = figure(&page, "chart-accept-queue");
    assert!(
        f.contains("data-state=\"not-sampled\"") && f.contains("accept-queue depth: not sampled")
    );
    // The SLO line of the find-capacity phase, read from its steps' why.
    assert!(figure(&page, "chart-capacity-capacity").contains("SLO: p99 &lt; 10 ms"));
    assert!(
        page.contains("<td class=\"yes\">yes</td>"),
        "the baseline's regression row"
    );
}

#[test]
fn the_accept_queue_chart_draws_depth_backlog_and_overflows_when_sampled() {
    let mut r = sample_scenario_report();
    let run = r.phases[0].run.as_mut().unwrap();
    let one = run.intervals[0].clone();
    run.intervals = (0..5)
        .map(|s| floodgate_reports::series::Interval {
            start_s: s as f64,
            accept_queue: Some(QueueInterval {
                max_depth: 10 * s,
                backlog: 128,
                samples: 10,
            }),
            kernel: Some(Counters {
                listen_overflows: u64::from(s) * 3,
                ..Counters::default()
            }),
            outcomes: BTreeMap::from([(Outcome::Ok, one.ok)]),
            ..one.clone()
        })
        .collect();
    let page = html(&r);
    let f = figure(&page, "chart-accept-queue");
    assert!(f.contains("data-state=\"drawn\""), "{f}");
    for legend in [
        "deepest queue sampled",
        "backlog",
        "listen overflows (kernel)",
    ] {
        assert!(f.contains(legend), "no {legend:?}");
    }
    assert!(f.contains("<rect"), "the overflow bars");
}

#[test]
fn a_long_run_is_drawn_downsampled_and_the_report_keeps_every_interval() {
    let mut r = sample_scenario_report();
    let run = r.phases[0].run.as_mut().unwrap();
    let one = run.intervals[0].clone();
    run.intervals = (0..3_600)
        .map(|s| floodgate_reports::series::Interval {
            start_s: s as f64,
            ..one.clone()
        })
        .collect();
    r.phases[0].elapsed_s = 3_600.0;
    let page = html(&r);
    let lines = polylines(figure(&page, "chart-latency"));
    let longest = lines.iter().max().copied().unwrap_or(0);
    assert!(
        (100..=floodgate_render::MAX_POINTS).contains(&longest),
        "the longest line has {longest} points"
    );
    assert_eq!(r.phases[0].run.as_ref().unwrap().intervals.len(), 3_600);
}
