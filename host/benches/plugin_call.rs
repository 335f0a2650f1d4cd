//! ns/event of the `threshold` plugin as a wasm component against the same MessagePack
//! field lookup and comparison done natively, in the same run; and the cost of a fresh
//! instance from the pre-linked component. Needs `scripts/build-plugins.sh` first.
//!
//! `cargo bench -p weir --bench plugin_call`

// criterion_group! makes public functions that cannot carry doc comments.
#![allow(missing_docs)]

#[path = "support/small_events.rs"]
mod small_events;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use small_events::small_events;
use weir::event::Event;
use weir::plugins::{HandlerInstance, PluginEngine, PluginLimits, PluginLoader};
use weir_plugin_sdk::msgpack;

const EVENTS: usize = 16_384;
const CONFIG: &str = r#"{"field":"amount","min":50}"#;

/// The native baseline: the same hand-rolled lookup the plugin uses, keeping events the
/// same way the host does (a cheap clone into the output batch).
fn native_threshold(batch: &[Event], out: &mut Vec<Event>) {
    for event in batch {
        let value = msgpack::lookup(&event.payload, "amount").ok().flatten();
        if value.and_then(|v| v.as_f64()).is_some_and(|v| v > 50.0) {
            out.push(event.clone());
        }
    }
}

fn threshold(c: &mut Criterion) {
    let plugin = PluginLoader::new(PluginEngine::new().expect("engine"), None)
        .load(&weir_e2e::plugin("threshold"))
        .expect("threshold loads");
    let events = small_events(EVENTS);
    let mut group = c.benchmark_group("threshold");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for batch in [1usize, 64, 256, 1024] {
        group.bench_with_input(BenchmarkId::new("native", batch), &batch, |b, &batch| {
            let mut out = Vec::with_capacity(batch);
            b.iter(|| {
                for chunk in events.chunks(batch) {
                    out.clear();
                    native_threshold(black_box(chunk), &mut out);
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("wasm", batch), &batch, |b, &batch| {
            let mut handler =
                HandlerInstance::new(&plugin, PluginLimits::default(), CONFIG).expect("init");
            b.iter(|| {
                for chunk in events.chunks(batch) {
                    black_box(handler.process(black_box(chunk)).expect("process"));
                }
            })
        });
    }
    group.finish();

    c.bench_function("instantiate_from_instance_pre", |b| {
        b.iter(|| HandlerInstance::new(&plugin, PluginLimits::default(), CONFIG).expect("init"))
    });
}

criterion_group!(benches, threshold);
criterion_main!(benches);
