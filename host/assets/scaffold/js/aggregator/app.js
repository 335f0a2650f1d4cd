// @ts-check
/**
 * {{name}}: counts the events of a window and sums their numeric field `field` (default
 * `amount`).
 *
 * The result is `{"count": n, "sum": s}`. Events without a numeric field still count.
 */

import { exportAggregator, f64 } from "./sdk/weir-plugin.js";

/**
 * @typedef {object} Acc
 * @property {number} count
 * @property {number} sum
 */

class {{class}} {
  /** @param {import("./sdk/weir-plugin.js").Config} config */
  constructor(config) {
    this.field = config.optStr("field") ?? "amount";
  }

  /**
   * The accumulator the host keeps per key and window, and checkpoints. It is stored as a
   * MessagePack map by field name, so a later version of the plugin can add a field (and
   * default it when missing) and still read the accumulators of this one.
   * @returns {Acc}
   */
  create() {
    return { count: 0, sum: 0 };
  }

  /**
   * @param {Acc} acc
   * @param {import("./sdk/weir-plugin.js").Event} event
   */
  add(acc, event) {
    // Read before changing `acc`: a payload that is not a map throws here, and a failed
    // event must leave the accumulator as it was.
    const amount = event.field(this.field);
    acc.count += 1;
    if (typeof amount === "number") acc.sum += amount;
  }

  // Session windows and panes combine accumulators: merging must give what adding all the
  // events into one accumulator would have.
  /**
   * @param {Acc} acc
   * @param {Acc} other
   */
  merge(acc, other) {
    acc.count += other.count;
    acc.sum += other.sum;
  }

  /** @param {Acc} acc */
  finish(acc) {
    // JavaScript numbers do not say int or float: f64 keeps `sum` a float even when whole.
    return { count: acc.count, sum: f64(acc.sum) };
  }
}

// componentize-js looks for the exported interface under this name.
export const windowedAggregator = exportAggregator({{class}});
