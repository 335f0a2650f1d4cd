//! Declared patterns: the automaton against a brute-force reference on random streams, one
//! construct at a time and all together; then the classic scenarios as readable tests.

mod cep_reference;

use bytes::Bytes;
use cep_reference::Ev;
use weir::config::PatternStageConfig;
use weir::operators::pattern::nfa::{Found, KeyRun, Outcome};
use weir::operators::pattern::spec::Pattern;
use weir_plugin_sdk::msgpack;

/// A small xorshift generator: the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn event(i: usize, v: u64, time: i64) -> Ev {
    let json = format!(r#"{{"i":{i},"v":{v}}}"#);
    Ev {
        time,
        payload: weir::format::json_to_msgpack(json.as_bytes()).expect("json"),
    }
}

/// A number field of a test event.
fn number(payload: &[u8], field: &str) -> i64 {
    msgpack::lookup(payload, field)
        .ok()
        .flatten()
        .and_then(|v| v.as_f64())
        .expect("a number field") as i64
}

fn stream(rng: &mut Rng, n: usize) -> Vec<Ev> {
    let mut time = 0;
    (0..n)
        .map(|i| {
            time += rng.below(3) as i64;
            event(i, rng.below(4), time)
        })
        .collect()
}

/// What the automaton reports, as (name slot, event index) lists in order.
fn run(p: &Pattern, events: &[Ev]) -> (Vec<Vec<(usize, usize)>>, Vec<Found>) {
    let mut run = KeyRun::default();
    let mut found = Vec::new();
    for e in events {
        run.on_event(p, &Bytes::from(e.payload.clone()), e.time, &mut found);
    }
    run.advance(p, i64::MAX, &mut found);
    // With a time bound every partial match ends, and the shared buffer empties with them.
    if p.within.is_some() {
        assert!(run.is_empty(), "partial matches left after the end");
        assert_eq!(run.buffered_events(), 0, "events left in the shared buffer");
    }
    let matches = found
        .iter()
        .filter(|f| f.outcome == Outcome::Matched)
        .map(|f| {
            f.events
                .iter()
                .map(|(slot, _, payload)| {
                    let i = number(payload, "i");
                    (*slot, i as usize)
                })
                .collect()
        })
        .collect();
    (matches, found)
}

/// Options for a random step.
#[derive(Clone, Copy, Default)]
struct Grammar {
    relations: bool,
    quantifiers: bool,
    groups: bool,
    negations: bool,
    within: bool,
    skip: bool,
}

const CONDITIONS: &[&str] = &[
    "v == 0", "v == 1", "v == 2", "v < 2", "v >= 1", "v != 3", "true",
];
const REFERRING: &[&str] = &["v > prev.v", "v >= prev.v", "v == s0.v", "v != s0.v"];

fn condition(rng: &mut Rng, first: bool) -> String {
    if !first && rng.chance(30) {
        rng.pick(REFERRING).to_owned()
    } else {
        rng.pick(CONDITIONS).to_owned()
    }
}

