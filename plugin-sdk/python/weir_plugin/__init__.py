"""Write Weir plugins in Python: handlers, windowed aggregators and CEP patterns.

A plugin module subclasses one base class and exports it under the name componentize-py
expects for its world::

    from weir_plugin import Handler, export_handler

    class Threshold(Handler):
        def __init__(self, config):
            self.field = config.string("field", default="amount")
            self.min = config.number("min", default=0.0)

        def handle(self, event, out):
            value = event.number(self.field)   # reads one field, decodes nothing else
            if value is not None and value > self.min:
                out.keep()

    EventHandler = export_handler(Threshold)

==========  ==================  ==========================================
world       base class          export
==========  ==================  ==========================================
handler     :class:`Handler`    ``EventHandler = export_handler(C)``
aggregator  :class:`Aggregator` ``WindowedAggregator = export_aggregator(C)``
pattern     :class:`Pattern`    ``PatternMatcher = export_pattern(C)``
==========  ==================  ==========================================

The host calls a plugin with whole batches laid out as columns; the SDK loops over them,
hands each event to the author's method as an :class:`Event`, builds the packed results,
and turns an exception raised for one event into a failure of that event (dead-lettered by
the host) with the message ``"TypeName: message"``, or the message alone and the error's
code for a :class:`PluginError` such as :class:`InvalidInput`.

Build with ``componentize-py -d wit -w <world> componentize -p <dir of weir_plugin> app -o
plugin.wasm``.
"""

from . import host, msgpack
from .aggregator import Aggregator, export_aggregator
from .config import Config
from .errors import ConfigError, InvalidInput, PluginError, UnsupportedState
from .event import Event
from .handler import Emit, Handler, export_handler
from .output import INHERIT
from .pattern import Matches, Pattern, export_pattern

__all__ = [
    "INHERIT",
    "Aggregator",
    "Config",
    "ConfigError",
    "Emit",
    "Event",
    "Handler",
    "InvalidInput",
    "Matches",
    "Pattern",
    "PluginError",
    "UnsupportedState",
    "export_aggregator",
    "export_handler",
    "export_pattern",
    "host",
    "msgpack",
]
