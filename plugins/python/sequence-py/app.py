"""Pattern: one event of each of the kinds in ``steps``, in that order, for the same key, all
within ``within_ms`` of the first; other events in between are skipped.

The Python twin of plugins/rust/sequence. Config:
``{"field": "kind", "steps": ["a", "b", "c"], "within_ms": 60000}``. Every event of the
first kind starts a partial match; a complete one emits ``{"start": t0, "end": t}``.
"""

import math
import struct

from weir_plugin import ConfigError, Pattern, export_pattern

# What each setting must be, named as the Rust version's configuration errors name them.
_EXPECTED = (("field", "a string"), ("steps", "a sequence"), ("within_ms", "i64"))


def _unexpected(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{_float(value)}`"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'string "{escaped}"'
    return "sequence" if isinstance(value, list) else "map"


def _float(f: float) -> str:
    # Shortest round-trip digits, plain from 1e-5 up to 1e16 and in exponent form outside.
    if not math.isfinite(f):
        return repr(f)
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + "0.0"
    mantissa, _, exponent = repr(abs(f)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    if whole.strip("0"):
        power = len(whole.lstrip("0")) - 1
    else:
        power = -(len(fraction) - len(fraction.lstrip("0")) + 1)
    power += int(exponent or 0)
    digits = digits.rstrip("0") or "0"
    if -5 <= power < 16:
        if power >= 0:
            return f"{sign}{digits[:power + 1].ljust(power + 1, '0')}.{digits[power + 1:] or '0'}"
        return f"{sign}0.{'0' * (-power - 1)}{digits}"
    point = "." + digits[1:] if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{point}e{'+' if power > 0 else '-'}{abs(power)}"


def _check(expected, value):
    # The problem serde would report with the value of one setting, or None.
    if expected == "a string":
        ok = isinstance(value, str)
    elif expected == "a sequence":
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    return f"invalid type: {_unexpected(item)}, expected a string"
            return None
        ok = False
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and not -(2**63) <= value < 2**63:
            return f"invalid value: integer `{value}`, expected i64"
    return None if ok else f"invalid type: {_unexpected(value)}, expected {expected}"


def _settings(config):
    for key, expected in _EXPECTED:
        if key in config:
            problem = _check(expected, config[key])
            if problem:
                raise ConfigError(f"configuration: {problem}")
    for key, _ in _EXPECTED:
        if key not in config:
            raise ConfigError(f"configuration: missing field `{key}`")
    return config["field"], config["steps"], config["within_ms"]


class Sequence(Pattern):
    def __init__(self, config):
        self.field, self.steps, self.within = _settings(config)
        if not self.steps or self.within <= 0:
            raise ConfigError(
                '"steps" must name at least one kind and "within_ms" be positive')

    def create(self):
        # Partial matches, oldest first: [start time, steps matched so far].
        return []

    # The host keeps the state as little-endian int64 pairs rather than MessagePack: two
    # struct calls a state, where the pure-Python codec would walk every value. An empty
    # state, the most common one, is zero bytes.
    def dump(self, partial):
        return struct.pack(f"<{2 * len(partial)}q", *[x for p in partial for x in p])

    def load(self, data):
        if len(data) % 16:
            raise ValueError(f"{len(data)} bytes, not a whole number of 16-byte pairs")
        flat = struct.unpack(f"<{len(data) // 8}q", data)
        return [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]

    def _expire(self, partial, now):
        # A partial match is dropped once `within` has passed since its start. Most events
        # expire nothing: look before building a new list.
        limit = now - self.within
        for p in partial:
            if p[0] <= limit:
                partial[:] = [p for p in partial if p[0] > limit]
                return

    def on_event(self, partial, event, matches):
        now = event.time
        if partial:
            self._expire(partial, now)
        kind = event.string(self.field)
        if kind is None:
            return
        steps = self.steps
        last = len(steps)
        found = []
        completed = False
        for p in partial:
            if steps[p[1]] == kind:
                p[1] += 1
                completed = completed or p[1] == last
        if completed:
            found = [p[0] for p in partial if p[1] == last]
            partial[:] = [p for p in partial if p[1] != last]
        if steps[0] == kind:
            if last == 1:
                found.append(now)
            else:
                partial.append([now, 1])
        for start in found:
            matches.emit({"start": start, "end": now})

    def on_timer(self, partial, now, matches):
        self._expire(partial, now)

    def next_timer(self, partial):
        if not partial:
            return None
        return min(p[0] for p in partial) + self.within


PatternMatcher = export_pattern(Sequence)
