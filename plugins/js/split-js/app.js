/**
 * Turns one event into one event per item of its array field `field` (default `items`).
 *
 * Each output's payload is the item itself, copied as encoded; key, time and headers are the
 * input's. An event without the field, or whose field is not an array, is dropped; one whose
 * payload is not a MessagePack map fails with `invalid-input`.
 */

import { arrayItems, exportHandler } from "../../../plugin-sdk/js/weir-plugin.js";

class Split {
  constructor(config) {
    this.field = config.optStr("field") ?? "items";
  }

  handle(event, out) {
    const raw = event.fieldRaw(this.field);
    if (raw === undefined) return;
    const items = arrayItems(raw);
    if (items === null) return;
    // An index loop: `for...of` costs several calls per item in the engine's interpreter.
    for (let i = 0; i < items.length; i++) out.emitBytes(items[i]);
  }
}

export const eventHandler = exportHandler(Split);
