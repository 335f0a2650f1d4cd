//! Checks a parsed pipeline as a whole: names, inputs, cycles, plugins, conditions and
//! settings that only make sense together. Every problem is reported, not just the first.

use std::collections::{BTreeMap, BTreeSet};

use super::kafka::{KafkaSinkConfig, KafkaSourceConfig};
use super::load::{ConfigError, LoadedConfig};
use super::model::{OverloadPolicy, PipelineConfig, SinkConfig, SourceConfig, StageConfig};
use super::nats::{JetStreamSourceConfig, NatsAuth};
use super::window::{EmitMode, LatePolicy, WindowStageConfig};
use crate::expr::Condition;
use crate::operators::window::WindowKind;
use crate::plugins::PluginKind;

/// Most workers one stage may have; more would only contend for 2–16 cores.
pub const MAX_PARALLELISM: usize = 64;

/// Route output taken by events no route condition holds for.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Output of a window stage taken by late events when its `late` policy is `output`.
pub const LATE_PORT: &str = "late";

/// What validation needs to know of plugins: the kind of each, by name.
pub trait PluginCatalog {
    /// The kind of plugin `name`, or why it cannot be used (not found, does not load).
    ///
    /// # Errors
    /// A message for the user, e.g. `no plugin "x" in plugins/ (have: a, b)`.
    fn kind(&mut self, name: &str) -> Result<PluginKind, String>;
}

impl LoadedConfig {
    /// Checks the whole pipeline.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every problem, each with its line and key.
    pub fn validate(&self, plugins: &mut dyn PluginCatalog) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: String, message: String| problems.push(self.problem(&key, message));
        let c = &self.config;
        check_names(c, &mut problem);
        check_flow(c, &mut problem);
        check_feed(c, &mut problem);
        let outputs = outputs(c);
        check_inputs(c, &outputs, &mut problem);
        check_cycles(c, &mut problem);
        check_stages(c, plugins, &mut problem);
        check_sinks(c, &mut problem);
        check_sources(c, &mut problem);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.error(problems))
        }
    }
}

type Report<'a> = dyn FnMut(String, String) + 'a;

fn check_names(c: &PipelineConfig, problem: &mut Report<'_>) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let all = c
        .sources
        .keys()
        .map(|n| ("sources", n))
        .chain(c.stages.keys().map(|n| ("stages", n)))
        .chain(c.sinks.keys().map(|n| ("sinks", n)));
    for (table, name) in all {
        if name.is_empty() || name.contains('.') || name.contains(char::is_whitespace) {
            problem(
                format!("{table}.{name}"),
                "names may not be empty or hold `.` or spaces (`.` separates a route's outputs)"
                    .into(),
            );
        }
        if let Some(other) = seen.insert(name, table) {
            problem(
                format!("{table}.{name}"),
                format!(
                    "the name {name:?} is also used in [{other}]: give each component its own name"
                ),
            );
        }
    }
    if c.sources.is_empty() {
        problem(
            "sources".into(),
            "the pipeline has no source: add a [sources.NAME] table".into(),
        );
    }
    if c.sinks.is_empty() {
        problem(
            "sinks".into(),
            "the pipeline has no sink: add a [sinks.NAME] table".into(),
        );
    }
}

fn check_flow(c: &PipelineConfig, problem: &mut Report<'_>) {
    if c.flow.batch_size == 0 || c.flow.batch_size > 65_536 {
        problem(
            "flow.batch_size".into(),
            "must be from 1 to 65536 (256–1024 is fastest)".into(),
        );
    }
    if c.flow.channel_capacity == 0 {
        problem("flow.channel_capacity".into(), "must be at least 1".into());
    }
    if c.plugins.memory_mb == 0 || c.plugins.memory_mb > 4096 {
        problem("plugins.memory_mb".into(), "must be from 1 to 4096".into());
    }
    if c.state.stage_checkpoint_interval.0.is_zero() || c.state.checkpoint_interval.0.is_zero() {
        problem(
            "state".into(),
            "checkpoint_interval and stage_checkpoint_interval must be more than zero".into(),
        );
    }
    if c.plugins.timeout.0.is_zero() {
        problem(
            "plugins.timeout".into(),
            "must be more than zero, e.g. \"100ms\"".into(),
        );
    }
}

