/*
 * weir_plugin.h -- write Weir plugins in C.
 *
 * A plugin is a WebAssembly component implementing one world of the `weir:plugin` contract
 * (wit/worlds.wit). wit-bindgen generates the C bindings of a world (`handler.h`,
 * `aggregator.h` or `pattern.h` with its .c file and type object); this header sits on top
 * of them so that an author writes a few per-event functions and one export macro, and the
 * packed batch layout, the canonical ABI's ownership rules and MessagePack stay out of sight.
 *
 *     #include "handler.h"          // generated: include it first
 *     #include "weir_plugin.h"
 *
 *     static const char *field;
 *     static double min;
 *
 *     static bool threshold_init(const weir_config *config, weir_error *err) {
 *         return weir_config_str(config, "field", &field, err) &&
 *                weir_config_f64(config, "min", &min, err);
 *     }
 *
 *     static bool threshold_handle(const weir_event *event, weir_emit *out, weir_error *err) {
 *         weir_value value;
 *         double number;
 *         if (!weir_event_field(event, field, &value, err)) return false;
 *         if (weir_value_as_f64(&value, &number) && number > min) weir_keep(out);
 *         return true;
 *     }
 *
 *     WEIR_EXPORT_HANDLER(threshold)
 *
 * | world        | export macro                          | functions the plugin defines      |
 * |--------------|---------------------------------------|-----------------------------------|
 * | `handler`    | WEIR_EXPORT_HANDLER(p)                | p_init, p_handle                  |
 * | `aggregator` | WEIR_EXPORT_AGGREGATOR(p, acc_type)   | p_init, p_create, p_add, p_merge, |
 * |              |                                       | p_finish, p_encode, p_decode,     |
 * |              |                                       | p_release                         |
 * | `pattern`    | WEIR_EXPORT_PATTERN(p, state_type)    | p_init, p_create, p_on_event,     |
 * |              |                                       | p_on_timer, p_next_timer,         |
 * |              |                                       | p_encode, p_decode, p_release     |
 *
 * The signatures are listed beside each macro below. Functions that can fail return `bool`
 * and fill a `weir_error` (see weir_fail): for a per-event function that fails that event
 * only, and the host dead-letters it with the message.
 *
 * Memory: every value handed to a plugin function (payload bytes, keys, headers) borrows the
 * batch and is valid only during that call. Strings read from the configuration live as long
 * as the instance. The SDK frees what the contract hands in and allocates what it hands back
 * so that the bindings' post-return functions free it: nothing is kept between batches.
 *
 * Everything here is `static` but what the export macro defines (the world's exported
 * functions): include the header in the plugin's one source file.
 */
#ifndef WEIR_PLUGIN_H
#define WEIR_PLUGIN_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <math.h>

#if defined(__BINDINGS_HANDLER_H)
#define WEIR__W(name) handler_##name
#elif defined(__BINDINGS_AGGREGATOR_H)
#define WEIR__W(name) aggregator_##name
#elif defined(__BINDINGS_PATTERN_H)
#define WEIR__W(name) pattern_##name
#else
#error "include the generated world header (handler.h, aggregator.h or pattern.h) first"
#endif

#define WEIR__INLINE static inline __attribute__((always_inline))
#define WEIR__UNUSED __attribute__((unused))

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

/** What kind of problem a plugin reports (the contract's `error-code`). */
typedef enum weir_error_code {
    /** The configuration is missing a key or has a bad value. */
    WEIR_INVALID_CONFIG = 0,
    /** An input event cannot be handled (bad encoding, missing field, wrong type). */
    WEIR_INVALID_INPUT = 1,
    /** Held state was written by an incompatible version of the plugin. */
    WEIR_UNSUPPORTED_STATE = 2,
    /** Anything else. */
    WEIR_INTERNAL = 3,
} weir_error_code;

/** An error returned to the host as a value. `message` is heap-allocated (or NULL). */
typedef struct weir_error {
    weir_error_code code;
    char *message;
    size_t len;
} weir_error;

/** Fills `err` with `code` and a printf-style message; returns false, to be returned. */
static WEIR__UNUSED __attribute__((format(printf, 3, 4))) bool
weir_fail(weir_error *err, weir_error_code code, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    free(err->message);
    err->code = code;
    err->message = NULL;
    err->len = 0;
    if (len <= 0) return false;
    err->message = (char *)malloc((size_t)len + 1);
    if (!err->message) abort();
    va_start(args, format);
    vsnprintf(err->message, (size_t)len + 1, format, args);
    va_end(args);
    err->len = (size_t)len;
    return false;
}

/** Replaces the message of `err` with `prefix` followed by the old message. */
static WEIR__UNUSED void weir__error_prefix(weir_error *err, weir_error_code code,
                                            const char *prefix) {
    char *old = err->message;
    size_t old_len = old ? err->len : 0;
    err->message = NULL;
    weir_fail(err, code, "%s%.*s", prefix, (int)old_len, old ? old : "");
    free(old);
}

/** Frees the message of an error that is not handed to the host. */
static WEIR__UNUSED void weir_error_free(weir_error *err) {
    free(err->message);
    err->message = NULL;
    err->len = 0;
}

/* ------------------------------------------------------------------------------------------
 * Byte buffers
 * ---------------------------------------------------------------------------------------- */

/** A growable byte buffer. Zero-initialise it (`weir_buf b = {0};`), free with weir_buf_free.
 *  A buffer kept in a static and cleared between uses allocates only while it grows. */
typedef struct weir_buf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} weir_buf;

static WEIR__UNUSED __attribute__((noinline)) void weir__buf_grow(weir_buf *buf, size_t more) {
    size_t need = buf->len + more;
    if (need < buf->len) abort();
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *grown = (uint8_t *)realloc(buf->ptr, cap);
    if (!grown) abort();
    buf->ptr = grown;
    buf->cap = cap;
}

/** Makes room for `more` bytes and returns where they go; advance `len` after writing. */
WEIR__INLINE uint8_t *weir_buf_reserve(weir_buf *buf, size_t more) {
    if (buf->cap - buf->len < more) weir__buf_grow(buf, more);
    return buf->ptr + buf->len;
}

/** Appends `len` bytes. */
WEIR__INLINE void weir_buf_append(weir_buf *buf, const void *bytes, size_t len) {
    if (len == 0) return;
    memcpy(weir_buf_reserve(buf, len), bytes, len);
    buf->len += len;
}

/** Appends one byte. */
WEIR__INLINE void weir_buf_push(weir_buf *buf, uint8_t byte) {
    *weir_buf_reserve(buf, 1) = byte;
    buf->len += 1;
}

/** Empties the buffer and keeps its memory. */
WEIR__INLINE void weir_buf_clear(weir_buf *buf) { buf->len = 0; }

/** Frees the buffer's memory. */
static WEIR__UNUSED void weir_buf_free(weir_buf *buf) {
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
}

WEIR__INLINE void weir__buf_u32(weir_buf *buf, uint32_t value) {
    memcpy(weir_buf_reserve(buf, 4), &value, 4);
    buf->len += 4;
}

WEIR__INLINE void weir__buf_i64(weir_buf *buf, int64_t value) {
    memcpy(weir_buf_reserve(buf, 8), &value, 8);
    buf->len += 8;
}

/* Hands a buffer's memory to a contract list of `size`-byte items, which the bindings'
 * post-return frees. Post-return frees only non-empty lists, so an empty one is freed here. */
static WEIR__UNUSED void *weir__buf_take(weir_buf *buf, size_t size, size_t *count) {
    void *ptr = buf->ptr;
    *count = buf->len / size;
    if (*count == 0) {
        free(ptr);
        ptr = NULL;
    }
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
    return ptr;
}

#define WEIR__MOVE(list, buf) \
    ((list).ptr = weir__buf_take(&(buf), sizeof(*(list).ptr), &(list).len))

/* Guest memory is 32-bit: no buffer is longer than UINT32_MAX. */
WEIR__INLINE uint32_t weir__end(size_t len) {
    return len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
}

/* ------------------------------------------------------------------------------------------
 * MessagePack: reading
 * ---------------------------------------------------------------------------------------- */

/** Why bytes could not be read as MessagePack. */
typedef enum weir_mp_error {
    WEIR_MP_OK = 0,
    /** The value ends before its declared length. */
    WEIR_MP_TRUNCATED,
    /** A byte that starts no MessagePack value (0xc1). */
    WEIR_MP_RESERVED,
    /** The payload is not a map, where a map is needed. */
    WEIR_MP_NOT_A_MAP,
} weir_mp_error;

/** The message of a decode error, as the host shows it. */
static WEIR__UNUSED const char *weir_mp_error_message(weir_mp_error error) {
    switch (error) {
    case WEIR_MP_TRUNCATED: return "payload is truncated MessagePack";
    case WEIR_MP_RESERVED: return "payload is not valid MessagePack (reserved byte 0xc1)";
    case WEIR_MP_NOT_A_MAP: return "payload is not a MessagePack map";
    default: return "payload is valid MessagePack";
    }
}

/** The kind of a decoded value. */
typedef enum weir_type {
    /** No value: a looked-up field that does not exist. */
    WEIR_ABSENT = 0,
    WEIR_NIL,
    WEIR_BOOL,
    /** A negative integer (`i`). */
    WEIR_INT,
    /** A non-negative integer (`u`), whatever width the writer chose. */
    WEIR_UINT,
    /** A float (`f`); 32-bit floats are widened. */
    WEIR_FLOAT,
    /** A string: `len` bytes at `ptr` (UTF-8 unless the writer lied; see weir_value_as_str). */
    WEIR_STR,
    /** A binary string: `len` bytes at `ptr`. */
    WEIR_BIN,
    /** An array of `len` items encoded from `ptr` on (`size` bytes remain from there). */
    WEIR_ARRAY,
    /** A map of `len` key/value pairs encoded from `ptr` on (`size` bytes remain). */
    WEIR_MAP,
    /** An extension value of type `ext`: `len` bytes at `ptr`. */
    WEIR_EXT,
} weir_type;

/** One decoded value; strings, binaries and containers borrow the bytes they came from. */
typedef struct weir_value {
    weir_type type;
    int8_t ext;
    bool b;
    int64_t i;
    uint64_t u;
    double f;
    const uint8_t *ptr;
    size_t len;
    size_t size;
} weir_value;

WEIR__INLINE uint64_t weir__be(const uint8_t *p, size_t n) {
    uint64_t value = 0;
    for (size_t k = 0; k < n; k++) value = (value << 8) | p[k];
    return value;
}

/** Reads the value at the start of `buf`; `*used` is the length of its header plus, for
 *  scalars, strings and binaries, its body. Containers' items are not consumed. */
