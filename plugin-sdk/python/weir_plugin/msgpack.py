"""A small MessagePack codec in pure Python (plugins run without C extensions).

Two halves:

* :func:`unpackb` and :func:`packb` decode and encode whole values: nil, booleans, integers of
  every width, 32- and 64-bit floats, strings, binaries, arrays and maps. Extension types
  decode to ``(code, bytes)``. Floats are always written as float64 and integers in their
  shortest form, as Rust's ``rmp-serde`` does, so plugins in every language agree byte for
  byte.
* :func:`find`, :func:`lookup`, :func:`number_at`, :func:`string_at` and :func:`skip` walk
  the encoded bytes instead. Decoding a whole payload to read one field costs several times
  the work of the field itself, and in an interpreter the difference is most of the cost of a
  filter; these functions compare keys in place and skip everything else.

The walkers take ``(data, start, end)`` so that they read one value inside a larger buffer (a
batch's payload column, ``bytes`` or ``bytearray``) without copying it out. Walking never
recurses, so a hostile, deeply nested payload cannot exhaust the stack, and the errors are the
ones the other SDKs give, word for word.
"""

import struct

__all__ = [
    "DecodeError",
    "compile_path",
    "find",
    "items_at",
    "lookup",
    "number_at",
    "packb",
    "raw_at",
    "skip",
    "string_at",
    "unpackb",
    "value_at",
]


class DecodeError(ValueError):
    """The bytes are not the MessagePack that was expected.

    A handler that lets it escape fails the event with ``invalid-input`` and this message.
    """


# The messages every SDK uses, so that a failed event reads the same whatever the language.
TRUNCATED = "payload is truncated MessagePack"
RESERVED = "payload is not valid MessagePack (reserved byte 0xc1)"
NOT_A_MAP = "payload is not a MessagePack map"

_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


def _fixed_sizes():
    # Encoded size of every value whose size the marker alone gives (0: it does not).
    sizes = [0] * 256
    for m in range(0x00, 0x80):
        sizes[m] = 1
    for m in range(0xE0, 0x100):
        sizes[m] = 1
    for m in range(0xA0, 0xC0):
        sizes[m] = 1 + (m & 0x1F)
    for m, n in ((0xC0, 1), (0xC2, 1), (0xC3, 1), (0xCC, 2), (0xD0, 2), (0xCD, 3), (0xD1, 3),
                 (0xCA, 5), (0xCE, 5), (0xD2, 5), (0xCB, 9), (0xCF, 9), (0xD3, 9),
                 (0xD4, 3), (0xD5, 4), (0xD6, 6), (0xD7, 10), (0xD8, 18)):
        sizes[m] = n
    return tuple(sizes)


_FIXED = _fixed_sizes()
# Encoded size of a map key that is a short string (nearly all keys). Any other key is
# "beyond any buffer": the fast walks step past the data, fail to index it and hand over to
# the careful walk, which saves them a test per key.
_KEY = tuple(1 + (m & 0x1F) if 0xA0 <= m <= 0xBF else 1 << 62 for m in range(256))
# Length-prefixed strings, binaries and extensions: marker -> (size of the length, extra).
_PREFIXED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xD9: (1, 0), 0xDA: (2, 0),
             0xDB: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)}


def _be(data, pos, n, end):
    if pos + n > end:
        raise DecodeError(TRUNCATED)
    return int.from_bytes(data[pos:pos + n], "big")


def _header(data, pos, end):
    """Length of the value at ``pos`` not counting a container's items (as Rust's ``read``):
    validates the bytes it covers."""
    if pos >= end:
        raise DecodeError(TRUNCATED)
    m = data[pos]
    n = _FIXED[m]
    if not n:
        if m <= 0x9F:
            n = 1
        elif m in _PREFIXED:
            size, extra = _PREFIXED[m]
            n = 1 + size + extra + _be(data, pos + 1, size, end)
        elif m == 0xDC or m == 0xDE:
            _be(data, pos + 1, 2, end)
            n = 3
        elif m == 0xDD or m == 0xDF:
            _be(data, pos + 1, 4, end)
            n = 5
        else:
            raise DecodeError(RESERVED)
    if pos + n > end:
        raise DecodeError(TRUNCATED)
    return n


