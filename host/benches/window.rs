//! Window engine throughput: a keyed tumbling window with count + sum + avg over 10,000
//! keys, against a hand-written native fold of the same events (a hash map of per-key,
//! per-window count and sum, fired by the same watermark) in the same run.
//!
//! Events are MessagePack payloads made up front, slightly out of order; the watermark
//! trails the latest event time by one second and advances every 1,024 events, as a
//! stage advances it once per batch. Each figure is the median of five rounds.
//!
//! The same window with the sums kept by the `stats` aggregator plugin instead (count, sum,
//! min, max, mean in one accumulator), folded many events per call as the stage does.
//!
//! Then a checkpoint of 1,000,000 open windows (one per key, count + sum + avg): the time
//! to snapshot the engine, to write it to the checkpoint store (one durable transaction),
//! to read it back and restore it, and its size.
//! Last, the whole stage in a pipeline: a generator of 2,000,000 events over 10,000 keys
//! through the window stage (count + sum + avg, then with the plugin) to a null sink, against
//! the generator straight to the null sink in the same run.
//! `cargo bench -p weir --bench window`.

// A bench binary with its own main: nothing here is public API.
#![allow(missing_docs)]

#[path = "support/finite.rs"]
mod finite;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use finite::pipeline_seconds;
use weir::event::Event;
use weir::operators::window::{
    AggKind, AggSpec, PluginAggregation, PluginAggregations, Scalar, WindowEngine, WindowKind,
};
use weir::plugins::{
    PluginEngine, PluginKind, PluginLimits, PluginLoader, PluginRegistry, PluginUser,
};
use weir::state::CheckpointStore;
use weir_plugin_sdk::msgpack;

const EVENTS: usize = 1_000_000;
const KEYS: u64 = 10_000;
const BATCH: usize = 1_024;
const WINDOW_MS: i64 = 10_000;
const DISORDER_MS: i64 = 1_000;

struct Input {
    times: Vec<i64>,
    payloads: Vec<Vec<u8>>,
}

fn input() -> Input {
    let mut rng = fastrand::Rng::with_seed(7);
    let (mut times, mut payloads) = (Vec::new(), Vec::new());
    for i in 0..EVENTS {
        let key = rng.u64(..KEYS);
        // 100,000 events per second of event time, jittered back by up to the disorder.
        let time = 1_700_000_000_000 + (i as i64) / 100 - rng.i64(0..DISORDER_MS);
        let amount = rng.i64(1..1_000);
        let mut payload = Vec::new();
        msgpack::write_map_len(&mut payload, 2);
        msgpack::write_str(&mut payload, "user");
        msgpack::write_uint(&mut payload, key);
        msgpack::write_str(&mut payload, "amount");
        msgpack::write_int(&mut payload, amount);
        times.push(time);
        payloads.push(payload);
    }
    Input { times, payloads }
}

fn aggs() -> Vec<AggSpec> {
    vec![
        AggSpec {
            name: "n".into(),
            kind: AggKind::Count,
            field: None,
        },
        AggSpec {
            name: "total".into(),
            kind: AggKind::Sum,
            field: Some("amount".into()),
        },
        AggSpec {
            name: "mean".into(),
            kind: AggKind::Avg,
            field: Some("amount".into()),
        },
    ]
}

/// Feeds every event to `engine` as a stage does, the watermark trailing by the disorder
/// and moving once a batch; returns events/s and the number of results.
fn drive(mut engine: WindowEngine, input: &Input, events: &[Event]) -> (f64, usize) {
    let mut out = Vec::new();
    let mut results = 0;
    let started = Instant::now();
    let mut max_seen = i64::MIN;
    let mut key = vec![Scalar::Nil];
    for (i, event) in events.iter().enumerate() {
        // The stage reads the group-by field from the payload, as here.
        key[0] = Scalar::lookup(&event.payload, "user");
        let time = input.times[i];
        engine.add_event(&key, time, event, &mut out);
        max_seen = max_seen.max(time);
        if i % BATCH == BATCH - 1 {
            engine.advance(max_seen - DISORDER_MS, &mut out);
            results += out.len();
            out.clear();
        }
    }
    engine.advance(i64::MAX, &mut out);
    results += out.len();
    assert!(engine.take_custom_failures().is_empty());
    (EVENTS as f64 / started.elapsed().as_secs_f64(), results)
}

