//! The window engine against a brute-force reference on random keyed streams with
//! out-of-order events: every window kind, every built-in aggregation, and lateness.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use weir::operators::window::{
    AggKind, AggSpec, Firing, PERCENTILE_RELATIVE_ERROR, Scalar, WindowEngine, WindowKind,
    WindowResult,
};

/// One test event: key, event time, a number and a tag.
#[derive(Debug, Clone)]
struct Ev {
    key: u8,
    time: i64,
    v: i64,
    tag: u8,
}

fn payload(e: &Ev) -> Vec<u8> {
    let value = rmpv::Value::Map(vec![
        (rmpv::Value::from("v"), rmpv::Value::from(e.v)),
        (
            rmpv::Value::from("tag"),
            rmpv::Value::from(format!("t{}", e.tag)),
        ),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).expect("encodes");
    out
}

fn aggs() -> Vec<AggSpec> {
    let agg = |name: &str, kind: AggKind, field: Option<&str>| AggSpec {
        name: name.into(),
        kind,
        field: field.map(Into::into),
    };
    vec![
        agg("count", AggKind::Count, None),
        agg("sum", AggKind::Sum, Some("v")),
        agg("avg", AggKind::Avg, Some("v")),
        agg("min", AggKind::Min, Some("v")),
        agg("max", AggKind::Max, Some("v")),
        agg("first", AggKind::First, Some("tag")),
        agg("last", AggKind::Last, Some("tag")),
        agg("stddev", AggKind::Stddev, Some("v")),
        agg("variance", AggKind::Variance, Some("v")),
        agg("p90", AggKind::Percentile(0.9), Some("v")),
        agg("median", AggKind::Percentile(0.5), Some("v")),
        agg("distinct", AggKind::DistinctCount, Some("v")),
        agg("top", AggKind::TopK(2), Some("tag")),
    ]
}

/// A stream whose events are out of order by less than `disorder` ms: event `i` is at
/// a non-decreasing base time plus a jitter below `disorder`.
fn stream(disorder: i64) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (0u8..4, 0i64..40, 0i64..disorder, -500i64..500, 0u8..5),
        1..300,
    )
    .prop_map(|raw| {
        let mut base = 1_000;
        raw.into_iter()
            .map(|(key, step, jitter, v, tag)| {
                base += step;
                Ev {
                    key,
                    time: base + jitter,
                    v,
                    tag,
                }
            })
            .collect()
    })
}

fn kinds() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1i64..200).prop_map(|size| WindowKind::Tumbling { size }),
        (1i64..6, 1i64..60).prop_map(|(n, slide)| WindowKind::Sliding {
            size: slide * n,
            slide
        }),
        (1i64..120, 1i64..60).prop_map(|(size, slide)| WindowKind::Sliding {
            size: size.max(slide),
            slide
        }),
        (1i64..80).prop_map(|gap| WindowKind::Session { gap }),
        (1u64..20).prop_map(|size| WindowKind::Count { size }),
        Just(WindowKind::Global),
    ]
}

