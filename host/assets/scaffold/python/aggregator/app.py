"""{{name}}: counts the events of a window and sums their numeric field ``field`` (default
``amount``).

The result is ``{"count": n, "sum": s}``. Events without a numeric field still count.
"""

from weir_plugin import Aggregator, export_aggregator


class {{class}}(Aggregator):
    def __init__(self, config):
        self.field = config.string("field", default="amount")

    def create(self):
        # The accumulator the host keeps per key and window, and checkpoints (as MessagePack).
        # Named fields let a later version of the plugin add one and still read these.
        # The sum starts as a float so that the result is a float even when nothing is added.
        return {"count": 0, "sum": 0.0}

    def add(self, acc, event):
        # Read the field before changing anything: if it raises (the payload is not a map),
        # this event fails and the accumulator must stay as it was.
        amount = event.number(self.field)
        acc["count"] += 1
        if amount is not None:
            acc["sum"] += amount

    # Session windows and panes combine accumulators: merging must give what adding all the
    # events into one accumulator would have.
    def merge(self, acc, other):
        acc["count"] += other["count"]
        acc["sum"] += other["sum"]

    def finish(self, acc):
        return {"count": acc["count"], "sum": acc["sum"]}


# componentize-py looks for the exported interface under this name.
WindowedAggregator = export_aggregator({{class}})
