"""The errors a plugin reports to the host, each with the contract's error code."""

__all__ = ["ConfigError", "InvalidInput", "PluginError", "UnsupportedState"]


class PluginError(Exception):
    """An error returned to the host as a value; ``code`` is the contract's error code.

    Raised from a per-event method (``handle``, ``add``, ``on_event``) it fails that event
    only: the host sends the event to the dead-letter sink with ``str(error)``. Any other
    exception does the same with code ``internal`` and the message ``"TypeName: message"``.
    """

    code = "internal"


class ConfigError(PluginError):
    """The configuration is missing a key or has a bad value (``invalid-config``)."""

    code = "invalid-config"


class InvalidInput(PluginError):
    """An input event cannot be handled: bad encoding, missing field, wrong type
    (``invalid-input``)."""

    code = "invalid-input"


class UnsupportedState(PluginError):
    """Held state (an accumulator or a pattern state) was written by an incompatible version
    of the plugin (``unsupported-state``)."""

    code = "unsupported-state"