/// Every name a stage or sink may read from: sources, stages, and route outputs.
fn outputs(c: &PipelineConfig) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = c.sources.keys().cloned().collect();
    for (name, stage) in &c.stages {
        match stage {
            StageConfig::Route(r) => {
                for route in r.routes.keys() {
                    names.insert(format!("{name}.{route}"));
                }
                names.insert(format!("{name}.{UNMATCHED_ROUTE}"));
            }
            StageConfig::Window(w) => {
                names.insert(name.clone());
                if w.late == LatePolicy::Output {
                    names.insert(format!("{name}.{LATE_PORT}"));
                }
            }
            StageConfig::Pattern(p) => {
                names.insert(name.clone());
                if p.late == LatePolicy::Output {
                    names.insert(format!("{name}.{LATE_PORT}"));
                }
                if p.timeouts {
                    names.insert(format!("{name}.timeout"));
                }
            }
            _ => {
                names.insert(name.clone());
            }
        }
    }
    names
}

fn check_inputs(c: &PipelineConfig, outputs: &BTreeSet<String>, problem: &mut Report<'_>) {
    let dead_letter = c.dead_letter.as_ref().map(|d| d.sink.as_str());
    let readers = c
        .stages
        .iter()
        .map(|(n, s)| ("stages", n, s.inputs()))
        .chain(c.sinks.iter().map(|(n, s)| ("sinks", n, s.inputs())));
    let mut read = BTreeSet::new();
    for (table, name, inputs) in readers {
        if inputs.is_empty() && !(table == "sinks" && Some(name.as_str()) == dead_letter) {
            problem(
                format!("{table}.{name}.inputs"),
                "lists no input: name the sources or stages it reads from".into(),
            );
        }
        for input in inputs {
            read.insert(input.as_str());
            if !outputs.contains(input) {
                let have: Vec<&str> = outputs.iter().map(String::as_str).collect();
                let hint = if c.stages.contains_key(input) {
                    format!(
                        " ({input} is a route: read one of its outputs, like {input}.{UNMATCHED_ROUTE})"
                    )
                } else {
                    String::new()
                };
                problem(
                    format!("{table}.{name}.inputs"),
                    format!(
                        "no source or stage named {input:?}{hint} (have: {})",
                        have.join(", ")
                    ),
                );
            }
        }
    }
    for name in c.sources.keys().chain(c.stages.keys()) {
        let feeds = read.contains(name.as_str())
            || read.iter().any(|r| {
                r.strip_prefix(name.as_str())
                    .is_some_and(|p| p.starts_with('.'))
            });
        if !feeds {
            let table = if c.sources.contains_key(name) {
                "sources"
            } else {
                "stages"
            };
            problem(
                format!("{table}.{name}"),
                format!("{name} feeds nothing: add it to the inputs of a stage or sink"),
            );
        }
    }
    if let Some(sink) = dead_letter
        && !c.sinks.contains_key(sink)
    {
        let have: Vec<&str> = c.sinks.keys().map(String::as_str).collect();
        problem(
            "dead_letter.sink".into(),
            format!("no sink named {sink:?} (have: {})", have.join(", ")),
        );
    }
}

fn check_cycles(c: &PipelineConfig, problem: &mut Report<'_>) {
    // Depth-first search over stages; a stage met again while on the path closes a cycle.
    fn visit<'a>(
        c: &'a PipelineConfig,
        name: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(name) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == name) {
            let mut cycle: Vec<&str> = path[at..].to_vec();
            cycle.push(name);
            cycles.push(cycle.join(" -> "));
            return;
        }
        let Some(stage) = c.stages.get(name) else {
            return;
        };
        path.push(name);
        for input in stage.inputs() {
            let upstream = input.split('.').next().unwrap_or(input);
            visit(c, upstream, path, done, cycles);
        }
        path.pop();
        done.insert(name);
    }
    let mut done = BTreeSet::new();
    for name in c.stages.keys() {
        let mut cycles = Vec::new();
        visit(c, name, &mut Vec::new(), &mut done, &mut cycles);
        for cycle in cycles {
            problem(
                format!("stages.{name}.inputs"),
                format!("inputs form a cycle ({cycle}): a stage cannot read its own output"),
            );
        }
    }
}