/// The windows (start, end) of `kind` and the events (by index) in each, per key.
fn reference_windows(kind: WindowKind, events: &[(usize, &Ev)]) -> Vec<(u8, i64, i64, Vec<usize>)> {
    let mut by_key: BTreeMap<u8, Vec<(usize, &Ev)>> = BTreeMap::new();
    for &(i, e) in events {
        by_key.entry(e.key).or_default().push((i, e));
    }
    let mut out = Vec::new();
    for (key, evs) in by_key {
        match kind {
            WindowKind::Tumbling { size } => {
                let mut windows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
                for &(i, e) in &evs {
                    windows
                        .entry(e.time.div_euclid(size) * size)
                        .or_default()
                        .push(i);
                }
                out.extend(windows.into_iter().map(|(s, v)| (key, s, s + size, v)));
            }
            WindowKind::Sliding { size, slide } => {
                let mut windows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
                for &(i, e) in &evs {
                    // Every multiple of `slide` in (time - size, time].
                    let lowest = (e.time - size).div_euclid(slide) * slide;
                    let mut s = lowest;
                    while s <= e.time {
                        if s > e.time - size {
                            windows.entry(s).or_default().push(i);
                        }
                        s += slide;
                    }
                }
                out.extend(windows.into_iter().map(|(s, v)| (key, s, s + size, v)));
            }
            WindowKind::Session { gap } => {
                let mut sorted = evs.clone();
                sorted.sort_by_key(|(i, e)| (e.time, *i));
                let mut current: Option<(i64, i64, Vec<usize>)> = None;
                for (i, e) in sorted {
                    current = match current {
                        Some((s, end, mut members)) if e.time <= end => {
                            members.push(i);
                            Some((s, end.max(e.time + gap), members))
                        }
                        other => {
                            if let Some((s, end, members)) = other {
                                out.push((key, s, end, members));
                            }
                            Some((e.time, e.time + gap, vec![i]))
                        }
                    };
                }
                if let Some((s, end, members)) = current {
                    out.push((key, s, end, members));
                }
            }
            WindowKind::Global => out.push((
                key,
                weir::operators::window::GLOBAL_START,
                weir::operators::window::GLOBAL_END,
                evs.iter().map(|(i, _)| *i).collect(),
            )),
            WindowKind::Count { size } => {
                for chunk in evs.chunks(size as usize) {
                    if chunk.len() == size as usize {
                        let start = chunk.iter().map(|(_, e)| e.time).min().expect("full");
                        let end = chunk.iter().map(|(_, e)| e.time).max().expect("full") + 1;
                        out.push((key, start, end, chunk.iter().map(|(i, _)| *i).collect()));
                    }
                }
            }
        }
    }
    out
}

