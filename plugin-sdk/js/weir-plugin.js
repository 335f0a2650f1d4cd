/**
 * Write Weir plugins in JavaScript (or TypeScript compiled to JavaScript).
 *
 * A plugin is a WebAssembly component implementing one world of the `weir:plugin` contract
 * (`wit/worlds.wit`), built from one ES module with componentize-js. With this module an
 * author writes a small class and exports it under the name the world expects:
 *
 * - `handler` world: export `eventHandler = exportHandler(Class)`; the class has `handle`.
 * - `aggregator` world: export `windowedAggregator = exportAggregator(Class)`; the class has
 *   `create`, `add`, `merge` and `finish`.
 * - `pattern` world: export `patternMatcher = exportPattern(Class)`; the class has `create`,
 *   `onEvent`, and optionally `onTimer` and `nextTimer`.
 *
 * ```js
 * import { exportHandler } from "./sdk/weir-plugin.js";
 *
 * class Threshold {
 *   constructor(config) {
 *     this.field = config.str("field");
 *     this.min = config.f64("min");
 *   }
 *   handle(event, out) {
 *     const value = event.field(this.field);
 *     if (typeof value === "number" && value > this.min) out.keep();
 *   }
 * }
 *
 * export const eventHandler = exportHandler(Threshold);
 * ```
 *
 * The host hands over events in batches of packed columns; the SDK loops over them, gives
 * the author one `Event` at a time, builds the packed outcomes, and turns an error thrown for
 * one event into a failure of that event only (the host dead-letters it with the message).
 *
 * Payloads are MessagePack. JavaScript has one number type, so an integral number is written
 * as a MessagePack integer; wrap a value in `f64(x)` where the reader expects a float (as
 * Rust's `f64` fields are always written as float64).
 *
 * Build from the directory that holds both the plugin and this module (the engine's module
 * loader sees only the working directory), leaving out the WASI features the host does not
 * offer or a plugin should not use:
 *
 *     componentize-js app.js --wit wit --world-name handler \
 *         --disable http fetch-event random clocks -o plugin.wasm
 *
 * The code runs in an interpreter, where each operation and call costs tens of nanoseconds:
 * on a hot path prefer `event.field(path)` to `event.value`, and index loops to `for...of`.
 *
 * @module weir-plugin
 */

import {
  counterAdd as hostCounterAdd,
  log as hostLog,
  nowMs as hostNowMs,
} from "weir:plugin/host@0.1.0";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * An error reported to the host with a contract error code. Throw one of the subclasses
 * from a plugin to choose the code; any other thrown value is reported as `internal` with
 * its class name and message ("TypeError: x is undefined").
 */
export class PluginError extends Error {
  /**
   * @param {string} message One line for the operator, naming the field or key at fault.
   * @param {string} [code] One of "invalid-config", "invalid-input", "unsupported-state",
   *   "internal".
   */
  constructor(message, code = "internal") {
    super(message);
    this.name = "PluginError";
    /** The contract's error code. */
    this.code = code;
  }
}

/** The configuration is missing a key or has a bad value (code `invalid-config`). */
export class InvalidConfig extends PluginError {
  /** @param {string} message */
  constructor(message) {
    super(message, "invalid-config");
    this.name = "InvalidConfig";
  }
}

/** An input event cannot be handled: bad encoding, wrong type (code `invalid-input`). */
export class InvalidInput extends PluginError {
  /** @param {string} message */
  constructor(message) {
    super(message, "invalid-input");
    this.name = "InvalidInput";
  }
}

/** Held state was written by an incompatible version (code `unsupported-state`). */
export class UnsupportedState extends PluginError {
  /** @param {string} message */
  constructor(message) {
    super(message, "unsupported-state");
    this.name = "UnsupportedState";
  }
}

const CODES = ["invalid-config", "invalid-input", "unsupported-state", "internal"];

/** The contract's error record for a thrown value. */
function toError(thrown, fallbackCode = "internal") {
  if (thrown instanceof PluginError) {
    const code = CODES.includes(thrown.code) ? thrown.code : "internal";
    return { code, message: String(thrown.message) };
  }
  if (thrown !== null && typeof thrown === "object" && typeof thrown.message === "string") {
    return { code: fallbackCode, message: `${thrown.name}: ${thrown.message}` };
  }
  return { code: fallbackCode, message: `uncaught exception: ${String(thrown)}` };
}

/**
 * What an export throws to return the contract's `error`: the bindings take the `payload` of
 * a thrown object as the error value (a plain return is the `ok` value).
 */
const errorValue = (thrown, code) => ({ payload: toError(thrown, code) });

// ---------------------------------------------------------------------------------------------
// Growable typed arrays: the bindings copy typed arrays into the host's memory in one go,
// where a plain array is converted element by element. Capacities are kept in plain
// properties: a typed array's `length` is a getter, several times slower to read in the
// interpreter the engine runs.
// ---------------------------------------------------------------------------------------------

class Bytes {
  constructor(size = 1024) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.cap = size;
    this.len = 0;
  }

  /** Makes room for `n` more bytes. */
  reserve(n) {
    const need = this.len + n;
    if (need > this.cap) {
      let size = this.cap * 2;
      while (size < need) size *= 2;
      const buf = new Uint8Array(size);
      buf.set(this.buf.subarray(0, this.len));
      this.buf = buf;
      this.view = new DataView(buf.buffer);
      this.cap = size;
    }
  }

  append(bytes) {
    const n = bytes.length;
    if (this.len + n > this.cap) this.reserve(n);
    this.buf.set(bytes, this.len);
    this.len += n;
  }

  used() {
    return this.buf.subarray(0, this.len);
  }
}

class U32s {
  constructor(size = 256) {
    this.arr = new Uint32Array(size);
    this.cap = size;
    this.len = 0;
  }

  push(v) {
    if (this.len === this.cap) {
      const arr = new Uint32Array(this.cap * 2);
      arr.set(this.arr);
      this.arr = arr;
      this.cap *= 2;
    }
    this.arr[this.len++] = v;
  }

  used() {
    return this.arr.subarray(0, this.len);
  }
}

const EMPTY_U8 = new Uint8Array(0);

const isArrayBuffer = (v) => Object.prototype.toString.call(v) === "[object ArrayBuffer]";

/**
 * A view of this realm over the bytes of any typed array: the bindings hand over arrays made
 * in their own realm, which fail `instanceof Uint8Array` in the plugin's.
 */
function asBytes(v) {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_I64 = new BigInt64Array(0);
const emptyColumn = () => ({ data: EMPTY_U8, ends: EMPTY_U32 });

/** A column of byte strings from an array of Uint8Array. */
function packColumn(values) {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i].length;
  const data = new Uint8Array(total);
  const ends = new Uint32Array(values.length);
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    data.set(values[i], at);
    at += values[i].length;
    ends[i] = at;
  }
  return { data, ends };
}

/** Value `i` of a column. */
function columnValue(column, i) {
  const ends = column.ends;
  return column.data.subarray(i === 0 ? 0 : ends[i - 1], ends[i]);
}

// ---------------------------------------------------------------------------------------------
// MessagePack
// ---------------------------------------------------------------------------------------------

const UTF8 = new TextDecoder();
const UTF8_OUT = new TextEncoder();

/** A number always written as a MessagePack float64, even when integral. */
export class Float64 {
  /** @param {number} value */
  constructor(value) {
    /** The number. */
    this.value = +value;
  }
}

/**
 * Marks `value` to be written as a MessagePack float64 even when it is integral (`1.0`
 * stays a float, where a plain `1` is written as the integer 1). `null` and `undefined`
 * pass through (written as nil).
 * @param {number | null | undefined} value
 */
export function f64(value) {
  return value === null || value === undefined ? value : new Float64(value);
}

/** Bytes that are already MessagePack, embedded as they are when encoding. */
export class Raw {
  /** @param {Uint8Array} bytes One complete MessagePack value. */
  constructor(bytes) {
    /** The encoded value. */
    this.bytes = bytes;
  }
}

