//! The window stage: reads each event's key and event time, folds it into the engine,
//! drives the watermark per source partition, and turns window results into events.
//!
//! Its state is checkpointed with the source positions it reflects: how far each source
//! partition has been folded in. After a restart the state comes back and the events a
//! source reads again up to those positions are passed over, so no event counts twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};

use super::custom::CustomAggregations;
use super::engine::{Added, WindowEngine, WindowResult};
use super::value::Scalar;
use super::{MAX_EVENT_TIME, stable_hash};
use crate::config::{EmitMode, WindowStageConfig};
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::{Event, Origin};
use crate::expr::Condition;
use crate::operators::replay::{
    Refusals, Replay, SavedClocks, SavedPositions, check_snapshot, event_time,
};
use crate::operators::{Operator, Processed, Stateful};

/// Format of [`StageSnapshot`]; bumped when it changes shape.
const SNAPSHOT_VERSION: u32 = 3;

/// What one worker of a window stage checkpoints.
#[derive(Serialize, Deserialize)]
struct StageSnapshot {
    version: u32,
    /// Workers of the stage when written: keys are split among workers by hash, so the
    /// state only fits a stage with as many.
    workers: u32,
    /// What each aggregation computes, so that state is never read by other ones.
    aggregations: Vec<String>,
    engine: Vec<u8>,
    /// How far each source partition was folded in.
    positions: SavedPositions,
    /// Each partition's latest event time, for the watermark.
    clocks: SavedClocks,
    /// Results emitted so far: the position of the next, in their own origin.
    emitted: u64,
}

/// The pipeline's sources as a window stage sees them.
#[derive(Debug, Clone)]
pub struct SourceOrder {
    /// Source names by index (the index events' origins carry).
    pub names: Arc<[String]>,
    /// By index: whether the source's events reach the stage in their order per partition
    /// (one path, no parallel stage on it). Only then can a restarted stage tell the events
    /// it holds already by their position.
    pub ordered: Vec<bool>,
    /// The partitions each source reads now.
    pub assignments: Arc<crate::event::Assignments>,
    /// By index: whether the source's events reach the stage at all.
    pub feeds: Vec<bool>,
}

/// What each aggregation of a stage computes, as `name=kind(field)` or `name=plugin(NAME)`.
fn signatures(config: &WindowStageConfig) -> Vec<String> {
    config
        .aggregations
        .0
        .iter()
        .map(|agg| match agg.kind {
            super::AggKind::Custom(n) => {
                let plugin = config
                    .aggregations
                    .1
                    .get(n as usize)
                    .map(|p| p.plugin.as_str());
                format!("{}=plugin({})", agg.name, plugin.unwrap_or_default())
            }
            kind => format!(
                "{}={kind:?}({})",
                agg.name,
                agg.field.as_deref().unwrap_or_default()
            ),
        })
        .collect()
}

/// The worker index of an event: the same for every event of one key, in every run.
pub fn worker_of(key: &[Scalar], workers: usize) -> usize {
    let hash = key
        .iter()
        .fold(0u64, |h, v| h.rotate_left(5) ^ stable_hash(v));
    (hash % workers.max(1) as u64) as usize
}

/// One worker of a window stage.
pub struct WindowOperator {
    stage: String,
    engine: WindowEngine,
    group_by: Vec<String>,
    time_field: Option<String>,
    processing_time: bool,
    having: Option<Condition>,
    replay: Replay,
    refusals: Refusals,
    workers: usize,
    aggregations: Vec<String>,
    early_every: Option<Duration>,
    last_early: Instant,
    key: Vec<Scalar>,
    results: Vec<WindowResult>,
    /// The origin of this worker's results: (index among origins, worker), and how many
    /// it has emitted. A window stage reading them passes over, after a restart, those it
    /// holds, as it does with a source's events.
    results_origin: Option<(u16, u32)>,
    emitted: u64,
}

