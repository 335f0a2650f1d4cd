/*
 * Turns one event into one event per item of its array field `field` (default "items").
 *
 * The C twin of plugins/rust/split. Each output's payload is the item's own bytes, copied as
 * they are (no re-encoding); key, time and headers are the input's. An event without the
 * field, or whose field is not an array, is dropped; one whose payload is not a MessagePack
 * map fails with invalid-input, and so does one whose array is cut short (its outputs so far
 * are withdrawn).
 */
#include "handler.h"
#include "weir_plugin.h"

static const char *field;

static bool split_init(const weir_config *config, weir_error *err) {
    return weir_config_opt_str(config, "field", "items", &field, err);
}

static bool split_handle(const weir_event *event, weir_emit *out, weir_error *err) {
    weir_value items;
    if (!weir_event_field(event, field, &items, err)) return false;
    if (items.type != WEIR_ARRAY) return true;
    weir_mp_cursor cursor = {items.ptr, items.size};
    for (size_t k = 0; k < items.len; k++) {
        const uint8_t *item;
        size_t len;
        weir_mp_error error = weir_mp_next_raw(&cursor, &item, &len);
        if (error) return weir_fail(err, WEIR_INVALID_INPUT, "%s", weir_mp_error_message(error));
        weir_emit_bytes(out, item, len);
    }
    return true;
}

WEIR_EXPORT_HANDLER(split)
