//! Aggregations computed by `aggregator` plugins: the engine holds their accumulators as
//! opaque bytes and has them folded a batch at a time, merged and finished through this
//! interface.
//!
//! The plugin side takes a reloaded version at the next call: the accumulators live in the
//! host, so the new version goes on from the values the old one left.

use std::sync::Arc;

use crate::event::Event;
use crate::plugins::{AggregatorInstance, CallError, PluginLimits, PluginSlot};

/// The custom aggregations of one window stage worker, by their number.
pub trait CustomAggregations: Send {
    /// Folds `events[i]` into `accumulators[targets[i]]` for aggregation `agg`. An empty
    /// accumulator is a fresh one. Returns the events that could not be folded in (their
    /// index and why); their accumulators are as they were.
    fn add(
        &mut self,
        agg: u16,
        accumulators: &mut [Vec<u8>],
        events: &[Event],
        targets: &[u32],
    ) -> Vec<(usize, String)>;

    /// Folds `right` into `left` (sessions growing together).
    fn merge(&mut self, agg: u16, left: &mut Vec<u8>, right: &[u8]);

    /// The result of each accumulator (nil where the plugin fails).
    fn finish(&mut self, agg: u16, accumulators: &[Vec<u8>]) -> Vec<rmpv::Value>;
}

/// One `{ plugin = "NAME", config = {...} }` aggregation.
pub struct PluginAggregation {
    stage: String,
    slot: Arc<PluginSlot>,
    generation: u64,
    label: String,
    limits: PluginLimits,
    config: String,
    instance: AggregatorInstance,
    empty: Vec<u8>,
}

impl PluginAggregation {
    /// Starts the version serving in `slot` with `config` (JSON).
    ///
    /// # Errors
    /// The plugin's [`CallError`]: not an aggregator, a fault, or a rejected config.
    pub fn new(
        stage: &str,
        slot: Arc<PluginSlot>,
        limits: PluginLimits,
        config: String,
    ) -> Result<Self, CallError> {
        let (generation, plugin) = slot.current();
        let mut instance = AggregatorInstance::new(&plugin, limits, &config)?;
        let empty = instance.create()?;
        Ok(Self {
            stage: stage.to_owned(),
            label: format!("{}@{}", plugin.name(), plugin.version()),
            slot,
            generation,
            limits,
            config,
            instance,
            empty,
        })
    }

    /// Takes the newest version if one was published, or a fresh instance if a fault
    /// spoiled this one.
    fn ready(&mut self) {
        let reloaded = self.slot.generation() != self.generation;
        if !reloaded && !self.instance.is_poisoned() {
            return;
        }
        let (generation, plugin) = self.slot.current();
        let label = format!("{}@{}", plugin.name(), plugin.version());
        let started = AggregatorInstance::new(&plugin, self.limits, &self.config)
            .and_then(|mut instance| instance.create().map(|empty| (instance, empty)));
        match started {
            Ok((instance, empty)) => {
                if reloaded {
                    tracing::info!(stage = %self.stage, plugin = %label, "aggregator switched to the new version; its accumulators carry over");
                }
                self.instance = instance;
                self.empty = empty;
                self.label = label;
                self.generation = generation;
            }
            Err(error) => {
                // Stop trying this version; the previous instance serves while it can.
                self.generation = generation;
                tracing::error!(stage = %self.stage, plugin = %label, error = %error, "aggregator version did not start here; the previous one keeps serving");
            }
        }
    }

    fn fresh(&self, accumulators: &mut [Vec<u8>]) {
        for acc in accumulators.iter_mut().filter(|a| a.is_empty()) {
            acc.clone_from(&self.empty);
        }
    }

    fn add(
        &mut self,
        accumulators: &mut [Vec<u8>],
        events: &[Event],
        targets: &[u32],
    ) -> Vec<(usize, String)> {
        self.ready();
        self.fresh(accumulators);
        match self.instance.add(accumulators, events, targets) {
            Ok(folded) => {
                for (acc, new) in accumulators.iter_mut().zip(folded.accumulators) {
                    *acc = new;
                }
                folded
                    .failures
                    .into_iter()
                    .map(|f| (f.index, f.error.to_string()))
                    .collect()
            }
            Err(error) => {
                tracing::warn!(stage = %self.stage, plugin = %self.label, error = %error, "aggregator failed a batch; folding its events one by one to find the culprits");
                self.add_one_by_one(accumulators, events, targets)
            }
        }
    }

    /// Folds each event alone, so one bad event fails only itself.
    fn add_one_by_one(
        &mut self,
        accumulators: &mut [Vec<u8>],
        events: &[Event],
        targets: &[u32],
    ) -> Vec<(usize, String)> {
        let mut failures = Vec::new();
        for (i, (event, &target)) in events.iter().zip(targets).enumerate() {
            self.ready();
            let acc = &mut accumulators[target as usize];
            match self
                .instance
                .add(std::slice::from_ref(acc), std::slice::from_ref(event), &[0])
            {
                Ok(mut folded) => match (folded.failures.pop(), folded.accumulators.pop()) {
                    (Some(failure), _) => failures.push((i, failure.error.to_string())),
                    (None, Some(new)) => *acc = new,
                    (None, None) => failures.push((i, "no accumulator returned".into())),
                },
                Err(error) => failures.push((i, error.to_string())),
            }
        }
        failures
    }
}

/// The plugin aggregations of one stage worker, by number.
pub struct PluginAggregations(pub Vec<PluginAggregation>);

impl CustomAggregations for PluginAggregations {
    fn add(
        &mut self,
        agg: u16,
        accumulators: &mut [Vec<u8>],
        events: &[Event],
        targets: &[u32],
    ) -> Vec<(usize, String)> {
        match self.0.get_mut(agg as usize) {
            Some(a) => a.add(accumulators, events, targets),
            None => Vec::new(),
        }
    }

    fn merge(&mut self, agg: u16, left: &mut Vec<u8>, right: &[u8]) {
        let Some(a) = self.0.get_mut(agg as usize) else {
            return;
        };
        a.ready();
        if right.is_empty() {
            return;
        }
        let mut pair = [std::mem::take(left), right.to_vec()];
        a.fresh(&mut pair);
        let [l, r] = pair;
        match a
            .instance
            .merge(std::slice::from_ref(&l), std::slice::from_ref(&r))
        {
            Ok(mut merged) if merged.len() == 1 => *left = merged.remove(0),
            Ok(_) | Err(_) => {
                tracing::error!(stage = %a.stage, plugin = %a.label, "aggregator failed to merge two sessions; the later one's values are lost");
                *left = l;
            }
        }
    }

    fn finish(&mut self, agg: u16, accumulators: &[Vec<u8>]) -> Vec<rmpv::Value> {
        let nil = || vec![rmpv::Value::Nil; accumulators.len()];
        let Some(a) = self.0.get_mut(agg as usize) else {
            return nil();
        };
        a.ready();
        let mut accs = accumulators.to_vec();
        a.fresh(&mut accs);
        match a.instance.finish(&accs) {
            Ok(results) => results
                .iter()
                .map(|r| rmpv::decode::read_value(&mut r.as_ref()).unwrap_or(rmpv::Value::Nil))
                .collect(),
            Err(error) => {
                tracing::error!(stage = %a.stage, plugin = %a.label, error = %error, windows = accs.len(), "aggregator failed to finish windows; their results are nil");
                nil()
            }
        }
    }
}
