//! Pattern (CEP) throughput: `a`, then `b` (followed_by), then `c` (followed_by), within one
//! minute, per key over 10,000 keys, against a hand-written native matcher of the same
//! pattern (per key, a list of partial matches that move on at the next event of the kind
//! they wait for) in the same run. The declared automaton must find exactly what the native
//! matcher finds.
//!
//! Events are MessagePack payloads made up front (`{user, kind}`, kinds a–d at random), in
//! event-time order, 0.6 ms apart: about ten events per key per minute. Each figure is the
//! median of five rounds.
//!
//! Then the whole stage without a pipeline (event-time buffer, keys and timers included),
//! declared and with the `sequence` plugin; then the memory one open partial match holds (resident-set growth over 1,000,000 partial
//! matches on 10,000 keys), and the whole stage in a pipeline: a generator of 2,000,000
//! events through the declared pattern, then through the `sequence` pattern plugin (the
//! same pattern in wasm), to a null sink, against the generator straight to the null sink,
//! with the default batches of 512 events and with batches of 2,048.
//! `cargo bench -p weir --bench cep`.

// A bench binary with its own main: nothing here is public API.
#![allow(missing_docs)]

#[path = "support/finite.rs"]
mod finite;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use finite::pipeline_seconds;
use prometheus_client::metrics::counter::Counter;
use weir::config::PatternStageConfig;
use weir::event::Event;
use weir::operators::pattern::nfa::{KeyRun, Outcome};
use weir::operators::pattern::spec::Pattern;
use weir::operators::pattern::{DeclaredMatcher, KeyedMatcher, PatternOperator, PluginMatcher};
use weir::operators::window::SourceOrder;
use weir::operators::{Operator, Processed};
use weir::plugins::{
    PluginEngine, PluginKind, PluginLimits, PluginLoader, PluginRegistry, PluginUser,
};
use weir_plugin_sdk::msgpack;

/// Resident memory of this process, in bytes, from `/proc/self/statm`.
fn resident_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

const KEYS: u32 = 10_000;
const EVENTS: usize = 1_000_000;
const WITHIN_MS: i64 = 60_000;
const PIPELINE_EVENTS: u64 = 2_000_000;
const KINDS: [&str; 4] = ["a", "b", "c", "d"];

/// The pattern, as a pipeline file declares it.
const DECLARED: &str = r#"
within = "1m"
[[steps]]
name = "a"
where = "kind == 'a'"
[[steps]]
name = "b"
after = "followed_by"
where = "kind == 'b'"
[[steps]]
name = "c"
after = "followed_by"
where = "kind == 'c'"
"#;

struct Input {
    key: u32,
    time: i64,
    payload: Bytes,
}

fn inputs() -> Vec<Input> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..EVENTS)
        .map(|i| {
            let key = (next() % u64::from(KEYS)) as u32;
            let kind = KINDS[(next() % 4) as usize];
            let mut payload = Vec::with_capacity(24);
            msgpack::write_map_len(&mut payload, 2);
            msgpack::write_str(&mut payload, "user");
            msgpack::write_uint(&mut payload, u64::from(key));
            msgpack::write_str(&mut payload, "kind");
            msgpack::write_str(&mut payload, kind);
            Input {
                key,
                time: 1_700_000_000_000 + (i as i64) * 3 / 5,
                payload: Bytes::from(payload),
            }
        })
        .collect()
}

fn pattern() -> Pattern {
    let config: PatternStageConfig =
        toml::from_str(&format!("inputs = [\"in\"]\n{DECLARED}")).expect("pattern config");
    Pattern::compile(&config).expect("pattern compiles")
}

/// The same pattern by hand: per key, (start, steps done) of each partial match.
fn native(inputs: &[Input]) -> (f64, u64) {
    let started = Instant::now();
    let mut keys: HashMap<u32, Vec<(i64, u8)>> = HashMap::new();
    let mut matched = 0u64;
    for input in inputs {
        let kind = match msgpack::lookup(&input.payload, "kind") {
            Ok(Some(value)) => value.as_str().unwrap_or_default().as_bytes()[0],
            _ => continue,
        };
        let partial = keys.entry(input.key).or_default();
        partial.retain(|&(start, _)| start + WITHIN_MS > input.time);
        partial.retain_mut(|(_, done)| {
            if b"abc"[*done as usize] != kind {
                return true;
            }
            *done += 1;
            if *done == 3 {
                matched += 1;
                return false;
            }
            true
        });
        if kind == b'a' {
            partial.push((input.time, 1));
        }
    }
    (
        inputs.len() as f64 / started.elapsed().as_secs_f64(),
        matched,
    )
}

fn declared(pattern: &Pattern, inputs: &[Input]) -> (f64, u64) {
    let started = Instant::now();
    let mut keys: HashMap<u32, KeyRun> = HashMap::new();
    let mut found = Vec::new();
    let mut matched = 0u64;
    for input in inputs {
        let run = keys.entry(input.key).or_default();
        run.on_event(pattern, &input.payload, input.time, &mut found);
        matched += found
            .drain(..)
            .filter(|f| f.outcome == Outcome::Matched)
            .count() as u64;
    }
    (
        inputs.len() as f64 / started.elapsed().as_secs_f64(),
        matched,
    )
}

