#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Self-test of the Bolt test server's PackStream codec and version-dependent
value encoding (golden bytes from the PackStream v1 / Bolt specifications)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boltserver as bs  # noqa: E402
from packstream import (PackStreamError, Structure, Unpacker, packb,  # noqa: E402
                        unpackb)

H = bytes.fromhex


class Encode(unittest.TestCase):
    def test_scalars(self):
        self.assertEqual(packb(None), H("C0"))
        self.assertEqual(packb(True), H("C3"))
        self.assertEqual(packb(False), H("C2"))
        self.assertEqual(packb(1.23), H("C1 3F F3 AE 14 7A E1 47 AE"))
        self.assertEqual(packb(-0.0), H("C1 80 00 00 00 00 00 00 00"))

    def test_integer_boundaries_use_minimal_markers(self):
        cases = [
            (-(2 ** 63), "CB 80 00 00 00 00 00 00 00"),
            (-2147483649, "CB FF FF FF FF 7F FF FF FF"),
            (-2147483648, "CA 80 00 00 00"),
            (-32769, "CA FF FF 7F FF"),
            (-32768, "C9 80 00"),
            (-129, "C9 FF 7F"),
            (-128, "C8 80"),
            (-17, "C8 EF"),
            (-16, "F0"),
            (-1, "FF"),
            (0, "00"),
            (1, "01"),
            (127, "7F"),
            (128, "C9 00 80"),
            (32767, "C9 7F FF"),
            (32768, "CA 00 00 80 00"),
            (2147483647, "CA 7F FF FF FF"),
            (2147483648, "CB 00 00 00 00 80 00 00 00"),
            (2 ** 63 - 1, "CB 7F FF FF FF FF FF FF FF"),
        ]
        for value, hexbytes in cases:
            with self.subTest(value=value):
                self.assertEqual(packb(value), H(hexbytes))
                self.assertEqual(unpackb(H(hexbytes)), value)
        with self.assertRaises(PackStreamError):
            packb(2 ** 63)
        with self.assertRaises(PackStreamError):
            packb(-(2 ** 63) - 1)

    def test_strings(self):
        self.assertEqual(packb(""), H("80"))
        self.assertEqual(packb("A"), H("81 41"))
        self.assertEqual(packb("Größenmaßstäbe"),
                         H("D0 12 47 72 C3 B6 C3 9F 65 6E 6D 61 C3 9F 73 74 C3 A4 62 65"))
        for n, head in [(15, "8F"), (16, "D0 10"), (255, "D0 FF"), (256, "D1 01 00"),
                        (65535, "D1 FF FF"), (65536, "D2 00 01 00 00")]:
            with self.subTest(n=n):
                enc = packb("a" * n)
                self.assertEqual(enc[:len(H(head))], H(head))
                self.assertEqual(len(enc), len(H(head)) + n)
                self.assertEqual(unpackb(enc), "a" * n)

    def test_bytes(self):
        self.assertEqual(packb(b""), H("CC 00"))
        self.assertEqual(packb(b"\x01\x02"), H("CC 02 01 02"))
        self.assertEqual(packb(b"x" * 256)[:3], H("CD 01 00"))
        self.assertEqual(packb(b"x" * 65536)[:5], H("CE 00 01 00 00"))
        self.assertEqual(unpackb(packb(b"x" * 65536)), b"x" * 65536)

    def test_lists_and_dicts(self):
        self.assertEqual(packb([]), H("90"))
        self.assertEqual(packb([1, 2, 3]), H("93 01 02 03"))
        self.assertEqual(packb(list(range(15)))[:1], H("9F"))
        self.assertEqual(packb(list(range(16)))[:2], H("D4 10"))
        self.assertEqual(packb([0] * 256)[:3], H("D5 01 00"))
        self.assertEqual(packb({}), H("A0"))
        self.assertEqual(packb({"one": "eins"}), H("A1 83 6F 6E 65 84 65 69 6E 73"))
        d16 = {"k%02d" % i: i for i in range(16)}
        self.assertEqual(packb(d16)[:2], H("D8 10"))
        self.assertEqual(unpackb(packb(d16)), d16)
        d15 = {"k%02d" % i: i for i in range(15)}
        self.assertEqual(packb(d15)[:1], H("AF"))
        with self.assertRaises(PackStreamError):
            packb({1: "non-string key"})

    def test_structures(self):
        self.assertEqual(packb(Structure(0x4E, [1, ["L"], {}])), H("B3 4E 01 91 81 4C A0"))
        self.assertEqual(packb(Structure(0x0F, [])), H("B0 0F"))
        with self.assertRaises(PackStreamError):
            packb(Structure(0x01, [0] * 16))
        with self.assertRaises(PackStreamError):
            packb(object())