fn check_stages(c: &PipelineConfig, plugins: &mut dyn PluginCatalog, problem: &mut Report<'_>) {
    for (name, stage) in &c.stages {
        let key = |field: &str| format!("stages.{name}.{field}");
        if stage.parallelism() == 0 || stage.parallelism() > MAX_PARALLELISM {
            problem(
                key("parallelism"),
                format!("must be from 1 to {MAX_PARALLELISM}"),
            );
        }
        if let Some(dedup) = stage.dedup()
            && dedup.window == 0
        {
            problem(key("dedup.window"), "must be at least 1".into());
        }
        match stage {
            StageConfig::Handler(h)
                if h.breaker.failures == 0 || h.breaker.cool_down.0.is_zero() =>
            {
                problem(
                    key("breaker"),
                    "failures must be at least 1 and cool_down more than zero".into(),
                );
            }
            StageConfig::Handler(h) => match plugins.kind(&h.plugin) {
                Ok(PluginKind::Handler) => {}
                Ok(other) => problem(
                    key("plugin"),
                    format!(
                        "plugin {:?} is of the {other} world, not handler: a handler stage needs a handler plugin",
                        h.plugin
                    ),
                ),
                Err(message) => problem(key("plugin"), message),
            },
            StageConfig::Filter(f) => {
                if let Err(e) = Condition::parse(&f.condition) {
                    problem(key("condition"), format!("{:?}: {e}", f.condition));
                }
            }
            StageConfig::Pattern(p) => {
                match (&p.pattern, p.steps.is_empty()) {
                    (Some(m), true) => match plugins.kind(&m.plugin) {
                        Ok(PluginKind::Pattern) => {}
                        Ok(other) => problem(
                            key("pattern.plugin"),
                            format!("plugin {:?} is of the {other} world, not pattern", m.plugin),
                        ),
                        Err(message) => problem(key("pattern.plugin"), message),
                    },
                    (Some(_), false) => problem(
                        key("steps"),
                        "give `steps` or a `pattern` plugin, not both".into(),
                    ),
                    (None, true) => problem(
                        key("steps"),
                        "a pattern stage needs `steps` (the declared pattern) or `pattern = { plugin = \"NAME\" }`".into(),
                    ),
                    (None, false) => {
                        if let Err(problems) = crate::operators::pattern::spec::Pattern::compile(p) {
                            for (at, message) in problems {
                                problem(key(&at), message);
                            }
                        }
                    }
                }
                if p.pattern.is_some() && (p.within.is_some() || p.timeouts) {
                    problem(
                        key("within"),
                        "`within` and `timeouts` belong to a declared pattern (`steps`); a plugin keeps its own timers".into(),
                    );
                }
                if p.max_keys == 0 {
                    problem(key("max_keys"), "must be at least 1".into());
                }
            }
            StageConfig::Window(w) => {
                check_window(w, &key, problem);
                for (source, _) in c
                    .sources
                    .iter()
                    .filter(|(_, s)| matches!(s, SourceConfig::Kafka(k) if k.exactly_once))
                {
                    if c.feeds(source, name) {
                        problem(
                            key("inputs"),
                            format!(
                                "source {source:?} is exactly_once, and a window stage's state does not yet take part in its transactions: read it without exactly_once"
                            ),
                        );
                    }
                }
                for (agg, custom) in w.aggregations.0.iter().filter_map(|a| match a.kind {
                    crate::operators::window::AggKind::Custom(n) => {
                        w.aggregations.1.get(n as usize).map(|c| (a, c))
                    }
                    _ => None,
                }) {
                    let at = key(&format!("aggregations.{}.plugin", agg.name));
                    match plugins.kind(&custom.plugin) {
                        Ok(PluginKind::Aggregator) => {}
                        Ok(other) => problem(
                            at,
                            format!(
                                "plugin {:?} is of the {other} world, not aggregator",
                                custom.plugin
                            ),
                        ),
                        Err(message) => problem(at, message),
                    }
                }
            }
            StageConfig::Route(r) => {
                if r.routes.is_empty() {
                    problem(
                        key("routes"),
                        "has no route: add `NAME = \"CONDITION\"`".into(),
                    );
                }
                for (route, condition) in &r.routes {
                    if route == UNMATCHED_ROUTE {
                        problem(
                            key(&format!("routes.{route}")),
                            format!(
                                "{UNMATCHED_ROUTE:?} is the route of events no condition holds for: pick another name"
                            ),
                        );
                    }
                    match condition.as_str() {
                        Some(text) => {
                            if let Err(e) = Condition::parse(text) {
                                problem(key(&format!("routes.{route}")), format!("{text:?}: {e}"));
                            }
                        }
                        None => problem(
                            key(&format!("routes.{route}")),
                            "must be a condition in a string, like \"amount > 50\"".into(),
                        ),
                    }
                }
            }
        }
    }
}

