"""The ``pattern`` world: custom CEP matchers over keyed streams, with host-held state."""

from .errors import PluginError, UnsupportedState
from .event import Event
from .msgpack import packb, unpackb
from .output import INHERIT, Emitted
from . import _wit

__all__ = ["Matches", "Pattern", "export_pattern"]


class Matches:
    """Where a pattern emits its matches. A match is stamped with the time of the event (or
    timer) being applied unless given one, and goes out under the key of the state."""

    __slots__ = ("_emitted", "_state", "_time")

    def __init__(self, emitted: Emitted):
        self._emitted = emitted
        self._state = 0
        self._time = 0

    def emit(self, value, key=INHERIT, time=None, headers=None) -> None:
        """Emits a match whose payload is ``value`` encoded as MessagePack.

        ``key`` (str or bytes; None for no key), ``time`` (ms) and ``headers`` (a dict or
        ``(name, value)`` pairs) override the defaults. In ``on_timer`` the plugin does not
        know the state's key: there, once one match of a call sets a key, the others that
        set none go out without one."""
        self.emit_bytes(packb(value), key, time, headers)

    def emit_bytes(self, payload: bytes, key=INHERIT, time=None, headers=None) -> None:
        """Emits a match with an already encoded payload."""
        self._emitted.push(self._state, payload, key, self._time if time is None else time,
                           headers)


class Pattern:
    """Base class of a matcher over the events of one key at a time.

    The host keeps one state per key, as bytes: the SDK decodes it with :meth:`load` and
    encodes it with :meth:`dump`, MessagePack by default, so a state is any value
    :func:`~weir_plugin.msgpack.packb` encodes. ``on_event`` and ``on_timer`` either update
    the state in place and return None, or return the new state.

    The host feeds each key's events in event-time order and calls ``on_timer`` once event
    time reaches what :meth:`next_timer` asked for: that is how a partial match expires.
    """

    def __init__(self, config: dict):
        self.config = config

    def create(self):
        """The state of a key that has seen nothing; it may depend on the configuration only."""
        raise NotImplementedError

    def on_event(self, state, event: Event, matches: Matches):
        """Applies one event. Raising fails this event only (the host dead-letters it);
        changes already made to the state, and matches already emitted, stay."""
        raise NotImplementedError

    def on_timer(self, state, now: int, matches: Matches):
        """Event time reached ``now``, at or past :meth:`next_timer`. The default does
        nothing. Raising fails the whole call."""
        return None

    def next_timer(self, state):
        """When (ms of event time, an int) this state next wants :meth:`on_timer`; None for
        never, the default."""
        return None

    def dump(self, state) -> bytes:
        """Encodes a state for the host to keep."""
        return packb(state)

    def load(self, data: bytes):
        """Decodes a state written by :meth:`dump` (possibly of an earlier version)."""
        return unpackb(data)


def export_pattern(pattern_class):
    """Returns the class componentize-py exports for the ``pattern`` world; assign it to
    ``PatternMatcher`` in the app module::

        PatternMatcher = export_pattern(MyPattern)
    """
    from componentize_py_types import Err
    from wit_world import exports
    from wit_world.exports import pattern_matcher
    from wit_world.imports import types

    slot = [None]
    progress = pattern_matcher.Progress

    def plugin():
        if slot[0] is None:
            raise Err(_wit.to_error(types, PluginError("called before init")))
        return slot[0]

    def fail(e):
        return Err(_wit.to_error(types, e))

    def load_all(pattern, col):
        data = col.data
        start = 0
        states = []
        try:
            for end in col.ends:
                states.append(pattern.load(data[start:end]))
                start = end
        except Exception as e:  # noqa: BLE001 - reported to the host
            raise fail(UnsupportedState(f"pattern state does not decode: {e}")) from None
        return states

    def inherited_time(source):
        return 0

    def no_key(source):
        return None

    def no_headers(source):
        return []

    def finish(pattern, states, emitted, failures, key_of=no_key):
        data = bytearray()
        ends = []
        timers = []
        try:
            for state in states:
                data += pattern.dump(state)
                ends.append(len(data))
                timer = pattern.next_timer(state)
                timers.append(None if timer is None else int(timer))
        except Exception as e:  # noqa: BLE001 - reported to the host
            raise fail(e) from None
        return progress(
            states=types.Column(data=bytes(data), ends=ends),
            timers=timers,
            matches=emitted.finish(types, key_of, inherited_time, no_headers),
            failures=failures,
        )

    class PatternMatcher(exports.PatternMatcher):
        def init(self, config: str) -> None:
            slot[0] = _wit.build(types, Err, pattern_class, config)

        def create(self) -> bytes:
            pattern = plugin()
            try:
                return pattern.dump(pattern.create())
            except Exception as e:  # noqa: BLE001 - reported to the host
                raise fail(e) from None

        def process(self, states, events, targets):
            pattern = plugin()
            current = load_all(pattern, states)
            count = len(current)
            targets = targets[:len(events.payloads.ends)]
            if targets and max(targets) >= count:
                t = next(t for t in targets if t >= count)
                raise fail(PluginError(f"event targets state {t} of {count}"))
            times = events.times
            if len(times) < len(targets):
                times = list(times) + [0] * (len(targets) - len(times))
            emitted = Emitted()
            matches = Matches(emitted)
            event = Event(events)
            on_event = pattern.on_event
            failures = []
            # Matches go out in state order: visit the events grouped by state (a stable sort
            # keeps each state's events in their order), switching state only between groups.
            s = -1
            state = None
            first = {}
            for i in sorted(range(len(targets)), key=targets.__getitem__):
                t = targets[i]
                if t != s:
                    if s >= 0:
                        current[s] = state
                    s = t
                    state = current[t]
                    matches._state = t
                    first[t] = i
                event.index = i
                matches._time = times[i]
                try:
                    new = on_event(state, event, matches)
                except Exception as e:  # noqa: BLE001 - a failure of this event only
                    failures.append(_wit.failure(types, i, e))
                    continue
                if new is not None:
                    state = new
            if s >= 0:
                current[s] = state

            def key_of(state):
                # A match that sets no key, beside one that does, keeps its state's key:
                # the key of the events applied to that state.
                view = Event(events, first[state])
                return view.key

            return finish(pattern, current, emitted, failures, key_of)

        def on_timer(self, states, now):
            pattern = plugin()
            current = load_all(pattern, states)
            emitted = Emitted()
            matches = Matches(emitted)
            matches._time = now
            on_timer = pattern.on_timer
            for s, state in enumerate(current):
                matches._state = s
                try:
                    new = on_timer(state, now, matches)
                except Exception as e:  # noqa: BLE001 - fails the call
                    raise fail(e) from None
                if new is not None:
                    current[s] = new
            return finish(pattern, current, emitted, [])

    return PatternMatcher
