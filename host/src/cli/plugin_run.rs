//! `weir plugin run`: feed JSON lines through a plugin and print what it emits.
//!
//! Handlers print their outputs in input order. Aggregators fold all events of a key into
//! one accumulator and print one result per key at the end. Patterns keep state per key, fire
//! timers as event time advances (the largest time seen so far), fire the rest at the end of
//! input, and print matches.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use serde_json::{Map, Value, json};

use super::{CacheArgs, EXIT_EVENTS_FAILED, EXIT_OK, fail};
use crate::event::{Event, Header, now_ms};
use crate::format::{json_value_to_msgpack, msgpack_to_json};
use crate::plugins::{
    AggregatorInstance, CallError, LoadedPlugin, MAX_MEMORY_LIMIT_BYTES, PatternInstance,
    PluginKind, PluginLimits, StateContext, SupervisedHandler,
};

/// Arguments of `weir plugin run`.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The plugin component.
    file: PathBuf,

    /// A configuration entry; the value is read as JSON when it parses, else as a string
    /// (`min=50` is the number 50, `field=amount` the string "amount"). Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,

    /// The whole configuration as a JSON object; --config entries are applied on top.
    #[arg(long, value_name = "JSON")]
    config_json: Option<String>,

    /// File of JSON lines to read; `-` is standard input.
    #[arg(long, default_value = "-", value_name = "FILE")]
    input: String,

    /// Lines (and outputs) are envelopes: {"payload": ..., "key": "...", "time": ms,
    /// "headers": {"name": "value"}}. Without it each line is a payload and events get the
    /// current time.
    #[arg(long)]
    envelope: bool,

    /// Events per call into the plugin.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: u32,

    /// CPU time one call may take, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,

    /// Linear memory the plugin may use, in MiB.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    memory_mb: u64,

    #[command(flatten)]
    cache: CacheArgs,
}

/// Counts for the summary line.
#[derive(Default)]
pub(super) struct Tally {
    read: u64,
    out: u64,
    dropped: u64,
    failed: u64,
    call_time: Duration,
}

pub(super) fn run(args: &RunArgs) -> u8 {
    let config = match build_config(args) {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    let loader = match args.cache.loader() {
        Ok(loader) => loader,
        Err(e) => return fail(e),
    };
    let plugin = match loader.load(std::path::Path::new(&args.file)) {
        Ok(plugin) => Arc::new(plugin),
        Err(e) => return fail(e),
    };
    let limits = plugin_limits(args.timeout_ms, args.memory_mb);
    let input: Box<dyn BufRead> = if args.input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&args.input) {
            Ok(file) => Box::new(std::io::BufReader::new(file)),
            Err(e) => return fail(format!("{}: cannot read: {e}", args.input)),
        }
    };
    let mut runner = match Runner::new(&plugin, limits, &config) {
        Ok(runner) => runner,
        Err(e) => return fail(e),
    };
    let mut out = Printer {
        stdout: BufWriter::new(std::io::stdout().lock()),
        envelope: args.envelope,
    };
    let mut collected = Collected::default();
    let mut tally = Tally::default();
    let mut batch: Vec<Event> = Vec::with_capacity(args.batch_size as usize);
    let mut lines: Vec<u64> = Vec::with_capacity(args.batch_size as usize);

    for (number, line) in (1u64..).zip(input.lines()) {
        let line = match line {
            Ok(line) => line,
            Err(e) => return fail(format!("{}: read failed at line {number}: {e}", args.input)),
        };
        if line.trim().is_empty() {
            continue;
        }
        tally.read += 1;
        match parse_event(&line, args.envelope) {
            Ok(event) => {
                batch.push(event);
                lines.push(number);
            }
            Err(reason) => {
                tally.failed += 1;
                report_failure(number, "input", &reason);
            }
        }
        if batch.len() == args.batch_size as usize {
            if let Err(e) = runner
                .feed(&batch, &lines, &mut collected, &mut tally)
                .and_then(|()| out.drain(&mut collected))
            {
                return fail(e);
            }
            batch.clear();
            lines.clear();
        }
    }
    if !batch.is_empty()
        && let Err(e) = runner
            .feed(&batch, &lines, &mut collected, &mut tally)
            .and_then(|()| out.drain(&mut collected))
    {
        return fail(e);
    }
    if let Err(e) = runner
        .finish(&mut collected, &mut tally)
        .and_then(|()| out.drain(&mut collected))
    {
        return fail(e);
    }
    if let Err(e) = out.stdout.flush() {
        return fail(format!("cannot write output: {e}"));
    }

    let handled = tally.read.saturating_sub(tally.failed).max(1) as f64;
    let summary = json!({"summary": {
        "plugin": plugin.name(),
        "version": plugin.version(),
        "world": plugin.kind().world(),
        "in": tally.read,
        "out": tally.out,
        "dropped": tally.dropped,
        "failed": tally.failed,
        "ns_per_event": (tally.call_time.as_nanos() as f64 / handled).round(),
        "counters": Map::from_iter(plugin.counters().into_iter().map(|(k, v)| (k, Value::from(v)))),
    }});
    eprintln!("{summary}");
    if tally.failed > 0 {
        EXIT_EVENTS_FAILED
    } else {
        EXIT_OK
    }
}

