"""Building the events a plugin emits, in the contract's packed layout."""

__all__ = ["INHERIT"]


class _Inherit:
    def __repr__(self):
        return "INHERIT"


#: The default of an output's ``key``: the output keeps the key of its source. Pass None to
#: emit an output without a key.
INHERIT = _Inherit()


class Emitted:
    """Emitted events as columns, grown one event at a time.

    Outputs that set their own key, time or headers are rare, so those are kept aside by
    position and only turned into full columns (every other output inheriting) when present.
    """

    __slots__ = ("sources", "data", "ends", "keys", "times", "headers")

    def __init__(self):
        self.sources = []
        self.data = bytearray()
        self.ends = []
        self.keys = None
        self.times = None
        self.headers = None

    def push(self, source: int, payload, key=INHERIT, time=None, headers=None):
        """Appends one output of ``source``."""
        if key is not INHERIT or time is not None or headers is not None:
            self._attributes(key, time, headers)
        self.sources.append(source)
        self.data += payload
        self.ends.append(len(self.data))

    def _attributes(self, key, time, headers):
        at = len(self.sources)
        if key is not INHERIT:
            if self.keys is None:
                self.keys = {}
            self.keys[at] = None if key is None else _as_bytes(key)
        if time is not None:
            if self.times is None:
                self.times = {}
            self.times[at] = int(time)
        if headers is not None:
            if self.headers is None:
                self.headers = {}
            items = headers.items() if isinstance(headers, dict) else headers
            self.headers[at] = [(str(n), _as_bytes(v)) for n, v in items]

    def retract(self, source: int):
        """Drops every output of ``source`` (its event failed)."""
        sources = self.sources
        if not sources or sources[-1] != source:
            return
        while sources and sources[-1] == source:
            sources.pop()
            self.ends.pop()
            at = len(sources)
            for attributes in (self.keys, self.times, self.headers):
                if attributes:
                    attributes.pop(at, None)
        del self.data[self.ends[-1] if self.ends else 0:]

    def finish(self, types, key_of, time_of, headers_of):
        """The ``emitted`` record; ``*_of(source)`` give what an output inherits."""
        empty = types.Column(data=b"", ends=[])
        sources = self.sources
        times = []
        keys = empty
        key_present = b""
        header_ends = []
        names = values = empty
        if self.times:
            given = self.times
            times = [given[at] if at in given else time_of(s) for at, s in enumerate(sources)]
        if self.keys:
            given = self.keys
            data = bytearray()
            ends = []
            present = bytearray((len(sources) + 7) // 8)
            for at, s in enumerate(sources):
                key = given[at] if at in given else key_of(s)
                if key is not None:
                    data += key
                    present[at >> 3] |= 1 << (at & 7)
                ends.append(len(data))
            keys = types.Column(data=bytes(data), ends=ends)
            key_present = bytes(present)
        if self.headers:
            given = self.headers
            name_data, name_ends = bytearray(), []
            value_data, value_ends = bytearray(), []
            for at, s in enumerate(sources):
                for name, value in (given[at] if at in given else headers_of(s)):
                    name_data += name.encode("utf-8")
                    name_ends.append(len(name_data))
                    value_data += value
                    value_ends.append(len(value_data))
                header_ends.append(len(name_ends))
            names = types.Column(data=bytes(name_data), ends=name_ends)
            values = types.Column(data=bytes(value_data), ends=value_ends)
        batch = types.Batch(
            payloads=types.Column(data=bytes(self.data), ends=self.ends),
            times=times, keys=keys, key_present=key_present, header_ends=header_ends,
            header_names=names, header_values=values,
        )
        return types.Emitted(sources=sources, events=batch)


def _as_bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)