/// The whole stage without a pipeline around it: `operator` takes the events in batches
/// of 1,024, as a worker does, then the end of input; events/s.
fn stage_rate(mut operator: impl Operator, inputs: &[Input]) -> (f64, usize) {
    // Batches come to a worker owned, made before the clock starts.
    let batches: Vec<Vec<Event>> = inputs
        .chunks(1024)
        .map(|chunk| {
            chunk
                .iter()
                .map(|i| Event::new(i.payload.clone(), i.time))
                .collect()
        })
        .collect();
    let mut out = Processed::default();
    let mut matches = 0;
    let started = Instant::now();
    for batch in batches {
        out.reset(3);
        operator.process(batch, &mut out);
        matches += out.ports[0].len();
    }
    out.reset(3);
    if let Some(stateful) = operator.stateful() {
        stateful.end_of_input(&mut out);
    }
    matches += out.ports[0].len();
    (
        inputs.len() as f64 / started.elapsed().as_secs_f64(),
        matches,
    )
}

/// A pattern stage on one worker, matching with `matcher`.
fn stage<M: KeyedMatcher>(config: &PatternStageConfig, matcher: M) -> PatternOperator<M> {
    let order = SourceOrder {
        names: Arc::from(vec!["in".to_owned()]),
        ordered: vec![true],
        assignments: Arc::default(),
        feeds: vec![true],
    };
    PatternOperator::new(
        "bench",
        config,
        1,
        &order,
        Counter::default(),
        matcher,
        None,
    )
    .expect("stage starts")
}

/// The stage with the declared pattern, and with the `sequence` plugin.
fn stages(inputs: &[Input]) -> (f64, f64) {
    let declared_config: PatternStageConfig = toml::from_str(&format!(
        "inputs = [\"in\"]\ngroup_by = [\"user\"]\n{DECLARED}"
    ))
    .expect("config");
    let pattern = Arc::new(Pattern::compile(&declared_config).expect("pattern"));
    let (declared, declared_matches) = stage_rate(
        stage(
            &declared_config,
            DeclaredMatcher::new(pattern, "bench".into(), false),
        ),
        inputs,
    );
    if std::env::var("WEIR_CEP_ONLY").is_ok_and(|only| only == "declared") {
        return (declared, 0.0);
    }
    let plugin_config: PatternStageConfig = toml::from_str(
        "inputs = [\"in\"]\ngroup_by = [\"user\"]\npattern = { plugin = \"sequence\" }\n",
    )
    .expect("config");
    let plugin = PluginLoader::new(PluginEngine::new().expect("engine"), None)
        .load(&weir_e2e::plugin("sequence"))
        .expect("sequence loads");
    let name = "sequence".to_owned();
    let registry = PluginRegistry::new([(&name, &Arc::new(plugin))]);
    let slot = Arc::clone(registry.slot("sequence").expect("slot"));
    let user = PluginUser::new(
        "bench",
        PluginKind::Pattern,
        serde_json::json!({"field": "kind", "steps": ["a", "b", "c"], "within_ms": WITHIN_MS}),
        PluginLimits::default(),
    );
    let matcher = PluginMatcher::new(slot, user, Default::default()).expect("plugin starts");
    let (plugin, plugin_matches) = stage_rate(stage(&plugin_config, matcher), inputs);
    assert_eq!(
        declared_matches, plugin_matches,
        "the plugin and the declared pattern disagree"
    );
    (declared, plugin)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Memory held per open partial match: 1,000,000 `a` events over 10,000 keys, all within
/// the minute, each an open partial match waiting for its `b`; the growth of the resident
/// set while they are taken in (allocator overhead included).
fn memory(pattern: &Pattern) {
    let payloads: Vec<Bytes> = (0..1_000_000u64)
        .map(|i| {
            let mut payload = Vec::with_capacity(24);
            msgpack::write_map_len(&mut payload, 2);
            msgpack::write_str(&mut payload, "user");
            msgpack::write_uint(&mut payload, i % u64::from(KEYS));
            msgpack::write_str(&mut payload, "kind");
            msgpack::write_str(&mut payload, "a");
            Bytes::from(payload)
        })
        .collect();
    let payload_bytes: usize = payloads.iter().map(Bytes::len).sum();
    let mut keys: Vec<KeyRun> = (0..KEYS).map(|_| KeyRun::default()).collect();
    let before = resident_bytes();
    let mut found = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let key = i % KEYS as usize;
        keys[key].on_event(
            pattern,
            payload,
            1_700_000_000_000 + i as i64 / 100,
            &mut found,
        );
    }
    let held = resident_bytes() - before;
    let open: usize = keys.iter().map(KeyRun::partial_matches).sum();
    assert_eq!(open, payloads.len(), "every `a` is an open partial match");
    println!("memory, {open} open partial matches over {KEYS} keys:");
    println!(
        "  {:.0} bytes of state per open partial match (branch and shared-buffer node; its event's {} payload bytes are shared with the input, not copied)",
        held as f64 / open as f64,
        payload_bytes / payloads.len()
    );
}