/// Checks one window's results against its events (given by index into `all`, which is
/// in arrival order).
fn check_values(result: &WindowResult, members: &[usize], all: &[Ev]) -> Result<(), TestCaseError> {
    let evs: Vec<&Ev> = members.iter().map(|&i| &all[i]).collect();
    let n = evs.len();
    let vs: Vec<i64> = evs.iter().map(|e| e.v).collect();
    let get = |i: usize| &result.values[i];
    prop_assert_eq!(result.events, n as u64);
    prop_assert_eq!(get(0).as_u64(), Some(n as u64), "count");
    prop_assert_eq!(get(1).as_i64(), Some(vs.iter().sum::<i64>()), "sum");
    let mean = vs.iter().sum::<i64>() as f64 / n as f64;
    prop_assert!((get(2).as_f64().expect("avg") - mean).abs() < 1e-9, "avg");
    prop_assert_eq!(get(3).as_f64(), vs.iter().min().map(|&m| m as f64), "min");
    prop_assert_eq!(get(4).as_f64(), vs.iter().max().map(|&m| m as f64), "max");
    // First and last by event time, ties by arrival (member order is arrival order).
    let mut by_time: Vec<(i64, usize)> = members.iter().map(|&i| (all[i].time, i)).collect();
    by_time.sort();
    let tag = |i: usize| format!("t{}", all[i].tag);
    let (first, last) = (tag(by_time[0].1), tag(by_time[n - 1].1));
    prop_assert_eq!(get(5).as_str(), Some(first.as_str()), "first");
    prop_assert_eq!(get(6).as_str(), Some(last.as_str()), "last");
    if n >= 2 {
        let variance = vs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let got = get(8).as_f64().expect("variance");
        prop_assert!(
            (got - variance).abs() <= 1e-6 * variance.max(1.0),
            "variance {got} vs {variance}"
        );
        let sd = get(7).as_f64().expect("stddev");
        prop_assert!(
            (sd - variance.sqrt()).abs() <= 1e-6 * variance.sqrt().max(1.0),
            "stddev"
        );
    } else {
        prop_assert!(
            get(7).is_nil() && get(8).is_nil(),
            "variance of one value is nil"
        );
    }
    let mut sorted = vs.clone();
    sorted.sort();
    for (index, q) in [(9, 0.9), (10, 0.5)] {
        let truth = if q >= 1.0 {
            sorted[n - 1]
        } else {
            sorted[(q * (n as f64 - 1.0)) as usize]
        } as f64;
        let got = get(index).as_f64().expect("percentile");
        prop_assert!(
            (got - truth).abs() <= PERCENTILE_RELATIVE_ERROR * truth.abs() + 1e-9,
            "p{q}: {got} vs {truth}"
        );
    }
    let distinct = vs.iter().collect::<std::collections::HashSet<_>>().len() as f64;
    let got = get(11).as_u64().expect("distinct") as f64;
    prop_assert!(
        (got - distinct).abs() <= (0.02 * distinct).max(1.0),
        "distinct {got} vs {distinct}"
    );
    let mut counts: HashMap<String, u64> = HashMap::new();
    for &i in members {
        *counts.entry(tag(i)).or_default() += 1;
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(2);
    let got: Vec<(String, u64)> = get(12)
        .as_array()
        .expect("top")
        .iter()
        .map(|pair| {
            let pair = pair.as_array().expect("pair");
            (
                pair[0].as_str().expect("tag").to_owned(),
                pair[1].as_u64().expect("n"),
            )
        })
        .collect();
    prop_assert_eq!(got, ranked, "top-k");
    Ok(())
}

fn key_of(e: &Ev) -> Vec<Scalar> {
    vec![Scalar::Int(i64::from(e.key))]
}

fn key_number(result: &WindowResult) -> u8 {
    match result.key[0] {
        Scalar::Int(k) => k as u8,
        _ => panic!("int key"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Watermarks that trail the latest event time by the stream's disorder: no event is
    /// late, and every window fires once with the reference's results.
    #[test]
    fn windows_fire_once_with_the_references_results(
        kind in kinds(),
        (disorder, events) in (1i64..50).prop_flat_map(|d| (Just(d), stream(d))),
    ) {
        let mut engine = WindowEngine::new(kind, aggs(), 0);
        let mut out = Vec::new();
        let mut max_seen = i64::MIN;
        for e in &events {
            prop_assert_eq!(engine.add(&key_of(e), e.time, &payload(e), &mut out), weir::operators::window::Added::Accepted);
            max_seen = max_seen.max(e.time);
            // Two behind the earliest time still to come: an event then always starts
            // after every fired window's end. At one behind, an event could begin exactly
            // where a fired session ended; the reference merges the two, a stream cannot
            // (the session is gone), and that case is not this test's.
            engine.advance(max_seen - disorder - 2, &mut out);
        }
        engine.advance(i64::MAX, &mut out);
        let indexed: Vec<(usize, &Ev)> = events.iter().enumerate().collect();
        let reference = reference_windows(kind, &indexed);
        if matches!(kind, WindowKind::Count { .. }) {
            // Count windows may share bounds; they fire in arrival order per key.
            for key in 0..4u8 {
                let got: Vec<&WindowResult> = out.iter().filter(|r| key_number(r) == key).collect();
                let want: Vec<_> = reference.iter().filter(|w| w.0 == key).collect();
                prop_assert_eq!(got.len(), want.len(), "count windows of key {}", key);
                for (result, (_, start, end, members)) in got.into_iter().zip(want) {
                    prop_assert_eq!((result.start, result.end), (*start, *end));
                    check_values(result, members, &events)?;
                }
            }
            return Ok(());
        }
        let mut fired: BTreeMap<(u8, i64, i64), &WindowResult> = BTreeMap::new();
        for r in &out {
            prop_assert_eq!(r.firing, Firing::Final);
            let previous = fired.insert((key_number(r), r.start, r.end), r);
            prop_assert!(previous.is_none(), "window fired twice: {:?}", r);
        }
        prop_assert_eq!(fired.len(), reference.len(), "windows: {:?} vs {:?}", fired.keys().collect::<Vec<_>>(), reference.iter().map(|w| (w.0, w.1, w.2)).collect::<Vec<_>>());
        for (key, start, end, members) in &reference {
            let result = fired.get(&(*key, *start, *end));
            prop_assert!(result.is_some(), "missing window {key} [{start}, {end})");
            check_values(result.expect("checked"), members, &events)?;
        }
        prop_assert_eq!(engine.open_windows(), 0);
        prop_assert_eq!(engine.keys(), 0);
    }

    /// A watermark that runs ahead of the disorder: events whose every window is past the
    /// allowed lateness are reported late; others update fired windows, and each window's
    /// last result equals the reference over the events it accepted.
    #[test]
    fn late_events_update_windows_or_are_reported_late(
        kind in prop_oneof![
            (1i64..200).prop_map(|size| WindowKind::Tumbling { size }),
            (1i64..6, 1i64..60).prop_map(|(n, slide)| WindowKind::Sliding { size: slide * n, slide }),
        ],
        events in stream(80),
        lag in 0i64..40,
        lateness in 0i64..60,
    ) {
        let mut engine = WindowEngine::new(kind, aggs(), lateness);
        let mut out = Vec::new();
        let mut max_seen = i64::MIN;
        let mut accepted = Vec::new();
        let mut windows = Vec::new();
        for (i, e) in events.iter().enumerate() {
            // The reference decision: late when every window is past end - 1 + lateness.
            kind.assign(e.time, &mut windows);
            let wm = engine.watermark();
            let expect_late = wm != i64::MIN
                && windows.iter().all(|&(_, end)| end - 1 + lateness <= wm);
            let added = engine.add(&key_of(e), e.time, &payload(e), &mut out);
            prop_assert_eq!(added == weir::operators::window::Added::Late, expect_late);
            if !expect_late {
                accepted.push(i);
            }
            max_seen = max_seen.max(e.time);
            engine.advance(max_seen - lag, &mut out);
        }
        engine.advance(i64::MAX, &mut out);
        // Events accepted count in every window of theirs that was not past lateness
        // at their arrival; windows past it dropped them. Rebuild that per window.
        let mut last: BTreeMap<(u8, i64, i64), &WindowResult> = BTreeMap::new();
        for r in &out {
            prop_assert!(r.firing == Firing::Final || r.firing == Firing::Update);
            last.insert((key_number(r), r.start, r.end), r);
        }
        for ((key, start, end), result) in &last {
            // The members: accepted events of this key in this window; a member that came
            // after the window was past lateness was not added to it.
            let members: Vec<usize> = accepted
                .iter()
                .copied()
                .filter(|&i| events[i].key == *key && events[i].time >= *start && events[i].time < *end)
                .filter(|&i| included(&events, i, *end, lateness, lag))
                .collect();
            check_values(result, &members, &events)?;
        }
    }
}

/// Whether event `i` was folded into the window ending at `end`: the watermark at its
/// arrival (replayed) had not passed `end - 1 + lateness`.
fn included(events: &[Ev], i: usize, end: i64, lateness: i64, lag: i64) -> bool {
    let max_before = events[..i].iter().map(|e| e.time).max();
    match max_before {
        None => true,
        Some(m) => end - 1 + lateness > m - lag,
    }
}

/// Runs `events` through an engine, advancing the watermark to the latest event time less
/// `lag` after each; at `cut` (if any) the engine is replaced by one restored from its
/// snapshot. Returns every result in a canonical order.
fn run_with_cut(
    kind: WindowKind,
    lateness: i64,
    lag: i64,
    events: &[Ev],
    cut: Option<usize>,
) -> Vec<String> {
    let mut engine = WindowEngine::new(kind, aggs(), lateness);
    let mut out = Vec::new();
    let mut max_seen = i64::MIN;
    for (i, e) in events.iter().enumerate() {
        if Some(i) == cut {
            let bytes = engine.snapshot();
            engine = WindowEngine::new(kind, aggs(), lateness);
            engine.restore(&bytes).expect("restores");
        }
        engine.add(&key_of(e), e.time, &payload(e), &mut out);
        max_seen = max_seen.max(e.time);
        engine.advance(max_seen - lag, &mut out);
    }
    engine.advance(i64::MAX, &mut out);
    // Results that fire together may come in another order after a restore.
    let mut results: Vec<String> = out.iter().map(|r| format!("{r:?}")).collect();
    results.sort();
    results
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// A snapshot restored into a new engine mid-stream changes no result.
    #[test]
    fn a_snapshot_restored_midway_changes_no_result(
        kind in kinds(),
        events in stream(60),
        lag in 0i64..40,
        lateness in 0i64..60,
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(events.len());
        let whole = run_with_cut(kind, lateness, lag, &events, None);
        let restored = run_with_cut(kind, lateness, lag, &events, Some(cut));
        prop_assert_eq!(whole, restored);
    }
}

#[test]
fn a_snapshot_of_other_aggregations_is_refused() {
    let mut engine = WindowEngine::new(WindowKind::Tumbling { size: 10 }, aggs(), 0);
    let e = Ev {
        key: 1,
        time: 5,
        v: 3,
        tag: 1,
    };
    engine.add(&key_of(&e), e.time, &payload(&e), &mut Vec::new());
    let bytes = engine.snapshot();
    let mut other = WindowEngine::new(WindowKind::Tumbling { size: 10 }, aggs()[..2].to_vec(), 0);
    let error = other.restore(&bytes).expect_err("refused");
    assert!(error.contains("13 aggregations"), "{error}");
    assert!(other.restore(b"not a snapshot").is_err());
}

#[test]
fn early_firings_give_partial_results_of_changed_windows_only() {
    let count = vec![AggSpec {
        name: "n".into(),
        kind: AggKind::Count,
        field: None,
    }];
    let mut engine = WindowEngine::new(WindowKind::Tumbling { size: 100 }, count, 0);
    let mut out = Vec::new();
    let at = |time: i64, key: u8| Ev {
        key,
        time,
        v: 1,
        tag: 0,
    };
    for e in [at(10, 1), at(20, 1), at(30, 2)] {
        engine.add(&key_of(&e), e.time, &payload(&e), &mut out);
    }
    engine.fire_early(&mut out);
    let early: Vec<(u8, u64)> = out
        .iter()
        .map(|r| {
            assert_eq!(r.firing, Firing::Early);
            (key_number(r), r.values[0].as_u64().expect("count"))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(early, [(1, 2), (2, 1)]);
    out.clear();
    // Nothing changed since: no early results.
    engine.fire_early(&mut out);
    assert!(out.is_empty());
    let e = at(40, 1);
    engine.add(&key_of(&e), e.time, &payload(&e), &mut out);
    engine.fire_early(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (key_number(&out[0]), out[0].values[0].as_u64()),
        (1, Some(3))
    );
    out.clear();
    // The final results still come, once, when the watermark passes.
    engine.advance(99, &mut out);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|r| r.firing == Firing::Final));
}

#[test]
fn state_limits_refuse_events_and_say_which_limit() {
    use weir::operators::window::{Added, Limit};
    let count = || {
        vec![AggSpec {
            name: "n".into(),
            kind: AggKind::Count,
            field: None,
        }]
    };
    let at = |time: i64, key: u8| Ev {
        key,
        time,
        v: 1,
        tag: 0,
    };
    let mut out = Vec::new();

    let mut keys =
        WindowEngine::new(WindowKind::Tumbling { size: 100 }, count(), 0).with_limits(2, 1_000);
    for (e, want) in [
        (at(10, 1), Added::Accepted),
        (at(20, 2), Added::Accepted),
        (at(30, 3), Added::Full(Limit::Keys(2))),
        (at(40, 1), Added::Accepted),
    ] {
        assert_eq!(keys.add(&key_of(&e), e.time, &payload(&e), &mut out), want);
    }
    assert_eq!(
        Limit::Keys(2).to_string(),
        "window state is full: 2 keys hold open windows (max_keys)"
    );
    // Once the windows fire, their keys leave and others may come.
    keys.advance(99, &mut out);
    assert_eq!(out.len(), 2, "only the accepted events counted: {out:?}");
    assert_eq!(
        out.iter()
            .map(|r| r.values[0].as_u64())
            .sum::<Option<u64>>(),
        Some(3)
    );
    let e = at(130, 3);
    assert_eq!(
        keys.add(&key_of(&e), e.time, &payload(&e), &mut out),
        Added::Accepted
    );

    // Sliding windows of 30 every 10: an event opens up to three.
    let mut windows = WindowEngine::new(
        WindowKind::Sliding {
            size: 30,
            slide: 10,
        },
        count(),
        0,
    )
    .with_limits(100, 4);
    for (e, want) in [
        (at(5, 1), Added::Accepted),
        (at(15, 1), Added::Accepted),
        (at(16, 1), Added::Accepted),
        (at(25, 1), Added::Full(Limit::Windows(4))),
        (at(7, 2), Added::Full(Limit::Windows(4))),
    ] {
        assert_eq!(
            windows.add(&key_of(&e), e.time, &payload(&e), &mut out),
            want,
            "{e:?}"
        );
    }
    assert_eq!(windows.open_windows(), 4);
}

/// Findings of a review, each a sequence that once went wrong.
mod regressions {
    use super::*;
    use weir::operators::window::{Added, Limit, MAX_EVENT_TIME};

    fn count() -> Vec<AggSpec> {
        vec![AggSpec {
            name: "n".into(),
            kind: AggKind::Count,
            field: None,
        }]
    }

    fn add(engine: &mut WindowEngine, key: u8, time: i64, out: &mut Vec<WindowResult>) -> Added {
        let e = Ev {
            key,
            time,
            v: 1,
            tag: 0,
        };
        engine.add(&key_of(&e), e.time, &payload(&e), out)
    }

    #[test]
    fn a_session_grown_past_a_fired_one_fires_again() {
        let mut engine = WindowEngine::new(WindowKind::Session { gap: 10 }, count(), 100);
        let mut out = Vec::new();
        add(&mut engine, 1, 0, &mut out);
        engine.advance(9, &mut out);
        assert_eq!((out[0].start, out[0].end, out[0].events), (0, 10, 1));
        out.clear();
        // Within lateness; the session grows to [0, 15), whose end is not yet passed.
        assert_eq!(add(&mut engine, 1, 5, &mut out), Added::Accepted);
        assert!(out.is_empty());
        engine.advance(14, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].start, out[0].end, out[0].events), (0, 15, 2));
        assert_eq!(out[0].firing, Firing::Final);
    }

    #[test]
    fn a_restored_engine_keeps_its_limits() {
        let mut engine =
            WindowEngine::new(WindowKind::Tumbling { size: 10 }, count(), 0).with_limits(1, 10);
        let mut out = Vec::new();
        add(&mut engine, 1, 5, &mut out);
        let bytes = engine.snapshot();
        engine.restore(&bytes).expect("restores");
        assert_eq!(
            add(&mut engine, 2, 5, &mut out),
            Added::Full(Limit::Keys(1))
        );
    }

    #[test]
    fn early_firings_of_count_windows_carry_their_real_start() {
        let mut engine = WindowEngine::new(WindowKind::Count { size: 10 }, count(), 0);
        let mut out = Vec::new();
        add(&mut engine, 1, 1_000, &mut out);
        add(&mut engine, 1, 1_004, &mut out);
        engine.fire_early(&mut out);
        assert_eq!((out[0].start, out[0].end), (1_000, 1_005));
    }

    #[test]
    fn extreme_event_times_are_refused_or_taken_without_overflow() {
        let mut out = Vec::new();
        for kind in [
            WindowKind::Tumbling { size: 3 },
            WindowKind::Sliding { size: 10, slide: 5 },
            WindowKind::Sliding {
                size: i64::MAX,
                slide: i64::MAX / 2,
            },
            WindowKind::Session { gap: i64::MAX },
        ] {
            let mut engine = WindowEngine::new(kind, count(), 0);
            assert_eq!(add(&mut engine, 1, i64::MIN, &mut out), Added::OutOfRange);
            assert_eq!(add(&mut engine, 1, i64::MAX, &mut out), Added::OutOfRange);
            assert_eq!(
                add(&mut engine, 1, -MAX_EVENT_TIME, &mut out),
                Added::Accepted,
                "{kind:?}"
            );
            assert_eq!(
                add(&mut engine, 1, MAX_EVENT_TIME, &mut out),
                Added::Accepted,
                "{kind:?}"
            );
            engine.advance(i64::MAX, &mut out);
        }
    }

    #[test]
    fn a_late_event_is_late_even_when_its_key_would_not_fit() {
        let mut out = Vec::new();
        let mut tumbling =
            WindowEngine::new(WindowKind::Tumbling { size: 10 }, count(), 0).with_limits(1, 100);
        add(&mut tumbling, 1, 100, &mut out);
        tumbling.advance(50, &mut out);
        assert_eq!(add(&mut tumbling, 2, 0, &mut out), Added::Late);
        let mut session =
            WindowEngine::new(WindowKind::Session { gap: 10 }, count(), 0).with_limits(100, 1);
        add(&mut session, 1, 100, &mut out);
        session.advance(50, &mut out);
        assert_eq!(add(&mut session, 1, 0, &mut out), Added::Late);
    }
}

/// The `stats` aggregator plugin beside the built-ins it can be checked against.
fn engine_with_stats(kind: WindowKind, lateness: i64) -> WindowEngine {
    use std::sync::Arc;
    use weir::operators::window::{PluginAggregation, PluginAggregations};
    use weir::plugins::{
        PluginEngine, PluginKind, PluginLimits, PluginLoader, PluginRegistry, PluginUser,
    };
    let plugin = PluginLoader::new(PluginEngine::new().expect("engine"), None)
        .load(&weir_e2e::plugin("stats"))
        .expect("stats loads");
    let name = "stats".to_owned();
    let registry = PluginRegistry::new([(&name, &Arc::new(plugin))]);
    let slot = Arc::clone(registry.slot("stats").expect("slot"));
    let stats = PluginAggregation::new(
        slot,
        PluginUser::new(
            "test",
            PluginKind::Aggregator,
            serde_json::json!({"field": "v"}),
            PluginLimits::default(),
        ),
        Default::default(),
    )
    .expect("stats starts");
    let agg = |name: &str, kind: AggKind, field: Option<&str>| AggSpec {
        name: name.into(),
        kind,
        field: field.map(Into::into),
    };
    let aggs = vec![
        agg("count", AggKind::Count, None),
        agg("sum", AggKind::Sum, Some("v")),
        agg("min", AggKind::Min, Some("v")),
        agg("max", AggKind::Max, Some("v")),
        agg("stats", AggKind::Custom(0), None),
    ];
    WindowEngine::new(kind, aggs, lateness).with_custom(Box::new(PluginAggregations(vec![stats])))
}

fn field<'a>(map: &'a rmpv::Value, name: &str) -> &'a rmpv::Value {
    map.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(name)))
        .map_or(&rmpv::Value::Nil, |(_, v)| v)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// A plugin aggregation folds, merges and finishes exactly the events the built-ins
    /// see, whatever the window kind, lateness, early firings and flush points.
    #[test]
    fn a_plugin_aggregation_sees_what_the_builtins_see(
        kind in kinds(),
        lateness in prop_oneof![Just(0i64), 1i64..200],
        (disorder, events) in (1i64..50).prop_flat_map(|d| (Just(d), stream(d))),
        early in 0usize..40,
    ) {
        let mut engine = engine_with_stats(kind, lateness);
        let mut out = Vec::new();
        let mut max_seen = i64::MIN;
        for (i, e) in events.iter().enumerate() {
            let event = weir::event::Event::new(payload(e), e.time);
            engine.add_event(&key_of(e), e.time, &event, &mut out);
            max_seen = max_seen.max(e.time);
            engine.advance(max_seen - disorder, &mut out);
            if early > 0 && i % early == 0 {
                engine.fire_early(&mut out);
            }
        }
        engine.advance(i64::MAX, &mut out);
        prop_assert!(engine.take_custom_failures().is_empty());
        prop_assert!(!out.is_empty());
        for r in &out {
            let stats = &r.values[4];
            prop_assert_eq!(field(stats, "count").as_u64(), r.values[0].as_u64(), "{:?}", r);
            prop_assert_eq!(field(stats, "sum").as_f64(), r.values[1].as_i64().map(|s| s as f64), "{:?}", r);
            prop_assert_eq!(field(stats, "min").as_f64(), r.values[2].as_f64(), "{:?}", r);
            prop_assert_eq!(field(stats, "max").as_f64(), r.values[3].as_f64(), "{:?}", r);
        }
    }
}

