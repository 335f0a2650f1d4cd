/**
 * Pattern: one event of each of the kinds in `steps`, in that order, each the next of its
 * kind after the one before (relaxed contiguity: other events in between are skipped), all
 * within `within_ms` of the first, for the same key.
 *
 * The JavaScript twin of plugins/rust/sequence. Config:
 * `{"field": "kind", "steps": ["a", "b", "c"], "within_ms": 60000}`. Every event of the
 * first kind starts a partial match; a match is `{"start": t0, "end": t}`.
 */

import { exportPattern, InvalidConfig } from "../../../plugin-sdk/js/weir-plugin.js";

// How serde shows a float: shortest digits, in exponent form from 1e16 and below 1e-5, else
// positional with ".0" for a whole number (so that it reads as a float).
function rustFloat(value) {
  if (!Number.isFinite(value)) return value > 0 ? "inf" : value < 0 ? "-inf" : "NaN";
  const abs = Math.abs(value);
  let text;
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-5)) {
    text = abs.toExponential();
  } else {
    text = String(abs);
    if (!text.includes(".")) text += ".0";
  }
  return value < 0 || Object.is(value, -0) ? `-${text}` : text;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

// How serde_json reads a number, given its text when known: an integer literal that fits
// 64 bits is an integer (a bigint here), anything else a float.
function integer(value, text) {
  if (text !== undefined) {
    if (!/^-?\d+$/.test(text)) return undefined;
    const big = BigInt(text);
    return big >= I64_MIN && big <= U64_MAX ? big : undefined;
  }
  return Number.isInteger(value) ? BigInt(value) : undefined;
}

// How serde names a JSON value it did not expect, so that configuration errors read as the
// Rust version's.
function unexpected(value, text) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "sequence";
  switch (typeof value) {
    case "string":
      return `string ${JSON.stringify(value)}`;
    case "boolean":
      return `boolean \`${value}\``;
    case "number": {
      const int = integer(value, text);
      return int !== undefined ? `integer \`${int}\`` : `floating point \`${rustFloat(value)}\``;
    }
    default:
      return "map";
  }
}

const invalid = (value, expected, text) =>
  new InvalidConfig(
    `configuration: invalid type: ${unexpected(value, text)}, expected ${expected}`,
  );

function string(value, text) {
  if (typeof value !== "string") throw invalid(value, "a string", text);
  return value;
}

function settings(config) {
  const fields = {
    field: string,
    steps(value, text) {
      if (!Array.isArray(value)) throw invalid(value, "a sequence", text);
      return value.map((step) => string(step));
    },
    within_ms(value, text) {
      const int = typeof value === "number" ? integer(value, text) : undefined;
      if (int === undefined) throw invalid(value, "i64", text);
      if (int > I64_MAX) {
        throw new InvalidConfig(`configuration: invalid value: integer \`${int}\`, expected i64`);
      }
      return Number(int);
    },
  };
  // serde reads the keys in sorted order, then reports the first missing field.
  const out = {};
  for (const key of Object.keys(config.values).sort()) {
    if (Object.hasOwn(fields, key)) {
      out[key] = fields[key](config.values[key], config.numberText(key));
    }
  }
  for (const key of Object.keys(fields)) {
    if (!Object.hasOwn(out, key)) {
      throw new InvalidConfig(`configuration: missing field \`${key}\``);
    }
  }
  return out;
}

class Sequence {
  constructor(config) {
    const s = settings(config);
    if (s.steps.length === 0 || s.within_ms <= 0) {
      throw new InvalidConfig(
        '"steps" must name at least one kind and "within_ms" be positive',
      );
    }
    this.field = s.field;
    this.steps = s.steps;
    this.within = s.within_ms;
  }

  /** Partial matches: [start time, steps matched so far], oldest first. */
  create() {
    return { partial: [] };
  }

  // Index loops rather than `for...of` or destructuring, which cost several calls per item in
  // the engine's interpreter.

  /** Drops the partial matches too old to complete by `now`. */
  expire(state, now) {
    const within = this.within;
    state.partial = state.partial.filter((partial) => partial[0] + within > now);
  }

  onEvent(state, event, matches) {
    const now = event.time;
    this.expire(state, now);
    const kind = event.field(this.field);
    if (typeof kind !== "string") return;
    const steps = this.steps;
    const found = [];
    state.partial = state.partial.filter((partial) => {
      if (steps[partial[1]] !== kind) return true;
      partial[1] += 1;
      if (partial[1] === steps.length) {
        found.push(partial[0]);
        return false;
      }
      return true;
    });
    if (steps[0] === kind) {
      if (steps.length === 1) found.push(now);
      else state.partial.push([now, 1]);
    }
    for (let i = 0; i < found.length; i++) matches.emit({ start: found[i], end: now });
  }

  onTimer(state, now) {
    this.expire(state, now);
  }

  nextTimer(state) {
    const partial = state.partial;
    let next = null;
    for (let i = 0; i < partial.length; i++) {
      const at = partial[i][0] + this.within;
      if (next === null || at < next) next = at;
    }
    return next;
  }
}

export const patternMatcher = exportPattern(Sequence);
