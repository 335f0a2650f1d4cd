//! Whole-pipeline throughput and latency, in-process, on the real components:
//!
//! - generator → null: pass-through events/s;
//! - generator → wasm `threshold` → null, and the same with the built-in `filter` doing
//!   the same comparison natively: events/s and their ratio;
//! - generator at 100,000 events/s → wasm `threshold` → null: end-to-end latency p50/p99.
//!
//! `cargo bench -p weir --bench pipeline` (needs `scripts/build-plugins.sh` first). Each
//! throughput figure is the median of three runs.

// A bench binary with its own main: nothing here is public API.
#![allow(missing_docs)]

mod support;

use std::time::{Duration, Instant};

use support::prepare;
use tokio_util::sync::CancellationToken;
use weir::metrics::Metrics;

const PASS_THROUGH_EVENTS: u64 = 5_000_000;
const FILTER_EVENTS: u64 = 3_000_000;
const LATENCY_RATE: u64 = 100_000;
const LATENCY_SECONDS: u64 = 10;
/// Events the healthy stage takes in the isolation runs: a few seconds' worth, so several
/// of the neighbour's deadline stalls fall inside.
const ISOLATION_EVENTS: u64 = 12_000_000;

struct Outcome {
    elapsed: Duration,
    written: u64,
    metrics: String,
}

fn run(pipeline: &str) -> Outcome {
    let (runtime, loaded, registry) = prepare(pipeline);
    runtime.block_on(async {
        let metrics = Metrics::new();
        let started = Instant::now();
        let running = weir::pipeline::start(&loaded, &registry, &metrics, CancellationToken::new())
            .await
            .expect("pipeline starts");
        running.wait().await;
        let elapsed = started.elapsed();
        let written = running.components["out"].counters()["events_in"]
            .as_u64()
            .expect("sink counter");
        Outcome {
            elapsed,
            written,
            metrics: metrics.encode(),
        }
    })
}

/// Events/s of `stage` until it has taken `count` events; then the pipeline is stopped.
fn stage_rate(pipeline: &str, stage: &str, count: u64) -> f64 {
    let (runtime, loaded, registry) = prepare(pipeline);
    runtime.block_on(async {
        let metrics = Metrics::new();
        let stop = CancellationToken::new();
        let started = Instant::now();
        let running = weir::pipeline::start(&loaded, &registry, &metrics, stop.clone())
            .await
            .expect("pipeline starts");
        let taken = || {
            running.components[stage].counters()["events_in"]
                .as_u64()
                .unwrap_or(0)
        };
        while taken() < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        stop.cancel();
        running.wait().await;
        count as f64 / elapsed.as_secs_f64()
    })
}

