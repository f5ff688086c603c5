#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Backplane Bolt test server: a protocol-faithful Bolt 4.x/5.x server (stdlib only).

It cannot run Cypher.  It speaks the Bolt wire protocol (handshake incl. the 5.7
manifest v1, chunking, PackStream v1, the per-version message set and server
state machine) the way Neo4j 5 / Memgraph servers do, and answers queries from a
tiny deterministic engine plus an optional JSON script.  The official npm
`neo4j-driver` is the oracle for it (test-neo4j-driver.mjs); it is in turn the
peer that the project's C Bolt client is tested against.  No real Neo4j or
Memgraph is involved anywhere; the Memgraph mode is derived from Memgraph's
documentation and source, not from a running Memgraph.

Starting it (from a test in any language)
-----------------------------------------
  python3 boltserver.py --port 0 [options]

prints exactly one line `LISTENING <port>` on stdout (flushed) once the socket is
bound, then serves until SIGTERM/SIGINT, or until EOF on stdin when stdin is a
pipe or socket (so a test that dies takes the server down).  Meson tests get the
path in the environment variable BOLT_SERVER.  From C/GLib:

  g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                               G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                               "python3", g_getenv ("BOLT_SERVER"),
                                               "--port", "0", "--log", log_path, NULL);
  read one line from g_subprocess_get_stdout_pipe (p) -> "LISTENING 40123\\n";
  ... test ...; g_subprocess_send_signal (p, SIGTERM); g_subprocess_wait (p, ...);

