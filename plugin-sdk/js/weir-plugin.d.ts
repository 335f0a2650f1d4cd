/**
 * Types of the Weir plugin SDK for JavaScript (`weir-plugin.js`).
 *
 * A plugin written in TypeScript imports the SDK as `./sdk/weir-plugin.js` (the compiler finds
 * these declarations beside it), is compiled to an ES module (`tsc --target es2022 --module
 * es2022`), and the JavaScript is built into a component with componentize-js.
 *
 * ```ts
 * import { Config, Emit, Event, exportHandler } from "./sdk/weir-plugin.js";
 *
 * class Threshold {
 *   field: string;
 *   min: number;
 *   constructor(config: Config) {
 *     this.field = config.str("field");
 *     this.min = config.f64("min");
 *   }
 *   handle(event: Event, out: Emit): void {
 *     const value = event.field(this.field);
 *     if (typeof value === "number" && value > this.min) out.keep();
 *   }
 * }
 *
 * export const eventHandler = exportHandler(Threshold);
 * ```
 */

/** The contract's error codes. */
export type ErrorCode = "invalid-config" | "invalid-input" | "unsupported-state" | "internal";

/**
 * An error reported to the host with a contract error code. Throw a subclass to choose the
 * code; any other thrown value is reported as `internal` ("TypeError: message").
 */
export class PluginError extends Error {
  constructor(message: string, code?: ErrorCode);
  /** The contract's error code. */
  code: ErrorCode;
}

/** The configuration is missing a key or has a bad value (`invalid-config`). */
export class InvalidConfig extends PluginError {
  constructor(message: string);
}

/** An input event cannot be handled: bad encoding, wrong type (`invalid-input`). */
export class InvalidInput extends PluginError {
  constructor(message: string);
}

/** Held state was written by an incompatible version (`unsupported-state`). */
export class UnsupportedState extends PluginError {
  constructor(message: string);
}

// ---------------------------------------------------------------------------------------------
// MessagePack
// ---------------------------------------------------------------------------------------------

/** A value as `decode` returns it. */
export type Value =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | Ext
  | Value[]
  | { [key: string]: Value };

/** A number always written as a MessagePack float64, even when integral. */
export class Float64 {
  constructor(value: number);
  /** The number. */
  readonly value: number;
}

/**
 * Marks `value` to be written as a MessagePack float64 even when it is integral (`1.0` stays a
 * float, where a plain `1` is written as the integer 1). `null` and `undefined` pass through.
 */
export function f64(value: number): Float64;
export function f64(value: null): null;
export function f64(value: undefined): undefined;
export function f64(value: number | null | undefined): Float64 | null | undefined;

/** Bytes that are already MessagePack, embedded as they are when encoding. */
export class Raw {
  constructor(bytes: Uint8Array);
  /** The encoded value. */
  readonly bytes: Uint8Array;
}

/** Marks already encoded MessagePack bytes (one complete value) to be embedded unchanged. */
export function raw(bytes: Uint8Array): Raw;

/** A MessagePack extension value: a type code and its bytes. */
export class Ext {
  constructor(type: number, data: Uint8Array);
  /** The extension type, -128..127. */
  readonly type: number;
  /** Its payload. */
  readonly data: Uint8Array;
}

/**
 * Encodes a value as MessagePack: null and undefined as nil, integral numbers in the smallest
 * integer form (negative zero and numbers beyond 64 bits as floats), other numbers and `f64`
 * values as float64, bigints as 64-bit integers, strings, typed arrays as binary, arrays,
 * `Map`s and plain objects as maps (keys in insertion order), `Raw` as is.
 * @throws TypeError for values with no MessagePack form (functions, symbols)
 */
export function encode(value: unknown): Uint8Array;

/**
 * Decodes one MessagePack value that fills `bytes` exactly. Maps become plain objects,
 * binaries `Uint8Array`s, nil `null`, integers numbers (beyond 2^53 rounded).
 * @throws InvalidInput naming what is wrong with the bytes
 */
