#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Raw-wire checks of boltserver.py: exact handshake bytes, chunking, NOOPs,
the server state machine (FAILED/IGNORED/RESET jump-ahead, protocol
violations), PULL/DISCARD batching with qid, ROUTE shapes, failure shapes per
version, scripts and the JSON log.  These are the behaviours the C client relies
on; test-neo4j-driver.mjs checks the same server against the official driver."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from packstream import Structure, Unpacker, packb  # noqa: E402

SERVER = os.environ.get("BOLT_SERVER", os.path.join(HERE, "boltserver.py"))
H = bytes.fromhex
HELLO, GOODBYE, RESET, RUN, BEGIN, COMMIT, ROLLBACK = 0x01, 0x02, 0x0F, 0x10, 0x11, 0x12, 0x13
DISCARD, PULL, TELEMETRY, ROUTE, LOGON, LOGOFF = 0x2F, 0x3F, 0x54, 0x66, 0x6A, 0x6B
SUCCESS, RECORD, IGNORED, FAILURE = 0x70, 0x71, 0x7E, 0x7F
AGENT = {"user_agent": "raw-test/1.0", "bolt_agent": {"product": "raw-test/1.0"}}


class Server:
    def __init__(self, *args):
        self.dir = tempfile.TemporaryDirectory(prefix="boltserver-test-")
        self.log = os.path.join(self.dir.name, "log.jsonl")
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", "--log", self.log]
                                     + list(args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("LISTENING "):
            raise RuntimeError("bad first line %r" % line)
        self.port = int(line.split()[1])

    def entries(self):
        with open(self.log, encoding="utf-8") as f:
            return [json.loads(x) for x in f if x.strip()]

    def stop(self):
        self.proc.stdin.close()          # stdin EOF stops the server
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.proc.stdout.close()
        self.dir.cleanup()


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.chunk_sizes = []
        self.noops = 0

    def raw(self, data):
        self.sock.sendall(data)

    def read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def closed(self):
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, socket.timeout):
            return False

    def handshake(self, *slots):
        slots = list(slots) + ["00000000"] * (4 - len(slots))
        self.raw(H("6060B017") + b"".join(H(s) for s in slots))
        return self.read(4)

    def send(self, tag, *fields, chunk=None, noop_before=False):
        body = packb(Structure(tag, list(fields)))
        out = b"\x00\x00" if noop_before else b""
        size = chunk or 65535
        for i in range(0, len(body), size):
            part = body[i:i + size]
            out += len(part).to_bytes(2, "big") + part
        self.raw(out + b"\x00\x00")

    def recv(self):
        data = b""
        while True:
            n = int.from_bytes(self.read(2), "big")
            if n == 0:
                if data:
                    break
                self.noops += 1
                continue
            self.chunk_sizes.append(n)
            data += self.read(n)
        u = Unpacker(data)
        m = u.unpack()
        assert u.remaining() == 0
        return m.tag, m.fields

    def expect(self, tag):
        t, f = self.recv()
        if t != tag:
            raise AssertionError("expected 0x%02X, got 0x%02X %r" % (tag, t, f))
        return f[0] if f else None

    def hello(self, version=(5, 8), auth=None):
        auth = auth or {"scheme": "basic", "principal": "neo4j", "credentials": "pw"}
        if version < (5, 1):
            self.send(HELLO, {**AGENT, **auth})
            return self.expect(SUCCESS)
        self.send(HELLO, dict(AGENT))
        meta = self.expect(SUCCESS)
        self.send(LOGON, auth)
        self.expect(SUCCESS)
        return meta

    def close(self):
        self.sock.close()


def connect(port, version="00000805"):
    c = Client(port)
    reply = c.handshake(version)
    assert reply == H(version), reply.hex()
    return c


class BoltServerTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--databases", "other")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def client(self, version="00000805", ver=(5, 8)):
        c = connect(self.srv.port, version)
        self.addCleanup(c.close)
        c.hello(ver)
        return c

    # -- handshake -----------------------------------------------------------

    def test_manifest_v1_exchange(self):
        c = Client(self.srv.port)
        self.addCleanup(c.close)
        c.raw(H("6060B017 000001FF 00080805 00020404 00000000"))
        expected = H("000001FF 03 00020805 00040405 00000404 00")
        self.assertEqual(c.read(len(expected)), expected)
        # choose 5.7, no capabilities, and pipeline HELLO right behind it
        c.raw(H("00000705 00"))
        c.send(HELLO, dict(AGENT))
        meta = c.expect(SUCCESS)
        self.assertEqual(meta["protocol_version"], "5.7")
        self.assertEqual(meta["connection_id"][:5], "bolt-")
        self.assertEqual(meta["hints"], {})

    def test_version_ranges_and_no_match(self):
        c = Client(self.srv.port)
        self.addCleanup(c.close)
        self.assertEqual(c.handshake("00080805"), H("00000805"))
        c2 = Client(self.srv.port)
        self.addCleanup(c2.close)
        self.assertEqual(c2.handshake("00000104", "00020404"), H("00000404"))
        c3 = Client(self.srv.port)
        self.addCleanup(c3.close)
        self.assertEqual(c3.handshake("00000003", "00000002"), H("00000000"))
        self.assertTrue(c3.closed())
        c4 = Client(self.srv.port)
        self.addCleanup(c4.close)
        self.assertEqual(c4.handshake("00000505"), H("00000000"), "5.5 is never served")

    def test_bad_magic_closes(self):
        c = Client(self.srv.port)
        self.addCleanup(c.close)
        c.raw(b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(c.closed())

    # -- chunking --------------------------------------------------------------

    def test_client_messages_split_in_chunks_and_noops(self):
        c = self.client()
        c.send(RUN, "RETURN $s AS s", {"s": "z" * 300}, {}, chunk=1, noop_before=True)
        c.raw(b"\x00\x00\x00\x00")
        c.send(PULL, {"n": -1}, chunk=3)
        self.assertEqual(c.expect(SUCCESS)["fields"], ["s"])
        self.assertEqual(c.expect(RECORD), ["z" * 300])
        self.assertEqual(c.expect(SUCCESS)["type"], "r")

    def test_large_message_is_split_at_65535(self):
        c = self.client()
        big = "q" * 200000
        c.send(RUN, "RETURN $s AS s", {"s": big}, {})
        c.send(PULL, {"n": -1})
        c.expect(SUCCESS)
        c.chunk_sizes.clear()
        self.assertEqual(c.expect(RECORD), [big])
        self.assertEqual(c.chunk_sizes[:3], [65535, 65535, 65535])
        self.assertEqual(sum(c.chunk_sizes), len(packb(Structure(RECORD, [[big]]))))

    # -- state machine -----------------------------------------------------------

    def test_failure_ignored_reset(self):
        c = self.client()
        c.send(RUN, "NOT CYPHER", {}, {})
        c.send(PULL, {"n": 1000})
        c.send(RUN, "RETURN 1 AS x", {}, {})
        c.send(RESET)
        c.send(RUN, "RETURN 2 AS x", {}, {})
        c.send(PULL, {"n": 1000})
        f = c.expect(FAILURE)
        self.assertEqual(f["neo4j_code"], "Neo.ClientError.Statement.SyntaxError")
        self.assertEqual(f["gql_status"], "42001")
        self.assertEqual(f["diagnostic_record"]["_classification"], "CLIENT_ERROR")
        self.assertNotIn("code", f)
        c.expect(IGNORED)
        c.expect(IGNORED)
        c.expect(SUCCESS)
        c.expect(SUCCESS)
        self.assertEqual(c.expect(RECORD), [2])
        c.expect(SUCCESS)

    def test_reset_jumps_ahead_of_a_sleeping_query(self):
        c = self.client()
        t0 = time.monotonic()
        c.send(RUN, "CALL test.sleep(5000)", {}, {})
        c.send(PULL, {"n": 1000})
        time.sleep(0.2)
        c.send(RESET)
        c.expect(IGNORED)
        c.expect(IGNORED)
        c.expect(SUCCESS)
        self.assertLess(time.monotonic() - t0, 3.0)
        c.send(RUN, "RETURN 1 AS x", {}, {})
        c.expect(SUCCESS)

    def test_protocol_violation_is_fatal(self):
        c = self.client()
        c.send(PULL, {"n": 10})
        f = c.expect(FAILURE)
        self.assertEqual(f["neo4j_code"], "Neo.ClientError.Request.Invalid")
        self.assertIn("READY", f["message"])
        self.assertTrue(c.closed())

    def test_undecodable_message_is_fatal(self):
        c = self.client()
        c.raw(H("0002 C4 00 0000"))
        self.assertEqual(c.expect(FAILURE)["neo4j_code"],
                         "Neo.ClientError.Request.InvalidFormat")
        self.assertTrue(c.closed())

    def test_hello_requires_bolt_agent_from_5_3(self):
        c = connect(self.srv.port, "00000305")
        self.addCleanup(c.close)
        c.send(HELLO, {"user_agent": "x/1"})
        self.assertEqual(c.expect(FAILURE)["code"], "Neo.ClientError.Request.Invalid")
        self.assertTrue(c.closed())

    def test_logon_logoff(self):
        c = connect(self.srv.port, "00000105")
        self.addCleanup(c.close)
        c.send(HELLO, {"user_agent": "x/1"})
        c.expect(SUCCESS)
        c.send(RUN, "RETURN 1", {}, {})          # not authenticated yet
        c.expect(FAILURE)
        self.assertTrue(c.closed())
        c = connect(self.srv.port, "00000105")
        self.addCleanup(c.close)
        c.hello((5, 1))
        c.send(LOGOFF)
        c.expect(SUCCESS)
        c.send(LOGON, {"scheme": "none"})
        c.expect(SUCCESS)
        c.send(RUN, "RETURN 1 AS x", {}, {})
        self.assertEqual(c.expect(SUCCESS)["fields"], ["x"])

    def test_telemetry_only_from_5_4(self):
        c = self.client("00000405", (5, 4))
        c.send(TELEMETRY, 2)
        c.expect(SUCCESS)
        c = self.client("00000305", (5, 3))
        c.send(TELEMETRY, 2)
        c.expect(FAILURE)
        self.assertTrue(c.closed())

    # -- results -------------------------------------------------------------------

    def test_pull_batches_and_has_more(self):
        c = self.client()
        c.send(RUN, "UNWIND range(1, 5) AS i RETURN i", {}, {"db": "neo4j", "mode": "r"})
        meta = c.expect(SUCCESS)
        self.assertEqual(meta["fields"], ["i"])
        self.assertNotIn("qid", meta)
        c.send(PULL, {"n": 2})
        self.assertEqual([c.expect(RECORD), c.expect(RECORD)], [[1], [2]])
        self.assertEqual(c.expect(SUCCESS), {"has_more": True})
        c.send(DISCARD, {"n": 2})
        self.assertEqual(c.expect(SUCCESS), {"has_more": True})
        c.send(PULL, {"n": 2})
        self.assertEqual(c.expect(RECORD), [5])
        done = c.expect(SUCCESS)
        self.assertEqual(done["type"], "r")
        self.assertEqual(done["db"], "neo4j")
        self.assertTrue(done["bookmark"].startswith("FB:kcwQ"))
        self.assertNotIn("has_more", done)

    def test_explicit_tx_qids_and_bookmark(self):
        c = self.client()
        c.send(BEGIN, {"db": "other", "tx_metadata": {"app": "t"}, "tx_timeout": 5000})
        self.assertEqual(c.expect(SUCCESS), {"db": "other"})
        c.send(RUN, "UNWIND [1, 2] AS x RETURN x", {}, {})
        self.assertEqual(c.expect(SUCCESS)["qid"], 0)
        c.send(RUN, "CREATE (n:Q {k: 'v'}) RETURN n.k AS k, id(n) AS id", {}, {})
        self.assertEqual(c.expect(SUCCESS)["qid"], 1)
        c.send(PULL, {"n": -1, "qid": 0})
        self.assertEqual([c.expect(RECORD), c.expect(RECORD)], [[1], [2]])
        self.assertNotIn("bookmark", c.expect(SUCCESS))
        c.send(PULL, {"n": -1, "qid": -1})
        self.assertEqual(c.expect(RECORD)[0], "v")
        summary = c.expect(SUCCESS)
        self.assertEqual(summary["type"], "rw")
        self.assertEqual(summary["stats"], {"nodes-created": 1, "properties-set": 1,
                                            "labels-added": 1})
        c.send(COMMIT)
        bm = c.expect(SUCCESS)["bookmark"]
        c.send(RUN, "MATCH (n:Q) RETURN count(*) AS c", {}, {"db": "other", "bookmarks": [bm]})
        c.expect(SUCCESS)
        c.send(PULL, {"n": -1})
        self.assertEqual(c.expect(RECORD), [1])
        self.assertEqual(c.expect(SUCCESS)["bookmark"], bm, "reads do not advance it")

    def test_routing_table(self):
        c = self.client()
        c.send(ROUTE, {"address": "x:1"}, [], {"db": None})
        rt = c.expect(SUCCESS)["rt"]
        self.assertEqual(rt["db"], "neo4j")
        self.assertEqual(sorted(s["role"] for s in rt["servers"]), ["READ", "ROUTE", "WRITE"])
        self.assertEqual(rt["servers"][0]["addresses"], ["127.0.0.1:%d" % self.srv.port])
        c.send(ROUTE, {}, [], {"db": "missing"})
        self.assertEqual(c.expect(FAILURE)["neo4j_code"],
                         "Neo.ClientError.Database.DatabaseNotFound")

    def test_graph_types_v44_vs_v5(self):
        c4 = self.client("00000404", (4, 4))
        c4.send(RUN, "CALL test.types()", {}, {})
        fields = c4.expect(SUCCESS)["fields"]
        c4.send(PULL, {"n": -1})
        row = dict(zip(fields, c4.expect(RECORD)))
        self.assertEqual(len(row["node"].fields), 3)
        self.assertEqual(len(row["relationship"].fields), 5)
        self.assertEqual(row["datetime"].tag, 0x46)
        self.assertEqual(row["datetimezoneid"].tag, 0x66)
        c5 = self.client()
        c5.send(RUN, "CALL test.types()", {}, {})
        c5.expect(SUCCESS)
        c5.send(PULL, {"n": -1})
        row = dict(zip(fields, c5.expect(RECORD)))
        self.assertEqual(len(row["node"].fields), 4)
        self.assertEqual(len(row["relationship"].fields), 8)
        self.assertEqual(row["datetime"].tag, 0x49)
        self.assertEqual(row["datetimezoneid"].tag, 0x69)
        self.assertEqual(row["path"].fields[2], [1, 1])

    def test_failure_shape_before_5_7(self):
        c = self.client("00000605", (5, 6))
        c.send(RUN, "CALL test.fail('Neo.DatabaseError.General.UnknownError', 'boom')", {}, {})
        self.assertEqual(c.expect(FAILURE), {"code": "Neo.DatabaseError.General.UnknownError",
                                             "message": "boom"})

    def test_log_records_messages(self):
        c = self.client()
        c.send(RUN, "RETURN $p AS p", {"p": Structure(0x44, [1])}, {"bookmarks": ["FB:x:1"]})
        c.expect(SUCCESS)
        c.send(DISCARD, {"n": -1})
        c.expect(SUCCESS)
        c.send(GOODBYE)
        self.assertTrue(c.closed())
        log = self.srv.entries()
        run = [e for e in log if e.get("msg") == "RUN" and e["fields"][0] == "RETURN $p AS p"][-1]
        self.assertEqual(run["fields"][1]["p"], {"$struct": "Date", "tag": "0x44", "fields": [1]})
        self.assertEqual(run["fields"][2]["bookmarks"], ["FB:x:1"])
        conn = run["conn"]
        deadline = time.monotonic() + 10
        while True:   # the server logs "close" after the socket is gone
            mine = [e for e in self.srv.entries() if e.get("conn") == conn]
            if mine[-1].get("event") == "close" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual([e.get("msg") for e in mine if e.get("dir") == "in"][-2:],
                         ["DISCARD", "GOODBYE"])
        self.assertEqual(mine[-1]["event"], "close")
        self.assertFalse(any("credentials" in e.get("fields", [{}])[0]
                             and e["fields"][0]["credentials"] != "******"
                             for e in mine if e.get("msg") in ("HELLO", "LOGON")))


class ModeTests(unittest.TestCase):
    def start(self, *args):
        s = Server(*args)
        self.addCleanup(s.stop)
        return s

    def query(self, c, q, params=None, extra=None):
        c.send(RUN, q, params or {}, extra or {})
        fields = c.expect(SUCCESS)["fields"]
        c.send(PULL, {"n": -1})
        rows = []
        while True:
            t, f = c.recv()
            if t == RECORD:
                rows.append(dict(zip(fields, f[0])))
            elif t == SUCCESS:
                return rows, f[0]
            else:
                raise AssertionError("unexpected 0x%02X %r" % (t, f))

    def test_fault_hooks(self):
        s = self.start()
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        cid = self.query(c, "CALL test.connectionId()")[0][0]["connection_id"]
        self.assertTrue(cid.startswith("bolt-"))
        # explicit COMMIT: committed, then the socket closes without an answer
        c.send(BEGIN, {})
        c.expect(SUCCESS)
        self.query(c, "CREATE (n:Dropped {k: 1})")
        self.query(c, "CALL test.dropOnCommit()")
        c.send(COMMIT)
        self.assertTrue(c.closed())
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        self.assertEqual(self.query(c, "MATCH (n:Dropped) RETURN count(n) AS c")[0], [{"c": 1}])
        # autocommit: records arrive, the final summary does not
        c.send(RUN, "CALL test.dropOnCommit()", {}, {})
        c.send(PULL, {"n": -1})
        c.expect(SUCCESS)
        self.assertTrue(c.closed())
        # closeConnection: no answer to the RUN at all
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        c.send(RUN, "CALL test.closeConnection()", {}, {})
        self.assertTrue(c.closed())
        # killConnections closes the *other* connections; serverStats counts
        a, b = connect(s.port), connect(s.port)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.hello()
        b.hello()
        self.assertGreaterEqual(self.query(a, "CALL test.killConnections()")[0][0]["killed"], 1)
        self.assertTrue(b.closed())
        deadline = time.monotonic() + 10
        while True:   # connection threads finish asynchronously
            stats = self.query(a, "CALL test.serverStats()")[0][0]["stats"]
            if stats["connections_open"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(stats["connections_open"], 1)
        self.assertGreaterEqual(stats["hellos"], 5)
        # transient: per-key counter across connections
        a.send(RUN, "CALL test.transient('k', 2)", {}, {})
        self.assertEqual(a.expect(FAILURE)["neo4j_code"],
                         "Neo.TransientError.Transaction.DeadlockDetected")
        a.send(RESET)
        a.expect(SUCCESS)
        a.send(RUN, "CALL test.transient('k', 2)", {}, {})
        a.expect(FAILURE)
        a.send(RESET)
        a.expect(SUCCESS)
        self.assertEqual(self.query(a, "CALL test.transient('k', 2)")[0], [{"attempt": 3}])

    def test_idle_timeout_and_sigusr1(self):
        s = self.start("--idle-timeout-ms", "300")
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        t0 = time.monotonic()
        self.assertTrue(c.closed())
        self.assertLess(time.monotonic() - t0, 5)
        s2 = self.start()
        c2 = connect(s2.port)
        self.addCleanup(c2.close)
        c2.hello()
        s2.proc.send_signal(__import__("signal").SIGUSR1)
        self.assertTrue(c2.closed())
        c3 = connect(s2.port)          # still listening
        self.addCleanup(c3.close)
        c3.hello()

    def test_reader_role_and_access_mode(self):
        s = self.start("--role", "reader")
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        c.send(BEGIN, {"mode": "w"})
        c.expect(SUCCESS)
        c.send(RUN, "CREATE (n:X)", {}, {})
        self.assertEqual(c.expect(FAILURE)["neo4j_code"], "Neo.ClientError.Cluster.NotALeader")
        c.send(RESET)
        c.expect(SUCCESS)
        self.assertEqual(self.query(c, "MATCH (n) RETURN count(n) AS c", extra={"mode": "r"})[0],
                         [{"c": 0}])

    def test_memgraph_handshake_and_failures(self):
        s = self.start("--mode", "memgraph")
        c = Client(s.port)
        self.addCleanup(c.close)
        # the JS driver's offer: manifest, 5.8-5.0, 4.4-4.2, 3.0
        self.assertEqual(c.handshake("000001FF", "00080805", "00020404", "00000003"),
                         H("00000205"))
        c.hello((5, 2))
        c.send(RUN, "NOPE", {}, {})
        self.assertEqual(set(c.expect(FAILURE)), {"code", "message"})
        c2 = Client(s.port)
        self.addCleanup(c2.close)
        self.assertEqual(c2.handshake("00020404"), H("00000304"))
        c2.hello((4, 3))
        c2.send(ROUTE, {}, [], None)          # 4.3: db is a plain field
        self.assertNotIn("db", c2.expect(SUCCESS)["rt"])

    def test_legacy_reply_to_manifest(self):
        s = self.start("--max-version", "5.4")
        c = Client(s.port)
        self.addCleanup(c.close)
        self.assertEqual(c.handshake("000001FF", "00080805"), H("00000405"))

    def test_reject_handshake(self):
        s = self.start("--reject-handshake")
        c = Client(s.port)
        self.addCleanup(c.close)
        self.assertEqual(c.handshake("00000805"), H("00000000"))
        self.assertTrue(c.closed())

    def test_auth_and_hints(self):
        s = self.start("--auth", "u:p", "--recv-timeout", "7", "--telemetry", "--ssr")
        c = connect(s.port)
        self.addCleanup(c.close)
        meta = c.hello(auth={"scheme": "basic", "principal": "u", "credentials": "p"})
        self.assertEqual(meta["hints"], {"connection.recv_timeout_seconds": 7,
                                         "telemetry.enabled": True, "ssr.enabled": True})
        bad = connect(s.port)
        self.addCleanup(bad.close)
        bad.send(HELLO, dict(AGENT))
        bad.expect(SUCCESS)
        bad.send(LOGON, {"scheme": "basic", "principal": "u", "credentials": "nope"})
        self.assertEqual(bad.expect(FAILURE)["neo4j_code"], "Neo.ClientError.Security.Unauthorized")
        self.assertTrue(bad.closed())
        old = connect(s.port, "00000404")
        self.addCleanup(old.close)
        old.send(HELLO, {**AGENT, "scheme": "bearer", "credentials": "p"})
        self.assertEqual(old.expect(SUCCESS)["hints"], {"connection.recv_timeout_seconds": 7})

    def test_noop_every_and_small_chunks(self):
        s = self.start("--noop-every", "1", "--max-chunk", "4")
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        c.send(RUN, "RETURN 'abcdefghij' AS s", {}, {})
        c.send(PULL, {"n": -1})
        c.expect(SUCCESS)
        self.assertEqual(c.expect(RECORD), ["abcdefghij"])
        c.expect(SUCCESS)
        self.assertTrue(all(n <= 4 for n in c.chunk_sizes))
        self.assertGreaterEqual(c.noops, 3)

    def test_unwind_range_records_are_lists(self):
        # the streamed integer fast path is off with these options: each
        # RECORD must still carry a List of one field, not a bare integer
        for opts in (("--noop-every", "1"), ("--log-records",), ("--noop-every", "3", "--log-records")):
            s = self.start(*opts)
            c = connect(s.port)
            self.addCleanup(c.close)
            c.hello()
            rows, summary = self.query(c, "UNWIND range(1, 5) AS i RETURN i")
            self.assertEqual(rows, [{"i": i} for i in range(1, 6)], opts)
            c.send(RUN, "UNWIND range(7, 8) AS i RETURN i AS j", {}, {})
            c.expect(SUCCESS)
            c.send(PULL, {"n": -1})
            self.assertEqual(c.expect(RECORD), [7])
            self.assertEqual(c.expect(RECORD), [8])
            c.expect(SUCCESS)
            if "--log-records" in opts:
                recs = [e for e in s.entries() if e.get("msg") == "RECORD"]
                self.assertEqual(recs[0]["fields"], [[1]])

    def test_routing_table_sequence(self):
        tables = [{"ttl": 60, "writers": ["127.0.0.1:1"]}, {"ttl": 60, "writers": ["127.0.0.1:2"]}]
        s = self.start("--routing-table", json.dumps(tables))
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        seen = []
        for _ in range(3):
            c.send(ROUTE, {}, [], {"db": None})
            rt = c.expect(SUCCESS)["rt"]
            seen.append([x["addresses"] for x in rt["servers"] if x["role"] == "WRITE"][0])
            self.assertEqual([x["addresses"] for x in rt["servers"] if x["role"] == "READ"][0],
                             ["127.0.0.1:%d" % s.port])
        self.assertEqual(seen, [["127.0.0.1:1"], ["127.0.0.1:2"], ["127.0.0.1:2"]])

    def test_script(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump([
                {"match": "^MATCH \\(p:Person\\)", "fields": ["p", "d", "x"],
                 "records": [[{"$node": {"id": 5, "labels": ["Person"],
                                         "properties": {"n": "A"}}},
                              {"$date": "1970-01-11"}, {"$param": "x"}]],
                 "summary": {"type": "r", "notifications": []}},
                {"match": "flaky", "failure": {"code": "Neo.TransientError.General.X",
                                               "message": "once"}, "times": 1},
                {"match": "flaky", "fields": ["ok"], "records": [[True]]},
                {"match": "late", "fields": ["a"], "records": [[1]],
                 "failure": {"code": "Neo.DatabaseError.General.UnknownError",
                             "message": "mid-stream"}, "failure_on": "pull"},
            ], f)
        self.addCleanup(os.unlink, f.name)
        s = self.start("--script", f.name)
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        c.send(RUN, "MATCH (p:Person) RETURN p", {"x": [1]}, {})
        c.send(PULL, {"n": -1})
        self.assertEqual(c.expect(SUCCESS)["fields"], ["p", "d", "x"])
        node, d, x = c.expect(RECORD)
        self.assertEqual((node.tag, node.fields[0], node.fields[2]), (0x4E, 5, {"n": "A"}))
        self.assertEqual((d, x), (Structure(0x44, [10]), [1]))
        self.assertEqual(c.expect(SUCCESS)["notifications"], [])
        c.send(RUN, "CALL flaky()", {}, {})
        c.expect(FAILURE)
        c.send(RESET)
        c.expect(SUCCESS)
        c.send(RUN, "CALL flaky()", {}, {})
        c.expect(SUCCESS)
        c.send(RUN, "late", {}, {})
        c.expect(FAILURE)          # a RUN while STREAMING is a protocol violation
        self.assertTrue(c.closed())
        c = connect(s.port)
        self.addCleanup(c.close)
        c.hello()
        c.send(RUN, "late", {}, {})
        c.send(PULL, {"n": -1})
        c.expect(SUCCESS)
        self.assertEqual(c.expect(RECORD), [1])
        self.assertEqual(c.expect(FAILURE)["neo4j_code"], "Neo.DatabaseError.General.UnknownError")


if __name__ == "__main__":
    unittest.main(verbosity=2)