static WEIR__UNUSED weir_mp_error weir_mp_read(const uint8_t *buf, size_t n, weir_value *out,
                                               size_t *used) {
    if (n == 0) return WEIR_MP_TRUNCATED;
    uint8_t m = buf[0];
    out->type = WEIR_NIL;
    size_t len_size = 0, body, head;
    if (m <= 0x7f) {
        out->type = WEIR_UINT;
        out->u = m;
        *used = 1;
        return WEIR_MP_OK;
    }
    if (m >= 0xe0) {
        out->type = WEIR_INT;
        out->i = (int8_t)m;
        *used = 1;
        return WEIR_MP_OK;
    }
    if (m <= 0x9f) {
        out->type = m <= 0x8f ? WEIR_MAP : WEIR_ARRAY;
        out->len = m & 0x0f;
        out->ptr = buf + 1;
        out->size = n - 1;
        *used = 1;
        return WEIR_MP_OK;
    }
    if (m <= 0xbf) {
        body = m & 0x1f;
        if (body > n - 1) return WEIR_MP_TRUNCATED;
        out->type = WEIR_STR;
        out->ptr = buf + 1;
        out->len = body;
        *used = 1 + body;
        return WEIR_MP_OK;
    }
    switch (m) {
    case 0xc0: *used = 1; return WEIR_MP_OK;
    case 0xc1: return WEIR_MP_RESERVED;
    case 0xc2:
    case 0xc3:
        out->type = WEIR_BOOL;
        out->b = m == 0xc3;
        *used = 1;
        return WEIR_MP_OK;
    case 0xc4: case 0xc5: case 0xc6:
    case 0xd9: case 0xda: case 0xdb:
        len_size = (m == 0xc4 || m == 0xd9) ? 1 : (m == 0xc5 || m == 0xda) ? 2 : 4;
        if (n < 1 + len_size) return WEIR_MP_TRUNCATED;
        body = (size_t)weir__be(buf + 1, len_size);
        if (body > n - 1 - len_size) return WEIR_MP_TRUNCATED;
        out->type = m >= 0xd9 ? WEIR_STR : WEIR_BIN;
        out->ptr = buf + 1 + len_size;
        out->len = body;
        *used = 1 + len_size + body;
        return WEIR_MP_OK;
    case 0xc7: case 0xc8: case 0xc9:
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        if (m >= 0xd4) {
            body = (size_t)1 << (m - 0xd4);
            head = 1;
        } else {
            len_size = (size_t)1 << (m - 0xc7);
            if (n < 1 + len_size) return WEIR_MP_TRUNCATED;
            body = (size_t)weir__be(buf + 1, len_size);
            head = 1 + len_size;
        }
        if (n <= head) return WEIR_MP_TRUNCATED;
        if (body > n - head - 1) return WEIR_MP_TRUNCATED;
        out->type = WEIR_EXT;
        out->ext = (int8_t)buf[head];
        out->ptr = buf + head + 1;
        out->len = body;
        *used = head + 1 + body;
        return WEIR_MP_OK;
    case 0xca:
        if (n < 5) return WEIR_MP_TRUNCATED;
        {
            uint32_t bits = (uint32_t)weir__be(buf + 1, 4);
            float f;
            memcpy(&f, &bits, 4);
            out->type = WEIR_FLOAT;
            out->f = (double)f;
        }
        *used = 5;
        return WEIR_MP_OK;
    case 0xcb:
        if (n < 9) return WEIR_MP_TRUNCATED;
        {
            uint64_t bits = weir__be(buf + 1, 8);
            memcpy(&out->f, &bits, 8);
            out->type = WEIR_FLOAT;
        }
        *used = 9;
        return WEIR_MP_OK;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        len_size = (size_t)1 << (m - 0xcc);
        if (n < 1 + len_size) return WEIR_MP_TRUNCATED;
        out->type = WEIR_UINT;
        out->u = weir__be(buf + 1, len_size);
        *used = 1 + len_size;
        return WEIR_MP_OK;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        len_size = (size_t)1 << (m - 0xd0);
        if (n < 1 + len_size) return WEIR_MP_TRUNCATED;
        uint64_t raw = weir__be(buf + 1, len_size);
        int64_t value = m == 0xd0 ? (int8_t)raw
                        : m == 0xd1 ? (int16_t)raw
                        : m == 0xd2 ? (int32_t)raw
                                    : (int64_t)raw;
        /* One number, one representation: non-negative signed integers read as WEIR_UINT. */
        if (value >= 0) {
            out->type = WEIR_UINT;
            out->u = (uint64_t)value;
        } else {
            out->type = WEIR_INT;
            out->i = value;
        }
        *used = 1 + len_size;
        return WEIR_MP_OK;
    }
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        len_size = (m == 0xdc || m == 0xde) ? 2 : 4;
        if (n < 1 + len_size) return WEIR_MP_TRUNCATED;
        out->type = m <= 0xdd ? WEIR_ARRAY : WEIR_MAP;
        out->len = (size_t)weir__be(buf + 1, len_size);
        out->ptr = buf + 1 + len_size;
        out->size = n - 1 - len_size;
        *used = 1 + len_size;
        return WEIR_MP_OK;
    default:
        return WEIR_MP_RESERVED;
    }
}

/** The encoded length of the whole value at the start of `buf`, containers included. Never
 *  recurses, so a hostile, deeply nested payload cannot exhaust the stack. */
static WEIR__UNUSED weir_mp_error weir_mp_skip(const uint8_t *buf, size_t n, size_t *used) {
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        weir_value value;
        size_t step;
        weir_mp_error error = weir_mp_read(buf + pos, n - pos, &value, &step);
        if (error) return error;
        pos += step;
        pending -= 1;
        if (value.type == WEIR_ARRAY) pending += value.len;
        else if (value.type == WEIR_MAP) pending += 2 * (uint64_t)value.len;
    }
    *used = pos;
    return WEIR_MP_OK;
}

/* weir_mp_skip with the common scalars and short strings done inline. */
WEIR__INLINE weir_mp_error weir__skip_value(const uint8_t *buf, size_t n, size_t *used) {
    if (n == 0) return WEIR_MP_TRUNCATED;
    uint8_t m = buf[0];
    size_t k;
    if (m <= 0x7f || m >= 0xe0 || m == 0xc0 || m == 0xc2 || m == 0xc3) k = 1;
    else if (m >= 0xa0 && m <= 0xbf) k = 1 + (size_t)(m & 0x1f);
    else if (m == 0xcc || m == 0xd0) k = 2;
    else if (m == 0xcd || m == 0xd1) k = 3;
    else if (m == 0xca || m == 0xce || m == 0xd2) k = 5;
    else if (m == 0xcb || m == 0xcf || m == 0xd3) k = 9;
    else if (m == 0xd9) {
        if (n < 2) return WEIR_MP_TRUNCATED;
        k = 2 + (size_t)buf[1];
    } else return weir_mp_skip(buf, n, used);
    if (k > n) return WEIR_MP_TRUNCATED;
    *used = k;
    return WEIR_MP_OK;
}

/* Whether the map key at the start of `buf` is the string `want`, and the key's length.
 * Short string keys, nearly all keys in practice, are compared without decoding a value. */
WEIR__INLINE weir_mp_error weir__key_matches(const uint8_t *buf, size_t n, const char *want,
                                             size_t want_len, bool *matches, size_t *used) {
    size_t start, len;
    if (n > 0 && buf[0] >= 0xa0 && buf[0] <= 0xbf) {
        start = 1;
        len = buf[0] & 0x1f;
    } else if (n > 0 && buf[0] == 0xd9) {
        if (n < 2) return WEIR_MP_TRUNCATED;
        start = 2;
        len = buf[1];
    } else {
        weir_value key;
        weir_mp_error error = weir_mp_read(buf, n, &key, used);
        if (error) return error;
        *matches = key.type == WEIR_STR && key.len == want_len &&
                   (want_len == 0 || memcmp(key.ptr, want, want_len) == 0);
        return WEIR_MP_OK;
    }
    if (len > n - start) return WEIR_MP_TRUNCATED;
    const uint8_t *key = buf + start;
    /* Most keys that differ, differ in length or first byte: decided without memcmp. */
    *matches = len == want_len && (len == 0 || (key[0] == (uint8_t)want[0] &&
                                                memcmp(key, want, len) == 0));
    *used = start + len;
    return WEIR_MP_OK;
}

/* The entry count and header length of the map at the start of `buf`; `*is_map` false when
 * the value there is not a map (malformed bytes are still reported as such). */
WEIR__INLINE weir_mp_error weir__map_header(const uint8_t *buf, size_t n, bool *is_map,
                                            size_t *len, size_t *head) {
    if (n == 0) return WEIR_MP_TRUNCATED;
    uint8_t m = buf[0];
    *is_map = true;
    if (m >= 0x80 && m <= 0x8f) {
        *len = m & 0x0f;
        *head = 1;
    } else if (m == 0xde || m == 0xdf) {
        size_t size = m == 0xde ? 2 : 4;
        if (n < 1 + size) return WEIR_MP_TRUNCATED;
        *len = (size_t)weir__be(buf + 1, size);
        *head = 1 + size;
    } else {
        weir_value value;
        size_t used;
        *is_map = false;
        return weir_mp_read(buf, n, &value, &used);
    }
    return WEIR_MP_OK;
}

/** The value at a dotted `path` ("amount", "user.id") of the map `payload`, found by scanning
 *  the encoded bytes without decoding the rest. `out->type` is WEIR_ABSENT when a key is
 *  missing or an intermediate value is not a map. WEIR_MP_NOT_A_MAP when the payload itself
 *  is not a map; other errors for malformed bytes met on the way. */
static WEIR__UNUSED weir_mp_error weir_mp_lookup(const uint8_t *payload, size_t n,
                                                 const char *path, weir_value *out) {
    const uint8_t *current = payload;
    size_t current_len = n;
    const char *rest = path;
    bool root = true;
    for (;;) {
        const char *end = rest;
        while (*end && *end != '.') end++;
        size_t segment_len = (size_t)(end - rest);
        bool is_map;
        size_t len, pos;
        weir_mp_error error = weir__map_header(current, current_len, &is_map, &len, &pos);
        if (error) return error;
        if (!is_map) {
            if (root) return WEIR_MP_NOT_A_MAP;
            out->type = WEIR_ABSENT;
            return WEIR_MP_OK;
        }
        root = false;
        bool found = false;
        for (size_t k = 0; k < len; k++) {
            bool matches = false;
            size_t used;
            if (pos > current_len) return WEIR_MP_TRUNCATED;
            error = weir__key_matches(current + pos, current_len - pos, rest, segment_len,
                                      &matches, &used);
            if (error) return error;
            pos += used;
            if (matches) {
                found = true;
                break;
            }
            if (pos > current_len) return WEIR_MP_TRUNCATED;
            error = weir__skip_value(current + pos, current_len - pos, &used);
            if (error) return error;
            pos += used;
        }
        if (!found) {
            out->type = WEIR_ABSENT;
            return WEIR_MP_OK;
        }
        current += pos;
        current_len -= pos;
        if (*end == '.') {
            rest = end + 1;
            continue;
        }
        size_t used;
        return weir_mp_read(current, current_len, out, &used);
    }
}

/** The value as a number, if it is an integer or a float (booleans are not numbers). */
WEIR__INLINE bool weir_value_as_f64(const weir_value *value, double *out) {
    switch (value->type) {
    case WEIR_UINT: *out = (double)value->u; return true;
    case WEIR_INT: *out = (double)value->i; return true;
    case WEIR_FLOAT: *out = value->f; return true;
    default: return false;
    }
}

/** The value as a signed integer, if it is an integer that fits. */
WEIR__INLINE bool weir_value_as_i64(const weir_value *value, int64_t *out) {
    if (value->type == WEIR_INT) {
        *out = value->i;
        return true;
    }
    if (value->type == WEIR_UINT && value->u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)value->u;
        return true;
    }
    return false;
}

/** Whether `len` bytes at `s` are valid UTF-8 (as Rust's `str::from_utf8` decides). */
static WEIR__UNUSED bool weir_utf8_valid(const uint8_t *s, size_t len) {
    size_t k = 0;
    while (k < len) {
        uint8_t c = s[k];
        if (c < 0x80) {
            k++;
            continue;
        }
        size_t extra;
        uint8_t low = 0x80, high = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) extra = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            if (c == 0xe0) low = 0xa0;
            if (c == 0xed) high = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            if (c == 0xf0) low = 0x90;
            if (c == 0xf4) high = 0x8f;
        } else return false;
        if (extra > len - k - 1) return false;
        if (s[k + 1] < low || s[k + 1] > high) return false;
        for (size_t j = 2; j <= extra; j++)
            if ((s[k + j] & 0xc0) != 0x80) return false;
        k += extra + 1;
    }
    return true;
}