export function decode(bytes: Uint8Array): Value;

/**
 * The items of the MessagePack array `bytes`, each as the slice of its encoded bytes, or `null`
 * when `bytes` holds something other than an array.
 * @throws InvalidInput when an item is malformed
 */
export function arrayItems(bytes: Uint8Array): Uint8Array[] | null;

/** The MessagePack codec, as one object. */
export const msgpack: {
  encode: typeof encode;
  decode: typeof decode;
  f64: typeof f64;
  raw: typeof raw;
  arrayItems: typeof arrayItems;
  Float64: typeof Float64;
  Raw: typeof Raw;
  Ext: typeof Ext;
};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/**
 * A plugin's configuration: the JSON object of the stage's `config` table, with accessors
 * whose errors (`InvalidConfig`) name the key and say what is expected.
 */
export class Config {
  constructor(values?: Record<string, unknown>);
  /** Parses the JSON text the host passes to `init` (empty text is an empty object). */
  static parse(text: string): Config;
  /** The parsed JSON object. */
  readonly values: Record<string, unknown>;
  /** The raw value of `key`, or `undefined`. */
  get(key: string): unknown;
  /** A required string. */
  str(key: string): string;
  /** An optional string: `undefined` when absent or null. */
  optStr(key: string): string | undefined;
  /** A required number; a string holding a number is accepted (command lines pass text). */
  f64(key: string): number;
  /** An optional number: `undefined` when absent or null. */
  optF64(key: string): number | undefined;
  /** An optional whole number of zero or more. */
  optU64(key: string): number | undefined;
  /**
   * The text of the number at `key` as the configuration wrote it (`"60000"`, `"1e3"`), for a
   * plugin that tells integers from floats; `undefined` when not a number or not known.
   */
  numberText(key: string): string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Events and outputs
// ---------------------------------------------------------------------------------------------

/**
 * One input event. The SDK hands the same object to every call of a batch, moved to the event
 * at hand: read what you need during the call, do not keep the object itself.
 */
export class Event {
  /** Position of the event in its batch. */
  readonly index: number;
  /** The payload bytes (MessagePack by convention). */
  readonly payload: Uint8Array;
  /**
   * The whole payload decoded; decoded once per event.
   * @throws InvalidInput when the payload is not valid MessagePack
   */
  readonly value: Value;
  /** Event time in milliseconds since the Unix epoch. */
  readonly time: number;
  /** The key, or `null` when the event has none (an empty key is an empty array). */
  readonly key: Uint8Array | null;
  /** The key decoded as UTF-8, or `null`. */
  readonly keyString: string | null;
  /** The headers as `[name, value]` pairs, in order. */
  readonly headers: [string, Uint8Array][];
  /**
   * The payload field at a dotted path (`amount`, `user.id`), found without decoding the rest
   * of the payload; `undefined` when a key is missing or a step is not a map.
   * @throws InvalidInput when the payload is not a MessagePack map
   */
  field(path: string): Value | undefined;
  /**
   * The encoded bytes of the field at a dotted path, or `undefined` when it is missing.
   * @throws InvalidInput when the payload is not a MessagePack map
   */
  fieldRaw(path: string): Uint8Array | undefined;
  /** The value of the first header named `name`, or `undefined`. */
  header(name: string): Uint8Array | undefined;
}

/** Attributes an output sets for itself; unset ones are inherited. */
export interface OutputAttrs {
  /** The key: a string (UTF-8), bytes, or `null` for none. */
  key?: string | Uint8Array | null;
  /** The event time, in milliseconds since the Unix epoch. */
  time?: number | bigint;
  /** The headers, replacing the inherited ones. */
  headers?: [string, string | Uint8Array][];
}

/** What a handler may do with the event in hand: keep it, emit outputs, or nothing (drop). */
export class Emit {
  /** Passes the event through unchanged (no copy of its payload). */
  keep(): void;
  /** Emits `value` encoded as MessagePack; key, time and headers are the input's. */
  emit(value: unknown, attrs?: OutputAttrs): void;
  /** Emits an already encoded payload. */
  emitBytes(payload: Uint8Array, attrs?: OutputAttrs): void;
}

/** Where a pattern emits its matches, stamped with the time of the event or timer. */
export class Matches {
  /** Emits a match encoded as MessagePack. */
  emit(value: unknown, attrs?: OutputAttrs): void;
  /** Emits an already encoded match payload. */
  emitBytes(payload: Uint8Array, attrs?: OutputAttrs): void;
}

// ---------------------------------------------------------------------------------------------
// Worlds
// ---------------------------------------------------------------------------------------------

/** A handler: `handle` keeps, emits or drops each event; a throw fails that event only. */
export interface Handler {
  handle(event: Event, out: Emit): void;
}

/**
 * An aggregate whose accumulator the host holds as bytes: it must be plain data (objects,
 * arrays, numbers, strings, booleans, null, Uint8Array) and comes back as such.
 */
export interface Aggregator<Acc> {
  /** The empty accumulator. */
  create(): Acc;
  /** Folds one event in: change `acc` in place or return the new one. A throw fails the
   * event only, so throw before changing `acc`. */
  add(acc: Acc, event: Event): Acc | void;
  /** Folds `other` into `acc`: in place, or return the result. */
  merge(acc: Acc, other: Acc): Acc | void;
  /** The window's result (a map by convention; wrap floats in `f64`). */
  finish(acc: Acc): unknown;
}

/** A matcher over one key's events, with a per-key state the host holds as bytes. */
export interface Pattern<State> {
  /** The state of a key that has seen nothing. */
  create(): State;
  /** Applies one event (in event-time order): change `state` in place or return the new one.
   * A throw fails the event only. */
  onEvent(state: State, event: Event, matches: Matches): State | void;
  /** Event time reached `now` (ms), at or past the timer. A throw fails the whole call. */
  onTimer?(state: State, now: number, matches: Matches): State | void;
  /** When the state next wants `onTimer` (ms), or null for never. */
  nextTimer?(state: State): number | null | undefined;
}

/** The `eventHandler` export of the `handler` world. */
export interface EventHandlerExport {
  init(config: string): void;
  process(batch: unknown): unknown;
}

/** The `windowedAggregator` export of the `aggregator` world. */
export interface WindowedAggregatorExport {
  init(config: string): void;
  create(): Uint8Array;
  add(accumulators: unknown, batch: unknown, targets: Uint32Array): unknown;
  merge(left: unknown, right: unknown): unknown;
  finish(accumulators: unknown): unknown;
}

/** The `patternMatcher` export of the `pattern` world. */
export interface PatternMatcherExport {
  init(config: string): void;
  create(): Uint8Array;
  process(states: unknown, batch: unknown, targets: Uint32Array): unknown;
  onTimer(states: unknown, now: bigint): unknown;
}

/** Builds the `eventHandler` export: `export const eventHandler = exportHandler(MyHandler);` */
export function exportHandler(Plugin: new (config: Config) => Handler): EventHandlerExport;

/** Builds the `windowedAggregator` export:
 * `export const windowedAggregator = exportAggregator(MyAggregate);` */
export function exportAggregator<Acc>(
  Plugin: new (config: Config) => Aggregator<Acc>,
): WindowedAggregatorExport;

/** Builds the `patternMatcher` export: `export const patternMatcher = exportPattern(MyPattern);` */
export function exportPattern<State>(
  Plugin: new (config: Config) => Pattern<State>,
): PatternMatcherExport;

// ---------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------

/** Severity of a log record. */
export type Level = "trace" | "debug" | "info" | "warn" | "error";

/** Writes a record to the host's log (rate-limited), with `fields` shown beside the message. */
export function log(level: Level, message: string, fields?: Record<string, unknown>): void;

/** Adds `delta` (default 1) to the plugin's counter `name`. */
export function counterAdd(name: string, delta?: number | bigint): void;

/** Wall-clock time in milliseconds since the Unix epoch; prefer event time for replays. */
export function nowMs(): number;
