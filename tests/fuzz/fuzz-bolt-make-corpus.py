#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpora of fuzz-bolt-packstream and fuzz-bolt-chunker.

Run once from tests/fuzz (the files are checked in); stdlib only, its own
minimal PackStream encoder so the seeds do not depend on the code under test.
"""
import os
import struct

def p_int(v):
    if -16 <= v <= 127:
        return struct.pack(">b", v) if v < 0 else bytes([v])
    if -128 <= v <= 127:
        return b"\xc8" + struct.pack(">b", v)
    if -32768 <= v <= 32767:
        return b"\xc9" + struct.pack(">h", v)
    if -2**31 <= v < 2**31:
        return b"\xca" + struct.pack(">i", v)
    return b"\xcb" + struct.pack(">q", v)

def p_size(n, tiny, m8):
    if tiny is not None and n < 16:
        return bytes([tiny | n])
    if n < 256:
        return bytes([m8, n])
    if n < 65536:
        return bytes([m8 + 1]) + struct.pack(">H", n)
    return bytes([m8 + 2]) + struct.pack(">I", n)

def p(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        return p_int(v)
    if isinstance(v, float):
        return b"\xc1" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return p_size(len(v), None, 0xCC) + v
    if isinstance(v, str):
        b = v.encode()
        return p_size(len(b), 0x80, 0xD0) + b
    if isinstance(v, list):
        return p_size(len(v), 0x90, 0xD4) + b"".join(p(x) for x in v)
    if isinstance(v, dict):
        return p_size(len(v), 0xA0, 0xD8) + b"".join(p(k) + p(x) for k, x in v.items())
    if isinstance(v, S):
        return bytes([0xB0 | len(v.fields), v.tag]) + b"".join(p(x) for x in v.fields)
    raise TypeError(v)

class S:
    def __init__(self, tag, *fields):
        self.tag, self.fields = tag, list(fields)

def node(i, eid=True):
    f = [i, ["L%d" % i], {"name": "n%d" % i}]
    return S(0x4E, *(f + (["4:x:%d" % i] if eid else [])))

def unbound(i):
    return S(0x72, i, "T", {"w": 1}, "5:x:%d" % i)

values = {
    "ints": [0, 1, -1, -16, -17, 127, 128, -128, -129, 32767, 32768, -32769,
             2**31 - 1, 2**31, -2**31 - 1, 2**63 - 1, -2**63],
    "strings": ["", "a", "x" * 15, "x" * 16, "é" * 200, "x" * 300],
    "floats": [1.1, -0.0, float("inf"), float("nan"), 1e-300],
    "bytes": [b"", b"\x00\xff", b"z" * 300],
    "map": {"a": 1, "b": [1, {"c": None}], "a2": {"d": {"e": [None, True]}}, "dup": 1},
    "node5": node(1),
    "node4": node(2, eid=False),
    "rel": S(0x52, 7, 1, 2, "KNOWS", {"since": 2020}, "5:x:7", "4:x:1", "4:x:2"),
    "rel4": S(0x52, 7, 1, 2, "KNOWS", {}),
    "path": S(0x50, [node(42), node(69), node(1)], [unbound(1000), unbound(1001)], [1, 1, 1, 0, -2, 2]),
    "date": S(0x44, 19782),
    "time": S(0x54, 45296789012345, 3600),
    "localtime": S(0x74, 86399999999999),
    "datetime": S(0x49, 1709206496, 123456789, 3600),
    "datetimezoneid": S(0x69, 1719828000, 0, "Europe/Stockholm"),
    "legacy-datetime": S(0x46, 8100, 42, 3600),
    "legacy-zoneid": S(0x66, 8100, 42, "Europe/Paris"),
    "localdatetime": S(0x64, -1, 1),
    "duration": S(0x45, 14, 3, 3723, 500),
    "point2d": S(0x58, 7203, 1.5, -2.25),
    "point3d": S(0x59, 4979, 12.5, 55.75, 100.0),
    "record": [1, "two", None],
    "types": [node(1), S(0x44, 0), S(0x45, 0, 0, -1, 5), {"k": S(0x58, 1, 0.0, 0.0)}],
}

os.makedirs("fuzz-bolt-packstream-corpus", exist_ok=True)
for name, v in values.items():
    data = p(v)
    if name == "map":   # a duplicate key the encoder cannot express
        data = data[:1].replace(b"\xa4", b"\xa5") + data[1:] + p("dup") + p(2)
    with open(os.path.join("fuzz-bolt-packstream-corpus", name), "wb") as f:
        f.write(data)

def chunk(msg, size=65535):
    out = b""
    for i in range(0, len(msg), size):
        part = msg[i:i + size]
        out += struct.pack(">H", len(part)) + part
    return out + b"\x00\x00"

success = p(S(0x70, {"server": "Neo4j/5.26.0", "connection_id": "bolt-1", "hints": {"connection.recv_timeout_seconds": 120}}))
record = p(S(0x71, [1, "x", node(3)]))
streams = {
    "hello": b"\x00" + chunk(success),
    "records-noop": b"\x03" + chunk(p(S(0x70, {"fields": ["a", "b", "c"], "t_first": 1}))) + b"\x00\x00"
                    + chunk(record) + b"\x00\x00" + chunk(record) + chunk(p(S(0x70, {"has_more": True}))),
    "split-small-chunks": b"\x05" + chunk(record, 3) + chunk(p(S(0x7E))),
    "failure": b"\x01" + chunk(p(S(0x7F, {"code": "Neo.ClientError.Statement.SyntaxError", "message": "bad"}))),
    "big": b"\x10" + chunk(p(S(0x71, ["y" * 3000])), 1000),
}
os.makedirs("fuzz-bolt-chunker-corpus", exist_ok=True)
for name, data in streams.items():
    with open(os.path.join("fuzz-bolt-chunker-corpus", name), "wb") as f:
        f.write(data)

# Server transcripts for fuzz-bolt-connection: what a server answers to the
# target's fixed sequence (open, RUN+PULL 2 then PULL, BEGIN+RUN+PULL,
# COMMIT, ROUTE).
def msg(tag, *fields):
    return chunk(p(S(tag, *fields)))

def ok(meta=None):
    return msg(0x70, meta or {})

rt = {"rt": {"ttl": 300, "db": "neo4j", "servers": [
    {"addresses": ["a:7687"], "role": "ROUTE"},
    {"addresses": ["b:7687", "c:7687"], "role": "READ"},
    {"addresses": ["d:7687"], "role": "WRITE"}]}}
session = (ok({"fields": ["x"], "t_first": 1}) + msg(0x71, [1]) + msg(0x71, [node(5)])
           + ok({"has_more": True}) + msg(0x71, [S(0x44, 1)]) + ok({"bookmark": "FB:1", "db": "neo4j"})
           + ok({}) + ok({"fields": ["y"], "qid": 0}) + msg(0x71, [2]) + ok({})
           + ok({"bookmark": "FB:2"}) + ok(rt))
failing = (msg(0x7F, {"neo4j_code": "Neo.ClientError.Statement.SyntaxError", "message": "bad",
                      "gql_status": "42001"})
           + msg(0x7E) + ok({}) + ok({}) + msg(0x7F, {"code": "Neo.TransientError.X.Y", "message": "t"})
           + msg(0x7E) + msg(0x7E) + ok({}) + ok(rt))
hello = ok({"server": "Neo4j/5.26.0", "connection_id": "bolt-1", "hints": {"connection.recv_timeout_seconds": 30}})
transcripts = {
    "manifest-5.8": b"\x00\x00\x01\xff\x02\x00\x08\x08\x05\x00\x01\x04\x04\x00" + hello + ok() + session,
    "legacy-5.4": b"\x00\x00\x04\x05" + hello + ok() + session,
    "bolt-4.4": b"\x00\x00\x04\x04" + hello + session,
    "memgraph-5.2-noops": b"\x00\x00\x02\x05" + b"\x00\x00" + hello + b"\x00\x00" + ok() + session.replace(b"\x00\x00\x00", b"\x00\x00\x00\x00\x00", 3),
    "failures": b"\x00\x00\x08\x05" + hello + ok() + failing,
    "auth-failure": b"\x00\x00\x08\x05" + hello + msg(0x7F, {"code": "Neo.ClientError.Security.Unauthorized", "message": "no"}),
    "zero": b"\x00\x00\x00\x00",
    "manifest-varint": b"\x00\x00\x01\xff\x81\x00" + b"\x00\x00\x00\x06" * 129 + b"\xff\x82\x71",
}
os.makedirs("fuzz-bolt-connection-corpus", exist_ok=True)
for name, data in transcripts.items():
    with open(os.path.join("fuzz-bolt-connection-corpus", name), "wb") as f:
        f.write(data)