/// The engine with the stage's default bounds on its state, as a stage runs it.
fn engine(aggs: Vec<AggSpec>) -> WindowEngine {
    WindowEngine::new(WindowKind::Tumbling { size: WINDOW_MS }, aggs, 0)
        .with_limits(1_000_000, 4_000_000)
}

/// The engine with the `stats` plugin as its one aggregation.
fn wasm_engine(registry: &PluginRegistry) -> WindowEngine {
    let slot = Arc::clone(registry.slot("stats").expect("stats loaded"));
    let user = PluginUser::new(
        "bench",
        PluginKind::Aggregator,
        serde_json::json!({"field": "amount"}),
        PluginLimits::default(),
    );
    let stats = PluginAggregation::new(slot, user, Default::default()).expect("stats starts");
    let aggs = vec![AggSpec {
        name: "s".into(),
        kind: AggKind::Custom(0),
        field: None,
    }];
    engine(aggs).with_custom(Box::new(PluginAggregations(vec![stats])))
}

/// The native fold: per (key, window start), count and sum; fired by the same watermark.
fn native(input: &Input) -> (f64, usize) {
    let mut windows: HashMap<(u64, i64), (u64, i64)> = HashMap::new();
    let mut results = Vec::new();
    let mut fired = 0;
    let started = Instant::now();
    let mut max_seen = i64::MIN;
    for (i, payload) in input.payloads.iter().enumerate() {
        let user = match msgpack::lookup(payload, "user") {
            Ok(Some(msgpack::Value::UInt(u))) => u,
            _ => continue,
        };
        let amount = match msgpack::lookup(payload, "amount") {
            Ok(Some(v)) => v.as_f64().unwrap_or(0.0) as i64,
            _ => 0,
        };
        let time = input.times[i];
        let start = time.div_euclid(WINDOW_MS) * WINDOW_MS;
        let entry = windows.entry((user, start)).or_default();
        entry.0 += 1;
        entry.1 += amount;
        max_seen = max_seen.max(time);
        if i % BATCH == BATCH - 1 {
            let watermark = max_seen - DISORDER_MS;
            windows.retain(|&(key, start), &mut (n, sum)| {
                if start + WINDOW_MS - 1 <= watermark {
                    results.push((key, start, n, sum, sum as f64 / n as f64));
                    false
                } else {
                    true
                }
            });
            fired += results.len();
            results.clear();
        }
    }
    fired += windows.len();
    (EVENTS as f64 / started.elapsed().as_secs_f64(), fired)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let input = input();
    let events: Vec<Event> = input
        .payloads
        .iter()
        .zip(&input.times)
        .map(|(p, &t)| Event::new(p.clone(), t))
        .collect();
    let plugin = PluginLoader::new(PluginEngine::new().expect("engine"), None)
        .load(&weir_e2e::plugin("stats"))
        .expect("stats loads");
    let name = "stats".to_owned();
    let registry = PluginRegistry::new([(&name, &Arc::new(plugin))]);
    let (mut native_rates, mut engine_rates, mut wasm_rates) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let (rate, native_results) = native(&input);
        native_rates.push(rate);
        let (rate, engine_results) = drive(engine(aggs()), &input, &events);
        engine_rates.push(rate);
        assert_eq!(native_results, engine_results, "both fire the same windows");
        let (rate, wasm_results) = drive(wasm_engine(&registry), &input, &events);
        wasm_rates.push(rate);
        assert_eq!(native_results, wasm_results, "both fire the same windows");
    }
    let (native, engine, wasm) = (
        median(native_rates),
        median(engine_rates),
        median(wasm_rates),
    );
    println!(
        "tumbling 10 s window, count + sum + avg, {KEYS} keys, {EVENTS} events (median of 5):"
    );
    println!("  native hash-map fold:  {native:>12.0} events/s");
    println!(
        "  weir window engine:    {engine:>12.0} events/s   {:.2}× native",
        engine / native
    );
    println!(
        "  with the wasm stats aggregator: {wasm:>7.0} events/s   {:.2}× native",
        wasm / native
    );
    checkpoint();
    pipelines();
}

