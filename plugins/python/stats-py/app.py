"""Aggregator: count, sum, min, max and mean of the numeric field ``field`` over a window.

The Python twin of plugins/rust/stats. Config: ``{"field": "amount"}``. Events whose field
is missing or not a number still count (in ``count``) but do not change the numeric
results; a payload that is not a MessagePack map fails that event. The result is a map
``{count, numeric, sum, min, max, mean}`` where min, max and mean are nil while no numeric
value was seen; sum, min, max and mean are always floats.
"""

import struct
from math import copysign

from weir_plugin import Aggregator, export_aggregator

# The accumulator: [count, numeric, sum, min, max], min and max None until a number was seen.
COUNT, NUMERIC, SUM, MIN, MAX = range(5)

# Kept by the host as 40 fixed bytes rather than MessagePack: one struct call each way instead
# of a walk through a codec written in Python. min and max are stored as 0.0 while `numeric`
# is 0, which is exactly when they are None.
_LAYOUT = struct.Struct("<QQddd")


def _min(a, b):
    # Rust's f64::min as built for wasm: a NaN loses to a number, and -0.0 is below 0.0.
    if a != a or b < a or (b == a == 0.0 and copysign(1.0, b) < 0.0):
        return b
    return a


def _max(a, b):
    if a != a or b > a or (b == a == 0.0 and copysign(1.0, a) < 0.0):
        return b
    return a


class Stats(Aggregator):
    def __init__(self, config):
        self.field = config.string("field")

    def create(self):
        return [0, 0, 0.0, None, None]

    def dump(self, acc):
        count, numeric, total, low, high = acc
        if numeric == 0:
            low = high = 0.0
        return _LAYOUT.pack(count, numeric, total, low, high)

    def load(self, data):
        if len(data) != _LAYOUT.size:
            raise ValueError(f"{len(data)} bytes, not {_LAYOUT.size}")
        acc = list(_LAYOUT.unpack(data))
        if acc[NUMERIC] == 0:
            acc[MIN] = acc[MAX] = None
        return acc

    def add(self, acc, event):
        # Look the field up first: a payload that is not a map fails before anything counts.
        value = event.number(self.field)
        acc[COUNT] += 1
        if value is not None:
            acc[NUMERIC] += 1
            acc[SUM] += value
            low = acc[MIN]
            if low is None:
                acc[MIN] = acc[MAX] = value
                return
            # The common cases inline; the helpers settle NaNs and signed zeros.
            if value < low:
                acc[MIN] = value
            elif value == low or low != low:
                acc[MIN] = _min(low, value)
            high = acc[MAX]
            if value > high:
                acc[MAX] = value
            elif value == high or high != high:
                acc[MAX] = _max(high, value)

    def merge(self, acc, other):
        acc[COUNT] += other[COUNT]
        acc[NUMERIC] += other[NUMERIC]
        acc[SUM] += other[SUM]
        for i, pick in ((MIN, _min), (MAX, _max)):
            if acc[i] is None:
                acc[i] = other[i]
            elif other[i] is not None:
                acc[i] = pick(acc[i], other[i])

    def finish(self, acc):
        count, numeric, total, low, high = acc
        return {
            "count": count,
            "numeric": numeric,
            "sum": total,
            "min": low,
            "max": high,
            "mean": total / numeric if numeric else None,
        }


WindowedAggregator = export_aggregator(Stats)
