/**
 * Aggregator: count, sum, min, max and mean of the numeric field `field` over a window.
 *
 * Config: `{"field": "amount"}`. Events whose field is missing or not a number still count
 * (in `count`) but do not change the numeric results; a payload that is not a MessagePack
 * map fails that event. The result is a map `{count, numeric, sum, min, max, mean}` where
 * min, max and mean are nil while no numeric value was seen. The floats are written as
 * float64 even when integral, as the Rust version writes its `f64` fields.
 */

import { exportAggregator, f64 } from "../../../plugin-sdk/js/weir-plugin.js";

// Rust's f64::min and f64::max: a NaN loses to a number.
const fmin = (a, b) => (a !== a ? b : b !== b ? a : Math.min(a, b));
const fmax = (a, b) => (a !== a ? b : b !== b ? a : Math.max(a, b));
// Combines two optional extremes: `pick` when both are set, else whichever is.
const both = (a, b, pick) => (a === null ? b : b === null ? a : pick(a, b));

class Stats {
  constructor(config) {
    this.field = config.str("field");
  }

  create() {
    return { count: 0, numeric: 0, sum: 0, min: null, max: null };
  }

  add(acc, event) {
    // Read the field first: a payload that is not a map throws before `acc` changes.
    const value = event.field(this.field);
    acc.count += 1;
    if (typeof value === "number") {
      acc.numeric += 1;
      acc.sum += value;
      acc.min = acc.min === null ? value : fmin(acc.min, value);
      acc.max = acc.max === null ? value : fmax(acc.max, value);
    }
  }

  merge(acc, other) {
    acc.count += other.count;
    acc.numeric += other.numeric;
    acc.sum += other.sum;
    acc.min = both(acc.min, other.min, fmin);
    acc.max = both(acc.max, other.max, fmax);
  }

  finish(acc) {
    return {
      count: acc.count,
      numeric: acc.numeric,
      sum: f64(acc.sum),
      min: f64(acc.min),
      max: f64(acc.max),
      mean: acc.numeric > 0 ? f64(acc.sum / acc.numeric) : null,
    };
  }
}

export const windowedAggregator = exportAggregator(Stats);