fn count_and_sum() -> Vec<AggSpec> {
    vec![
        AggSpec {
            name: "n".into(),
            kind: AggKind::Count,
            field: None,
        },
        AggSpec {
            name: "total".into(),
            kind: AggKind::Sum,
            field: Some("v".into()),
        },
    ]
}

fn ev(key: u8, time: i64, v: i64) -> Ev {
    Ev {
        key,
        time,
        v,
        tag: 0,
    }
}

fn feed(engine: &mut WindowEngine, events: &[Ev], out: &mut Vec<WindowResult>) {
    for e in events {
        engine.add(&key_of(e), e.time, &payload(e), out);
    }
}

fn summary(out: &[WindowResult]) -> Vec<(u8, i64, u64, i64, Firing)> {
    out.iter()
        .map(|r| {
            (
                key_number(r),
                r.start,
                r.values[0].as_u64().expect("count"),
                r.values[1].as_i64().expect("sum"),
                r.firing,
            )
        })
        .collect()
}

#[test]
fn a_global_window_with_a_count_trigger_gives_a_running_result_every_n_events() {
    use weir::operators::window::GLOBAL_START;
    let mut engine =
        WindowEngine::new(WindowKind::Global, count_and_sum(), 0).with_triggers(Some(2), false);
    let mut out = Vec::new();
    let events: Vec<Ev> = (0..5)
        .map(|i| ev(1, 1_000 * i, i + 1))
        .chain([ev(2, 7, 10)])
        .collect();
    feed(&mut engine, &events, &mut out);
    // Event time moving on does not close the global window.
    engine.advance(1_000_000, &mut out);
    assert_eq!(
        summary(&out),
        [
            (1, GLOBAL_START, 2, 3, Firing::Early),
            (1, GLOBAL_START, 4, 10, Firing::Early),
        ]
    );
    out.clear();
    // The end of a finite input closes it.
    engine.advance(i64::MAX, &mut out);
    let mut last = summary(&out);
    last.sort_by_key(|r| r.0);
    assert_eq!(
        last,
        [
            (1, GLOBAL_START, 5, 15, Firing::Final),
            (2, GLOBAL_START, 1, 10, Firing::Final)
        ]
    );
}

