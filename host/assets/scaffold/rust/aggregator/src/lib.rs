//! {{name}}: counts the events of a window and sums their numeric field `field` (default
//! `amount`).
//!
//! The result is `{"count": n, "sum": s}`. Events without a numeric field still count.

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::{Aggregator, Config, Error, Event, export_aggregator};

struct {{class}} {
    field: String,
}

/// The accumulator the host keeps per key and window, and checkpoints. Fields are stored by
/// name, so a later version of the plugin can add one (with `#[serde(default)]`) and still
/// read the accumulators of this one.
#[derive(Serialize, Deserialize, Default)]
struct Acc {
    count: u64,
    sum: f64,
}

/// What a window emits.
#[derive(Serialize)]
struct Summary {
    count: u64,
    sum: f64,
}

impl Aggregator for {{class}} {
    type Acc = Acc;
    type Output = Summary;

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            field: config.opt_str("field")?.unwrap_or("amount").to_owned(),
        })
    }

    fn create(&self) -> Acc {
        Acc::default()
    }

    fn add(&self, acc: &mut Acc, event: &Event<'_>) -> Result<(), Error> {
        // Read before changing `acc`: an event that fails must leave it as it was.
        let amount = event.field(&self.field)?.and_then(|v| v.as_f64());
        acc.count += 1;
        acc.sum += amount.unwrap_or(0.0);
        Ok(())
    }

    // Session windows and panes combine accumulators: merging must give what adding all the
    // events into one accumulator would have.
    fn merge(&self, acc: &mut Acc, other: Acc) {
        acc.count += other.count;
        acc.sum += other.sum;
    }

    fn finish(&self, acc: &Acc) -> Summary {
        Summary {
            count: acc.count,
            sum: acc.sum,
        }
    }
}

export_aggregator!({{class}});
