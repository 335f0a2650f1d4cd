/*
 * Pattern: one event of each of the kinds in `steps`, in that order, each the next of its kind
 * after the one before (relaxed contiguity: other events in between are skipped), all within
 * `within_ms` of the first, for the same key.
 *
 * The C twin of plugins/rust/sequence. Config:
 * {"field": "kind", "steps": ["a", "b", "c"], "within_ms": 60000}. Every event of the first
 * kind starts a partial match; a match is {"start": t0, "end": t}. The state is stored as the
 * Rust plugin stores it: {"partial": [[start, steps matched], ...]}, oldest first.
 */
#include "pattern.h"
#include "weir_plugin.h"

typedef struct partial {
    int64_t start;
    uint32_t done;
} partial;

typedef struct sequence_state {
    partial *items;
    size_t len;
} sequence_state;

static const char *field;
static const weir_json *steps;
static int64_t within_ms;

/* ---- configuration, with the messages serde gives the Rust plugin ---- */

/* What serde_json calls a JSON value in "invalid type: ..." messages. */
static void describe(weir_buf *out, const weir_json *value) {
    char text[48];
    int n = 0;
    switch (value->type) {
    case WEIR_JSON_NULL: n = snprintf(text, sizeof text, "null"); break;
    case WEIR_JSON_BOOL: n = snprintf(text, sizeof text, "boolean `%s`",
                                      value->boolean ? "true" : "false"); break;
    case WEIR_JSON_ARRAY: n = snprintf(text, sizeof text, "sequence"); break;
    case WEIR_JSON_OBJECT: n = snprintf(text, sizeof text, "map"); break;
    case WEIR_JSON_STRING:
        weir_buf_append(out, "string ", 7);
        weir_json_write(out, value);
        return;
    case WEIR_JSON_NUMBER:
        if (value->integer == WEIR_JSON_FLOAT) {
            weir_buf_append(out, "floating point `", 16);
            weir_json_write(out, value);
            weir_buf_push(out, '`');
            return;
        }
        weir_buf_append(out, "integer `", 9);
        weir_json_write(out, value);
        weir_buf_push(out, '`');
        return;
    }
    weir_buf_append(out, text, (size_t)n);
}

static bool invalid_type(const weir_json *value, const char *expected, weir_error *err) {
    weir_buf text = {0};
    describe(&text, value);
    weir_fail(err, WEIR_INVALID_CONFIG, "configuration: invalid type: %.*s, expected %s",
              (int)text.len, (const char *)text.ptr, expected);
    weir_buf_free(&text);
    return false;
}

static bool sequence_init(const weir_config *config, weir_error *err) {
    const weir_json *f = weir_config_get(config, "field");
    const weir_json *s = weir_config_get(config, "steps");
    const weir_json *w = weir_config_get(config, "within_ms");
    /* serde reads the keys in sorted order (as declared here), then reports missing ones. */
    if (f && f->type != WEIR_JSON_STRING) return invalid_type(f, "a string", err);
    if (s && s->type != WEIR_JSON_ARRAY) return invalid_type(s, "a sequence", err);
    for (size_t k = 0; s && k < s->count; k++)
        if (s->items[k].type != WEIR_JSON_STRING)
            return invalid_type(&s->items[k], "a string", err);
    if (w && w->type == WEIR_JSON_NUMBER && w->integer == WEIR_JSON_UINT &&
        w->u > (uint64_t)INT64_MAX)
        return weir_fail(err, WEIR_INVALID_CONFIG,
                         "configuration: invalid value: integer `%llu`, expected i64",
                         (unsigned long long)w->u);
    if (w && (w->type != WEIR_JSON_NUMBER || w->integer == WEIR_JSON_FLOAT))
        return invalid_type(w, "i64", err);
    const char *missing = !f ? "field" : !s ? "steps" : !w ? "within_ms" : NULL;
    if (missing)
        return weir_fail(err, WEIR_INVALID_CONFIG, "configuration: missing field `%s`", missing);
    field = f->str;
    steps = s;
    within_ms = w->integer == WEIR_JSON_NEG ? w->i : (int64_t)w->u;
    if (steps->count == 0 || within_ms <= 0)
        return weir_fail(err, WEIR_INVALID_CONFIG, "\"steps\" must name at least one kind "
                                                   "and \"within_ms\" be positive");
    return true;
}

/* ---- matching ---- */

/* Event time plus the bound, wrapping on overflow as the Rust plugin's release build does. */
static int64_t deadline(int64_t start) { return (int64_t)((uint64_t)start + (uint64_t)within_ms); }

/* Drops partial matches whose first event is `within_ms` or more before `now`. */
static void expire(sequence_state *state, int64_t now) {
    size_t kept = 0;
    for (size_t k = 0; k < state->len; k++)
        if (deadline(state->items[k].start) > now) state->items[kept++] = state->items[k];
    state->len = kept;
}

static bool is_step(size_t index, const char *kind, size_t len) {
    const weir_json *step = &steps->items[index];
    return step->len == len && memcmp(step->str, kind, len) == 0;
}

