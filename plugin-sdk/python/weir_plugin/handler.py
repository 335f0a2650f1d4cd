"""The ``handler`` world: filter, map, filter-map and flat-map in one shape."""

from .errors import PluginError
from .event import Event
from .msgpack import packb
from .output import INHERIT, Emitted
from . import _wit

__all__ = ["Emit", "Handler", "export_handler"]

# Keep flags (one byte per event, 0 or 1) to the contract's bitmap, least significant bit
# first: as text, reversed so that event 0 is the lowest bit, then read as one integer. All of
# it runs in C, where a loop over bits in Python would cost more than the handler itself.
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def _bitmap(flags: bytearray) -> bytes:
    if 1 not in flags:
        return b""
    return int(flags.translate(_DIGITS)[::-1], 2).to_bytes((len(flags) + 7) // 8, "little")


class Emit:
    """What a handler may do with the event in hand: :meth:`keep` it, :meth:`emit` outputs
    (any number), or nothing, which drops it. Like :class:`Event`, one object serves the
    whole batch."""

    __slots__ = ("_event", "_flags", "_emitted")

    def __init__(self, event: Event, flags: bytearray, emitted: Emitted):
        self._event = event
        self._flags = flags
        self._emitted = emitted

    def keep(self) -> None:
        """Passes the event through unchanged (no copy of its payload crosses back)."""
        self._flags[self._event.index] = 1

    def emit(self, value, key=INHERIT, time=None, headers=None) -> None:
        """Emits ``value`` encoded as MessagePack (see :func:`weir_plugin.msgpack.packb`).

        The output inherits the event's key, time and headers unless given: ``key`` (str or
        bytes; None for no key), ``time`` (ms since the Unix epoch), ``headers`` (a dict or
        a list of ``(name, value)`` pairs, replacing the event's)."""
        self._emitted.push(self._event.index, packb(value), key, time, headers)

    def emit_bytes(self, payload: bytes, key=INHERIT, time=None, headers=None) -> None:
        """Emits an already encoded payload, such as a value from ``event.raw(path)``. The
        other arguments are as for :meth:`emit`."""
        self._emitted.push(self._event.index, payload, key, time, headers)


class Handler:
    """Base class of a handler.

    ``__init__(config)`` receives the stage's configuration (a :class:`~weir_plugin.Config`,
    which is a dict); raise :class:`~weir_plugin.ConfigError` to refuse it. ``handle(event,
    out)`` is called for each event, in order.
    """

    def __init__(self, config: dict):
        self.config = config

    def handle(self, event: Event, out: Emit) -> None:
        """Handles one event: call ``out.keep()``, ``out.emit(...)`` or nothing (drop).

        Raising fails this event only: its outputs are withdrawn and the host sends it to the
        dead-letter sink, with ``str(error)`` for a :class:`~weir_plugin.PluginError` and
        ``"TypeName: message"`` (code ``internal``) for any other exception."""
        raise NotImplementedError


def export_handler(handler_class):
    """Returns the class componentize-py exports for the ``handler`` world; assign it to
    ``EventHandler`` in the app module::

        EventHandler = export_handler(MyHandler)
    """
    from componentize_py_types import Err
    from wit_world import exports
    from wit_world.exports import event_handler
    from wit_world.imports import types

    slot = [None]
    outcomes = event_handler.Outcomes
    failure = _wit.failure

    class EventHandler(exports.EventHandler):
        def init(self, config: str) -> None:
            slot[0] = _wit.build(types, Err, handler_class, config)

        def process(self, events):
            handler = slot[0]
            if handler is None:
                raise Err(_wit.to_error(types, PluginError("process called before init")))
            n = len(events.payloads.ends)
            flags = bytearray(n)
            emitted = Emitted()
            event = Event(events)
            out = Emit(event, flags, emitted)
            handle = handler.handle
            failures = []
            for i in range(n):
                event.index = i
                try:
                    handle(event, out)
                except Exception as e:  # noqa: BLE001 - a failure of this event only
                    flags[i] = 0
                    emitted.retract(i)
                    failures.append(failure(types, i, e))
            return outcomes(
                keep=_bitmap(flags),
                outputs=emitted.finish(types, *_inherit(events)),
                failures=failures,
            )

    return EventHandler


def _inherit(events):
    # What an output that sets some of its attributes takes from its input for the others;
    # rarely needed, so the view over the inputs is only built on first use.
    view = []

    def event(source):
        if not view:
            view.append(Event(events))
        view[0].index = source
        return view[0]

    def key_of(source):
        return event(source).key

    def time_of(source):
        return event(source).time

    def headers_of(source):
        return event(source).headers

    return key_of, time_of, headers_of