impl WindowOperator {
    /// A worker of stage `stage`, one of `workers`, reading from `sources`; `snapshot` is
    /// the worker's last checkpoint, if there is one.
    ///
    /// # Errors
    /// A checkpoint that does not fit this stage (other workers or aggregations).
    pub fn new(
        stage: &str,
        config: &WindowStageConfig,
        (worker, workers): (usize, usize),
        sources: &SourceOrder,
        late_dropped: Counter,
        custom: Option<Box<dyn CustomAggregations>>,
        snapshot: Option<&[u8]>,
    ) -> Result<Self, String> {
        let having = match &config.having {
            Some(text) => Some(Condition::parse(text).map_err(|e| format!("having: {e}"))?),
            None => None,
        };
        let engine = WindowEngine::new(
            config.window.0,
            config.aggregations.0.clone(),
            i64::try_from(config.allowed_lateness.0.as_millis()).unwrap_or(i64::MAX),
        )
        .with_limits(config.max_keys, config.max_windows)
        .with_triggers(config.early_count, config.emit == EmitMode::Final);
        let engine = match custom {
            Some(custom) => engine.with_custom(custom),
            None => engine,
        };
        let mut operator = Self {
            stage: stage.to_owned(),
            engine,
            group_by: config.group_by.clone(),
            time_field: config.time_field.clone(),
            processing_time: config.processing_time,
            having,
            replay: Replay::new(sources, config.out_of_orderness.0, config.idle_timeout.0),
            refusals: Refusals {
                stage: stage.to_owned(),
                policy: config.late,
                dropped: late_dropped,
            },
            workers,
            aggregations: signatures(config),
            early_every: config.early_every.map(|d| d.0),
            last_early: Instant::now(),
            key: Vec::new(),
            results: Vec::new(),
            results_origin: sources
                .names
                .iter()
                .position(|n| n == stage)
                .map(|i| (i as u16, worker as u32)),
            emitted: 0,
        };
        if let Some(bytes) = snapshot {
            operator.restore(bytes)?;
        }
        Ok(operator)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let snapshot: StageSnapshot =
            postcard::from_bytes(bytes).map_err(|e| format!("checkpoint unreadable: {e}"))?;
        check_snapshot(
            (snapshot.version, SNAPSHOT_VERSION),
            (snapshot.workers, self.workers),
        )?;
        if snapshot.aggregations != self.aggregations {
            return Err(format!(
                "checkpoint holds the aggregations [{}] and the stage now computes [{}]: change them back, or remove the state directory to start over",
                snapshot.aggregations.join(", "),
                self.aggregations.join(", ")
            ));
        }
        self.engine.restore(&snapshot.engine)?;
        self.emitted = snapshot.emitted;
        self.replay.restore(snapshot.positions, snapshot.clocks);
        Ok(())
    }

    fn event_time(&self, event: &Event) -> Result<i64, String> {
        if self.processing_time {
            return Ok(crate::event::now_ms());
        }
        event_time(self.time_field.as_deref(), event)
    }

    /// Dead-letters an event the stage cannot place in time.
    fn malformed(&self, event: Event, why: &str, out: &mut Processed) {
        let why = format!("stage {}: {why}", self.stage);
        let reason = DeadLetterReason::Malformed;
        let dead = dead_letter_event(event, &self.stage, None, reason, &why);
        out.dead.push((reason, dead));
    }

    /// Dead-letters the events a plugin aggregation could not fold in.
    fn custom_failures(&mut self, out: &mut Processed) {
        for (mut event, why) in self.engine.take_custom_failures() {
            // Its other aggregations hold it already: delivered again, it would count twice.
            event.redelivery = None;
            let why = format!("stage {}: {why}", self.stage);
            let reason = DeadLetterReason::PluginError;
            out.dead.push((
                reason,
                dead_letter_event(event, &self.stage, None, reason, &why),
            ));
        }
    }

