//! The plugin runtime against real components: compile cache, sandbox, hostile plugins, and
//! each world's calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use weir::event::{Event, Header};
use weir::format::{json_value_to_msgpack, msgpack_to_json};
use weir::plugins::{
    AggregatorInstance, CacheOutcome, CallErrorKind, CompileCache, Fault, HandlerInstance,
    LoadError, PatternInstance, PluginEngine, PluginKind, PluginLimits, PluginLoader, StateContext,
    SupervisedHandler,
};
use weir_e2e::plugin;

fn loader() -> PluginLoader {
    PluginLoader::new(PluginEngine::new().expect("engine"), None)
}

fn event(value: Value) -> Event {
    Event::new(json_value_to_msgpack(&value), 1_000)
}

fn payloads(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| msgpack_to_json(&e.payload).expect("msgpack"))
        .collect()
}

#[test]
fn compile_cache_is_hit_on_second_load_and_is_faster() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new().unwrap();
    let path = plugin("threshold");

    let first = PluginLoader::new(engine.clone(), Some(CompileCache::new(dir.path())))
        .load(&path)
        .unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Miss);
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "one artifact stored");

    // A new loader on a new engine, as after a restart.
    let second = PluginLoader::new(
        PluginEngine::new().unwrap(),
        Some(CompileCache::new(dir.path())),
    )
    .load(&path)
    .unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert!(
        second.compile_time() * 5 < first.compile_time(),
        "cache hit {:?} should be far cheaper than compiling {:?}",
        second.compile_time(),
        first.compile_time()
    );
    // And it works.
    let mut handler =
        HandlerInstance::new(&second, PluginLimits::default(), r#"{"field":"a","min":1}"#).unwrap();
    let out = handler
        .process(&[event(json!({"a": 2})), event(json!({"a": 0}))])
        .unwrap();
    assert_eq!(payloads(&out.events), vec![json!({"a": 2})]);
}

#[test]
fn corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new().unwrap();
    let loader = PluginLoader::new(engine, Some(CompileCache::new(dir.path())));
    loader.load(&plugin("enrich")).unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    let again = loader.load(&plugin("enrich")).unwrap();
    assert_eq!(again.cache_outcome(), CacheOutcome::Miss);
}

#[test]
fn wasi_gives_no_file_socket_or_environment() {
    let plugin = loader().load(&plugin("sandbox-probe")).unwrap();
    let mut probe = HandlerInstance::new(&plugin, PluginLimits::default(), "{}").unwrap();
    let out = probe.process(&[event(json!({}))]).unwrap();
    let report = &payloads(&out.events)[0];
    for key in ["file", "dir", "socket"] {
        let outcome = report[key].as_str().unwrap();
        assert!(outcome.starts_with("denied"), "{key}: {outcome}");
    }
    assert_eq!(report["env"], json!("0"), "no environment variables");
}

#[test]
fn kinds_are_identified_and_the_wrong_world_is_refused() {
    let loader = loader();
    for (name, kind) in [
        ("threshold", PluginKind::Handler),
        ("enrich", PluginKind::Handler),
        ("split", PluginKind::Handler),
        ("stats", PluginKind::Aggregator),
        ("login-burst", PluginKind::Pattern),
    ] {
        assert_eq!(loader.load(&plugin(name)).unwrap().kind(), kind, "{name}");
    }
    let error = loader.load(&plugin("wrong-world")).err().unwrap();
    assert!(matches!(error, LoadError::NoWorld { .. }), "{error}");
    assert!(
        error.to_string().contains("test:elsewhere/counter@1.0.0"),
        "{error}"
    );

    let stats = loader.load(&plugin("stats")).unwrap();
    assert!(matches!(
        stats.expect_kind(PluginKind::Handler),
        Err(LoadError::WrongKind { .. })
    ));
    let error = HandlerInstance::new(&stats, PluginLimits::default(), "{}")
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("is of kind aggregator, not handler"),
        "{error}"
    );
}

#[test]
fn malformed_files_are_refused_with_the_cause() {
    let loader = loader();
    let path = std::path::Path::new("x.wasm");
    let not_wasm = loader.load_bytes(path, "x".into(), b"hello").err().unwrap();
    assert!(matches!(not_wasm, LoadError::NotWasm { .. }));
    let core = loader
        .load_bytes(path, "x".into(), b"\0asm\x01\0\0\0")
        .err()
        .unwrap();
    assert!(matches!(core, LoadError::CoreModule { .. }));
    let bytes = std::fs::read(plugin("threshold")).unwrap();
    let truncated = loader
        .load_bytes(path, "x".into(), &bytes[..bytes.len() / 2])
        .err()
        .unwrap();
    assert!(
        matches!(truncated, LoadError::Invalid { .. }),
        "{truncated}"
    );
}