Options
-------
  --host H               bind address (127.0.0.1)
  --port P               0 = pick a free port (printed in the LISTENING line)
  --mode neo4j|memgraph  neo4j: Bolt 4.4, 5.0-5.4, 5.6-5.8 (no 5.5), manifest v1 when
                         the maximum is >= 5.7, GQL-style FAILURE from 5.7.
                         memgraph: Bolt 4.0, 4.1, 4.3, 5.2; no manifest; {code,message}
                         failures; server agent of Memgraph.
  --max-version X.Y      highest version offered (default 5.8 / 5.2)
  --versions A,B         exact supported set, overriding mode and --max-version
  --no-manifest          never answer the manifest offer (reply a plain version)
  --reject-handshake     always answer 00 00 00 00 and close
  --auth USER:PASSWORD   required credentials (basic: principal+credentials;
                         bearer: credentials == PASSWORD).  Without it any auth passes.
  --recv-timeout N       send hint connection.recv_timeout_seconds=N (4.3+); while a
                         query sleeps the server then sends NOOP chunks every N/2 s
  --no-keepalive         do not send those NOOPs (a client must then give up after N s)
  --telemetry            send hint telemetry.enabled=true (5.4+)
  --ssr                  send hint ssr.enabled=true (5.8+)
  --server-agent S       override the `server` string of HELLO SUCCESS
  --databases a,b        extra database names ("neo4j" and "system" always exist)
  --router               cluster router: ROUTE answers --routing-table.  Without it
                         ROUTE is still answered (like a standalone Neo4j 5), with
                         this server's own address in every role.
  --routing-table JSON   {"ttl":300,"routers":[..],"writers":[..],"readers":[..]};
                         addresses "127.0.0.1:PORT"; missing or empty lists default
                         to this server's own address (implies --router).  A JSON
                         list of such objects: the Nth ROUTE request gets the Nth
                         table, the last one repeats (a cluster whose leader moves)
  --role single|reader|writer|router   reader: writes fail with
                         Neo.ClientError.Cluster.NotALeader
  --script FILE.json     scripted answers (see below), checked before the built-ins
  --log FILE.jsonl       one JSON object per line: connection events, handshakes and
                         every message in/out (RECORDs only with --log-records)
  --log-records          also log each RECORD (slow for big streams)
  --noop-every N         emit a NOOP chunk (00 00) after every N outgoing messages
  --max-chunk N          largest outgoing chunk payload (default 65535, min 1)
  --max-message-size N   largest accepted incoming message (default 64 MiB)
  --idle-timeout-ms N    close connections idle (no request) for N ms
  --tls-cert C --tls-key K   serve TLS (bolt+s:// / bolt+ssc://)
  --no-stdin-watch       ignore stdin EOF
SIGUSR1 closes every open connection (the listener stays up), like a server restart
seen from the connections' side.

Log lines (--log): {"conn": 3, "dir": "in"|"out", "msg": "RUN", "fields": [...]} for
messages ("credentials" are replaced by "******"), {"conn": 3, "event": "open"|"close",
...}, {"conn": 3, "msg": "HANDSHAKE", "dir": "in", "proposals": ["00000001FF", ...],
"version": "5.8", "manifest": true}.  PULL/DISCARD SUCCESS lines carry "records": N
(records sent by that request).  Values are rendered as JSON, structures as
{"$struct": "Node", "tag": "0x4E", "fields": [...]}, bytes as {"$bytes": "hex"}.

Query engine (built-ins; matching is case-insensitive, a trailing ';' is ignored)
---------------------------------------------------------------------------------
  RETURN <expr> [AS name], ...        expr: $param (any value incl. structures), int,
                                      float, 'str'/"str", true/false/null, [..], {k: v}
  UNWIND range(a, b[, step]) AS x RETURN x [AS y]   lazily streamed (1e6+ rows fine)
  UNWIND $list|[..] AS x RETURN x [AS y]
  CREATE (n:Label[:Label2] [{k: v, ..}|$props]) [RETURN n|n.k [AS a]|id(n)|elementId(n), ..]
  MATCH (n[:Label] [{k: v}]) RETURN n | n.k | count(n)|count(*) | id(n) | elementId(n)
                                      | labels(n) [AS a], .. [LIMIT k]
  MATCH (n[:Label] [{k: v}]) [DETACH] DELETE n
  CALL dbms.components()              name, versions, edition
  CALL test.types()                   one record, columns: node relationship path date
                                      time localtime datetime datetimezoneid
                                      localdatetime duration point2d point3d bytes list
                                      map float string null boolean ints
  CALL test.transient($key, $n)       Neo.TransientError.Transaction.DeadlockDetected the
                                      first n times per key (process-wide), then one
                                      record [attempt]
  CALL test.fail($code, $message)     FAILURE with that code/message
  CALL test.sleep($ms)                delays the RUN response (RESET interrupts it; fails
                                      with ...TransactionTimedOutClientConfiguration when
                                      longer than the tx_timeout)
  CALL test.dropOnCommit()            the transaction is committed, then the socket is
                                      closed instead of answering COMMIT (autocommit:
                                      instead of the final PULL/DISCARD SUCCESS)
  CALL test.terminated()              Neo.TransientError.Transaction.Terminated
  CALL test.closeConnection()         closes the socket instead of answering the RUN
  CALL test.killConnections()         closes every *other* connection, one record [count]
  CALL test.connectionId()            one record ["bolt-N"] (the HELLO connection_id)
  CALL test.serverStats()             one record [{connections_total, connections_open,
                                      hellos, runs, commits, rollbacks, resets}]
Anything else fails with Neo.ClientError.Statement.SyntaxError.  Nodes are stored
in memory per database; writes in explicit transactions become visible on COMMIT
(autocommit: when the result is fully consumed); each committing write advances the
database's bookmark "FB:kcwQ<db>:<counter>".  In a read transaction (mode "r") a
write fails with Neo.ClientError.Statement.AccessMode.

Script (--script FILE.json): a JSON list of rules, first match wins:
  {"match": "regex (re.search, case-insensitive)",
   "fields": ["a", "b"], "records": [[1, "x"], ...],
   "summary": {...extra keys merged into the final PULL SUCCESS, e.g. "type": "w"},
   "failure": {"code": "...", "message": "..."},   instead of a result
   "failure_on": "run" | "pull",                    default "run"
   "times": N,             the rule applies to the first N matching RUNs only
   "delay_ms": N,          delay before answering the RUN
   "close": true}          close the socket instead of answering the RUN
Values are JSON plus tagged objects (a one-key object whose key starts with "$"):
  {"$param": "name"}  the RUN parameter      {"$bytes": "00ff"}
  {"$float": "NaN" | "Infinity" | "-Infinity"}
  {"$node": {"id": 1, "labels": [..], "properties": {..}, "element_id": "..."?}}
  {"$relationship": {"id", "start", "end", "type", "properties", "element_id"?,
                     "start_element_id"?, "end_element_id"?}}
  {"$path": {"nodes": [node specs], "relationships": [relationship specs]}}
  {"$date": "2024-02-29"}  {"$time": "12:00:00.5+01:00"}  {"$localtime": "12:00:00"}
  {"$datetime": "2024-02-29T12:00:00.123456789+01:00"}
  {"$datetime": "2024-07-01T12:00:00[Europe/Stockholm]"}   (zone id form)
  {"$localdatetime": "2024-02-29T12:00:00"}
  {"$duration": {"months": 0, "days": 0, "seconds": 0, "nanoseconds": 0}}
  {"$point": {"srid": 7203, "x": 1.0, "y": 2.0, "z"?: 3.0}}
  {"$struct": {"tag": 78 | "N", "fields": [...]}}          any raw structure
"""

import argparse
import base64
import collections
import datetime
import json
import math
import os
import re
import signal
import socket
import ssl
import stat
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from packstream import (PackStreamError, Structure, Unpacker, encode_int,  # noqa: E402
                        pack, INT64_MIN, INT64_MAX)

try:
    import zoneinfo
except ImportError:  # pragma: no cover
    zoneinfo = None

# ---------------------------------------------------------------------------
# Protocol constants

MAGIC = b"\x60\x60\xB0\x17"
MANIFEST_V1 = b"\x00\x00\x01\xFF"

HELLO, GOODBYE, RESET, RUN, BEGIN, COMMIT, ROLLBACK = 0x01, 0x02, 0x0F, 0x10, 0x11, 0x12, 0x13
DISCARD, PULL, TELEMETRY, ROUTE, LOGON, LOGOFF = 0x2F, 0x3F, 0x54, 0x66, 0x6A, 0x6B
SUCCESS, RECORD, IGNORED, FAILURE = 0x70, 0x71, 0x7E, 0x7F

REQUEST_NAMES = {HELLO: "HELLO", GOODBYE: "GOODBYE", RESET: "RESET", RUN: "RUN",
                 BEGIN: "BEGIN", COMMIT: "COMMIT", ROLLBACK: "ROLLBACK",
                 DISCARD: "DISCARD", PULL: "PULL", TELEMETRY: "TELEMETRY",
                 ROUTE: "ROUTE", LOGON: "LOGON", LOGOFF: "LOGOFF"}
RESPONSE_NAMES = {SUCCESS: "SUCCESS", RECORD: "RECORD", IGNORED: "IGNORED",
                  FAILURE: "FAILURE"}
# (number of fields, first version that has the message)
REQUEST_SHAPES = {HELLO: (1, (3, 0)), GOODBYE: (0, (3, 0)), RESET: (0, (1, 0)),
                  RUN: (3, (3, 0)), BEGIN: (1, (3, 0)), COMMIT: (0, (3, 0)),
                  ROLLBACK: (0, (3, 0)), DISCARD: (1, (4, 0)), PULL: (1, (4, 0)),
                  TELEMETRY: (1, (5, 4)), ROUTE: (3, (4, 3)), LOGON: (1, (5, 1)),
                  LOGOFF: (0, (5, 1))}

STRUCT_NAMES = {0x4E: "Node", 0x52: "Relationship", 0x72: "UnboundRelationship",
                0x50: "Path", 0x44: "Date", 0x54: "Time", 0x74: "LocalTime",
                0x49: "DateTime", 0x69: "DateTimeZoneId", 0x46: "LegacyDateTime",
                0x66: "LegacyDateTimeZoneId", 0x64: "LocalDateTime", 0x45: "Duration",
                0x58: "Point2D", 0x59: "Point3D"}

NEO4J_VERSIONS = [(4, 4), (5, 0), (5, 1), (5, 2), (5, 3), (5, 4), (5, 6), (5, 7), (5, 8)]
MEMGRAPH_VERSIONS = [(4, 0), (4, 1), (4, 3), (5, 2)]

# GQL status objects used in 5.7+ FAILUREs.
GQL_BY_CODE = {
    "Neo.ClientError.Statement.SyntaxError":
        ("42001", "error: syntax error or access rule violation - invalid syntax"),
    "Neo.ClientError.Security.Unauthorized":
        ("42NFF", "error: syntax error or access rule violation - permission/access denied"),
    "Neo.ClientError.Statement.ParameterMissing":
        ("42N51", "error: syntax error or access rule violation - invalid parameter"),
    "Neo.ClientError.Database.DatabaseNotFound":
        ("22N51", "error: data exception - graph reference not found"),
    "Neo.ClientError.Statement.AccessMode":
        ("08N09", "error: connection exception - write transaction in read access mode"),
    "Neo.ClientError.Cluster.NotALeader":
        ("08N07", "error: connection exception - not the leader"),
}
GQL_DEFAULT = ("50N42", "error: general processing exception - unexpected error")


class BoltFailure(Exception):
    """A query or request failure: FAILURE, then the FAILED state."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class ConnectionGone(Exception):
    """The socket is closed (by the peer, by GOODBYE, or on purpose)."""


class Interrupted(Exception):
    """A RESET arrived while a request was being worked on."""


# ---------------------------------------------------------------------------
# Graph values (dehydrated per negotiated version when sent)

class GNode:
    __slots__ = ("id", "labels", "props", "eid")

    def __init__(self, id_, labels, props, eid):
        self.id, self.labels, self.props, self.eid = id_, list(labels), dict(props), eid


class GRel:
    __slots__ = ("id", "start", "end", "type", "props", "eid", "start_eid", "end_eid")

    def __init__(self, id_, start, end, type_, props, eid, start_eid, end_eid):
        self.id, self.start, self.end, self.type = id_, start, end, type_
        self.props, self.eid, self.start_eid, self.end_eid = dict(props), eid, start_eid, end_eid


class GPath:
    __slots__ = ("nodes", "rels", "indices")

    def __init__(self, nodes, rels, indices):
        self.nodes, self.rels, self.indices = nodes, rels, indices


class GDateTime:
    """A zoned date-time: UTC epoch seconds + ns + (offset seconds | zone id)."""
    __slots__ = ("utc_seconds", "ns", "offset", "zone")

    def __init__(self, utc_seconds, ns, offset=None, zone=None):
        self.utc_seconds, self.ns, self.offset, self.zone = utc_seconds, ns, offset, zone


def zone_offset(zone, utc_seconds):
    if zoneinfo is None:
        return 0
    z = zoneinfo.ZoneInfo(zone)
    dt = datetime.datetime.fromtimestamp(utc_seconds, tz=datetime.timezone.utc)
    return int(dt.astimezone(z).utcoffset().total_seconds())


class WireCtx:
    __slots__ = ("v5", "utc")

    def __init__(self, v5, utc):
        self.v5, self.utc = v5, utc


_PRIMITIVES = (type(None), bool, int, float, str, bytes)


def wire(v, c):
    """Convert engine values into PackStream values for the negotiated version."""
    t = type(v)
    if t in _PRIMITIVES or t is Structure:
        return v
    if t is list or t is tuple:
        return [wire(x, c) for x in v]
    if t is dict:
        return {k: wire(x, c) for k, x in v.items()}
    if t is GNode:
        f = [v.id, list(v.labels), wire(v.props, c)]
        if c.v5:
            f.append(v.eid)
        return Structure(0x4E, f)
    if t is GRel:
        if c.v5:
            return Structure(0x52, [v.id, v.start, v.end, v.type, wire(v.props, c),
                                    v.eid, v.start_eid, v.end_eid])
        return Structure(0x52, [v.id, v.start, v.end, v.type, wire(v.props, c)])
    if t is GPath:
        rels = []
        for r in v.rels:
            f = [r.id, r.type, wire(r.props, c)]
            if c.v5:
                f.append(r.eid)
            rels.append(Structure(0x72, f))
        return Structure(0x50, [[wire(n, c) for n in v.nodes], rels, list(v.indices)])
    if t is GDateTime:
        if v.zone is not None:
            if c.utc:
                return Structure(0x69, [v.utc_seconds, v.ns, v.zone])
            return Structure(0x66, [v.utc_seconds + zone_offset(v.zone, v.utc_seconds),
                                    v.ns, v.zone])
        if c.utc:
            return Structure(0x49, [v.utc_seconds, v.ns, v.offset])
        return Structure(0x46, [v.utc_seconds + v.offset, v.ns, v.offset])
    if t is bytearray or t is memoryview:
        return bytes(v)
    raise TypeError("cannot send value of type %s" % t.__name__)


# ---------------------------------------------------------------------------
# JSON rendering (log) and tagged JSON decoding (script)

def render(v):
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$float": repr(v)}
    if t is bytes or t is bytearray:
        return {"$bytes": bytes(v).hex()}
    if t is list or t is tuple:
        return [render(x) for x in v]
    if t is dict:
        return {k: render(x) for k, x in v.items()}
    if t is Structure:
        return {"$struct": STRUCT_NAMES.get(v.tag, "Unknown"), "tag": "0x%02X" % v.tag,
                "fields": [render(x) for x in v.fields]}
    return repr(v)


def redact(tag, fields):
    if tag in (HELLO, LOGON) and fields and isinstance(fields[0], dict) \
            and "credentials" in fields[0]:
        d = dict(fields[0])
        d["credentials"] = "******"
        return [d] + list(fields[1:])
    return fields


EPOCH_DATE = datetime.date(1970, 1, 1)
_FRAC = r"(?:\.(\d{1,9}))?"
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})" + _FRAC + r")?$")
_OFFSET_RE = re.compile(r"^(.*?)(Z|[+-]\d{2}:?\d{2})?(?:\[([^\]]+)\])?$")


def _parse_time(s):
    m = _TIME_RE.match(s)
    if not m:
        raise ValueError("bad time %r" % s)
    h, mi, sec, frac = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), m.group(4)
    ns = int((frac or "").ljust(9, "0") or 0)
    return h * 3600 + mi * 60 + sec, ns


def _parse_offset(s):
    if s is None:
        return None
    if s == "Z":
        return 0
    sign = -1 if s[0] == "-" else 1
    digits = s[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def _split_dt(s):
    date_s, _, time_s = s.partition("T")
    d = datetime.date.fromisoformat(date_s)
    secs, ns = _parse_time(time_s or "00:00")
    return (d - EPOCH_DATE).days * 86400 + secs, ns


def from_json(v, params):
    t = type(v)
    if t is list:
        return [from_json(x, params) for x in v]
    if t is not dict:
        return v
    if len(v) == 1:
        (k, a), = v.items()
        if k.startswith("$"):
            return _from_tagged(k, a, params)
    return {k: from_json(x, params) for k, x in v.items()}


def _node_from_spec(a, params):
    nid = a.get("id", 0)
    return GNode(nid, a.get("labels", []), from_json(a.get("properties", {}), params),
                 a.get("element_id", "4:%s:%d" % (SCRIPT_DB_UUID, nid)))


def _rel_from_spec(a, params):
    rid, s, e = a.get("id", 0), a.get("start", 0), a.get("end", 0)
    return GRel(rid, s, e, a.get("type", "RELATED"),
                from_json(a.get("properties", {}), params),
                a.get("element_id", "5:%s:%d" % (SCRIPT_DB_UUID, rid)),
                a.get("start_element_id", "4:%s:%d" % (SCRIPT_DB_UUID, s)),
                a.get("end_element_id", "4:%s:%d" % (SCRIPT_DB_UUID, e)))


SCRIPT_DB_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "backplane-bolt-db:neo4j"))