const PIPELINE_EVENTS: u64 = 2_000_000;

/// Seconds `pipeline` takes to run to its end, with a state directory of its own.
/// The window stage in a pipeline, against the same pipeline without it.
fn pipelines() {
    let head = format!(
        "[server]\nenabled = false\n[plugins]\ndir = \"{{plugins}}\"\n[state]\ndir = \"{{state}}\"\n[sources.gen]\ntype = \"generator\"\ncount = {PIPELINE_EVENTS}\ntemplate = {{ user = \"{{{{int(0,9999)}}}}\", amount = \"{{{{int(1,999)}}}}\" }}\n"
    );
    let direct = format!("{head}[sinks.out]\ntype = \"null\"\ninputs = [\"gen\"]\n");
    let windowed = |aggregations: &str| {
        format!(
            "{head}[stages.win]\ntype = \"window\"\ninputs = [\"gen\"]\ngroup_by = [\"user\"]\nwindow = {{ tumbling = \"10s\" }}\naggregations = {aggregations}\n[sinks.out]\ntype = \"null\"\ninputs = [\"win\"]\n"
        )
    };
    let builtin =
        windowed("{ n = \"count\", total = { sum = \"amount\" }, mean = { avg = \"amount\" } }");
    let plugin = windowed("{ s = { plugin = \"stats\", config = { field = \"amount\" } } }");
    let (mut base, mut with_builtin, mut with_plugin) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        base.push(PIPELINE_EVENTS as f64 / pipeline_seconds(&direct));
        with_builtin.push(PIPELINE_EVENTS as f64 / pipeline_seconds(&builtin));
        with_plugin.push(PIPELINE_EVENTS as f64 / pipeline_seconds(&plugin));
    }
    let (base, builtin, plugin) = (median(base), median(with_builtin), median(with_plugin));
    println!("pipeline, generator of {PIPELINE_EVENTS} events over {KEYS} keys (median of 3):");
    println!("  generator -> null:                        {base:>12.0} events/s");
    println!(
        "  generator -> window (count+sum+avg) -> null: {builtin:>9.0} events/s   {:.2}× without",
        builtin / base
    );
    println!(
        "  generator -> window (stats plugin) -> null:  {plugin:>9.0} events/s   {:.2}× without",
        plugin / base
    );
}

/// Snapshot, write, read and restore of 1,000,000 open windows.
fn checkpoint() {
    const OPEN: u64 = 1_000_000;
    let mut engine = WindowEngine::new(WindowKind::Tumbling { size: WINDOW_MS }, aggs(), 0);
    let mut out = Vec::new();
    let mut key = vec![Scalar::Nil];
    let mut payload = Vec::new();
    for user in 0..OPEN {
        payload.clear();
        msgpack::write_map_len(&mut payload, 1);
        msgpack::write_str(&mut payload, "amount");
        msgpack::write_uint(&mut payload, user % 1_000);
        key[0] = Scalar::Int(user as i64);
        engine.add(&key, 1_700_000_000_000, &payload, &mut out);
    }
    assert_eq!(engine.open_windows(), OPEN as usize);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = CheckpointStore::open(&dir.path().join("checkpoints.redb")).expect("store");
    let started = Instant::now();
    let bytes = engine.snapshot();
    let snapshot = started.elapsed();
    let size = bytes.len();
    let started = Instant::now();
    store.put("window/0", &bytes).expect("checkpoint written");
    let write = started.elapsed();
    let started = Instant::now();
    let saved = store.get("window/0").expect("read").expect("checkpoint");
    let mut restored = WindowEngine::new(WindowKind::Tumbling { size: WINDOW_MS }, aggs(), 0);
    restored.restore(&saved).expect("restores");
    let restore = started.elapsed();
    assert_eq!(restored.open_windows(), OPEN as usize);
    let file = std::fs::metadata(dir.path().join("checkpoints.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("checkpoint of {OPEN} open windows (count + sum + avg):");
    println!(
        "  snapshot {:.0} ms, durable write {:.0} ms, read + restore {:.0} ms; {:.1} MB of state, {:.1} MB file",
        snapshot.as_secs_f64() * 1e3,
        write.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3,
        size as f64 / 1e6,
        file as f64 / 1e6
    );
}
