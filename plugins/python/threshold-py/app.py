"""Keeps events whose numeric field ``field`` (a name or dotted path) is greater than ``min``.

The Python twin of plugins/rust/threshold: the same configuration, the same decisions and
the same error messages. Config: ``{"field": "amount", "min": 50}``.
"""

from weir_plugin import ConfigError, Handler, InvalidInput, export_handler


def _number(config, key):
    value = config.get(key)
    if value is None:
        raise ConfigError(f'config key "{key}" is required (a number)')
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(f'config key "{key}" must be a number, not {value!r}')


class Threshold(Handler):
    def __init__(self, config):
        field = config.get("field")
        if not isinstance(field, str):
            raise ConfigError('config key "field" is required (a string)')
        self.path = field.split(".")
        self.min = _number(config, "min")

    def handle(self, event, out):
        value = event.value
        if not isinstance(value, dict):
            raise InvalidInput("payload is not a MessagePack map")
        for segment in self.path:
            if not isinstance(value, dict) or segment not in value:
                return
            value = value[segment]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) > self.min:
            out.keep()


EventHandler = export_handler(Threshold)