/** The value as a string (not NUL-terminated), if it is a valid UTF-8 string. */
WEIR__INLINE bool weir_value_as_str(const weir_value *value, const char **ptr, size_t *len) {
    if (value->type != WEIR_STR || !weir_utf8_valid(value->ptr, value->len)) return false;
    *ptr = (const char *)value->ptr;
    *len = value->len;
    return true;
}

/** Whether the value is the string `text` (`len` bytes), byte for byte. */
WEIR__INLINE bool weir_value_is_str(const weir_value *value, const char *text, size_t len) {
    return value->type == WEIR_STR && value->len == len &&
           (len == 0 || memcmp(value->ptr, text, len) == 0);
}

/** Reads MessagePack values one after another: a map or array header, then its items. */
typedef struct weir_mp_cursor {
    const uint8_t *ptr;
    size_t len;
} weir_mp_cursor;

/** Reads the next value; for a container only its header (its items come next). */
WEIR__INLINE weir_mp_error weir_mp_next(weir_mp_cursor *cursor, weir_value *out) {
    size_t used;
    weir_mp_error error = weir_mp_read(cursor->ptr, cursor->len, out, &used);
    if (!error) {
        cursor->ptr += used;
        cursor->len -= used;
    }
    return error;
}

/** Skips the next whole value, containers included; `out` (if not NULL) gets its bytes. */
WEIR__INLINE weir_mp_error weir_mp_next_raw(weir_mp_cursor *cursor, const uint8_t **out,
                                            size_t *out_len) {
    size_t used;
    weir_mp_error error = weir_mp_skip(cursor->ptr, cursor->len, &used);
    if (error) return error;
    if (out) *out = cursor->ptr;
    if (out_len) *out_len = used;
    cursor->ptr += used;
    cursor->len -= used;
    return WEIR_MP_OK;
}

/* ------------------------------------------------------------------------------------------
 * MessagePack: writing (integers in their shortest form, like rmp-serde)
 * ---------------------------------------------------------------------------------------- */

WEIR__INLINE void weir__put_be(weir_buf *out, uint8_t marker, uint64_t value, size_t n) {
    uint8_t *p = weir_buf_reserve(out, 1 + n);
    p[0] = marker;
    for (size_t k = 0; k < n; k++) p[1 + k] = (uint8_t)(value >> (8 * (n - 1 - k)));
    out->len += 1 + n;
}

/** Appends `nil`. */
WEIR__INLINE void weir_mp_write_nil(weir_buf *out) { weir_buf_push(out, 0xc0); }

/** Appends a boolean. */
WEIR__INLINE void weir_mp_write_bool(weir_buf *out, bool value) {
    weir_buf_push(out, value ? 0xc3 : 0xc2);
}

/** Appends a non-negative integer in its shortest form. */
WEIR__INLINE void weir_mp_write_uint(weir_buf *out, uint64_t value) {
    if (value <= 0x7f) weir_buf_push(out, (uint8_t)value);
    else if (value <= 0xff) weir__put_be(out, 0xcc, value, 1);
    else if (value <= 0xffff) weir__put_be(out, 0xcd, value, 2);
    else if (value <= 0xffffffffu) weir__put_be(out, 0xce, value, 4);
    else weir__put_be(out, 0xcf, value, 8);
}

/** Appends an integer in its shortest form. */
WEIR__INLINE void weir_mp_write_int(weir_buf *out, int64_t value) {
    if (value >= 0) weir_mp_write_uint(out, (uint64_t)value);
    else if (value >= -32) weir_buf_push(out, (uint8_t)(int8_t)value);
    else if (value >= -128) weir__put_be(out, 0xd0, (uint8_t)(int8_t)value, 1);
    else if (value >= -32768) weir__put_be(out, 0xd1, (uint16_t)(int16_t)value, 2);
    else if (value >= INT32_MIN) weir__put_be(out, 0xd2, (uint32_t)(int32_t)value, 4);
    else weir__put_be(out, 0xd3, (uint64_t)value, 8);
}

/** Appends a 64-bit float (always 9 bytes, even when the value is integral). */
WEIR__INLINE void weir_mp_write_f64(weir_buf *out, double value) {
    uint64_t bits;
    memcpy(&bits, &value, 8);
    weir__put_be(out, 0xcb, bits, 8);
}

/** Appends a string of `len` bytes. */
WEIR__INLINE void weir_mp_write_str(weir_buf *out, const char *text, size_t len) {
    if (len <= 31) weir_buf_push(out, (uint8_t)(0xa0 | len));
    else if (len <= 0xff) weir__put_be(out, 0xd9, len, 1);
    else if (len <= 0xffff) weir__put_be(out, 0xda, len, 2);
    else weir__put_be(out, 0xdb, len, 4);
    weir_buf_append(out, text, len);
}

/** Appends a NUL-terminated string. */
WEIR__INLINE void weir_mp_write_cstr(weir_buf *out, const char *text) {
    weir_mp_write_str(out, text, strlen(text));
}

/** Appends a binary string. */
WEIR__INLINE void weir_mp_write_bin(weir_buf *out, const uint8_t *bytes, size_t len) {
    if (len <= 0xff) weir__put_be(out, 0xc4, len, 1);
    else if (len <= 0xffff) weir__put_be(out, 0xc5, len, 2);
    else weir__put_be(out, 0xc6, len, 4);
    weir_buf_append(out, bytes, len);
}

/** Appends an array header; `len` items must follow. */
WEIR__INLINE void weir_mp_write_array_len(weir_buf *out, uint32_t len) {
    if (len <= 15) weir_buf_push(out, (uint8_t)(0x90 | len));
    else if (len <= 0xffff) weir__put_be(out, 0xdc, len, 2);
    else weir__put_be(out, 0xdd, len, 4);
}

/** Appends a map header; `len` key/value pairs must follow. */
WEIR__INLINE void weir_mp_write_map_len(weir_buf *out, uint32_t len) {
    if (len <= 15) weir_buf_push(out, (uint8_t)(0x80 | len));
    else if (len <= 0xffff) weir__put_be(out, 0xde, len, 2);
    else weir__put_be(out, 0xdf, len, 4);
}

/* ------------------------------------------------------------------------------------------
 * Configuration (the JSON object a stage passes to init)
 * ---------------------------------------------------------------------------------------- */

/** The kind of a configuration value. */
typedef enum weir_json_type {
    WEIR_JSON_NULL,
    WEIR_JSON_BOOL,
    WEIR_JSON_NUMBER,
    WEIR_JSON_STRING,
    WEIR_JSON_ARRAY,
    WEIR_JSON_OBJECT,
} weir_json_type;

/** A parsed JSON value. Strings are NUL-terminated (`len` excludes the NUL). */
typedef struct weir_json {
    weir_json_type type;
    bool boolean;
    /** The number; `integer` tells a JSON integer (exact in `u` or `i`) from a float. */
    double number;
    enum { WEIR_JSON_FLOAT, WEIR_JSON_UINT, WEIR_JSON_NEG } integer;
    uint64_t u;
    int64_t i;
    char *str;
    size_t len;
    /** Array items, or object values (`keys[k]` names `items[k]`). */
    struct weir_json *items;
    char **keys;
    size_t *key_lens;
    size_t count;
} weir_json;

/** The configuration: a JSON object. */
typedef struct weir_config {
    weir_json root;
} weir_config;

typedef struct weir__json_parser {
    const char *text;
    size_t len;
    size_t pos;
    const char *error;
} weir__json_parser;

static WEIR__UNUSED void weir__json_free(weir_json *value) {
    if (value->type == WEIR_JSON_STRING) free(value->str);
    if (value->type == WEIR_JSON_ARRAY || value->type == WEIR_JSON_OBJECT) {
        for (size_t k = 0; k < value->count; k++) {
            weir__json_free(&value->items[k]);
            if (value->keys) free(value->keys[k]);
        }
        free(value->items);
        free(value->keys);
        free(value->key_lens);
    }
    memset(value, 0, sizeof *value);
}

static WEIR__UNUSED void weir__json_ws(weir__json_parser *p) {
    while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' ||
                               p->text[p->pos] == '\n' || p->text[p->pos] == '\r'))
        p->pos++;
}

static WEIR__UNUSED void weir__utf8_put(weir_buf *out, uint32_t c) {
    if (c < 0x80) weir_buf_push(out, (uint8_t)c);
    else if (c < 0x800) {
        weir_buf_push(out, (uint8_t)(0xc0 | (c >> 6)));
        weir_buf_push(out, (uint8_t)(0x80 | (c & 0x3f)));
    } else if (c < 0x10000) {
        weir_buf_push(out, (uint8_t)(0xe0 | (c >> 12)));
        weir_buf_push(out, (uint8_t)(0x80 | ((c >> 6) & 0x3f)));
        weir_buf_push(out, (uint8_t)(0x80 | (c & 0x3f)));
    } else {
        weir_buf_push(out, (uint8_t)(0xf0 | (c >> 18)));
        weir_buf_push(out, (uint8_t)(0x80 | ((c >> 12) & 0x3f)));
        weir_buf_push(out, (uint8_t)(0x80 | ((c >> 6) & 0x3f)));
        weir_buf_push(out, (uint8_t)(0x80 | (c & 0x3f)));
    }
}

static WEIR__UNUSED bool weir__json_hex4(weir__json_parser *p, uint32_t *out) {
    if (p->len - p->pos < 4) {
        p->error = "EOF while parsing a string";
        return false;
    }
    uint32_t value = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->text[p->pos++];
        value <<= 4;
        if (c >= '0' && c <= '9') value |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') value |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') value |= (uint32_t)(c - 'A' + 10);
        else {
            p->error = "invalid escape";
            return false;
        }
    }
    *out = value;
    return true;
}

static WEIR__UNUSED bool weir__json_string(weir__json_parser *p, char **out, size_t *out_len) {
    weir_buf text = {0};
    p->pos++; /* the opening quote */
    for (;;) {
        if (p->pos >= p->len) {
            p->error = "EOF while parsing a string";
            break;
        }
        uint8_t c = (uint8_t)p->text[p->pos++];
        if (c == '"') {
            weir_buf_push(&text, 0);
            *out = (char *)text.ptr;
            *out_len = text.len - 1;
            return true;
        }
        if (c < 0x20) {
            p->error = "control character (\\u0000-\\u001F) found while parsing a string";
            break;
        }
        if (c != '\\') {
            weir_buf_push(&text, c);
            continue;
        }
        if (p->pos >= p->len) {
            p->error = "EOF while parsing a string";
            break;
        }
        char e = p->text[p->pos++];
        uint32_t code;
        switch (e) {
        case '"': weir_buf_push(&text, '"'); continue;
        case '\\': weir_buf_push(&text, '\\'); continue;
        case '/': weir_buf_push(&text, '/'); continue;
        case 'b': weir_buf_push(&text, '\b'); continue;
        case 'f': weir_buf_push(&text, '\f'); continue;
        case 'n': weir_buf_push(&text, '\n'); continue;
        case 'r': weir_buf_push(&text, '\r'); continue;
        case 't': weir_buf_push(&text, '\t'); continue;
        case 'u':
            if (!weir__json_hex4(p, &code)) goto fail;
            if (code >= 0xd800 && code <= 0xdbff) {
                uint32_t low;
                if (p->len - p->pos < 2 || p->text[p->pos] != '\\' ||
                    p->text[p->pos + 1] != 'u') {
                    p->error = "unexpected end of hex escape";
                    goto fail;
                }
                p->pos += 2;
                if (!weir__json_hex4(p, &low)) goto fail;
                if (low < 0xdc00 || low > 0xdfff) {
                    p->error = "lone leading surrogate in hex escape";
                    goto fail;
                }
                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            } else if (code >= 0xdc00 && code <= 0xdfff) {
                p->error = "lone leading surrogate in hex escape";
                goto fail;
            }
            weir__utf8_put(&text, code);
            continue;
        default:
            p->error = "invalid escape";
            goto fail;
        }
    }
fail:
    weir_buf_free(&text);
    return false;
}

