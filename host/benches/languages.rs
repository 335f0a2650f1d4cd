//! The `threshold` plugin in each language (Rust, Python, JavaScript, C) against the same
//! lookup and comparison done natively, in the same run: ns/event, instance memory, component
//! size and compile time, printed as one table. Needs `scripts/build-plugins.sh` first.
//!
//! `cargo bench -p weir --bench languages`; `WEIR_BENCH_ROUNDS` (default 5) sets how many
//! rounds the median is taken over. Each round measures every language in turn, so a
//! machine that gets busier slows them all alike and the ratios hold.

// A bench is a program of its own; the table is its output.
#![allow(missing_docs, clippy::print_stdout)]

#[path = "support/small_events.rs"]
mod small_events;

use std::hint::black_box;
use std::time::{Duration, Instant};

use small_events::small_events;
use weir::event::Event;
use weir::plugins::{HandlerInstance, LoadedPlugin, PluginEngine, PluginLimits, PluginLoader};
use weir_plugin_sdk::msgpack;

const EVENTS: usize = 16_384;
const BATCH: usize = 1_024;
const CONFIG: &str = r#"{"field":"amount","min":50}"#;
/// Each measurement runs for at least this long.
const MEASURE_FOR: Duration = Duration::from_millis(300);

/// (language, plugin file name).
const PLUGINS: [(&str, &str); 4] = [
    ("Rust", "threshold"),
    ("C", "threshold-c"),
    ("JavaScript", "threshold-js"),
    ("Python", "threshold-py"),
];

/// The native baseline: the same lookup the Rust plugin does, keeping events the way the
/// host does (a cheap clone into the output batch).
fn native(events: &[Event]) -> usize {
    let mut out = Vec::with_capacity(BATCH);
    let mut kept = 0;
    for chunk in events.chunks(BATCH) {
        out.clear();
        for event in chunk {
            let value = msgpack::lookup(&event.payload, "amount").ok().flatten();
            if value.and_then(|v| v.as_f64()).is_some_and(|v| v > 50.0) {
                out.push(event.clone());
            }
        }
        kept += black_box(&out).len();
    }
    kept
}

fn wasm(handler: &mut HandlerInstance, events: &[Event]) -> usize {
    events
        .chunks(BATCH)
        .map(|chunk| {
            handler
                .process(black_box(chunk))
                .expect("process")
                .events
                .len()
        })
        .sum()
}

/// ns/event of `pass` (which handles all of `events` once), run for at least `MEASURE_FOR`.
fn ns_per_event(mut pass: impl FnMut() -> usize) -> f64 {
    let started = Instant::now();
    let mut passes = 0u64;
    while started.elapsed() < MEASURE_FOR {
        black_box(pass());
        passes += 1;
    }
    started.elapsed().as_nanos() as f64 / (passes as f64 * EVENTS as f64)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Language {
    name: &'static str,
    plugin: LoadedPlugin,
    handler: HandlerInstance,
    memory_after_init: usize,
    ns: Vec<f64>,
}

fn main() {
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let loader = PluginLoader::new(PluginEngine::new().expect("engine"), None);
    let events = small_events(EVENTS);
    let want = native(&events);
    let mut languages: Vec<Language> = PLUGINS
        .iter()
        .map(|&(name, file)| {
            let plugin = loader
                .load(&weir_e2e::plugin(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let handler =
                HandlerInstance::new(&plugin, PluginLimits::default(), CONFIG).expect("init");
            let memory_after_init = handler.memory_bytes();
            Language {
                name,
                plugin,
                handler,
                memory_after_init,
                ns: Vec::new(),
            }
        })
        .collect();
    for language in &mut languages {
        // Warm up, and check that every language keeps what native code keeps.
        let kept = wasm(&mut language.handler, &events);
        assert_eq!(
            kept, want,
            "{} keeps {kept} of {EVENTS}, native {want}",
            language.name
        );
    }
    let mut native_ns = Vec::new();
    for _ in 0..rounds {
        native_ns.push(ns_per_event(|| native(&events)));
        for language in &mut languages {
            let handler = &mut language.handler;
            language.ns.push(ns_per_event(|| wasm(handler, &events)));
        }
    }
    let native_ns = median(&mut native_ns);
    let rust_ns = median(&mut languages[0].ns.clone());
    println!(
        "threshold, batches of {BATCH}, {EVENTS} events of ~40 bytes, median of {rounds} rounds"
    );
    println!(
        "| language | ns/event | × native | × Rust wasm | instance memory after init / after \
         the run | component size | compile |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!("| native Rust (no wasm) | {native_ns:.1} | 1.0 | | | | |");
    for language in &mut languages {
        let ns = median(&mut language.ns);
        println!(
            "| {} | {ns:.1} | {:.1} | {:.2} | {:.1} MiB / {:.1} MiB | {:.1} KiB | {:.0} ms |",
            language.name,
            ns / native_ns,
            ns / rust_ns,
            language.memory_after_init as f64 / 1_048_576.0,
            language.handler.memory_bytes() as f64 / 1_048_576.0,
            language.plugin.size() as f64 / 1024.0,
            language.plugin.compile_time().as_secs_f64() * 1e3,
        );
    }
}
