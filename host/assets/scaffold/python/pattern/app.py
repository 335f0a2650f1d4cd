"""{{name}}: for each key, an event with ``kind == "start"`` followed by one with
``kind == "end"`` less than ``within_ms`` (default 60000) later emits
``{"start": t0, "end": t1}``. A newer start replaces a pending one.
"""

from weir_plugin import ConfigError, Pattern, export_pattern


class {{class}}(Pattern):
    def __init__(self, config):
        self.within_ms = config.whole("within_ms", default=60000)
        if self.within_ms <= 0 or self.within_ms >= 2**63:
            raise ConfigError('"within_ms" must be a positive number')

    def create(self):
        # The state the host keeps per key, and checkpoints: the time of the pending start.
        # A dict changed in place; the methods below could return a new state instead.
        return {"pending": None}

    # Events of one key arrive in event-time order, so a start this old can never match.
    def _expire(self, state, now):
        pending = state["pending"]
        if pending is not None and pending + self.within_ms <= now:
            state["pending"] = None

    def on_event(self, state, event, matches):
        now = event.time
        self._expire(state, now)
        kind = event.string("kind")
        if kind == "start":
            state["pending"] = now
        elif kind == "end" and state["pending"] is not None:
            matches.emit({"start": state["pending"], "end": now})
            state["pending"] = None

    def on_timer(self, state, now, matches):
        self._expire(state, now)

    # The host calls `on_timer` when event time reaches this, so a key whose start never
    # ends does not hold its state forever.
    def next_timer(self, state):
        pending = state["pending"]
        return None if pending is None else pending + self.within_ms


# componentize-py looks for the exported interface under this name.
PatternMatcher = export_pattern({{class}})