static WEIR__UNUSED bool weir__json_value(weir__json_parser *p, weir_json *out, int depth);

static WEIR__UNUSED bool weir__json_number(weir__json_parser *p, weir_json *out) {
    size_t start = p->pos;
    bool negative = false, is_float = false;
    if (p->text[p->pos] == '-') {
        negative = true;
        p->pos++;
    }
    size_t digits = p->pos;
    while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') p->pos++;
    if (p->pos == digits || (p->text[digits] == '0' && p->pos - digits > 1)) {
        p->error = "invalid number";
        return false;
    }
    if (p->pos < p->len && p->text[p->pos] == '.') {
        is_float = true;
        size_t fraction = ++p->pos;
        while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') p->pos++;
        if (p->pos == fraction) {
            p->error = "invalid number";
            return false;
        }
    }
    if (p->pos < p->len && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
        is_float = true;
        p->pos++;
        if (p->pos < p->len && (p->text[p->pos] == '+' || p->text[p->pos] == '-')) p->pos++;
        size_t exponent = p->pos;
        while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') p->pos++;
        if (p->pos == exponent) {
            p->error = "invalid number";
            return false;
        }
    }
    char small[64];
    size_t n = p->pos - start;
    char *copy = n < sizeof small ? small : (char *)malloc(n + 1);
    if (!copy) abort();
    memcpy(copy, p->text + start, n);
    copy[n] = 0;
    out->type = WEIR_JSON_NUMBER;
    out->integer = WEIR_JSON_FLOAT;
    if (!is_float) {
        /* Integers keep their exact value when they fit 64 bits, as serde_json does. */
        char *end;
        if (negative) {
            long long v = strtoll(copy, &end, 10);
            /* serde_json reads "-0" as the float -0.0. */
            if (v != 0 && !(v == LLONG_MIN && strcmp(copy, "-9223372036854775808") != 0)) {
                out->integer = v < 0 ? WEIR_JSON_NEG : WEIR_JSON_UINT;
                out->i = v;
                out->u = (uint64_t)(v < 0 ? 0 : v);
            }
        } else {
            unsigned long long v = strtoull(copy, &end, 10);
            if (v != ULLONG_MAX || strcmp(copy, "18446744073709551615") == 0) {
                out->integer = WEIR_JSON_UINT;
                out->u = v;
            }
        }
        if (out->integer == WEIR_JSON_NEG) out->number = (double)out->i;
        else if (out->integer == WEIR_JSON_UINT) out->number = (double)out->u;
    }
    if (out->integer == WEIR_JSON_FLOAT) out->number = strtod(copy, NULL);
    if (copy != small) free(copy);
    return true;
}

static WEIR__UNUSED bool weir__json_literal(weir__json_parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) {
        p->error = "expected value";
        return false;
    }
    p->pos += n;
    return true;
}

static WEIR__UNUSED bool weir__json_value(weir__json_parser *p, weir_json *out, int depth) {
    memset(out, 0, sizeof *out);
    weir__json_ws(p);
    if (p->pos >= p->len) {
        p->error = "EOF while parsing a value";
        return false;
    }
    char c = p->text[p->pos];
    if (c == 'n') return weir__json_literal(p, "null");
    if (c == 't' || c == 'f') {
        out->type = WEIR_JSON_BOOL;
        out->boolean = c == 't';
        return weir__json_literal(p, c == 't' ? "true" : "false");
    }
    if (c == '"') {
        if (!weir__json_string(p, &out->str, &out->len)) return false;
        out->type = WEIR_JSON_STRING;
        return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return weir__json_number(p, out);
    if (c != '[' && c != '{') {
        p->error = "expected value";
        return false;
    }
    if (depth >= 128) {
        p->error = "recursion limit exceeded";
        return false;
    }
    bool object = c == '{';
    char close = object ? '}' : ']';
    weir_buf items = {0}, keys = {0}, key_lens = {0};
    out->type = object ? WEIR_JSON_OBJECT : WEIR_JSON_ARRAY;
    p->pos++;
    weir__json_ws(p);
    bool ok = true;
    if (p->pos < p->len && p->text[p->pos] == close) p->pos++;
    else
        for (;;) {
            char *key = NULL;
            size_t key_len = 0;
            weir__json_ws(p);
            if (object) {
                if (p->pos >= p->len || p->text[p->pos] != '"') {
                    p->error = p->pos >= p->len ? "EOF while parsing an object"
                                                : "key must be a string";
                    ok = false;
                    break;
                }
                if (!weir__json_string(p, &key, &key_len)) {
                    ok = false;
                    break;
                }
                weir__json_ws(p);
                if (p->pos >= p->len || p->text[p->pos] != ':') {
                    p->error = p->pos >= p->len ? "EOF while parsing an object" : "expected `:`";
                    free(key);
                    ok = false;
                    break;
                }
                p->pos++;
            }
            weir_json item;
            if (!weir__json_value(p, &item, depth + 1)) {
                weir__json_free(&item);
                free(key);
                ok = false;
                break;
            }
            weir_buf_append(&items, &item, sizeof item);
            if (object) {
                weir_buf_append(&keys, &key, sizeof key);
                weir_buf_append(&key_lens, &key_len, sizeof key_len);
            }
            weir__json_ws(p);
            if (p->pos >= p->len) {
                p->error = object ? "EOF while parsing an object" : "EOF while parsing a list";
                ok = false;
                break;
            }
            if (p->text[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->text[p->pos] == close) {
                p->pos++;
                break;
            }
            p->error = object ? "expected `,` or `}`" : "expected `,` or `]`";
            ok = false;
            break;
        }
    out->count = items.len / sizeof(weir_json);
    out->items = (weir_json *)items.ptr;
    out->keys = object ? (char **)keys.ptr : NULL;
    out->key_lens = object ? (size_t *)key_lens.ptr : NULL;
    if (!object) {
        weir_buf_free(&keys);
        weir_buf_free(&key_lens);
    }
    return ok;
}

/* The 1-based line and column of byte `pos`, as serde_json reports them. */
static WEIR__UNUSED void weir__json_position(const char *text, size_t pos, size_t *line,
                                             size_t *column) {
    *line = 1;
    *column = 0;
    for (size_t k = 0; k < pos; k++) {
        if (text[k] == '\n') {
            (*line)++;
            *column = 0;
        } else (*column)++;
    }
}

static WEIR__UNUSED bool weir__config_parse(const char *text, size_t len, weir_config *out,
                               weir_error *err) {
    memset(out, 0, sizeof *out);
    out->root.type = WEIR_JSON_OBJECT;
    size_t k = 0;
    while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n' ||
                       text[k] == '\r'))
        k++;
    if (k == len) return true; /* empty text is an empty object */
    weir__json_parser p = {text, len, 0, NULL};
    weir_json root;
    bool ok = weir__json_value(&p, &root, 0);
    if (ok) {
        weir__json_ws(&p);
        if (p.pos < p.len) {
            p.error = "trailing characters";
            ok = false;
        }
    }
    if (!ok) {
        size_t line, column;
        weir__json_position(text, p.pos, &line, &column);
        weir__json_free(&root);
        return weir_fail(err, WEIR_INVALID_CONFIG,
                         "configuration is not valid JSON: %s at line %zu column %zu", p.error,
                         line, column);
    }
    if (root.type != WEIR_JSON_OBJECT) {
        weir__json_free(&root);
        return weir_fail(err, WEIR_INVALID_CONFIG, "configuration is not a JSON object");
    }
    out->root = root;
    return true;
}

/** The value of `key` in the object `object`, or NULL (the last one when a key repeats). */
static WEIR__UNUSED const weir_json *weir_json_get(const weir_json *object, const char *key) {
    if (object->type != WEIR_JSON_OBJECT) return NULL;
    size_t len = strlen(key);
    for (size_t k = object->count; k-- > 0;)
        if (object->key_lens[k] == len && memcmp(object->keys[k], key, len) == 0)
            return &object->items[k];
    return NULL;
}

/** The raw value of `key`, or NULL when missing. */
static WEIR__UNUSED const weir_json *weir_config_get(const weir_config *config,
                                                     const char *key) {
    return weir_json_get(&config->root, key);
}

/* The shortest decimal digits that read back as `value` (finite), and the exponent `k` with
 * value = digits * 10^k. */
static WEIR__UNUSED size_t weir__shortest(double value, char *digits, int *k) {
    char text[40];
    for (int precision = 0; precision <= 16; precision++) {
        snprintf(text, sizeof text, "%.*e", precision, value);
        if (strtod(text, NULL) == value) break;
    }
    size_t n = 0;
    const char *c = text;
    if (*c == '-') c++;
    for (; *c && *c != 'e'; c++)
        if (*c != '.') digits[n++] = *c;
    digits[n] = 0;
    *k = atoi(c + 1) - (int)(n - 1);
    return n;
}

/* Appends a float as Rust's `Display` prints it: plain decimal, no exponent ("1", "0.5"). */
static WEIR__UNUSED void weir__write_f64_display(weir_buf *out, double value) {
    char digits[24];
    int k;
    if (isnan(value)) return weir_buf_append(out, "NaN", 3);
    if (signbit(value)) weir_buf_push(out, '-');
    if (isinf(value)) return weir_buf_append(out, "inf", 3);
    size_t n = weir__shortest(value, digits, &k);
    int point = (int)n + k;
    if (point <= 0) {
        weir_buf_append(out, "0.", 2);
        for (int z = 0; z < -point; z++) weir_buf_push(out, '0');
        weir_buf_append(out, digits, n);
    } else if ((size_t)point >= n) {
        weir_buf_append(out, digits, n);
        for (size_t z = n; z < (size_t)point; z++) weir_buf_push(out, '0');
    } else {
        weir_buf_append(out, digits, (size_t)point);
        weir_buf_push(out, '.');
        weir_buf_append(out, digits + point, n - (size_t)point);
    }
}

/* Appends a float the way serde_json prints one (shortest digits, "1e+21", non-finite as
 * null). */
static WEIR__UNUSED void weir__json_write_float(weir_buf *out, double value) {
    char digits[24], exponent[16];
    int k;
    if (!isfinite(value)) return weir_buf_append(out, "null", 4);
    if (signbit(value)) weir_buf_push(out, '-');
    size_t n = weir__shortest(value, digits, &k);
    int kk = (int)n + k;
    if (k >= 0 && kk <= 16) {
        weir_buf_append(out, digits, n);
        for (int z = 0; z < k; z++) weir_buf_push(out, '0');
        weir_buf_append(out, ".0", 2);
    } else if (kk > 0 && kk <= 16) {
        weir_buf_append(out, digits, (size_t)kk);
        weir_buf_push(out, '.');
        weir_buf_append(out, digits + kk, n - (size_t)kk);
    } else if (kk > -5 && kk <= 0) {
        weir_buf_append(out, "0.", 2);
        for (int z = 0; z < -kk; z++) weir_buf_push(out, '0');
        weir_buf_append(out, digits, n);
    } else {
        weir_buf_push(out, (uint8_t)digits[0]);
        if (n > 1) {
            weir_buf_push(out, '.');
            weir_buf_append(out, digits + 1, n - 1);
        }
        int len = snprintf(exponent, sizeof exponent, "e%+d", kk - 1);
        weir_buf_append(out, exponent, (size_t)len);
    }
}

