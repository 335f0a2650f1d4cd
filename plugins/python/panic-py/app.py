"""Hostile: fails events whose ``poison`` field is ``true`` by raising; keeps the others.

The Python twin of plugins/rust/testing/panic. The exception escapes ``handle``, so the SDK
reports that event as failed (code ``internal``, "RuntimeError: poisoned event at time T").
"""

from weir_plugin import Handler, export_handler


class Panic(Handler):
    def handle(self, event, out):
        if event.field("poison") is True:
            raise RuntimeError(f"poisoned event at time {event.time}")
        out.keep()


EventHandler = export_handler(Panic)