/// A random pattern of 2–4 steps using what `g` allows.
fn random_pattern(rng: &mut Rng, g: Grammar) -> String {
    let steps = 2 + rng.below(3) as usize;
    let mut text = String::new();
    let mut loops = 0;
    let mut last_was_negation = false;
    let mut absence = false;
    for i in 0..steps {
        let name = format!("s{i}");
        let last = i + 1 == steps;
        let negation = g.negations && i > 0 && !last_was_negation && rng.chance(30);
        let mut step = format!("[[steps]]\nname = \"{name}\"\n");
        if negation {
            let strict = !last && rng.chance(50);
            let after = if strict {
                "not_next"
            } else {
                "not_followed_by"
            };
            absence |= last;
            step += &format!(
                "after = \"{after}\"\nwhere = \"{}\"\n",
                condition(rng, false)
            );
            text += &step;
            last_was_negation = true;
            continue;
        }
        last_was_negation = false;
        if i > 0 {
            let after = if g.relations {
                rng.pick(&["next", "followed_by", "followed_by_any"])
            } else {
                "followed_by"
            };
            step += &format!("after = \"{after}\"\n");
        }
        if g.groups && i > 0 && rng.chance(25) {
            step += &format!(
                "all_of = [{{ name = \"{name}a\", where = \"{}\" }}, {{ name = \"{name}b\", where = \"{}\" }}]\n",
                condition(rng, false),
                condition(rng, false)
            );
        } else if g.groups && rng.chance(25) {
            step += &format!(
                "any_of = [\"{}\", \"{}\"]\n",
                condition(rng, i == 0),
                condition(rng, i == 0)
            );
        } else {
            step += &format!("where = \"{}\"\n", condition(rng, i == 0));
            if g.quantifiers && rng.chance(50) {
                let unbounded = loops == 0 && rng.chance(40);
                let quantity = if unbounded {
                    loops += 1;
                    rng.pick(&["one_or_more = true", "times_or_more = 2"])
                        .to_owned()
                } else {
                    rng.pick(&["times = 2", "times = [1, 2]", "times = [2, 3]"])
                        .to_owned()
                };
                step += &format!("{quantity}\n");
                step += &format!(
                    "loop = \"{}\"\n",
                    rng.pick(&["consecutive", "relaxed", "any"])
                );
                if rng.chance(30) {
                    step += "greedy = true\n";
                }
                if rng.chance(20) {
                    step += &format!("until = \"{}\"\n", rng.pick(&["v == 3", "v == 0"]));
                }
            }
            if g.quantifiers && i > 0 && rng.chance(20) {
                step += "optional = true\n";
            }
        }
        text += &step;
    }
    let mut head = String::new();
    if absence || (g.within && rng.chance(60)) {
        head += &format!("within = \"{}ms\"\n", 3 + rng.below(8));
    }
    if g.skip {
        let skip = rng.pick(&[
            "no_skip",
            "skip_to_next",
            "skip_past_last_event",
            "skip_to_first:s1",
            "skip_to_last:s0",
        ]);
        head += &format!("after_match = \"{skip}\"\n");
    }
    head + &text
}