def make_path(nodes, rels):
    """Build a Path from alternating nodes and bound relationships
    (nodes[i] -rels[i]- nodes[i+1]); indices as in the Bolt spec: a 1-based
    relationship index, negative when traversed against its direction, then a
    0-based node index."""
    uniq_nodes, uniq_rels, indices = [], [], []

    def index_of(seq, item):
        for i, x in enumerate(seq):
            if x.id == item.id:
                return i
        seq.append(item)
        return len(seq) - 1

    index_of(uniq_nodes, nodes[0])
    for i, r in enumerate(rels):
        a = nodes[i]
        ri = index_of(uniq_rels, r) + 1
        indices.append(ri if r.start == a.id else -ri)
        indices.append(index_of(uniq_nodes, nodes[i + 1]))
    return GPath(uniq_nodes, uniq_rels, indices)


def _from_tagged(k, a, params):
    if k == "$param":
        if a not in params:
            raise BoltFailure("Neo.ClientError.Statement.ParameterMissing",
                              "Expected parameter(s): %s" % a)
        return params[a]
    if k == "$bytes":
        return bytes.fromhex(a)
    if k == "$float":
        return float(a)
    if k == "$node":
        return _node_from_spec(a, params)
    if k == "$relationship":
        return _rel_from_spec(a, params)
    if k == "$path":
        nodes = [_node_from_spec(n.get("$node", n), params) for n in a["nodes"]]
        rels = [_rel_from_spec(r.get("$relationship", r), params)
                for r in a.get("relationships", [])]
        return make_path(nodes, rels)
    if k == "$date":
        return Structure(0x44, [(datetime.date.fromisoformat(a) - EPOCH_DATE).days])
    if k == "$localtime":
        secs, ns = _parse_time(a)
        return Structure(0x74, [secs * 1000000000 + ns])
    if k == "$time":
        m = _OFFSET_RE.match(a)
        secs, ns = _parse_time(m.group(1))
        return Structure(0x54, [secs * 1000000000 + ns, _parse_offset(m.group(2)) or 0])
    if k == "$localdatetime":
        secs, ns = _split_dt(a)
        return Structure(0x64, [secs, ns])
    if k == "$datetime":
        m = _OFFSET_RE.match(a)
        local, ns = _split_dt(m.group(1))
        off, zone = _parse_offset(m.group(2)), m.group(3)
        if zone:
            guess = local - zone_offset(zone, local)
            return GDateTime(local - zone_offset(zone, guess), ns, zone=zone)
        off = off or 0
        return GDateTime(local - off, ns, offset=off)
    if k == "$duration":
        return Structure(0x45, [a.get("months", 0), a.get("days", 0), a.get("seconds", 0),
                                a.get("nanoseconds", 0)])
    if k == "$point":
        if "z" in a:
            return Structure(0x59, [a.get("srid", 9157), float(a["x"]), float(a["y"]),
                                    float(a["z"])])
        return Structure(0x58, [a.get("srid", 7203), float(a["x"]), float(a["y"])])
    if k == "$struct":
        tag = a["tag"]
        if isinstance(tag, str):
            tag = ord(tag)
        return Structure(tag, [from_json(x, params) for x in a.get("fields", [])])
    return {k: from_json(a, params)}


# ---------------------------------------------------------------------------
# In-memory graph

class Database:
    def __init__(self, name):
        self.name = name
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "backplane-bolt-db:" + name))
        self.tag = base64.b64encode(name.encode()).decode().rstrip("=")
        self.nodes = {}        # id -> GNode (committed)
        self.next_id = 0
        self.counter = 1       # last committed transaction id
        self.lock = threading.Lock()

    def bookmark(self):
        return "FB:kcwQ%s:%d" % (self.tag, self.counter)


class Tx:
    """Per-transaction write set; explicit (BEGIN) or autocommit (one RUN)."""

    def __init__(self, db, mode, timeout_ms, explicit):
        self.db = db
        self.mode = mode
        self.timeout_ms = timeout_ms
        self.explicit = explicit
        self.created = {}
        self.deleted = set()
        self.wrote = False
        self.drop_on_commit = False
        self.streams = collections.OrderedDict()
        self.next_qid = 0

    def view(self):
        with self.db.lock:
            nodes = dict(self.db.nodes)
        nodes.update(self.created)
        for i in self.deleted:
            nodes.pop(i, None)
        return nodes

    def commit(self):
        db = self.db
        with db.lock:
            for i in self.deleted:
                db.nodes.pop(i, None)
            db.nodes.update(self.created)
            if self.wrote:
                db.counter += 1
            return db.bookmark()


class Result:
    def __init__(self, fields, records=(), qtype="r", stats=None, int_single=False,
                 pull_failure=None, summary=None):
        self.fields = list(fields)
        self.it = iter(records)
        self.type = qtype
        self.stats = stats or {}
        self.int_single = int_single
        self.pull_failure = pull_failure
        self.summary = summary or {}
        self._peek = _NOTHING
        self.qid = None
        self.t0 = time.monotonic()

    def next(self):
        if self._peek is not _NOTHING:
            v, self._peek = self._peek, _NOTHING
            return v
        return next(self.it, _NOTHING)

    def has_more(self):
        if self._peek is _NOTHING:
            self._peek = next(self.it, _NOTHING)
        return self._peek is not _NOTHING


_NOTHING = object()


# ---------------------------------------------------------------------------
# A tiny Cypher-ish parser

class QueryParser:
    _ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|`[^`]*`")
    _num = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")

    def __init__(self, text, params):
        self.s = text
        self.i = 0
        self.params = params

    def ws(self):
        s, i = self.s, self.i
        while i < len(s):
            if s[i].isspace():
                i += 1
            elif s.startswith("//", i):
                j = s.find("\n", i)
                i = len(s) if j < 0 else j + 1
            else:
                break
        self.i = i

    def eof(self):
        self.ws()
        return self.i >= len(self.s)

    def peek(self, lit):
        self.ws()
        return self.s.startswith(lit, self.i)

    def lit(self, lit):
        if self.peek(lit):
            self.i += len(lit)
            return True
        return False

    def expect(self, lit):
        if not self.lit(lit):
            self.fail("'%s'" % lit)

    def kw(self, word):
        self.ws()
        n = len(word)
        if self.s[self.i:self.i + n].upper() == word.upper() and \
                not (self.s[self.i + n:self.i + n + 1].isalnum()
                     or self.s[self.i + n:self.i + n + 1] == "_"):
            self.i += n
            return True
        return False

    def ident(self):
        self.ws()
        m = self._ident.match(self.s, self.i)
        if not m:
            self.fail("an identifier")
        self.i = m.end()
        t = m.group(0)
        return t[1:-1] if t.startswith("`") else t

    def fail(self, expected):
        self.ws()
        line = self.s.count("\n", 0, self.i) + 1
        col = self.i - (self.s.rfind("\n", 0, self.i) + 1) + 1
        got = self.s[self.i:self.i + 12].split()[0] if self.i < len(self.s) else "EOF"
        raise BoltFailure("Neo.ClientError.Statement.SyntaxError",
                          "Invalid input '%s': expected %s (line %d, column %d (offset: %d))"
                          % (got, expected, line, col, self.i))

    def value(self):
        """A literal or parameter expression; returns the value."""
        self.ws()
        s, i = self.s, self.i
        if i >= len(s):
            self.fail("an expression")
        c = s[i]
        if c == "$":
            self.i += 1
            name = self.ident()
            if name not in self.params:
                raise BoltFailure("Neo.ClientError.Statement.ParameterMissing",
                                  "Expected parameter(s): %s" % name)
            return self.params[name]
        if c in "'\"":
            return self.string()
        if c == "[":
            self.i += 1
            out = []
            if not self.lit("]"):
                while True:
                    out.append(self.value())
                    if self.lit("]"):
                        break
                    self.expect(",")
            return out
        if c == "{":
            return self.map_literal()
        m = self._num.match(s, i)
        if m:
            self.i = m.end()
            if m.group(1) or m.group(2):
                return float(m.group(0))
            n = int(m.group(0))
            if not INT64_MIN <= n <= INT64_MAX:
                raise BoltFailure("Neo.ClientError.Statement.SyntaxError",
                                  "integer is too large: %s" % m.group(0))
            return n
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.kw(word):
                return val
        self.fail("a literal or a parameter")

    def string(self):
        q = self.s[self.i]
        self.i += 1
        out = []
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == q:
                self.i += 1
                return "".join(out)
            if c == "\\" and self.i + 1 < len(s):
                e = s[self.i + 1]
                self.i += 2
                if e == "u" and self.i + 4 <= len(s):
                    out.append(chr(int(s[self.i:self.i + 4], 16)))
                    self.i += 4
                else:
                    out.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b",
                                "f": "\f"}.get(e, e))
                continue
            out.append(c)
            self.i += 1
        self.fail("a closing quote")

    def map_literal(self):
        self.expect("{")
        out = {}
        if self.lit("}"):
            return out
        while True:
            self.ws()
            if self.s[self.i:self.i + 1] in ("'", '"'):
                k = self.string()
            else:
                k = self.ident()
            self.expect(":")
            out[k] = self.value()
            if self.lit("}"):
                return out
            self.expect(",")

    def node_pattern(self):
        """'(' [var] (':' Label)* [map | $param] ')' -> (var, labels, props)"""
        self.expect("(")
        var = None
        self.ws()
        if self._ident.match(self.s, self.i):
            var = self.ident()
        labels = []
        while self.lit(":"):
            labels.append(self.ident())
        props = {}
        if self.peek("{") or self.peek("$"):
            props = self.value()
            if not isinstance(props, dict):
                raise BoltFailure("Neo.ClientError.Statement.TypeError",
                                  "Expected a map of properties, got %r" % type(props).__name__)
        self.expect(")")
        return var, labels, props

    def items(self, var=None):
        """RETURN items: [(kind, payload, column)], kind in value/node/prop/count/id/eid/labels."""
        out = []
        while True:
            self.ws()
            start = self.i
            item = None
            if var is not None:
                save = self.i
                m = self._ident.match(self.s, self.i)
                if m:
                    word = m.group(0)
                    self.i = m.end()
                    if word.lower() in ("count", "id", "elementid", "labels") and self.lit("("):
                        if word.lower() == "count" and self.lit("*"):
                            arg = var
                        else:
                            arg = self.ident()
                        if arg != var:
                            raise BoltFailure("Neo.ClientError.Statement.SyntaxError",
                                              "Variable `%s` not defined" % arg)
                        self.expect(")")
                        item = (word.lower().replace("elementid", "eid"), None)
                    elif word == var:
                        if self.lit("."):
                            item = ("prop", self.ident())
                        else:
                            item = ("node", None)
                    else:
                        self.i = save
            if item is None:
                self.ws()
                m = self._ident.match(self.s, self.i)
                if m and m.group(0).lower() not in ("true", "false", "null"):
                    raise BoltFailure("Neo.ClientError.Statement.SyntaxError",
                                      "Variable `%s` not defined (line 1, column %d (offset: %d))"
                                      % (m.group(0), self.i + 1, self.i))
                item = ("value", self.value())
            col = self.s[start:self.i].strip()
            if self.kw("AS"):
                col = self.ident()
            out.append((item[0], item[1], col))
            if not self.lit(","):
                return out