static WEIR__UNUSED void weir__json_write_string(weir_buf *out, const char *text, size_t len) {
    static const char hex[] = "0123456789abcdef";
    weir_buf_push(out, '"');
    for (size_t k = 0; k < len; k++) {
        uint8_t c = (uint8_t)text[k];
        switch (c) {
        case '"': weir_buf_append(out, "\\\"", 2); break;
        case '\\': weir_buf_append(out, "\\\\", 2); break;
        case '\n': weir_buf_append(out, "\\n", 2); break;
        case '\r': weir_buf_append(out, "\\r", 2); break;
        case '\t': weir_buf_append(out, "\\t", 2); break;
        case '\b': weir_buf_append(out, "\\b", 2); break;
        case '\f': weir_buf_append(out, "\\f", 2); break;
        default:
            if (c < 0x20) {
                char escape[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                weir_buf_append(out, escape, 6);
            } else weir_buf_push(out, c);
        }
    }
    weir_buf_push(out, '"');
}

/** Appends `value` as compact JSON (as the host's messages show configuration values). */
static WEIR__UNUSED void weir_json_write(weir_buf *out, const weir_json *value) {
    char number[32];
    switch (value->type) {
    case WEIR_JSON_NULL: weir_buf_append(out, "null", 4); break;
    case WEIR_JSON_BOOL:
        weir_buf_append(out, value->boolean ? "true" : "false", value->boolean ? 4 : 5);
        break;
    case WEIR_JSON_NUMBER:
        if (value->integer == WEIR_JSON_FLOAT) weir__json_write_float(out, value->number);
        else {
            int n = value->integer == WEIR_JSON_NEG
                        ? snprintf(number, sizeof number, "%lld", (long long)value->i)
                        : snprintf(number, sizeof number, "%llu", (unsigned long long)value->u);
            weir_buf_append(out, number, (size_t)n);
        }
        break;
    case WEIR_JSON_STRING: weir__json_write_string(out, value->str, value->len); break;
    case WEIR_JSON_ARRAY:
    case WEIR_JSON_OBJECT:
        weir_buf_push(out, value->type == WEIR_JSON_ARRAY ? '[' : '{');
        for (size_t k = 0; k < value->count; k++) {
            if (k) weir_buf_push(out, ',');
            if (value->type == WEIR_JSON_OBJECT) {
                weir__json_write_string(out, value->keys[k], value->key_lens[k]);
                weir_buf_push(out, ':');
            }
            weir_json_write(out, &value->items[k]);
        }
        weir_buf_push(out, value->type == WEIR_JSON_ARRAY ? ']' : '}');
        break;
    }
}

static WEIR__UNUSED bool weir__config_wrong(const char *key, const char *what,
                                            const weir_json *found,
                               weir_error *err) {
    weir_buf text = {0};
    weir_json_write(&text, found);
    weir_fail(err, WEIR_INVALID_CONFIG, "config key \"%s\" must be %s, not %.*s", key, what,
              (int)text.len, (const char *)text.ptr);
    weir_buf_free(&text);
    return false;
}

/** An optional string: `*out` is `fallback` when the key is missing or null. The string lives
 *  as long as the instance. Fails naming the key when present but not a string. */
static WEIR__UNUSED bool weir_config_opt_str(const weir_config *config, const char *key,
                                             const char *fallback, const char **out,
                                             weir_error *err) {
    const weir_json *value = weir_config_get(config, key);
    if (!value || value->type == WEIR_JSON_NULL) {
        *out = fallback;
        return true;
    }
    if (value->type != WEIR_JSON_STRING) return weir__config_wrong(key, "a string", value, err);
    *out = value->str;
    return true;
}

/** A required string, living as long as the instance. */
static WEIR__UNUSED bool weir_config_str(const weir_config *config, const char *key,
                                         const char **out, weir_error *err) {
    if (!weir_config_opt_str(config, key, NULL, out, err)) return false;
    if (*out) return true;
    return weir_fail(err, WEIR_INVALID_CONFIG, "config key \"%s\" is required (a string)", key);
}

/* Rust's `str::parse::<f64>` grammar, which strtod alone is more lenient than (hex, ...). */
static WEIR__UNUSED bool weir__parse_f64(const char *text, size_t len, double *out) {
    while (len && (*text == ' ' || (*text >= '\t' && *text <= '\r'))) text++, len--;
    while (len && (text[len - 1] == ' ' || (text[len - 1] >= '\t' && text[len - 1] <= '\r')))
        len--;
    if (len == 0 || len > 400) return false;
    char copy[401];
    memcpy(copy, text, len);
    copy[len] = 0;
    const char *p = copy;
    bool negative = false;
    if (*p == '+' || *p == '-') negative = *p++ == '-';
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = negative ? -INFINITY : INFINITY;
        return true;
    }
    if (strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return true;
    }
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (digits == 0) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return false;
    *out = strtod(copy, NULL);
    return true;
}

/** An optional number: `*out` is `fallback` when the key is missing or null. A string holding
 *  a number is accepted (command lines pass text). Fails naming the key otherwise. */
static WEIR__UNUSED bool weir_config_opt_f64(const weir_config *config, const char *key,
                                             double fallback, double *out, weir_error *err) {
    const weir_json *value = weir_config_get(config, key);
    if (!value || value->type == WEIR_JSON_NULL) {
        *out = fallback;
        return true;
    }
    if (value->type == WEIR_JSON_NUMBER) {
        *out = value->number;
        return true;
    }
    if (value->type == WEIR_JSON_STRING && weir__parse_f64(value->str, value->len, out))
        return true;
    return weir__config_wrong(key, "a number", value, err);
}

/** A required number (see weir_config_opt_f64). */
static WEIR__UNUSED bool weir_config_f64(const weir_config *config, const char *key,
                                         double *out, weir_error *err) {
    const weir_json *value = weir_config_get(config, key);
    if (!value || value->type == WEIR_JSON_NULL)
        return weir_fail(err, WEIR_INVALID_CONFIG, "config key \"%s\" is required (a number)",
                         key);
    return weir_config_opt_f64(config, key, 0, out, err);
}

/** An optional whole number of zero or more (see weir_config_opt_f64). */
static WEIR__UNUSED bool weir_config_opt_u64(const weir_config *config, const char *key,
                                             uint64_t fallback, uint64_t *out,
                                             weir_error *err) {
    const weir_json *value = weir_config_get(config, key);
    double number;
    if (!value || value->type == WEIR_JSON_NULL) {
        *out = fallback;
        return true;
    }
    if (!weir_config_opt_f64(config, key, 0, &number, err)) return false;
    if (number >= 0 && number == floor(number) && number <= 18446744073709551615.0) {
        *out = number >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)number;
        return true;
    }
    weir_buf text = {0};
    weir__write_f64_display(&text, number);
    weir_fail(err, WEIR_INVALID_CONFIG,
              "config key \"%s\" must be a whole number of zero or more, not %.*s", key,
              (int)text.len, (const char *)text.ptr);
    weir_buf_free(&text);
    return false;
}

/* ------------------------------------------------------------------------------------------
 * Events: per-event views over a batch
 * ---------------------------------------------------------------------------------------- */

/** One input event, borrowed from its batch for the duration of the call. */
typedef struct weir_event {
    const weir_plugin_types_batch_t *batch;
    /** Position of the event in its batch. */
    size_t index;
    /** The payload bytes (MessagePack by convention). */
    const uint8_t *payload;
    size_t payload_len;
    /** Event time in milliseconds since the Unix epoch. */
    int64_t time;
} weir_event;

/* Value `index` of a column; empty when the offsets are out of order or out of range. */
WEIR__INLINE const uint8_t *weir__column_value(const weir_plugin_types_column_t *column,
                                               size_t index, size_t *len) {
    size_t count = column->ends.len;
    size_t start = index == 0 ? 0 : (index - 1 < count ? column->ends.ptr[index - 1] : 0);
    size_t end = index < count ? column->ends.ptr[index] : 0;
    if (start > end || end > column->data.len) {
        *len = 0;
        return column->data.ptr;
    }
    *len = end - start;
    return column->data.ptr + start;
}

WEIR__INLINE void weir__event_at(weir_event *event, const weir_plugin_types_batch_t *batch,
                                 size_t index) {
    event->batch = batch;
    event->index = index;
    event->payload = weir__column_value(&batch->payloads, index, &event->payload_len);
    event->time = index < batch->times.len ? batch->times.ptr[index] : 0;
}

/** The key of the event: false when it has none (an empty key is present, of length 0). */
static WEIR__UNUSED bool weir_event_key(const weir_event *event, const uint8_t **key,
                                        size_t *len) {
    const weir_plugin_types_batch_t *b = event->batch;
    size_t i = event->index;
    if (b->keys.ends.len == 0) return false;
    if (i / 8 >= b->key_present.len || !(b->key_present.ptr[i / 8] & (1u << (i % 8))))
        return false;
    *key = weir__column_value(&b->keys, i, len);
    return true;
}

/** Number of headers of the event. */
static WEIR__UNUSED size_t weir_event_header_count(const weir_event *event) {
    const weir_plugin_types_batch_t *b = event->batch;
    size_t i = event->index;
    if (b->header_ends.len == 0) return 0;
    size_t start = i == 0 ? 0 : (i - 1 < b->header_ends.len ? b->header_ends.ptr[i - 1] : 0);
    size_t end = i < b->header_ends.len ? b->header_ends.ptr[i] : 0;
    return end > start ? end - start : 0;
}

/** Header `k` of the event (0 <= k < weir_event_header_count). A name that is not valid
 *  UTF-8 reads as empty. */
static WEIR__UNUSED void weir_event_header(const weir_event *event, size_t k, const char **name,
                                           size_t *name_len, const uint8_t **value,
                                           size_t *value_len) {
    const weir_plugin_types_batch_t *b = event->batch;
    size_t i = event->index;
    size_t start = i == 0 ? 0 : (i - 1 < b->header_ends.len ? b->header_ends.ptr[i - 1] : 0);
    const uint8_t *raw = weir__column_value(&b->header_names, start + k, name_len);
    if (!weir_utf8_valid(raw, *name_len)) *name_len = 0;
    *name = (const char *)raw;
    *value = weir__column_value(&b->header_values, start + k, value_len);
}

/** The value of the first header named `name`; false when there is none. */
static WEIR__UNUSED bool weir_event_header_find(const weir_event *event, const char *name,
                                                const uint8_t **value, size_t *value_len) {
    size_t count = weir_event_header_count(event), want = strlen(name);
    for (size_t k = 0; k < count; k++) {
        const char *found;
        size_t found_len;
        weir_event_header(event, k, &found, &found_len, value, value_len);
        if (found_len == want && memcmp(found, name, want) == 0) return true;
    }
    return false;
}

/** The payload field at a dotted `path` ("amount", "user.id"), without decoding the rest;
 *  `out->type` is WEIR_ABSENT when it is missing. Fails (invalid-input) when the payload is
 *  not a MessagePack map or is malformed on the way. */
WEIR__INLINE bool weir_event_field(const weir_event *event, const char *path, weir_value *out,
                                   weir_error *err) {
    weir_mp_error error = weir_mp_lookup(event->payload, event->payload_len, path, out);
    if (error) return weir_fail(err, WEIR_INVALID_INPUT, "%s", weir_mp_error_message(error));
    return true;
}

