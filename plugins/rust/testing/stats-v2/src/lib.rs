//! Aggregator: the `stats` example's results plus `"version": 2`, over an accumulator with a
//! field the first version never wrote, so state written by the first version does not
//! decode (the SDK reports `unsupported-state`).
//!
//! Config: `{"field": "amount"}`.

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::{Aggregator, Config, Error, Event, export_aggregator};

struct Stats {
    field: String,
}

/// The accumulator; `format` has no default on purpose.
#[derive(Serialize, Deserialize)]
struct Acc {
    format: u32,
    count: u64,
    numeric: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Serialize)]
struct Summary {
    version: u32,
    count: u64,
    numeric: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
}

impl Aggregator for Stats {
    type Acc = Acc;
    type Output = Summary;

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            field: config.str("field")?.to_owned(),
        })
    }

    fn create(&self) -> Acc {
        Acc {
            format: 2,
            count: 0,
            numeric: 0,
            sum: 0.0,
            min: None,
            max: None,
        }
    }

    fn add(&self, acc: &mut Acc, event: &Event<'_>) -> Result<(), Error> {
        let value = event.field(&self.field)?.and_then(|v| v.as_f64());
        acc.count += 1;
        if let Some(v) = value {
            acc.numeric += 1;
            acc.sum += v;
            acc.min = Some(acc.min.map_or(v, |m| m.min(v)));
            acc.max = Some(acc.max.map_or(v, |m| m.max(v)));
        }
        Ok(())
    }

    fn merge(&self, acc: &mut Acc, other: Acc) {
        acc.count += other.count;
        acc.numeric += other.numeric;
        acc.sum += other.sum;
        acc.min = match (acc.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        acc.max = match (acc.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn finish(&self, acc: &Acc) -> Summary {
        Summary {
            version: 2,
            count: acc.count,
            numeric: acc.numeric,
            sum: acc.sum,
            min: acc.min,
            max: acc.max,
            mean: (acc.numeric > 0).then(|| acc.sum / acc.numeric as f64),
        }
    }
}

export_aggregator!(Stats);
