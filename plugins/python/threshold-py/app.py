"""Keeps events whose numeric field ``field`` (a name or dotted path) is greater than ``min``.

The Python twin of plugins/rust/threshold: the same configuration, the same decisions and
the same error messages. Config: ``{"field": "amount", "min": 50}``. An event whose payload
is not a MessagePack map fails with ``invalid-input``; one whose field is missing or not a
number is dropped. Kept events pass through unchanged, so no payload is copied back.
"""

from weir_plugin import Handler, export_handler


class Threshold(Handler):
    def __init__(self, config):
        self.field = config.string("field")
        self.min = config.number("min")

    def handle(self, event, out):
        # `number` walks the payload to the one field and decodes nothing else.
        value = event.number(self.field)
        if value is not None and value > self.min:
            out.keep()


EventHandler = export_handler(Threshold)