/// The pattern stage in a pipeline, declared and as a plugin, against the same pipeline
/// without it: with the default batches of 512 events, then with `[flow] batch_size =
/// 2048` (fewer hand-overs between the source's task and the stage's).
fn pipelines() {
    for batch_size in [512, 2048] {
        pipelines_of(batch_size);
    }
}

fn pipelines_of(batch_size: usize) {
    let head = format!(
        "[server]\nenabled = false\n[plugins]\ndir = \"{{plugins}}\"\n[state]\ndir = \"{{state}}\"\n[flow]\nbatch_size = {batch_size}\n[sources.gen]\ntype = \"generator\"\ncount = {PIPELINE_EVENTS}\ntemplate = {{ user = \"{{{{int(0,9999)}}}}\", kind = \"{{{{choice(a|b|c|d)}}}}\", ts = \"{{{{seq}}}}\" }}\n"
    );
    let direct = format!("{head}[sinks.out]\ntype = \"null\"\ninputs = [\"gen\"]\n");
    let stage = "[stages.cep]\ntype = \"pattern\"\ninputs = [\"gen\"]\ngroup_by = [\"user\"]\ntime_field = \"ts\"\n";
    let sink = "[sinks.out]\ntype = \"null\"\ninputs = [\"cep\"]\n";
    let steps = DECLARED.replace("[[steps]]", "[[stages.cep.steps]]");
    let declared = format!("{head}{sink}{stage}{steps}");
    let plugin = format!(
        "{head}{sink}{stage}pattern = {{ plugin = \"sequence\", config = {{ field = \"kind\", steps = [\"a\", \"b\", \"c\"], within_ms = {WITHIN_MS} }} }}\n"
    );
    let (mut base, mut with_declared, mut with_plugin) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        base.push(PIPELINE_EVENTS as f64 / pipeline_seconds(&direct));
        with_declared.push(PIPELINE_EVENTS as f64 / pipeline_seconds(&declared));
        with_plugin.push(PIPELINE_EVENTS as f64 / pipeline_seconds(&plugin));
    }
    let (base, declared, plugin) = (median(base), median(with_declared), median(with_plugin));
    println!(
        "pipeline, generator of {PIPELINE_EVENTS} events over {KEYS} keys, batches of {batch_size} (median of 3):"
    );
    println!("  generator -> null:                              {base:>12.0} events/s");
    println!(
        "  generator -> pattern (declared) -> null:        {declared:>12.0} events/s   {:.2}× without",
        declared / base
    );
    println!(
        "  generator -> pattern (sequence plugin) -> null: {plugin:>12.0} events/s   {:.2}× without",
        plugin / base
    );
}

fn main() {
    let inputs = inputs();
    let pattern = pattern();
    // `WEIR_CEP_ONLY=pipeline` runs only the pipelines, to profile them.
    if std::env::var("WEIR_CEP_ONLY").is_ok_and(|only| only == "pipeline") {
        pipelines();
        return;
    }
    // `WEIR_CEP_ONLY=stage` runs the stage alone, over and over, to profile it.
    if std::env::var("WEIR_CEP_ONLY").is_ok_and(|only| only == "stage" || only == "declared") {
        for _ in 0..5 {
            let (native, _) = native(&inputs);
            let (declared, plugin) = stages(&inputs);
            println!(
                "native {native:.0} events/s; stage: declared {declared:.0} events/s ({:.3}×), plugin {plugin:.0} events/s",
                declared / native
            );
        }
        return;
    }
    let (mut natives, mut automata) = (Vec::new(), Vec::new());
    let mut counts = None;
    for _ in 0..5 {
        let (rate, native_matches) = native(&inputs);
        natives.push(rate);
        let (rate, declared_matches) = declared(&pattern, &inputs);
        automata.push(rate);
        assert_eq!(
            native_matches, declared_matches,
            "the automaton and the native matcher disagree"
        );
        counts = Some(native_matches);
    }
    let (native, automaton) = (median(natives), median(automata));
    let (mut declared_stages, mut plugin_stages) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (declared, plugin) = stages(&inputs);
        declared_stages.push(declared);
        plugin_stages.push(plugin);
    }
    let (declared_stage, plugin_stage) = (median(declared_stages), median(plugin_stages));
    println!(
        "a -> b -> c (followed_by) within 1m, {EVENTS} events over {KEYS} keys, {} matches (median of 5):",
        counts.unwrap_or(0)
    );
    println!("  native matcher:     {native:>12.0} events/s");
    println!(
        "  declared automaton: {automaton:>12.0} events/s   {:.2}× native",
        automaton / native
    );
    println!("the stage, batches of 1,024, event-time buffer and timers included (median of 3):");
    println!(
        "  declared pattern:   {declared_stage:>12.0} events/s   {:.2}× native",
        declared_stage / native
    );
    println!(
        "  sequence plugin:    {plugin_stage:>12.0} events/s   {:.2}× native",
        plugin_stage / native
    );
    memory(&pattern);
    pipelines();
}
