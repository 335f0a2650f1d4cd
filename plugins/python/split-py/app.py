"""Turns one event into one event per item of its array field ``field`` (default ``items``).

The Python twin of plugins/rust/split. Each output's payload is the item itself, copied as
encoded (never decoded and re-encoded, so it is byte for byte the input's); key, time and
headers are the input's. An event without the field, or whose field is not an array, is
dropped; one whose payload is not a MessagePack map fails with ``invalid-input``.
"""

from weir_plugin import Handler, export_handler


class Split(Handler):
    def __init__(self, config):
        self.field = config.string("field", default="items")

    def handle(self, event, out):
        items = event.items(self.field)
        if items is None:
            return
        for item in items:
            out.emit_bytes(item)


EventHandler = export_handler(Split)