class Decode(unittest.TestCase):
    def test_round_trip_nested(self):
        v = {"a": [1, -1, 2 ** 40, 1.5, None, True, "ü", b"\x00",
                   Structure(0x44, [19782]), {"x": [Structure(0x58, [7203, 1.0, 2.0])]}]}
        self.assertEqual(unpackb(packb(v)), v)

    def test_long_forms_are_accepted(self):
        # non-minimal encodings are valid input
        self.assertEqual(unpackb(H("C8 01")), 1)
        self.assertEqual(unpackb(H("CB 00 00 00 00 00 00 00 01")), 1)
        self.assertEqual(unpackb(H("D0 01 41")), "A")
        self.assertEqual(unpackb(H("D4 01 01")), [1])
        self.assertEqual(unpackb(H("D8 01 81 61 01")), {"a": 1})

    def test_duplicate_key_last_wins(self):
        self.assertEqual(unpackb(H("A2 81 61 01 81 61 02")), {"a": 2})

    def test_errors(self):
        bad = {
            "truncated int": "C9 01",
            "truncated string": "D0 05 41",
            "unknown marker": "C4",
            "reserved marker": "DF",
            "non-string key": "A1 01 01",
            "bad utf-8": "82 C3 28",
            "list larger than data": "D6 7F FF FF FF",
            "u32 size over 2^31-1": "D2 FF FF FF FF",
            "trailing bytes": "01 02",
            "empty": "",
            "struct without tag": "B1",
        }
        for name, hexbytes in bad.items():
            with self.subTest(name):
                with self.assertRaises(PackStreamError):
                    unpackb(H(hexbytes))

    def test_depth_limit(self):
        deep = H("91") * 100 + H("C0")
        with self.assertRaises(PackStreamError):
            unpackb(deep, max_depth=64)
        self.assertIsNotNone(unpackb(H("91") * 10 + H("C0")))

    def test_unpacker_streams_values(self):
        u = Unpacker(packb(1, "two", [3]))
        self.assertEqual([u.unpack(), u.unpack(), u.unpack()], [1, "two", [3]])
        self.assertEqual(u.remaining(), 0)


class Wire(unittest.TestCase):
    """Graph values are shaped by the negotiated protocol version."""

    def setUp(self):
        self.node = bs.GNode(1, ["A"], {"p": 1}, "4:x:1")
        self.rel = bs.GRel(7, 1, 2, "R", {}, "5:x:7", "4:x:1", "4:x:2")

    def test_node_and_relationship_fields(self):
        v5, v4 = bs.WireCtx(True, True), bs.WireCtx(False, False)
        self.assertEqual(bs.wire(self.node, v5), Structure(0x4E, [1, ["A"], {"p": 1}, "4:x:1"]))
        self.assertEqual(bs.wire(self.node, v4), Structure(0x4E, [1, ["A"], {"p": 1}]))
        self.assertEqual(len(bs.wire(self.rel, v5).fields), 8)
        self.assertEqual(len(bs.wire(self.rel, v4).fields), 5)

    def test_path_indices(self):
        n2 = bs.GNode(2, [], {}, "4:x:2")
        back = bs.GRel(8, 2, 1, "R", {}, "5:x:8", "4:x:2", "4:x:1")
        p = bs.make_path([self.node, n2, self.node], [self.rel, back])
        self.assertEqual([n.id for n in p.nodes], [1, 2])
        self.assertEqual([r.id for r in p.rels], [7, 8])
        self.assertEqual(p.indices, [1, 1, 2, 0])
        p = bs.make_path([n2, self.node], [self.rel])   # traversed backwards
        self.assertEqual(p.indices, [-1, 1])
        w = bs.wire(p, bs.WireCtx(True, True))
        self.assertEqual(w.tag, 0x50)
        self.assertEqual(w.fields[1][0], Structure(0x72, [7, "R", {}, "5:x:7"]))

    def test_datetime_utc_and_legacy(self):
        dt = bs.GDateTime(1709206496, 5, offset=3600)
        self.assertEqual(bs.wire(dt, bs.WireCtx(True, True)),
                         Structure(0x49, [1709206496, 5, 3600]))
        self.assertEqual(bs.wire(dt, bs.WireCtx(False, False)),
                         Structure(0x46, [1709206496 + 3600, 5, 3600]))
        z = bs.GDateTime(1719828000, 0, zone="Europe/Stockholm")  # 2024-07-01T10:00Z
        self.assertEqual(bs.wire(z, bs.WireCtx(True, True)),
                         Structure(0x69, [1719828000, 0, "Europe/Stockholm"]))
        self.assertEqual(bs.wire(z, bs.WireCtx(False, False)),
                         Structure(0x66, [1719828000 + 7200, 0, "Europe/Stockholm"]))

    def test_tagged_json(self):
        v = bs.from_json({"$date": "2024-02-29"}, {})
        self.assertEqual(v, Structure(0x44, [19782]))
        v = bs.from_json({"$time": "12:00:00.5+01:00"}, {})
        self.assertEqual(v, Structure(0x54, [43200 * 10 ** 9 + 500000000, 3600]))
        v = bs.from_json({"$localdatetime": "1970-01-02T00:00:01.000000001"}, {})
        self.assertEqual(v, Structure(0x64, [86401, 1]))
        v = bs.from_json({"$datetime": "2024-07-01T12:00:00[Europe/Stockholm]"}, {})
        self.assertEqual((v.utc_seconds, v.zone), (1719828000, "Europe/Stockholm"))
        self.assertEqual(bs.from_json([{"$param": "x"}, {"$bytes": "00ff"}], {"x": 5}),
                         [5, b"\x00\xff"])
        self.assertEqual(bs.from_json({"$struct": {"tag": "X", "fields": [1]}}, {}),
                         Structure(0x58, [1]))

    def test_handshake_helpers(self):
        self.assertEqual(bs._varint(1851775), H("FF 82 71"))
        self.assertEqual(bs._varint(0), H("00"))
        self.assertEqual(bs._varint(127), H("7F"))
        self.assertEqual(bs._version_ranges(bs.NEO4J_VERSIONS),
                         [(5, 8, 2), (5, 4, 4), (4, 4, 0)])
        self.assertEqual(bs._version_ranges(bs.MEMGRAPH_VERSIONS),
                         [(5, 2, 0), (4, 3, 0), (4, 1, 1)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
