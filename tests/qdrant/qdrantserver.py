#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Qdrant-compatible REST server for tests (Python 3 stdlib only).

It speaks the Qdrant v1.19 REST API closely enough that the official
@qdrant/js-client-rest accepts it (see test-js-client.mjs), so that the
project's C client can be tested against it:

  * the response envelope, error texts and status codes of the real server
    (``src/actix/helpers.rs``, ``lib/storage/src/content_manager/errors.rs``);
  * every request body is validated against the operation's schema in the
    vendored ``openapi-v1.19.0.json``; a body that does not validate is
    answered like Qdrant does (400 "Format error in JSON body: …" for a shape
    error, 422 "Validation error in JSON body: […]" for a range error) *and*
    recorded as a schema violation (``GET /__test/violations``);
  * exact brute-force scoring for Cosine, Dot, Euclid and Manhattan;
  * filters (must/should/must_not/min_should, match value/any/except/text,
    range, values_count, geo, is_empty, is_null, has_id, has_vector, nested);
  * point ids are u64 (carried exactly: Python ints are unbounded) or UUIDs.

Test hooks (never require the api key):
  GET  /__test/violations   list of schema violations seen so far
  GET  /__test/requests     request log (api-key / authorization redacted;
                            "connection" numbers the TCP connection)
  GET  /__test/faults       pending injected faults
  POST /__test/faults       {"path_regex", "method", "kind", "count",
                             "retry_after", "stall_ms"}; kind is one of
                             stall, 429, 503, 500, drop, reset
  DELETE /__test/faults     drop pending faults
  POST /__test/reset        clear everything (or {"only": [...]})

Usage: qdrantserver.py --port 0 [--host 127.0.0.1] [--api-key KEY]
                       [--version 1.19.0] [--validate-requests |
                       --no-validate-requests] [--log FILE.jsonl]
                       [--ignore-stdin] [--max-request-size-mb 32]
                       [--idle-timeout 300] [--spec openapi.json]
Prints ``LISTENING <port>`` once bound; serves until SIGTERM/SIGINT or EOF on
stdin (unless --ignore-stdin), then exits 0.

Known differences from a real Qdrant: no HNSW (exact search only), no sparse
or multi-vectors, no server-side inference, no prefetch/fusion/formula/
order_by/discover/context queries, no clustering or shard keys; snapshots
are small JSON manifests kept in memory.  Unimplemented operations answer
501 with a text naming the operation.
"""

import argparse
import array
import bisect
import datetime
import gc
import hashlib
import heapq
import hmac
import http.server
import json
import math
import operator
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.join(HERE, "openapi-v1.19.0.json")

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered with Qdrant's envelope (or plain text)."""

    def __init__(self, status, message, headers=None, plain=False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.plain = plain


def bad_input(desc):
    return ApiError(400, "Wrong input: " + desc)


def bad_request(desc):
    return ApiError(400, "Bad request: " + desc)


def not_found(desc):
    return ApiError(404, "Not found: " + desc)


def format_error(msg):
    return ApiError(400, "Format error in JSON body: " + msg)


def unsupported(what):
    return ApiError(400, "Bad request: %s is not supported by the Backplane "
                    "Qdrant test server" % what)


def collection_not_found(name):
    return not_found("Collection `%s` doesn't exist!" % name)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

_F32 = struct.Struct("<f")


def f32(x):
    """Round a Python float to the nearest IEEE single."""
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def f32_short(x):
    """The double holding the shortest decimal that round-trips through f32.

    serde prints an f32 with its shortest representation (0.9643651, not
    0.9643651247024536); json.dumps of the returned float prints the same
    digits.
    """
    x = f32(x)
    if x != x or x in (math.inf, -math.inf) or x == 0.0:
        return x
    for p in (6, 7, 8, 9):
        s = "%.*g" % (p, x)
        v = float(s)
        if f32(v) == x:
            return v
    return x


_HYPH = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# The four textual forms the Rust `uuid` crate parses.
UUID_RE = re.compile(r"^(?:%s|[0-9a-fA-F]{32}|\{%s\}|urn:uuid:%s)$" % (_HYPH, _HYPH, _HYPH))


def parse_uuid(s):
    if type(s) is str and UUID_RE.match(s):
        return str(uuid.UUID(s))
    return None


def _id_text(v):
    if type(v) is str:
        return v
    return json.dumps(v)


def parse_point_id(v):
    """A point id from JSON: an int in [0, 2^64-1] or a UUID (normalized)."""
    if type(v) is int and 0 <= v <= U64_MAX:
        return v
    u = parse_uuid(v)
    if u is not None:
        return u
    raise format_error("value %s is not a valid point ID, valid values are "
                       "either an unsigned integer or a UUID" % _id_text(v))


def id_sort_key(pid):
    # Qdrant orders NumId before Uuid, each by value.
    if type(pid) is int:
        return (0, pid)
    return (1, uuid.UUID(pid).int)


def json_type_desc(x):
    """serde's `Unexpected` rendering of a JSON value."""
    if x is None:
        return "null"
    t = type(x)
    if t is bool:
        return "boolean `%s`" % ("true" if x else "false")
    if t is int:
        return "integer `%d`" % x
    if t is float:
        return "floating point `%s`" % repr(x)
    if t is str:
        return 'string "%s"' % x
    if t is list:
        return "sequence"
    return "map"


def path_text(rev_path, root="$"):
    out = root
    for seg in reversed(rev_path):
        if type(seg) is int:
            out += "[%d]" % seg
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", seg):
            out += ("." if out else "") + seg
        else:
            out += "[%s]" % json.dumps(seg)
    return out


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------------
# A compact OpenAPI 3.0 schema validator, compiled to closures.
#
# A compiled validator is fn(value, ve) -> None | SErr.  An SErr is a *shape*
# error: serde would fail to deserialize the value (HTTP 400).  Range and
# length errors that Qdrant's `validator` crate reports after deserialization
# (HTTP 422) are appended to the list `ve` as [rev_path, message, kind];
# kind "validate" rejects, kind "soft" is only recorded (uniqueItems, which
# Qdrant silently folds into a set).
# ---------------------------------------------------------------------------


class SErr:
    __slots__ = ("msg", "path")

    def __init__(self, msg, path=None):
        self.msg = msg
        self.path = path if path is not None else []


_IGNORED_KEYS = {"description", "example", "examples", "default", "deprecated",
                 "title", "readOnly", "writeOnly", "externalDocs", "xml"}

_INT_FORMATS = {
    # format: (lo, hi, rust name)
    "uint64": (0, U64_MAX, "u64"),
    "uint": (0, U64_MAX, "usize"),
    "uint32": (0, (1 << 32) - 1, "u32"),
    "uint16": (0, (1 << 16) - 1, "u16"),
    "uint8": (0, 255, "u8"),
    "int64": (I64_MIN, I64_MAX, "i64"),
    "int32": (-(1 << 31), (1 << 31) - 1, "i32"),
    None: (I64_MIN, U64_MAX, "an integer"),
}

_NUMTYPES = {int, float}


def _child(fn, x, seg, ve):
    n = len(ve)
    e = fn(x, ve)
    if e is not None:
        e.path.append(seg)
        return e
    if len(ve) != n:
        for i in range(n, len(ve)):
            ve[i][0].append(seg)
    return None


def _accept(x, ve):
    return None


def _null_only(x, ve):
    if x is None:
        return None
    return SErr("invalid type: %s, expected unit" % json_type_desc(x))


def _fmt_num(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _range_msg(x, lo, hi):
    if lo is not None and hi is not None:
        m = "must be from %s to %s" % (_fmt_num(lo), _fmt_num(hi))
    elif lo is not None:
        m = "must be %s or larger" % _fmt_num(lo)
    else:
        m = "must be %s or smaller" % _fmt_num(hi)
    return "value %s invalid, %s" % (json.dumps(x), m)


class SchemaCompiler:
    def __init__(self, spec):
        self.spec = spec
        self.schemas = spec.get("components", {}).get("schemas", {})
        self.done = {}
        self.cells = {}
        self.inprogress = set()

    def named(self, name):
        if name in self.done:
            return self.done[name]
        if name in self.inprogress:
            cell = self.cells[name]
            return lambda x, ve: cell[0](x, ve)
        self.inprogress.add(name)
        cell = self.cells[name] = [None]
        fn = self.compile(self.schemas[name], name)
        cell[0] = fn
        self.done[name] = fn
        self.inprogress.discard(name)
        return fn

    def compile(self, schema, name=None):
        if not isinstance(schema, dict):
            return _accept
        nullable = bool(schema.get("nullable"))
        if "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/components/schemas/"):
                return _accept
            fn = self.named(ref.rsplit("/", 1)[1])
            if nullable:
                inner = fn
                return lambda x, ve: None if x is None else inner(x, ve)
            return fn
        keys = set(schema) - _IGNORED_KEYS
        if not keys:
            return _accept
        if keys == {"nullable"}:
            # `anyOf: [X, {"nullable": true}]` is how Qdrant's generator says
            # Option<X>; the bare branch stands for null only.
            return _null_only if nullable else _accept
        checks = []
        for comb in ("anyOf", "oneOf"):
            if comb in schema:
                branches = [self.compile(b, name) for b in schema[comb]]
                checks.append(self._anyof(branches, name, nullable, schema[comb]))
        if "allOf" in schema:
            parts = [self.compile(b, name) for b in schema["allOf"]]
            checks.append(self._allof(parts))
        typ = schema.get("type")
        if typ is None and ("properties" in schema or "required" in schema or
                            "additionalProperties" in schema):
            typ = "object"
        if typ is None and "items" in schema:
            typ = "array"
        if typ == "object":
            checks.append(self._object(schema, name, nullable))
        elif typ == "array":
            checks.append(self._array(schema, name, nullable))
        elif typ == "integer":
            checks.append(self._integer(schema, nullable))
        elif typ == "number":
            checks.append(self._number(schema, nullable))
        elif typ == "string":
            checks.append(self._string(schema, nullable))
        elif typ == "boolean":
            checks.append(self._boolean(nullable))
        elif "enum" in schema:
            checks.append(self._enum_only(schema["enum"], nullable))
        if not checks:
            return _accept
        if len(checks) == 1:
            return checks[0]

        def all_checks(x, ve):
            for c in checks:
                e = c(x, ve)
                if e is not None:
                    return e
            return None
        return all_checks

    # -- combinators ---------------------------------------------------------

    def _anyof(self, branches, name, nullable, raw=None):
        enum_name = name or "enum"
        is_point_id = name == "ExtendedPointId"
        option_of = None
        if raw is not None and len(raw) == 2:
            nulls = [i for i, b in enumerate(raw) if isinstance(b, dict) and
                     set(b) - _IGNORED_KEYS == {"nullable"}]
            if len(nulls) == 1:
                option_of = branches[1 - nulls[0]]

        def anyof(x, ve):
            if x is None and nullable:
                return None
            if option_of is not None and x is not None:
                # Option<X>: the error is X's.
                return option_of(x, ve)
            errs = []
            for b in branches:
                sub = []
                e = b(x, sub)
                if e is None:
                    ve.extend(sub)
                    return None
                errs.append(e)
            if is_point_id:
                return SErr("value %s is not a valid point ID, valid values are "
                            "either an unsigned integer or a UUID" % _id_text(x))
            best = max(errs, key=lambda e: len(e.path))
            if best.path:
                return best
            if type(x) in (int, str):
                for e in errs:
                    if e.msg.startswith("value ") and "point ID" in e.msg:
                        return e
            return SErr("data did not match any variant of untagged enum %s" % enum_name)
        return anyof

    def _allof(self, parts):
        def allof(x, ve):
            for p in parts:
                e = p(x, ve)
                if e is not None:
                    return e
            return None
        return allof

    # -- types ---------------------------------------------------------------

    def _object(self, schema, name, nullable):
        props = {k: self.compile(v) for k, v in schema.get("properties", {}).items()}
        required = list(schema.get("required", []))
        addl = schema.get("additionalProperties", None)
        if addl is False:
            addl_fn = False
        elif isinstance(addl, dict):
            addl_fn = self.compile(addl)
        else:
            addl_fn = None
        expected = ("struct %s" % name) if name else "a map"
        known = ", ".join("`%s`" % k for k in schema.get("properties", {}))

        def obj(x, ve):
            if type(x) is not dict:
                if x is None and nullable:
                    return None
                return SErr("invalid type: %s, expected %s" % (json_type_desc(x), expected))
            for k, v in x.items():
                f = props.get(k)
                if f is not None:
                    e = _child(f, v, k, ve)
                    if e is not None:
                        return e
                elif addl_fn is False:
                    return SErr("unknown field `%s`, expected one of %s" % (k, known))
                elif addl_fn is not None:
                    e = _child(addl_fn, v, k, ve)
                    if e is not None:
                        return e
            for r in required:
                if r not in x:
                    return SErr("missing field `%s`" % r)
            return None
        return obj

    def _array(self, schema, name, nullable):
        items = schema.get("items")
        item_fn = self.compile(items) if items is not None else None
        # Fast path for dense vectors: items are plain numbers.
        fast_numbers = (isinstance(items, dict) and items.get("type") == "number"
                        and not (set(items) - _IGNORED_KEYS - {"type", "format"}))
        min_items = schema.get("minItems")
        max_items = schema.get("maxItems")
        unique = schema.get("uniqueItems", False)

        def arr(x, ve):
            if type(x) is not list:
                if x is None and nullable:
                    return None
                return SErr("invalid type: %s, expected a sequence" % json_type_desc(x))
            if fast_numbers:
                if x and not set(map(type, x)) <= _NUMTYPES:
                    for i, it in enumerate(x):
                        if type(it) not in _NUMTYPES:
                            return SErr("invalid type: %s, expected f32" % json_type_desc(it), [i])
            elif item_fn is not None:
                for i, it in enumerate(x):
                    e = _child(item_fn, it, i, ve)
                    if e is not None:
                        return e
            if min_items is not None and len(x) < min_items:
                ve.append([[], "must contain at least %d items" % min_items, "validate"])
            if max_items is not None and len(x) > max_items:
                ve.append([[], "must contain at most %d items" % max_items, "validate"])
            if unique and len(x) > 1:
                try:
                    seen = set()
                    for it in x:
                        k = (type(it), it) if not isinstance(it, (list, dict)) else json.dumps(it, sort_keys=True)
                        if k in seen:
                            ve.append([[], "items are not unique (uniqueItems)", "soft"])
                            break
                        seen.add(k)
                except TypeError:
                    pass
            return None
        return arr

    def _integer(self, schema, nullable):
        lo, hi, rust = _INT_FORMATS.get(schema.get("format"), _INT_FORMATS[None])
        vmin = schema.get("minimum")
        vmax = schema.get("maximum")
        if vmin is not None and vmin <= lo:
            vmin = None
        if vmax is not None and vmax >= hi:
            vmax = None

        def integer(x, ve):
            if type(x) is not int:
                if x is None and nullable:
                    return None
                return SErr("invalid type: %s, expected %s" % (json_type_desc(x), rust))
            if x < lo or x > hi:
                return SErr("invalid value: integer `%d`, expected %s" % (x, rust))
            if (vmin is not None and x < vmin) or (vmax is not None and x > vmax):
                ve.append([[], _range_msg(x, vmin, vmax), "validate"])
            return None
        return integer

    def _number(self, schema, nullable):
        rust = "f32" if schema.get("format") == "float" else "f64"
        vmin = schema.get("minimum")
        vmax = schema.get("maximum")

        def number(x, ve):
            t = type(x)
            if t is not float and t is not int:
                if x is None and nullable:
                    return None
                return SErr("invalid type: %s, expected %s" % (json_type_desc(x), rust))
            if (vmin is not None and x < vmin) or (vmax is not None and x > vmax):
                ve.append([[], _range_msg(x, vmin, vmax), "validate"])
            return None
        return number

    def _string(self, schema, nullable):
        enum = schema.get("enum")
        enum_set = set(enum) if enum else None
        fmt = schema.get("format")
        min_len = schema.get("minLength")
        max_len = schema.get("maxLength")
        if enum:
            expected = ("one of " + ", ".join("`%s`" % e for e in enum)) if len(enum) > 1 else "`%s`" % enum[0]

        def string(x, ve):
            if type(x) is not str:
                if x is None and nullable:
                    return None
                return SErr("invalid type: %s, expected a string" % json_type_desc(x))
            if enum_set is not None and x not in enum_set:
                return SErr("unknown variant `%s`, expected %s" % (x, expected))
            if fmt == "uuid" and not UUID_RE.match(x):
                return SErr("UUID parsing failed: invalid UUID `%s`" % x)
            if fmt == "date-time" and _parse_dt(x) is None:
                return SErr("input contains invalid characters: %s" % json.dumps(x))
            if min_len is not None and len(x) < min_len:
                ve.append([[], "value %s invalid, must be at least %d characters" % (json.dumps(x), min_len), "validate"])
            if max_len is not None and len(x) > max_len:
                ve.append([[], "value %s invalid, must be at most %d characters" % (json.dumps(x), max_len), "validate"])
            return None
        return string

    def _boolean(self, nullable):
        def boolean(x, ve):
            if type(x) is not bool:
                if x is None and nullable:
                    return None
                return SErr("invalid type: %s, expected a boolean" % json_type_desc(x))
            return None
        return boolean

    def _enum_only(self, enum, nullable):
        def enum_check(x, ve):
            if x is None and nullable:
                return None
            if x not in enum:
                return SErr("unknown variant `%s`" % _id_text(x))
            return None
        return enum_check


def validate(fn, value):
    """Run a compiled validator. Returns (shape_error | None, value_errors)."""
    ve = []
    e = fn(value, ve)
    return e, ve


# ---------------------------------------------------------------------------
# Routing derived from the spec
# ---------------------------------------------------------------------------

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class Route:
    __slots__ = ("method", "template", "regex", "params", "op", "body_fn",
                 "query_fns", "response_fns", "literal", "in_spec")


def build_routes(spec, compiler):
    routes = []

    def add(method, template, op, in_spec=True):
        r = Route()
        r.method = method.upper()
        r.template = template
        segs = template.strip("/").split("/") if template != "/" else []
        parts = []
        params = []
        literal = 0
        for s in segs:
            m = re.match(r"^\{(.+)\}$", s)
            if m:
                params.append(m.group(1))
                parts.append("([^/]+)")
            else:
                literal += 1
                parts.append(re.escape(s))
        r.regex = re.compile("^/" + "/".join(parts) + "$")
        r.params = params
        r.literal = literal
        r.op = op.get("operationId")
        r.in_spec = in_spec
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        r.body_fn = compiler.compile(body) if body is not None else None
        if op.get("x-raw-body"):
            r.body_fn = _accept
        r.query_fns = {}
        for p in op.get("parameters", []):
            if p.get("in") == "query":
                r.query_fns[p["name"]] = compiler.compile(p.get("schema", {}))
        r.response_fns = {}
        for code, resp in op.get("responses", {}).items():
            sch = resp.get("content", {}).get("application/json", {}).get("schema")
            if sch is not None and code.isdigit():
                r.response_fns[int(code)] = compiler.compile(sch)
        routes.append(r)

    for template, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, dict):
                add(method, template, op)
    # Removed from the v1.19.0 spec but still routed by the real server
    # (src/actix/api/search_api.rs); recorded as a violation when used.
    add("post", "/collections/{collection_name}/points/search",
        {"operationId": "search_points", "x-raw-body": True}, in_spec=False)
    routes.sort(key=lambda r: -r.literal)
    return routes


