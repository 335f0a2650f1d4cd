/*
 * Keeps events whose numeric field `field` (a name or dotted path) is greater than `min`.
 *
 * The C twin of plugins/rust/threshold: the same configuration, decisions and messages.
 * Config: {"field": "amount", "min": 50}. An event whose payload is not a MessagePack map
 * fails with invalid-input; one whose field is missing or not a number is dropped. Kept
 * events pass through unchanged, so no payload is copied back to the host.
 */
#include "handler.h"
#include "weir_plugin.h"

static const char *field;
static double min;

static bool threshold_init(const weir_config *config, weir_error *err) {
    return weir_config_str(config, "field", &field, err) &&
           weir_config_f64(config, "min", &min, err);
}

static bool threshold_handle(const weir_event *event, weir_emit *out, weir_error *err) {
    weir_value value;
    double number;
    if (!weir_event_field(event, field, &value, err)) return false;
    if (weir_value_as_f64(&value, &number) && number > min) weir_keep(out);
    return true;
}

WEIR_EXPORT_HANDLER(threshold)
