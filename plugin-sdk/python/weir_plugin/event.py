"""Per-event views over a batch: what an author's code sees of each input event."""

from . import msgpack
from .msgpack import _F64, _FIXED, _KEY, _KEYS, _NUMBERS, _number, _span, _string, compile_path
from .msgpack import find, items_at, number_at, raw_at, value_at

__all__ = ["Event"]


class Event:
    """One input event of a batch.

    The SDK hands the same ``Event`` object to every call of a batch and moves it from event
    to event, which saves building an object per event; keep what you need from it (its
    ``payload``, ``value``, ``key``...), not the event itself.

    Reading one field does not decode the payload: :meth:`field`, :meth:`number` and
    :meth:`string` walk the MessagePack bytes to the value and decode only that. Paths are
    dotted (``"amount"``, ``"user.id"``); a key that contains a dot cannot be reached by
    path, use :attr:`value`. They raise :class:`~weir_plugin.msgpack.DecodeError` (which
    fails the event with ``invalid-input``) when the payload is not a MessagePack map.
    """

    __slots__ = ("index", "_batch", "_data", "_ends", "_starts", "_decoded_index", "_decoded")

    def __init__(self, batch, index: int = 0):
        #: Position of the event in its batch.
        self.index = index
        self._batch = batch
        self._data = batch.payloads.data
        self._ends = ends = batch.payloads.ends
        # Where each payload starts, once per batch rather than a test per lookup.
        self._starts = [0]
        self._starts += ends[:-1]
        self._decoded_index = -1
        self._decoded = None

    @property
    def payload(self) -> bytes:
        """The payload bytes (MessagePack by convention)."""
        i = self.index
        ends = self._ends
        return self._data[ends[i - 1] if i else 0:ends[i]]

    @property
    def value(self):
        """The whole payload decoded from MessagePack: maps become dicts, arrays lists.

        Decoded once per event. Raises :class:`~weir_plugin.msgpack.DecodeError` when the
        payload is not valid MessagePack."""
        i = self.index
        if self._decoded_index != i:
            ends = self._ends
            end = ends[i]
            value, stop = msgpack._read(self._data, ends[i - 1] if i else 0, end)
            if stop != end:
                raise msgpack.DecodeError(f"payload has {end - stop} bytes after its value")
            self._decoded = value
            self._decoded_index = i
        return self._decoded

    def field(self, path: str):
        """The decoded value at a dotted ``path``, or None when a key on the way is missing or
        an intermediate value is not a map (an explicit nil also reads as None)."""
        i = self.index
        ends = self._ends
        return value_at(self._data, ends[i - 1] if i else 0, ends[i], path)

    def number(self, path: str):
        """The number at ``path`` as a float, or None when it is missing or not a number
        (booleans and numeric strings are not numbers). The cheapest lookup for filters."""
        # msgpack.number_at inlined for a top-level key: the lookup of every numeric filter,
        # where each call or bytecode saved shows. The fast path takes short maps, short
        # string keys and values whose size their first byte gives, without bounds checks;
        # anything else, or a walk that strays past the payload, is redone carefully.
        i = self.index
        data = self._data
        end = self._ends[i]
        pos = start = self._starts[i]
        key = _KEYS.get(path)
        if key is None:
            return number_at(data, start, end, path)
        enc, head, size = key
        try:
            m = data[pos]
            if m >> 4 == 8:
                pos += 1
                for _ in range(m & 0x0F):
                    m = data[pos]
                    if m == head and data[pos:pos + size] == enc:
                        pos += size
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
                        break
                    pos += _KEY[m]
                    pos += _FIXED[data[pos]] or _span(data, pos, end)
                else:
                    if pos <= end:
                        return None
        except IndexError:
            pass
        return _number(data, start, end, compile_path(path))

    def string(self, path: str):
        """The string at ``path``, or None when it is missing or not a (UTF-8) string."""
        i = self.index
        ends = self._ends
        data = self._data
        end = ends[i]
        pos = find(data, ends[i - 1] if i else 0, end, path)
        if pos < 0:
            return None
        # Short strings (the kinds, names and ids patterns compare) decoded inline.
        if pos < end:
            m = data[pos]
            stop = pos + 1 + (m & 0x1F)
            if 0xA0 <= m <= 0xBF and stop <= end:
                try:
                    return data[pos + 1:stop].decode("utf-8")
                except UnicodeDecodeError:
                    return None
        return _string(data, pos, end)

    def raw(self, path: str):
        """The still encoded bytes of the value at ``path``, or None when it is missing: emit
        them as they are with ``out.emit_bytes``."""
        i = self.index
        ends = self._ends
        return raw_at(self._data, ends[i - 1] if i else 0, ends[i], path)

    def items(self, path: str):
        """The still encoded bytes of each item of the array at ``path``, or None when it is
        missing or not an array."""
        i = self.index
        ends = self._ends
        return items_at(self._data, ends[i - 1] if i else 0, ends[i], path)

    def has(self, path: str) -> bool:
        """Whether the payload has a value (possibly nil) at ``path``."""
        i = self.index
        ends = self._ends
        return find(self._data, ends[i - 1] if i else 0, ends[i], path) >= 0

    @property
    def time(self) -> int:
        """Event time in milliseconds since the Unix epoch."""
        times = self._batch.times
        i = self.index
        return times[i] if i < len(times) else 0

    @property
    def key(self):
        """The key as bytes (an empty key is ``b""``), or None when the event has none."""
        b = self._batch
        i = self.index
        ends = b.keys.ends
        if not ends or not (b.key_present[i >> 3] >> (i & 7)) & 1:
            return None
        return b.keys.data[ends[i - 1] if i else 0:ends[i]]

    @property
    def headers(self):
        """The headers as a list of ``(name, value)`` pairs: names are str, values bytes."""
        b = self._batch
        i = self.index
        if not b.header_ends:
            return []
        start = b.header_ends[i - 1] if i else 0
        names, values = b.header_names, b.header_values
        return [(_cell(names, h).decode("utf-8", "replace"), _cell(values, h))
                for h in range(start, b.header_ends[i])]

    def header(self, name: str):
        """The value of the first header called ``name``, or None."""
        for n, v in self.headers:
            if n == name:
                return v
        return None


def _cell(column, i: int) -> bytes:
    ends = column.ends
    return column.data[ends[i - 1] if i else 0:ends[i]]