/// After each hostile plugin faults, a good plugin on the same engine still works.
#[test]
fn hostile_plugins_fault_cleanly_and_the_engine_keeps_serving() {
    let loader = loader();
    let good = loader.load(&plugin("threshold")).unwrap();
    let limits = PluginLimits {
        call_timeout: Duration::from_millis(200),
        memory_bytes: 32 << 20,
        ..PluginLimits::default()
    };
    let cases: [(&str, &str); 5] = [
        ("loop-forever", "deadline"),
        ("memory-bomb", "memory"),
        ("deep-recursion", "stack_overflow"),
        ("panic", "trap"),
        ("huge-output", "contract"),
    ];
    for (name, expected) in cases {
        let hostile = loader.load(&plugin(name)).unwrap();
        let mut instance = HandlerInstance::new(&hostile, limits, "{}").unwrap();
        let started = Instant::now();
        let error = instance
            .process(&[event(json!({"poison": true}))])
            .err()
            .unwrap();
        let elapsed = started.elapsed();
        let fault = error
            .fault()
            .unwrap_or_else(|| panic!("{name}: not a fault: {error}"));
        assert_eq!(fault.kind(), expected, "{name}: {error}");
        assert!(
            error.to_string().contains(name),
            "names the plugin: {error}"
        );
        assert!(instance.is_poisoned());
        let again = instance.process(&[event(json!({}))]).err().unwrap();
        assert_eq!(again.kind, CallErrorKind::Poisoned);
        if name == "loop-forever" {
            assert!(
                elapsed < limits.call_timeout * 2,
                "loop stopped after {elapsed:?}"
            );
        }
        if let Fault::MemoryLimit { limit, .. } = fault {
            assert_eq!(*limit, 32 << 20);
        }

        let mut handler = HandlerInstance::new(&good, limits, r#"{"field":"n","min":5}"#).unwrap();
        let out = handler
            .process(&[event(json!({"n": 9})), event(json!({"n": 1}))])
            .unwrap();
        assert_eq!(payloads(&out.events), vec![json!({"n": 9})], "after {name}");
    }
}

#[test]
fn supervisor_isolates_the_culprit_and_keeps_order() {
    let plugin = Arc::new(loader().load(&plugin("panic")).unwrap());
    let mut handler = SupervisedHandler::new(plugin, PluginLimits::default(), "{}".into()).unwrap();
    let events: Vec<Event> = (0..10)
        .map(|i| event(json!({"i": i, "poison": i == 3 || i == 7})))
        .collect();
    let out = handler.process(&events).unwrap();
    let kept: Vec<i64> = payloads(&out.events)
        .iter()
        .map(|p| p["i"].as_i64().unwrap())
        .collect();
    assert_eq!(kept, vec![0, 1, 2, 4, 5, 6, 8, 9]);
    let failed: Vec<usize> = out.failures.iter().map(|f| f.index).collect();
    assert_eq!(failed, vec![3, 7]);
    assert!(
        out.failures[0].error.to_string().contains("poisoned event"),
        "{}",
        out.failures[0].error
    );
    // The next batch is served by a fresh instance.
    let out = handler.process(&events[..2]).unwrap();
    assert_eq!(out.events.len(), 2);
}

#[test]
fn supervisor_stops_retrying_a_plugin_that_faults_on_everything() {
    let plugin = Arc::new(loader().load(&plugin("loop-forever")).unwrap());
    let limits = PluginLimits {
        call_timeout: Duration::from_millis(20),
        ..PluginLimits::default()
    };
    let mut handler = SupervisedHandler::new(plugin, limits, "{}".into()).unwrap();
    let events: Vec<Event> = (0..100).map(|i| event(json!({ "i": i }))).collect();
    let started = Instant::now();
    let out = handler.process(&events).unwrap();
    assert_eq!(out.failures.len(), 100, "every event fails, none is lost");
    let not_tried = out
        .failures
        .iter()
        .filter(|f| matches!(f.error.kind, CallErrorKind::NotRetried { .. }))
        .count();
    assert_eq!(not_tried, 100 - weir::plugins::MAX_CONSECUTIVE_FAULTS);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn handler_outputs_inherit_key_time_and_headers() {
    let loader = loader();
    let split = loader.load(&plugin("split")).unwrap();
    let mut handler = HandlerInstance::new(&split, PluginLimits::default(), "{}").unwrap();
    let mut input = event(json!({"items": [1, "two", {"three": 3}]}));
    input.key = Some(Bytes::from_static(b"k1"));
    input.time = 42;
    input.headers = vec![Header {
        name: "trace".into(),
        value: Bytes::from_static(b"abc"),
    }];
    let out = handler
        .process(&[
            event(json!({"none": 1})),
            input,
            event(json!({"items": []})),
        ])
        .unwrap();
    assert_eq!(
        payloads(&out.events),
        vec![json!(1), json!("two"), json!({"three": 3})]
    );
    for e in &out.events {
        assert_eq!(e.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(e.time, 42);
        assert_eq!(e.headers[0].name, "trace");
    }
    assert_eq!(out.dropped, 2);

    let enrich = loader.load(&plugin("enrich")).unwrap();
    let mut handler = HandlerInstance::new(
        &enrich,
        PluginLimits::default(),
        r#"{"field":"region","value":"eu"}"#,
    )
    .unwrap();
    let out = handler
        .process(&[
            event(json!({"a": 1})),
            event(json!([1])),
            event(json!({"region": "us", "b": 2})),
        ])
        .unwrap();
    assert_eq!(
        payloads(&out.events),
        vec![
            json!({"a": 1, "region": "eu"}),
            json!({"region": "eu", "b": 2})
        ]
    );
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].index, 1);
    assert!(
        out.failures[0]
            .error
            .to_string()
            .contains("not a MessagePack map")
    );
}

#[test]
fn aggregator_accumulators_fold_merge_and_finish() {
    let stats = loader().load(&plugin("stats")).unwrap();
    let mut agg =
        AggregatorInstance::new(&stats, PluginLimits::default(), r#"{"field":"v"}"#).unwrap();
    let empty = agg.create().unwrap();
    let events: Vec<Event> = [1.0, 5.0, 2.5, 10.0]
        .iter()
        .map(|v| event(json!({ "v": v })))
        .collect();
    // Events 0 and 2 into accumulator 0; 1 and 3 into accumulator 1.
    let folded = agg
        .add(&[empty.clone(), empty], &events, &[0, 1, 0, 1])
        .unwrap();
    assert!(folded.failures.is_empty());
    let results = agg.finish(&folded.accumulators).unwrap();
    assert_eq!(msgpack_to_json(&results[0]).unwrap()["sum"], json!(3.5));
    assert_eq!(msgpack_to_json(&results[1]).unwrap()["max"], json!(10.0));
    let merged = agg
        .merge(&folded.accumulators[..1], &folded.accumulators[1..])
        .unwrap();
    let total = msgpack_to_json(&agg.finish(&merged).unwrap()[0]).unwrap();
    assert_eq!(
        total,
        json!({"count": 4, "numeric": 4, "sum": 18.5, "min": 1.0, "max": 10.0, "mean": 4.625})
    );
}

#[test]
fn pattern_state_carries_matches_and_timers() {
    let burst = loader().load(&plugin("login-burst")).unwrap();
    let mut pattern = PatternInstance::new(
        &burst,
        PluginLimits::default(),
        r#"{"failures":3,"within_ms":60000}"#,
    )
    .unwrap();
    let empty = pattern.create().unwrap();
    let at = |outcome: &str, time: i64| Event {
        time,
        ..event(json!({ "outcome": outcome }))
    };
    let keys = [
        Some(Bytes::from_static(b"ann")),
        Some(Bytes::from_static(b"bo")),
    ];
    let ctx = StateContext {
        keys: &keys,
        times: &[0, 0],
    };
    // ann: three failures then success inside a minute; bo: two failures then success.
    let events = [
        at("fail", 1_000),
        at("fail", 2_000),
        at("fail", 3_000),
        at("fail", 1_000),
        at("fail", 2_000),
    ];
    let p = pattern
        .process(&[empty.clone(), empty], &ctx, &events, &[0, 0, 0, 1, 1])
        .unwrap();
    assert!(p.matches.is_empty());
    assert_eq!(p.timers, vec![Some(61_001), Some(61_001)]);
    let p = pattern
        .process(
            &p.states,
            &ctx,
            &[at("success", 4_000), at("success", 4_000)],
            &[0, 1],
        )
        .unwrap();
    assert_eq!(p.matches.len(), 1);
    assert_eq!(p.matches[0].state, 0);
    assert_eq!(p.matches[0].event.key.as_deref(), Some(&b"ann"[..]));
    assert_eq!(p.matches[0].event.time, 4_000);
    assert_eq!(
        msgpack_to_json(&p.matches[0].event.payload).unwrap(),
        json!({"failures": 3, "first_failure": 1000, "success": 4000})
    );
    let p = pattern.on_timer(&p.states, &ctx, 100_000).unwrap();
    assert_eq!(p.timers, vec![None, None]);
}
