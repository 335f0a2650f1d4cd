/**
 * Keeps events whose numeric field `field` (a name or dotted path) is greater than `min`.
 *
 * The JavaScript twin of plugins/rust/threshold: the same configuration, decisions and
 * error messages. Config: `{"field": "amount", "min": 50}`. An event whose payload is not a
 * MessagePack map fails with `invalid-input`; one whose field is missing or not a number is
 * dropped. Kept events pass through unchanged, so no payload is copied back to the host.
 */

import { exportHandler } from "../../../plugin-sdk/js/weir-plugin.js";

class Threshold {
  constructor(config) {
    this.field = config.str("field");
    this.min = config.f64("min");
  }

  handle(event, out) {
    const value = event.field(this.field);
    if (typeof value === "number" && value > this.min) out.keep();
  }
}

export const eventHandler = exportHandler(Threshold);