fn check_window(w: &WindowStageConfig, key: &dyn Fn(&str) -> String, problem: &mut Report<'_>) {
    if let Some(having) = &w.having
        && let Err(e) = Condition::parse(having)
    {
        problem(key("having"), format!("{having:?}: {e}"));
    }
    if w.max_keys == 0 || w.max_windows == 0 {
        problem(
            key("max_keys"),
            "max_keys and max_windows must be at least 1".into(),
        );
    }
    if w.group_by.iter().any(String::is_empty) {
        problem(key("group_by"), "holds an empty field name".into());
    }
    let early = w.early_every.is_some() || w.early_count.is_some();
    if w.emit == EmitMode::Final && early {
        problem(
            key("emit"),
            "final emits each window once, when it closes: remove early_every and early_count, or emit updates".into(),
        );
    }
    if w.early_every.is_some_and(|d| d.0.is_zero()) {
        problem(
            key("early_every"),
            "must be more than zero, e.g. \"10s\"".into(),
        );
    }
    if w.processing_time && w.time_field.is_some() {
        problem(
            key("processing_time"),
            "windows on processing time take no time_field: remove one of the two".into(),
        );
    }
    if w.early_count == Some(0) {
        problem(key("early_count"), "must be at least 1".into());
    }
    match w.window.0 {
        WindowKind::Global if !early => problem(
            key("window"),
            "a global window fires only by its triggers (and at the end of a finite input): set early_count or early_every".into(),
        ),
        WindowKind::Count { .. } if w.early_count.is_some() => problem(
            key("early_count"),
            "a count window fires by its count already: use { global = true } with early_count for a running result every N events".into(),
        ),
        _ => {}
    }
}

fn check_sinks(c: &PipelineConfig, problem: &mut Report<'_>) {
    for (name, sink) in &c.sinks {
        let overload = sink.overload();
        let key = format!("sinks.{name}.overload");
        match (overload.policy, overload.sample_rate) {
            (OverloadPolicy::Sample, None | Some(0 | 1)) => problem(
                format!("{key}.sample_rate"),
                "policy \"sample\" needs sample_rate of 2 or more (keep 1 in N)".into(),
            ),
            (OverloadPolicy::Sample, _) | (_, None) => {}
            (_, Some(_)) => problem(
                format!("{key}.sample_rate"),
                format!(
                    "is only used with policy = \"sample\" (policy is {:?})",
                    overload.policy
                ),
            ),
        }
        if let SinkConfig::Http(h) = sink
            && !h.url.starts_with("http://")
        {
            problem(
                format!("sinks.{name}.url"),
                format!("{:?} is not an http:// URL", h.url),
            );
        }
        if let SinkConfig::Kafka(k) = sink {
            check_kafka_sink(c, name, k, problem);
        }
        let nats = match sink {
            SinkConfig::Nats(n) => Some((&n.servers, &n.auth, &n.subject)),
            SinkConfig::Jetstream(j) => Some((&j.servers, &j.auth, &j.subject)),
            _ => None,
        };
        if let Some((servers, auth, subject)) = nats {
            let key = format!("sinks.{name}");
            check_nats_connection(&key, servers, auth, problem);
            if let Err(e) = crate::connectors::nats::SubjectTemplate::parse(subject) {
                problem(format!("{key}.subject"), e);
            }
        }
        if let SinkConfig::Jetstream(j) = sink
            && j.max_in_flight == 0
        {
            problem(
                format!("sinks.{name}.max_in_flight"),
                "must be at least 1".into(),
            );
        }
        if let SinkConfig::File(f) = sink
            && f.rotate_bytes == Some(0)
        {
            problem(
                format!("sinks.{name}.rotate_bytes"),
                "must be more than zero".into(),
            );
        }
    }
}

