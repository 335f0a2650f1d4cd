/**
 * Hostile: throws on events whose `poison` field is `true`; keeps the others.
 *
 * The throw is not caught here: the SDK turns it into a failure of that event, which the
 * host dead-letters with the message "Error: poisoned event at time ...".
 */

import { exportHandler } from "../../../plugin-sdk/js/weir-plugin.js";

class Panic {
  handle(event, out) {
    if (event.field("poison") === true) {
      throw new Error(`poisoned event at time ${event.time}`);
    }
    out.keep();
  }
}

export const eventHandler = exportHandler(Panic);