# ---------------------------------------------------------------------------
# JSON path over payloads (lib/segment/src/json_path)
# ---------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r'(?:"((?:[^"\\]|\\.)*)"|([^.\[\]"]+))((?:\[\d*\])*)')


def parse_json_path(text):
    if type(text) is not str or not text:
        raise bad_input("Invalid JSON path: %s" % json.dumps(text))
    tokens = []
    pos = 0
    first = True
    while pos < len(text):
        if not first:
            if text[pos] != ".":
                raise bad_input("Invalid JSON path: %s" % json.dumps(text))
            pos += 1
        m = _PATH_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise bad_input("Invalid JSON path: %s" % json.dumps(text))
        key = m.group(1) if m.group(1) is not None else m.group(2)
        tokens.append(("key", key))
        for idx in re.findall(r"\[(\d*)\]", m.group(3)):
            tokens.append(("all", None) if idx == "" else ("index", int(idx)))
        pos = m.end()
        first = False
    return tokens


def json_path_get(payload, tokens):
    """Values at a path; intermediate arrays need `[]`, leaf arrays kept."""
    cur = [payload]
    for kind, arg in tokens:
        nxt = []
        for v in cur:
            if kind == "key":
                if type(v) is dict and arg in v:
                    nxt.append(v[arg])
            elif kind == "index":
                if type(v) is list and arg < len(v):
                    nxt.append(v[arg])
            else:
                if type(v) is list:
                    nxt.extend(v)
        cur = nxt
        if not cur:
            break
    return cur


def _path_simple_keys(tokens):
    if all(k == "key" for k, _ in tokens):
        return [a for _, a in tokens]
    return None


def payload_select(payload, with_payload):
    """Apply a WithPayloadInterface; returns the payload or None (omit)."""
    if with_payload is None or with_payload is False:
        return None
    if with_payload is True:
        return payload
    if type(with_payload) is list:
        include, exclude = with_payload, None
    elif type(with_payload) is dict:
        include, exclude = with_payload.get("include"), with_payload.get("exclude")
    else:
        return payload
    if include is not None:
        out = {}
        for path in include:
            keys = _path_simple_keys(parse_json_path(path))
            if keys is None:
                continue
            src = payload
            ok = True
            for k in keys:
                if type(src) is dict and k in src:
                    src = src[k]
                else:
                    ok = False
                    break
            if not ok:
                continue
            dst = out
            for k in keys[:-1]:
                dst = dst.setdefault(k, {})
            dst[keys[-1]] = src
        return out
    out = json.loads(json.dumps(payload))
    for path in exclude or []:
        keys = _path_simple_keys(parse_json_path(path))
        if keys:
            _remove_path(out, keys)
    return out


