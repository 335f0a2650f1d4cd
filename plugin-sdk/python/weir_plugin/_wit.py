"""What the three worlds share: turning exceptions into the contract's errors, and building
the plugin object from its configuration."""

from .config import Config
from .errors import ConfigError, PluginError
from .msgpack import DecodeError


def message(error: BaseException) -> str:
    """``"TypeName: message"`` for an unexpected exception, as the other SDKs report one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def to_error(types, error: BaseException):
    """The contract's ``error`` record for an exception."""
    if isinstance(error, PluginError):
        code, text = error.code, str(error)
    elif isinstance(error, DecodeError):
        code, text = "invalid-input", str(error)
    else:
        code, text = "internal", message(error)
    codes = {
        "invalid-config": types.ErrorCode.INVALID_CONFIG,
        "invalid-input": types.ErrorCode.INVALID_INPUT,
        "unsupported-state": types.ErrorCode.UNSUPPORTED_STATE,
    }
    return types.Error(code=codes.get(code, types.ErrorCode.INTERNAL), message=text)


def build(types, err, plugin_class, text: str):
    """Instantiates ``plugin_class`` with the parsed configuration; any failure is an
    ``invalid-config`` error returned to the host."""
    try:
        return plugin_class(Config.parse(text))
    except Exception as e:  # noqa: BLE001 - every failure is reported to the host
        if not isinstance(e, PluginError):
            e = ConfigError(message(e))
        raise err(to_error(types, e)) from None


def failure(types, index: int, error: BaseException):
    """One failed input event."""
    return types.Failure(index=index, error=to_error(types, error))
