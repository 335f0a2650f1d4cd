//! What the broker benches share: timing a pipeline from its first event in to its last
//! event out, the CPU this process spends per event, and the median of the rounds.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir::config::LoadedConfig;
use weir::metrics::Metrics;
use weir::plugins::PluginRegistry;

/// Runs the pipeline until its sink `out` has written `expected` events; events/s over
/// `events` input events, from the first event source `in` read (connecting and joining
/// are left out).
pub fn pipeline_rate(
    runtime: &tokio::runtime::Runtime,
    loaded: &LoadedConfig,
    registry: &PluginRegistry,
    events: u64,
    expected: u64,
) -> f64 {
    runtime.block_on(async {
        let metrics = Metrics::new();
        let stop = CancellationToken::new();
        let running = weir::pipeline::start(loaded, registry, &metrics, stop.clone())
            .await
            .expect("pipeline starts");
        let count = |name: &str, counter: &str| {
            running.components[name].counters()[counter]
                .as_u64()
                .unwrap_or(0)
        };
        let mut stalled = Stall::default();
        while count("in", "events_out") == 0 {
            stalled.check("in", 0);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let started = Instant::now();
        loop {
            let out = count("out", "events_out");
            if out >= expected {
                break;
            }
            stalled.check("out", out);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let rate = events as f64 / started.elapsed().as_secs_f64();
        stop.cancel();
        running.wait().await;
        rate
    })
}

/// How long a run may go without progress before the bench gives up on it (a pipeline
/// that failed would otherwise be waited for forever).
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// The last progress of a run, to stop waiting for one that stopped.
struct Stall {
    count: u64,
    since: Instant,
}

impl Default for Stall {
    fn default() -> Self {
        Self {
            count: 0,
            since: Instant::now(),
        }
    }
}

impl Stall {
    fn check(&mut self, component: &str, count: u64) {
        if count != self.count {
            *self = Self {
                count,
                since: Instant::now(),
            };
        }
        assert!(
            self.since.elapsed() < STALL_LIMIT,
            "{component} stuck at {count} events for {STALL_LIMIT:?}; see the pipeline's log"
        );
    }
}

/// CPU seconds this process has used so far (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `run` (which returns events/s over `events`), returning its rate and the process
/// CPU it took, in µs per event.
pub fn measured(events: u64, run: impl FnOnce() -> f64) -> (f64, f64) {
    let before = cpu_seconds();
    let rate = run();
    (rate, (cpu_seconds() - before) * 1e6 / events as f64)
}

/// The median rate and the median CPU per event of `runs`.
pub fn medians(runs: Vec<(f64, f64)>) -> Option<(f64, f64)> {
    let (rates, cpu): (Vec<f64>, Vec<f64>) = runs.into_iter().unzip();
    median(rates).zip(median(cpu))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Rounds to run: `WEIR_BENCH_ROUNDS`, else five.
pub fn rounds() -> usize {
    std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}

/// Prints one result line, with its ratios to `bare` when there is one.
pub fn print_row(name: &str, (rate, cpu): (f64, f64), bare: Option<(f64, f64)>) {
    let ratio = bare
        .map(|(b, bcpu)| format!("   {:.2}× bare rate, {:.2}× bare CPU", rate / b, cpu / bcpu))
        .unwrap_or_default();
    println!("  {name}{rate:>10.0} events/s  {cpu:>5.2} µs CPU/event{ratio}");
}

/// Prints each round's rate as a ratio to the bare client's rate in the same round, and
/// their median: paired rounds share the machine's slow and fast spells, so this is the
/// steadier figure on a shared machine.
pub fn print_round_ratios(name: &str, bare: &[(f64, f64)], runs: &[(f64, f64)]) {
    let ratios: Vec<f64> = bare.iter().zip(runs).map(|(b, r)| r.0 / b.0).collect();
    if ratios.is_empty() {
        return;
    }
    let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    if let Some(mid) = median(ratios) {
        println!(
            "  {name}per round: {} → median {mid:.2}× bare rate",
            listed.join(" ")
        );
    }
}