def _remove_path(obj, keys):
    for k in keys[:-1]:
        if type(obj) is not dict or k not in obj:
            return
        obj = obj[k]
    if type(obj) is dict:
        obj.pop(keys[-1], None)


# ---------------------------------------------------------------------------
# Filters (lib/segment/src/payload_storage/condition_checker.rs)
# ---------------------------------------------------------------------------


def _as_list(v):
    if v is None:
        return []
    if type(v) is list:
        return v
    return [v]


def _parse_dt(s):
    if type(s) is not str:
        return None
    t = s.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    try:
        d = datetime.datetime.fromisoformat(t)
    except ValueError:
        try:
            d = datetime.datetime.fromisoformat(t.replace(" ", "T"))
        except ValueError:
            return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d


def _haversine_m(lon1, lat1, lon2, lat2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def _in_ring(lon, lat, pts):
    inside = False
    n = len(pts)
    j = n - 1
    for i in range(n):
        xi, yi = pts[i]["lon"], pts[i]["lat"]
        xj, yj = pts[j]["lon"], pts[j]["lat"]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / ((yj - yi) or 1e-300) + xi:
            inside = not inside
        j = i
    return inside


def _geo_of(v):
    if type(v) is dict:
        lon, lat = v.get("lon"), v.get("lat")
        if type(lon) in (int, float) and type(lat) in (int, float):
            return lon, lat
    return None


class FilterCompiler:
    """Turns a Filter JSON object into a predicate over Point objects."""

    def __init__(self, collection):
        self.collection = collection

    def compile_filter(self, f):
        if f is None:
            return None
        if type(f) is not dict:
            raise format_error("invalid type: %s, expected struct Filter" % json_type_desc(f))
        for k in f:
            if k not in ("must", "should", "must_not", "min_should"):
                raise format_error("unknown field `%s`, expected one of `should`, "
                                   "`min_should`, `must`, `must_not`" % k)
        must = [self.compile_condition(c) for c in _as_list(f.get("must"))]
        should = [self.compile_condition(c) for c in _as_list(f.get("should"))]
        must_not = [self.compile_condition(c) for c in _as_list(f.get("must_not"))]
        ms = f.get("min_should")
        min_conds, min_count = None, 0
        if ms is not None:
            if type(ms) is not dict or "conditions" not in ms or "min_count" not in ms:
                raise format_error("invalid type: %s, expected struct MinShould" % json_type_desc(ms))
            min_conds = [self.compile_condition(c) for c in _as_list(ms["conditions"])]
            min_count = ms["min_count"]

        def pred(p, payload):
            for c in must:
                if not c(p, payload):
                    return False
            if should:
                for c in should:
                    if c(p, payload):
                        break
                else:
                    return False
            for c in must_not:
                if c(p, payload):
                    return False
            if min_conds is not None:
                n = 0
                for c in min_conds:
                    if c(p, payload):
                        n += 1
                if n < min_count:
                    return False
            return True
        return pred

    def compile_top(self, f):
        pred = self.compile_filter(f)
        if pred is None:
            return None
        return lambda p: pred(p, p.payload)

    def compile_condition(self, c):
        if type(c) is not dict:
            raise format_error("data did not match any variant of untagged enum Condition")
        if "key" in c:
            return self._field(c)
        if "is_empty" in c:
            key = (c["is_empty"] or {}).get("key") if type(c["is_empty"]) is dict else None
            return self._field({"key": key, "is_empty": True})
        if "is_null" in c:
            key = (c["is_null"] or {}).get("key") if type(c["is_null"]) is dict else None
            return self._field({"key": key, "is_null": True})
        if "has_id" in c:
            ids = c["has_id"]
            if type(ids) is not list:
                raise format_error("invalid type: %s, expected a sequence" % json_type_desc(ids))
            idset = {parse_point_id(i) for i in ids}
            return lambda p, payload: p.id in idset
        if "has_vector" in c:
            name = c["has_vector"]
            if type(name) is not str:
                raise format_error("invalid type: %s, expected a string" % json_type_desc(name))
            return lambda p, payload: name in p.vectors
        if "nested" in c:
            n = c["nested"]
            if type(n) is not dict or "key" not in n or "filter" not in n:
                raise format_error("data did not match any variant of untagged enum Condition")
            tokens = parse_json_path(n["key"])
            if not tokens or tokens[-1][0] != "all":
                tokens = tokens + [("all", None)]
            inner = self.compile_filter(n["filter"])

            def nested(p, payload):
                for el in json_path_get(payload, tokens):
                    if type(el) is dict and inner(p, el):
                        return True
                return False
            return nested
        if "slice" in c:
            raise unsupported("the `slice` condition")
        if set(c) <= {"must", "should", "must_not", "min_should"}:
            return self.compile_filter(c)
        raise format_error("data did not match any variant of untagged enum Condition")

    def _value_checker(self, c):
        """(check_match(value) -> bool) for match/range/geo; None if absent."""
        checks = []
        m = c.get("match")
        if m is not None:
            checks.append(self._match(m))
        r = c.get("range")
        if r is not None:
            checks.append(self._range(r))
        g = c.get("geo_bounding_box")
        if g is not None:
            try:
                tl, br = g["top_left"], g["bottom_right"]
                min_lon, max_lat = float(tl["lon"]), float(tl["lat"])
                max_lon, min_lat = float(br["lon"]), float(br["lat"])
            except (KeyError, TypeError, ValueError):
                raise format_error("invalid GeoBoundingBox")

            def bbox(v):
                pt = _geo_of(v)
                if pt is None:
                    return False
                lon, lat = pt
                if not (min_lat <= lat <= max_lat):
                    return False
                if min_lon <= max_lon:
                    return min_lon <= lon <= max_lon
                return lon >= min_lon or lon <= max_lon
            checks.append(bbox)
        g = c.get("geo_radius")
        if g is not None:
            try:
                clon, clat = float(g["center"]["lon"]), float(g["center"]["lat"])
                radius = float(g["radius"])
            except (KeyError, TypeError, ValueError):
                raise format_error("invalid GeoRadius")

            def rad(v):
                pt = _geo_of(v)
                return pt is not None and _haversine_m(clon, clat, pt[0], pt[1]) < radius
            checks.append(rad)
        g = c.get("geo_polygon")
        if g is not None:
            try:
                ext = g["exterior"]["points"]
                ints = [i["points"] for i in (g.get("interiors") or [])]
            except (KeyError, TypeError):
                raise format_error("invalid GeoPolygon")

            def poly(v):
                pt = _geo_of(v)
                if pt is None or not _in_ring(pt[0], pt[1], ext):
                    return False
                return not any(_in_ring(pt[0], pt[1], i) for i in ints)
            checks.append(poly)
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        return lambda v: any(ch(v) for ch in checks)

    def _match(self, m):
        if type(m) is not dict:
            raise format_error("data did not match any variant of untagged enum Match")
        if "value" in m:
            val = m["value"]
            tv = type(val)
            if tv not in (str, int, bool):
                raise format_error("data did not match any variant of untagged enum Match")
            if tv is int and not (I64_MIN <= val <= I64_MAX):
                raise format_error("data did not match any variant of untagged enum Match")
            return lambda v: type(v) is tv and v == val
        if "any" in m or "except" in m:
            neg = "except" in m
            lst = m["except"] if neg else m["any"]
            if type(lst) is not list:
                raise format_error("data did not match any variant of untagged enum Match")
            strs = {x for x in lst if type(x) is str}
            ints = {x for x in lst if type(x) is int}
            if len(strs) + len(ints) != len(set(map(lambda x: (type(x), x), lst))) and lst:
                raise format_error("data did not match any variant of untagged enum AnyVariants")
            if strs and ints:
                raise format_error("data did not match any variant of untagged enum AnyVariants")
            if not neg:
                def any_match(v):
                    t = type(v)
                    if t is str:
                        return v in strs
                    if t is int:
                        return v in ints
                    return False
                return any_match

            def except_match(v):
                t = type(v)
                if v is None:
                    return False
                if t is str:
                    return (v not in strs) if (strs or not ints) else True
                if t is int:
                    return (v not in ints) if (ints or not strs) else True
                return True
            return except_match
        if "text" in m or "phrase" in m:
            text = m.get("text", m.get("phrase"))
            if type(text) is not str:
                raise format_error("invalid type: %s, expected a string" % json_type_desc(text))
            return lambda v: type(v) is str and text in v
        if "text_any" in m:
            toks = m["text_any"].split() if type(m["text_any"]) is str else None
            if toks is None:
                raise format_error("invalid type, expected a string")
            return lambda v: type(v) is str and any(t in v for t in toks)
        if "prefix" in m:
            pre = m["prefix"]
            if type(pre) is not str:
                raise format_error("invalid type, expected a string")
            return lambda v: type(v) is str and v.startswith(pre)
        raise format_error("data did not match any variant of untagged enum Match")

    def _range(self, r):
        if type(r) is not dict:
            raise format_error("data did not match any variant of untagged enum RangeInterface")
        bounds = {k: r.get(k) for k in ("lt", "gt", "gte", "lte") if r.get(k) is not None}
        if all(type(b) in (int, float) for b in bounds.values()):
            lt, gt, gte, lte = r.get("lt"), r.get("gt"), r.get("gte"), r.get("lte")

            def num_range(v):
                if type(v) not in (int, float):
                    return False
                if lt is not None and not v < lt:
                    return False
                if gt is not None and not v > gt:
                    return False
                if gte is not None and not v >= gte:
                    return False
                if lte is not None and not v <= lte:
                    return False
                return True
            return num_range
        if all(type(b) is str for b in bounds.values()):
            parsed = {}
            for k, b in bounds.items():
                d = _parse_dt(b)
                if d is None:
                    raise format_error("data did not match any variant of untagged enum RangeInterface")
                parsed[k] = d

            def dt_range(v):
                d = _parse_dt(v)
                if d is None:
                    return False
                if "lt" in parsed and not d < parsed["lt"]:
                    return False
                if "gt" in parsed and not d > parsed["gt"]:
                    return False
                if "gte" in parsed and not d >= parsed["gte"]:
                    return False
                if "lte" in parsed and not d <= parsed["lte"]:
                    return False
                return True
            return dt_range
        raise format_error("data did not match any variant of untagged enum RangeInterface")

    def _field(self, c):
        if type(c.get("key")) is not str:
            raise format_error("missing field `key`")
        tokens = parse_json_path(c["key"])
        vc = c.get("values_count")
        is_empty = c.get("is_empty")
        is_null = c.get("is_null")
        checker = self._value_checker(c)
        if checker is None and vc is None and is_empty is None and is_null is None:
            raise ApiError(422, "Validation error in JSON body: [filter: At least one "
                           "field condition must be specified]")
        if vc is not None:
            if type(vc) is not dict:
                raise format_error("invalid type: %s, expected struct ValuesCount" % json_type_desc(vc))
            vlt, vgt, vgte, vlte = vc.get("lt"), vc.get("gt"), vc.get("gte"), vc.get("lte")

            def count_ok(n):
                return ((vlt is None or n < vlt) and (vgt is None or n > vgt) and
                        (vgte is None or n >= vgte) and (vlte is None or n <= vlte))

        def check_value(v):
            if vc is not None:
                return count_ok(len(v) if type(v) is list else 1)
            if is_empty is not None:
                if v is None:
                    return is_empty
                if type(v) is list:
                    return (len(v) == 0) == is_empty
                return not is_empty
            if is_null is not None:
                if v is None:
                    return is_null
                if type(v) is list:
                    return any(x is None for x in v) == is_null
                return not is_null
            if type(v) is list:
                return any(checker(x) for x in v)
            return checker(v)

        if is_empty is not None:
            empty_result = bool(is_empty)
        elif is_null is not None:
            empty_result = not is_null
        elif vc is not None:
            empty_result = count_ok(0)
        else:
            empty_result = False

        def field(p, payload):
            values = json_path_get(payload, tokens)
            if not values:
                return empty_result
            for v in values:
                if check_value(v):
                    return True
            return False
        return field


# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------

DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
_mul = operator.mul
_sub = operator.sub


def _dot(a, b):
    return sum(map(_mul, a, b))


def _manhattan(a, b):
    return sum(map(abs, map(_sub, a, b)))


SCORERS = {
    # distance: (raw score fn, larger is better)
    "Cosine": (_dot, True),
    "Dot": (_dot, True),
    "Euclid": (math.dist, False),
    "Manhattan": (_manhattan, False),
}


def preprocess(distance, vec):
    """Store/query form of a vector: f32, unit length for Cosine."""
    arr = array.array("f", vec)
    if not math.isfinite(sum(arr)):
        raise bad_input("Vector contains NaN or infinite values")
    if distance == "Cosine":
        n = math.hypot(*arr)
        if n > 1.1920929e-07:
            arr = array.array("f", map((1.0 / n).__mul__, arr))
    return arr


def _is_inference_object(v):
    """Document / Image / InferenceObject: {"text"|"image"|"object", "model"}."""
    return type(v.get("model")) is str and ("text" in v or "image" in v or "object" in v)


class Point:
    __slots__ = ("id", "key", "vectors", "payload", "version")

    def __init__(self, pid, vectors, payload, version):
        self.id = pid
        self.key = id_sort_key(pid)
        self.vectors = vectors
        self.payload = payload
        self.version = version


DEFAULT_HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                "max_indexing_threads": 0, "on_disk": False}
DEFAULT_OPTIMIZERS = {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                      "default_segment_number": 0, "max_segment_size": None,
                      "memmap_threshold": None, "indexing_threshold": 10000,
                      "flush_interval_sec": 5, "max_optimization_threads": None}
