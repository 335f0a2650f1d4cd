/*
 * Aggregator: count, sum, min, max and mean of the numeric field `field` over a window.
 *
 * The C twin of plugins/rust/stats. Config: {"field": "amount"}. Events whose field is missing
 * or not a number still count (in `count`) but do not change the numeric results; a payload
 * that is not a MessagePack map fails that event. The result is a map
 * {count, numeric, sum, min, max, mean} where min, max and mean are nil while no numeric value
 * was seen. The accumulator is stored as the Rust plugin stores it (a MessagePack map with
 * named fields), so either can read state the other wrote.
 */
#include "aggregator.h"
#include "weir_plugin.h"

typedef struct stats_acc {
    uint64_t count;
    uint64_t numeric;
    double sum;
    bool has_min, has_max;
    double min, max;
} stats_acc;

static const char *field;

static bool stats_init(const weir_config *config, weir_error *err) {
    return weir_config_str(config, "field", &field, err);
}

static void stats_create(stats_acc *acc) { (void)acc; }

static bool stats_add(stats_acc *acc, const weir_event *event, weir_error *err) {
    weir_value value;
    double number;
    if (!weir_event_field(event, field, &value, err)) return false;
    acc->count += 1;
    if (weir_value_as_f64(&value, &number)) {
        acc->numeric += 1;
        acc->sum += number;
        /* fmin/fmax skip NaN and order -0.0 below 0.0, as Rust's f64::min/max do. */
        acc->min = acc->has_min ? fmin(acc->min, number) : number;
        acc->max = acc->has_max ? fmax(acc->max, number) : number;
        acc->has_min = acc->has_max = true;
    }
    return true;
}

static void stats_merge(stats_acc *acc, stats_acc *other) {
    acc->count += other->count;
    acc->numeric += other->numeric;
    acc->sum += other->sum;
    if (other->has_min) acc->min = acc->has_min ? fmin(acc->min, other->min) : other->min;
    if (other->has_max) acc->max = acc->has_max ? fmax(acc->max, other->max) : other->max;
    acc->has_min |= other->has_min;
    acc->has_max |= other->has_max;
}

static void write_opt_f64(weir_buf *out, bool present, double value) {
    if (present) weir_mp_write_f64(out, value);
    else weir_mp_write_nil(out);
}

static bool stats_finish(const stats_acc *acc, weir_buf *out, weir_error *err) {
    (void)err;
    weir_mp_write_map_len(out, 6);
    weir_mp_write_cstr(out, "count");
    weir_mp_write_uint(out, acc->count);
    weir_mp_write_cstr(out, "numeric");
    weir_mp_write_uint(out, acc->numeric);
    weir_mp_write_cstr(out, "sum");
    weir_mp_write_f64(out, acc->sum);
    weir_mp_write_cstr(out, "min");
    write_opt_f64(out, acc->has_min, acc->min);
    weir_mp_write_cstr(out, "max");
    write_opt_f64(out, acc->has_max, acc->max);
    weir_mp_write_cstr(out, "mean");
    write_opt_f64(out, acc->numeric > 0, acc->sum / (double)acc->numeric);
    return true;
}

static void stats_encode(const stats_acc *acc, weir_buf *out) {
    weir_mp_write_map_len(out, 5);
    weir_mp_write_cstr(out, "count");
    weir_mp_write_uint(out, acc->count);
    weir_mp_write_cstr(out, "numeric");
    weir_mp_write_uint(out, acc->numeric);
    weir_mp_write_cstr(out, "sum");
    weir_mp_write_f64(out, acc->sum);
    weir_mp_write_cstr(out, "min");
    write_opt_f64(out, acc->has_min, acc->min);
    weir_mp_write_cstr(out, "max");
    write_opt_f64(out, acc->has_max, acc->max);
}

/* Reads `value` as an optional float into `has` and `out`; false when it is neither. */
static bool read_opt_f64(const weir_value *value, bool *has, double *out) {
    *has = weir_value_as_f64(value, out);
    return *has || value->type == WEIR_NIL;
}

static bool stats_decode(const uint8_t *bytes, size_t len, stats_acc *acc, weir_error *err) {
    weir_mp_cursor cursor = {bytes, len};
    weir_value map, key, value;
    weir_mp_error error = weir_mp_next(&cursor, &map);
    unsigned seen = 0;
    if (!error && map.type != WEIR_MAP) return weir_fail(err, WEIR_UNSUPPORTED_STATE, "not a map");
    for (size_t k = 0; !error && k < map.len; k++) {
        const uint8_t *raw;
        size_t raw_len, used;
        bool ok = true;
        /* Whole values, so that a field a later version adds is skipped, whatever its type. */
        if ((error = weir_mp_next(&cursor, &key)) ||
            (error = weir_mp_next_raw(&cursor, &raw, &raw_len)) ||
            (error = weir_mp_read(raw, raw_len, &value, &used)))
            break;
        if (weir_value_is_str(&key, "count", 5)) {
            ok = value.type == WEIR_UINT;
            acc->count = value.u;
            seen |= 1;
        } else if (weir_value_is_str(&key, "numeric", 7)) {
            ok = value.type == WEIR_UINT;
            acc->numeric = value.u;
            seen |= 2;
        } else if (weir_value_is_str(&key, "sum", 3)) {
            ok = weir_value_as_f64(&value, &acc->sum);
            seen |= 4;
        } else if (weir_value_is_str(&key, "min", 3)) {
            ok = read_opt_f64(&value, &acc->has_min, &acc->min);
        } else if (weir_value_is_str(&key, "max", 3)) {
            ok = read_opt_f64(&value, &acc->has_max, &acc->max);
        }
        if (!ok)
            return weir_fail(err, WEIR_UNSUPPORTED_STATE, "invalid type for field `%.*s`",
                             (int)key.len, (const char *)key.ptr);
    }
    if (error) return weir_fail(err, WEIR_UNSUPPORTED_STATE, "%s", weir_mp_error_message(error));
    if (seen != 7) {
        const char *missing = !(seen & 1) ? "count" : !(seen & 2) ? "numeric" : "sum";
        return weir_fail(err, WEIR_UNSUPPORTED_STATE, "missing field `%s`", missing);
    }
    return true;
}

static void stats_release(stats_acc *acc) { (void)acc; }

WEIR_EXPORT_AGGREGATOR(stats, stats_acc)
