"""The ``aggregator`` world: custom windowed aggregates whose accumulators the host holds."""

from .errors import PluginError, UnsupportedState
from .event import Event
from .msgpack import packb, unpackb
from . import _wit

__all__ = ["Aggregator", "export_aggregator"]


class Aggregator:
    """Base class of a windowed aggregate.

    The host keeps one accumulator per key and window, as bytes: the SDK decodes it with
    :meth:`load` before a call and encodes it with :meth:`dump` after, MessagePack by default,
    so an accumulator is any value :func:`~weir_plugin.msgpack.packb` encodes (a dict, a
    list, numbers...). Tuples come back as lists. A dict with named fields lets a later
    version of the plugin add a field and still read the accumulators of this one.

    ``add`` and ``merge`` either update the accumulator in place and return None, or return
    the new accumulator (needed when it is a number or a tuple).
    """

    def __init__(self, config: dict):
        self.config = config

    def create(self):
        """The empty accumulator; it may depend on the configuration only."""
        raise NotImplementedError

    def add(self, acc, event: Event):
        """Folds one event in. Raising fails this event only (the host dead-letters it): leave
        the accumulator as it was when you do."""
        raise NotImplementedError

    def merge(self, acc, other):
        """Folds accumulator ``other`` into ``acc`` (for session windows and panes): the result
        must be what adding the events of both would have given."""
        raise NotImplementedError

    def finish(self, acc):
        """The window's result, encoded as the MessagePack payload of the output event; by
        convention a dict of named results. Must not change ``acc``."""
        raise NotImplementedError

    def dump(self, acc) -> bytes:
        """Encodes an accumulator for the host to keep."""
        return packb(acc)

    def load(self, data: bytes):
        """Decodes an accumulator written by :meth:`dump` (possibly of an earlier version)."""
        return unpackb(data)


_UNSET = object()


def export_aggregator(aggregator_class):
    """Returns the class componentize-py exports for the ``aggregator`` world; assign it to
    ``WindowedAggregator`` in the app module::

        WindowedAggregator = export_aggregator(MyAggregate)
    """
    from componentize_py_types import Err
    from wit_world import exports
    from wit_world.exports import windowed_aggregator
    from wit_world.imports import types

    slot = [None]
    folded = windowed_aggregator.Folded

    def plugin():
        if slot[0] is None:
            raise Err(_wit.to_error(types, PluginError("called before init")))
        return slot[0]

    def call(f, *args):
        # A failure outside a single event's `add` fails the whole call.
        try:
            return f(*args)
        except Err:
            raise
        except Exception as e:  # noqa: BLE001 - reported to the host
            raise Err(_wit.to_error(types, e)) from None

    def load(agg, data):
        try:
            return agg.load(data)
        except Exception as e:  # noqa: BLE001 - reported to the host
            error = UnsupportedState(f"accumulator does not decode: {e}")
            raise Err(_wit.to_error(types, error)) from None

    def dump(agg, acc):
        try:
            return agg.dump(acc)
        except Exception as e:  # noqa: BLE001 - reported to the host
            raise Err(_wit.to_error(types, PluginError(f"cannot encode: {e}"))) from None

    def column(values):
        data = bytearray()
        ends = []
        for value in values:
            data += value
            ends.append(len(data))
        return types.Column(data=bytes(data), ends=ends)

    def cells(col):
        data = col.data
        start = 0
        out = []
        for end in col.ends:
            out.append(data[start:end])
            start = end
        return out

    class WindowedAggregator(exports.WindowedAggregator):
        def init(self, config: str) -> None:
            slot[0] = _wit.build(types, Err, aggregator_class, config)

        def create(self) -> bytes:
            agg = plugin()
            return dump(agg, call(agg.create))

        def add(self, accumulators, events, targets):
            agg = plugin()
            raw = cells(accumulators)
            count = len(raw)
            accs = [_UNSET] * count
            event = Event(events)
            add = agg.add
            failures = []
            targets = targets[:len(events.payloads.ends)]
            if targets and max(targets) >= count:
                t = next(t for t in targets if t >= count)
                error = PluginError(f"event targets accumulator {t} of {count}")
                raise Err(_wit.to_error(types, error))
            for i, t in enumerate(targets):
                acc = accs[t]
                if acc is _UNSET:
                    acc = accs[t] = load(agg, raw[t])
                event.index = i
                try:
                    new = add(acc, event)
                except Exception as e:  # noqa: BLE001 - a failure of this event only
                    failures.append(_wit.failure(types, i, e))
                    continue
                if new is not None:
                    accs[t] = new
            return folded(
                accumulators=column(raw[j] if acc is _UNSET else dump(agg, acc)
                                    for j, acc in enumerate(accs)),
                failures=failures,
            )

        def merge(self, left, right):
            agg = plugin()
            merged = []
            for l, r in zip(cells(left), cells(right)):
                acc = load(agg, l)
                new = call(agg.merge, acc, load(agg, r))
                merged.append(dump(agg, acc if new is None else new))
            return column(merged)

        def finish(self, accumulators):
            agg = plugin()
            return column(
                call(packb, call(agg.finish, load(agg, raw))) for raw in cells(accumulators))

    return WindowedAggregator