DEFAULT_WAL = {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1}


def _merge(base, diff):
    out = dict(base)
    for k, v in (diff or {}).items():
        if v is not None:
            out[k] = v
    return out


class Collection:
    def __init__(self, name, body):
        self.name = name
        vectors = body.get("vectors")
        # name -> VectorParams dict; "" is the unnamed default vector.
        self.unnamed = False
        self.vectors = {}
        if type(vectors) is dict and "size" in vectors and "distance" in vectors:
            self.unnamed = True
            self.vectors[""] = vectors
        elif type(vectors) is dict:
            self.vectors = dict(vectors)
        elif vectors is not None:
            raise format_error("data did not match any variant of untagged enum VectorsConfig")
        for vname, vp in self.vectors.items():
            if type(vp) is not dict or "size" not in vp or "distance" not in vp:
                raise format_error("missing field `size`" if type(vp) is dict and "size" not in vp
                                   else "missing field `distance`")
            if vp["distance"] not in DISTANCES:
                raise format_error("unknown variant `%s`, expected one of `Cosine`, `Euclid`, "
                                   "`Dot`, `Manhattan`" % vp["distance"])
            if type(vp["size"]) is not int or vp["size"] < 1:
                field = "vectors.size" if self.unnamed else "vectors.%s.size" % vname
                raise ApiError(422, "Validation error in JSON body: [%s: value %s invalid, "
                               "must be 1 or larger]" % (field, json.dumps(vp["size"])))
        self.params = {k: v for k, v in {
            "vectors": vectors if vectors is not None else {},
            "shard_number": body.get("shard_number") or 1,
            "sharding_method": body.get("sharding_method"),
            "replication_factor": body.get("replication_factor") or 1,
            "write_consistency_factor": body.get("write_consistency_factor") or 1,
            "on_disk_payload": body.get("on_disk_payload") if body.get("on_disk_payload") is not None else True,
            "sparse_vectors": body.get("sparse_vectors"),
        }.items() if v is not None}
        self.hnsw = _merge(DEFAULT_HNSW, body.get("hnsw_config"))
        self.optimizers = _merge(DEFAULT_OPTIMIZERS, body.get("optimizers_config"))
        self.wal = _merge(DEFAULT_WAL, body.get("wal_config"))
        self.quantization = body.get("quantization_config")
        self.strict_mode = body.get("strict_mode_config")
        self.metadata = body.get("metadata")
        self.points = {}
        self._sorted = None
        self.op_id = -1
        self.payload_schema = {}
        self.snapshots = {}

    # -- bookkeeping -------------------------------------------------------

    def next_op(self):
        self.op_id += 1
        return self.op_id

    def sorted_points(self):
        if self._sorted is None:
            pts = sorted(self.points.values(), key=lambda p: p.key)
            self._sorted = (pts, [p.key for p in pts])
        return self._sorted

    def vector_params(self, name):
        vp = self.vectors.get(name)
        if vp is None:
            raise bad_input("Not existing vector name error: %s" % name)
        return vp

    def info(self):
        config = {
            "params": self.params,
            "hnsw_config": self.hnsw,
            "optimizer_config": self.optimizers,
            "wal_config": self.wal,
            "quantization_config": self.quantization,
        }
        if self.strict_mode is not None:
            config["strict_mode_config"] = self.strict_mode
        if self.metadata is not None:
            config["metadata"] = self.metadata
        schema = {}
        for field, entry in self.payload_schema.items():
            tokens = parse_json_path(field)
            n = sum(1 for p in self.points.values() if json_path_get(p.payload, tokens))
            e = dict(entry)
            e["points"] = n
            schema[field] = e
        return {
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": 0,
            "points_count": len(self.points),
            "segments_count": 2,
            "config": config,
            "payload_schema": schema,
        }

    # -- vectors -----------------------------------------------------------

    def convert_vectors(self, vec):
        """VectorStruct of one point -> {name: array('f')} (validated)."""
        if type(vec) is list:
            if vec and type(vec[0]) is list:
                raise unsupported("multi-vectors")
            return {"": self._one_vector("", vec)}
        if type(vec) is dict:
            if _is_inference_object(vec):
                raise unsupported("server-side inference (Document/Image/InferenceObject)")
            out = {}
            for name, v in vec.items():
                if type(v) is dict:
                    if name not in self.vectors:
                        raise bad_input("Not existing vector name error: %s" % name)
                    raise unsupported("sparse vectors")
                if type(v) is list and v and type(v[0]) is list:
                    raise unsupported("multi-vectors")
                out[name] = self._one_vector(name, v)
            return out
        raise format_error("data did not match any variant of untagged enum VectorStruct")

    def _one_vector(self, name, v):
        vp = self.vector_params(name)
        if type(v) is not list:
            raise format_error("data did not match any variant of untagged enum VectorStruct")
        if v and not set(map(type, v)) <= _NUMTYPES:
            bad = next(x for x in v if type(x) not in _NUMTYPES)
            raise format_error("invalid type: %s, expected f32" % json_type_desc(bad))
        if len(v) != vp["size"]:
            raise bad_input("Vector dimension error: expected dim: %d, got %d" % (vp["size"], len(v)))
        return preprocess(vp["distance"], v)

    def vector_output(self, p, with_vector):
        if not with_vector:
            return None
        if with_vector is True:
            names = None
        elif type(with_vector) is list:
            names = set(with_vector)
        else:
            return None
        if self.unnamed and names is None:
            v = p.vectors.get("")
            return [f32_short(x) for x in v] if v is not None else None
        out = {}
        for name, v in p.vectors.items():
            if names is None or name in names:
                out[name] = [f32_short(x) for x in v]
        if self.unnamed:
            return out.get("")
        return out

    def record(self, p, with_payload, with_vector):
        r = {"id": p.id}
        pl = payload_select(p.payload, with_payload)
        if pl is not None:
            r["payload"] = pl
        vec = self.vector_output(p, with_vector)
        if vec is not None:
            r["vector"] = vec
        return r


# ---------------------------------------------------------------------------
# The application (state + operation handlers)
# ---------------------------------------------------------------------------


def _limit(name, value, default):
    if value is None:
        return default
    if type(value) is not int or value < 0:
        raise format_error("invalid type: %s, expected usize" % json_type_desc(value))
    return value


