"""{{name}}: keeps events whose numeric field ``field`` (default ``amount``) is at least
``min`` (default 0).

Config: ``{"field": "amount", "min": 10}``. An event without the field, or whose field is not
a number, is dropped; a payload that is not a MessagePack map fails with ``invalid-input``
and goes to the dead-letter sink.
"""

from weir_plugin import Handler, export_handler


class {{class}}(Handler):
    def __init__(self, config):
        # A bad value raises ConfigError naming the key, and the host refuses this version
        # before it serves anything.
        self.field = config.string("field", default="amount")
        self.min = config.number("min", default=0.0)

    def handle(self, event, out):
        # `number` reads one field without decoding the rest of the payload, and raises
        # (failing just this event) when the payload is not a map.
        amount = event.number(self.field)
        if amount is not None and amount >= self.min:
            # Passing the event through unchanged copies no payload back to the host.
            out.keep()
        # To replace the event instead, emit new payloads (any number of them):
        #     out.emit({"amount": amount, "big": True})
        # Raising InvalidInput("...") (or any exception) dead-letters this event only.


# componentize-py looks for the exported interface under this name.
EventHandler = export_handler({{class}})