/// Runs `cases` random patterns over random streams against the reference.
fn against_reference(seed: u64, cases: usize, g: Grammar) {
    // `WEIR_CEP_CASES=20` runs twenty times as many, for a longer search.
    let scale: usize = std::env::var("WEIR_CEP_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cases = cases * scale;
    let mut rng = Rng(seed);
    let mut compared = 0;
    let mut matched = 0;
    while compared < cases {
        let text = random_pattern(&mut rng, g);
        let config: PatternStageConfig =
            toml::from_str(&format!("inputs = [\"in\"]\n{text}")).expect("toml");
        // A skip strategy naming a negation, and the like, is refused: not a case.
        let Ok(pattern) = Pattern::compile(&config) else {
            continue;
        };
        let n = 4 + rng.below(5) as usize;
        let events = stream(&mut rng, n);
        let expected = cep_reference::matches(&pattern, &events);
        let (got, _) = run(&pattern, &events);
        if got != expected {
            let shown: Vec<String> = events
                .iter()
                .map(|e| {
                    let v = number(&e.payload, "v");
                    format!("t{}:v{v}", e.time)
                })
                .collect();
            panic!(
                "pattern:\n{text}\nevents: {}\nnames: {:?}\nreference: {expected:?}\nautomaton: {got:?}",
                shown.join(" "),
                pattern.names
            );
        }
        matched += got.len();
        compared += 1;
    }
    assert!(
        matched > cases / 4,
        "only {matched} matches in {cases} cases: the grammar finds too little"
    );
}

#[test]
fn contiguity_next_followed_by_and_followed_by_any_match_the_reference() {
    let g = Grammar {
        relations: true,
        ..Grammar::default()
    };
    against_reference(1, 400, g);
}

#[test]
fn quantifiers_greedy_and_until_match_the_reference() {
    let g = Grammar {
        relations: true,
        quantifiers: true,
        ..Grammar::default()
    };
    against_reference(2, 400, g);
}

#[test]
fn conjunction_and_disjunction_match_the_reference() {
    let g = Grammar {
        relations: true,
        groups: true,
        ..Grammar::default()
    };
    against_reference(3, 300, g);
}

#[test]
fn negation_and_absence_match_the_reference() {
    let g = Grammar {
        relations: true,
        negations: true,
        within: true,
        ..Grammar::default()
    };
    against_reference(4, 400, g);
}

#[test]
fn within_and_skip_strategies_match_the_reference() {
    let g = Grammar {
        relations: true,
        quantifiers: true,
        within: true,
        skip: true,
        ..Grammar::default()
    };
    against_reference(5, 400, g);
}

#[test]
fn every_construct_together_matches_the_reference() {
    let g = Grammar {
        relations: true,
        quantifiers: true,
        groups: true,
        negations: true,
        within: true,
        skip: true,
    };
    against_reference(6, 600, g);
}

/// Runs a declared pattern over one key's events (`(time, json)`, in time order) to the end
/// of input, and shows each outcome as `matched s0=[ids] s1=[ids]` (with `@time` for ends
/// that are not matches).
fn scenario(pattern: &str, events: &[(i64, &str)]) -> Vec<String> {
    let config: PatternStageConfig =
        toml::from_str(&format!("inputs = [\"in\"]\n{pattern}")).expect("toml");
    let p = Pattern::compile(&config).expect("pattern");
    let mut run = KeyRun::default();
    let mut found = Vec::new();
    for (time, json) in events {
        let payload = weir::format::json_to_msgpack(json.as_bytes()).expect("json");
        run.on_event(&p, &Bytes::from(payload), *time, &mut found);
    }
    run.advance(&p, i64::MAX, &mut found);
    found
        .iter()
        .map(|f| {
            let mut text = match f.outcome {
                Outcome::Matched => "matched".to_owned(),
                Outcome::TimedOut => format!("timed out @{}", f.at),
                Outcome::Evicted => format!("evicted @{}", f.at),
            };
            let mut names: Vec<usize> = Vec::new();
            for (slot, _, _) in &f.events {
                if !names.contains(slot) {
                    names.push(*slot);
                }
            }
            for slot in names {
                let ids: Vec<String> = f
                    .events
                    .iter()
                    .filter(|e| e.0 == slot)
                    .map(|e| number(&e.2, "id").to_string())
                    .collect();
                text += &format!(" {}=[{}]", p.names[slot], ids.join(","));
            }
            text
        })
        .collect()
}

const MINUTE: i64 = 60_000;

#[test]
fn three_failed_logins_then_a_success_within_a_minute() {
    let pattern = r#"
within = "1m"
after_match = "skip_past_last_event"
[[steps]]
name = "failed"
where = "outcome == 'fail'"
times = 3
loop = "consecutive"
[[steps]]
name = "success"
after = "next"
where = "outcome == 'success'"
"#;
    let found = scenario(
        pattern,
        &[
            (0, r#"{"id":1,"outcome":"fail"}"#),
            (10_000, r#"{"id":2,"outcome":"fail"}"#),
            (20_000, r#"{"id":3,"outcome":"success"}"#),
            (30_000, r#"{"id":4,"outcome":"fail"}"#),
            (40_000, r#"{"id":5,"outcome":"fail"}"#),
            (50_000, r#"{"id":6,"outcome":"fail"}"#),
            (55_000, r#"{"id":7,"outcome":"fail"}"#),
            (80_000, r#"{"id":8,"outcome":"success"}"#),
            // Three failures, but the success comes after the minute.
            (200_000, r#"{"id":9,"outcome":"fail"}"#),
            (201_000, r#"{"id":10,"outcome":"fail"}"#),
            (202_000, r#"{"id":11,"outcome":"fail"}"#),
            (200_000 + MINUTE, r#"{"id":12,"outcome":"success"}"#),
        ],
    );
    // Two failures are not enough; of four, the last three are in a row before the
    // success and within the minute of the first of them. The last three failures wait
    // for their success until the minute ends (reported when `timeouts = true`).
    assert_eq!(
        found,
        [
            "matched failed=[5,6,7] success=[8]",
            &format!("timed out @{} failed=[9,10,11]", 200_000 + MINUTE),
        ]
    );
}

#[test]
fn an_order_without_a_payment_within_ten_minutes() {
    let absence = r#"
within = "10m"
[[steps]]
name = "order"
where = "type == 'order'"
[[steps]]
name = "payment"
after = "not_followed_by"
where = "type == 'payment' && order_id == order.order_id"
"#;
    let events = [
        (0, r#"{"id":1,"type":"order","order_id":"a"}"#),
        (MINUTE, r#"{"id":2,"type":"order","order_id":"b"}"#),
        (2 * MINUTE, r#"{"id":3,"type":"payment","order_id":"a"}"#),
        (12 * MINUTE, r#"{"id":4,"type":"order","order_id":"c"}"#),
        (30 * MINUTE, r#"{"id":5,"type":"payment","order_id":"c"}"#),
    ];
    // Order a was paid; b never was; c was paid, but after its ten minutes.
    assert_eq!(
        scenario(absence, &events),
        ["matched order=[2]", "matched order=[4]"]
    );

    // The same question asked the FlinkCEP way: an order followed by its payment within
    // ten minutes, with the partial matches that time out reported.
    let with_timeouts = r#"
within = "10m"
[[steps]]
name = "order"
where = "type == 'order'"
[[steps]]
name = "payment"
where = "type == 'payment' && order_id == order.order_id"
"#;
    assert_eq!(
        scenario(with_timeouts, &events),
        [
            "matched order=[1] payment=[3]",
            &format!("timed out @{} order=[2]", 11 * MINUTE),
            &format!("timed out @{} order=[4]", 22 * MINUTE),
        ]
    );
}

#[test]
fn a_price_rising_on_five_consecutive_ticks() {
    let pattern = r#"
after_match = "skip_past_last_event"
[[steps]]
name = "base"
[[steps]]
name = "rise"
after = "next"
where = "price > prev.price"
times = 5
loop = "consecutive"
"#;
    let prices = [10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 18, 17];
    let events: Vec<String> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| format!(r#"{{"id":{i},"price":{p}}}"#))
        .collect();
    let events: Vec<(i64, &str)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i64 * 1000, e.as_str()))
        .collect();
    // 10..13 rises only three times; from 12 (tick 4) it rises five times in a row.
    assert_eq!(
        scenario(pattern, &events),
        ["matched base=[4] rise=[5,6,7,8,9]"]
    );
}

#[test]
fn a_large_withdrawal_after_a_small_test_charge() {
    let pattern = r#"
within = "1h"
[[steps]]
name = "small"
where = "kind == 'charge' && amount < 2"
[[steps]]
name = "large"
after = "followed_by"
where = "kind == 'withdrawal' && amount >= small.amount * 500"
"#;
    let found = scenario(
        pattern,
        &[
            (0, r#"{"id":1,"kind":"charge","amount":1.5}"#),
            (1000, r#"{"id":2,"kind":"charge","amount":40}"#),
            (2000, r#"{"id":3,"kind":"withdrawal","amount":200}"#),
            (3000, r#"{"id":4,"kind":"withdrawal","amount":900}"#),
            (4000, r#"{"id":5,"kind":"withdrawal","amount":950}"#),
        ],
    );
    // Relaxed contiguity skips what does not match (the 40 charge, the 200 withdrawal)
    // and takes the next that does: 900 is 600 times the test charge.
    assert_eq!(found, ["matched small=[1] large=[4]"]);
}

#[test]
fn partial_matches_per_key_are_bounded_oldest_first() {
    let pattern = r#"
max_partial_matches = 3
[[steps]]
name = "a"
where = "v == 1"
[[steps]]
name = "b"
where = "v == 2"
"#;
    let events: Vec<String> = (0..5).map(|i| format!(r#"{{"id":{i},"v":1}}"#)).collect();
    let mut all: Vec<(i64, &str)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i64, e.as_str()))
        .collect();
    all.push((9, r#"{"id":9,"v":2}"#));
    assert_eq!(
        scenario(pattern, &all),
        [
            "evicted @0 a=[0]",
            "evicted @1 a=[1]",
            "matched a=[2] b=[9]",
            "matched a=[3] b=[9]",
            "matched a=[4] b=[9]",
        ]
    );
}

#[test]
fn a_partial_match_is_reported_once_however_many_ways_it_waits() {
    // Waiting for more `a` and for the absence to pass: once the absence is waited out it
    // is a match, and not also a timed-out partial match.
    let absence = r#"
within = "10ms"
[[steps]]
name = "a"
where = "v == 1"
one_or_more = true
[[steps]]
name = "n"
after = "not_followed_by"
where = "v == 2"
"#;
    assert_eq!(
        scenario(absence, &[(0, r#"{"id":0,"v":1}"#)]),
        ["matched a=[0]"]
    );
    // Over the bound, a partial match goes whole (its loop and its wait for `b`), once.
    let bounded = r#"
max_partial_matches = 1
[[steps]]
name = "a"
where = "v == 1"
one_or_more = true
[[steps]]
name = "b"
where = "v == 2"
"#;
    assert_eq!(
        scenario(
            bounded,
            &[(0, r#"{"id":0,"v":1}"#), (1, r#"{"id":1,"v":2}"#)]
        ),
        ["evicted @0 a=[0]"]
    );
}

/// The order of events of a stage that reads one source, `in`.
fn one_source() -> weir::operators::window::SourceOrder {
    weir::operators::window::SourceOrder {
        names: std::sync::Arc::from(vec!["in".to_owned()]),
        ordered: vec![true],
        assignments: std::sync::Arc::default(),
        feeds: vec![true],
    }
}

/// A pattern stage of one worker reading one source, matching `pattern` (of `config`).
fn declared_stage(
    config: &PatternStageConfig,
    pattern: std::sync::Arc<Pattern>,
) -> weir::operators::pattern::PatternOperator<weir::operators::pattern::DeclaredMatcher> {
    let order = one_source();
    let matcher = weir::operators::pattern::DeclaredMatcher::new(pattern, "test".into(), false);
    weir::operators::pattern::PatternOperator::new(
        "test",
        config,
        1,
        &order,
        prometheus_client::metrics::counter::Counter::default(),
        matcher,
        None,
    )
    .expect("stage")
}

/// The whole stage, driven as a worker drives it: several keys interleaved, events arriving
/// out of order within `out_of_orderness`, batches of random sizes, ticks, then the end of
/// input. Per key, its matches must be the reference's, in the reference's order.
#[test]
fn the_stage_matches_the_reference_whatever_the_arrival_order_and_batching() {
    use std::sync::Arc;
    use weir::operators::{Operator, Processed};

    let g = Grammar {
        relations: true,
        quantifiers: true,
        groups: true,
        negations: true,
        within: true,
        skip: true,
    };
    let mut rng = Rng(77);
    let mut compared = 0;
    let cases = 150
        * std::env::var("WEIR_CEP_CASES")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(1);
    while compared < cases {
        let text = random_pattern(&mut rng, g);
        let Ok(config) = toml::from_str::<PatternStageConfig>(&format!(
            "inputs = [\"in\"]\ngroup_by = [\"k\"]\nout_of_orderness = \"3ms\"\n{text}"
        )) else {
            continue;
        };
        let Ok(pattern) = Pattern::compile(&config) else {
            continue;
        };
        let pattern = Arc::new(pattern);
        // Three keys; each key's events in event-time order, then all of them arriving
        // shuffled within the out-of-orderness bound.
        let mut arrivals: Vec<(i64, usize, String)> = Vec::new();
        let mut per_key: Vec<Vec<Ev>> = Vec::new();
        for k in 0..3 {
            let n = 3 + rng.below(5) as usize;
            let mut time = 0;
            let mut evs = Vec::new();
            for i in 0..n {
                time += rng.below(3) as i64;
                let v = rng.below(4);
                let id = k * 100 + i;
                evs.push(event(id, v, time));
                arrivals.push((time, id, format!(r#"{{"i":{id},"v":{v},"k":{k}}}"#)));
            }
            per_key.push(evs);
        }
        // Sorted by time with a jitter below the bound: no event comes late.
        let mut keyed: Vec<(i64, usize, String)> = arrivals
            .into_iter()
            .map(|(t, id, json)| (t * 10 + rng.below(25) as i64, id, json))
            .collect();
        keyed.sort();
        let mut stage = declared_stage(&config, Arc::clone(&pattern));
        let mut out = Processed::default();
        let mut found: Vec<weir::event::Event> = Vec::new();
        let mut at = 0;
        let all: Vec<(i64, String)> = keyed
            .into_iter()
            .map(|(_, id, json)| {
                let time = per_key[id / 100][id % 100].time;
                (time, json)
            })
            .collect();
        while at < all.len() {
            let size = 1 + rng.below(4) as usize;
            let batch: Vec<weir::event::Event> = all[at..(at + size).min(all.len())]
                .iter()
                .map(|(time, json)| {
                    let payload = weir::format::json_to_msgpack(json.as_bytes()).expect("json");
                    weir::event::Event::new(payload, *time)
                })
                .collect();
            at += size;
            out.reset(3);
            stage.process(batch, &mut out);
            assert!(out.dead.is_empty(), "nothing is late: {:?}", out.dead.len());
            found.append(&mut out.ports[0]);
        }
        out.reset(3);
        stage.stateful().expect("stateful").end_of_input(&mut out);
        found.append(&mut out.ports[0]);
        // Per key: (name, event id) lists in order. The stage takes a key's events in time
        // order, and events at the same time in the order they arrived.
        for k in 0..per_key.len() {
            let mut seen: Vec<(i64, i64, Vec<u8>)> = all
                .iter()
                .filter_map(|(time, json)| {
                    let payload = weir::format::json_to_msgpack(json.as_bytes()).expect("json");
                    (number(&payload, "k") == k as i64)
                        .then(|| (*time, number(&payload, "i"), payload))
                })
                .collect();
            seen.sort_by_key(|e| e.0);
            let ids: Vec<i64> = seen.iter().map(|e| e.1).collect();
            let events: Vec<Ev> = seen
                .into_iter()
                .map(|(time, _, payload)| Ev { time, payload })
                .collect();
            let expected: Vec<Vec<(String, i64)>> = cep_reference::matches(&pattern, &events)
                .into_iter()
                .map(|m| {
                    m.into_iter()
                        .map(|(slot, i)| (pattern.names[slot].clone(), ids[i]))
                        .collect()
                })
                .collect();
            let got: Vec<Vec<(String, i64)>> = found
                .iter()
                .filter(|e| number(&e.payload, "k") == k as i64)
                .map(|e| {
                    let value: serde_json::Value =
                        rmp_serde::from_slice(&e.payload).expect("match payload");
                    let mut pairs: Vec<(String, i64)> = value["steps"]
                        .as_object()
                        .expect("steps")
                        .iter()
                        .flat_map(|(name, evs)| {
                            evs.as_array()
                                .expect("events")
                                .iter()
                                .map(|ev| (name.clone(), ev["i"].as_i64().expect("id")))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    pairs.sort_by_key(|p| ids.iter().position(|&i| i == p.1));
                    pairs
                })
                .collect();
            assert_eq!(
                got,
                expected,
                "key {k}, pattern:\n{text}\nevents: {:?}\nall found: {:?}",
                all,
                found
                    .iter()
                    .map(|e| serde_json::to_string(
                        &rmp_serde::from_slice::<serde_json::Value>(&e.payload).ok()
                    )
                    .unwrap_or_default())
                    .collect::<Vec<_>>()
            );
        }
        compared += 1;
    }
}

/// After the end of input, more input may come (a file appended to), but nothing from
/// before what the stage already matched on: that would reach the automaton out of order.
#[test]
fn after_the_end_of_input_what_comes_before_the_matched_events_is_late() {
    use std::sync::Arc;
    use weir::operators::{Operator, Processed};

    let config: PatternStageConfig = toml::from_str(
        "inputs = [\"in\"]\nout_of_orderness = \"5ms\"\n[[steps]]\nname = \"a\"\nwhere = \"v == 1\"\n[[steps]]\nname = \"b\"\nwhere = \"v == 2\"\n",
    )
    .expect("config");
    let pattern = Arc::new(Pattern::compile(&config).expect("pattern"));
    let mut stage = declared_stage(&config, pattern);
    let event = |id: u64, v: u64, time: i64| {
        let json = format!(r#"{{"i":{id},"v":{v}}}"#);
        weir::event::Event::new(
            weir::format::json_to_msgpack(json.as_bytes()).expect("json"),
            time,
        )
    };
    let mut out = Processed::default();
    out.reset(3);
    stage.process(vec![event(0, 1, 100), event(1, 2, 110)], &mut out);
    assert!(out.ports[0].is_empty(), "held for the watermark");
    out.reset(3);
    stage.stateful().expect("stateful").end_of_input(&mut out);
    assert_eq!(out.ports[0].len(), 1, "the end of input lets the match out");
    // Appended later: one from before the match is late; one after it is taken.
    out.reset(3);
    stage.process(vec![event(2, 1, 105), event(3, 1, 120)], &mut out);
    assert_eq!(out.dead.len(), 1, "the event before what was fed is late");
    assert_eq!(number(&out.dead[0].1.payload, "i"), 2);
    out.reset(3);
    stage.process(vec![event(4, 2, 130)], &mut out);
    out.reset(3);
    stage.stateful().expect("stateful").end_of_input(&mut out);
    assert_eq!(out.ports[0].len(), 1, "a new match from the later input");
}

/// A declared matcher whose calls fail when an event carries `boom`, as a plugin's may.
struct Failing(weir::operators::pattern::DeclaredMatcher);

impl weir::operators::pattern::KeyedMatcher for Failing {
    type State = KeyRun;

    fn label(&self) -> Option<&str> {
        Some("failing@test")
    }

    fn identity(&self) -> String {
        self.0.identity()
    }

    fn accepts(&self, saved: &str) -> Result<bool, String> {
        self.0.accepts(saved)
    }

    fn is_idle(&self, state: &KeyRun) -> bool {
        self.0.is_idle(state)
    }

    fn process(
        &mut self,
        states: &mut [KeyRun],
        times: &[i64],
        events: &[weir::event::Event],
        targets: &[u32],
    ) -> Result<weir::operators::pattern::Step, weir::plugins::CallError> {
        if events
            .iter()
            .any(|e| msgpack::lookup(&e.payload, "boom").is_ok_and(|v| v.is_some()))
        {
            return Err(weir::plugins::CallError {
                plugin: "failing".into(),
                version: "test".into(),
                export: "process",
                kind: weir::plugins::CallErrorKind::Poisoned,
            });
        }
        self.0.process(states, times, events, targets)
    }

    fn on_timer(
        &mut self,
        states: &mut [KeyRun],
        now: i64,
    ) -> Result<weir::operators::pattern::Step, weir::plugins::CallError> {
        self.0.on_timer(states, now)
    }
}

/// A call that fails dead-letters its events and leaves its keys as they were, timers
/// included: the partial match it held still times out.
#[test]
fn a_failed_call_keeps_the_timers_of_its_keys() {
    use weir::operators::{Operator, Processed};

    let config: PatternStageConfig = toml::from_str(
        r#"
inputs = ["in"]
group_by = ["k"]
within = "10ms"
timeouts = true
[[steps]]
name = "a"
where = "v == 1"
[[steps]]
name = "b"
after = "followed_by"
where = "v == 2"
"#,
    )
    .expect("config");
    let pattern = std::sync::Arc::new(Pattern::compile(&config).expect("pattern"));
    let order = one_source();
    let matcher = Failing(weir::operators::pattern::DeclaredMatcher::new(
        pattern,
        "test".into(),
        true,
    ));
    let mut stage = weir::operators::pattern::PatternOperator::new(
        "test",
        &config,
        1,
        &order,
        prometheus_client::metrics::counter::Counter::default(),
        matcher,
        None,
    )
    .expect("stage");
    let event = |json: &str, time: i64| {
        weir::event::Event::new(
            weir::format::json_to_msgpack(json.as_bytes()).expect("json"),
            time,
        )
    };
    let mut out = Processed::default();
    out.reset(3);
    // Key x begins a partial match (its timer: 10 ms on; z's event moves event time past
    // it), then the call that would feed x's next event fails, as the timer comes due.
    stage.process(
        vec![
            event(r#"{"k":"x","v":1}"#, 0),
            event(r#"{"k":"z","v":3}"#, 2),
        ],
        &mut out,
    );
    assert!(out.dead.is_empty());
    stage.process(
        vec![
            event(r#"{"k":"x","v":3,"boom":true}"#, 5),
            event(r#"{"k":"y","v":3}"#, 20),
        ],
        &mut out,
    );
    // The call held z's event too (event time had not passed it yet): both are
    // dead-lettered.
    assert_eq!(
        out.dead.len(),
        2,
        "the failed call's events are dead-lettered"
    );
    if let Some(stateful) = stage.stateful() {
        stateful.end_of_input(&mut out);
    }
    let timed_out: Vec<(String, i64)> = out.ports[2]
        .iter()
        .map(|e| {
            let json = weir::format::msgpack_to_json(&e.payload).expect("json");
            (
                json["k"].as_str().unwrap_or_default().to_owned(),
                json["timed_out_at"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        timed_out,
        [("x".to_owned(), 10)],
        "x's partial match timed out at its deadline"
    );
}
