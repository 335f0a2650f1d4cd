//! Aggregations computed by `aggregator` plugins: the engine holds their accumulators as
//! opaque bytes and has them folded a batch at a time, merged and finished through this
//! interface.
//!
//! The plugin side takes a reloaded version at the next call: the accumulators live in the
//! host, so the new version goes on from the values the old one left. A new version that
//! reports it cannot read them (`unsupported-state`) is handled as the stage's
//! `state_upgrade` says: the old version keeps serving, or the unreadable accumulators
//! start over.

use std::sync::Arc;

use crate::config::StateUpgrade;
use crate::event::Event;
use crate::plugins::{
    AggregatorInstance, CallError, HeldStatePlugin, PluginSlot, PluginUser, unreadable_state,
};

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
pub struct PluginAggregation(HeldStatePlugin<AggregatorInstance>);

impl PluginAggregation {
    /// Starts the release serving in `slot` for `user` (its stage, config and limits); `upgrade` says what to
    /// do when a later version cannot read this one's accumulators.
    ///
    /// # Errors
    /// The plugin's [`CallError`]: not an aggregator, a fault, or a rejected config.
    pub fn new(
        slot: Arc<PluginSlot>,
        user: PluginUser,
        upgrade: StateUpgrade,
    ) -> Result<Self, CallError> {
        HeldStatePlugin::new(slot, user, upgrade).map(Self)
    }

    /// The new version cannot read the state: goes back to the previous version, or
    /// empties what it cannot read, as configured. Returns whether to try again.
    fn upgrade_failed(&mut self, accumulators: &mut [Vec<u8>]) -> bool {
        match self.0.upgrade {
            StateUpgrade::KeepOldVersion => self.0.keep_old_version(),
            StateUpgrade::Reset => {
                let plugin = &mut self.0;
                let mut reset = 0;
                for acc in accumulators.iter_mut().filter(|a| !a.is_empty()) {
                    let probe = plugin.current.instance.finish(std::slice::from_ref(acc));
                    if probe.is_err_and(|e| unreadable_state(&e)) {
                        acc.clone_from(&plugin.current.empty);
                        reset += 1;
                    }
                }
                if reset > 0 {
                    tracing::warn!(stage = %plugin.stage, plugin = %plugin.current.label, accumulators = reset, "the aggregator cannot read these accumulators; they start over empty (state_upgrade = reset)");
                }
                reset > 0
            }
        }
    }

    fn add(
        &mut self,
        accumulators: &mut [Vec<u8>],
        events: &[Event],
        targets: &[u32],
    ) -> Vec<(usize, String)> {
        self.0.ready();
        let mut upgraded = false;
        loop {
            self.0.fresh(accumulators);
            match self.0.current.instance.add(accumulators, events, targets) {
                Ok(folded) => {
                    for (acc, new) in accumulators.iter_mut().zip(folded.accumulators) {
                        *acc = new;
                    }
                    return folded
                        .failures
                        .into_iter()
                        .map(|f| (f.index, f.error.to_string()))
                        .collect();
                }
                Err(error) if unreadable_state(&error) => {
                    // One upgrade a call: a plugin that cannot read even fresh state fails.
                    if std::mem::replace(&mut upgraded, true) || !self.upgrade_failed(accumulators)
                    {
                        return self.add_one_by_one(accumulators, events, targets);
                    }
                }
                Err(error) => {
                    tracing::warn!(stage = %self.0.stage, plugin = %self.0.current.label, error = %error, "aggregator failed a batch; folding its events one by one to find the culprits");
                    return self.add_one_by_one(accumulators, events, targets);
                }
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
            self.0.ready();
            let acc = &mut accumulators[target as usize];
            match self.0.current.instance.add(
                std::slice::from_ref(acc),
                std::slice::from_ref(event),
                &[0],
            ) {
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

    fn merge(&mut self, left: &mut Vec<u8>, right: &[u8]) {
        self.0.ready();
        if right.is_empty() {
            return;
        }
        let mut pair = [std::mem::take(left), right.to_vec()];
        let mut upgraded = false;
        loop {
            self.0.fresh(&mut pair);
            let [l, r] = &pair;
            match self
                .0
                .current
                .instance
                .merge(std::slice::from_ref(l), std::slice::from_ref(r))
            {
                Ok(mut merged) if merged.len() == 1 => {
                    *left = merged.remove(0);
                    return;
                }
                Err(error)
                    if unreadable_state(&error)
                        && !std::mem::replace(&mut upgraded, true)
                        && self.upgrade_failed(&mut pair) => {}
                Ok(_) | Err(_) => {
                    tracing::error!(stage = %self.0.stage, plugin = %self.0.current.label, "aggregator failed to merge two sessions; the later one's values are lost");
                    let [l, _] = pair;
                    *left = l;
                    return;
                }
            }
        }
    }

    fn finish(&mut self, accumulators: &[Vec<u8>]) -> Vec<rmpv::Value> {
        self.0.ready();
        let mut accs = accumulators.to_vec();
        let mut upgraded = false;
        loop {
            self.0.fresh(&mut accs);
            match self.0.current.instance.finish(&accs) {
                Ok(results) => {
                    return results
                        .iter()
                        .map(|r| {
                            rmpv::decode::read_value(&mut r.as_ref()).unwrap_or(rmpv::Value::Nil)
                        })
                        .collect();
                }
                Err(error)
                    if unreadable_state(&error)
                        && !std::mem::replace(&mut upgraded, true)
                        && self.upgrade_failed(&mut accs) => {}
                Err(error) => {
                    tracing::error!(stage = %self.0.stage, plugin = %self.0.current.label, error = %error, windows = accs.len(), "aggregator failed to finish windows; their results are nil");
                    return vec![rmpv::Value::Nil; accs.len()];
                }
            }
        }
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
        if let Some(a) = self.0.get_mut(agg as usize) {
            a.merge(left, right);
        }
    }

    fn finish(&mut self, agg: u16, accumulators: &[Vec<u8>]) -> Vec<rmpv::Value> {
        match self.0.get_mut(agg as usize) {
            Some(a) => a.finish(accumulators),
            None => vec![rmpv::Value::Nil; accumulators.len()],
        }
    }
}
