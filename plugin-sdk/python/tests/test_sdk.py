"""Tests of the parts of weir_plugin that run without componentize-py's bindings."""

import random
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weir_plugin import Config, ConfigError, msgpack  # noqa: E402
from weir_plugin.event import Event  # noqa: E402


def column(values):
    data = b"".join(values)
    ends, end = [], 0
    for value in values:
        end += len(value)
        ends.append(end)
    return data, ends


class Batch:
    """The parts of the contract's batch record an Event reads."""

    def __init__(self, payloads, times=None):
        data, ends = column(payloads)
        self.payloads = type("Column", (), {"data": data, "ends": ends})()
        self.times = times or [0] * len(payloads)


def outcome(f, *args):
    try:
        return "ok", repr(f(*args))
    except msgpack.DecodeError as e:
        return "error", str(e)


class Walkers(unittest.TestCase):
    sample = msgpack.packb({"id": 7, "tags": ["a", {"x": 1}], "user": {"name": "ann",
                            "score": -3.5}, "big": 300, "k" * 40: -1, "f": 1.0})

    def test_lookups(self):
        b = self.sample
        self.assertEqual(msgpack.lookup(b, "id"), 7)
        self.assertEqual(msgpack.lookup(b, "user.name"), "ann")
        self.assertEqual(msgpack.lookup(b, "tags"), ["a", {"x": 1}])
        self.assertIsNone(msgpack.lookup(b, "missing"))
        self.assertIsNone(msgpack.lookup(b, "id.deeper"))
        n = len(b)
        self.assertEqual(msgpack.number_at(b, 0, n, "user.score"), -3.5)
        self.assertEqual(msgpack.number_at(b, 0, n, "big"), 300.0)
        self.assertEqual(msgpack.number_at(b, 0, n, "k" * 40), -1.0)
        self.assertIsNone(msgpack.number_at(b, 0, n, "user.name"))
        self.assertEqual(msgpack.string_at(b, 0, n, "user.name"), "ann")
        self.assertEqual(msgpack.items_at(b, 0, n, "tags"), [b"\xa1a", b"\x81\xa1x\x01"])
        self.assertEqual(msgpack.skip(b), n)

    def test_errors(self):
        with self.assertRaisesRegex(msgpack.DecodeError, "^payload is not a MessagePack map$"):
            msgpack.lookup(msgpack.packb([1]), "a")
        with self.assertRaisesRegex(msgpack.DecodeError, "^payload is truncated MessagePack$"):
            msgpack.lookup(self.sample[:-3], "f")
        with self.assertRaisesRegex(msgpack.DecodeError, r"reserved byte 0xc1"):
            msgpack.lookup(b"\xc1", "a")

    def test_fast_paths_agree_with_the_careful_walk(self):
        # Random maps, cut short, mutated and surrounded by other bytes: the fast paths must
        # give what the careful walk gives, errors included.
        rng = random.Random(1)
        scalars = [0, 1, -1, -33, 127, 128, 300, 70000, 2**40, -2**40, 1.5, -0.0, True, None,
                   "x", "s" * 40, b"\x01", [1, "a"], {"b": 2, "amount": 3}]
        keys = ["amount", "a", "b", "long_" + "k" * 30, ""]
        paths = ["amount", "a.b", "b", "long_" + "k" * 30, "", "a.amount"]
        for _ in range(3000):
            value = {rng.choice(keys): rng.choice(scalars) for _ in range(rng.randrange(6))}
            if rng.random() < 0.3:
                value["a"] = {rng.choice(keys): rng.choice(scalars)}
            payload = msgpack.packb(value)
            if rng.random() < 0.3 and payload:
                payload = payload[:rng.randrange(len(payload))]
            if rng.random() < 0.3 and payload:
                mutated = bytearray(payload)
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                payload = bytes(mutated)
            before = bytes(rng.randrange(256) for _ in range(rng.randrange(3)))
            after = bytes(rng.choice(b"\x81\xa6\xcb\x00\xc1") for _ in range(rng.randrange(9)))
            data = before + payload + after
            start, end = len(before), len(before) + len(payload)
            event = Event(type("B", (), {"payloads": type("C", (), {
                "data": data, "ends": [start, end, len(data)]})()})(), 1)
            for path in paths:
                segments = msgpack.compile_path(path)
                careful = outcome(msgpack._number, data, start, end, segments)
                self.assertEqual(outcome(msgpack.number_at, data, start, end, path), careful)
                self.assertEqual(outcome(event.number, path), careful)
                self.assertEqual(outcome(msgpack.find, data, start, end, path),
                                 outcome(msgpack._find, data, start, end, segments))


class Codec(unittest.TestCase):
    def test_encodings_match_rmp_serde(self):
        self.assertEqual(msgpack.packb(1.0).hex(), "cb3ff0000000000000")
        self.assertEqual(msgpack.packb(None), b"\xc0")
        for value, encoded in ((0, "00"), (127, "7f"), (128, "cc80"), (-1, "ff"),
                               (-33, "d0df"), (65535, "cdffff"), (65536, "ce00010000"),
                               (2**63, "cf8000000000000000")):
            self.assertEqual(msgpack.packb(value).hex(), encoded)
        self.assertEqual(list(msgpack.unpackb(msgpack.packb({"b": 1, "a": 2}))), ["b", "a"])

    def test_round_trip(self):
        value = {"a": [1, -2, 3.5, "x" * 300, b"\x00" * 70000, None, True], "b": {}}
        self.assertEqual(msgpack.unpackb(msgpack.packb(value)), value)


class Events(unittest.TestCase):
    def test_event_moves_along_the_batch(self):
        batch = Batch([msgpack.packb({"n": i, "s": str(i)}) for i in range(3)], [10, 20, 30])
        event = Event(batch)
        seen = []
        for i in range(3):
            event.index = i
            seen.append((event.number("n"), event.string("s"), event.value["n"], event.time))
        self.assertEqual(seen, [(0.0, "0", 0, 10), (1.0, "1", 1, 20), (2.0, "2", 2, 30)])


class Configs(unittest.TestCase):
    def test_accessors_and_messages(self):
        config = Config.parse('{"field": "amount", "min": "50", "bad": [1], "w": 2.5}')
        self.assertEqual(config.string("field"), "amount")
        self.assertEqual(config.number("min"), 50.0)
        self.assertEqual(config.number("max", default=1.0), 1.0)
        cases = (
            (lambda: config.number("max"), 'config key "max" is required (a number)'),
            (lambda: config.string("bad"), 'config key "bad" must be a string, not [1]'),
            (lambda: config.number("field"), 'config key "field" must be a number, not "amount"'),
            (lambda: config.whole("w"),
             'config key "w" must be a whole number of zero or more, not 2.5'),
            (lambda: Config.parse("[1]"), "configuration is not a JSON object"),
        )
        for call, message in cases:
            with self.assertRaises(ConfigError) as raised:
                call()
            self.assertEqual(str(raised.exception), message)
        self.assertEqual(Config.parse("").whole("w", default=7), 7)


if __name__ == "__main__":
    unittest.main()