    /// Turns the results gathered so far into events on the main output.
    fn emit_results(&mut self, out: &mut Processed) {
        for result in self.results.drain(..) {
            let payload = encode_result(&self.group_by, self.engine.aggs(), &result);
            let origin = self.results_origin.map(|(source, partition)| Origin {
                source,
                partition,
                offset: self.emitted,
            });
            self.emitted += 1;
            if let Some(having) = &self.having
                && !having.holds(&payload)
            {
                out.dropped += 1;
                continue;
            }
            out.ports[0].push(Event {
                origin,
                ..Event::new(payload, result.end.saturating_sub(1))
            });
        }
    }
}

/// A result as a MessagePack map: the `group_by` fields, `window_start`, `window_end`,
/// each named aggregation, and `firing`.
fn encode_result(group_by: &[String], aggs: &[super::AggSpec], result: &WindowResult) -> Bytes {
    let mut entries = Vec::with_capacity(group_by.len() + aggs.len() + 3);
    for (field, value) in group_by.iter().zip(&result.key) {
        entries.push((rmpv::Value::from(field.as_str()), value.to_rmpv()));
    }
    entries.push(("window_start".into(), result.start.into()));
    entries.push(("window_end".into(), result.end.into()));
    for (agg, value) in aggs.iter().zip(&result.values) {
        entries.push((agg.name.as_str().into(), value.clone()));
    }
    entries.push(("firing".into(), result.firing.as_str().into()));
    let mut buf = Vec::with_capacity(64);
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut buf, &rmpv::Value::Map(entries));
    Bytes::from(buf)
}

impl Operator for WindowOperator {
    fn ports(&self) -> Vec<String> {
        vec![String::new(), crate::config::LATE_PORT.to_owned()]
    }

    /// A batch takes long enough (hundreds of nanoseconds an event) that the source which
    /// woke this stage should go on on another thread rather than wait behind it.
    fn blocking(&self) -> bool {
        true
    }

    fn process(&mut self, events: Vec<Event>, out: &mut Processed) {
        let now = Instant::now();
        self.replay.sync_partitions(now);
        for event in events {
            if self.replay.already_folded(event.origin) {
                continue;
            }
            let time = match self.event_time(&event) {
                Ok(time) => time,
                Err(why) => {
                    self.malformed(event, &why, out);
                    continue;
                }
            };
            self.key.clear();
            for field in &self.group_by {
                self.key.push(Scalar::lookup(&event.payload, field));
            }
            match self
                .engine
                .add_event(&self.key, time, &event, &mut self.results)
            {
                Added::Accepted => {}
                Added::Late => {
                    let why = format!(
                        "event time {time} is past the allowed lateness of every window it falls in (watermark {})",
                        self.engine.watermark()
                    );
                    self.refusals
                        .refuse(event, DeadLetterReason::Late, &why, out);
                    continue;
                }
                Added::Full(limit) => {
                    self.refusals.refuse(
                        event,
                        DeadLetterReason::StateFull,
                        &limit.to_string(),
                        out,
                    );
                    continue;
                }
                Added::OutOfRange => {
                    let why = format!(
                        "event time {time} is further than {MAX_EVENT_TIME} ms from the epoch"
                    );
                    self.malformed(event, &why, out);
                    continue;
                }
            }
            let watermark = self.replay.observe(event.origin, time, now);
            if watermark > self.engine.watermark() {
                self.engine.advance(watermark, &mut self.results);
            }
        }
        self.custom_failures(out);
        self.emit_results(out);
    }

    fn stateful(&mut self) -> Option<&mut dyn Stateful> {
        Some(self)
    }
}

impl Stateful for WindowOperator {
    fn tick(&mut self, out: &mut Processed) {
        let now = Instant::now();
        let watermark = if self.processing_time {
            // The clock is the event time: windows that ended before now are complete.
            crate::event::now_ms().saturating_sub(1)
        } else {
            self.replay.watermark(now)
        };
        if watermark > self.engine.watermark() {
            self.engine.advance(watermark, &mut self.results);
        }
        if let Some(every) = self.early_every
            && self.last_early.elapsed() >= every
        {
            self.last_early = now;
            self.engine.fire_early(&mut self.results);
        }
        self.custom_failures(out);
        self.emit_results(out);
    }