fn check_feed(c: &PipelineConfig, problem: &mut Report<'_>) {
    let feed = &c.server.feed;
    let mut bad = |key: &str, message: &str| {
        problem(format!("server.feed.{key}"), message.to_owned());
    };
    if feed.require_token && c.server.admin_token.is_none() {
        bad(
            "require_token",
            "the feed would take any token: set [server] admin_token (the token it asks for)",
        );
    }
    if feed.heartbeat.0 < std::time::Duration::from_millis(100) {
        bad("heartbeat", "must be at least 100ms");
    }
    if feed.stall_timeout.0 < std::time::Duration::from_secs(1) {
        bad("stall_timeout", "must be at least 1s");
    }
    if feed.history == 0 {
        bad("history", "must keep at least one event");
    }
    if !(feed.requests_per_second > 0.0 && feed.requests_per_second.is_finite()) {
        bad("requests_per_second", "must be a number above zero");
    }
    if !(feed.request_burst >= 1.0 && feed.request_burst.is_finite()) {
        bad(
            "request_burst",
            "must be at least 1, or every request is refused",
        );
    }
}

fn check_sources(c: &PipelineConfig, problem: &mut Report<'_>) {
    for (name, source) in &c.sources {
        if matches!(source, SourceConfig::Http(_)) && !c.server.enabled {
            problem(
                format!("sources.{name}"),
                "an http source is served by the HTTP side: set [server] enabled = true".into(),
            );
        }
        if let SourceConfig::Kafka(k) = source {
            check_kafka_source(c, name, k, problem);
        }
        if let SourceConfig::Nats(n) = source {
            let key = format!("sources.{name}");
            check_nats_connection(&key, &n.servers, &n.auth, problem);
            if n.subjects.is_empty() || n.subjects.iter().any(|s| s.trim().is_empty()) {
                problem(
                    format!("{key}.subjects"),
                    "needs at least one subject, none empty".into(),
                );
            }
        }
        if let SourceConfig::Jetstream(j) = source {
            check_jetstream_source(name, j, problem);
        }
        if let SourceConfig::Generator(g) = source {
            if let Some(rate) = g.rate
                && !(rate > 0.0 && rate.is_finite())
            {
                problem(
                    format!("sources.{name}.rate"),
                    "must be a number of events per second above zero; leave it out for as fast as possible"
                        .into(),
                );
            }
            if let Err(e) = crate::connectors::GeneratorTemplate::new(g) {
                problem(format!("sources.{name}.template"), e);
            }
        }
    }
}

fn check_nats_connection(key: &str, servers: &str, auth: &NatsAuth, problem: &mut Report<'_>) {
    let bad: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| s.parse::<async_nats::ServerAddr>().is_err())
        .collect();
    if servers.trim().is_empty() || !bad.is_empty() {
        problem(
            format!("{key}.servers"),
            format!("{servers:?} is not a comma-separated list of nats://host:port URLs"),
        );
    }
    let ways = [
        auth.token.is_some(),
        auth.user.is_some() || auth.password.is_some(),
        auth.creds_file.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        problem(
            format!("{key}.auth"),
            "set one of token, user and password, or creds_file".into(),
        );
    }
    if auth.user.is_some() != auth.password.is_some() {
        problem(
            format!("{key}.auth"),
            "user and password go together".into(),
        );
    }
}