# ---------------------------------------------------------------------------
# Server-wide state

class Server:
    def __init__(self, args):
        self.args = args
        self.mode = args.mode
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        self.conns = {}
        self.next_conn = 0
        self.stats = collections.Counter()
        self.transient = collections.Counter()
        self.dbs = {}
        for name in ["neo4j", "system"] + [d for d in (args.databases or "").split(",") if d]:
            self.dbs[name] = Database(name)
        self.script = []
        self.script_hits = collections.Counter()
        if args.script:
            with open(args.script, encoding="utf-8") as f:
                rules = json.load(f)
            if isinstance(rules, dict):
                rules = rules.get("rules", [])
            for r in rules:
                self.script.append((re.compile(r["match"], re.IGNORECASE | re.DOTALL), r))
        self.auth = None
        if args.auth:
            user, _, pw = args.auth.partition(":")
            self.auth = (user, pw)
        self.versions = self._versions()
        self.manifest = (self.mode == "neo4j" and not args.no_manifest
                         and max(self.versions) >= (5, 7))
        self.ssl_ctx = None
        if args.tls_cert:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        self.port = None
        # one table, or a list: the Nth ROUTE request gets the Nth (the last repeats)
        tables = json.loads(args.routing_table) if args.routing_table else {}
        self.routing_tables = tables if isinstance(tables, list) and tables else [tables or {}]
        self.routes_served = 0

    def _versions(self):
        a = self.args
        if a.versions:
            vs = []
            for part in a.versions.split(","):
                ma, _, mi = part.strip().partition(".")
                vs.append((int(ma), int(mi or 0)))
            return sorted(set(vs))
        base = NEO4J_VERSIONS if self.mode == "neo4j" else MEMGRAPH_VERSIONS
        if a.max_version:
            ma, _, mi = a.max_version.partition(".")
            top = (int(ma), int(mi or 0))
            base = [v for v in base if v <= top]
        if not base:
            raise SystemExit("no Bolt version left under --max-version %s" % a.max_version)
        return base

    def bump(self, key):
        with self.lock:
            self.stats[key] += 1

    def log(self, obj):
        if self.log_file is None:
            return
        line = json.dumps(obj, ensure_ascii=False, default=repr)
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def self_address(self):
        host = self.args.host
        return "%s:%d" % ("127.0.0.1" if host in ("0.0.0.0", "") else host, self.port)

    def agent(self, version):
        if self.args.server_agent:
            return self.args.server_agent
        if self.mode == "memgraph":
            return "Neo4j/v5.11.0 compatible graph database server - Memgraph"
        return "Neo4j/4.4.40" if version < (5, 0) else "Neo4j/5.26.0"

    def kill_all(self, except_conn=None):
        with self.lock:
            victims = [c for c in self.conns.values() if c is not except_conn]
        for c in victims:
            c.kill()
        return len(victims)


# ---------------------------------------------------------------------------
# One connection (one thread)