fn median_rate(pipeline: &str, events: u64) -> f64 {
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let outcome = run(pipeline);
            assert_eq!(
                outcome.written + filtered(&outcome),
                events,
                "every event accounted for"
            );
            events as f64 / outcome.elapsed.as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

fn filtered(outcome: &Outcome) -> u64 {
    outcome
        .metrics
        .lines()
        .filter(|l| {
            l.starts_with("weir_events_dropped_total{") && l.contains("reason=\"filtered\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The `q` quantile of the sink's end-to-end latency, as the upper bound of its bucket.
fn latency_quantile(metrics: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("weir_end_to_end_latency_seconds_bucket{")
                && l.contains("component=\"out\"")
        })
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map_or(0, |b| b.1);
    let wanted = (total as f64 * q).ceil() as u64;
    buckets
        .iter()
        .find(|(_, count)| *count >= wanted)
        .map_or(f64::NAN, |(bound, _)| *bound)
}

const PAYMENTS: &str =
    r#"template = { seq = "{{seq}}", amount = "{{int(0,100)}}", user = "u{{int(0,99)}}" }"#;

fn main() {
    // `cargo bench` passes --bench; a filter argument would mean "only run matching", which
    // this binary does not support, so any argument is ignored.
    let pass_through = format!(
        "[server]\nenabled = false\n[sources.gen]\ntype = \"generator\"\ncount = {PASS_THROUGH_EVENTS}\n{PAYMENTS}\n[sinks.out]\ntype = \"null\"\ninputs = [\"gen\"]\n"
    );
    let through_stage = |stage: &str, count: u64, rate: &str| {
        format!(
            "[server]\nenabled = false\n[plugins]\ndir = \"{{plugins}}\"\n[sources.gen]\ntype = \"generator\"\ncount = {count}\n{rate}\n{PAYMENTS}\n[stages.big]\n{stage}\ninputs = [\"gen\"]\n[sinks.out]\ntype = \"null\"\ninputs = [\"big\"]\n"
        )
    };
    let wasm = through_stage(
        "type = \"handler\"\nplugin = \"threshold\"\nconfig = { field = \"amount\", min = 50 }",
        FILTER_EVENTS,
        "",
    );
    let native = through_stage(
        "type = \"filter\"\ncondition = \"amount > 50\"",
        FILTER_EVENTS,
        "",
    );

    let pass = median_rate(&pass_through, PASS_THROUGH_EVENTS);
    println!(
        "generator -> null:                    {:>12.0} events/s",
        pass
    );
    let wasm_rate = median_rate(&wasm, FILTER_EVENTS);
    println!(
        "generator -> wasm threshold -> null:  {:>12.0} events/s",
        wasm_rate
    );
    let native_rate = median_rate(&native, FILTER_EVENTS);
    println!(
        "generator -> native filter -> null:   {:>12.0} events/s",
        native_rate
    );
    println!(
        "wasm / native filter pipeline:        {:>12.2}",
        wasm_rate / native_rate
    );

    // The same wasm pipeline beside an independent branch whose plugin loops until its
    // deadline on about one event a second: how much the healthy stage loses.
    let isolation_base = through_stage(
        "type = \"handler\"\nplugin = \"threshold\"\nconfig = { field = \"amount\", min = 50 }",
        ISOLATION_EVENTS,
        "",
    );
    let alone = format!(
        "{isolation_base}[sources.noise]\ntype = \"generator\"\nrate = 1000.0\ntemplate = {{ x = \"{{{{int(1,1)}}}}\" }}\n[sinks.quiet]\ntype = \"null\"\ninputs = [\"noise\"]\n"
    );
    let beside_hostile = format!(
        "{isolation_base}[sources.noise]\ntype = \"generator\"\nrate = 1000.0\ntemplate = {{ x = \"{{{{int(0,999)}}}}\" }}\n[stages.spin]\ntype = \"handler\"\nplugin = \"loop-forever\"\nconfig = {{ field = \"x\", equals = 0 }}\ninputs = [\"noise\"]\n[sinks.quiet]\ntype = \"null\"\ninputs = [\"spin\"]\n"
    );
    let mut healthy: Vec<f64> = (0..3)
        .map(|_| stage_rate(&alone, "big", ISOLATION_EVENTS))
        .collect();
    let mut hostile: Vec<f64> = (0..3)
        .map(|_| stage_rate(&beside_hostile, "big", ISOLATION_EVENTS))
        .collect();
    healthy.sort_by(f64::total_cmp);
    hostile.sort_by(f64::total_cmp);
    println!(
        "wasm threshold stage, quiet neighbour:  {:>12.0} events/s",
        healthy[1]
    );
    println!(
        "wasm threshold stage, looping neighbour:{:>12.0} events/s",
        hostile[1]
    );
    println!(
        "with / without the hostile neighbour:   {:>12.2}",
        hostile[1] / healthy[1]
    );

    let latency = through_stage(
        "type = \"handler\"\nplugin = \"threshold\"\nconfig = { field = \"amount\", min = 50 }",
        LATENCY_RATE * LATENCY_SECONDS,
        &format!("rate = {LATENCY_RATE}.0"),
    );
    let outcome = run(&latency);
    let achieved = (LATENCY_RATE * LATENCY_SECONDS) as f64 / outcome.elapsed.as_secs_f64();
    println!(
        "latency at {LATENCY_RATE} events/s (achieved {achieved:.0}): p50 <= {:.2} ms, p99 <= {:.2} ms (bucket upper bounds, ms event-time resolution)",
        latency_quantile(&outcome.metrics, 0.50) * 1e3,
        latency_quantile(&outcome.metrics, 0.99) * 1e3
    );
}