def skip(data, pos=0, end=None):
    """The position just past the whole value (containers included) that starts at ``pos``.

    Raises :class:`DecodeError` when the bytes before ``end`` do not hold a complete value.
    """
    if end is None:
        end = len(data)
    pending = 1
    while pending:
        if pos >= end:
            raise DecodeError(TRUNCATED)
        m = data[pos]
        n = _FIXED[m]
        if n:
            pos += n
        elif 0x80 <= m <= 0x8F:
            pending += 2 * (m & 0x0F)
            pos += 1
        elif 0x90 <= m <= 0x9F:
            pending += m & 0x0F
            pos += 1
        else:
            n = _header(data, pos, end)
            if m == 0xDC or m == 0xDD:
                pending += _be(data, pos + 1, n - 1, end)
            elif m == 0xDE or m == 0xDF:
                pending += 2 * _be(data, pos + 1, n - 1, end)
            pos += n
        pending -= 1
    if pos > end:
        raise DecodeError(TRUNCATED)
    return pos


def _span(data, pos, end):
    """The encoded length of the value at ``pos`` (as :func:`skip`)."""
    return skip(data, pos, end) - pos


def _encode_key(key: str) -> bytes:
    raw = key.encode("utf-8")
    n = len(raw)
    if n <= 31:
        return bytes((0xA0 | n,)) + raw
    if n <= 0xFF:
        return bytes((0xD9, n)) + raw
    if n <= 0xFFFF:
        return b"\xda" + n.to_bytes(2, "big") + raw
    return b"\xdb" + n.to_bytes(4, "big") + raw


_PATHS = {}
# The same for paths without a dot, as (encoded key, its first byte, its length).
_KEYS = {}


def compile_path(path: str):
    """The segments of a dotted path (``"user.id"``), each as ``(encoded key, its first
    byte, its length, the UTF-8 key)``. Cached: plugins look up the same few paths all the
    time."""
    segments = _PATHS.get(path)
    if segments is None:
        if len(_PATHS) >= 1024:
            _PATHS.clear()
            _KEYS.clear()
        segments = tuple(_segment(s) for s in path.split("."))
        _PATHS[path] = segments
        if len(segments) == 1:
            _KEYS[path] = segments[0][:3]
    return segments


def _segment(key: str):
    enc = _encode_key(key)
    return enc, enc[0], len(enc), key.encode("utf-8")


def _other_key(data, pos, end, key):
    # A key that is not a short string: a longer string form is still compared by content,
    # anything else never matches (and is stepped over as Rust's reader does).
    m = data[pos]
    n = _header(data, pos, end)
    if m in (0xD9, 0xDA, 0xDB):
        size = _PREFIXED[m][0]
        return pos + n, data[pos + 1 + size:pos + n] == key
    return pos + n, False


def find(data, start, end, path):
    """Where the value at a dotted ``path`` starts, in the map encoded at ``data[start:end]``;
    -1 when a key is missing or an intermediate value is not a map.

    Raises :class:`DecodeError` with "payload is not a MessagePack map" when the value at
    ``start`` is not a map, or another message for malformed bytes met on the way.
    """
    segments = _PATHS.get(path) or compile_path(path)
    pos = start
    try:
        for enc, head, size, _ in segments:
            m = data[pos]
            if m >> 4 != 8:
                return _find(data, start, end, segments)
            pos += 1
            for _ in range(m & 0x0F):
                m = data[pos]
                if m == head and data[pos:pos + size] == enc:
                    pos += size
                    break
                pos += _KEY[m]
                pos += _FIXED[data[pos]] or _span(data, pos, end)
            else:
                if pos > end:
                    return _find(data, start, end, segments)
                return -1
    except IndexError:
        return _find(data, start, end, segments)
    # A key found past the end means the walk strayed out of the payload: redo it carefully.
    return pos if pos < end else _find(data, start, end, segments)


def _find(data, start, end, segments):
    # The careful walk behind `find`'s fast path: bounds checked at every step, every key
    # form, and the errors Rust's reader gives, in the same order.
    pos = start
    root = True
    for enc, head, size, key in segments:
        if pos >= end:
            raise DecodeError(TRUNCATED)
        m = data[pos]
        if 0x80 <= m <= 0x8F:
            n = m & 0x0F
            pos += 1
        elif m == 0xDE:
            n = _be(data, pos + 1, 2, end)
            pos += 3
        elif m == 0xDF:
            n = _be(data, pos + 1, 4, end)
            pos += 5
        else:
            _header(data, pos, end)
            if root:
                raise DecodeError(NOT_A_MAP)
            return -1
        root = False
        while n:
            if pos >= end:
                raise DecodeError(TRUNCATED)
            m = data[pos]
            if m == head and data.startswith(enc, pos, end):
                pos += size
                break
            if 0xA0 <= m <= 0xBF:
                pos += 1 + (m & 0x1F)
            else:
                pos, matched = _other_key(data, pos, end, key)
                if matched:
                    break
            if pos >= end:
                raise DecodeError(TRUNCATED)
            skipped = _FIXED[data[pos]]
            pos = pos + skipped if skipped else skip(data, pos, end)
            n -= 1
        else:
            if pos > end:
                raise DecodeError(TRUNCATED)
            return -1
    return pos


