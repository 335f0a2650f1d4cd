"""What the host offers a plugin besides its events: a log, counters and the wall clock.

These call into the host, so they work inside a built component only (not in a plain
Python interpreter, where they raise ``RuntimeError``).
"""

__all__ = ["counter_add", "log", "now_ms"]

_LEVELS = ("trace", "debug", "info", "warn", "error")


def _host():
    try:
        from wit_world.imports import host
    except ImportError:
        raise RuntimeError("the host is reachable only inside a built plugin") from None
    return host


def log(level: str, message: str, **fields) -> None:
    """Writes a record to the host's log, tagged with the plugin's name and version.

    ``level`` is one of "trace", "debug", "info", "warn", "error"; keyword arguments become
    fields shown beside the message (as text). The host rate-limits records, so logging per
    event is safe but not free::

        log("warn", "amount out of range", amount=value)
    """
    host = _host()
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
    host.log(host.Level[level.upper()], message, [(k, str(v)) for k, v in fields.items()])


def counter_add(name: str, delta: int = 1) -> None:
    """Adds ``delta`` (0 or more) to the plugin's counter ``name``, exported by the host as
    ``weir_plugin_counter_total{plugin, name}``."""
    _host().counter_add(name, delta)


def now_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch. Prefer event time
    (``event.time``) for anything that must replay identically."""
    return _host().now_ms()
