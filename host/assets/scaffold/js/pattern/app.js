// @ts-check
/**
 * {{name}}: for each key, an event with `kind == "start"` followed by one with
 * `kind == "end"` less than `within_ms` (default 60000) later emits
 * `{"start": t0, "end": t1}`. A newer start replaces a pending one.
 */

import { exportPattern, InvalidConfig } from "./sdk/weir-plugin.js";

/**
 * The state the host keeps per key, and checkpoints: the time of the pending start.
 * @typedef {object} State
 * @property {number | null} pending
 */

class {{class}} {
  /** @param {import("./sdk/weir-plugin.js").Config} config */
  constructor(config) {
    this.withinMs = config.optU64("within_ms") ?? 60000;
    if (this.withinMs <= 0) throw new InvalidConfig('"within_ms" must be a positive number');
  }

  /** @returns {State} */
  create() {
    return { pending: null };
  }

  // Events of one key arrive in event-time order, so a start this old can never match.
  /**
   * @param {State} state
   * @param {number} now
   */
  expire(state, now) {
    if (state.pending !== null && state.pending + this.withinMs <= now) state.pending = null;
  }

  /**
   * @param {State} state
   * @param {import("./sdk/weir-plugin.js").Event} event
   * @param {import("./sdk/weir-plugin.js").Matches} matches
   */
  onEvent(state, event, matches) {
    const now = event.time;
    this.expire(state, now);
    const kind = event.field("kind");
    if (kind === "start") {
      state.pending = now;
    } else if (kind === "end" && state.pending !== null) {
      matches.emit({ start: state.pending, end: now });
      state.pending = null;
    }
  }

  /**
   * @param {State} state
   * @param {number} now
   */
  onTimer(state, now) {
    this.expire(state, now);
  }

  // The host calls `onTimer` when event time reaches this, so a key whose start never ends
  // does not hold its state forever.
  /** @param {State} state */
  nextTimer(state) {
    return state.pending === null ? null : state.pending + this.withinMs;
  }
}

// componentize-js looks for the exported interface under this name.
export const patternMatcher = exportPattern({{class}});