#[test]
fn a_count_trigger_fires_open_windows_early_and_the_watermark_still_closes_them() {
    let mut engine = WindowEngine::new(WindowKind::Tumbling { size: 100 }, count_and_sum(), 0)
        .with_triggers(Some(3), false);
    let mut out = Vec::new();
    feed(
        &mut engine,
        &[
            ev(1, 1, 1),
            ev(1, 2, 1),
            ev(1, 3, 1),
            ev(1, 4, 1),
            ev(1, 150, 5),
        ],
        &mut out,
    );
    engine.advance(150, &mut out);
    assert_eq!(
        summary(&out),
        [(1, 0, 3, 3, Firing::Early), (1, 0, 4, 4, Firing::Final)]
    );
}

#[test]
fn emitting_final_results_gives_each_window_once_with_its_late_events() {
    for lateness in [0, 50] {
        let mut engine = WindowEngine::new(
            WindowKind::Tumbling { size: 100 },
            count_and_sum(),
            lateness,
        )
        .with_triggers(None, true);
        let mut out = Vec::new();
        feed(&mut engine, &[ev(1, 10, 1), ev(1, 120, 2)], &mut out);
        engine.advance(120, &mut out);
        // Within the allowed lateness: folded in, no update emitted.
        feed(&mut engine, &[ev(1, 20, 4)], &mut out);
        engine.advance(190, &mut out);
        let want: &[(u8, i64, u64, i64, Firing)] = if lateness == 0 {
            // No lateness: the window closed at the watermark and the event was late.
            &[(1, 0, 1, 1, Firing::Final)]
        } else {
            &[(1, 0, 2, 5, Firing::Final)]
        };
        assert_eq!(summary(&out), want, "lateness {lateness}");
        out.clear();
        engine.advance(i64::MAX, &mut out);
        assert_eq!(summary(&out), [(1, 100, 1, 2, Firing::Final)]);
    }
}

#[test]
fn at_the_end_of_the_input_count_windows_that_did_not_fill_fire_too() {
    let mut engine = WindowEngine::new(WindowKind::Count { size: 3 }, count_and_sum(), 0);
    let mut out = Vec::new();
    feed(
        &mut engine,
        &[
            ev(1, 5, 1),
            ev(1, 6, 2),
            ev(1, 7, 3),
            ev(1, 8, 4),
            ev(2, 9, 5),
        ],
        &mut out,
    );
    assert_eq!(summary(&out), [(1, 5, 3, 6, Firing::Final)]);
    out.clear();
    engine.advance(i64::MAX, &mut out);
    assert!(
        out.is_empty(),
        "the watermark alone does not close a count window"
    );
    engine.close_all(&mut out);
    let mut rest = summary(&out);
    rest.sort_by_key(|r| r.0);
    assert_eq!(
        rest,
        [(1, 8, 1, 4, Firing::Final), (2, 9, 1, 5, Firing::Final)]
    );
    assert_eq!((engine.open_windows(), engine.keys()), (0, 0));
}
