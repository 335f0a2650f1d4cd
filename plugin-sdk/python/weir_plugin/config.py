"""The configuration a stage hands to a plugin: a JSON object with typed accessors whose
errors name the key and say what is expected (the same messages in every SDK)."""

import json
import re

from .errors import ConfigError

__all__ = ["Config"]

_REQUIRED = object()
# What Rust's `str::parse::<f64>` accepts; Python's `float` also takes "1_000" and non-ASCII
# digits, which would make the same configuration valid in one language and not another.
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.ASCII | re.IGNORECASE)


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _float_text(f: float) -> str:
    # As Rust prints a float: whole ones without ".0" and without an exponent.
    if f != f:
        return "NaN"
    if abs(f) == float("inf"):
        return "inf" if f > 0 else "-inf"
    return str(int(f)) if f == int(f) else repr(f)


class Config(dict):
    """A plugin's configuration: a ``dict`` of the stage's ``config`` table, plus accessors
    that check types and raise :class:`ConfigError` naming the key at fault.

    >>> config = Config.parse('{"field": "amount", "min": "50"}')
    >>> config.string("field"), config.number("min"), config.number("max", default=0.0)
    ('amount', 50.0, 0.0)
    """

    @classmethod
    def parse(cls, text: str) -> "Config":
        """Parses the JSON object the host passes to ``init`` (empty text is ``{}``)."""
        if not text.strip():
            return cls()
        try:
            parsed = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"configuration is not valid JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise ConfigError("configuration is not a JSON object")
        return cls(parsed)

    def string(self, key: str, default=_REQUIRED) -> str:
        """The string at ``key``; ``default`` when it is absent or null (required when no
        default is given)."""
        value = self.get(key)
        if value is None:
            return _missing(key, "a string", default)
        if not isinstance(value, str):
            raise ConfigError(f'config key "{key}" must be a string, not {_json(value)}')
        return value

    def number(self, key: str, default=_REQUIRED) -> float:
        """The number at ``key`` as a float. A string holding a number is accepted, since
        command lines pass text."""
        value = self.get(key)
        if value is None:
            return _missing(key, "a number", default)
        if isinstance(value, str):
            text = value.strip()
            if _NUMBER.fullmatch(text):
                return float(text)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f'config key "{key}" must be a number, not {_json(value)}')

    def whole(self, key: str, default=_REQUIRED) -> int:
        """A whole number of zero or more at ``key`` (``3``, ``3.0`` and ``"3"`` all read as
        3)."""
        if self.get(key) is None:
            return _missing(key, "a number", default)
        f = self.number(key)
        if 0 <= f <= 2.0**64 and f == int(f):
            return min(int(f), 2**64 - 1)
        raise ConfigError(
            f'config key "{key}" must be a whole number of zero or more, not {_float_text(f)}')


def _missing(key, what, default):
    if default is _REQUIRED:
        raise ConfigError(f'config key "{key}" is required ({what})')
    return default