def number_at(data, start, end, path):
    """The number at ``path`` as a float, or None when it is missing or not an integer or a
    float (booleans are not numbers). Integers convert as Rust's ``as f64`` does."""
    # `find`'s fast path again, inline: this is the lookup of every numeric filter, and a
    # call costs as much as a few map entries.
    segments = _PATHS.get(path) or compile_path(path)
    pos = start
    try:
        for enc, head, size, _ in segments:
            m = data[pos]
            if m >> 4 != 8:
                return _number(data, start, end, segments)
            pos += 1
            for _ in range(m & 0x0F):
                m = data[pos]
                if m == head and data[pos:pos + size] == enc:
                    pos += size
                    break
                pos += _KEY[m]
                pos += _FIXED[data[pos]] or _span(data, pos, end)
            else:
                if pos > end:
                    return _number(data, start, end, segments)
                return None
        m = data[pos]
        k = _FIXED[m]
        if k and pos + k <= end:
            if m <= 0x7F:
                return m + 0.0
            if m == 0xCB:
                return _F64.unpack_from(data, pos + 1)[0]
            if m >= 0xE0:
                return m - 256.0
            if 0xCA <= m <= 0xD3:
                return float(_NUMBERS[m].unpack_from(data, pos + 1)[0])
            return None
    except IndexError:
        pass
    return _number(data, start, end, segments)


def _number(data, start, end, segments):
    pos = _find(data, start, end, segments)
    if pos < 0:
        return None
    if pos >= end:
        raise DecodeError(TRUNCATED)
    m = data[pos]
    if m <= 0x7F:
        return float(m)
    if m >= 0xE0:
        return float(m - 0x100)
    if 0xCA <= m <= 0xD3:
        if pos + _FIXED[m] > end:
            raise DecodeError(TRUNCATED)
        return float(_NUMBERS[m].unpack_from(data, pos + 1)[0])
    _header(data, pos, end)
    return None


_NUMBERS = {0xCA: _F32, 0xCB: _F64, 0xCC: struct.Struct(">B"), 0xCD: _U16, 0xCE: _U32,
            0xCF: _U64, 0xD0: _I8, 0xD1: _I16, 0xD2: _I32, 0xD3: _I64}


def string_at(data, start, end, path):
    """The string at ``path``, or None when it is missing, not a string, or not UTF-8."""
    pos = find(data, start, end, path)
    return None if pos < 0 else _string(data, pos, end)


def _string(data, pos, end):
    n = _header(data, pos, end)
    m = data[pos]
    if 0xA0 <= m <= 0xBF:
        body = pos + 1
    elif m in (0xD9, 0xDA, 0xDB):
        body = pos + 1 + _PREFIXED[m][0]
    else:
        return None
    try:
        return data[body:pos + n].decode("utf-8")
    except UnicodeDecodeError:
        return None


def value_at(data, start, end, path):
    """The value at ``path``, decoded (maps to dicts, arrays to lists), or None when missing.
    An explicit nil also reads as None; use :func:`find` to tell the two apart."""
    pos = find(data, start, end, path)
    if pos < 0:
        return None
    return _read(data, pos, end)[0]


def raw_at(data, start, end, path):
    """The encoded bytes of the value at ``path``, or None when it is missing."""
    pos = find(data, start, end, path)
    if pos < 0:
        return None
    return data[pos:skip(data, pos, end)]


def items_at(data, start, end, path):
    """The encoded bytes of each item of the array at ``path``, or None when it is missing or
    not an array."""
    pos = find(data, start, end, path)
    if pos < 0:
        return None
    n = _header(data, pos, end)
    m = data[pos]
    if 0x90 <= m <= 0x9F:
        count = m & 0x0F
    elif m == 0xDC or m == 0xDD:
        count = _be(data, pos + 1, n - 1, end)
    else:
        return None
    pos += n
    items = []
    for _ in range(count):
        after = skip(data, pos, end)
        items.append(data[pos:after])
        pos = after
    return items


