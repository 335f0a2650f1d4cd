/*
 * Hostile: aborts (a trap) on events whose `poison` field is `true`; keeps the others.
 *
 * The C twin of plugins/rust/testing/panic. C has no exceptions: a plugin that cannot go on
 * says why on stderr, which the host attaches to the fault, and calls abort(). The host then
 * replaces the instance and retries the batch's events one at a time to find the culprit.
 */
#include "handler.h"
#include "weir_plugin.h"

static bool panic_init(const weir_config *config, weir_error *err) {
    (void)config;
    (void)err;
    return true;
}

static bool panic_handle(const weir_event *event, weir_emit *out, weir_error *err) {
    weir_value poison;
    if (!weir_event_field(event, "poison", &poison, err)) return false;
    if (poison.type == WEIR_BOOL && poison.b) {
        fprintf(stderr, "poisoned event at time %lld\n", (long long)event->time);
        abort();
    }
    weir_keep(out);
    return true;
}

WEIR_EXPORT_HANDLER(panic)
