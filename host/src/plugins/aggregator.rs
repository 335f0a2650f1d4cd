//! Aggregator instances: host-held accumulators folded, merged and finished in batches.

use bytes::Bytes;

use super::bindings::aggregator::Aggregator;
use super::bindings::types::Column;
use super::columns::{BatchEncoder, check_column, column_values, pack_column};
use super::error::{CallError, CallErrorKind, Fault};
use super::handler::EventFailure;
use super::instance::{InstanceCore, check_failures, reported};
use super::kind::PluginKind;
use super::limits::PluginLimits;
use super::loader::{LoadedPlugin, WorldPre};
use crate::event::Event;

/// Accumulators after events were folded in.
#[derive(Debug, Default)]
pub struct Folded {
    /// The updated accumulators, in the order given.
    pub accumulators: Vec<Vec<u8>>,
    /// Events that could not be folded in.
    pub failures: Vec<EventFailure>,
}

/// A live aggregator instance.
pub struct AggregatorInstance {
    core: InstanceCore,
    bindings: Aggregator,
    encoder: BatchEncoder,
    empty: Option<Vec<u8>>,
}

impl AggregatorInstance {
    /// Instantiates `plugin` and runs its `init` with `config` (a JSON object).
    ///
    /// # Errors
    /// A [`CallError`] when the plugin is not an aggregator, faults while starting, or
    /// rejects the configuration.
    pub fn new(
        plugin: &LoadedPlugin,
        limits: PluginLimits,
        config: &str,
    ) -> Result<Self, CallError> {
        let (core, bindings) = InstanceCore::start(
            plugin,
            limits,
            PluginKind::Aggregator,
            config,
            |pre| match pre {
                WorldPre::Aggregator(pre) => Some(pre),
                _ => None,
            },
            |pre, store| pre.instantiate(store),
            |b: &Aggregator, store, config| {
                b.weir_plugin_windowed_aggregator().call_init(store, config)
            },
        )?;
        Ok(Self {
            core,
            bindings,
            encoder: BatchEncoder::default(),
            empty: None,
        })
    }

    /// Whether a fault has made this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.core.is_poisoned()
    }

    /// The empty accumulator (asked of the plugin once, then reused).
    ///
    /// # Errors
    /// The plugin's [`CallError`].
    pub fn create(&mut self) -> Result<Vec<u8>, CallError> {
        let api = self.bindings.weir_plugin_windowed_aggregator();
        self.core
            .empty_state(&mut self.empty, |store| api.call_create(store))
    }

    /// Folds event `i` into `accumulators[targets[i]]`.
    ///
    /// # Errors
    /// The plugin's [`CallError`] for the whole call.
    pub fn add(
        &mut self,
        accumulators: &[Vec<u8>],
        events: &[Event],
        targets: &[u32],
    ) -> Result<Folded, CallError> {
        let Self {
            core,
            bindings,
            encoder,
            ..
        } = self;
        let accs = pack(core, "add", accumulators)?;
        let batch = encoder.encode(events).map_err(|e| {
            core.error(
                "add",
                CallErrorKind::Fault(Fault::Contract {
                    reason: e.to_string(),
                }),
            )
        })?;
        let api = bindings.weir_plugin_windowed_aggregator();
        let folded = core.call("add", |store| api.call_add(store, &accs, batch, targets))?;
        if let Err(reason) = check_failures(&folded.failures, events.len()) {
            return Err(core.fault("add", Fault::Contract { reason }));
        }
        let accumulators = unpack(core, "add", &folded.accumulators, accumulators.len())?;
        let failures = folded
            .failures
            .into_iter()
            .map(|f| EventFailure {
                index: f.index as usize,
                error: core.error("add", CallErrorKind::Reported(reported(f.error))),
            })
            .collect();
        Ok(Folded {
            accumulators,
            failures,
        })
    }

    /// Merges `left[i]` with `right[i]` for every `i`.
    ///
    /// # Errors
    /// The plugin's [`CallError`].
    pub fn merge(
        &mut self,
        left: &[Vec<u8>],
        right: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, CallError> {
        let Self { core, bindings, .. } = self;
        let l = pack(core, "merge", left)?;
        let r = pack(core, "merge", right)?;
        let api = bindings.weir_plugin_windowed_aggregator();
        let merged = core.call("merge", |store| api.call_merge(store, &l, &r))?;
        unpack(core, "merge", &merged, left.len().min(right.len()))
    }

    /// The result payload (MessagePack) of each accumulator.
    ///
    /// # Errors
    /// The plugin's [`CallError`].
    pub fn finish(&mut self, accumulators: &[Vec<u8>]) -> Result<Vec<Bytes>, CallError> {
        let Self { core, bindings, .. } = self;
        let accs = pack(core, "finish", accumulators)?;
        let api = bindings.weir_plugin_windowed_aggregator();
        let results = core.call("finish", |store| api.call_finish(store, &accs))?;
        if let Err(reason) = check_column(&results, accumulators.len(), "finish results") {
            return Err(core.fault("finish", Fault::Contract { reason }));
        }
        let data = Bytes::from(results.data);
        let mut start = 0usize;
        Ok(results
            .ends
            .iter()
            .map(|&end| {
                let value = data.slice(start..end as usize);
                start = end as usize;
                value
            })
            .collect())
    }
}

/// Packs held state for a call.
pub(crate) fn pack(
    core: &InstanceCore,
    export: &'static str,
    values: &[Vec<u8>],
) -> Result<Column, CallError> {
    pack_column(values.iter().map(Vec::as_slice)).map_err(|e| {
        core.error(
            export,
            CallErrorKind::Fault(Fault::Contract {
                reason: e.to_string(),
            }),
        )
    })
}

/// Checks and splits state a call returned; `count` values are expected.
pub(crate) fn unpack(
    core: &mut InstanceCore,
    export: &'static str,
    column: &Column,
    count: usize,
) -> Result<Vec<Vec<u8>>, CallError> {
    let limit = core.limits().max_output_bytes;
    if column.data.len() > limit {
        let reason = format!(
            "returned {} bytes of state, more than the limit of {limit}",
            column.data.len()
        );
        return Err(core.fault(export, Fault::Contract { reason }));
    }
    if let Err(reason) = check_column(column, count, "returned state") {
        return Err(core.fault(export, Fault::Contract { reason }));
    }
    Ok(column_values(column).map(<[u8]>::to_vec).collect())
}