/// The limits of one call: CPU time in milliseconds and linear memory in MiB.
pub(super) fn plugin_limits(timeout_ms: u64, memory_mb: u64) -> PluginLimits {
    PluginLimits {
        call_timeout: Duration::from_millis(timeout_ms),
        memory_bytes: usize::try_from(memory_mb << 20)
            .unwrap_or(MAX_MEMORY_LIMIT_BYTES)
            .min(MAX_MEMORY_LIMIT_BYTES),
        ..PluginLimits::default()
    }
}

fn build_config(args: &RunArgs) -> Result<String, String> {
    let mut config = match &args.config_json {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(format!("--config-json: not a JSON object: {text}")),
        },
    };
    for entry in &args.config {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!("--config {entry}: expected KEY=VALUE"));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        config.insert(key.to_owned(), value);
    }
    Ok(Value::Object(config).to_string())
}

fn parse_event(line: &str, envelope: bool) -> Result<Event, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    event_from_json(value, envelope)
}

/// An event from a payload, or from an envelope (`{"payload", "key", "time", "headers"}`).
pub(super) fn event_from_json(value: Value, envelope: bool) -> Result<Event, String> {
    if !envelope {
        return Ok(Event::new(json_value_to_msgpack(&value), now_ms()));
    }
    let Value::Object(mut map) = value else {
        return Err("an envelope must be a JSON object".into());
    };
    let payload = map.remove("payload").ok_or("envelope has no \"payload\"")?;
    let key = match map.remove("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Bytes::from(s)),
        Some(other) => return Err(format!("envelope \"key\" must be a string, not {other}")),
    };
    let time = match map.remove("time") {
        None => now_ms(),
        Some(v) => v
            .as_i64()
            .ok_or("envelope \"time\" must be whole milliseconds")?,
    };
    let headers = match map.remove("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(h)) => h
            .into_iter()
            .map(|(name, v)| match v {
                Value::String(s) => Ok(Header {
                    name,
                    value: Bytes::from(s),
                }),
                other => Err(format!("header \"{name}\" must be a string, not {other}")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("envelope \"headers\" must be an object of strings".into()),
    };
    if let Some(extra) = map.keys().next() {
        return Err(format!(
            "envelope has unknown key \"{extra}\" (expected payload, key, time, headers)"
        ));
    }
    Ok(Event {
        key,
        payload: Bytes::from(json_value_to_msgpack(&payload)),
        headers,
        time,
        redelivery: None,
        origin: None,
    })
}

fn report_failure(line: u64, kind: &str, error: &str) {
    eprintln!("{}", json!({"line": line, "kind": kind, "error": error}));
}

/// An input event the plugin failed on.
pub(super) struct Failed {
    /// The line (or, for `weir plugin test`, the index) of the input.
    pub line: u64,
    /// A short label: the error code or the kind of fault.
    pub kind: &'static str,
    /// The host's one-line message, naming the plugin, version and export.
    pub error: String,
}

/// What the plugin emitted and failed on since the last drain.
#[derive(Default)]
pub(super) struct Collected {
    /// Emitted events, in order.
    pub events: Vec<Event>,
    /// Failed inputs, in the order they were reported.
    pub failures: Vec<Failed>,
}

impl Collected {
    fn failed(&mut self, line: u64, error: &CallError) {
        let kind = match &error.kind {
            crate::plugins::CallErrorKind::Fault(fault) => fault.kind(),
            crate::plugins::CallErrorKind::Reported(reported) => reported.code.as_str(),
            crate::plugins::CallErrorKind::Poisoned => "poisoned",
            crate::plugins::CallErrorKind::NotRetried { .. } => "not_retried",
        };
        self.failures.push(Failed {
            line,
            kind,
            error: error.to_string(),
        });
    }
}

/// Writes emitted events to stdout and failures to stderr.
struct Printer<W: Write> {
    stdout: W,
    envelope: bool,
}

impl<W: Write> Printer<W> {
    fn drain(&mut self, collected: &mut Collected) -> Result<(), String> {
        for failure in collected.failures.drain(..) {
            report_failure(failure.line, failure.kind, &failure.error);
        }
        for event in collected.events.drain(..) {
            let payload =
                msgpack_to_json(&event.payload).map_err(|e| format!("plugin output: {e}"))?;
            let line = if self.envelope {
                crate::connectors::envelope_json(&event, payload)
            } else {
                payload
            };
            writeln!(self.stdout, "{line}").map_err(|e| format!("cannot write output: {e}"))?;
        }
        Ok(())
    }
}

/// Feeds events to a plugin of any world and collects what it emits.
pub(super) enum Runner {
    Handler(SupervisedHandler),
    Aggregator(AggregatorRun),
    Pattern(PatternRun),
}

impl Runner {
    /// Instantiates the plugin and calls its `init` with `config`.
    pub(super) fn new(
        plugin: &Arc<LoadedPlugin>,
        limits: PluginLimits,
        config: &str,
    ) -> Result<Self, String> {
        Ok(match plugin.kind() {
            PluginKind::Handler => Self::Handler(
                SupervisedHandler::new(plugin.clone(), limits, config.to_owned())
                    .map_err(|e| e.to_string())?,
            ),
            PluginKind::Aggregator => Self::Aggregator(AggregatorRun {
                instance: AggregatorInstance::new(plugin, limits, config)
                    .map_err(|e| e.to_string())?,
                keys: Vec::new(),
                index: HashMap::new(),
                accumulators: Vec::new(),
            }),
            PluginKind::Pattern => Self::Pattern(PatternRun {
                instance: PatternInstance::new(plugin, limits, config)
                    .map_err(|e| e.to_string())?,
                keys: Vec::new(),
                index: HashMap::new(),
                states: Vec::new(),
                timers: Vec::new(),
                watermark: i64::MIN,
            }),
        })
    }

    /// Feeds one batch; `lines[i]` is what failures of `events[i]` are reported against.
    pub(super) fn feed(
        &mut self,
        events: &[Event],
        lines: &[u64],
        out: &mut Collected,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let started = Instant::now();
        match self {
            Self::Handler(handler) => {
                let output = handler.process(events).map_err(|e| e.to_string())?;
                tally.call_time += started.elapsed();
                for failure in &output.failures {
                    tally.failed += 1;
                    out.failed(lines[failure.index], &failure.error);
                }
                tally.dropped += output.dropped as u64;
                tally.out += output.events.len() as u64;
                out.events.extend(output.events);
                Ok(())
            }
            Self::Aggregator(run) => {
                let failures = run.add(events)?;
                tally.call_time += started.elapsed();
                for (index, error) in failures {
                    tally.failed += 1;
                    out.failed(lines[index], &error);
                }
                Ok(())
            }
            Self::Pattern(run) => {
                let (matches, failures) = run.process(events)?;
                tally.call_time += started.elapsed();
                for (index, error) in failures {
                    tally.failed += 1;
                    out.failed(lines[index], &error);
                }
                tally.out += matches.len() as u64;
                out.events.extend(matches);
                Ok(())
            }
        }
    }

    /// End of input: aggregators emit one result per key, patterns fire their timers.
    pub(super) fn finish(&mut self, out: &mut Collected, tally: &mut Tally) -> Result<(), String> {
        let results = match self {
            Self::Handler(_) => return Ok(()),
            Self::Aggregator(run) => run.finish()?,
            Self::Pattern(run) => run.drain()?,
        };
        tally.out += results.len() as u64;
        out.events.extend(results);
        Ok(())
    }
}

/// Groups events by key; `None` is the group of keyless events.
fn group(
    keys: &mut Vec<Option<Bytes>>,
    index: &mut HashMap<Option<Bytes>, usize>,
    key: &Option<Bytes>,
) -> usize {
    *index.entry(key.clone()).or_insert_with(|| {
        keys.push(key.clone());
        keys.len() - 1
    })
}

/// One accumulator per key.
pub(super) struct AggregatorRun {
    instance: AggregatorInstance,
    keys: Vec<Option<Bytes>>,
    index: HashMap<Option<Bytes>, usize>,
    accumulators: Vec<Vec<u8>>,
}

impl AggregatorRun {
    fn add(&mut self, events: &[Event]) -> Result<Vec<(usize, CallError)>, String> {
        // Only the accumulators this batch touches cross the boundary.
        let mut local: HashMap<usize, u32> = HashMap::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut targets = Vec::with_capacity(events.len());
        for event in events {
            let g = group(&mut self.keys, &mut self.index, &event.key);
            if g == self.accumulators.len() {
                self.accumulators
                    .push(self.instance.create().map_err(|e| e.to_string())?);
            }
            let t = *local.entry(g).or_insert_with(|| {
                touched.push(g);
                (touched.len() - 1) as u32
            });
            targets.push(t);
        }
        let accs: Vec<Vec<u8>> = touched
            .iter()
            .map(|&g| self.accumulators[g].clone())
            .collect();
        let folded = self
            .instance
            .add(&accs, events, &targets)
            .map_err(|e| e.to_string())?;
        for (&g, acc) in touched.iter().zip(folded.accumulators) {
            self.accumulators[g] = acc;
        }
        Ok(folded
            .failures
            .into_iter()
            .map(|f| (f.index, f.error))
            .collect())
    }

    fn finish(&mut self) -> Result<Vec<Event>, String> {
        let results = self
            .instance
            .finish(&self.accumulators)
            .map_err(|e| e.to_string())?;
        Ok(results
            .into_iter()
            .zip(&self.keys)
            .map(|(payload, key)| Event {
                key: key.clone(),
                payload,
                headers: Vec::new(),
                time: now_ms(),
                redelivery: None,
                origin: None,
            })
            .collect())
    }
}

/// Bound on timer rounds at the end of input: a pattern that keeps asking for timers must
/// not keep the command running forever.
const MAX_FINAL_TIMER_ROUNDS: usize = 10_000;

/// One state per key, with its timer.
pub(super) struct PatternRun {
    instance: PatternInstance,
    keys: Vec<Option<Bytes>>,
    index: HashMap<Option<Bytes>, usize>,
    states: Vec<Vec<u8>>,
    timers: Vec<Option<i64>>,
    watermark: i64,
}

/// Failures by index of the input event.
type IndexedFailures = Vec<(usize, CallError)>;

impl PatternRun {
    fn process(&mut self, events: &[Event]) -> Result<(Vec<Event>, IndexedFailures), String> {
        let mut matches = self.fire(self.watermark)?;
        let mut local: HashMap<usize, u32> = HashMap::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut targets = Vec::with_capacity(events.len());
        let mut times: Vec<i64> = Vec::new();
        for event in events {
            let g = group(&mut self.keys, &mut self.index, &event.key);
            if g == self.states.len() {
                self.states
                    .push(self.instance.create().map_err(|e| e.to_string())?);
                self.timers.push(None);
            }
            let t = *local.entry(g).or_insert_with(|| {
                touched.push(g);
                times.push(event.time);
                (touched.len() - 1) as u32
            });
            times[t as usize] = times[t as usize].max(event.time);
            targets.push(t);
            self.watermark = self.watermark.max(event.time);
        }
        let states: Vec<Vec<u8>> = touched.iter().map(|&g| self.states[g].clone()).collect();
        let keys: Vec<Option<Bytes>> = touched.iter().map(|&g| self.keys[g].clone()).collect();
        let progress = self
            .instance
            .process(
                &states,
                &StateContext {
                    keys: &keys,
                    times: &times,
                },
                events,
                &targets,
            )
            .map_err(|e| e.to_string())?;
        for ((&g, state), timer) in touched.iter().zip(progress.states).zip(progress.timers) {
            self.states[g] = state;
            self.timers[g] = timer;
        }
        matches.extend(progress.matches.into_iter().map(|m| m.event));
        let failures = progress
            .failures
            .into_iter()
            .map(|f| (f.index, f.error))
            .collect();
        Ok((matches, failures))
    }

    /// Fires every timer at or before `now`.
    fn fire(&mut self, now: i64) -> Result<Vec<Event>, String> {
        let due: Vec<usize> = (0..self.states.len())
            .filter(|&g| self.timers[g].is_some_and(|t| t <= now))
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let states: Vec<Vec<u8>> = due.iter().map(|&g| self.states[g].clone()).collect();
        let keys: Vec<Option<Bytes>> = due.iter().map(|&g| self.keys[g].clone()).collect();
        let times = vec![now; due.len()];
        let progress = self
            .instance
            .on_timer(
                &states,
                &StateContext {
                    keys: &keys,
                    times: &times,
                },
                now,
            )
            .map_err(|e| e.to_string())?;
        for ((&g, state), timer) in due.iter().zip(progress.states).zip(progress.timers) {
            self.states[g] = state;
            self.timers[g] = timer;
        }
        Ok(progress.matches.into_iter().map(|m| m.event).collect())
    }

    /// End of input: event time runs on until no timer is left.
    fn drain(&mut self) -> Result<Vec<Event>, String> {
        let mut matches = Vec::new();
        for _ in 0..MAX_FINAL_TIMER_ROUNDS {
            let Some(next) = self.timers.iter().flatten().min().copied() else {
                break;
            };
            matches.extend(self.fire(next.max(self.watermark))?);
            self.watermark = self.watermark.max(next);
        }
        Ok(matches)
    }
}
