"""Write Weir handler plugins in Python.

An author subclasses :class:`Handler`, handles one event at a time, and exports the class::

    from weir_plugin import Handler, InvalidInput, export_handler

    class Threshold(Handler):
        def __init__(self, config):
            self.field = config["field"]

        def handle(self, event, out):
            if event.value.get(self.field, 0) > 50:
                out.keep()

    EventHandler = export_handler(Threshold)

The SDK turns the contract's packed batches into :class:`Event` objects and builds the
packed outcomes; exceptions become per-event failures that the host dead-letters.
"""

import json

from . import msgpack

__all__ = [
    "ConfigError",
    "Emit",
    "Event",
    "Handler",
    "InvalidInput",
    "PluginError",
    "export_handler",
    "msgpack",
]


class PluginError(Exception):
    """An error returned to the host as a value; ``code`` is the contract's error code."""

    code = "internal"


class ConfigError(PluginError):
    """The configuration is missing a key or has a bad value."""

    code = "invalid-config"


class InvalidInput(PluginError):
    """An input event cannot be handled."""

    code = "invalid-input"


def _value(data: bytes, ends, i: int) -> bytes:
    start = ends[i - 1] if i > 0 else 0
    return data[start:ends[i]]


class Event:
    """One input event: ``payload`` (bytes), ``value`` (decoded payload), ``key``, ``time``,
    ``headers`` (a list of ``(name, bytes)``)."""

    __slots__ = ("_batch", "index", "_value")

    def __init__(self, batch, index: int):
        self._batch = batch
        self.index = index
        self._value = _UNDECODED

    @property
    def payload(self) -> bytes:
        """The payload bytes (MessagePack by convention)."""
        return _value(self._batch.payloads.data, self._batch.payloads.ends, self.index)

    @property
    def value(self):
        """The payload decoded from MessagePack; raises :class:`InvalidInput` if it is not."""
        if self._value is _UNDECODED:
            try:
                self._value = msgpack.unpackb(self.payload)
            except msgpack.DecodeError as e:
                raise InvalidInput(f"payload is not valid MessagePack: {e}") from None
        return self._value

    @property
    def time(self) -> int:
        """Event time in milliseconds since the Unix epoch."""
        return self._batch.times[self.index]

    @property
    def key(self):
        """The key as bytes, or None."""
        b = self._batch
        if not b.keys.ends or not (b.key_present[self.index // 8] >> (self.index % 8)) & 1:
            return None
        return _value(b.keys.data, b.keys.ends, self.index)

    @property
    def headers(self):
        """The headers as a list of ``(name, value)``."""
        b = self._batch
        if not b.header_ends:
            return []
        start = b.header_ends[self.index - 1] if self.index > 0 else 0
        return [
            (_value(b.header_names.data, b.header_names.ends, h).decode("utf-8"),
             _value(b.header_values.data, b.header_values.ends, h))
            for h in range(start, b.header_ends[self.index])
        ]


_UNDECODED = object()


class Emit:
    """What a handler may do with the event in hand: keep it, emit outputs, or nothing
    (which drops it)."""

    __slots__ = ("_outcomes", "_index")

    def __init__(self, outcomes, index):
        self._outcomes = outcomes
        self._index = index

    def keep(self):
        """Passes the event through unchanged."""
        self._outcomes.keep[self._index // 8] |= 1 << (self._index % 8)

    def emit(self, value):
        """Emits ``value`` encoded as MessagePack, inheriting key, time and headers."""
        self.emit_bytes(msgpack.packb(value))

    def emit_bytes(self, payload: bytes):
        """Emits an already encoded payload."""
        o = self._outcomes
        o.sources.append(self._index)
        o.data += payload
        o.ends.append(len(o.data))


class Handler:
    """Base class of a handler: ``__init__(config)`` receives the configuration as a dict,
    ``handle(event, out)`` is called for each event."""

    def __init__(self, config: dict):
        self.config = config

    def handle(self, event: Event, out: Emit) -> None:
        """Handles one event; raise to fail it (it goes to the dead-letter sink)."""
        raise NotImplementedError


class _Outcomes:
    __slots__ = ("keep", "sources", "data", "ends", "failures")

    def __init__(self, n):
        self.keep = bytearray((n + 7) // 8)
        self.sources = []
        self.data = bytearray()
        self.ends = []
        self.failures = []

    def retract(self, index):
        while self.sources and self.sources[-1] == index:
            self.sources.pop()
            self.ends.pop()
        del self.data[self.ends[-1] if self.ends else 0:]
        self.keep[index // 8] &= ~(1 << (index % 8)) & 0xFF


def _error(types, error: Exception):
    if isinstance(error, PluginError):
        code, message = error.code, str(error)
    else:
        code, message = "internal", f"{type(error).__name__}: {error}"
    codes = {
        "invalid-config": types.ErrorCode.INVALID_CONFIG,
        "invalid-input": types.ErrorCode.INVALID_INPUT,
        "unsupported-state": types.ErrorCode.UNSUPPORTED_STATE,
        "internal": types.ErrorCode.INTERNAL,
    }
    return types.Error(code=codes.get(code, types.ErrorCode.INTERNAL), message=message)


def export_handler(handler_class):
    """Returns the class componentize-py exports for the ``handler`` world; assign it to
    ``EventHandler`` in the app module."""
    from componentize_py_types import Err
    from wit_world import exports
    from wit_world.exports import event_handler
    from wit_world.imports import types

    empty = types.Column(data=b"", ends=[])

    class EventHandler(exports.EventHandler):
        handler = None

        def init(self, config: str) -> None:
            try:
                parsed = json.loads(config) if config.strip() else {}
                if not isinstance(parsed, dict):
                    raise ConfigError("configuration is not a JSON object")
                EventHandler.handler = handler_class(parsed)
            except Exception as e:  # noqa: BLE001 - every failure is reported to the host
                if not isinstance(e, PluginError):
                    e = ConfigError(f"{type(e).__name__}: {e}")
                raise Err(_error(types, e)) from None

        def process(self, events):
            handler = EventHandler.handler
            if handler is None:
                raise Err(_error(types, PluginError("process called before init")))
            n = len(events.payloads.ends)
            out = _Outcomes(n)
            for i in range(n):
                try:
                    handler.handle(Event(events, i), Emit(out, i))
                except Exception as e:  # noqa: BLE001 - a failure of this event only
                    out.retract(i)
                    out.failures.append(types.Failure(index=i, error=_error(types, e)))
            batch = types.Batch(
                payloads=types.Column(data=bytes(out.data), ends=out.ends),
                times=[], keys=empty, key_present=b"", header_ends=[],
                header_names=empty, header_values=empty,
            )
            return event_handler.Outcomes(
                keep=bytes(out.keep),
                outputs=types.Emitted(sources=out.sources, events=batch),
                failures=out.failures,
            )

    return EventHandler