/**
 * Marks already encoded MessagePack bytes to be embedded unchanged.
 * @param {Uint8Array} bytes
 */
export function raw(bytes) {
  return new Raw(bytes);
}

/** A MessagePack extension value: a type code and its bytes. */
export class Ext {
  /**
   * @param {number} type
   * @param {Uint8Array} data
   */
  constructor(type, data) {
    /** The extension type, -128..127. */
    this.type = type;
    /** Its payload. */
    this.data = data;
  }
}

const TRUNCATED = "payload is truncated MessagePack";
const RESERVED = "payload is not valid MessagePack (reserved byte 0xc1)";
const NOT_A_MAP = "payload is not a MessagePack map";

// Decoding works on module-level cursors: returning a position alongside a value would cost
// an allocation per value.
let D = EMPTY_U8; // the bytes being read
let DV = new DataView(new ArrayBuffer(8)); // a view over D's buffer
let DVBuf = null; // the buffer DV is over
let P = 0; // the position after the last value read
let E = 0; // the end of the readable bytes

function setInput(data, start, end) {
  D = data;
  if (DVBuf !== data.buffer) {
    DVBuf = data.buffer;
    DV = new DataView(DVBuf);
  }
  P = start;
  E = end;
  return data.byteOffset;
}

function truncated() {
  return new InvalidInput(TRUNCATED);
}

/** Big-endian unsigned integer of `n` (1, 2 or 4) bytes at `p`. */
function be(p, n) {
  if (p + n > E) throw truncated();
  if (n === 1) return D[p];
  if (n === 2) return (D[p] << 8) | D[p + 1];
  return ((D[p] << 24) | (D[p + 1] << 16) | (D[p + 2] << 8) | D[p + 3]) >>> 0;
}

/** 64-bit integer at `p` as the nearest number (one rounding, like Rust's `as f64`). */
function int64(p, signed) {
  if (p + 8 > E) throw truncated();
  const o = D.byteOffset;
  const hi = signed ? DV.getInt32(o + p) : DV.getUint32(o + p);
  return hi * 4294967296 + DV.getUint32(o + p + 4);
}

// Children of the last container header read by `step`.
let CHILDREN = 0;

/**
 * Reads the header of the value at `p` (and the body of a scalar, string or binary) and
 * returns the position after it; sets CHILDREN to the number of values a container holds.
 */
function step(p) {
  if (p >= E) throw truncated();
  const m = D[p];
  CHILDREN = 0;
  if (m < 0x80 || m >= 0xe0) return p + 1;
  if (m <= 0x8f) {
    CHILDREN = 2 * (m & 0x0f);
    return p + 1;
  }
  if (m <= 0x9f) {
    CHILDREN = m & 0x0f;
    return p + 1;
  }
  let n;
  if (m <= 0xbf) {
    n = p + 1 + (m & 0x1f);
  } else {
    switch (m) {
      case 0xc0:
      case 0xc2:
      case 0xc3:
        return p + 1;
      case 0xc1:
        throw new InvalidInput(RESERVED);
      case 0xc4:
      case 0xd9:
        n = p + 2 + be(p + 1, 1);
        break;
      case 0xc5:
      case 0xda:
        n = p + 3 + be(p + 1, 2);
        break;
      case 0xc6:
      case 0xdb:
        n = p + 5 + be(p + 1, 4);
        break;
      case 0xc7:
        n = p + 3 + be(p + 1, 1);
        break;
      case 0xc8:
        n = p + 4 + be(p + 1, 2);
        break;
      case 0xc9:
        n = p + 6 + be(p + 1, 4);
        break;
      case 0xca:
      case 0xce:
      case 0xd2:
        n = p + 5;
        break;
      case 0xcb:
      case 0xcf:
      case 0xd3:
        n = p + 9;
        break;
      case 0xcc:
      case 0xd0:
        n = p + 2;
        break;
      case 0xcd:
      case 0xd1:
        n = p + 3;
        break;
      case 0xd4:
        n = p + 3;
        break;
      case 0xd5:
        n = p + 4;
        break;
      case 0xd6:
        n = p + 6;
        break;
      case 0xd7:
        n = p + 10;
        break;
      case 0xd8:
        n = p + 18;
        break;
      case 0xdc:
        CHILDREN = be(p + 1, 2);
        return p + 3;
      case 0xdd:
        CHILDREN = be(p + 1, 4);
        return p + 5;
      case 0xde:
        CHILDREN = 2 * be(p + 1, 2);
        return p + 3;
      default: // 0xdf
        CHILDREN = 2 * be(p + 1, 4);
        return p + 5;
    }
  }
  if (n > E) throw truncated();
  return n;
}

/** The position after the whole value at `p`, containers included. */
function skip(p) {
  let pending = 1;
  while (pending > 0) {
    // Values whose marker tells their length (scalars, short strings) without a call.
    const n = p < E ? SIZE[D[p]] : 0;
    if (n !== 0) {
      p += n;
      if (p > E) throw truncated();
      pending--;
    } else {
      p = step(p);
      pending += CHILDREN - 1;
    }
  }
  return p;
}