class Connection:
    def __init__(self, server, sock, addr, cid):
        self.server = server
        self.args = server.args
        self.sock = sock
        self.addr = addr
        self.cid = cid
        self.conn_name = "bolt-%d" % cid
        self.inbuf = bytearray()
        self.cur = bytearray()         # message being reassembled
        self.inbox = collections.deque()
        self.pending_resets = 0
        self.out = bytearray()
        self.sent_count = 0
        self.eof = False
        self.closed = False
        self.version = None
        self.state = "CONNECTED"
        self.authenticated = False
        self.utc = False
        self.tx = None
        self.max_chunk = max(1, min(65535, self.args.max_chunk))
        self.noop_every = self.args.noop_every
        self.log_on = server.log_file is not None
        self.log_records = self.args.log_records

    # -- low-level I/O ------------------------------------------------------

    def kill(self):
        """Shut the socket down (any thread); the owner thread then sees EOF.
        The base-class call leaves an SSLSocket's TLS object alone."""
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.flush()
            except (OSError, ConnectionGone):
                pass
            try:
                self.sock.close()
            except OSError:
                pass

    def _recv_some(self, timeout):
        """Read what is available (waiting up to timeout s; None = block).
        Returns False on timeout, True if data arrived; raises ConnectionGone on EOF."""
        if self.eof:
            raise ConnectionGone()
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return False
        except (ssl.SSLError, OSError):
            self.eof = True
            raise ConnectionGone() from None
        finally:
            try:
                self.sock.settimeout(None)
            except OSError:
                pass
        if not data:
            self.eof = True
            raise ConnectionGone()
        self.inbuf += data
        self._parse_chunks()
        return True

    def _recv_exact(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while len(self.inbuf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionGone()
            if self.eof:
                raise ConnectionGone()
            try:
                self.sock.settimeout(left)
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                raise ConnectionGone() from None
            finally:
                try:
                    self.sock.settimeout(None)
                except OSError:
                    pass
            if not data:
                raise ConnectionGone()
            self.inbuf += data
        out = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        return out

    def _parse_chunks(self):
        buf = self.inbuf
        pos = 0
        limit = self.args.max_message_size
        while len(buf) - pos >= 2:
            size = (buf[pos] << 8) | buf[pos + 1]
            if size == 0:
                pos += 2
                if self.cur:
                    self._decode_message(bytes(self.cur))
                    self.cur = bytearray()
                continue  # a NOOP chunk between messages
            if len(buf) - pos - 2 < size:
                break
            self.cur += buf[pos + 2:pos + 2 + size]
            pos += 2 + size
            if len(self.cur) > limit:
                self.inbox.append(("BAD", "Neo.ClientError.Request.Invalid",
                                   "message larger than %d bytes" % limit))
                self.cur = bytearray()
        del buf[:pos]

    def _decode_message(self, data):
        try:
            u = Unpacker(data)
            m = u.unpack()
            if u.remaining():
                raise PackStreamError("%d trailing bytes after the message" % u.remaining())
            if type(m) is not Structure:
                raise PackStreamError("a message must be a structure")
        except PackStreamError as e:
            self.inbox.append(("BAD", "Neo.ClientError.Request.InvalidFormat", str(e)))
            return
        if m.tag == RESET:
            self.pending_resets += 1
        self.inbox.append((m.tag, m.fields))

    def flush(self):
        if self.out:
            data = bytes(self.out)
            self.out.clear()
            try:
                self.sock.sendall(data)
            except (OSError, ssl.SSLError):
                self.eof = True
                raise ConnectionGone() from None

    def _chunk(self, body):
        out = self.out
        n = len(body)
        mc = self.max_chunk
        if n <= mc:
            out += n.to_bytes(2, "big")
            out += body
        else:
            for i in range(0, n, mc):
                part = body[i:i + mc]
                out += len(part).to_bytes(2, "big")
                out += part
        out += b"\x00\x00"
        self.sent_count += 1
        if self.noop_every and self.sent_count % self.noop_every == 0 \
                and self.version >= (4, 1):
            out += b"\x00\x00"
        if len(out) >= 262144:
            self.flush()

    def send(self, tag, fields, extra_log=None):
        body = bytearray((0xB0 + len(fields), tag))
        for f in fields:
            pack(f, body)
        self._chunk(body)
        if self.log_on and (tag != RECORD or self.log_records):
            entry = {"conn": self.cid, "dir": "out", "msg": RESPONSE_NAMES.get(tag, hex(tag)),
                     "fields": render(fields)}
            if extra_log:
                entry.update(extra_log)
            self.server.log(entry)

    def success(self, meta=None, extra_log=None):
        self.send(SUCCESS, [meta or {}], extra_log)

    def ignored(self):
        self.send(IGNORED, [])

    def failure_meta(self, code, message):
        if self.server.mode == "neo4j" and self.version >= (5, 7):
            gql, desc = GQL_BY_CODE.get(code, GQL_DEFAULT)
            cls = code.split(".")[1] if code.count(".") >= 2 else "ClientError"
            classification = {"ClientError": "CLIENT_ERROR", "TransientError": "TRANSIENT_ERROR",
                              "DatabaseError": "DATABASE_ERROR"}.get(cls, "UNKNOWN")
            return {"gql_status": gql, "description": desc, "message": message,
                    "neo4j_code": code,
                    "diagnostic_record": {"OPERATION": "", "OPERATION_CODE": "0",
                                          "CURRENT_SCHEMA": "/",
                                          "_classification": classification}}
        return {"code": code, "message": message}

    def fail(self, code, message):
        self.send(FAILURE, [self.failure_meta(code, message)])
        self.state = "FAILED"
        self.tx = None

    def fatal(self, code, message):
        """FAILURE, then close: protocol violations and failed authentication."""
        self.send(FAILURE, [self.failure_meta(code, message)])
        self.state = "DEFUNCT"
        raise ConnectionGone()

    def violation(self, tag):
        name = REQUEST_NAMES.get(tag, "0x%02X" % tag)
        self.fatal("Neo.ClientError.Request.Invalid",
                   "Message '%s' cannot be handled by a session in the %s state."
                   % (name, self.state))

    def poll_interrupt(self):
        """Non-blocking look at the socket; raises Interrupted when a RESET is queued."""
        self._recv_some(0)
        if self.pending_resets:
            raise Interrupted()

    def sleep(self, seconds):
        """Sleep, waking on RESET (raises Interrupted) and sending NOOP keep-alives
        when a receive-timeout hint was given."""
        deadline = time.monotonic() + seconds
        keep = None
        if self.args.recv_timeout and not self.args.no_keepalive:
            keep = self.args.recv_timeout / 2.0
        next_noop = time.monotonic() + keep if keep else None
        self.flush()
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            wait = deadline - now
            if next_noop is not None:
                wait = min(wait, max(0.0, next_noop - now))
            self._recv_some(wait)
            if self.pending_resets:
                raise Interrupted()
            if next_noop is not None and time.monotonic() >= next_noop:
                if self.version >= (4, 1):
                    self.out += b"\x00\x00"
                    self.flush()
                next_noop = time.monotonic() + keep

    # -- handshake -----------------------------------------------------------

    def handshake(self):
        magic = self._recv_exact(4)
        if magic != MAGIC:
            self.server.log({"conn": self.cid, "event": "bad-magic", "bytes": magic.hex()})
            raise ConnectionGone()
        proposals = self._recv_exact(16)
        slots = [proposals[i:i + 4] for i in range(0, 16, 4)]
        chosen, manifest = None, False
        supported = set(self.server.versions)
        if not self.args.reject_handshake:
            for s in slots:
                if s == MANIFEST_V1:
                    if self.server.manifest:
                        manifest = True
                        break
                    continue
                major, minor, rng = s[3], s[2], s[1]
                for mi in range(minor, max(minor - rng, 0) - 1, -1):
                    if (major, mi) in supported:
                        chosen = (major, mi)
                        break
                if chosen:
                    break
        entry = {"conn": self.cid, "dir": "in", "msg": "HANDSHAKE",
                 "proposals": [s.hex() for s in slots]}
        if manifest:
            ranges = _version_ranges(self.server.versions)
            reply = bytearray(MANIFEST_V1)
            reply += _varint(len(ranges))
            for major, top, rng in ranges:
                reply += bytes((0, rng, top, major))
            reply += _varint(0)
            self.out += reply
            self.flush()
            pick = self._recv_exact(4)
            caps = self._read_varint()
            chosen = (pick[3], pick[2])
            entry.update({"manifest": True, "offered": reply.hex(), "client_choice": pick.hex(),
                          "capabilities": caps})
            if chosen not in supported:
                entry["version"] = None
                self.server.log(entry)
                raise ConnectionGone()
        elif chosen is None:
            entry["version"] = None
            self.server.log(entry)
            self.out += b"\x00\x00\x00\x00"
            self.flush()
            raise ConnectionGone()
        else:
            self.out += bytes((0, 0, chosen[1], chosen[0]))
            self.flush()
        self.version = chosen
        self.utc = chosen >= (5, 0)
        entry["version"] = "%d.%d" % chosen
        self.server.log(entry)
        # Bytes pipelined after the handshake are messages.
        self._parse_chunks()

    def _read_varint(self):
        shift, value = 0, 0
        while True:
            b = self._recv_exact(1)[0]
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value
            if shift > 63:
                raise ConnectionGone()

    # -- main loop -------------------------------------------------------------

    def serve(self):
        try:
            if self.server.ssl_ctx is not None:
                self.sock.settimeout(30)
                self.sock = self.server.ssl_ctx.wrap_socket(self.sock, server_side=True)
                self.sock.settimeout(None)
            self.handshake()
            self.loop()
        except (ConnectionGone, ssl.SSLError, OSError):
            pass
        finally:
            self.close()
            self.server.log({"conn": self.cid, "event": "close"})

    def loop(self):
        idle = self.args.idle_timeout_ms / 1000.0 if self.args.idle_timeout_ms else None
        while True:
            if not self.inbox:
                self.flush()
                if not self._recv_some(idle):
                    self.server.log({"conn": self.cid, "event": "idle-timeout"})
                    raise ConnectionGone()
                continue
            item = self.inbox.popleft()
            tag, fields = item[0], item[1]
            if tag == "BAD":
                self.fatal(item[1], item[2])
            if self.log_on:
                self.server.log({"conn": self.cid, "dir": "in",
                                 "msg": REQUEST_NAMES.get(tag, "0x%02X" % tag),
                                 "fields": render(redact(tag, fields))})
            if tag == RESET:
                self.pending_resets -= 1
                self.handle_reset(fields)
                continue
            if tag == GOODBYE:
                raise ConnectionGone()
            if self.pending_resets > 0:
                self.ignored()          # INTERRUPTED: everything before the RESET
                continue
            if self.state == "FAILED":
                self.ignored()
                continue
            self.dispatch(tag, fields)

    def dispatch(self, tag, fields):
        shape = REQUEST_SHAPES.get(tag)
        if shape is None or self.version < shape[1]:
            self.fatal("Neo.ClientError.Request.Invalid",
                       "Message 0x%02X is not supported in Bolt %d.%d"
                       % (tag, self.version[0], self.version[1]))
        if len(fields) != shape[0]:
            self.fatal("Neo.ClientError.Request.InvalidFormat",
                       "Message %s expects %d field(s), got %d"
                       % (REQUEST_NAMES[tag], shape[0], len(fields)))
        handler = {HELLO: self.handle_hello, LOGON: self.handle_logon,
                   LOGOFF: self.handle_logoff, RUN: self.handle_run, PULL: self.handle_pull,
                   DISCARD: self.handle_discard, BEGIN: self.handle_begin,
                   COMMIT: self.handle_commit, ROLLBACK: self.handle_rollback,
                   ROUTE: self.handle_route, TELEMETRY: self.handle_telemetry}[tag]
        try:
            handler(fields)
        except Interrupted:
            # the in-flight request is answered IGNORED; the queued RESET follows
            self.ignored()
            self.tx = None
            self.state = "INTERRUPTED"
        except BoltFailure as f:
            self.fail(f.code, f.message)
        except (ConnectionGone, ssl.SSLError, OSError):
            raise
        except Exception as e:  # a bug in this server: report it, keep serving
            import traceback
            traceback.print_exc(file=sys.stderr)
            self.fail("Neo.DatabaseError.General.UnknownError",
                      "boltserver internal error: %s: %s" % (type(e).__name__, e))

    # -- auth ------------------------------------------------------------------

    def check_auth(self, token):
        auth = self.server.auth
        if auth is None:
            return True
        scheme = token.get("scheme", "none")
        if scheme == "basic":
            return token.get("principal") == auth[0] and token.get("credentials") == auth[1]
        if scheme == "bearer":
            return token.get("credentials") == auth[1]
        return False

    def auth_failed(self):
        self.fatal("Neo.ClientError.Security.Unauthorized",
                   "The client is unauthorized due to authentication failure.")

    def handle_hello(self, fields):
        if self.state != "CONNECTED":
            self.violation(HELLO)
        extra = fields[0]
        if not isinstance(extra, dict):
            self.fatal("Neo.ClientError.Request.InvalidFormat", "HELLO extra must be a map")
        if not isinstance(extra.get("user_agent"), str) or not extra["user_agent"]:
            self.fatal("Neo.ClientError.Request.Invalid",
                       "Expected \"user_agent\" to be a non-empty String")
        if self.server.mode == "neo4j" and self.version >= (5, 3):
            ba = extra.get("bolt_agent")
            if not isinstance(ba, dict) or not isinstance(ba.get("product"), str):
                self.fatal("Neo.ClientError.Request.Invalid",
                           "Expected \"bolt_agent\" to be a map with a \"product\" String")
        self.server.bump("hellos")
        meta = {"server": self.server.agent(self.version), "connection_id": self.conn_name}
        if self.version < (5, 1):
            if not self.check_auth(extra):
                self.auth_failed()
            self.authenticated = True
        if self.server.mode == "neo4j" and (4, 3) <= self.version < (5, 0):
            patches = extra.get("patch_bolt") or []
            if isinstance(patches, list) and "utc" in patches:
                self.utc = True
                meta["patch_bolt"] = ["utc"]
        if self.version >= (4, 3):
            hints = {}
            if self.args.recv_timeout:
                hints["connection.recv_timeout_seconds"] = self.args.recv_timeout
            if self.args.telemetry and self.version >= (5, 4):
                hints["telemetry.enabled"] = True
            if self.args.ssr and self.version >= (5, 8):
                hints["ssr.enabled"] = True
            meta["hints"] = hints
        if self.server.mode == "neo4j" and self.version >= (5, 7):
            meta["protocol_version"] = "%d.%d" % self.version
        self.success(meta)
        self.state = "READY" if self.authenticated else "AUTHENTICATION"

    def handle_logon(self, fields):
        if self.state != "AUTHENTICATION":
            self.violation(LOGON)
        token = fields[0]
        if not isinstance(token, dict):
            self.fatal("Neo.ClientError.Request.InvalidFormat", "LOGON auth must be a map")
        if not self.check_auth(token):
            self.auth_failed()
        self.authenticated = True
        self.success({})
        self.state = "READY"

    def handle_logoff(self, fields):
        if self.state != "READY":
            self.violation(LOGOFF)
        self.authenticated = False
        self.success({})
        self.state = "AUTHENTICATION"

    def handle_reset(self, fields):
        if self.state in ("CONNECTED", "DEFUNCT"):
            self.violation(RESET)
        self.server.bump("resets")
        self.tx = None
        self.success({})
        self.state = "READY" if self.authenticated else "AUTHENTICATION"

    def handle_telemetry(self, fields):
        if self.state != "READY":
            self.violation(TELEMETRY)
        if not isinstance(fields[0], int):
            raise BoltFailure("Neo.ClientError.Request.Invalid", "TELEMETRY api must be an Integer")
        self.success({})

    # -- routing ----------------------------------------------------------------

    def handle_route(self, fields):
        if self.state != "READY":
            self.violation(ROUTE)
        routing, bookmarks, extra = fields
        if self.version >= (4, 4):
            db_name = (extra or {}).get("db") if isinstance(extra, dict) else None
        else:
            db_name = extra
        db = self.database(db_name)
        srv = self.server
        with srv.lock:
            rt = srv.routing_tables[min(srv.routes_served, len(srv.routing_tables) - 1)]
            srv.routes_served += 1
        me = [self.server.self_address()]
        servers = [{"addresses": list(rt.get("routers") or me), "role": "ROUTE"},
                   {"addresses": list(rt.get("readers") or me), "role": "READ"},
                   {"addresses": list(rt.get("writers") or me), "role": "WRITE"}]
        table = {"ttl": int(rt.get("ttl", 300)), "servers": servers}
        if self.version >= (4, 4):
            table["db"] = db.name
        self.success({"rt": table})

    def database(self, name):
        if name is None or name == "":
            name = "neo4j"
        if not isinstance(name, str):
            raise BoltFailure("Neo.ClientError.Request.Invalid", "db must be a String")
        db = self.server.dbs.get(name)
        if db is None:
            raise BoltFailure("Neo.ClientError.Database.DatabaseNotFound",
                              "Database does not exist. Database name: '%s'." % name)
        return db

    # -- transactions and queries -----------------------------------------------

    def _tx_from_extra(self, extra, explicit):
        if not isinstance(extra, dict):
            raise BoltFailure("Neo.ClientError.Request.InvalidFormat", "extra must be a map")
        bms = extra.get("bookmarks", [])
        if bms is not None and (not isinstance(bms, list)
                                or not all(isinstance(b, str) for b in bms)):
            raise BoltFailure("Neo.ClientError.Transaction.InvalidBookmark",
                              "Bookmarks must be a list of strings")
        mode = extra.get("mode", "w")
        if mode not in ("r", "w"):
            raise BoltFailure("Neo.ClientError.Request.Invalid", "mode must be \"r\" or \"w\"")
        timeout = extra.get("tx_timeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout < 0):
            raise BoltFailure("Neo.ClientError.Request.Invalid", "tx_timeout must be >= 0")
        md = extra.get("tx_metadata")
        if md is not None and not isinstance(md, dict):
            raise BoltFailure("Neo.ClientError.Request.Invalid", "tx_metadata must be a map")
        db = self.database(extra.get("db"))
        return Tx(db, mode, timeout or None, explicit)

    def handle_begin(self, fields):
        if self.state != "READY":
            self.violation(BEGIN)
        self.tx = self._tx_from_extra(fields[0], True)
        meta = {}
        if self.version >= (5, 8) and self.server.mode == "neo4j":
            meta["db"] = self.tx.db.name
        self.success(meta)
        self.state = "TX_READY"

    def handle_run(self, fields):
        query, params, extra = fields
        if self.state == "READY":
            tx = self._tx_from_extra(extra, False)
        elif self.state in ("TX_READY", "TX_STREAMING"):
            tx = self.tx
        else:
            self.violation(RUN)
        if not isinstance(query, str) or not isinstance(params, dict):
            raise BoltFailure("Neo.ClientError.Request.InvalidFormat",
                              "RUN expects a String query and a Map of parameters")
        self.server.bump("runs")
        if self.state == "READY":
            self.tx = tx
        res = Engine(self, tx).run(query, params)
        meta = {"fields": res.fields, "t_first": int((time.monotonic() - res.t0) * 1000)}
        if tx.explicit:
            res.qid = tx.next_qid
            tx.next_qid += 1
            meta["qid"] = res.qid
        elif self.version >= (5, 8) and self.server.mode == "neo4j":
            meta["db"] = tx.db.name
        tx.streams[res.qid] = res
        self.success(meta)
        self.state = "TX_STREAMING" if tx.explicit else "STREAMING"

    def _stream_for(self, extra, tag):
        if not isinstance(extra, dict) or not isinstance(extra.get("n"), int):
            raise BoltFailure("Neo.ClientError.Request.Invalid",
                              "%s requires an Integer \"n\"" % REQUEST_NAMES[tag])
        n = extra["n"]
        if n == 0 or n < -1:
            raise BoltFailure("Neo.ClientError.Request.Invalid",
                              "Expecting %s size n to be at least 1 (or -1 for all), but got: %d"
                              % (REQUEST_NAMES[tag], n))
        tx = self.tx
        if tx.explicit:
            qid = extra.get("qid", -1)
            if qid == -1:
                qid = next(reversed(tx.streams)) if tx.streams else None
            res = tx.streams.get(qid)
            if res is None:
                raise BoltFailure("Neo.ClientError.Request.Invalid",
                                  "Given qid %r does not match an open result" % (qid,))
        else:
            res = tx.streams[None]
        return tx, res, n

    def handle_pull(self, fields):
        if self.state not in ("STREAMING", "TX_STREAMING"):
            self.violation(PULL)
        tx, res, n = self._stream_for(fields[0], PULL)
        sent = 0
        if res.int_single and not self.log_records and not self.noop_every:
            out = self.out
            ei = encode_int
            step = 0
            while n < 0 or sent < n:
                v = res.next()
                if v is _NOTHING:
                    break
                body = b"\xb1\x71\x91" + ei(v)
                out += len(body).to_bytes(2, "big")
                out += body
                out += b"\x00\x00"
                sent += 1
                step += 1
                if step >= 4096:
                    step = 0
                    self.sent_count += 4096
                    if len(out) >= 262144:
                        self.flush()
                        self.poll_interrupt()
            self.sent_count += step
        else:
            c = WireCtx(self.version >= (5, 0), self.utc)
            single = res.int_single
            while n < 0 or sent < n:
                v = res.next()
                if v is _NOTHING:
                    break
                # int_single results yield bare integers: a RECORD's data is
                # always a List, here of one field
                self.send(RECORD, [wire([v] if single else v, c)])
                sent += 1
                if (sent & 1023) == 0:
                    self.poll_interrupt()
        self._finish_batch(tx, res, sent)

    def handle_discard(self, fields):
        if self.state not in ("STREAMING", "TX_STREAMING"):
            self.violation(DISCARD)
        tx, res, n = self._stream_for(fields[0], DISCARD)
        skipped = 0
        while n < 0 or skipped < n:
            if res.next() is _NOTHING:
                break
            skipped += 1
        self._finish_batch(tx, res, 0)

    def _finish_batch(self, tx, res, sent):
        if res.has_more():
            self.success({"has_more": True}, {"records": sent})
            return
        if res.pull_failure:
            raise BoltFailure(*res.pull_failure)
        meta = {"type": res.type, "t_last": int((time.monotonic() - res.t0) * 1000),
                "db": tx.db.name}
        if res.stats:
            meta["stats"] = dict(res.stats)
        del tx.streams[res.qid]
        if not tx.explicit:
            bookmark = tx.commit()
            self.server.bump("commits")
            if tx.drop_on_commit:
                self.server.log({"conn": self.cid, "event": "drop-on-commit"})
                self.flush()
                self.kill()
                raise ConnectionGone()
            meta["bookmark"] = bookmark
            self.tx = None
            self.state = "READY"
        else:
            self.state = "TX_STREAMING" if tx.streams else "TX_READY"
        if self.server.mode == "memgraph":
            meta.pop("db", None)
        meta.update(res.summary)
        self.success(meta, {"records": sent})

    def handle_commit(self, fields):
        if self.state not in ("TX_READY", "TX_STREAMING"):
            self.violation(COMMIT)
        tx = self.tx
        bookmark = tx.commit()
        self.server.bump("commits")
        if tx.drop_on_commit:
            self.server.log({"conn": self.cid, "event": "drop-on-commit"})
            self.flush()
            self.kill()
            raise ConnectionGone()
        self.tx = None
        self.success({"bookmark": bookmark})
        self.state = "READY"

    def handle_rollback(self, fields):
        if self.state not in ("TX_READY", "TX_STREAMING"):
            self.violation(ROLLBACK)
        self.server.bump("rollbacks")
        self.tx = None
        self.success({})
        self.state = "READY"


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _version_ranges(versions):
    """[(major, top_minor, range)] covering versions, newest first, no gaps."""
    out = []
    for major, minor in sorted(versions, reverse=True):
        if out and out[-1][0] == major and out[-1][1] - out[-1][2] - 1 == minor:
            out[-1] = (major, out[-1][1], out[-1][2] + 1)
        else:
            out.append((major, minor, 0))
    return out


# ---------------------------------------------------------------------------
# Query engine

_CALL_RE = re.compile(r"^\s*CALL\s+([A-Za-z_][\w.]*)\s*\((.*)\)\s*$", re.I | re.S)


class Engine:
    def __init__(self, conn, tx):
        self.conn = conn
        self.tx = tx
        self.server = conn.server

    def run(self, query, params):
        q = query.strip()
        if q.endswith(";"):
            q = q[:-1].rstrip()
        for rx, rule in self.server.script:
            if rx.search(q):
                key = rx.pattern
                times = rule.get("times")
                with self.server.lock:
                    hits = self.server.script_hits[key]
                    self.server.script_hits[key] = hits + 1
                if times is not None and hits >= times:
                    continue
                return self.scripted(rule, params)
        m = _CALL_RE.match(q)
        if m:
            return self.call(m.group(1), m.group(2), params)
        p = QueryParser(q, params)
        if p.kw("RETURN"):
            return self.ret(p)
        if p.kw("UNWIND"):
            return self.unwind(p)
        if p.kw("CREATE"):
            return self.create(p)
        if p.kw("MATCH"):
            return self.match(p)
        p.fail("one of ALTER, CALL, CREATE, DELETE, DETACH, MATCH, MERGE, RETURN, UNWIND, "
               "USE, WITH")

    # -- helpers

    def ctx_eid(self, kind, i):
        if self.server.mode == "memgraph":
            return str(i)
        return "%d:%s:%d" % (kind, self.tx.db.uuid, i)

    def write_check(self):
        if self.server.args.role == "reader":
            raise BoltFailure("Neo.ClientError.Cluster.NotALeader",
                              "No write operations are allowed on this database. "
                              "This is a read only Neo4j instance.")
        if self.tx.mode == "r":
            raise BoltFailure("Neo.ClientError.Statement.AccessMode",
                              "Writing in read access mode not allowed. Attempted write to "
                              "database '%s'" % self.tx.db.name)

    def scripted(self, rule, params):
        if rule.get("delay_ms"):
            self.conn.sleep(rule["delay_ms"] / 1000.0)
        if rule.get("close"):
            self.conn.flush()
            self.conn.kill()
            raise ConnectionGone()
        fail = rule.get("failure")
        if fail and rule.get("failure_on", "run") == "run":
            raise BoltFailure(fail.get("code", "Neo.DatabaseError.General.UnknownError"),
                              fail.get("message", "scripted failure"))
        records = [from_json(r, params) for r in rule.get("records", [])]
        fields = rule.get("fields")
        if fields is None:
            fields = ["c%d" % i for i in range(len(records[0]) if records else 0)]
        summary = dict(rule.get("summary", {}))
        qtype = summary.pop("type", rule.get("type", "r"))
        if qtype in ("w", "rw"):
            self.tx.wrote = True
        pull_failure = None
        if fail:
            pull_failure = (fail.get("code", "Neo.DatabaseError.General.UnknownError"),
                            fail.get("message", "scripted failure"))
        return Result(fields, records, qtype, summary.pop("stats", None),
                      pull_failure=pull_failure, summary=summary)

    # -- RETURN / UNWIND

    def ret(self, p):
        items = p.items()
        limit = self._limit(p)
        if not p.eof():
            p.fail("end of input")
        row = [payload for _, payload, _ in items]
        return Result([c for _, _, c in items], [row][:limit if limit is not None else 1])

    def _limit(self, p):
        if p.kw("LIMIT"):
            n = p.value()
            if not isinstance(n, int) or n < 0:
                raise BoltFailure("Neo.ClientError.Statement.ArgumentError",
                                  "LIMIT must be a non-negative integer")
            return n
        return None

    def unwind(self, p):
        p.ws()
        if p.kw("range"):
            p.expect("(")
            a = p.value()
            p.expect(",")
            b = p.value()
            step = 1
            if p.lit(","):
                step = p.value()
            p.expect(")")
            for x in (a, b, step):
                if not isinstance(x, int) or isinstance(x, bool):
                    raise BoltFailure("Neo.ClientError.Statement.TypeError",
                                      "range() expects integer arguments")
            if step == 0:
                raise BoltFailure("Neo.ClientError.Statement.ArgumentError",
                                  "Step argument to range() can't be 0")
            seq = range(a, b + (1 if step > 0 else -1), step)
            fast = True
        else:
            seq = p.value()
            if seq is None:
                seq = []
            if not isinstance(seq, list):
                seq = [seq]
            fast = False
        if not p.kw("AS"):
            p.fail("AS")
        var = p.ident()
        if not p.kw("RETURN"):
            p.fail("RETURN")
        got = p.ident()
        if got != var:
            raise BoltFailure("Neo.ClientError.Statement.SyntaxError",
                              "Variable `%s` not defined" % got)
        col = var
        if p.kw("AS"):
            col = p.ident()
        limit = self._limit(p)
        if not p.eof():
            p.fail("end of input")
        if limit is not None:
            seq = seq[:limit]
        if fast:
            return Result([col], seq, int_single=True)
        return Result([col], ([v] for v in seq))

    # -- CREATE / MATCH

    def create(self, p):
        var, labels, props = p.node_pattern()
        for k, v in props.items():
            if isinstance(v, (dict, Structure, GNode)):
                raise BoltFailure("Neo.ClientError.Statement.TypeError",
                                  "Property values can only be of primitive types or arrays "
                                  "thereof")
        self.write_check()
        db = self.tx.db
        with db.lock:
            nid = db.next_id
            db.next_id += 1
        props = {k: v for k, v in props.items() if v is not None}
        node = GNode(nid, labels, props, self.ctx_eid(4, nid))
        self.tx.created[nid] = node
        self.tx.wrote = True
        stats = {"nodes-created": 1}
        if props:
            stats["properties-set"] = len(props)
        if labels:
            stats["labels-added"] = len(labels)
        if p.eof():
            return Result([], [], "w", stats)
        if not p.kw("RETURN"):
            p.fail("RETURN")
        if var is None:
            p.fail("a variable bound in CREATE")
        items = p.items(var)
        if not p.eof():
            p.fail("end of input")
        rows = self.project(items, [node])
        return Result([c for _, _, c in items], rows, "rw", stats)

    def match(self, p):
        var, labels, props = p.node_pattern()
        nodes = [n for _, n in sorted(self.tx.view().items())
                 if all(lb in n.labels for lb in labels)
                 and all(n.props.get(k) == v for k, v in props.items())]
        detach = p.kw("DETACH")
        if p.kw("DELETE"):
            got = p.ident()
            if got != var:
                raise BoltFailure("Neo.ClientError.Statement.SyntaxError",
                                  "Variable `%s` not defined" % got)
            if not p.eof():
                p.fail("end of input")
            if nodes:
                self.write_check()
            for n in nodes:
                self.tx.created.pop(n.id, None)
                self.tx.deleted.add(n.id)
            if nodes:
                self.tx.wrote = True
            stats = {"nodes-deleted": len(nodes)} if nodes else {}
            return Result([], [], "w", stats)
        if detach:
            p.fail("DELETE")
        if not p.kw("RETURN"):
            p.fail("RETURN or DELETE")
        if var is None:
            p.fail("a variable bound in MATCH")
        items = p.items(var)
        limit = self._limit(p)
        if not p.eof():
            p.fail("end of input")
        rows = self.project(items, nodes)
        if limit is not None:
            rows = rows[:limit]
        return Result([c for _, _, c in items], rows, "r")

    def project(self, items, nodes):
        counts = [i for i, (kind, _, _) in enumerate(items) if kind == "count"]
        if counts:
            # aggregation: group by the other items, like Cypher's implicit GROUP BY
            keyed = [i for i in range(len(items)) if i not in counts]
            groups = collections.OrderedDict()
            for row in self.project([items[i] for i in keyed], nodes):
                key = json.dumps(render(wire(row, WireCtx(True, True))), sort_keys=True)
                groups.setdefault(key, [row, 0])[1] += 1
            if not keyed and not groups:
                groups[""] = [[], 0]
            out = []
            for row, n in groups.values():
                full, it = [], iter(row)
                for i in range(len(items)):
                    full.append(n if i in counts else next(it))
                out.append(full)
            return out
        rows = []
        for n in nodes:
            row = []
            for kind, payload, _ in items:
                if kind == "node":
                    row.append(n)
                elif kind == "prop":
                    row.append(n.props.get(payload))
                elif kind == "id":
                    row.append(n.id)
                elif kind == "eid":
                    row.append(n.eid)
                elif kind == "labels":
                    row.append(list(n.labels))
                else:
                    row.append(payload)
            rows.append(row)
        return rows

    # -- procedures

    def call(self, name, argtext, params):
        p = QueryParser(argtext, params)
        args = []
        if not p.eof():
            while True:
                args.append(p.value())
                if p.eof():
                    break
                p.expect(",")
        lname = name.lower()

        def want(n):
            if len(args) != n:
                raise BoltFailure("Neo.ClientError.Procedure.ProcedureCallFailed",
                                  "Procedure call provides %d argument(s), %s expects %d"
                                  % (len(args), name, n))

        srv = self.server
        if lname == "test.types":
            want(0)
            return self.types()
        if lname == "test.transient":
            want(2)
            key, n = str(args[0]), int(args[1])
            with srv.lock:
                srv.transient[key] += 1
                attempt = srv.transient[key]
            if attempt <= n:
                raise BoltFailure("Neo.TransientError.Transaction.DeadlockDetected",
                                  "ForsetiClient[transactionId=%d] can't acquire "
                                  "ExclusiveLock{owner=ForsetiClient[transactionId=%d]} on "
                                  "NODE(0), because holders of that lock are waiting for "
                                  "ForsetiClient[transactionId=%d] (test.transient %s %d/%d)"
                                  % (attempt, attempt + 1, attempt, key, attempt, n))
            return Result(["attempt"], [[attempt]])
        if lname == "test.fail":
            want(2)
            raise BoltFailure(str(args[0]), str(args[1]))
        if lname == "test.terminated":
            want(0)
            raise BoltFailure("Neo.TransientError.Transaction.Terminated",
                              "The transaction has been terminated. Retry your operation in a "
                              "new transaction, and you should see a successful result. "
                              "Explicitly terminated by the user.")
        if lname == "test.sleep":
            want(1)
            ms = args[0]
            if not isinstance(ms, (int, float)) or ms < 0:
                raise BoltFailure("Neo.ClientError.Procedure.ProcedureCallFailed",
                                  "test.sleep expects a non-negative number of ms")
            timeout = self.tx.timeout_ms
            if timeout and ms > timeout:
                self.conn.sleep(timeout / 1000.0)
                raise BoltFailure(
                    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
                    "The transaction has been terminated. Retry your operation in a new "
                    "transaction, and you should see a successful result. The transaction "
                    "has not completed within the timeout specified at its start by the "
                    "client. You may want to retry with a longer timeout.")
            self.conn.sleep(ms / 1000.0)
            return Result(["slept"], [[ms]])
        if lname == "test.droponcommit":
            want(0)
            self.tx.drop_on_commit = True
            return Result([], [], "w")
        if lname == "test.closeconnection":
            want(0)
            srv.log({"conn": self.conn.cid, "event": "close-connection"})
            self.conn.flush()
            self.conn.kill()
            raise ConnectionGone()
        if lname == "test.killconnections":
            want(0)
            return Result(["killed"], [[srv.kill_all(except_conn=self.conn)]])
        if lname == "test.connectionid":
            want(0)
            return Result(["connection_id"], [[self.conn.conn_name]])
        if lname == "test.serverstats":
            want(0)
            with srv.lock:
                d = {"connections_total": srv.next_conn, "connections_open": len(srv.conns)}
                for k in ("hellos", "runs", "commits", "rollbacks", "resets"):
                    d[k] = srv.stats[k]
            return Result(["stats"], [[d]])
        if lname == "dbms.components":
            want(0)
            agent = srv.agent(self.conn.version)
            ver = agent.split("/", 1)[1].split()[0].lstrip("v") if "/" in agent else agent
            return Result(["name", "versions", "edition"],
                          [["Neo4j Kernel", [ver], "community"]])
        raise BoltFailure("Neo.ClientError.Procedure.ProcedureNotFound",
                          "There is no procedure with the name `%s` registered for this "
                          "database instance. Please ensure you've spelled the procedure "
                          "name correctly and that the procedure is properly deployed." % name)

    def types(self):
        eid = self.ctx_eid
        alice = GNode(1, ["Person", "Test"], {"name": "Alice", "age": 33}, eid(4, 1))
        bob = GNode(2, ["Person"], {"name": "Bob"}, eid(4, 2))
        knows = GRel(7, 1, 2, "KNOWS", {"since": 2020}, eid(5, 7), eid(4, 1), eid(4, 2))
        path = make_path([alice, bob], [knows])
        dt = datetime.datetime(2024, 2, 29, 12, 34, 56, tzinfo=datetime.timezone(
            datetime.timedelta(hours=1)))
        dtz_utc = int(datetime.datetime(2024, 7, 1, 10, 0, 0,
                                        tzinfo=datetime.timezone.utc).timestamp())
        ldt = (datetime.date(2024, 2, 29) - EPOCH_DATE).days * 86400 + 12 * 3600 + 34 * 60 + 56
        columns = [
            ("node", alice),
            ("relationship", knows),
            ("path", path),
            ("date", Structure(0x44, [(datetime.date(2024, 2, 29) - EPOCH_DATE).days])),
            ("time", Structure(0x54, [(12 * 3600 + 34 * 60 + 56) * 10**9 + 789012345, 3600])),
            ("localtime", Structure(0x74, [(23 * 3600 + 59 * 60 + 59) * 10**9 + 999999999])),
            ("datetime", GDateTime(int(dt.timestamp()), 123456789, offset=3600)),
            ("datetimezoneid", GDateTime(dtz_utc, 0, zone="Europe/Stockholm")),
            ("localdatetime", Structure(0x64, [ldt, 1])),
            ("duration", Structure(0x45, [14, 3, 3723, 500])),
            ("point2d", Structure(0x58, [7203, 1.5, -2.25])),
            ("point3d", Structure(0x59, [4979, 12.5, 55.75, 100.0])),
            ("bytes", b"\x00\x01\xfe\xff"),
            ("list", [1, "two", 3.0, None, [True, False]]),
            ("map", {"a": 1, "b": {"c": [1, 2]}}),
            ("float", 3.141592653589793),
            ("string", "h\u00e9llo w\u00f6rld \u2713 \U0001F600"),
            ("null", None),
            ("boolean", True),
            ("ints", [INT64_MIN, -2147483649, -2147483648, -32769, -32768, -129, -128, -17,
                      -16, 0, 127, 128, 32767, 32768, 2147483647, 2147483648, INT64_MAX]),
        ]
        return Result([c for c, _ in columns], [[v for _, v in columns]])


# ---------------------------------------------------------------------------
# main

def parse_args(argv):
    ap = argparse.ArgumentParser(description="Backplane Bolt test server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", choices=["neo4j", "memgraph"], default="neo4j")
    ap.add_argument("--max-version")
    ap.add_argument("--versions")
    ap.add_argument("--no-manifest", action="store_true")
    ap.add_argument("--reject-handshake", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--router", action="store_true")
    ap.add_argument("--routing-table")
    ap.add_argument("--role", choices=["single", "reader", "writer", "router"],
                    default="single")
    ap.add_argument("--script")
    ap.add_argument("--log")
    ap.add_argument("--log-records", action="store_true")
    ap.add_argument("--auth")
    ap.add_argument("--recv-timeout", type=int, default=0)
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--telemetry", action="store_true")
    ap.add_argument("--ssr", action="store_true")
    ap.add_argument("--server-agent")
    ap.add_argument("--databases")
    ap.add_argument("--noop-every", type=int, default=0)
    ap.add_argument("--max-chunk", type=int, default=65535)
    ap.add_argument("--max-message-size", type=int, default=64 * 1024 * 1024)
    ap.add_argument("--idle-timeout-ms", type=int, default=0)
    ap.add_argument("--no-stdin-watch", action="store_true")
    a = ap.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if a.routing_table and not a.router:
        a.router = True
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    server = Server(args)
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    server.port = listener.getsockname()[1]
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, lambda s, f: server.kill_all())

    def accept_loop():
        while not stop.is_set():
            try:
                sock, addr = listener.accept()
            except OSError:
                if stop.is_set():
                    return
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with server.lock:
                server.next_conn += 1
                cid = server.next_conn
                conn = Connection(server, sock, addr, cid)
                server.conns[cid] = conn
            server.log({"conn": cid, "event": "open", "peer": "%s:%d" % addr[:2],
                        "tls": server.ssl_ctx is not None})

            def run(c=conn):
                try:
                    c.serve()
                finally:
                    with server.lock:
                        server.conns.pop(c.cid, None)

            threading.Thread(target=run, name="bolt-%d" % cid, daemon=True).start()

    threading.Thread(target=accept_loop, name="accept", daemon=True).start()

    if not args.no_stdin_watch:
        try:
            mode = os.fstat(0).st_mode
            watch = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        except OSError:
            watch = False
        if watch:
            def stdin_watch():
                try:
                    while os.read(0, 4096):
                        pass
                except OSError:
                    pass
                stop.set()
            threading.Thread(target=stdin_watch, name="stdin", daemon=True).start()

    sys.stdout.write("LISTENING %d\n" % server.port)
    sys.stdout.flush()
    server.log({"event": "listening", "port": server.port, "mode": server.mode,
                "versions": ["%d.%d" % v for v in server.versions],
                "manifest": server.manifest, "tls": server.ssl_ctx is not None,
                "role": args.role})
    while not stop.wait(0.5):
        pass
    try:
        listener.close()
    except OSError:
        pass
    server.kill_all()
    if server.log_file:
        with server.log_lock:
            server.log_file.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