fn check_jetstream_source(name: &str, j: &JetStreamSourceConfig, problem: &mut Report<'_>) {
    let key = format!("sources.{name}");
    check_nats_connection(&key, &j.servers, &j.auth, problem);
    let token_ok = |s: &str| !s.is_empty() && !s.contains(['.', '*', '>', ' ', '\t']);
    if !token_ok(&j.stream) {
        problem(
            format!("{key}.stream"),
            format!(
                "{:?} is not a stream name (no dots, wildcards or spaces)",
                j.stream
            ),
        );
    }
    if !token_ok(&j.consumer) {
        problem(
            format!("{key}.consumer"),
            format!(
                "{:?} is not a consumer name (no dots, wildcards or spaces)",
                j.consumer
            ),
        );
    }
    if j.max_deliver < 1 {
        problem(
            format!("{key}.max_deliver"),
            "must be at least 1: after that many deliveries a message is dead-lettered".into(),
        );
    }
    if j.max_ack_pending < 1 {
        problem(
            format!("{key}.max_ack_pending"),
            "must be at least 1".into(),
        );
    }
    if j.ack_wait.0 < std::time::Duration::from_secs(1) {
        problem(format!("{key}.ack_wait"), "must be at least 1s".into());
    }
    if j.fetch.max_messages == Some(0) {
        problem(
            format!("{key}.fetch.max_messages"),
            "must be at least 1".into(),
        );
    }
    if let Some(s) = &j.create_stream
        && s.subjects.is_empty()
    {
        problem(
            format!("{key}.create_stream.subjects"),
            "a stream needs at least one subject".into(),
        );
    }
}

fn check_kafka_source(
    c: &PipelineConfig,
    name: &str,
    k: &KafkaSourceConfig,
    problem: &mut Report<'_>,
) {
    let key = |field: &str| format!("sources.{name}.{field}");
    if k.topics.is_empty() || k.topics.iter().any(String::is_empty) {
        problem(
            key("topics"),
            "needs at least one topic name (a name starting with ^ is a regular expression)".into(),
        );
    }
    if k.group.is_empty() {
        problem(key("group"), "needs a consumer group id".into());
    }
    if let Err(e) =
        crate::connectors::kafka::check(&crate::connectors::kafka::consumer_config(name, k))
    {
        problem(key("options"), e);
    }
    if !k.exactly_once {
        return;
    }
    let others = c
        .sources
        .iter()
        .filter(|(n, s)| *n != name && matches!(s, SourceConfig::Kafka(o) if o.exactly_once))
        .count();
    if others > 0 {
        problem(
            key("exactly_once"),
            "only one source of a pipeline may be exactly_once (run one pipeline per stream)"
                .into(),
        );
    }
    let transactional: Vec<(&String, &KafkaSinkConfig)> = c
        .sinks
        .iter()
        .filter_map(|(n, s)| match s {
            SinkConfig::Kafka(k) if k.transactional_id.is_some() => Some((n, k)),
            _ => None,
        })
        .collect();
    match transactional.as_slice() {
        [(_, sink)] if sink.brokers != k.brokers => problem(
            key("exactly_once"),
            format!(
                "the transactional sink writes to {:?} but this source reads {:?}: exactly-once needs one Kafka cluster",
                sink.brokers, k.brokers
            ),
        ),
        [_] => {}
        [] => problem(
            key("exactly_once"),
            "needs a kafka sink with transactional_id (unique per instance, stable across restarts)"
                .into(),
        ),
        _ => problem(
            key("exactly_once"),
            "more than one kafka sink has a transactional_id; exactly-once supports one".into(),
        ),
    }
}

fn check_kafka_sink(c: &PipelineConfig, name: &str, k: &KafkaSinkConfig, problem: &mut Report<'_>) {
    let key = |field: &str| format!("sinks.{name}.{field}");
    if k.topic.is_empty() {
        problem(key("topic"), "needs a topic name".into());
    }
    if k.max_in_flight == 0 {
        problem(key("max_in_flight"), "must be 1 or more".into());
    }
    if let Err(e) =
        crate::connectors::kafka::check(&crate::connectors::kafka::producer_config(name, k))
    {
        problem(key("options"), e);
    }
    let exactly_once_source = c
        .sources
        .values()
        .any(|s| matches!(s, SourceConfig::Kafka(k) if k.exactly_once));
    if k.transactional_id.is_some() && !exactly_once_source {
        problem(
            key("transactional_id"),
            "is for exactly-once: set exactly_once = true on the kafka source that feeds it".into(),
        );
    }
    if c.dead_letter.as_ref().is_some_and(|d| d.sink == name) && k.transactional_id.is_some() {
        problem(
            key("transactional_id"),
            "the dead-letter sink cannot be the transactional sink".into(),
        );
    }
}