static void emit_match(weir_matches *matches, int64_t start, int64_t end) {
    static weir_buf payload; /* reused: no allocation per match once it has grown */
    weir_buf_clear(&payload);
    weir_mp_write_map_len(&payload, 2);
    weir_mp_write_cstr(&payload, "start");
    weir_mp_write_int(&payload, start);
    weir_mp_write_cstr(&payload, "end");
    weir_mp_write_int(&payload, end);
    weir_match_buf(matches, &payload);
}

static bool sequence_on_event(sequence_state *state, const weir_event *event,
                              weir_matches *matches, weir_error *err) {
    int64_t now = event->time;
    weir_value value;
    const char *kind;
    size_t len;
    expire(state, now);
    if (!weir_event_field(event, field, &value, err)) return false;
    if (!weir_value_as_str(&value, &kind, &len)) return true;
    size_t kept = 0;
    for (size_t k = 0; k < state->len; k++) {
        partial p = state->items[k];
        if (p.done < steps->count && is_step(p.done, kind, len) && ++p.done == steps->count) {
            emit_match(matches, p.start, now);
            continue;
        }
        state->items[kept++] = p;
    }
    state->len = kept;
    if (is_step(0, kind, len)) {
        if (steps->count == 1) {
            emit_match(matches, now, now);
        } else {
            partial *grown = realloc(state->items, (state->len + 1) * sizeof(partial));
            if (!grown) abort();
            state->items = grown;
            state->items[state->len++] = (partial){now, 1};
        }
    }
    return true;
}

static bool sequence_on_timer(sequence_state *state, int64_t now, weir_matches *matches,
                              weir_error *err) {
    (void)matches;
    (void)err;
    expire(state, now);
    return true;
}

static bool sequence_next_timer(const sequence_state *state, int64_t *at) {
    for (size_t k = 0; k < state->len; k++) {
        int64_t due = deadline(state->items[k].start);
        if (k == 0 || due < *at) *at = due;
    }
    return state->len > 0;
}

/* ---- state ---- */

static void sequence_create(sequence_state *state) { (void)state; }

static void sequence_encode(const sequence_state *state, weir_buf *out) {
    weir_mp_write_map_len(out, 1);
    weir_mp_write_cstr(out, "partial");
    weir_mp_write_array_len(out, (uint32_t)state->len);
    for (size_t k = 0; k < state->len; k++) {
        weir_mp_write_array_len(out, 2);
        weir_mp_write_int(out, state->items[k].start);
        weir_mp_write_uint(out, state->items[k].done);
    }
}

static bool sequence_decode(const uint8_t *bytes, size_t len, sequence_state *state,
                            weir_error *err) {
    weir_mp_cursor cursor = {bytes, len};
    weir_value map, key, list, pair, start, done;
    weir_mp_error error = weir_mp_next(&cursor, &map);
    bool seen = false;
    if (!error && map.type != WEIR_MAP) return weir_fail(err, WEIR_UNSUPPORTED_STATE, "not a map");
    for (size_t k = 0; !error && k < map.len; k++) {
        if ((error = weir_mp_next(&cursor, &key))) break;
        if (!weir_value_is_str(&key, "partial", 7)) {
            error = weir_mp_next_raw(&cursor, NULL, NULL); /* a field of a later version */
            continue;
        }
        if ((error = weir_mp_next(&cursor, &list))) break;
        if (list.type != WEIR_ARRAY)
            return weir_fail(err, WEIR_UNSUPPORTED_STATE, "`partial` is not a sequence");
        seen = true;
        /* Each item takes 3 bytes or more: a longer count is a lie, not an allocation. */
        if (list.len > cursor.len / 3) {
            error = WEIR_MP_TRUNCATED;
            break;
        }
        free(state->items);
        state->items = calloc(list.len + 1, sizeof(partial));
        state->len = 0;
        if (!state->items) abort();
        for (size_t j = 0; !error && j < list.len; j++) {
            if ((error = weir_mp_next(&cursor, &pair)) || (error = weir_mp_next(&cursor, &start)) ||
                (error = weir_mp_next(&cursor, &done)))
                break;
            partial *p = &state->items[state->len++];
            if (pair.type != WEIR_ARRAY || pair.len != 2 || !weir_value_as_i64(&start, &p->start) ||
                done.type != WEIR_UINT || done.u > UINT32_MAX)
                return weir_fail(err, WEIR_UNSUPPORTED_STATE, "a partial match is not [i64, u32]");
            p->done = (uint32_t)done.u;
        }
    }
    if (error) return weir_fail(err, WEIR_UNSUPPORTED_STATE, "%s", weir_mp_error_message(error));
    if (!seen) return weir_fail(err, WEIR_UNSUPPORTED_STATE, "missing field `partial`");
    return true;
}

static void sequence_release(sequence_state *state) {
    free(state->items);
    state->items = NULL;
    state->len = 0;
}

WEIR_EXPORT_PATTERN(sequence, sequence_state)