def lookup(payload, path: str):
    """The decoded value at a dotted ``path`` of a map payload, or None when it is missing.

    >>> lookup(packb({"user": {"age": 42}}), "user.age")
    42
    """
    payload = bytes(payload)
    return value_at(payload, 0, len(payload), path)


def unpackb(data):
    """Decodes one MessagePack value that fills ``data`` exactly."""
    if type(data) is not bytes:
        data = bytes(data)
    value, end = _read(data, 0, len(data))
    if end != len(data):
        raise DecodeError(f"payload has {len(data) - end} bytes after its value")
    return value


def _str(data, pos, n, end):
    if pos + n > end:
        raise DecodeError(TRUNCATED)
    try:
        return data[pos:pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise DecodeError("payload has a string that is not UTF-8") from None


def _read(data, pos, end):
    # Recursion depth is bounded by Python's recursion limit, which turns a hostile,
    # deeply nested payload into an error rather than a crash.
    if pos >= end:
        raise DecodeError(TRUNCATED)
    m = data[pos]
    pos += 1
    if m <= 0x7F:
        return m, pos
    if m >= 0xE0:
        return m - 0x100, pos
    if m <= 0x8F:
        return _map(data, pos, m & 0x0F, end)
    if m <= 0x9F:
        return _array(data, pos, m & 0x0F, end)
    if m <= 0xBF:
        return _str(data, pos, m & 0x1F, end)
    if m == 0xC0:
        return None, pos
    if m == 0xC2:
        return False, pos
    if m == 0xC3:
        return True, pos
    if 0xCA <= m <= 0xD3:
        if pos + _FIXED[m] - 1 > end:
            raise DecodeError(TRUNCATED)
        return _NUMBERS[m].unpack_from(data, pos)[0], pos + _FIXED[m] - 1
    if m in _PREFIXED:
        size, extra = _PREFIXED[m]
        n = _be(data, pos, size, end)
        pos += size
        if extra:
            return _ext(data, pos, n, end)
        if m >= 0xD9:
            return _str(data, pos, n, end)
        if pos + n > end:
            raise DecodeError(TRUNCATED)
        return data[pos:pos + n], pos + n
    if 0xD4 <= m <= 0xD8:
        return _ext(data, pos, 1 << (m - 0xD4), end)
    if m == 0xDC or m == 0xDD:
        size = 2 if m == 0xDC else 4
        return _array(data, pos + size, _be(data, pos, size, end), end)
    if m == 0xDE or m == 0xDF:
        size = 2 if m == 0xDE else 4
        return _map(data, pos + size, _be(data, pos, size, end), end)
    raise DecodeError(RESERVED)


def _ext(data, pos, n, end):
    if pos + 1 + n > end:
        raise DecodeError(TRUNCATED)
    return (_I8.unpack_from(data, pos)[0], data[pos + 1:pos + 1 + n]), pos + 1 + n


# Containers decode their small ints, floats, nils and short strings inline: states and
# accumulators are mostly those, and a call per item would cost more than the item.

def _array(data, pos, n, end):
    items = []
    append = items.append
    for _ in range(n):
        if pos >= end:
            raise DecodeError(TRUNCATED)
        m = data[pos]
        if m <= 0x7F:
            append(m)
            pos += 1
        elif m == 0xCB and pos + 9 <= end:
            append(_F64.unpack_from(data, pos + 1)[0])
            pos += 9
        elif m == 0xC0:
            append(None)
            pos += 1
        else:
            item, pos = _read(data, pos, end)
            append(item)
    return items, pos


def _map(data, pos, n, end):
    out = {}
    for _ in range(n):
        if pos >= end:
            raise DecodeError(TRUNCATED)
        m = data[pos]
        if 0xA0 <= m <= 0xBF:
            key, pos = _str(data, pos + 1, m & 0x1F, end)
        else:
            key, pos = _read(data, pos, end)
            if isinstance(key, (list, dict)):
                key = repr(key)
        if pos >= end:
            raise DecodeError(TRUNCATED)
        m = data[pos]
        if m <= 0x7F:
            out[key] = m
            pos += 1
        elif m == 0xCB and pos + 9 <= end:
            out[key] = _F64.unpack_from(data, pos + 1)[0]
            pos += 9
        elif m == 0xC0:
            out[key] = None
            pos += 1
        else:
            out[key], pos = _read(data, pos, end)
    return out, pos


def packb(value) -> bytes:
    """Encodes ``value`` (None, bool, int, float, str, bytes, list/tuple, dict).

    Floats are always float64 (``1.0`` stays a float), integers take their shortest form and
    dict entries keep their order, as ``rmp-serde`` encodes a Rust struct.
    """
    out = bytearray()
    _write(out, value)
    return bytes(out)


_MARKED_F64 = struct.Struct(">Bd")
_MARKED = {0xCC: struct.Struct(">BB"), 0xCD: struct.Struct(">BH"), 0xCE: struct.Struct(">BI"),
           0xCF: struct.Struct(">BQ"), 0xD0: struct.Struct(">Bb"), 0xD1: struct.Struct(">Bh"),
           0xD2: struct.Struct(">Bi"), 0xD3: struct.Struct(">Bq")}


def _write(out, v):
    t = type(v)
    if t is int:
        if 0 <= v <= 0x7F:
            out.append(v)
        else:
            _write_int(out, v)
    elif t is float:
        out += _MARKED_F64.pack(0xCB, v)
    elif t is str:
        raw = v.encode("utf-8")
        n = len(raw)
        if n <= 31:
            out.append(0xA0 | n)
        else:
            _len(out, n, None, -1, (0xD9, 0xDA, 0xDB))
        out += raw
    elif v is None:
        out.append(0xC0)
    elif t is list or t is tuple:
        n = len(v)
        if n <= 15:
            out.append(0x90 | n)
        else:
            _len(out, n, None, -1, (None, 0xDC, 0xDD))
        # Small ints, floats and nils inline, as in `_array`.
        for item in v:
            t = type(item)
            if t is float:
                out += _MARKED_F64.pack(0xCB, item)
            elif t is int and 0 <= item <= 0x7F:
                out.append(item)
            elif item is None:
                out.append(0xC0)
            else:
                _write(out, item)
    elif t is dict:
        n = len(v)
        if n <= 15:
            out.append(0x80 | n)
        else:
            _len(out, n, None, -1, (None, 0xDE, 0xDF))
        for key, item in v.items():
            if type(key) is str and len(key) <= 31 and key.isascii():
                out.append(0xA0 | len(key))
                out += key.encode("ascii")
            else:
                _write(out, key)
            t = type(item)
            if t is float:
                out += _MARKED_F64.pack(0xCB, item)
            elif t is int and 0 <= item <= 0x7F:
                out.append(item)
            elif item is None:
                out.append(0xC0)
            else:
                _write(out, item)
    else:
        _write_other(out, v)


def _write_other(out, v):
    # Booleans, binaries and subclasses of the common types.
    if v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        _write_int(out, int(v))
    elif isinstance(v, float):
        out += _MARKED_F64.pack(0xCB, v)
    elif isinstance(v, str):
        _write(out, str(v))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        raw = bytes(v)
        _len(out, len(raw), None, -1, (0xC4, 0xC5, 0xC6))
        out += raw
    elif isinstance(v, (list, tuple)):
        _write(out, list(v))
    elif isinstance(v, dict):
        _write(out, dict(v))
    else:
        raise TypeError(f"cannot encode {type(v).__name__} as MessagePack")


def _len(out, n, fix, fix_max, markers):
    m8, m16, m32 = markers
    if fix is not None and n <= fix_max:
        out.append(fix | n)
    elif m8 is not None and n <= 0xFF:
        out += bytes((m8, n))
    elif n <= 0xFFFF:
        out.append(m16)
        out += n.to_bytes(2, "big")
    else:
        out.append(m32)
        out += n.to_bytes(4, "big")


def _write_int(out, v):
    if v >= 0:
        if v <= 0x7F:
            out.append(v)
            return
        marker = 0xCC if v <= 0xFF else 0xCD if v <= 0xFFFF else 0xCE if v <= 0xFFFFFFFF else 0xCF
        if v >= 1 << 64:
            raise OverflowError("integer too large for MessagePack")
    else:
        if v >= -32:
            out.append(v & 0xFF)
            return
        marker = (0xD0 if v >= -0x80 else 0xD1 if v >= -0x8000 else
                  0xD2 if v >= -0x80000000 else 0xD3)
        if v < -(1 << 63):
            raise OverflowError("integer too small for MessagePack")
    out += _MARKED[marker].pack(marker, v)
