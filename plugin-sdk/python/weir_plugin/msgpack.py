"""A small MessagePack codec in pure Python (plugins run without C extensions).

Covers what JSON-like payloads use: nil, booleans, integers of every width, 32- and 64-bit
floats, strings, binaries, arrays and maps. Extension types decode to ``(code, bytes)``.
"""

import struct

__all__ = ["packb", "unpackb", "DecodeError"]


class DecodeError(ValueError):
    """The bytes are not exactly one MessagePack value."""


def unpackb(data: bytes):
    """Decodes one MessagePack value that fills ``data`` exactly."""
    value, end = _read(memoryview(data), 0)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} bytes after the value")
    return value


def _need(buf, pos, n):
    if pos + n > len(buf):
        raise DecodeError("payload is truncated MessagePack")


def _uint(buf, pos, n):
    _need(buf, pos, n)
    return int.from_bytes(buf[pos:pos + n], "big"), pos + n


def _bytes(buf, pos, n):
    _need(buf, pos, n)
    return bytes(buf[pos:pos + n]), pos + n


def _str(buf, pos, n):
    raw, pos = _bytes(buf, pos, n)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as e:
        raise DecodeError(f"a string is not UTF-8: {e}") from None


def _read(buf, pos):
    # Recursion depth is bounded by Python's recursion limit, which turns a hostile,
    # deeply nested payload into an error rather than a crash.
    _need(buf, pos, 1)
    m = buf[pos]
    pos += 1
    if m <= 0x7F:
        return m, pos
    if m >= 0xE0:
        return m - 0x100, pos
    if 0x80 <= m <= 0x8F:
        return _map(buf, pos, m & 0x0F)
    if 0x90 <= m <= 0x9F:
        return _array(buf, pos, m & 0x0F)
    if 0xA0 <= m <= 0xBF:
        return _str(buf, pos, m & 0x1F)
    if m == 0xC0:
        return None, pos
    if m == 0xC2:
        return False, pos
    if m == 0xC3:
        return True, pos
    if m in (0xC4, 0xC5, 0xC6):
        n, pos = _uint(buf, pos, {0xC4: 1, 0xC5: 2, 0xC6: 4}[m])
        return _bytes(buf, pos, n)
    if m in (0xC7, 0xC8, 0xC9):
        n, pos = _uint(buf, pos, {0xC7: 1, 0xC8: 2, 0xC9: 4}[m])
        return _ext(buf, pos, n)
    if m == 0xCA:
        _need(buf, pos, 4)
        return struct.unpack_from(">f", buf, pos)[0], pos + 4
    if m == 0xCB:
        _need(buf, pos, 8)
        return struct.unpack_from(">d", buf, pos)[0], pos + 8
    if 0xCC <= m <= 0xCF:
        return _uint(buf, pos, 1 << (m - 0xCC))
    if 0xD0 <= m <= 0xD3:
        n = 1 << (m - 0xD0)
        _need(buf, pos, n)
        return int.from_bytes(buf[pos:pos + n], "big", signed=True), pos + n
    if 0xD4 <= m <= 0xD8:
        return _ext(buf, pos, 1 << (m - 0xD4))
    if m in (0xD9, 0xDA, 0xDB):
        n, pos = _uint(buf, pos, {0xD9: 1, 0xDA: 2, 0xDB: 4}[m])
        return _str(buf, pos, n)
    if m in (0xDC, 0xDD):
        n, pos = _uint(buf, pos, 2 if m == 0xDC else 4)
        return _array(buf, pos, n)
    if m in (0xDE, 0xDF):
        n, pos = _uint(buf, pos, 2 if m == 0xDE else 4)
        return _map(buf, pos, n)
    raise DecodeError("payload is not valid MessagePack (reserved byte 0xc1)")


def _ext(buf, pos, n):
    _need(buf, pos, 1)
    code = int.from_bytes(buf[pos:pos + 1], "big", signed=True)
    data, pos = _bytes(buf, pos + 1, n)
    return (code, data), pos


def _array(buf, pos, n):
    items = []
    for _ in range(n):
        item, pos = _read(buf, pos)
        items.append(item)
    return items, pos


def _map(buf, pos, n):
    out = {}
    for _ in range(n):
        key, pos = _read(buf, pos)
        value, pos = _read(buf, pos)
        if isinstance(key, (list, dict)):
            key = repr(key)
        out[key] = value
    return out, pos


def packb(value) -> bytes:
    """Encodes ``value`` (None, bool, int, float, str, bytes, list/tuple, dict)."""
    out = bytearray()
    _write(out, value)
    return bytes(out)


def _write(out, v):
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        _write_int(out, v)
    elif isinstance(v, float):
        out.append(0xCB)
        out += struct.pack(">d", v)
    elif isinstance(v, str):
        raw = v.encode("utf-8")
        _header(out, len(raw), 0xA0, 31, (0xD9, 0xDA, 0xDB))
        out += raw
    elif isinstance(v, (bytes, bytearray, memoryview)):
        raw = bytes(v)
        _header(out, len(raw), None, -1, (0xC4, 0xC5, 0xC6))
        out += raw
    elif isinstance(v, (list, tuple)):
        _header(out, len(v), 0x90, 15, (None, 0xDC, 0xDD))
        for item in v:
            _write(out, item)
    elif isinstance(v, dict):
        _header(out, len(v), 0x80, 15, (None, 0xDE, 0xDF))
        for key, item in v.items():
            _write(out, key)
            _write(out, item)
    else:
        raise TypeError(f"cannot encode {type(v).__name__} as MessagePack")


def _header(out, n, fix, fix_max, markers):
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
    if 0 <= v <= 0x7F:
        out.append(v)
    elif -32 <= v < 0:
        out.append(v & 0xFF)
    elif v >= 0:
        for marker, n in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
            if v < 1 << (8 * n):
                out.append(marker)
                out += v.to_bytes(n, "big")
                return
        raise OverflowError("integer too large for MessagePack")
    else:
        for marker, n in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
            if v >= -(1 << (8 * n - 1)):
                out.append(marker)
                out += v.to_bytes(n, "big", signed=True)
                return
        raise OverflowError("integer too small for MessagePack")