class App:
    def __init__(self, args, spec):
        self.args = args
        self.version = args.version
        self.api_key = args.api_key
        self.validate_requests = args.validate_requests
        self.validate_responses = args.validate_responses
        self.max_body = args.max_request_size_mb * 1024 * 1024
        self.compiler = SchemaCompiler(spec)
        self.routes = build_routes(spec, self.compiler)
        self.lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.peer_id = args.peer_id if args.peer_id is not None else random.getrandbits(52)
        self.started = time.time()
        self.logfile = open(args.log, "a", encoding="utf-8") if args.log else None
        self.reset()

    def reset(self, only=None):
        def want(k):
            return only is None or k in only
        with self.lock, self.log_lock:
            if want("collections"):
                self.collections = {}
                self.aliases = {}
            if want("snapshots"):
                self.full_snapshots = {}
                for c in getattr(self, "collections", {}).values():
                    c.snapshots = {}
            if want("violations"):
                self.violations = []
                self.violation_seq = 0
            if want("requests"):
                self.requests = []
                self.request_seq = 0
            if want("faults"):
                self.faults = []

    # -- collections -------------------------------------------------------

    def get_collection(self, name):
        c = self.collections.get(name)
        if c is None:
            real = self.aliases.get(name)
            if real is not None:
                c = self.collections.get(real)
        if c is None:
            raise collection_not_found(name)
        return c

    # -- records kept for tests --------------------------------------------

    def add_violation(self, entry):
        with self.log_lock:
            self.violation_seq += 1
            entry["seq"] = self.violation_seq
            if len(self.violations) < self.args.max_violations:
                self.violations.append(entry)

    def add_request(self, entry):
        with self.log_lock:
            self.request_seq += 1
            entry["seq"] = self.request_seq
            self.requests.append(entry)
            if len(self.requests) > self.args.max_request_log:
                del self.requests[: len(self.requests) - self.args.max_request_log]
        if self.logfile is not None:
            line = json.dumps(entry, ensure_ascii=False)
            with self.log_lock:
                if self.logfile is not None:
                    self.logfile.write(line + "\n")
                    self.logfile.flush()

    def take_fault(self, method, path):
        with self.log_lock:
            for f in self.faults:
                if f["method"] and f["method"] != method:
                    continue
                if not f["regex"].search(path):
                    continue
                f["count"] -= 1
                if f["count"] <= 0:
                    self.faults.remove(f)
                return dict(f)
        return None

    # -- operation dispatch ------------------------------------------------

    def dispatch(self, op, pp, q, body):
        handler = getattr(self, "op_" + (op or ""), None)
        if handler is None:
            raise ApiError(501, "Service internal error: operation `%s` is not implemented "
                           "by the Backplane Qdrant test server" % op)
        with self.lock:
            return handler(pp, q, body)

    # service ---------------------------------------------------------------

    def op_root(self, pp, q, body):
        return RawJSON({"title": "qdrant - vector search engine",
                        "version": self.version, "commit": self.args.commit})

    def op_healthz(self, pp, q, body):
        return RawText("healthz check passed")

    def op_livez(self, pp, q, body):
        return RawText("healthz check passed")

    def op_readyz(self, pp, q, body):
        return RawText("all shards are ready")

    def op_get_issues(self, pp, q, body):
        return {"issues": []}

    def op_clear_issues(self, pp, q, body):
        return True

    def op_cluster_status(self, pp, q, body):
        return {"status": "disabled"}

    def op_metrics(self, pp, q, body):
        lines = ["# HELP app_info information about qdrant server",
                 "# TYPE app_info gauge",
                 'app_info{name="qdrant",version="%s"} 1' % self.version,
                 "# HELP collections_total number of collections",
                 "# TYPE collections_total gauge",
                 "collections_total %d" % len(self.collections)]
        return RawText("\n".join(lines) + "\n")

    # collections -------------------------------------------------------------

    def op_get_collections(self, pp, q, body):
        return {"collections": [{"name": n} for n in self.collections]}

    def op_get_collection(self, pp, q, body):
        return self.get_collection(pp["collection_name"]).info()

    def op_collection_exists(self, pp, q, body):
        name = pp["collection_name"]
        return {"exists": name in self.collections or self.aliases.get(name) in self.collections}

    def op_create_collection(self, pp, q, body):
        name = pp["collection_name"]
        if type(body) is not dict:
            raise format_error("invalid type: %s, expected struct CreateCollection" % json_type_desc(body))
        if name in self.collections:
            raise ApiError(409, "Wrong input: Collection `%s` already exists!" % name)
        if name in self.aliases:
            raise ApiError(409, "Wrong input: Alias with name `%s` already exists!" % name)
        if body.get("init_from") is not None:
            raise unsupported("`init_from`")
        self.collections[name] = Collection(name, body)
        return True

    def op_update_collection(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        body = body or {}
        if body.get("optimizers_config"):
            c.optimizers = _merge(c.optimizers, body["optimizers_config"])
        if body.get("hnsw_config"):
            c.hnsw = _merge(c.hnsw, body["hnsw_config"])
        if body.get("params"):
            c.params = _merge(c.params, body["params"])
        if "quantization_config" in body and body["quantization_config"] is not None:
            c.quantization = None if body["quantization_config"] == "Disabled" else body["quantization_config"]
        if body.get("metadata"):
            c.metadata = _merge(c.metadata or {}, body["metadata"])
        if body.get("strict_mode_config"):
            c.strict_mode = _merge(c.strict_mode or {}, body["strict_mode_config"])
        return True

    def op_delete_collection(self, pp, q, body):
        name = pp["collection_name"]
        if name not in self.collections:
            return False
        del self.collections[name]
        for a in [a for a, n in self.aliases.items() if n == name]:
            del self.aliases[a]
        return True

    def op_update_aliases(self, pp, q, body):
        actions = (body or {}).get("actions") or []
        new = dict(self.aliases)
        for act in actions:
            if "create_alias" in act:
                a = act["create_alias"]
                if a["collection_name"] not in self.collections:
                    raise collection_not_found(a["collection_name"])
                if a["alias_name"] in self.collections:
                    raise ApiError(409, "Wrong input: Collection `%s` already exists!" % a["alias_name"])
                new[a["alias_name"]] = a["collection_name"]
            elif "delete_alias" in act:
                a = act["delete_alias"]
                if a["alias_name"] not in new:
                    raise not_found("Alias %s does not exists!" % a["alias_name"])
                del new[a["alias_name"]]
            elif "rename_alias" in act:
                a = act["rename_alias"]
                if a["old_alias_name"] not in new:
                    raise not_found("Alias %s does not exists!" % a["old_alias_name"])
                new[a["new_alias_name"]] = new.pop(a["old_alias_name"])
            else:
                raise format_error("data did not match any variant of untagged enum AliasOperations")
        self.aliases = new
        return True

    def op_get_collections_aliases(self, pp, q, body):
        return {"aliases": [{"alias_name": a, "collection_name": c} for a, c in sorted(self.aliases.items())]}

    def op_get_collection_aliases(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return {"aliases": [{"alias_name": a, "collection_name": n}
                            for a, n in sorted(self.aliases.items()) if n == c.name]}

    def op_create_field_index(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        field = body.get("field_name")
        fs = body.get("field_schema")
        if fs is None:
            raise bad_input("Can't auto-detect field type, please specify `field_schema` in the request")
        if type(fs) is dict:
            entry = {"data_type": fs.get("type"), "params": fs}
        else:
            entry = {"data_type": fs}
        parse_json_path(field)
        c.payload_schema[field] = entry
        return self.update_result(c, q)

    def op_delete_field_index(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        c.payload_schema.pop(pp["field_name"], None)
        return self.update_result(c, q)

    # points: helpers -----------------------------------------------------------

    def update_result(self, c, q, op_id=None):
        if op_id is None:
            op_id = c.next_op()
        wait = q.get("wait", False)
        return {"operation_id": op_id, "status": "completed" if wait else "acknowledged"}

    def select_points(self, c, ids, flt, must_exist):
        """Points by explicit ids and/or filter."""
        out = {}
        if ids is not None:
            for raw in ids:
                pid = parse_point_id(raw)
                p = c.points.get(pid)
                if p is None:
                    if must_exist:
                        raise not_found("No point with id %s found" % pid)
                    continue
                out[pid] = p
        if flt is not None:
            pred = FilterCompiler(c).compile_top(flt)
            for p in c.points.values():
                if pred(p):
                    out[p.id] = p
        return list(out.values())

    def parse_insert(self, c, body):
        """PointInsertOperations -> list of (id, vectors, payload)."""
        if type(body) is not dict:
            raise format_error("data did not match any variant of untagged enum PointInsertOperations")
        if "batch" in body:
            b = body["batch"]
            if type(b) is not dict or "ids" not in b or "vectors" not in b:
                raise format_error("missing field `ids`" if type(b) is dict and "ids" not in b
                                   else "missing field `vectors`")
            ids = b["ids"]
            vecs = b["vectors"]
            payloads = b.get("payloads")
            if type(ids) is not list:
                raise format_error("invalid type: %s, expected a sequence" % json_type_desc(ids))
            n = len(ids)
            per_point = [dict() for _ in range(n)]
            if type(vecs) is list:
                if len(vecs) != n:
                    raise bad_input("Number of ids and vectors must be equal, got %d ids and %d vectors"
                                    % (n, len(vecs)))
                for i, v in enumerate(vecs):
                    per_point[i] = v
            elif type(vecs) is dict:
                for name, lst in vecs.items():
                    if type(lst) is not list or len(lst) != n:
                        raise bad_input("Number of ids and vectors must be equal")
                    for i, v in enumerate(lst):
                        per_point[i][name] = v
            else:
                raise format_error("data did not match any variant of untagged enum BatchVectorStruct")
            if payloads is not None:
                if type(payloads) is not list or len(payloads) != n:
                    raise bad_input("Number of ids and payloads must be equal")
            out = []
            for i in range(n):
                pl = payloads[i] if payloads is not None else None
                out.append((parse_point_id(ids[i]), c.convert_vectors(per_point[i]), self._payload(pl)))
            return out
        if "points" in body:
            pts = body["points"]
            if type(pts) is not list:
                raise format_error("invalid type: %s, expected a sequence" % json_type_desc(pts))
            out = []
            for p in pts:
                if type(p) is not dict or "id" not in p:
                    raise format_error("missing field `id`")
                if "vector" not in p:
                    raise format_error("missing field `vector`")
                out.append((parse_point_id(p["id"]), c.convert_vectors(p["vector"]),
                            self._payload(p.get("payload"))))
            return out
        raise format_error("data did not match any variant of untagged enum PointInsertOperations")

    @staticmethod
    def _payload(pl):
        if pl is None:
            return {}
        if type(pl) is not dict:
            raise format_error("invalid type: %s, expected a map" % json_type_desc(pl))
        return pl

    def do_upsert(self, c, body):
        items = self.parse_insert(c, body)
        upd = body.get("update_filter")
        mode = body.get("update_mode") or "upsert"
        pred = FilterCompiler(c).compile_top(upd) if upd is not None else None
        op_id = c.next_op()
        added = False
        for pid, vecs, payload in items:
            old = c.points.get(pid)
            if old is not None:
                if mode == "insert_only":
                    continue
                if pred is not None and not pred(old):
                    continue
            elif mode == "update_only":
                continue
            else:
                added = True
            c.points[pid] = Point(pid, vecs, payload, op_id)
        if added:
            c._sorted = None
        return op_id

    def do_delete(self, c, body):
        ids, flt = self._selector(body)
        victims = self.select_points(c, ids, flt, must_exist=False)
        op_id = c.next_op()
        for p in victims:
            del c.points[p.id]
        if victims:
            c._sorted = None
        return op_id

    @staticmethod
    def _selector(body):
        if type(body) is not dict:
            raise format_error("data did not match any variant of untagged enum PointsSelector")
        if "points" in body:
            if type(body["points"]) is not list:
                raise format_error("invalid type: %s, expected a sequence" % json_type_desc(body["points"]))
            return body["points"], None
        if "filter" in body:
            return None, body["filter"]
        raise format_error("data did not match any variant of untagged enum PointsSelector")

    def do_set_payload(self, c, body, overwrite):
        if type(body) is not dict or type(body.get("payload")) is not dict:
            raise format_error("missing field `payload`")
        ids, flt = body.get("points"), body.get("filter")
        if ids is None and flt is None:
            raise bad_request("Either points or filter must be provided")
        pts = self.select_points(c, ids, flt, must_exist=True)
        key = body.get("key")
        op_id = c.next_op()
        for p in pts:
            new = json.loads(json.dumps(body["payload"]))
            if key is not None:
                keys = _path_simple_keys(parse_json_path(key))
                if keys is None:
                    raise unsupported("array selectors in `key`")
                base = {} if overwrite else json.loads(json.dumps(p.payload))
                dst = base
                for k in keys:
                    if type(dst.get(k)) is not dict:
                        dst[k] = {}
                    dst = dst[k]
                dst.update(new)
                p.payload = base
            elif overwrite:
                p.payload = new
            else:
                merged = dict(p.payload)
                merged.update(new)
                p.payload = merged
            p.version = op_id
        return op_id

    def do_delete_payload(self, c, body):
        if type(body) is not dict or type(body.get("keys")) is not list:
            raise format_error("missing field `keys`")
        ids, flt = body.get("points"), body.get("filter")
        if ids is None and flt is None:
            raise bad_request("Either points or filter must be provided")
        pts = self.select_points(c, ids, flt, must_exist=True)
        op_id = c.next_op()
        for p in pts:
            pl = json.loads(json.dumps(p.payload))
            for k in body["keys"]:
                keys = _path_simple_keys(parse_json_path(k))
                if keys:
                    _remove_path(pl, keys)
            p.payload = pl
            p.version = op_id
        return op_id

    def do_clear_payload(self, c, body):
        ids, flt = self._selector(body)
        pts = self.select_points(c, ids, flt, must_exist=True)
        op_id = c.next_op()
        for p in pts:
            p.payload = {}
            p.version = op_id
        return op_id

    def do_update_vectors(self, c, body):
        pts = (body or {}).get("points")
        if type(pts) is not list:
            raise format_error("missing field `points`")
        upd = body.get("update_filter")
        pred = FilterCompiler(c).compile_top(upd) if upd is not None else None
        changes = []
        for item in pts:
            pid = parse_point_id(item.get("id"))
            p = c.points.get(pid)
            if p is None:
                raise not_found("No point with id %s found" % pid)
            changes.append((p, c.convert_vectors(item.get("vector"))))
        op_id = c.next_op()
        for p, vecs in changes:
            if pred is not None and not pred(p):
                continue
            nv = dict(p.vectors)
            nv.update(vecs)
            p.vectors = nv
            p.version = op_id
        return op_id

    def do_delete_vectors(self, c, body):
        if type(body) is not dict or type(body.get("vector")) is not list:
            raise format_error("missing field `vector`")
        for name in body["vector"]:
            c.vector_params(name)
        ids, flt = body.get("points"), body.get("filter")
        pts = self.select_points(c, ids, flt, must_exist=True)
        op_id = c.next_op()
        for p in pts:
            p.vectors = {k: v for k, v in p.vectors.items() if k not in body["vector"]}
            p.version = op_id
        return op_id

    # points: endpoints -------------------------------------------------------

    def op_upsert_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_upsert(c, body))

    def op_delete_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_delete(c, body))

    def op_set_payload(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_set_payload(c, body, False))

    def op_overwrite_payload(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_set_payload(c, body, True))

    def op_delete_payload(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_delete_payload(c, body))

    def op_clear_payload(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_clear_payload(c, body))

    def op_update_vectors(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_update_vectors(c, body))

    def op_delete_vectors(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return self.update_result(c, q, self.do_delete_vectors(c, body))

    def op_batch_update(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        ops = (body or {}).get("operations")
        if type(ops) is not list:
            raise format_error("missing field `operations`")
        results = []
        for op in ops:
            if type(op) is not dict or len(op) != 1:
                raise format_error("data did not match any variant of untagged enum UpdateOperation")
            (kind, arg), = op.items()
            if kind == "upsert":
                op_id = self.do_upsert(c, arg)
            elif kind == "delete":
                op_id = self.do_delete(c, arg)
            elif kind == "set_payload":
                op_id = self.do_set_payload(c, arg, False)
            elif kind == "overwrite_payload":
                op_id = self.do_set_payload(c, arg, True)
            elif kind == "delete_payload":
                op_id = self.do_delete_payload(c, arg)
            elif kind == "clear_payload":
                op_id = self.do_clear_payload(c, arg)
            elif kind == "update_vectors":
                op_id = self.do_update_vectors(c, arg)
            elif kind == "delete_vectors":
                op_id = self.do_delete_vectors(c, arg)
            else:
                raise format_error("data did not match any variant of untagged enum UpdateOperation")
            results.append(self.update_result(c, q, op_id))
        return results

    def op_get_point(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        raw = pp["id"]
        pid = None
        if re.match(r"^\d+$", raw):
            v = int(raw)
            if v <= U64_MAX:
                pid = v
        else:
            pid = parse_uuid(raw)
        if pid is None:
            raise bad_input('Can not recognize "%s" as point id' % raw)
        p = c.points.get(pid)
        if p is None:
            raise not_found("Point with id %s does not exists!" % pid)
        return c.record(p, True, True)

    def op_get_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        if type(body) is not dict or type(body.get("ids")) is not list:
            raise format_error("missing field `ids`")
        with_payload = body.get("with_payload", True)
        if with_payload is None:
            with_payload = True
        with_vector = body.get("with_vector", False)
        out = []
        seen = set()
        for raw in body["ids"]:
            pid = parse_point_id(raw)
            if pid in seen:
                continue
            seen.add(pid)
            p = c.points.get(pid)
            if p is not None:
                out.append(c.record(p, with_payload, with_vector))
        return out

    def op_scroll_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        body = body if type(body) is dict else {}
        if body.get("order_by") is not None:
            raise unsupported("`order_by`")
        limit = _limit("limit", body.get("limit"), 10)
        if limit < 1:
            raise ApiError(422, "Validation error in JSON body: [limit: value %d invalid, must be 1 or larger]" % limit)
        with_payload = body.get("with_payload", True)
        if with_payload is None:
            with_payload = True
        with_vector = body.get("with_vector", False)
        pred = FilterCompiler(c).compile_top(body.get("filter"))
        pts, keys = c.sorted_points()
        start = 0
        if body.get("offset") is not None:
            start = bisect.bisect_left(keys, id_sort_key(parse_point_id(body["offset"])))
        out = []
        next_offset = None
        for i in range(start, len(pts)):
            p = pts[i]
            if pred is not None and not pred(p):
                continue
            if len(out) == limit:
                next_offset = p.id
                break
            out.append(c.record(p, with_payload, with_vector))
        return {"points": out, "next_page_offset": next_offset}

    def op_count_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        body = body if type(body) is dict else {}
        pred = FilterCompiler(c).compile_top(body.get("filter"))
        if pred is None:
            return {"count": len(c.points)}
        return {"count": sum(1 for p in c.points.values() if pred(p))}

    # query -------------------------------------------------------------------

    def _vector_input(self, c, using, v, exclude):
        """A VectorInput -> preprocessed query vector."""
        vp = c.vector_params(using)
        if type(v) is list:
            if v and type(v[0]) is list:
                raise unsupported("multi-vector queries")
            for x in v:
                if type(x) not in _NUMTYPES:
                    raise format_error("data did not match any variant of untagged enum QueryInterface")
            if len(v) != vp["size"]:
                raise bad_input("Vector dimension error: expected dim: %d, got %d" % (vp["size"], len(v)))
            return preprocess(vp["distance"], v)
        if type(v) is int or type(v) is str:
            pid = parse_point_id(v)
            p = c.points.get(pid)
            if p is None:
                raise not_found("No point with id %s found" % pid)
            vec = p.vectors.get(using)
            if vec is None:
                raise bad_input("Not existing vector name error: %s" % using)
            exclude.add(pid)
            return vec
        if type(v) is dict:
            if "indices" in v:
                raise unsupported("sparse vectors")
            raise unsupported("server-side inference (Document/Image/InferenceObject)")
        raise format_error("data did not match any variant of untagged enum QueryInterface")

    def run_query(self, c, req):
        if type(req) is not dict:
            raise format_error("invalid type: %s, expected struct QueryRequest" % json_type_desc(req))
        if req.get("prefetch") not in (None, []):
            raise unsupported("`prefetch`")
        if req.get("lookup_from") is not None:
            raise unsupported("`lookup_from`")
        using = req.get("using")
        if using is None:
            using = ""
        limit = _limit("limit", req.get("limit"), 10)
        if limit < 1:
            raise ApiError(422, "Validation error in JSON body: [limit: value %d invalid, must be 1 or larger]" % limit)
        offset = _limit("offset", req.get("offset"), 0)
        with_payload = req.get("with_payload") or False
        with_vector = req.get("with_vector", req.get("with_vectors")) or False
        threshold = req.get("score_threshold")
        pred = FilterCompiler(c).compile_top(req.get("filter"))
        query = req.get("query")
        exclude = set()
        mode = "nearest"
        qvec = None
        pos_vecs = neg_vecs = None
        if query is None:
            mode = "ids"
        elif type(query) is dict and not ("indices" in query or _is_inference_object(query)):
            if "nearest" in query:
                if query.get("mmr") is not None:
                    raise unsupported("MMR")
                qvec = self._vector_input(c, using, query["nearest"], exclude)
            elif "recommend" in query:
                rec = query["recommend"] or {}
                strategy = rec.get("strategy") or "average_vector"
                pos_vecs = [self._vector_input(c, using, v, exclude) for v in rec.get("positive") or []]
                neg_vecs = [self._vector_input(c, using, v, exclude) for v in rec.get("negative") or []]
                if strategy == "average_vector":
                    if not pos_vecs:
                        raise bad_request("No positive vectors given for recommendation")
                    dim = len(pos_vecs[0])
                    avg_pos = [sum(v[i] for v in pos_vecs) / len(pos_vecs) for i in range(dim)]
                    if neg_vecs:
                        avg_neg = [sum(v[i] for v in neg_vecs) / len(neg_vecs) for i in range(dim)]
                        raw = [avg_pos[i] + avg_pos[i] - avg_neg[i] for i in range(dim)]
                    else:
                        raw = avg_pos
                    qvec = preprocess(c.vector_params(using)["distance"], raw)
                elif strategy == "sum_scores":
                    mode = "sum_scores"
                else:
                    raise unsupported("recommend strategy `%s`" % strategy)
            elif "sample" in query:
                mode = "sample"
            else:
                kind = next(iter(query), "?")
                raise unsupported("query `%s`" % kind)
        else:
            qvec = self._vector_input(c, using, query, exclude)

        if mode == "ids":
            pts, _ = c.sorted_points()
            sel = [p for p in pts if (pred is None or pred(p))]
            sel = sel[offset:offset + limit]
            return [self._scored(c, p, 0.0, with_payload, with_vector) for p in sel]
        if mode == "sample":
            sel = [p for p in c.points.values() if (pred is None or pred(p))]
            sel = random.sample(sel, min(len(sel), limit))
            return [self._scored(c, p, 0.0, with_payload, with_vector) for p in sel]

        vp = c.vector_params(using)
        raw_fn, larger_better = SCORERS[vp["distance"]]
        if mode == "sum_scores":
            def score_of(v):
                return (sum(raw_fn(pv, v) for pv in pos_vecs) -
                        sum(raw_fn(nv, v) for nv in neg_vecs))
            larger_better = True
        else:
            def score_of(v):
                return raw_fn(qvec, v)
        thr = f32(threshold) if threshold is not None else None
        scored = []
        for p in c.points.values():
            if p.id in exclude:
                continue
            v = p.vectors.get(using)
            if v is None:
                continue
            if pred is not None and not pred(p):
                continue
            s = f32(score_of(v))
            if thr is not None:
                if larger_better and not s > thr:
                    continue
                if not larger_better and not s < thr:
                    continue
            scored.append(((-s if larger_better else s), p.key, s, p))
        top = heapq.nsmallest(offset + limit, scored, key=lambda t: (t[0], t[1]))
        top = top[offset:]
        return [self._scored(c, p, s, with_payload, with_vector) for _, _, s, p in top]

    def _scored(self, c, p, score, with_payload, with_vector):
        r = {"id": p.id, "version": p.version, "score": f32_short(score)}
        pl = payload_select(p.payload, with_payload)
        if pl is not None:
            r["payload"] = pl
        vec = c.vector_output(p, with_vector)
        if vec is not None:
            r["vector"] = vec
        return r

    def op_query_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return {"points": self.run_query(c, body if body is not None else {})}

    def op_query_batch_points(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        if type(body) is not dict or type(body.get("searches")) is not list:
            raise format_error("missing field `searches`")
        return [{"points": self.run_query(c, s)} for s in body["searches"]]

    def op_search_points(self, pp, q, body):
        """Deprecated POST /points/search (not in the v1.19.0 spec)."""
        c = self.get_collection(pp["collection_name"])
        if type(body) is not dict or "vector" not in body:
            raise format_error("missing field `vector`")
        if "limit" not in body:
            raise format_error("missing field `limit`")
        vec = body["vector"]
        using = ""
        if type(vec) is dict:
            using = vec.get("name", "")
            vec = vec.get("vector")
        req = {"query": vec, "using": using, "filter": body.get("filter"), "limit": body["limit"],
               "offset": body.get("offset"), "with_payload": body.get("with_payload"),
               "with_vector": body.get("with_vector", body.get("with_vectors")),
               "score_threshold": body.get("score_threshold")}
        return self.run_query(c, req)

    # snapshots ---------------------------------------------------------------

    def _make_snapshot(self, name, manifest, store):
        blob = json.dumps(manifest, sort_keys=True).encode()
        desc = {"name": name, "creation_time": now_iso(), "size": len(blob),
                "checksum": hashlib.sha256(blob).hexdigest()}
        store[name] = (desc, blob)
        while len(store) > self.args.max_snapshots:
            del store[next(iter(store))]
        return desc

    def _stamp(self):
        return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")

    def op_create_snapshot(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        name = "%s-%d-%s.snapshot" % (c.name, self.peer_id, self._stamp())
        manifest = {"collection": c.name, "points": len(c.points), "operation_id": c.op_id,
                    "config": c.info()["config"]}
        desc = self._make_snapshot(name, manifest, c.snapshots)
        if not q.get("wait", True):
            return Accepted()
        return desc

    def op_list_snapshots(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        return [d for d, _ in c.snapshots.values()]

    def op_delete_snapshot(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        name = pp["snapshot_name"]
        if name not in c.snapshots:
            raise not_found("Snapshot %s not found" % name)
        del c.snapshots[name]
        if not q.get("wait", True):
            return Accepted()
        return True

    def op_get_snapshot(self, pp, q, body):
        c = self.get_collection(pp["collection_name"])
        name = pp["snapshot_name"]
        if name not in c.snapshots:
            raise not_found("Snapshot %s not found" % name)
        return RawBytes(c.snapshots[name][1], "application/octet-stream")

    def op_list_full_snapshots(self, pp, q, body):
        return [d for d, _ in self.full_snapshots.values()]

    def op_create_full_snapshot(self, pp, q, body):
        name = "full-snapshot-%s.snapshot" % self._stamp()
        manifest = {"collections": {n: len(c.points) for n, c in self.collections.items()},
                    "aliases": self.aliases}
        desc = self._make_snapshot(name, manifest, self.full_snapshots)
        if not q.get("wait", True):
            return Accepted()
        return desc

    def op_delete_full_snapshot(self, pp, q, body):
        name = pp["snapshot_name"]
        if name not in self.full_snapshots:
            raise not_found("Full storage snapshot %s not found" % name)
        del self.full_snapshots[name]
        if not q.get("wait", True):
            return Accepted()
        return True

    def op_get_full_snapshot(self, pp, q, body):
        name = pp["snapshot_name"]
        if name not in self.full_snapshots:
            raise not_found("Full storage snapshot %s not found" % name)
        return RawBytes(self.full_snapshots[name][1], "application/octet-stream")


class RawJSON:
    """A result sent as-is, without the envelope (GET /)."""

    def __init__(self, obj):
        self.obj = obj


class RawText:
    def __init__(self, text):
        self.text = text


class RawBytes:
    def __init__(self, data, ctype):
        self.data = data
        self.ctype = ctype


class Accepted:
    """202 {"status":"accepted","time":…} (helpers.rs accepted_response)."""


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

_JSON_ERR_MAP = [
    ("Expecting value", "expected value"),
    ("Expecting property name enclosed in double quotes", "key must be a string"),
    ("Expecting ',' delimiter", "expected `,` or `]`"),
    ("Expecting ':' delimiter", "expected `:`"),
    ("Extra data", "trailing characters"),
    ("Unterminated string", "EOF while parsing a string"),
    ("Invalid control character", "control character (\\u0000-\\u001F) found while parsing a string"),
    ("Invalid \\escape", "invalid escape"),
]


def serde_json_error(e):
    msg = e.msg
    for py, serde in _JSON_ERR_MAP:
        if msg.startswith(py):
            msg = serde
            break
    return "%s at line %d column %d" % (msg, e.lineno, e.colno)


def _redact_headers(headers):
    out = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk in ("api-key", "authorization"):
            out[lk] = "<redacted>"
        else:
            out[lk] = v
    return out


def _coerce_query(fn, raw):
    """Typed value of a query string parameter per its schema, or SErr."""
    candidates = []
    if raw in ("true", "false"):
        candidates.append(raw == "true")
    if re.match(r"^-?\d+$", raw):
        candidates.append(int(raw))
    try:
        candidates.append(float(raw))
    except ValueError:
        pass
    candidates.append(raw)
    first_err = None
    for cand in candidates:
        e, ve = validate(fn, cand)
        if e is None and not [v for v in ve if v[2] == "validate"]:
            return cand, None
        if first_err is None:
            first_err = e.msg if e is not None else ve[0][1]
    return None, first_err


_BAD_NAME_CHARS = '<>:"/\\|?*\x00'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        # Idle keep-alive connections are closed after this many seconds, so
        # their threads do not pile up.
        self.timeout = self.server.idle_timeout
        super().setup()
        # Qdrant (actix-web) writes a response in one go. Without NODELAY the
        # body, sent after the headers, waits for the client's delayed ACK of
        # them (~40 ms a request), which punishes clients that send one
        # request at a time.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        # Numbered in accept order: the request log shows which requests
        # shared a kept-alive connection.
        self.connection_no = self.server.next_connection_no()

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return "qdrant"

    def do_GET(self):
        self.server.app_handle(self)

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # -- body --------------------------------------------------------------

    def read_body(self, limit):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > limit:
                    self.close_connection = True
                    return None, total
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks), total
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b"", 0
        n = int(cl)
        if n < 0:
            raise ValueError("negative Content-Length")
        if n > limit:
            self.drain(n)
            return None, n
        return self.rfile.read(n) if n else b"", n

    def drain(self, n):
        """Discard an oversized body (up to 1 GiB) so the error reaches a
        client that is still sending; past that, just close."""
        if n > (1 << 30):
            self.close_connection = True
            return
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            n -= len(chunk)

    # -- responses -----------------------------------------------------------

    pending_entry = None

    def flush_entry(self, status):
        """Record the request in the log before its response goes out, so a
        client that inspects /__test/requests right after sees it."""
        entry = self.pending_entry
        if entry is not None:
            self.pending_entry = None
            entry["status"] = status
            entry["duration_ms"] = round((time.monotonic() - entry.pop("_t0")) * 1000, 3)
            self.server.app.add_request(entry)

    def send_bytes(self, status, data, ctype, extra=None, close=False):
        self.flush_entry(status)
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        # end_headers() would send the headers on their own: send them with
        # the body in one write instead.
        buffered = getattr(self, "_headers_buffer", None)
        if buffered is None:  # HTTP/0.9: no headers at all
            self.end_headers()
            buffered = []
        else:
            buffered.append(b"\r\n")
        if self.command != "HEAD":
            buffered.append(data)
        self.wfile.write(b"".join(buffered))
        self._headers_buffer = []
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, app, family):
        self.address_family = family
        self.app = app
        self.idle_timeout = app.args.idle_timeout
        self._connections = 0
        self._connections_lock = threading.Lock()
        super().__init__(addr, Handler)

    def next_connection_no(self):
        with self._connections_lock:
            self._connections += 1
            return self._connections

    # -- the request pipeline ----------------------------------------------

    def app_handle(self, h):
        app = self.app
        t0 = time.monotonic()
        url = urllib.parse.urlsplit(h.path)
        path = url.path or "/"
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        method = h.command
        entry = {"t": round(time.time(), 6), "method": method, "path": path, "query": url.query,
                 "headers": _redact_headers(h.headers), "body_size": 0, "status": None,
                 "fault": None, "operation_id": None, "connection": h.connection_no, "_t0": t0}
        try:
            body, size = h.read_body(app.max_body)
        except (ValueError, ConnectionError, OSError):
            h.close_connection = True
            return
        entry["body_size"] = size
        if not path.startswith("/__test/"):
            h.pending_entry = entry
        try:
            if body is None:
                self.respond_error(h, ApiError(
                    400, "JSON payload (%d bytes) is larger than allowed (limit: %d bytes)."
                    % (size, app.max_body)), t0, close=True)
                return
            if path.startswith("/__test/"):
                self.test_api(h, method, path, body)
                return
            fault = app.take_fault(method, path)
            if fault is not None:
                entry["fault"] = fault["kind"]
                if self.apply_fault(h, fault, t0):
                    return
            self.serve(h, method, path, query, body, t0, entry)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        finally:
            h.flush_entry(None)

    def apply_fault(self, h, fault, t0):
        """True when the fault answered (or dropped) the request, False to
        go on serving it normally (stall)."""
        kind = fault["kind"]
        if fault.get("stall_ms"):
            time.sleep(fault["stall_ms"] / 1000.0)
        if kind == "stall":
            return False
        if kind in ("drop", "reset"):
            h.flush_entry(None)
            h.close_connection = True
            try:
                if kind == "reset":
                    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(int(math.ceil(fault["retry_after"])))
        if kind == "429":
            ra = fault.get("retry_after") or 1
            err = ApiError(429, "Rate limiting exceeded: Write rate limit exceeded: Operation requires "
                           "1 tokens but only 0.0 were available. Retry after %ds" % math.ceil(ra), headers)
        elif kind == "503":
            err = ApiError(503, "Shard temporarily unavailable: injected fault", headers)
        else:
            err = ApiError(500, "Service internal error: injected fault", headers)
        self.respond_error(h, err, t0)
        return True

    def route(self, method, path):
        path_match = False
        for r in self.app.routes:
            m = r.regex.match(path)
            if m is None:
                continue
            path_match = True
            if r.method != method:
                continue
            pp = {}
            for name, val in zip(r.params, m.groups()):
                pp[name] = urllib.parse.unquote(val)
            return r, pp
        return None, path_match

    def serve(self, h, method, path, query, body, t0, entry):
        app = self.app
        r, pp = self.route(method, path)
        if r is None:
            app.add_violation({"kind": "unknown-endpoint", "method": method, "path": path,
                               "error": "no operation %s %s in the v1.19.0 spec" % (method, path)})
            h.send_bytes(404, b"", "text/plain; charset=utf-8")
            return 404
        entry["operation_id"] = r.op
        whitelisted = r.op in ("root", "healthz", "livez", "readyz")
        if app.api_key is not None and not whitelisted:
            key = h.headers.get("api-key")
            if key is None:
                auth = h.headers.get("Authorization") or ""
                if auth.startswith("Bearer "):
                    key = auth[len("Bearer "):]
            if key is None:
                return self.respond_plain(h, 401, "Must provide an API key or an Authorization bearer token")
            if not hmac.compare_digest(key.encode(), app.api_key.encode()):
                return self.respond_plain(h, 401, "Invalid API key or JWT")
        if not r.in_spec:
            app.add_violation({"kind": "deprecated-endpoint", "method": method, "path": path,
                               "operation_id": r.op,
                               "error": "%s %s is not in the v1.19.0 spec (removed in favour of "
                                        "/points/query)" % (method, r.template)})
        try:
            # Path parameters.
            cname = pp.get("collection_name")
            if cname is not None and (len(cname) > 255 or not cname or
                                      any(ch in cname for ch in _BAD_NAME_CHARS)):
                bad = next((ch for ch in cname if ch in _BAD_NAME_CHARS), None)
                why = ("collection name cannot contain \"%s\" char" % bad) if bad else \
                    "value invalid, must be from 1 to 255 characters"
                raise ApiError(422, "Validation error in path parameters: [name: %s]" % why)
            # Query parameters.
            q = {}
            for name, values in query.items():
                fn = r.query_fns.get(name)
                if fn is None:
                    continue
                val, err = _coerce_query(fn, values[-1])
                if err is not None:
                    app.add_violation({"kind": "query", "method": method, "path": path,
                                       "operation_id": r.op, "location": name, "error": err})
                    raise ApiError(400, "Deserialize error in query parameters: %s" % err)
                q[name] = val
            # Body.
            payload = None
            if r.body_fn is not None:
                payload = self.parse_body(h, r, method, path, body)
            result = app.dispatch(r.op, pp, q, payload)
        except ApiError as e:
            return self.respond_error(h, e, t0, r)
        return self.respond_result(h, result, t0, r)

    def parse_body(self, h, r, method, path, body):
        app = self.app
        enc = (h.headers.get("Content-Encoding") or "").lower().strip()
        if enc in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
            except zlib.error as e:
                raise ApiError(400, "Payload error: %s" % e)
            if len(body) > app.max_body:
                raise ApiError(400, "JSON payload (%d bytes) is larger than allowed (limit: %d bytes)."
                               % (len(body), app.max_body))
        ctype = (h.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            app.add_violation({"kind": "content-type", "method": method, "path": path,
                               "operation_id": r.op,
                               "error": "Content-Type %r is not application/json" % ctype})
            raise ApiError(400, "Content type error")
        if not body:
            app.add_violation({"kind": "request-body", "method": method, "path": path,
                               "operation_id": r.op, "error": "empty body"})
            raise format_error("EOF while parsing a value at line 1 column 0")
        try:
            text = body.decode("utf-8")
            payload = json.loads(text)
        except UnicodeDecodeError:
            app.add_violation({"kind": "request-body", "method": method, "path": path,
                               "operation_id": r.op, "error": "body is not UTF-8"})
            raise format_error("invalid unicode code point at line 1 column 1")
        except json.JSONDecodeError as e:
            app.add_violation({"kind": "request-body", "method": method, "path": path,
                               "operation_id": r.op, "error": "invalid JSON: %s" % e})
            raise format_error(serde_json_error(e))
        if app.validate_requests:
            err, ve = validate(r.body_fn, payload)
            if err is not None:
                where = path_text(err.path)
                app.add_violation({"kind": "request-body", "method": method, "path": path,
                                   "operation_id": r.op, "location": where, "error": err.msg,
                                   "body": text[:2000]})
                raise format_error(err.msg)
            hard = [v for v in ve if v[2] == "validate"]
            for v in ve:
                app.add_violation({"kind": "request-body" if v[2] == "validate" else "soft",
                                   "method": method, "path": path, "operation_id": r.op,
                                   "location": path_text(v[0]), "error": v[1], "body": text[:2000]})
            if hard:
                items = "; ".join("%s: %s" % (path_text(v[0], root="") or "body", v[1]) for v in hard)
                raise ApiError(422, "Validation error in JSON body: [%s]" % items)
        return payload

    # -- writers -------------------------------------------------------------

    def respond_plain(self, h, status, text):
        h.send_bytes(status, text.encode(), "text/plain; charset=utf-8")
        return status

    def respond_error(self, h, e, t0, route=None, close=False):
        if e.plain:
            return self.respond_plain(h, e.status, e.message)
        doc = {"status": {"error": e.message}, "time": time.monotonic() - t0}
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        h.send_bytes(e.status, data, "application/json", e.headers, close=close)
        return e.status

    def respond_result(self, h, result, t0, r):
        if isinstance(result, RawText):
            return self.respond_plain(h, 200, result.text)
        if isinstance(result, RawBytes):
            h.send_bytes(200, result.data, result.ctype)
            return 200
        if isinstance(result, Accepted):
            status = 202
            doc = {"status": "accepted", "time": time.monotonic() - t0}
        elif isinstance(result, RawJSON):
            status = 200
            doc = result.obj
        else:
            status = 200
            doc = {"result": result, "status": "ok", "time": time.monotonic() - t0}
        if self.app.validate_responses:
            fn = r.response_fns.get(status)
            if fn is not None:
                err, ve = validate(fn, doc)
                bad = [v for v in ve if v[2] == "validate"]
                if err is not None or bad:
                    self.app.add_violation({
                        "kind": "response", "method": h.command, "path": r.template,
                        "operation_id": r.op,
                        "location": path_text(err.path) if err else path_text(bad[0][0]),
                        "error": err.msg if err else bad[0][1]})
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        h.send_bytes(status, data, "application/json")
        return status

    # -- /__test -------------------------------------------------------------

    def test_api(self, h, method, path, body):
        app = self.app

        def reply(obj, status=200):
            data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
            h.send_bytes(status, data, "application/json")
            return status
        try:
            doc = json.loads(body) if body else None
        except json.JSONDecodeError as e:
            return reply({"error": "invalid JSON: %s" % e}, 400)
        if path == "/__test/violations" and method == "GET":
            with app.log_lock:
                return reply(list(app.violations))
        if path == "/__test/requests" and method == "GET":
            with app.log_lock:
                return reply(list(app.requests))
        if path == "/__test/faults" and method == "GET":
            with app.log_lock:
                return reply([{k: v for k, v in f.items() if k != "regex"} for f in app.faults])
        if path == "/__test/faults" and method == "DELETE":
            with app.log_lock:
                app.faults = []
            return reply({"ok": True})
        if path == "/__test/faults" and method == "POST":
            if type(doc) is not dict:
                return reply({"error": "expected a JSON object"}, 400)
            kind = str(doc.get("kind", ""))
            if kind not in ("stall", "429", "503", "500", "drop", "reset"):
                return reply({"error": "kind must be one of stall, 429, 503, 500, drop, reset"}, 400)
            try:
                regex = re.compile(doc.get("path_regex") or ".*")
            except re.error as e:
                return reply({"error": "bad path_regex: %s" % e}, 400)
            count = doc.get("count", 1)
            if type(count) is not int or count < 1 or count > 100000:
                return reply({"error": "count must be an integer in 1..100000"}, 400)
            stall = doc.get("stall_ms", 1000 if kind == "stall" else 0)
            if type(stall) not in (int, float) or stall < 0 or stall > 600000:
                return reply({"error": "stall_ms must be a number in 0..600000"}, 400)
            ra = doc.get("retry_after", 1 if kind == "429" else None)
            if ra is not None and (type(ra) not in (int, float) or ra < 0 or ra > 86400):
                return reply({"error": "retry_after must be a number of seconds in 0..86400"}, 400)
            method_f = doc.get("method")
            with app.log_lock:
                if len(app.faults) >= 1000:
                    return reply({"error": "too many pending faults (max 1000)"}, 400)
                f = {"path_regex": regex.pattern, "regex": regex,
                     "method": method_f.upper() if method_f else None,
                     "kind": kind, "count": count, "stall_ms": stall, "retry_after": ra}
                app.faults.append(f)
            return reply({"ok": True})
        if path == "/__test/reset" and method == "POST":
            only = doc.get("only") if type(doc) is dict else None
            app.reset(set(only) if only else None)
            return reply({"ok": True})
        return reply({"error": "unknown test endpoint %s %s" % (method, path)}, 404)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description="Qdrant v1.19 compatible REST test server")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--api-key", default=None)
    p.add_argument("--version", default="1.19.0", help="version reported by GET /")
    p.add_argument("--commit", default="0000000000000000000000000000000000000000",
                   help="commit reported by GET /")
    p.add_argument("--spec", default=DEFAULT_SPEC, help="OpenAPI document to validate against")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--validate-requests", dest="validate_requests", action="store_true", default=True)
    g.add_argument("--no-validate-requests", dest="validate_requests", action="store_false")
    g2 = p.add_mutually_exclusive_group()
    g2.add_argument("--validate-responses", dest="validate_responses", action="store_true", default=True)
    g2.add_argument("--no-validate-responses", dest="validate_responses", action="store_false")
    p.add_argument("--log", default=None, help="append one JSON line per request")
    p.add_argument("--ignore-stdin", action="store_true", help="do not exit on EOF on stdin")
    p.add_argument("--max-request-size-mb", type=int, default=32)
    p.add_argument("--max-request-log", type=int, default=100000)
    p.add_argument("--max-violations", type=int, default=10000)
    p.add_argument("--max-snapshots", type=int, default=100)
    p.add_argument("--peer-id", type=int, default=None, help="peer id used in snapshot names")
    p.add_argument("--idle-timeout", type=float, default=300.0,
                   help="seconds before an idle keep-alive connection is closed")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Bulk upserts allocate millions of short-lived objects; the default
    # generation-0 threshold (700) makes the cyclic GC rescan the growing
    # store far too often.
    gc.set_threshold(100000, 50, 1000)
    with open(args.spec, "r", encoding="utf-8") as f:
        spec = json.load(f)
    app = App(args, spec)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    server = Server((args.host, args.port), app, family)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="http", daemon=True)
    thread.start()
    port = server.server_address[1]
    sys.stdout.write("LISTENING %d\n" % port)
    sys.stdout.flush()

    if not args.ignore_stdin:
        def watch_stdin():
            # os.read on the raw fd: a daemon thread blocked inside a
            # buffered reader aborts the interpreter at shutdown.
            try:
                fd = sys.stdin.fileno()
                while os.read(fd, 4096):
                    pass
            except (OSError, ValueError):
                pass
            stop.set()
        threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()

    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    if app.logfile is not None:
        with app.log_lock:
            app.logfile.close()
            app.logfile = None
    sys.stdout.flush()
    sys.stderr.flush()
    # Handler threads may still sit in a stall; leave without waiting.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