/** The whole payload as one value (for a map, iterate it with a weir_mp_cursor). */
static WEIR__UNUSED bool weir_event_value(const weir_event *event, weir_value *out,
                                          weir_error *err) {
    size_t used;
    weir_mp_error error = weir_mp_read(event->payload, event->payload_len, out, &used);
    if (error) return weir_fail(err, WEIR_INVALID_INPUT, "%s", weir_mp_error_message(error));
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Emitted events, in the contract's packed layout
 * ---------------------------------------------------------------------------------------- */

/** Attributes of an emitted event beyond its payload. Zero-initialised, it inherits all. */
typedef struct weir_output {
    /** Sets the event time to `time`. */
    bool set_time;
    int64_t time;
    /** WEIR_KEY_INHERIT, WEIR_KEY_SET (`key`, `key_len`) or WEIR_KEY_NONE (no key). */
    enum { WEIR_KEY_INHERIT = 0, WEIR_KEY_SET, WEIR_KEY_NONE } key_mode;
    const uint8_t *key;
    size_t key_len;
} weir_output;

/* Columns of emitted events, built as they come. The times and keys columns stay empty
 * (every event inherits) until some event sets one; then they are filled for all of them. */
typedef struct weir__emitted {
    /* Where inherited attributes come from: the input batch (handlers) or nothing. */
    const weir_plugin_types_batch_t *batch;
    bool always_time;
    weir_buf sources, payloads, ends;
    bool has_times, has_keys;
    weir_buf times, keys, key_ends, key_present;
} weir__emitted;

WEIR__INLINE size_t weir__emitted_count(const weir__emitted *e) { return e->sources.len / 4; }

static WEIR__UNUSED void weir__emitted_key(weir__emitted *e, size_t at, bool present,
                                           const uint8_t *key,
                              size_t len) {
    if (present) weir_buf_append(&e->keys, key, len);
    weir__buf_u32(&e->key_ends, weir__end(e->keys.len));
    if (at / 8 >= e->key_present.len) weir_buf_push(&e->key_present, 0);
    if (present) e->key_present.ptr[at / 8] |= (uint8_t)(1u << (at % 8));
}

static WEIR__UNUSED void weir__emitted_inherit_key(weir__emitted *e, size_t at, uint32_t source) {
    weir_event event;
    const uint8_t *key = NULL;
    size_t len = 0;
    bool present = false;
    if (e->batch && source < e->batch->payloads.ends.len) {
        weir__event_at(&event, e->batch, source);
        present = weir_event_key(&event, &key, &len);
    }
    weir__emitted_key(e, at, present, key, len);
}

static WEIR__UNUSED int64_t weir__emitted_inherit_time(const weir__emitted *e, uint32_t source) {
    return e->batch && source < e->batch->times.len ? e->batch->times.ptr[source] : 0;
}

/* Fills a column that was left to inheritance for the events emitted so far. */
static WEIR__UNUSED void weir__emitted_backfill(weir__emitted *e, bool times) {
    size_t count = weir__emitted_count(e);
    for (size_t at = 0; at < count; at++) {
        uint32_t source;
        memcpy(&source, e->sources.ptr + 4 * at, 4);
        if (times) weir__buf_i64(&e->times, weir__emitted_inherit_time(e, source));
        else weir__emitted_inherit_key(e, at, source);
    }
}

static WEIR__UNUSED void weir__emitted_push(weir__emitted *e, uint32_t source,
                                            const uint8_t *payload, size_t len,
                                            const weir_output *attrs) {
    size_t at = weir__emitted_count(e);
    if (attrs && attrs->set_time && !e->has_times) {
        weir__emitted_backfill(e, true);
        e->has_times = true;
    }
    if (attrs && attrs->key_mode != WEIR_KEY_INHERIT && !e->has_keys) {
        weir__emitted_backfill(e, false);
        e->has_keys = true;
    }
    weir__buf_u32(&e->sources, source);
    weir_buf_append(&e->payloads, payload, len);
    weir__buf_u32(&e->ends, weir__end(e->payloads.len));
    if (e->has_times)
        weir__buf_i64(&e->times, attrs && attrs->set_time
                                     ? attrs->time
                                     : weir__emitted_inherit_time(e, source));
    if (e->has_keys) {
        if (!attrs || attrs->key_mode == WEIR_KEY_INHERIT) weir__emitted_inherit_key(e, at, source);
        else weir__emitted_key(e, at, attrs->key_mode == WEIR_KEY_SET, attrs->key,
                               attrs->key_len);
    }
}

/* Drops everything emitted for `source` (its event failed). */
static WEIR__UNUSED void weir__emitted_retract(weir__emitted *e, uint32_t source) {
    size_t count = weir__emitted_count(e);
    while (count > 0) {
        uint32_t last;
        memcpy(&last, e->sources.ptr + 4 * (count - 1), 4);
        if (last != source) break;
        count--;
    }
    e->sources.len = 4 * count;
    e->ends.len = 4 * count;
    uint32_t end = 0;
    if (count) memcpy(&end, e->ends.ptr + 4 * (count - 1), 4);
    e->payloads.len = end;
    if (e->has_times) e->times.len = 8 * count;
    if (e->has_keys) {
        uint32_t key_end = 0;
        e->key_ends.len = 4 * count;
        if (count) memcpy(&key_end, e->key_ends.ptr + 4 * (count - 1), 4);
        e->keys.len = key_end;
        e->key_present.len = (count + 7) / 8;
        if (count % 8) e->key_present.ptr[count / 8] &= (uint8_t)((1u << (count % 8)) - 1);
    }
}

static WEIR__UNUSED void weir__emitted_free(weir__emitted *e) {
    weir_buf_free(&e->sources);
    weir_buf_free(&e->payloads);
    weir_buf_free(&e->ends);
    weir_buf_free(&e->times);
    weir_buf_free(&e->keys);
    weir_buf_free(&e->key_ends);
    weir_buf_free(&e->key_present);
}

/* Moves the columns into the contract's record (whose lists post-return frees). */
static WEIR__UNUSED void weir__emitted_finish(weir__emitted *e,
                                              weir_plugin_types_emitted_t *out) {
    memset(out, 0, sizeof *out);
    WEIR__MOVE(out->sources, e->sources);
    WEIR__MOVE(out->events.payloads.data, e->payloads);
    WEIR__MOVE(out->events.payloads.ends, e->ends);
    WEIR__MOVE(out->events.times, e->times);
    WEIR__MOVE(out->events.keys.data, e->keys);
    WEIR__MOVE(out->events.keys.ends, e->key_ends);
    WEIR__MOVE(out->events.key_present, e->key_present);
}

/* Failures of a call, as an array of the contract's `failure` records. */
static WEIR__UNUSED void weir__failures_push(weir_buf *failures, size_t index, weir_error *err) {
    weir_plugin_types_failure_t failure;
    memset(&failure, 0, sizeof failure);
    if (!err->message || err->len == 0) {
        weir_fail(err, err->message ? err->code : WEIR_INTERNAL,
                  "the plugin reported a failure without a message");
    }
    failure.index = (uint32_t)index;
    failure.error.code = (weir_plugin_types_error_code_t)err->code;
    failure.error.message.ptr = (uint8_t *)err->message;
    failure.error.message.len = err->len;
    err->message = NULL;
    err->len = 0;
    weir_buf_append(failures, &failure, sizeof failure);
}

static WEIR__UNUSED void weir__failures_free(weir_buf *failures) {
    size_t count = failures->len / sizeof(weir_plugin_types_failure_t);
    weir_plugin_types_failure_t *all = (weir_plugin_types_failure_t *)failures->ptr;
    for (size_t k = 0; k < count; k++) free(all[k].error.message.ptr);
    weir_buf_free(failures);
}

/* Hands an error to the contract's `error` record (post-return frees the message). */
static WEIR__UNUSED void weir__error_out(weir_error *err, weir_plugin_types_error_t *out) {
    if (!err->message || err->len == 0)
        weir_fail(err, err->message ? err->code : WEIR_INTERNAL,
                  "the plugin failed without a message");
    out->code = (weir_plugin_types_error_code_t)err->code;
    out->message.ptr = (uint8_t *)err->message;
    out->message.len = err->len;
    err->message = NULL;
    err->len = 0;
}

/* ------------------------------------------------------------------------------------------
 * Host functions
 * ---------------------------------------------------------------------------------------- */

/** Log levels of weir_log. */
enum {
    WEIR_LOG_TRACE = 0,
    WEIR_LOG_DEBUG = 1,
    WEIR_LOG_INFO = 2,
    WEIR_LOG_WARN = 3,
    WEIR_LOG_ERROR = 4,
};

/** Writes `message` to the host's log at `level` (rate-limited by the host). */
static WEIR__UNUSED void weir_log(int level, const char *message) {
    WEIR__W(string_t) text = {(uint8_t *)message, strlen(message)};
    WEIR__W(list_tuple2_string_string_t) fields = {NULL, 0};
    weir_plugin_host_log((weir_plugin_host_level_t)level, &text, &fields);
}

/** Adds `delta` to the plugin's counter `name` (weir_plugin_counter_total{plugin, name}). */
static WEIR__UNUSED void weir_counter_add(const char *name, uint64_t delta) {
    WEIR__W(string_t) text = {(uint8_t *)name, strlen(name)};
    weir_plugin_host_counter_add(&text, delta);
}

/** Wall-clock time in milliseconds since the Unix epoch; prefer event time for anything that
 *  must replay identically. */
static WEIR__UNUSED int64_t weir_now_ms(void) { return weir_plugin_host_now_ms(); }

/* ------------------------------------------------------------------------------------------
 * The instance's configuration, kept so that strings read from it stay valid
 * ---------------------------------------------------------------------------------------- */

static WEIR__UNUSED weir_config weir__config;
static WEIR__UNUSED bool weir__ready;

static WEIR__UNUSED bool weir__init(WEIR__W(string_t) *text, weir_plugin_types_error_t *out,
                                    bool (*init)(const weir_config *, weir_error *)) {
    weir_error err = {WEIR_INTERNAL, NULL, 0};
    weir__json_free(&weir__config.root);
    weir__ready = false;
    bool ok = weir__config_parse((const char *)text->ptr, text->len, &weir__config, &err) &&
              init(&weir__config, &err);
    WEIR__W(string_free)(text);
    if (!ok) {
        weir__error_out(&err, out);
        return false;
    }
    weir__ready = true;
    return true;
}

static WEIR__UNUSED bool weir__not_ready(weir_plugin_types_error_t *out, const char *what) {
    weir_error err = {WEIR_INTERNAL, NULL, 0};
    weir_fail(&err, WEIR_INTERNAL, "%s", what);
    weir__error_out(&err, out);
    return false;
}

/* ------------------------------------------------------------------------------------------
 * World `handler`
 * ---------------------------------------------------------------------------------------- */
#if defined(__BINDINGS_HANDLER_H)

/** The outcomes of a batch under construction. */
typedef struct weir_outcomes {
    uint8_t *keep;
    size_t count;
    weir__emitted emitted;
    weir_buf failures;
} weir_outcomes;

/** What a handler may do with the event it is handed. */
typedef struct weir_emit {
    weir_outcomes *outcomes;
    uint32_t index;
} weir_emit;

/** Passes the event through unchanged (no copy of its payload). */
WEIR__INLINE void weir_keep(weir_emit *out) {
    out->outcomes->keep[out->index / 8] |= (uint8_t)(1u << (out->index % 8));
}

/** Emits `payload` in place of the event (call it any number of times, or also keep the
 *  event); the output inherits the event's key, time and headers. */
WEIR__INLINE void weir_emit_bytes(weir_emit *out, const uint8_t *payload, size_t len) {
    weir__emitted_push(&out->outcomes->emitted, out->index, payload, len, NULL);
}

/** Emits the bytes of `payload` (see weir_emit_bytes). */
WEIR__INLINE void weir_emit_buf(weir_emit *out, const weir_buf *payload) {
    weir_emit_bytes(out, payload->ptr, payload->len);
}

/** Emits `payload` with its own time or key (headers are the event's). */
WEIR__INLINE void weir_emit_output(weir_emit *out, const uint8_t *payload, size_t len,
                                   const weir_output *attrs) {
    weir__emitted_push(&out->outcomes->emitted, out->index, payload, len, attrs);
}

/*
 * WEIR_EXPORT_HANDLER(p) exports the handler world with the plugin's
 *
 *   bool p_init(const weir_config *config, weir_error *err);
 *       Reads the configuration (fail with WEIR_INVALID_CONFIG naming the key).
 *   bool p_handle(const weir_event *event, weir_emit *out, weir_error *err);
 *       Handles one event: weir_keep, weir_emit_* (any number of times), or nothing to drop
 *       it. Returning false fails this event only: its outputs are withdrawn.
 */
WEIR__INLINE bool weir__handler_process(
    weir_plugin_types_batch_t *events, exports_weir_plugin_event_handler_outcomes_t *ret,
    weir_plugin_types_error_t *err_out,
    bool (*handle)(const weir_event *, weir_emit *, weir_error *)) {
    if (!weir__ready) {
        weir_plugin_types_batch_free(events);
        return weir__not_ready(err_out, "process called before init");
    }
    size_t count = events->payloads.ends.len;
    weir_outcomes outcomes;
    memset(&outcomes, 0, sizeof outcomes);
    outcomes.count = count;
    outcomes.keep = (uint8_t *)calloc((count + 7) / 8 + 1, 1);
    if (!outcomes.keep) abort();
    outcomes.emitted.batch = events;
    weir_event event;
    weir_error err = {WEIR_INTERNAL, NULL, 0};
    for (size_t i = 0; i < count; i++) {
        weir__event_at(&event, events, i);
        weir_emit emit = {&outcomes, (uint32_t)i};
        if (!handle(&event, &emit, &err)) {
            outcomes.keep[i / 8] &= (uint8_t)~(1u << (i % 8));
            weir__emitted_retract(&outcomes.emitted, (uint32_t)i);
            weir__failures_push(&outcomes.failures, i, &err);
        }
    }
    memset(ret, 0, sizeof *ret);
    ret->keep.ptr = outcomes.keep;
    ret->keep.len = (count + 7) / 8;
    if (ret->keep.len == 0) {
        free(outcomes.keep);
        ret->keep.ptr = NULL;
    }
    weir__emitted_finish(&outcomes.emitted, &ret->outputs);
    WEIR__MOVE(ret->failures, outcomes.failures);
    weir_plugin_types_batch_free(events);
    return true;
}

#define WEIR_EXPORT_HANDLER(p)                                                                 \
    bool exports_weir_plugin_event_handler_init(handler_string_t *config,                     \
                                                exports_weir_plugin_event_handler_error_t *err) { \
        return weir__init(config, err, p##_init);                                              \
    }                                                                                          \
    bool exports_weir_plugin_event_handler_process(                                            \
        exports_weir_plugin_event_handler_batch_t *events,                                     \
        exports_weir_plugin_event_handler_outcomes_t *ret,                                     \
        exports_weir_plugin_event_handler_error_t *err) {                                      \
        return weir__handler_process(events, ret, err, p##_handle);                            \
    }

#endif /* handler */

/* ------------------------------------------------------------------------------------------
 * Host-held state (aggregator accumulators, pattern states)
 * ---------------------------------------------------------------------------------------- */
#if defined(__BINDINGS_AGGREGATOR_H) || defined(__BINDINGS_PATTERN_H)

/* Builds a column value by value. */
typedef struct weir__column_builder {
    weir_buf data, ends;
} weir__column_builder;

WEIR__INLINE void weir__column_close(weir__column_builder *b) {
    weir__buf_u32(&b->ends, weir__end(b->data.len));
}

static WEIR__UNUSED void weir__column_finish(weir__column_builder *b,
                                             weir_plugin_types_column_t *out) {
    WEIR__MOVE(out->data, b->data);
    WEIR__MOVE(out->ends, b->ends);
}

static WEIR__UNUSED void weir__column_free(weir__column_builder *b) {
    weir_buf_free(&b->data);
    weir_buf_free(&b->ends);
}

/* Value `i` of a column of held state, each starting where the previous one ended. */
WEIR__INLINE const uint8_t *weir__state_value(const weir_plugin_types_column_t *column,
                                              size_t *start, size_t i, size_t *len) {
    size_t end = column->ends.ptr[i];
    if (*start > end || end > column->data.len) {
        *len = 0;
        *start = end;
        return column->data.ptr;
    }
    const uint8_t *value = column->data.ptr + *start;
    *len = end - *start;
    *start = end;
    return value;
}

/* Decodes held state, naming it in the unsupported-state error. */
#define WEIR__DECODE(decode, bytes, len, into, err, what)                                       \
    ((decode)((bytes), (len), (into), (err)) ||                                                \
     (weir__error_prefix((err), WEIR_UNSUPPORTED_STATE, what " does not decode: "), false))

/* The list of u8 a `create` returns. */
#define WEIR__CREATE(type, create, encode, release, ret)                                        \
    do {                                                                                       \
        type fresh;                                                                            \
        weir_buf bytes = {0};                                                                  \
        memset(&fresh, 0, sizeof fresh);                                                       \
        create(&fresh);                                                                        \
        encode(&fresh, &bytes);                                                                \
        release(&fresh);                                                                       \
        WEIR__MOVE(*(ret), bytes);                                                             \
    } while (0)

#endif

/* ------------------------------------------------------------------------------------------
 * World `aggregator`
 * ---------------------------------------------------------------------------------------- */
#if defined(__BINDINGS_AGGREGATOR_H)

/*
 * WEIR_EXPORT_AGGREGATOR(p, A) exports the aggregator world with accumulators of type A and
 * the plugin's
 *
 *   bool p_init(const weir_config *config, weir_error *err);
 *   void p_create(A *acc);                     the empty accumulator (A arrives zeroed)
 *   bool p_add(A *acc, const weir_event *event, weir_error *err);
 *       Folds one event in; returning false fails this event only, and `acc` must then be as
 *       it was.
 *   void p_merge(A *acc, A *other);            folds `other` into `acc`
 *   bool p_finish(const A *acc, weir_buf *out, weir_error *err);
 *       Appends the window's result to `out` as a MessagePack map.
 *   void p_encode(const A *acc, weir_buf *out);  appends the accumulator's bytes
 *   bool p_decode(const uint8_t *bytes, size_t len, A *acc, weir_error *err);
 *       Reads bytes p_encode wrote (`acc` arrives zeroed); false when they do not decode.
 *   void p_release(A *acc);                    frees what p_decode / p_create allocated
 *
 * The host holds accumulators as opaque bytes between calls; MessagePack maps with named
 * fields let a later version read state an earlier one wrote.
 */
#define WEIR_EXPORT_AGGREGATOR(p, A)                                                           \
    bool exports_weir_plugin_windowed_aggregator_init(                                         \
        aggregator_string_t *config, exports_weir_plugin_windowed_aggregator_error_t *err) {   \
        return weir__init(config, err, p##_init);                                              \
    }                                                                                          \
    bool exports_weir_plugin_windowed_aggregator_create(                                       \
        aggregator_list_u8_t *ret, exports_weir_plugin_windowed_aggregator_error_t *err) {     \
        if (!weir__ready) return weir__not_ready(err, "called before init");                   \
        WEIR__CREATE(A, p##_create, p##_encode, p##_release, ret);                             \
        return true;                                                                           \
    }                                                                                          \
    bool exports_weir_plugin_windowed_aggregator_add(                                          \
        weir_plugin_types_column_t *accumulators, weir_plugin_types_batch_t *events,           \
        aggregator_list_u32_t *targets, exports_weir_plugin_windowed_aggregator_folded_t *ret, \
        weir_plugin_types_error_t *err_out) {                                                  \
        size_t n = accumulators->ends.len, count = events->payloads.ends.len;                  \
        A *accs = (A *)calloc(n + 1, sizeof(A));                                               \
        bool *decoded = (bool *)calloc(n + 1, 1);                                              \
        weir_buf failures = {0};                                                               \
        weir__column_builder column = {{0}, {0}};                                              \
        weir_error err = {WEIR_INTERNAL, NULL, 0};                                             \
        weir_event event;                                                                      \
        bool ok = weir__ready || (weir_fail(&err, WEIR_INTERNAL, "called before init"), false); \
        if (!accs || !decoded) abort();                                                        \
        if (count > targets->len) count = targets->len;                                        \
        for (size_t i = 0; ok && i < count; i++) {                                             \
            size_t t = targets->ptr[i];                                                        \
            if (t >= n) {                                                                      \
                ok = weir_fail(&err, WEIR_INTERNAL, "event targets accumulator %zu of %zu", t, \
                               n);                                                             \
                break;                                                                         \
            }                                                                                  \
            if (!decoded[t]) {                                                                 \
                size_t start = t == 0 ? 0 : accumulators->ends.ptr[t - 1], len;                \
                const uint8_t *bytes = weir__state_value(accumulators, &start, t, &len);       \
                if (!WEIR__DECODE(p##_decode, bytes, len, &accs[t], &err, "accumulator")) {    \
                    ok = false;                                                                \
                    break;                                                                     \
                }                                                                              \
                decoded[t] = true;                                                             \
            }                                                                                  \
            weir__event_at(&event, events, i);                                                 \
            if (!p##_add(&accs[t], &event, &err)) weir__failures_push(&failures, i, &err);    \
        }                                                                                      \
        size_t start = 0;                                                                      \
        for (size_t j = 0; j < n; j++) {                                                       \
            size_t len;                                                                        \
            const uint8_t *bytes = weir__state_value(accumulators, &start, j, &len);           \
            if (ok) {                                                                          \
                if (decoded[j]) p##_encode(&accs[j], &column.data);                            \
                else weir_buf_append(&column.data, bytes, len);                                \
                weir__column_close(&column);                                                   \
            }                                                                                  \
            if (decoded[j]) p##_release(&accs[j]);                                             \
        }                                                                                      \
        free(accs);                                                                            \
        free(decoded);                                                                         \
        weir_plugin_types_column_free(accumulators);                                           \
        weir_plugin_types_batch_free(events);                                                  \
        aggregator_list_u32_free(targets);                                                     \
        if (!ok) {                                                                             \
            weir__column_free(&column);                                                        \
            weir__failures_free(&failures);                                                    \
            weir__error_out(&err, err_out);                                                    \
            return false;                                                                      \
        }                                                                                      \
        memset(ret, 0, sizeof *ret);                                                           \
        weir__column_finish(&column, &ret->accumulators);                                      \
        WEIR__MOVE(ret->failures, failures);                                                   \
        return true;                                                                           \
    }                                                                                          \
    bool exports_weir_plugin_windowed_aggregator_merge(                                        \
        weir_plugin_types_column_t *left, weir_plugin_types_column_t *right,                   \
        weir_plugin_types_column_t *ret, weir_plugin_types_error_t *err_out) {                 \
        size_t n = left->ends.len < right->ends.len ? left->ends.len : right->ends.len;        \
        size_t left_start = 0, right_start = 0;                                                \
        weir__column_builder column = {{0}, {0}};                                              \
        weir_error err = {WEIR_INTERNAL, NULL, 0};                                             \
        bool ok = weir__ready || (weir_fail(&err, WEIR_INTERNAL, "called before init"), false); \
        for (size_t j = 0; ok && j < n; j++) {                                                 \
            A acc, other;                                                                      \
            size_t left_len, right_len;                                                        \
            const uint8_t *l = weir__state_value(left, &left_start, j, &left_len);             \
            const uint8_t *r = weir__state_value(right, &right_start, j, &right_len);          \
            memset(&acc, 0, sizeof acc);                                                       \
            memset(&other, 0, sizeof other);                                                   \
            if (!WEIR__DECODE(p##_decode, l, left_len, &acc, &err, "accumulator")) {           \
                ok = false;                                                                    \
                break;                                                                         \
            }                                                                                  \
            if (!WEIR__DECODE(p##_decode, r, right_len, &other, &err, "accumulator")) {        \
                p##_release(&acc);                                                             \
                ok = false;                                                                    \
                break;                                                                         \
            }                                                                                  \
            p##_merge(&acc, &other);                                                           \
            p##_encode(&acc, &column.data);                                                    \
            weir__column_close(&column);                                                       \
            p##_release(&acc);                                                                 \
            p##_release(&other);                                                               \
        }                                                                                      \
        weir_plugin_types_column_free(left);                                                   \
        weir_plugin_types_column_free(right);                                                  \
        if (!ok) {                                                                             \
            weir__column_free(&column);                                                        \
            weir__error_out(&err, err_out);                                                    \
            return false;                                                                      \
        }                                                                                      \
        memset(ret, 0, sizeof *ret);                                                           \
        weir__column_finish(&column, ret);                                                     \
        return true;                                                                           \
    }                                                                                          \
    bool exports_weir_plugin_windowed_aggregator_finish(weir_plugin_types_column_t *accs,      \
                                                        weir_plugin_types_column_t *ret,       \
                                                        weir_plugin_types_error_t *err_out) {  \
        size_t n = accs->ends.len, start = 0;                                                  \
        weir__column_builder column = {{0}, {0}};                                              \
        weir_error err = {WEIR_INTERNAL, NULL, 0};                                             \
        bool ok = weir__ready || (weir_fail(&err, WEIR_INTERNAL, "called before init"), false); \
        for (size_t j = 0; ok && j < n; j++) {                                                 \
            A acc;                                                                             \
            size_t len;                                                                        \
            const uint8_t *bytes = weir__state_value(accs, &start, j, &len);                   \
            memset(&acc, 0, sizeof acc);                                                       \
            if (!WEIR__DECODE(p##_decode, bytes, len, &acc, &err, "accumulator")) {            \
                ok = false;                                                                    \
                break;                                                                         \
            }                                                                                  \
            ok = p##_finish(&acc, &column.data, &err);                                         \
            weir__column_close(&column);                                                       \
            p##_release(&acc);                                                                 \
        }                                                                                      \
        weir_plugin_types_column_free(accs);                                                   \
        if (!ok) {                                                                             \
            weir__column_free(&column);                                                        \
            weir__error_out(&err, err_out);                                                    \
            return false;                                                                      \
        }                                                                                      \
        memset(ret, 0, sizeof *ret);                                                           \
        weir__column_finish(&column, ret);                                                     \
        return true;                                                                           \
    }

#endif /* aggregator */

/* ------------------------------------------------------------------------------------------
 * World `pattern`
 * ---------------------------------------------------------------------------------------- */
#if defined(__BINDINGS_PATTERN_H)

/** Where a pattern emits its matches: stamped with the time of the current event or timer,
 *  keyed like the state. */
typedef struct weir_matches {
    weir__emitted *emitted;
    uint32_t state;
    int64_t time;
} weir_matches;

/** Emits a match payload (MessagePack by convention). */
WEIR__INLINE void weir_match_bytes(weir_matches *matches, const uint8_t *payload, size_t len) {
    weir_output attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.set_time = true;
    attrs.time = matches->time;
    weir__emitted_push(matches->emitted, matches->state, payload, len, &attrs);
}

/** Emits the bytes of `payload` as a match. */
WEIR__INLINE void weir_match_buf(weir_matches *matches, const weir_buf *payload) {
    weir_match_bytes(matches, payload->ptr, payload->len);
}

/* The states column, timers and matches of a call. */
#define WEIR__PROGRESS(p, states, n, emitted, failures, ret)                                    \
    do {                                                                                       \
        weir__column_builder built = {{0}, {0}};                                               \
        pattern_option_s64_t *timers =                                                         \
            (pattern_option_s64_t *)calloc((n) + 1, sizeof(pattern_option_s64_t));             \
        if (!timers) abort();                                                                  \
        for (size_t j = 0; j < (n); j++) {                                                     \
            p##_encode(&(states)[j], &built.data);                                             \
            weir__column_close(&built);                                                        \
            timers[j].is_some = p##_next_timer(&(states)[j], &timers[j].val);                  \
        }                                                                                      \
        memset((ret), 0, sizeof *(ret));                                                       \
        weir__column_finish(&built, &(ret)->states);                                           \
        (ret)->timers.ptr = timers;                                                            \
        (ret)->timers.len = (n);                                                               \
        if ((n) == 0) {                                                                        \
            free(timers);                                                                      \
            (ret)->timers.ptr = NULL;                                                          \
        }                                                                                      \
        weir__emitted_finish(&(emitted), &(ret)->matches);                                     \
        WEIR__MOVE((ret)->failures, (failures));                                               \
    } while (0)

/* Decodes every state of a column into a fresh array; NULL (with `err` set) on failure. */
#define WEIR__DECODE_STATES(p, S, column, n, err, out)                                          \
    do {                                                                                       \
        size_t start = 0;                                                                      \
        (out) = (S *)calloc((n) + 1, sizeof(S));                                               \
        if (!(out)) abort();                                                                   \
        for (size_t j = 0; j < (n); j++) {                                                     \
            size_t len;                                                                        \
            const uint8_t *bytes = weir__state_value((column), &start, j, &len);               \
            if (!WEIR__DECODE(p##_decode, bytes, len, &(out)[j], (err), "pattern state")) {    \
                for (size_t k = 0; k < j; k++) p##_release(&(out)[k]);                         \
                free(out);                                                                     \
                (out) = NULL;                                                                  \
                break;                                                                         \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/*
 * WEIR_EXPORT_PATTERN(p, S) exports the pattern world with per-key states of type S and the
 * plugin's
 *
 *   bool p_init(const weir_config *config, weir_error *err);
 *   void p_create(S *state);                   the state of a key that has seen nothing
 *   bool p_on_event(S *state, const weir_event *event, weir_matches *matches, weir_error *err);
 *       Applies one event (a key's events arrive in event-time order); false fails the event.
 *   bool p_on_timer(S *state, int64_t now, weir_matches *matches, weir_error *err);
 *       Event time reached `now`, at or past the state's timer; false fails the whole call.
 *   bool p_next_timer(const S *state, int64_t *at);  when the state next wants p_on_timer
 *   void p_encode(const S *state, weir_buf *out);
 *   bool p_decode(const uint8_t *bytes, size_t len, S *state, weir_error *err);
 *   void p_release(S *state);
 */
#define WEIR_EXPORT_PATTERN(p, S)                                                              \
    bool exports_weir_plugin_pattern_matcher_init(                                             \
        pattern_string_t *config, exports_weir_plugin_pattern_matcher_error_t *err) {          \
        return weir__init(config, err, p##_init);                                              \
    }                                                                                          \
    bool exports_weir_plugin_pattern_matcher_create(                                           \
        pattern_list_u8_t *ret, exports_weir_plugin_pattern_matcher_error_t *err) {            \
        if (!weir__ready) return weir__not_ready(err, "called before init");                   \
        WEIR__CREATE(S, p##_create, p##_encode, p##_release, ret);                             \
        return true;                                                                           \
    }                                                                                          \
    bool exports_weir_plugin_pattern_matcher_process(                                          \
        weir_plugin_types_column_t *column, weir_plugin_types_batch_t *events,                 \
        pattern_list_u32_t *targets, exports_weir_plugin_pattern_matcher_progress_t *ret,      \
        weir_plugin_types_error_t *err_out) {                                                  \
        size_t n = column->ends.len, count = events->payloads.ends.len;                        \
        weir_error err = {WEIR_INTERNAL, NULL, 0};                                             \
        S *states = NULL;                                                                      \
        size_t *first = NULL, *order = NULL;                                                   \
        bool ok = weir__ready || (weir_fail(&err, WEIR_INTERNAL, "called before init"), false); \
        if (count > targets->len) count = targets->len;                                        \
        if (ok) {                                                                              \
            WEIR__DECODE_STATES(p, S, column, n, &err, states);                                \
            ok = states != NULL;                                                               \
        }                                                                                      \
        /* Matches go out in state order: group the events by state (a counting sort). */     \
        if (ok) {                                                                              \
            first = (size_t *)calloc(n + 2, sizeof(size_t));                                   \
            order = (size_t *)calloc(count + 1, sizeof(size_t));                               \
            if (!first || !order) abort();                                                     \
            for (size_t i = 0; i < count; i++) {                                               \
                size_t t = targets->ptr[i];                                                    \
                if (t >= n) {                                                                  \
                    ok = weir_fail(&err, WEIR_INTERNAL, "event targets state %zu of %zu", t,   \
                                   n);                                                         \
                    break;                                                                     \
                }                                                                              \
                first[t + 2]++;                                                                \
            }                                                                                  \
        }                                                                                      \
        weir__emitted emitted;                                                                 \
        weir_buf failures = {0};                                                               \
        memset(&emitted, 0, sizeof emitted);                                                   \
        if (ok) {                                                                              \
            for (size_t s = 2; s < n + 2; s++) first[s] += first[s - 1];                       \
            for (size_t i = 0; i < count; i++) order[first[targets->ptr[i] + 1]++] = i;        \
            weir_event event;                                                                  \
            for (size_t s = 0; s < n; s++) {                                                   \
                for (size_t k = s == 0 ? 0 : first[s]; k < first[s + 1]; k++) {                \
                    size_t i = order[k];                                                       \
                    weir__event_at(&event, events, i);                                         \
                    weir_matches matches = {&emitted, (uint32_t)s, event.time};                \
                    if (!p##_on_event(&states[s], &event, &matches, &err))                     \
                        weir__failures_push(&failures, i, &err);                               \
                }                                                                              \
            }                                                                                  \
            WEIR__PROGRESS(p, states, n, emitted, failures, ret);                              \
        }                                                                                      \
        if (states)                                                                            \
            for (size_t j = 0; j < n; j++) p##_release(&states[j]);                            \
        free(states);                                                                          \
        free(first);                                                                           \
        free(order);                                                                           \
        weir_plugin_types_column_free(column);                                                 \
        weir_plugin_types_batch_free(events);                                                  \
        pattern_list_u32_free(targets);                                                        \
        if (!ok) {                                                                             \
            weir__error_out(&err, err_out);                                                    \
            return false;                                                                      \
        }                                                                                      \
        return true;                                                                           \
    }                                                                                          \
    bool exports_weir_plugin_pattern_matcher_on_timer(                                         \
        weir_plugin_types_column_t *column, int64_t now,                                       \
        exports_weir_plugin_pattern_matcher_progress_t *ret,                                   \
        weir_plugin_types_error_t *err_out) {                                                  \
        size_t n = column->ends.len;                                                           \
        weir_error err = {WEIR_INTERNAL, NULL, 0};                                             \
        S *states = NULL;                                                                      \
        bool ok = weir__ready || (weir_fail(&err, WEIR_INTERNAL, "called before init"), false); \
        if (ok) {                                                                              \
            WEIR__DECODE_STATES(p, S, column, n, &err, states);                                \
            ok = states != NULL;                                                               \
        }                                                                                      \
        weir__emitted emitted;                                                                 \
        weir_buf failures = {0};                                                               \
        memset(&emitted, 0, sizeof emitted);                                                   \
        for (size_t s = 0; ok && s < n; s++) {                                                 \
            weir_matches matches = {&emitted, (uint32_t)s, now};                               \
            ok = p##_on_timer(&states[s], now, &matches, &err);                                \
        }                                                                                      \
        if (ok) WEIR__PROGRESS(p, states, n, emitted, failures, ret);                          \
        else weir__emitted_free(&emitted);                                                     \
        if (states)                                                                            \
            for (size_t j = 0; j < n; j++) p##_release(&states[j]);                            \
        free(states);                                                                          \
        weir_plugin_types_column_free(column);                                                 \
        if (!ok) {                                                                             \
            weir__error_out(&err, err_out);                                                    \
            return false;                                                                      \
        }                                                                                      \
        return true;                                                                           \
    }

#endif /* pattern */

#endif /* WEIR_PLUGIN_H */