function str(p, len) {
  // Short ASCII strings, nearly all keys and many values, are built without TextDecoder.
  if (len <= 16) {
    let s = "";
    for (let i = p; i < p + len; i++) {
      const b = D[i];
      if (b >= 0x80) return UTF8.decode(D.subarray(p, p + len));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return UTF8.decode(D.subarray(p, p + len));
}

function mapKey(key) {
  return typeof key === "string" ? key : String(key);
}

/** Decodes the value at `p`; leaves P after it. */
function decodeAt(p) {
  if (p >= E) throw truncated();
  const m = D[p];
  if (m < 0x80) {
    P = p + 1;
    return m;
  }
  if (m >= 0xe0) {
    P = p + 1;
    return m - 0x100;
  }
  if (m <= 0x8f) return decodeMap(p + 1, m & 0x0f);
  if (m <= 0x9f) return decodeArray(p + 1, m & 0x0f);
  if (m <= 0xbf) return decodeStr(p + 1, m & 0x1f);
  const o = D.byteOffset;
  switch (m) {
    case 0xc0:
      P = p + 1;
      return null;
    case 0xc1:
      throw new InvalidInput(RESERVED);
    case 0xc2:
      P = p + 1;
      return false;
    case 0xc3:
      P = p + 1;
      return true;
    case 0xc4:
      return decodeBin(p + 2, be(p + 1, 1));
    case 0xc5:
      return decodeBin(p + 3, be(p + 1, 2));
    case 0xc6:
      return decodeBin(p + 5, be(p + 1, 4));
    case 0xc7:
      return decodeExt(p + 2, be(p + 1, 1));
    case 0xc8:
      return decodeExt(p + 3, be(p + 1, 2));
    case 0xc9:
      return decodeExt(p + 5, be(p + 1, 4));
    case 0xca:
      if (p + 5 > E) throw truncated();
      P = p + 5;
      return DV.getFloat32(o + p + 1);
    case 0xcb:
      if (p + 9 > E) throw truncated();
      P = p + 9;
      return DV.getFloat64(o + p + 1);
    case 0xcc:
      P = p + 2;
      return be(p + 1, 1);
    case 0xcd:
      P = p + 3;
      return be(p + 1, 2);
    case 0xce:
      P = p + 5;
      return be(p + 1, 4);
    case 0xcf:
      P = p + 9;
      return int64(p + 1, false);
    case 0xd0:
      P = p + 2;
      return (be(p + 1, 1) << 24) >> 24;
    case 0xd1:
      P = p + 3;
      return (be(p + 1, 2) << 16) >> 16;
    case 0xd2:
      P = p + 5;
      return be(p + 1, 4) | 0;
    case 0xd3:
      P = p + 9;
      return int64(p + 1, true);
    case 0xd4:
      return decodeExt(p + 1, 1);
    case 0xd5:
      return decodeExt(p + 1, 2);
    case 0xd6:
      return decodeExt(p + 1, 4);
    case 0xd7:
      return decodeExt(p + 1, 8);
    case 0xd8:
      return decodeExt(p + 1, 16);
    case 0xd9:
      return decodeStr(p + 2, be(p + 1, 1));
    case 0xda:
      return decodeStr(p + 3, be(p + 1, 2));
    case 0xdb:
      return decodeStr(p + 5, be(p + 1, 4));
    case 0xdc:
      return decodeArray(p + 3, be(p + 1, 2));
    case 0xdd:
      return decodeArray(p + 5, be(p + 1, 4));
    case 0xde:
      return decodeMap(p + 3, be(p + 1, 2));
    default: // 0xdf
      return decodeMap(p + 5, be(p + 1, 4));
  }
}

function decodeStr(p, len) {
  if (p + len > E) throw truncated();
  P = p + len;
  return str(p, len);
}

function decodeBin(p, len) {
  if (p + len > E) throw truncated();
  P = p + len;
  return new Uint8Array(D.subarray(p, p + len));
}

function decodeExt(p, len) {
  if (p + 1 + len > E) throw truncated();
  P = p + 1 + len;
  return new Ext((D[p] << 24) >> 24, new Uint8Array(D.subarray(p + 1, p + 1 + len)));
}

function decodeArray(p, len) {
  // Do not trust a length for preallocation: a hostile header could claim 4 billion items.
  const out = [];
  for (let i = 0; i < len; i++) {
    out.push(decodeAt(p));
    p = P;
  }
  P = p;
  return out;
}

function decodeMap(p, len) {
  const out = {};
  for (let i = 0; i < len; i++) {
    const key = mapKey(decodeAt(p));
    const value = decodeAt(P);
    p = P;
    if (key === "__proto__") {
      const property = { value, enumerable: true, writable: true, configurable: true };
      Object.defineProperty(out, key, property);
    } else {
      out[key] = value;
    }
  }
  P = p;
  return out;
}

/**
 * Decodes one MessagePack value that fills `bytes` exactly. Maps become plain objects
 * (non-string keys are turned into strings), binaries and extension data `Uint8Array`s,
 * nil `null`, integers numbers (those beyond 2^53 rounded to the nearest number).
 * @param {Uint8Array} bytes
 * @returns {any}
 * @throws {InvalidInput} naming what is wrong with the bytes
 */
export function decode(bytes) {
  setInput(bytes, 0, bytes.length);
  const value = decodeAt(0);
  if (P !== bytes.length) {
    throw new InvalidInput(
      `payload is not valid MessagePack: ${bytes.length - P} bytes after the value`,
    );
  }
  return value;
}

// The encoded length of the values whose length the marker alone tells (scalars, short
// strings, fixed extensions); 0 for the others. One table read replaces a chain of tests.
const SIZE = new Uint8Array(256);
for (let m = 0; m < 256; m++) {
  if (m < 0x80 || m >= 0xe0 || m === 0xc0 || m === 0xc2 || m === 0xc3) SIZE[m] = 1;
  else if (m >= 0xa0 && m <= 0xbf) SIZE[m] = 1 + (m & 0x1f);
}
for (const [m, n] of [
  [0xcc, 2], [0xd0, 2], [0xcd, 3], [0xd1, 3], [0xca, 5], [0xce, 5], [0xd2, 5],
  [0xcb, 9], [0xcf, 9], [0xd3, 9], [0xd4, 3], [0xd5, 4], [0xd6, 6], [0xd7, 10], [0xd8, 18],
]) {
  SIZE[m] = n;
}

/** The MessagePack string header of a UTF-8 key of `n` bytes, in its shortest form. */
function strHeaderBytes(n) {
  if (n <= 31) return [0xa0 | n];
  if (n <= 0xff) return [0xd9, n];
  if (n <= 0xffff) return [0xda, n >>> 8, n & 0xff];
  return [0xdb, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

// Paths are split once. Each segment keeps its UTF-8 bytes and its whole encoded key (header
// included), which most payloads' keys are compared against: the header first (it holds the
// length), then the bytes as 32-bit words, where one word costs what one byte does.
const PATHS = new Map();

function compileSegment(text) {
  const bytes = UTF8_OUT.encode(text);
  const key = new Uint8Array([...strHeaderBytes(bytes.length), ...bytes]);
  const view = new DataView(key.buffer);
  const long = key.length >= 5;
  // Key headers to look at before skipping: the wanted one (0 in this copy of SIZE).
  const sizes = SIZE.slice();
  sizes[key[0]] = 0;
  return {
    bytes,
    key,
    length: key.length,
    sizes,
    first: long ? view.getUint32(1) : 0,
    last: long ? view.getUint32(key.length - 4) : 0,
  };
}

function compilePath(path) {
  let segments = PATHS.get(path);
  if (segments === undefined) {
    segments = String(path).split(".").map(compileSegment);
    if (PATHS.size > 1000) PATHS.clear();
    PATHS.set(path, segments);
  }
  return segments;
}

/** Whether the string key at `p` (any string encoding) is `want`; throws when truncated. */
function keyIs(d, p, end, want) {
  D = d;
  E = end;
  const m = d[p];
  let len;
  let start;
  if (m >= 0xa0 && m <= 0xbf) {
    len = m & 0x1f;
    start = p + 1;
  } else if (m === 0xd9) {
    len = be(p + 1, 1);
    start = p + 2;
  } else if (m === 0xda) {
    len = be(p + 1, 2);
    start = p + 3;
  } else if (m === 0xdb) {
    len = be(p + 1, 4);
    start = p + 5;
  } else {
    return false;
  }
  if (start + len > end) throw truncated();
  if (len !== want.length) return false;
  for (let j = 0; j < len; j++) if (d[start + j] !== want[j]) return false;
  return true;
}

/**
 * The position of the value at `segments` in the map at `p` of `d` (bytes up to `end`; `view`
 * a DataView over the same bytes), or -1 when a key is missing or an intermediate value is
 * not a map. Throws when the payload itself is not a map.
 *
 * This is the hot path of most plugins and runs in an interpreter, where every operation
 * counts: common keys and values are handled inline with one table read each, the general
 * `skip` only for containers and rare encodings.
 */
function lookup(d, view, p, end, segments) {
  for (let s = 0; s < segments.length; s++) {
    if (!(p < end)) throw truncated();
    let m = d[p];
    let len;
    if (m >= 0x80 && m <= 0x8f) {
      len = m & 0x0f;
      p += 1;
    } else if (m === 0xde || m === 0xdf) {
      D = d;
      E = end;
      len = m === 0xde ? be(p + 1, 2) : be(p + 1, 4);
      p += m === 0xde ? 3 : 5;
    } else {
      D = d;
      E = end;
      step(p); // malformed bytes are still reported as such
      if (s === 0) throw new InvalidInput(NOT_A_MAP);
      return -1;
    }
    const segment = segments[s];
    const key = segment.key;
    const klen = segment.length;
    const sizes = segment.sizes;
    let found = -1;
    for (; len > 0; len--) {
      // One bound check per entry: a value read past `end` moves `p` past it (or to NaN when
      // past the buffer), which the next check, or the one after the loop, reports.
      if (!(p < end)) throw truncated();
      m = d[p];
      let n = sizes[m];
      if (n === 0) {
        if (m === key[0]) {
          // The wanted key's header, so its length: compare the bytes.
          if (p + klen > end) throw truncated();
          let same;
          if (klen < 5) {
            let j = 1;
            while (j < klen && d[p + j] === key[j]) j++;
            same = j === klen;
          } else {
            same = view.getUint32(p + 1) === segment.first
              && view.getUint32(p + klen - 4) === segment.last;
            for (let j = 5; same && j < klen - 4; j++) same = d[p + j] === key[j];
          }
          if (same) {
            found = p + klen;
            break;
          }
          n = SIZE[m];
        }
        if (n !== 0) {
          p += n;
        } else if (keyIs(d, p, end, segment.bytes)) {
          // The key in a longer encoding than needed.
          found = step(p);
          break;
        } else {
          p = skip(p); // a long or non-string key
        }
      } else {
        p += n;
      }
      m = d[p];
      n = SIZE[m];
      if (n !== 0) {
        p += n;
      } else if (m === 0xd9) {
        p += 2 + d[p + 1];
      } else if (p < end) {
        D = d;
        E = end;
        p = skip(p);
      } else {
        throw truncated();
      }
    }
    if (found < 0) {
      if (!(p <= end)) throw truncated();
      return -1;
    }
    p = found;
  }
  return p;
}

/**
 * Encodes JavaScript values as MessagePack into a growing buffer.
 *
 * null and undefined are nil; booleans; integral numbers the smallest integer form (negative
 * zero and numbers beyond 64 bits are floats); other numbers float64; `f64(x)` float64;
 * bigints int64 or uint64; strings; `Uint8Array` (and other views, `ArrayBuffer`) binary;
 * arrays; `Map` and plain objects maps (keys in insertion order); `Raw` embedded as is;
 * `Ext` extension values; objects with a `toJSON` method are encoded as what it returns.
 */
class Encoder {
  constructor(out) {
    /** @type {Bytes} */
    this.out = out;
  }

  value(v, depth = 0) {
    const out = this.out;
    switch (typeof v) {
      case "number":
        return this.number(v);
      case "string":
        return this.string(v);
      case "boolean":
        out.reserve(1);
        out.buf[out.len++] = v ? 0xc3 : 0xc2;
        return;
      case "undefined":
        out.reserve(1);
        out.buf[out.len++] = 0xc0;
        return;
      case "bigint":
        return this.bigint(v);
      case "object":
        break;
      default:
        throw new TypeError(`cannot encode a ${typeof v} as MessagePack`);
    }
    if (v === null) {
      out.reserve(1);
      out.buf[out.len++] = 0xc0;
      return;
    }
    if (depth > 500) throw new RangeError("value nests too deeply to encode as MessagePack");
    if (v instanceof Float64) return this.float(v.value);
    if (Array.isArray(v)) {
      this.header(v.length, 0x90, 15, 0xdc, 0xdd);
      for (let i = 0; i < v.length; i++) this.value(v[i], depth + 1);
      return;
    }
    // Not `instanceof`: the contract's arrays come from another realm (the bindings').
    if (ArrayBuffer.isView(v)) return this.binary(asBytes(v));
    if (isArrayBuffer(v)) return this.binary(new Uint8Array(v));
    if (v instanceof Raw) return out.append(v.bytes);
    if (v instanceof Map) {
      this.header(v.size, 0x80, 15, 0xde, 0xdf);
      for (const [key, item] of v) {
        this.value(key, depth + 1);
        this.value(item, depth + 1);
      }
      return;
    }
    if (v instanceof Ext) return this.ext(v);
    if (typeof v.toJSON === "function") return this.value(v.toJSON(), depth + 1);
    const keys = Object.keys(v);
    this.header(keys.length, 0x80, 15, 0xde, 0xdf);
    for (let i = 0; i < keys.length; i++) {
      this.string(keys[i]);
      this.value(v[keys[i]], depth + 1);
    }
  }

  header(n, fix, fixMax, m16, m32) {
    const out = this.out;
    out.reserve(5);
    const b = out.buf;
    if (n <= fixMax) {
      b[out.len++] = fix | n;
    } else if (n <= 0xffff) {
      b[out.len] = m16;
      b[out.len + 1] = n >>> 8;
      b[out.len + 2] = n & 0xff;
      out.len += 3;
    } else {
      b[out.len] = m32;
      out.view.setUint32(out.len + 1, n);
      out.len += 5;
    }
  }

  number(v) {
    if (!Number.isInteger(v) || (v === 0 && 1 / v < 0)) return this.float(v);
    const out = this.out;
    out.reserve(9);
    const b = out.buf;
    let at = out.len;
    if (v >= 0) {
      if (v < 0x80) {
        b[at++] = v;
      } else if (v <= 0xff) {
        b[at++] = 0xcc;
        b[at++] = v;
      } else if (v <= 0xffff) {
        b[at++] = 0xcd;
        b[at++] = v >>> 8;
        b[at++] = v & 0xff;
      } else if (v <= 0xffffffff) {
        b[at] = 0xce;
        out.view.setUint32(at + 1, v);
        at += 5;
      } else if (v < 18446744073709551616) {
        b[at] = 0xcf;
        out.view.setBigUint64(at + 1, BigInt(v));
        at += 9;
      } else {
        return this.float(v);
      }
    } else if (v >= -32) {
      b[at++] = v & 0xff;
    } else if (v >= -128) {
      b[at++] = 0xd0;
      b[at++] = v & 0xff;
    } else if (v >= -32768) {
      b[at] = 0xd1;
      out.view.setInt16(at + 1, v);
      at += 3;
    } else if (v >= -2147483648) {
      b[at] = 0xd2;
      out.view.setInt32(at + 1, v);
      at += 5;
    } else if (v >= -9223372036854775808) {
      b[at] = 0xd3;
      out.view.setBigInt64(at + 1, BigInt(v));
      at += 9;
    } else {
      return this.float(v);
    }
    out.len = at;
  }

  float(v) {
    const out = this.out;
    out.reserve(9);
    out.buf[out.len] = 0xcb;
    out.view.setFloat64(out.len + 1, v);
    out.len += 9;
  }

  bigint(v) {
    if (v >= -0x20000000000000n && v <= 0x20000000000000n) return this.number(Number(v));
    const out = this.out;
    out.reserve(9);
    if (v < 0n) {
      if (v < -0x8000000000000000n) throw new RangeError(`${v} does not fit in 64 bits`);
      out.buf[out.len] = 0xd3;
      out.view.setBigInt64(out.len + 1, v);
    } else {
      if (v > 0xffffffffffffffffn) throw new RangeError(`${v} does not fit in 64 bits`);
      out.buf[out.len] = 0xcf;
      out.view.setBigUint64(out.len + 1, v);
    }
    out.len += 9;
  }

  string(s) {
    const out = this.out;
    const n = s.length;
    // The UTF-8 length decides the header; ASCII, the common case, is copied directly.
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      this.strHeader(n);
      out.reserve(n);
      const b = out.buf;
      let at = out.len;
      for (let i = 0; i < n; i++) b[at++] = s.charCodeAt(i);
      out.len = at;
      return;
    }
    const bytes = UTF8_OUT.encode(s);
    this.strHeader(bytes.length);
    out.append(bytes);
  }

  strHeader(n) {
    if (n <= 31) {
      const out = this.out;
      out.reserve(1);
      out.buf[out.len++] = 0xa0 | n;
    } else if (n <= 0xff) {
      const out = this.out;
      out.reserve(2);
      out.buf[out.len++] = 0xd9;
      out.buf[out.len++] = n;
    } else {
      this.header(n, 0, -1, 0xda, 0xdb);
    }
  }

  binary(bytes) {
    const out = this.out;
    const n = bytes.length;
    out.reserve(5 + n);
    const b = out.buf;
    if (n <= 0xff) {
      b[out.len++] = 0xc4;
      b[out.len++] = n;
    } else if (n <= 0xffff) {
      b[out.len++] = 0xc5;
      b[out.len++] = n >>> 8;
      b[out.len++] = n & 0xff;
    } else {
      b[out.len] = 0xc6;
      out.view.setUint32(out.len + 1, n);
      out.len += 5;
    }
    out.append(bytes);
  }

  ext(v) {
    const out = this.out;
    const n = v.data.length;
    out.reserve(6 + n);
    const b = out.buf;
    const fixed = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }[n];
    if (fixed !== undefined) {
      b[out.len++] = fixed;
    } else if (n <= 0xff) {
      b[out.len++] = 0xc7;
      b[out.len++] = n;
    } else if (n <= 0xffff) {
      b[out.len++] = 0xc8;
      b[out.len++] = n >>> 8;
      b[out.len++] = n & 0xff;
    } else {
      b[out.len] = 0xc9;
      out.view.setUint32(out.len + 1, n);
      out.len += 5;
    }
    b[out.len++] = v.type & 0xff;
    out.append(v.data);
  }
}

const SCRATCH = new Encoder(new Bytes(1024));

/**
 * Encodes `value` as MessagePack (see `f64` for floats that must stay floats).
 * @param {any} value
 * @returns {Uint8Array} a fresh array
 * @throws {TypeError} for values with no MessagePack form (functions, symbols)
 */
export function encode(value) {
  const out = SCRATCH.out;
  out.len = 0;
  SCRATCH.value(value);
  return out.buf.slice(0, out.len);
}

/**
 * The items of the MessagePack array `bytes`, each as the slice of its encoded bytes, or
 * `null` when `bytes` holds something other than an array.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array[] | null}
 * @throws {InvalidInput} when an item is malformed
 */
export function arrayItems(bytes) {
  setInput(bytes, 0, bytes.length);
  if (bytes.length === 0) throw truncated();
  const m = bytes[0];
  let len;
  let p;
  if (m >= 0x90 && m <= 0x9f) {
    len = m & 0x0f;
    p = 1;
  } else if (m === 0xdc) {
    len = be(1, 2);
    p = 3;
  } else if (m === 0xdd) {
    len = be(1, 4);
    p = 5;
  } else {
    step(0);
    return null;
  }
  const items = [];
  for (let i = 0; i < len; i++) {
    const end = skip(p);
    items.push(bytes.subarray(p, end));
    p = end;
  }
  return items;
}

/** The MessagePack codec, as one object. */
export const msgpack = { encode, decode, f64, raw, arrayItems, Float64, Raw, Ext };

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** JSON text of a configuration value as the Rust SDK shows it (object keys sorted). */
function jsonText(value, sources, holder, key) {
  if (Array.isArray(value)) {
    return `[${value.map((v, i) => jsonText(v, sources, value, String(i))).join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    const text = (k) => `${JSON.stringify(k)}:${jsonText(value[k], sources, value, k)}`;
    return `{${keys.map(text).join(",")}}`;
  }
  if (typeof value === "number" && holder !== undefined) {
    // As written (`1.0` stays `1.0`), where the engine tells.
    const written = sources.get(holder)?.get(key);
    if (written !== undefined) return written;
  }
  return JSON.stringify(value);
}

// What Rust's `str::trim` removes (Unicode White_Space), and what `str::parse::<f64>` takes.
const SPACE =
  "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const TRIM = new RegExp(`^${SPACE}+|${SPACE}+$`, "g");
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL = /^([+-]?)(inf|infinity|nan)$/i;

function parseNumber(text) {
  const s = text.replace(TRIM, "");
  if (DECIMAL.test(s)) return Number(s);
  const special = SPECIAL.exec(s);
  if (special) {
    if (special[2].toLowerCase() === "nan") return NaN;
    return special[1] === "-" ? -Infinity : Infinity;
  }
  return undefined;
}

/**
 * A plugin's configuration: the JSON object of the stage's `config` table, with accessors
 * whose errors name the key and say what is expected (the same messages as the Rust SDK).
 */
export class Config {
  /** @param {Record<string, any>} values */
  constructor(values = {}) {
    /** The parsed JSON object. */
    this.values = values;
    // For each object or array of the configuration, the text of its numbers as written:
    // JavaScript reads `1000` and `1e3` alike, where Rust tells an integer from a float.
    this._sources = new WeakMap();
  }

  /**
   * Parses the JSON text the host passes to `init` (empty text is an empty object).
   * @param {string} text
   * @throws {InvalidConfig} when the text is not a JSON object
   */
  static parse(text) {
    if (text.trim() === "") return new Config({});
    const sources = new WeakMap();
    let values;
    try {
      values = JSON.parse(text, function (key, value, context) {
        if (typeof value === "number" && context !== undefined && context.source !== undefined) {
          let written = sources.get(this);
          if (written === undefined) sources.set(this, (written = new Map()));
          written.set(key, context.source);
        }
        return value;
      });
    } catch (e) {
      throw new InvalidConfig(`configuration is not valid JSON: ${e.message}`);
    }
    if (values === null || typeof values !== "object" || Array.isArray(values)) {
      throw new InvalidConfig("configuration is not a JSON object");
    }
    const config = new Config(values);
    config._sources = sources;
    return config;
  }

  /**
   * The text of the number at `key` as the configuration wrote it (`"60000"`, `"1e3"`), for a
   * plugin that tells integers from floats as Rust's serde does; `undefined` when `key` is
   * not a number or the text is not known.
   * @param {string} key
   * @returns {string | undefined}
   */
  numberText(key) {
    if (typeof this.get(key) !== "number") return undefined;
    return this._sources.get(this.values)?.get(key);
  }

  /**
   * The raw value of `key`, or `undefined`.
   * @param {string} key
   */
  get(key) {
    return Object.prototype.hasOwnProperty.call(this.values, key) ? this.values[key] : undefined;
  }

  /**
   * A required string.
   * @param {string} key
   * @throws {InvalidConfig} when it is missing or not a string
   */
  str(key) {
    const value = this.optStr(key);
    if (value === undefined) throw missing(key, "a string");
    return value;
  }

  /**
   * An optional string: `undefined` when absent or null.
   * @param {string} key
   * @throws {InvalidConfig} when it is present but not a string
   */
  optStr(key) {
    const value = this.get(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    throw wrongType(this, key, "a string");
  }

  /**
   * A required number; a string holding a number is accepted (command lines pass text).
   * @param {string} key
   * @throws {InvalidConfig} when it is missing or not a number
   */
  f64(key) {
    const value = this.optF64(key);
    if (value === undefined) throw missing(key, "a number");
    return value;
  }

  /**
   * An optional number: `undefined` when absent or null.
   * @param {string} key
   * @throws {InvalidConfig} when it is present but not a number
   */
  optF64(key) {
    const value = this.get(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value === "number") return value;
    if (typeof value === "string") {
      const n = parseNumber(value);
      if (n !== undefined) return n;
    }
    throw wrongType(this, key, "a number");
  }

  /**
   * An optional whole number of zero or more, as `optF64` but integral.
   * @param {string} key
   * @throws {InvalidConfig} when it is present but not a whole number of zero or more
   */
  optU64(key) {
    const value = this.optF64(key);
    if (value === undefined) return undefined;
    if (value >= 0 && Number.isInteger(value) && value <= 18446744073709551615) return value;
    throw new InvalidConfig(
      `config key "${key}" must be a whole number of zero or more, not ${value}`,
    );
  }
}

function missing(key, what) {
  return new InvalidConfig(`config key "${key}" is required (${what})`);
}

/** The error for a value of the wrong type, shown as JSON as the Rust SDK shows it. */
function wrongType(config, key, what) {
  const found = jsonText(config.values[key], config._sources, config.values, key);
  return new InvalidConfig(`config key "${key}" must be ${what}, not ${found}`);
}

/**
 * Builds the plugin object from the configuration text, for every world's `init`, and checks
 * that it has the methods its world calls (a missing one would otherwise fail every event).
 */
function construct(Plugin, text, methods) {
  const config = Config.parse(text);
  const plugin = new Plugin(config);
  for (let i = 0; i < methods.length; i++) {
    if (typeof plugin[methods[i]] !== "function") {
      throw new PluginError(`${Plugin.name || "the plugin class"} has no ${methods[i]} method`);
    }
  }
  return plugin;
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/**
 * One input event. The SDK hands the same object to every call of a batch, moved to the
 * event at hand: read what you need during the call, do not keep the object itself.
 */
export class Event {
  /** @param {object} batch the contract's batch record */
  constructor(batch) {
    this._batch = batch;
    this._data = asBytes(batch.payloads.data);
    this._view = new DataView(this._data.buffer, this._data.byteOffset, this._data.byteLength);
    this._ends = batch.payloads.ends;
    this._times = batch.times;
    this._timesLength = batch.times.length;
    /** Position of the event in its batch. */
    this.index = 0;
    this._path = "";
    this._segments = compilePath("");
    this._valueOf = -1;
    this._value = undefined;
  }

  _at(index) {
    this.index = index;
    return this;
  }

  _start() {
    return this.index === 0 ? 0 : this._ends[this.index - 1];
  }

  /** The payload bytes (MessagePack by convention). @returns {Uint8Array} */
  get payload() {
    return this._data.subarray(this._start(), this._ends[this.index]);
  }

  /**
   * The whole payload decoded (see `decode`); decoded once per event.
   * @throws {InvalidInput} when the payload is not valid MessagePack
   */
  get value() {
    if (this._valueOf !== this.index) {
      this._value = decode(this.payload);
      this._valueOf = this.index;
    }
    return this._value;
  }

  /**
   * The payload field at a dotted path (`amount`, `user.id`), found without decoding the
   * rest of the payload; `undefined` when a key is missing or a step is not a map.
   * @param {string} path
   * @throws {InvalidInput} when the payload is not a MessagePack map
   */
  field(path) {
    if (path !== this._path) {
      this._segments = compilePath(path);
      this._path = path;
    }
    const i = this.index;
    const d = this._data;
    const end = this._ends[i];
    const p = lookup(d, this._view, i === 0 ? 0 : this._ends[i - 1], end, this._segments);
    if (p < 0) return undefined;
    // Numbers, what most lookups are after, are decoded inline.
    if (p < end) {
      const m = d[p];
      if (m < 0x80) return m;
      if (m === 0xcb && p + 9 <= end) return this._view.getFloat64(p + 1);
      if (m >= 0xe0) return m - 0x100;
    }
    setInput(d, p, end);
    return decodeAt(p);
  }

  /**
   * The encoded bytes of the field at a dotted path, or `undefined` when it is missing.
   * @param {string} path
   * @throws {InvalidInput} when the payload is not a MessagePack map
   */
  fieldRaw(path) {
    if (path !== this._path) {
      this._segments = compilePath(path);
      this._path = path;
    }
    const d = this._data;
    const end = this._ends[this.index];
    const p = lookup(d, this._view, this._start(), end, this._segments);
    if (p < 0) return undefined;
    setInput(d, p, end);
    return d.subarray(p, skip(p));
  }

  /** Event time in milliseconds since the Unix epoch. @returns {number} */
  get time() {
    return this.index < this._timesLength ? Number(this._times[this.index]) : 0;
  }

  /** The key, or `null` when the event has none (an empty key is an empty array). */
  get key() {
    const b = this._batch;
    if (b.keys.ends.length === 0) return null;
    const i = this.index;
    if (!((b.keyPresent[i >> 3] >> (i & 7)) & 1)) return null;
    return asBytes(columnValue(b.keys, i));
  }

  /** The key decoded as UTF-8, or `null`. @returns {string | null} */
  get keyString() {
    const key = this.key;
    return key === null ? null : UTF8.decode(key);
  }

  /** The headers as `[name, value]` pairs, in order. @returns {[string, Uint8Array][]} */
  get headers() {
    const b = this._batch;
    const out = [];
    if (b.headerEnds.length === 0) return out;
    const i = this.index;
    const start = i === 0 ? 0 : b.headerEnds[i - 1];
    const end = b.headerEnds[i];
    for (let h = start; h < end; h++) {
      const value = asBytes(columnValue(b.headerValues, h));
      out.push([UTF8.decode(columnValue(b.headerNames, h)), value]);
    }
    return out;
  }

  /**
   * The value of the first header named `name`, or `undefined`.
   * @param {string} name
   */
  header(name) {
    const headers = this.headers;
    for (let h = 0; h < headers.length; h++) if (headers[h][0] === name) return headers[h][1];
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Emitted events
// ---------------------------------------------------------------------------------------------

/**
 * Attributes an output sets for itself; unset ones are inherited.
 * @typedef {object} OutputAttrs
 * @property {string | Uint8Array | null} [key] the key (a string is UTF-8), or null for none
 * @property {number | bigint} [time] event time in milliseconds since the Unix epoch
 * @property {[string, string | Uint8Array][]} [headers] replaces the inherited headers
 */

function keyBytes(key) {
  if (key === null) return null;
  if (typeof key === "string") return UTF8_OUT.encode(key);
  if (ArrayBuffer.isView(key)) return asBytes(key);
  throw new TypeError("a key must be a string, a Uint8Array or null");
}

function headerPairs(headers) {
  const out = [];
  for (let h = 0; h < headers.length; h++) {
    const value = headers[h][1];
    let bytes;
    if (typeof value === "string") bytes = UTF8_OUT.encode(value);
    else if (ArrayBuffer.isView(value)) bytes = asBytes(value);
    else throw new TypeError("a header value must be a string or a Uint8Array");
    out.push([String(headers[h][0]), bytes]);
  }
  return out;
}

/** Emitted events as columns, built as they come; reused from call to call. */
class Emitted {
  constructor() {
    this.sources = new U32s();
    this.data = new Bytes(4096);
    this.encoder = new Encoder(this.data);
    this.ends = new U32s();
    this.keys = []; // [at, Uint8Array | null], for outputs that set their key
    this.times = []; // [at, bigint], for outputs that set their time
    this.headers = []; // [at, [name, Uint8Array][]], for outputs that set their headers
  }

  reset() {
    this.sources.len = 0;
    this.data.len = 0;
    this.ends.len = 0;
    this.keys.length = 0;
    this.times.length = 0;
    this.headers.length = 0;
  }

  /** Records the output whose payload was just appended to `data`. */
  push(source, attrs) {
    const sources = this.sources;
    const ends = this.ends;
    const at = sources.len;
    if (attrs !== undefined && attrs !== null) {
      // Converted before anything is recorded, so that a bad attribute leaves no trace.
      const key = attrs.key === undefined ? undefined : keyBytes(attrs.key);
      const time = attrs.time === undefined ? undefined : BigInt(attrs.time);
      const headers = attrs.headers === undefined ? undefined : headerPairs(attrs.headers);
      if (key !== undefined) this.keys.push([at, key]);
      if (time !== undefined) this.times.push([at, time]);
      if (headers !== undefined) this.headers.push([at, headers]);
    }
    if (at === sources.cap) {
      sources.push(source);
      ends.push(this.data.len);
    } else {
      sources.arr[at] = source;
      sources.len = at + 1;
      ends.arr[at] = this.data.len;
      ends.len = at + 1;
    }
  }

  value(source, value, attrs) {
    const start = this.data.len;
    try {
      this.encoder.value(value);
      this.push(source, attrs);
    } catch (e) {
      this.data.len = start;
      throw e;
    }
  }

  bytes(source, payload, attrs) {
    if (!ArrayBuffer.isView(payload)) throw new TypeError("a payload must be a Uint8Array");
    const start = this.data.len;
    this.data.append(payload.BYTES_PER_ELEMENT === 1 ? payload : asBytes(payload));
    try {
      this.push(source, attrs);
    } catch (e) {
      this.data.len = start;
      throw e;
    }
  }

  /** Withdraws everything emitted for `source` (its event failed). */
  retract(source) {
    const s = this.sources;
    while (s.len > 0 && s.arr[s.len - 1] === source) {
      s.len--;
      this.ends.len--;
    }
    const at = s.len;
    const keep = (entry) => entry[0] < at;
    if (this.keys.length) this.keys = this.keys.filter(keep);
    if (this.times.length) this.times = this.times.filter(keep);
    if (this.headers.length) this.headers = this.headers.filter(keep);
    this.data.len = this.ends.len === 0 ? 0 : this.ends.arr[this.ends.len - 1];
  }

  /**
   * The contract's `emitted` record. `inherit` gives, for a source index, its key
   * (Uint8Array or null), time (bigint) and headers, for outputs that leave them unset.
   */
  finish(inherit) {
    const n = this.sources.len;
    const sources = this.sources.used();
    const events = {
      payloads: { data: this.data.used(), ends: this.ends.used() },
      times: EMPTY_I64,
      keys: emptyColumn(),
      keyPresent: EMPTY_U8,
      headerEnds: EMPTY_U32,
      headerNames: emptyColumn(),
      headerValues: emptyColumn(),
    };
    if (this.times.length) {
      const times = new BigInt64Array(n);
      for (let i = 0; i < n; i++) times[i] = inherit.time(sources[i]);
      for (let k = 0; k < this.times.length; k++) times[this.times[k][0]] = this.times[k][1];
      events.times = times;
    }
    if (this.keys.length) {
      const keys = new Array(n);
      for (let i = 0; i < n; i++) keys[i] = inherit.key(sources[i]);
      for (let k = 0; k < this.keys.length; k++) keys[this.keys[k][0]] = this.keys[k][1];
      const present = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) {
        if (keys[i] !== null) present[i >> 3] |= 1 << (i & 7);
        else keys[i] = EMPTY_U8;
      }
      events.keys = packColumn(keys);
      events.keyPresent = present;
    }
    if (this.headers.length) {
      const all = new Array(n);
      for (let i = 0; i < n; i++) all[i] = null;
      for (let k = 0; k < this.headers.length; k++) all[this.headers[k][0]] = this.headers[k][1];
      const names = [];
      const values = [];
      const ends = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const headers = all[i] !== null ? all[i] : inherit.headers(sources[i]);
        for (let h = 0; h < headers.length; h++) {
          names.push(UTF8_OUT.encode(headers[h][0]));
          values.push(headers[h][1]);
        }
        ends[i] = names.length;
      }
      events.headerEnds = ends;
      events.headerNames = packColumn(names);
      events.headerValues = packColumn(values);
    }
    return { sources, events };
  }
}

// ---------------------------------------------------------------------------------------------
// Handler world
// ---------------------------------------------------------------------------------------------

/**
 * What a handler may do with the event in hand: keep it, emit outputs, or nothing (which
 * drops it). Optional `attrs` set an output's own `key` (string, Uint8Array or null for
 * none), `time` (ms) or `headers` (`[name, value]` pairs); unset ones are the input's.
 */
export class Emit {
  constructor(emitted, keep) {
    this._emitted = emitted;
    this._keep = keep;
    this._index = 0;
  }

  /** Passes the event through unchanged (no copy of its payload). */
  keep() {
    const i = this._index;
    this._keep[i >> 3] |= 1 << (i & 7);
  }

  /**
   * Emits `value` encoded as MessagePack (see `f64` for floats that must stay floats).
   * @param {any} value
   * @param {OutputAttrs} [attrs]
   */
  emit(value, attrs) {
    this._emitted.value(this._index, value, attrs);
  }

  /**
   * Emits an already encoded payload.
   * @param {Uint8Array} payload
   * @param {OutputAttrs} [attrs]
   */
  emitBytes(payload, attrs) {
    this._emitted.bytes(this._index, payload, attrs);
  }
}

function handlerInherit(batch, event) {
  return {
    key: (s) => event._at(s).key,
    time: (s) => (s < batch.times.length ? batch.times[s] : 0n),
    headers: (s) => event._at(s).headers,
  };
}

/**
 * Builds the `eventHandler` export of the `handler` world from a class:
 * `new Plugin(config)` is called by `init` with a `Config`; `handle(event, out)` for each
 * event calls `out.keep()`, `out.emit(...)` (any number of times) or nothing to drop it.
 * An error thrown by `handle` fails that event only; its outputs are withdrawn.
 *
 * ```js
 * export const eventHandler = exportHandler(MyHandler);
 * ```
 * @param {new (config: Config) => {handle(event: Event, out: Emit): void}} Plugin
 */
export function exportHandler(Plugin) {
  let plugin = null;
  const emitted = new Emitted();
  return {
    init(config) {
      try {
        plugin = construct(Plugin, config, ["handle"]);
      } catch (e) {
        throw errorValue(e, "invalid-config");
      }
    },

    process(batch) {
      if (plugin === null) throw errorValue(new PluginError("process called before init"));
      const n = batch.payloads.ends.length;
      const keep = new Uint8Array((n + 7) >> 3);
      const failures = [];
      const event = new Event(batch);
      const out = new Emit(emitted, keep);
      emitted.reset();
      for (let i = 0; i < n; i++) {
        event.index = i;
        out._index = i;
        try {
          plugin.handle(event, out);
        } catch (e) {
          keep[i >> 3] &= ~(1 << (i & 7));
          emitted.retract(i);
          failures.push({ index: i, error: toError(e) });
        }
      }
      try {
        const outputs = emitted.finish(handlerInherit(batch, event));
        return { keep, outputs, failures };
      } catch (e) {
        throw errorValue(e);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// State shared by the aggregator and pattern worlds
// ---------------------------------------------------------------------------------------------

function decodeState(bytes, what) {
  try {
    return decode(bytes);
  } catch (e) {
    throw new UnsupportedState(`${what} does not decode: ${e.message}`);
  }
}

function encodeState(value, what) {
  try {
    return encode(value);
  } catch (e) {
    throw new PluginError(`cannot encode ${what}: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Aggregator world
// ---------------------------------------------------------------------------------------------

/**
 * Builds the `windowedAggregator` export of the `aggregator` world from a class:
 *
 * - `new Plugin(config)`: called by `init` with a `Config`.
 * - `create()`: the empty accumulator, any value MessagePack can hold (plain objects,
 *   arrays, numbers, strings, booleans, null, Uint8Array). The host stores it as bytes, so
 *   it comes back as plain data: no class instances, `Map`s become objects.
 * - `add(acc, event)`: folds one event in, either changing `acc` in place or returning the
 *   new accumulator. An error thrown fails that event only: throw before changing `acc`.
 * - `merge(acc, other)`: folds `other` into `acc` (in place, or return the result).
 * - `finish(acc)`: the window's result, encoded as MessagePack (a map by convention; wrap
 *   floats in `f64`).
 *
 * ```js
 * export const windowedAggregator = exportAggregator(MyAggregate);
 * ```
 * @param {new (config: Config) => any} Plugin
 */
export function exportAggregator(Plugin) {
  let plugin = null;
  const ACC = "accumulator";
  const ready = () => {
    if (plugin === null) throw new PluginError("called before init");
    return plugin;
  };
  return {
    init(config) {
      try {
        plugin = construct(Plugin, config, ["create", "add", "merge", "finish"]);
      } catch (e) {
        throw errorValue(e, "invalid-config");
      }
    },

    create() {
      try {
        return encodeState(ready().create(), ACC);
      } catch (e) {
        throw errorValue(e);
      }
    },

    add(accumulators, batch, targets) {
      try {
        const p = ready();
        const count = accumulators.ends.length;
        const decoded = new Array(count);
        const touched = new Uint8Array(count);
        const failures = [];
        const event = new Event(batch);
        const n = Math.min(batch.payloads.ends.length, targets.length);
        for (let i = 0; i < n; i++) {
          const t = targets[i];
          if (t >= count) throw new PluginError(`event targets accumulator ${t} of ${count}`);
          if (!touched[t]) {
            decoded[t] = decodeState(columnValue(accumulators, t), ACC);
            touched[t] = 1;
          }
          try {
            const next = p.add(decoded[t], event._at(i));
            if (next !== undefined) decoded[t] = next;
          } catch (e) {
            failures.push({ index: i, error: toError(e) });
          }
        }
        const values = new Array(count);
        for (let t = 0; t < count; t++) {
          values[t] = touched[t] ? encodeState(decoded[t], ACC) : columnValue(accumulators, t);
        }
        return { accumulators: packColumn(values), failures };
      } catch (e) {
        throw errorValue(e);
      }
    },

    merge(left, right) {
      try {
        const p = ready();
        const n = Math.min(left.ends.length, right.ends.length);
        const values = new Array(n);
        for (let i = 0; i < n; i++) {
          let acc = decodeState(columnValue(left, i), ACC);
          const other = decodeState(columnValue(right, i), ACC);
          const merged = p.merge(acc, other);
          if (merged !== undefined) acc = merged;
          values[i] = encodeState(acc, ACC);
        }
        return packColumn(values);
      } catch (e) {
        throw errorValue(e);
      }
    },

    finish(accumulators) {
      try {
        const p = ready();
        const n = accumulators.ends.length;
        const values = new Array(n);
        for (let i = 0; i < n; i++) {
          const result = p.finish(decodeState(columnValue(accumulators, i), ACC));
          values[i] = encodeState(result, "result");
        }
        return packColumn(values);
      } catch (e) {
        throw errorValue(e);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pattern world
// ---------------------------------------------------------------------------------------------

/**
 * Where a pattern emits its matches. A match is stamped with the time of the event (or
 * timer) being applied unless `attrs.time` says otherwise; `attrs.key` and `attrs.headers`
 * as for a handler's `Emit`.
 */
export class Matches {
  constructor(emitted) {
    this._emitted = emitted;
    this._state = 0;
    this._time = 0n;
  }

  _attrs(attrs) {
    if (attrs === undefined || attrs === null) return { time: this._time };
    return attrs.time === undefined ? { ...attrs, time: this._time } : attrs;
  }

  /**
   * Emits a match encoded as MessagePack.
   * @param {any} value
   * @param {OutputAttrs} [attrs]
   */
  emit(value, attrs) {
    this._emitted.value(this._state, value, this._attrs(attrs));
  }

  /**
   * Emits an already encoded match payload.
   * @param {Uint8Array} payload
   * @param {OutputAttrs} [attrs]
   */
  emitBytes(payload, attrs) {
    this._emitted.bytes(this._state, payload, this._attrs(attrs));
  }
}

const PATTERN_INHERIT = { key: () => null, time: () => 0n, headers: () => [] };

function timerOf(p, state) {
  if (typeof p.nextTimer !== "function") return null;
  const t = p.nextTimer(state);
  if (t === undefined || t === null) return null;
  return typeof t === "bigint" ? t : BigInt(Math.floor(t));
}

/**
 * Builds the `patternMatcher` export of the `pattern` world from a class:
 *
 * - `new Plugin(config)`: called by `init` with a `Config`.
 * - `create()`: the state of a key that has seen nothing (plain data, as an aggregator's
 *   accumulator).
 * - `onEvent(state, event, matches)`: applies one event of the key (events arrive in
 *   event-time order), changing `state` in place or returning the new state. An error thrown
 *   fails that event only.
 * - `onTimer(state, now, matches)` (optional): event time reached `now` (ms), at or past
 *   the state's timer. An error thrown fails the whole call.
 * - `nextTimer(state)` (optional): when the state next wants `onTimer` (ms), or null.
 *
 * ```js
 * export const patternMatcher = exportPattern(MyPattern);
 * ```
 * @param {new (config: Config) => any} Plugin
 */
export function exportPattern(Plugin) {
  let plugin = null;
  const STATE = "pattern state";
  const emitted = new Emitted();
  const matches = new Matches(emitted);
  const ready = () => {
    if (plugin === null) throw new PluginError("called before init");
    return plugin;
  };
  const decodeAll = (column) => {
    const n = column.ends.length;
    const states = new Array(n);
    for (let i = 0; i < n; i++) states[i] = decodeState(columnValue(column, i), STATE);
    return states;
  };
  const progress = (p, states, failures) => {
    const n = states.length;
    const values = new Array(n);
    const timers = new Array(n);
    for (let i = 0; i < n; i++) {
      values[i] = encodeState(states[i], STATE);
      timers[i] = timerOf(p, states[i]);
    }
    return {
      states: packColumn(values),
      timers,
      matches: emitted.finish(PATTERN_INHERIT),
      failures,
    };
  };
  return {
    init(config) {
      try {
        plugin = construct(Plugin, config, ["create", "onEvent"]);
      } catch (e) {
        throw errorValue(e, "invalid-config");
      }
    },

    create() {
      try {
        return encodeState(ready().create(), STATE);
      } catch (e) {
        throw errorValue(e);
      }
    },

    process(column, batch, targets) {
      try {
        const p = ready();
        const states = decodeAll(column);
        const count = states.length;
        const n = Math.min(batch.payloads.ends.length, targets.length);
        // Matches must come out in state order: order the events by state, stably.
        const starts = new Uint32Array(count + 1);
        for (let i = 0; i < n; i++) {
          const t = targets[i];
          if (t >= count) throw new PluginError(`event targets state ${t} of ${count}`);
          starts[t + 1]++;
        }
        for (let s = 0; s < count; s++) starts[s + 1] += starts[s];
        const order = new Uint32Array(n);
        const fill = starts.slice(0, count);
        for (let i = 0; i < n; i++) order[fill[targets[i]]++] = i;
        emitted.reset();
        const failures = [];
        const event = new Event(batch);
        const times = batch.times;
        const timesLength = times.length;
        for (let s = 0; s < count; s++) {
          matches._state = s;
          for (let k = starts[s]; k < starts[s + 1]; k++) {
            const i = order[k];
            event._at(i);
            matches._time = i < timesLength ? times[i] : 0n;
            try {
              const next = p.onEvent(states[s], event, matches);
              if (next !== undefined) states[s] = next;
            } catch (e) {
              // Matches emitted before the error stand, as in the Rust SDK.
              failures.push({ index: i, error: toError(e) });
            }
          }
        }
        return progress(p, states, failures);
      } catch (e) {
        throw errorValue(e);
      }
    },

    onTimer(column, now) {
      try {
        const p = ready();
        const states = decodeAll(column);
        const nowMs = Number(now);
        emitted.reset();
        matches._time = BigInt(now);
        for (let s = 0; s < states.length; s++) {
          matches._state = s;
          if (typeof p.onTimer === "function") {
            const next = p.onTimer(states[s], nowMs, matches);
            if (next !== undefined) states[s] = next;
          }
        }
        return progress(p, states, []);
      } catch (e) {
        throw errorValue(e);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------

const LEVELS = ["trace", "debug", "info", "warn", "error"];

/**
 * Writes a record to the host's log, tagged with the plugin's name and version. The host
 * rate-limits records.
 * @param {"trace" | "debug" | "info" | "warn" | "error"} level
 * @param {string} message
 * @param {Record<string, unknown>} [fields] shown beside the message
 */
export function log(level, message, fields = {}) {
  if (!LEVELS.includes(level)) throw new TypeError(`unknown log level ${JSON.stringify(level)}`);
  const pairs = Object.entries(fields).map(([k, v]) => [k, String(v)]);
  hostLog(level, String(message), pairs);
}

/**
 * Adds `delta` (default 1) to the plugin's counter `name`, exported by the host as
 * `weir_plugin_counter_total{plugin, name}`.
 * @param {string} name
 * @param {number | bigint} [delta]
 */
export function counterAdd(name, delta = 1) {
  hostCounterAdd(String(name), BigInt(delta));
}

/**
 * Wall-clock time in milliseconds since the Unix epoch. Prefer event time for anything that
 * must replay identically.
 * @returns {number}
 */
export function nowMs() {
  return Number(hostNowMs());
}