    fn end_of_input(&mut self, out: &mut Processed) {
        self.engine.close_all(&mut self.results);
        // More input may come another day (a file appended to): it is not all late.
        let watermark = self.replay.watermark(Instant::now());
        self.engine.rewind_watermark(watermark);
        self.custom_failures(out);
        self.emit_results(out);
        if self.replay.replayed > 0 {
            tracing::info!(stage = %self.stage, events = self.replay.replayed, "events read again after a restart were already in the restored state");
        }
    }

    fn flush(&mut self, out: &mut Processed) {
        // Every event folded in counts as in the state: the plugins must hold it too.
        self.engine.flush_custom();
        self.custom_failures(out);
    }

    fn snapshot(&mut self) -> Vec<u8> {
        self.engine.flush_custom();
        let (positions, clocks) = self.replay.saved();
        let snapshot = StageSnapshot {
            version: SNAPSHOT_VERSION,
            workers: self.workers as u32,
            aggregations: self.aggregations.clone(),
            engine: self.engine.snapshot(),
            positions,
            clocks,
            emitted: self.emitted,
        };
        postcard::to_allocvec(&snapshot).expect("window stage state serializes")
    }

    fn tick_every(&self) -> Duration {
        let idle = Duration::from_millis(250);
        self.early_every.map_or(idle, |e| e.min(idle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(aggregations: &str) -> WindowStageConfig {
        toml::from_str(&format!(
            "inputs = [\"in\"]\ngroup_by = [\"k\"]\nwindow = {{ tumbling = \"1s\" }}\ntime_field = \"t\"\naggregations = {aggregations}"
        ))
        .expect("config")
    }

    fn sources(ordered: bool) -> SourceOrder {
        SourceOrder {
            names: Arc::from(vec!["in".to_owned()]),
            ordered: vec![ordered],
            assignments: Arc::default(),
            feeds: vec![true],
        }
    }

    fn operator(aggregations: &str, ordered: bool, snapshot: Option<&[u8]>) -> WindowOperator {
        WindowOperator::new(
            "w",
            &config(aggregations),
            (0, 1),
            &sources(ordered),
            Counter::default(),
            None,
            snapshot,
        )
        .expect("starts")
    }

    fn event(offset: u64, t: i64) -> Event {
        let payload = crate::format::json_to_msgpack(format!(r#"{{"k":"a","t":{t}}}"#).as_bytes())
            .expect("msgpack");
        Event {
            origin: Some(Origin {
                source: 0,
                partition: 7,
                offset,
            }),
            ..Event::new(payload, t)
        }
    }

    fn run(op: &mut WindowOperator, events: Vec<Event>) -> Processed {
        let mut out = Processed::default();
        out.reset(2);
        op.process(events, &mut out);
        op.end_of_input(&mut out);
        out
    }

    fn count(out: &Processed) -> Vec<u64> {
        out.ports[0]
            .iter()
            .map(|e| {
                let v = crate::format::msgpack_to_json(&e.payload).expect("json");
                v["n"].as_u64().expect("n")
            })
            .collect()
    }

    #[test]
    fn a_restored_stage_passes_over_what_its_state_holds_when_its_source_is_in_order() {
        let n = r#"{ n = "count" }"#;
        let mut first = operator(n, true, None);
        let mut out = Processed::default();
        out.reset(2);
        first.process(vec![event(10, 100), event(20, 200)], &mut out);
        let snapshot = first.snapshot();
        // Read again from before the checkpoint: 10 and 20 are held, 30 is new.
        let replay = || vec![event(10, 100), event(20, 200), event(30, 300)];
        assert_eq!(
            count(&run(&mut operator(n, true, Some(&snapshot)), replay())),
            [3]
        );
        // Out of order: nothing can be passed over.
        assert_eq!(
            count(&run(&mut operator(n, false, Some(&snapshot)), replay())),
            [5]
        );
        // Read again within a run (a rewound source): passed over too.
        let mut again = operator(n, true, None);
        assert_eq!(
            count(&run(
                &mut again,
                vec![event(10, 100), event(20, 200), event(10, 100)]
            )),
            [2]
        );
    }

    #[test]
    fn results_carry_positions_of_their_own_that_a_restart_goes_on_from() {
        let order = SourceOrder {
            names: Arc::from(vec!["in".to_owned(), "w".to_owned()]),
            ordered: vec![true, true],
            assignments: Arc::default(),
            feeds: vec![true, true],
        };
        let start = |snapshot: Option<&[u8]>| {
            WindowOperator::new(
                "w",
                &config(r#"{ n = "count" }"#),
                (1, 2),
                &order,
                Counter::default(),
                None,
                snapshot,
            )
            .expect("starts")
        };
        let mut first = start(None);
        let mut out = Processed::default();
        out.reset(2);
        first.process(
            vec![event(1, 100), event(2, 1_100), event(3, 2_100)],
            &mut out,
        );
        let origins: Vec<_> = out.ports[0].iter().map(|e| e.origin).collect();
        let at = |offset| {
            Some(Origin {
                source: 1,
                partition: 1,
                offset,
            })
        };
        assert_eq!(origins, [at(0), at(1)]);
        let snapshot = first.snapshot();
        let mut again = start(Some(&snapshot));
        let out = run(&mut again, vec![event(4, 3_100)]);
        let origins: Vec<_> = out.ports[0].iter().map(|e| e.origin).collect();
        assert_eq!(origins, [at(2), at(3)], "numbered on from the checkpoint");
    }

    #[test]
    fn on_processing_time_windows_close_as_the_clock_passes_their_end() {
        let config: WindowStageConfig = toml::from_str(
            "inputs = [\"in\"]\ngroup_by = [\"k\"]\nwindow = { tumbling = \"100ms\" }\nprocessing_time = true\naggregations = { n = \"count\" }",
        )
        .expect("config");
        let mut op = WindowOperator::new(
            "w",
            &config,
            (0, 1),
            &sources(true),
            Counter::default(),
            None,
            None,
        )
        .expect("starts");
        let mut out = Processed::default();
        out.reset(2);
        // Their own times (and their positions) do not matter: the clock does.
        op.process(vec![event(1, 5), event(2, 5), event(3, 5)], &mut out);
        assert!(out.ports[0].is_empty());
        std::thread::sleep(Duration::from_millis(250));
        op.tick(&mut out);
        assert_eq!(count(&out).iter().sum::<u64>(), 3, "{:?}", count(&out));
        let now = crate::event::now_ms();
        assert!(
            out.ports[0]
                .iter()
                .all(|e| e.time < now && e.time > now - 1_000)
        );
    }

    #[test]
    fn events_at_the_latest_time_are_on_time() {
        let mut op = operator(r#"{ n = "count" }"#, true, None);
        // Two events at a window's last millisecond, one after the other: neither is late.
        let out = run(&mut op, vec![event(1, 999), event(2, 999), event(3, 1_500)]);
        assert!(out.dead.is_empty(), "{:?}", out.dead);
        assert_eq!(count(&out), [2, 1]);
    }

    #[test]
    fn a_checkpoint_of_other_aggregations_is_refused_with_both_named() {
        let mut first = operator(r#"{ n = "count" }"#, true, None);
        let snapshot = first.snapshot();
        let error = WindowOperator::new(
            "w",
            &config(r#"{ n = { sum = "t" } }"#),
            (0, 1),
            &sources(true),
            Counter::default(),
            None,
            Some(&snapshot),
        )
        .err()
        .expect("refused");
        assert!(
            error.contains("n=Count()") && error.contains("n=Sum(t)"),
            "{error}"
        );
    }
}
