// @ts-check
/**
 * {{name}}: keeps events whose numeric field `field` (default `amount`) is at least `min`
 * (default 0).
 *
 * Config: `{"field": "amount", "min": 10}`. An event without the field, or whose field is not
 * a number, is dropped; a payload that is not a MessagePack map fails with `invalid-input`
 * and goes to the dead-letter sink.
 */

import { exportHandler } from "./sdk/weir-plugin.js";

class {{class}} {
  /** @param {import("./sdk/weir-plugin.js").Config} config */
  constructor(config) {
    // A bad value throws InvalidConfig naming the key, and the host refuses this version
    // before it serves anything.
    this.field = config.optStr("field") ?? "amount";
    this.min = config.optF64("min") ?? 0;
  }

  /**
   * @param {import("./sdk/weir-plugin.js").Event} event
   * @param {import("./sdk/weir-plugin.js").Emit} out
   */
  handle(event, out) {
    // `field` reads one field without decoding the rest of the payload, and throws (failing
    // just this event) when the payload is not a map.
    const amount = event.field(this.field);
    if (typeof amount === "number" && amount >= this.min) {
      // Passing the event through unchanged copies no payload back to the host.
      out.keep();
    }
    // To replace the event instead, emit new payloads (any number of them):
    //     out.emit({ amount, big: true });
    // Throwing (new InvalidInput("...") or any error) dead-letters this event only.
  }
}

// componentize-js looks for the exported interface under this name.
export const eventHandler = exportHandler({{class}});
