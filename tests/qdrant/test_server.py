#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of tests/qdrant/qdrantserver.py over raw HTTP (http.client only).

Covers what the JS conformance test cannot see from a client: exact scores,
filter semantics, u64 ids at 2^64-1, the OpenAPI validator, fault injection,
the wire (chunked bodies, keep-alive, gzip), auth and process lifecycle.

Run: python3 tests/qdrant/test_server.py [-v]   (QDRANT_SERVER overrides the
path of the server script).
"""

import gzip
import http.client
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.environ.get("QDRANT_SERVER") or os.path.join(HERE, "qdrantserver.py")
U64_MAX = 2 ** 64 - 1


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


class ServerProcess:
    def __init__(self, *extra):
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("LISTENING "):
            self.proc.kill()
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(line.split()[1])

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class Client:
    """A keep-alive JSON client over one http.client connection."""

    def __init__(self, server, headers=None):
        self.server = server
        self.c = server.conn()
        self.headers = headers or {}

    def raw(self, method, path, body=None, headers=None):
        h = dict(self.headers)
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None and "content-type" not in {k.lower() for k in h}:
            h["Content-Type"] = "application/json"
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def call(self, method, path, body=None, headers=None, expect=200):
        status, hdrs, data = self.raw(method, path, body, headers)
        doc = json.loads(data) if data and hdrs.get("content-type", "").startswith("application/json") else data
        if expect is not None and status != expect:
            raise AssertionError("%s %s -> %d %r (expected %d)" % (method, path, status, data[:500], expect))
        return doc

    def result(self, method, path, body=None, expect=200):
        doc = self.call(method, path, body, expect=expect)
        if expect == 200:
            assert doc["status"] == "ok", doc
            assert isinstance(doc["time"], float)
            return doc["result"]
        return doc

    def close(self):
        self.c.close()


class Base(unittest.TestCase):
    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(*cls.extra_args)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.cl = Client(self.server)
        self.cl.call("POST", "/__test/reset", {})

    def tearDown(self):
        self.cl.close()

    def violations(self):
        return self.cl.call("GET", "/__test/violations")

    def assert_no_violations(self):
        v = self.violations()
        self.assertEqual(v, [], json.dumps(v, indent=1))

    def create(self, name, vectors):
        self.assertIs(self.cl.result("PUT", "/collections/" + name, {"vectors": vectors}), True)

    def upsert(self, name, points, wait=True):
        return self.cl.result("PUT", "/collections/%s/points?wait=%s" % (name, "true" if wait else "false"),
                              {"points": points})

    def query(self, name, body):
        return self.cl.result("POST", "/collections/%s/points/query" % name, body)["points"]


# ---------------------------------------------------------------------------


class ScoringTest(Base):
    def test_known_values(self):
        cases = {
            "Dot": ([1, 2, 3], [4, 5, 6], 32.0),
            "Euclid": ([0, 0, 0], [3, 4, 0], 5.0),
            "Manhattan": ([1, 1, 1], [4, -3, 1], 7.0),
            "Cosine": ([1, 0, 0], [1, 1, 0], f32(f32(1 / math.sqrt(2)))),
        }
        for dist, (stored, q, expected) in cases.items():
            name = "k_" + dist.lower()
            self.create(name, {"size": 3, "distance": dist})
            self.upsert(name, [{"id": 1, "vector": stored}])
            hits = self.query(name, {"query": q})
            self.assertEqual(len(hits), 1)
            self.assertEqual(hits[0]["id"], 1)
            # serde prints the shortest decimal of the f32; it parses back
            # to exactly that f32.
            self.assertEqual(f32(hits[0]["score"]), expected, dist)
            self.assertEqual(hits[0]["version"], 0)
        self.assert_no_violations()

    def test_scores_and_order_match_independent_computation(self):
        import random
        rng = random.Random(1234)
        dim = 16
        vecs = {i: [rng.uniform(-1, 1) for _ in range(dim)] for i in range(1, 201)}

        def norm(v):
            v = [f32(x) for x in v]
            n = math.sqrt(sum(x * x for x in v))
            return [f32(x / n) for x in v]

        def expected(dist, q):
            out = []
            for i, v in vecs.items():
                if dist == "Cosine":
                    a, b = norm(q), norm(v)
                    s = sum(x * y for x, y in zip(a, b))
                elif dist == "Dot":
                    s = sum(f32(x) * f32(y) for x, y in zip(q, v))
                elif dist == "Euclid":
                    s = math.sqrt(sum((f32(x) - f32(y)) ** 2 for x, y in zip(q, v)))
                else:
                    s = sum(abs(f32(x) - f32(y)) for x, y in zip(q, v))
                out.append((f32(s), i))
            larger = dist in ("Cosine", "Dot")
            out.sort(key=lambda t: ((-t[0] if larger else t[0]), t[1]))
            return out

        for dist in ("Cosine", "Dot", "Euclid", "Manhattan"):
            name = "s_" + dist.lower()
            self.create(name, {"size": dim, "distance": dist})
            self.upsert(name, [{"id": i, "vector": v} for i, v in vecs.items()])
            for _ in range(5):
                q = [rng.uniform(-1, 1) for _ in range(dim)]
                exp = expected(dist, q)[:20]
                hits = self.query(name, {"query": q, "limit": 20})
                self.assertEqual([h["id"] for h in hits], [i for _, i in exp], dist)
                for h, (s, _) in zip(hits, exp):
                    # f32 precision: at most 2 ulp apart.
                    self.assertLessEqual(abs(f32(h["score"]) - s), 2.5e-7 * max(1.0, abs(s)), dist)
                    self.assertLessEqual(len(repr(h["score"]).lstrip("-")), 11, "shortest f32 text")
                # score_threshold: lower bound for similarities, upper bound for distances
                thr = exp[9][0]
                hits = self.query(name, {"query": q, "limit": 200, "score_threshold": thr})
                if dist in ("Cosine", "Dot"):
                    self.assertTrue(all(f32(h["score"]) > thr for h in hits))
                else:
                    self.assertTrue(all(f32(h["score"]) < thr for h in hits))
                self.assertEqual(len(hits), 9, dist)
        self.assert_no_violations()

    def test_cosine_vectors_are_stored_normalized(self):
        self.create("n", {"size": 2, "distance": "Cosine"})
        self.upsert("n", [{"id": 7, "vector": [3, 4]}])
        rec = self.cl.result("GET", "/collections/n/points/7")
        self.assertEqual(rec, {"id": 7, "payload": {}, "vector": [0.6, 0.8]})

    def test_ties_are_broken_by_id(self):
        self.create("t", {"size": 2, "distance": "Dot"})
        ids = [9, 3, "00000000-0000-0000-0000-000000000001", 5, 2 ** 63]
        self.upsert("t", [{"id": i, "vector": [1, 1]} for i in ids])
        hits = self.query("t", {"query": [1, 0], "limit": 10})
        self.assertEqual([h["id"] for h in hits], [3, 5, 9, 2 ** 63, "00000000-0000-0000-0000-000000000001"])


class FilterTest(Base):
    POINTS = [
        (1, {"city": "Berlin", "n": 1, "tags": ["a", "b"], "geo": {"lon": 13.40, "lat": 52.52},
             "when": "2024-01-01T00:00:00Z", "text": "quick brown fox", "x": None}),
        (2, {"city": ["Berlin", "London"], "n": 2, "tags": [], "geo": {"lon": -0.12, "lat": 51.50},
             "when": "2024-06-01T12:00:00Z", "nested": {"a": {"b": 5}}, "x": [None]}),
        (3, {"city": "Moscow", "n": 3.5, "tags": ["c"], "text": "lazy dog", "x": [1],
             "items": [{"k": "p", "v": 1}, {"k": "q", "v": 2}]}),
        (4, {"city": "London", "n": 10, "flag": True, "nested": {"a": {"b": 7}},
             "items": [{"k": "p", "v": 2}]}),
        (5, {}),
    ]

    def setUp(self):
        super().setUp()
        self.create("f", {"size": 2, "distance": "Dot"})
        self.upsert("f", [{"id": i, "vector": [1, 0], "payload": p} for i, p in self.POINTS])

    def ids(self, flt):
        res = self.cl.result("POST", "/collections/f/points/scroll", {"filter": flt, "limit": 100})
        got = [p["id"] for p in res["points"]]
        count = self.cl.result("POST", "/collections/f/points/count", {"filter": flt})["count"]
        self.assertEqual(count, len(got))
        return got

    def test_match(self):
        m = lambda k, v: {"must": [{"key": k, "match": v}]}
        self.assertEqual(self.ids(m("city", {"value": "Berlin"})), [1, 2])
        self.assertEqual(self.ids(m("city", {"value": "London"})), [2, 4])
        self.assertEqual(self.ids(m("n", {"value": 2})), [2])
        self.assertEqual(self.ids(m("n", {"value": 3})), [])      # 3.5 is not the integer 3
        self.assertEqual(self.ids(m("flag", {"value": True})), [4])
        self.assertEqual(self.ids(m("n", {"value": 1})), [1])     # true is not 1
        self.assertEqual(self.ids(m("city", {"any": ["Moscow", "London"]})), [2, 3, 4])
        # except: at least one value outside the list; missing field never matches
        self.assertEqual(self.ids(m("city", {"except": ["Berlin"]})), [2, 3, 4])
        self.assertEqual(self.ids(m("city", {"except": ["Berlin", "London", "Moscow"]})), [])
        self.assertEqual(self.ids(m("text", {"text": "brown"})), [1])
        self.assertEqual(self.ids(m("text", {"text_any": "cat dog"})), [3])
        self.assertEqual(self.ids(m("text", {"phrase": "quick brown"})), [1])
        self.assertEqual(self.ids(m("city", {"prefix": "Mos"})), [3])
        self.assertEqual(self.ids(m("nested.a.b", {"value": 7})), [4])
        self.assertEqual(self.ids(m("items[].k", {"value": "q"})), [3])
        self.assertEqual(self.ids(m("tags[0]", {"value": "c"})), [3])

    def test_range_and_counts(self):
        r = lambda k, v: {"must": [{"key": k, "range": v}]}
        self.assertEqual(self.ids(r("n", {"gt": 1, "lte": 3.5})), [2, 3])
        self.assertEqual(self.ids(r("n", {"gte": 10})), [4])
        self.assertEqual(self.ids(r("n", {"lt": 1})), [])
        self.assertEqual(self.ids(r("when", {"gte": "2024-03-01T00:00:00Z"})), [2])
        self.assertEqual(self.ids(r("items[].v", {"gt": 1})), [3, 4])
        self.assertEqual(self.ids({"must": [{"key": "tags", "values_count": {"gte": 1}}]}), [1, 3])
        self.assertEqual(self.ids({"must": [{"key": "tags", "values_count": {"lt": 1}}]}), [2, 4, 5])

    def test_empty_null_id_vector(self):
        self.assertEqual(self.ids({"must": [{"is_empty": {"key": "tags"}}]}), [2, 4, 5])
        self.assertEqual(self.ids({"must": [{"is_null": {"key": "x"}}]}), [1, 2])
        self.assertEqual(self.ids({"must_not": [{"is_null": {"key": "x"}}]}), [3, 4, 5])
        self.assertEqual(self.ids({"must": [{"is_empty": {"key": "x"}}]}), [1, 4, 5])
        self.assertEqual(self.ids({"must": [{"has_id": [5, 1, 99]}]}), [1, 5])
        self.assertEqual(self.ids({"must": [{"has_vector": ""}]}), [1, 2, 3, 4, 5])

    def test_geo(self):
        near_berlin = {"key": "geo", "geo_radius": {"center": {"lon": 13.41, "lat": 52.52}, "radius": 5000}}
        self.assertEqual(self.ids({"must": [near_berlin]}), [1])
        box = {"key": "geo", "geo_bounding_box": {"top_left": {"lon": -1, "lat": 53},
                                                  "bottom_right": {"lon": 1, "lat": 51}}}
        self.assertEqual(self.ids({"must": [box]}), [2])

    def test_boolean_structure(self):
        berlin = {"key": "city", "match": {"value": "Berlin"}}
        london = {"key": "city", "match": {"value": "London"}}
        self.assertEqual(self.ids({"should": [berlin, london]}), [1, 2, 4])
        self.assertEqual(self.ids({"must": [berlin], "must_not": [london]}), [1])
        self.assertEqual(self.ids({"must": berlin}), [1, 2])    # a single condition is allowed
        self.assertEqual(self.ids({"must": [{"should": [berlin], "must_not": [{"has_id": [1]}]}]}), [2])
        self.assertEqual(self.ids({"min_should": {"conditions": [berlin, london, {"has_id": [4]}],
                                                  "min_count": 2}}), [2, 4])
        nested = {"nested": {"key": "items", "filter": {"must": [
            {"key": "k", "match": {"value": "p"}}, {"key": "v", "match": {"value": 2}}]}}}
        self.assertEqual(self.ids({"must": [nested]}), [4])   # same element must satisfy both
        self.assert_no_violations()

    def test_invalid_filters(self):
        for flt, text in [
            ({"must": [{"key": "city"}]}, None),
            ({"muts": []}, "unknown field `muts`"),
            ({"must": [{"key": "city", "match": {"value": 1.5}}]}, "untagged enum ValueVariants"),
            ({"must": [{"key": "n", "range": {"gt": "x"}}]}, None),
            ({"must": [{"nested": {"key": "items"}}]}, None),
        ]:
            status, _, data = self.cl.raw("POST", "/collections/f/points/count", {"filter": flt})
            doc = json.loads(data)
            self.assertIn(status, (400, 422), flt)
            self.assertIn("error", doc["status"])
            if text:
                self.assertIn(text, doc["status"]["error"])
        self.assertGreaterEqual(len(self.violations()), 4)


class IdTest(Base):
    def test_u64_max_round_trip(self):
        self.create("u", {"size": 2, "distance": "Euclid"})
        big = U64_MAX
        self.upsert("u", [{"id": big, "vector": [1, 2], "payload": {"k": "max"}},
                          {"id": big - 1, "vector": [3, 4]},
                          {"id": 0, "vector": [5, 6]}])
        status, _, data = self.cl.raw("POST", "/collections/u/points", {"ids": [big]})
        self.assertEqual(status, 200)
        self.assertIn(b'"id":18446744073709551615', data)
        self.assertEqual(json.loads(data)["result"][0]["id"], big)
        rec = self.cl.result("GET", "/collections/u/points/%d" % big)
        self.assertEqual(rec["id"], big)
        self.assertEqual(rec["payload"], {"k": "max"})
        hits = self.query("u", {"query": [1, 2], "limit": 1})
        self.assertEqual(hits[0]["id"], big)
        page = self.cl.result("POST", "/collections/u/points/scroll", {"limit": 2})
        self.assertEqual([p["id"] for p in page["points"]], [0, big - 1])
        self.assertEqual(page["next_page_offset"], big)
        page = self.cl.result("POST", "/collections/u/points/scroll", {"limit": 2, "offset": big})
        self.assertEqual([p["id"] for p in page["points"]], [big])
        self.assertIsNone(page["next_page_offset"])
        self.assertEqual(self.cl.result("POST", "/collections/u/points/count", {"filter": {
            "must": [{"has_id": [big]}]}})["count"], 1)
        self.cl.result("POST", "/collections/u/points/delete?wait=true", {"points": [big]})
        status, _, data = self.cl.raw("GET", "/collections/u/points/%d" % big)
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(data)["status"]["error"], "Not found: Point with id %d does not exists!" % big)
        self.assert_no_violations()

    def test_bad_ids(self):
        self.create("u", {"size": 1, "distance": "Dot"})
        for bad in (2 ** 64, -1, 1.5, "12", "not-a-uuid", None, True):
            status, _, data = self.cl.raw("PUT", "/collections/u/points", {"points": [{"id": bad, "vector": [1]}]})
            self.assertEqual(status, 400, bad)
            self.assertIn("is not a valid point ID, valid values are either an unsigned integer or a UUID",
                          json.loads(data)["status"]["error"])
        status, _, data = self.cl.raw("GET", "/collections/u/points/abc")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["status"]["error"], 'Wrong input: Can not recognize "abc" as point id')

    def test_uuid_forms_normalize(self):
        self.create("u", {"size": 1, "distance": "Dot"})
        self.upsert("u", [{"id": "{936DA01F-9ABD-4D9D-80C7-02AF85C822A8}", "vector": [1]}])
        self.upsert("u", [{"id": "936da01f9abd4d9d80c702af85c822a8", "vector": [2]}])
        pts = self.cl.result("POST", "/collections/u/points/scroll", {"with_vector": True})["points"]
        self.assertEqual(pts, [{"id": "936da01f-9abd-4d9d-80c7-02af85c822a8", "payload": {}, "vector": [2.0]}])


class ValidationTest(Base):
    def test_shape_error_is_400_and_recorded(self):
        self.create("v", {"size": 3, "distance": "Cosine"})
        status, _, data = self.cl.raw("PUT", "/collections/v/points", {"points": [{"id": 1, "vectr": [1, 2, 3]}]})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["status"]["error"], "Format error in JSON body: missing field `vector`")
        v = self.violations()
        self.assertEqual(len(v), 1)
        self.assertEqual(v[0]["kind"], "request-body")
        self.assertEqual(v[0]["operation_id"], "upsert_points")
        self.assertEqual(v[0]["location"], "$.points[0]")

    def test_range_error_is_422(self):
        status, _, data = self.cl.raw("PUT", "/collections/v", {"vectors": {"size": 0, "distance": "Dot"}})
        self.assertEqual(status, 422)
        self.assertEqual(json.loads(data)["status"]["error"],
                         "Validation error in JSON body: [vectors.size: value 0 invalid, must be 1 or larger]")
        self.assertEqual(self.violations()[0]["location"], "$.vectors.size")

    def test_enum_and_type_errors(self):
        status, _, data = self.cl.raw("PUT", "/collections/v", {"vectors": {"size": 3, "distance": "L2"}})
        self.assertEqual(status, 400)
        self.assertIn("unknown variant `L2`, expected one of `Cosine`, `Euclid`, `Dot`, `Manhattan`",
                      json.loads(data)["status"]["error"])
        self.create("v", {"size": 3, "distance": "Dot"})
        status, _, data = self.cl.raw("PUT", "/collections/v/points", {"points": [{"id": 1, "vector": [1, "2", 3]}]})
        self.assertEqual(status, 400)
        status, _, data = self.cl.raw("POST", "/collections/v/points/scroll", {"limit": "10"})
        self.assertEqual(status, 400)
        self.assertIn('invalid type: string "10", expected usize', json.loads(data)["status"]["error"])

    def test_dimension_and_vector_name(self):
        self.create("v", {"size": 3, "distance": "Dot"})
        status, _, data = self.cl.raw("PUT", "/collections/v/points", {"points": [{"id": 1, "vector": [1, 2]}]})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["status"]["error"], "Wrong input: Vector dimension error: expected dim: 3, got 2")
        status, _, data = self.cl.raw("PUT", "/collections/v/points", {"points": [{"id": 1, "vector": {"x": [1, 2, 3]}}]})
        self.assertEqual(json.loads(data)["status"]["error"], "Wrong input: Not existing vector name error: x")
        self.assert_no_violations()   # valid per schema, rejected by the collection

    def test_syntax_content_type_and_empty_body(self):
        status, _, data = self.cl.raw("PUT", "/collections/v", b'{"vectors": ')
        self.assertEqual(status, 400)
        self.assertTrue(json.loads(data)["status"]["error"].startswith("Format error in JSON body: "))
        status, _, data = self.cl.raw("PUT", "/collections/v", b'{"vectors":{"size":1,"distance":"Dot"}}',
                                      headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["status"]["error"], "Content type error")
        status, _, data = self.cl.raw("POST", "/collections/v/points/count", b"")
        self.assertEqual(status, 400)
        kinds = [v["kind"] for v in self.violations()]
        self.assertEqual(kinds, ["request-body", "content-type", "request-body"])

    def test_unknown_and_deprecated_endpoints_are_recorded(self):
        self.create("v", {"size": 2, "distance": "Dot"})
        status, _, data = self.cl.raw("GET", "/collections/v/nothing")
        self.assertEqual(status, 404)
        self.assertEqual(data, b"")
        self.upsert("v", [{"id": 1, "vector": [1, 0]}])
        hits = self.cl.result("POST", "/collections/v/points/search", {"vector": [1, 0], "limit": 1})
        self.assertEqual(hits[0]["id"], 1)
        kinds = [v["kind"] for v in self.violations()]
        self.assertEqual(kinds, ["unknown-endpoint", "deprecated-endpoint"])

    def test_query_parameters_are_validated(self):
        self.create("v", {"size": 2, "distance": "Dot"})
        status, _, data = self.cl.raw("PUT", "/collections/v/points?wait=yes", {"points": []})
        self.assertEqual(status, 400)
        self.assertTrue(json.loads(data)["status"]["error"].startswith("Deserialize error in query parameters"))
        self.assertEqual(self.violations()[0]["kind"], "query")

    def test_responses_conform(self):
        # A tour of the API; the server validates its own responses against
        # the spec and would record a "response" violation.
        c = self.cl
        self.create("r", {"size": 2, "distance": "Cosine"})
        c.result("PUT", "/collections/nv", {"vectors": {"a": {"size": 2, "distance": "Dot"}},
                                            "hnsw_config": {"m": 8}, "optimizers_config": {"indexing_threshold": 0}})
        self.upsert("r", [{"id": i, "vector": [i, 1], "payload": {"i": i}} for i in range(1, 6)])
        c.result("PUT", "/collections/nv/points?wait=true", {"batch": {"ids": [1, 2], "vectors": {"a": [[1, 0], [0, 1]]}}})
        c.result("GET", "/collections")
        info = c.result("GET", "/collections/r")
        self.assertEqual(info["points_count"], 5)
        self.assertEqual(c.result("GET", "/collections/nv")["config"]["hnsw_config"]["m"], 8)
        c.result("GET", "/collections/r/exists")
        c.result("POST", "/collections/r/points", {"ids": [1, 2], "with_vector": True})
        c.result("POST", "/collections/r/points/scroll", {"limit": 2, "with_payload": {"include": ["i"]}})
        c.result("POST", "/collections/r/points/count", {"exact": False})
        c.result("POST", "/collections/r/points/query", {"query": [1, 1], "with_payload": True, "with_vector": True})
        c.result("POST", "/collections/r/points/query", {"limit": 2})
        c.result("POST", "/collections/r/points/query", {"query": {"recommend": {"positive": [1], "negative": [5]}}})
        c.result("POST", "/collections/r/points/query/batch", {"searches": [{"query": [1, 0]}, {"query": 2}]})
        c.result("POST", "/collections/nv/points/query", {"query": [1, 0], "using": "a", "with_vector": True})
        c.result("PUT", "/collections/r/index?wait=true", {"field_name": "i", "field_schema": "integer"})
        self.assertEqual(c.result("GET", "/collections/r")["payload_schema"]["i"]["points"], 5)
        c.result("POST", "/collections/r/points/payload?wait=true", {"payload": {"z": 1}, "filter": {}})
        c.result("PUT", "/collections/r/points/payload?wait=true", {"payload": {"z": 2}, "points": [1]})
        c.result("POST", "/collections/r/points/payload/delete?wait=true", {"keys": ["z"], "points": [2]})
        c.result("POST", "/collections/r/points/payload/clear?wait=true", {"points": [3]})
        c.result("POST", "/collections/r/points/batch?wait=true", {"operations": [
            {"upsert": {"points": [{"id": 9, "vector": [1, 2]}]}}, {"delete": {"points": [9]}}]})
        c.result("PUT", "/collections/nv/points/vectors?wait=true", {"points": [{"id": 1, "vector": {"a": [5, 5]}}]})
        c.result("POST", "/collections/nv/points/vectors/delete?wait=true", {"points": [2], "vector": ["a"]})
        c.result("POST", "/collections/aliases", {"actions": [{"create_alias": {"collection_name": "r", "alias_name": "ra"}}]})
        self.assertEqual(c.result("GET", "/collections/ra")["points_count"], 5)
        c.result("GET", "/aliases")
        c.result("GET", "/collections/r/aliases")
        snap = c.result("POST", "/collections/r/snapshots")
        c.result("GET", "/collections/r/snapshots")
        c.result("DELETE", "/collections/r/snapshots/" + snap["name"])
        full = c.result("POST", "/snapshots")
        c.result("GET", "/snapshots")
        c.result("DELETE", "/snapshots/" + full["name"])
        c.result("DELETE", "/collections/r/index/i?wait=true")
        c.result("PATCH", "/collections/r", {"optimizers_config": {"indexing_threshold": 100}})
        self.assertIs(c.result("DELETE", "/collections/r"), True)
        self.assertIs(c.result("DELETE", "/collections/r"), False)
        self.assert_no_violations()


class NoValidationTest(Base):
    extra_args = ("--no-validate-requests",)

    def test_handlers_still_reject_bad_input(self):
        self.create("v", {"size": 2, "distance": "Dot"})
        status, _, data = self.cl.raw("PUT", "/collections/v/points", {"points": [{"id": "x", "vector": [1, 2]}]})
        self.assertEqual(status, 400)
        self.assertIn("is not a valid point ID", json.loads(data)["status"]["error"])
        status, _, data = self.cl.raw("POST", "/collections/v/points/query", {"query": [1, 2], "filter": {"x": 1}})
        self.assertEqual(status, 400)
        status, _, data = self.cl.raw("PUT", "/collections/w", {"vectors": {"size": 2, "distance": "L1"}})
        self.assertEqual(status, 400)
        self.assertEqual(self.violations(), [])


class FaultTest(Base):
    def fault(self, **kw):
        self.assertEqual(self.cl.call("POST", "/__test/faults", kw), {"ok": True})

    def test_429_with_retry_after_then_recovery(self):
        self.fault(path_regex="^/collections$", method="GET", kind="429", retry_after=2, count=2)
        for _ in range(2):
            status, headers, data = self.cl.raw("GET", "/collections")
            self.assertEqual(status, 429)
            self.assertEqual(headers["retry-after"], "2")
            self.assertTrue(json.loads(data)["status"]["error"].startswith("Rate limiting exceeded: "))
        status, _, _ = self.cl.raw("PUT", "/collections/x", {"vectors": {"size": 1, "distance": "Dot"}})
        self.assertEqual(status, 200)   # method filter: PUT is not faulted
        self.assertEqual(self.cl.raw("GET", "/collections")[0], 200)
        log = self.cl.call("GET", "/__test/requests")
        self.assertEqual([(e["method"], e["status"], e["fault"]) for e in log],
                         [("GET", 429, "429"), ("GET", 429, "429"), ("PUT", 200, None), ("GET", 200, None)])
        self.assertEqual(self.cl.call("GET", "/__test/faults"), [])

    def test_503_and_500(self):
        self.fault(path_regex="/points", kind="503")
        self.fault(path_regex="/points", kind="500")
        self.assertEqual(self.cl.raw("POST", "/collections/x/points/count", {})[0], 503)
        self.assertEqual(self.cl.raw("POST", "/collections/x/points/count", {})[0], 500)
        self.assertEqual(self.cl.raw("POST", "/collections/x/points/count", {})[0], 404)

    def test_stall_delays_the_response(self):
        self.fault(path_regex="^/collections$", kind="stall", stall_ms=400)
        t0 = time.monotonic()
        self.assertEqual(self.cl.raw("GET", "/collections")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.35)
        # A client that gives up early sees a timeout; the server survives.
        self.fault(path_regex="^/collections$", kind="stall", stall_ms=1500)
        c = self.server.conn(timeout=0.3)
        c.request("GET", "/collections")
        with self.assertRaises(socket.timeout):
            c.getresponse()
        c.close()
        other = Client(self.server)
        self.assertEqual(other.raw("GET", "/collections")[0], 200)
        other.close()

    def test_drop_and_reset_close_without_response(self):
        for kind in ("drop", "reset"):
            self.fault(path_regex="^/collections$", kind=kind)
            c = self.server.conn()
            c.request("GET", "/collections")
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
                c.getresponse()
            c.close()
        log = self.cl.call("GET", "/__test/requests")
        self.assertEqual([(e["status"], e["fault"]) for e in log], [(None, "drop"), (None, "reset")])

    def test_bad_fault_specs(self):
        for spec in ({"kind": "explode"}, {"kind": "429", "count": 0}, {"kind": "stall", "path_regex": "("}):
            self.assertEqual(self.cl.raw("POST", "/__test/faults", spec)[0], 400)


class WireTest(Base):
    def test_chunked_body(self):
        body = json.dumps({"vectors": {"size": 4, "distance": "Dot"}}).encode()
        c = self.server.conn()
        c.putrequest("PUT", "/collections/chunky")
        c.putheader("Content-Type", "application/json")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(body), 7):
            part = body[i:i + 7]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        data = r.read()
        self.assertEqual(r.status, 200, data)
        self.assertEqual(json.loads(data)["result"], True)
        # keep-alive: the same connection serves the next request
        c.request("GET", "/collections/chunky/exists")
        self.assertEqual(json.loads(c.getresponse().read())["result"], {"exists": True})
        c.close()

    def test_keep_alive_many_requests(self):
        for _ in range(50):
            self.assertEqual(self.cl.raw("GET", "/collections")[0], 200)
        log = self.cl.call("GET", "/__test/requests")
        self.assertEqual(len(log), 50)
        # the log numbers the connections: one here, another for a new client
        self.assertEqual(len({e["connection"] for e in log}), 1)
        other = Client(self.server)
        other.raw("GET", "/collections")
        other.close()
        log = self.cl.call("GET", "/__test/requests")
        self.assertEqual(len({e["connection"] for e in log}), 2)

    def test_response_in_one_segment(self):
        # Headers and body leave in one write: a client that sends one
        # request at a time must not wait for its own delayed ACK of the
        # headers (~40 ms) before the body comes. The first read of the
        # answer holds all of it.
        self.create("nd", {"size": 2, "distance": "Dot"})
        body = b'{"exact":true}'
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            for _ in range(3):
                sock.sendall(b"POST /collections/nd/points/count HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
                data = sock.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int([v for k, v in (line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
                              if k.lower() == b"content-length"][0])
                self.assertEqual(len(rest), length, data)
                self.assertEqual(json.loads(rest)["result"], {"count": 0})

    def test_gzip_request_body(self):
        body = gzip.compress(json.dumps({"vectors": {"size": 2, "distance": "Dot"}}).encode())
        status, _, data = self.cl.raw("PUT", "/collections/gz", body,
                                      headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        self.assertEqual(status, 200, data)

    def test_envelopes(self):
        status, headers, data = self.cl.raw("GET", "/")
        self.assertEqual(status, 200)
        doc = json.loads(data)
        self.assertEqual(doc["title"], "qdrant - vector search engine")
        self.assertEqual(doc["version"], "1.19.0")
        self.assertNotIn("result", doc)
        status, headers, data = self.cl.raw("GET", "/collections/missing")
        self.assertEqual(status, 404)
        self.assertEqual(headers["content-type"], "application/json")
        doc = json.loads(data)
        self.assertEqual(set(doc), {"status", "time"})
        self.assertEqual(doc["status"]["error"], "Not found: Collection `missing` doesn't exist!")
        self.create("dup", {"size": 1, "distance": "Dot"})
        status, _, data = self.cl.raw("PUT", "/collections/dup", {"vectors": {"size": 1, "distance": "Dot"}})
        self.assertEqual(status, 409)
        self.assertEqual(json.loads(data)["status"]["error"], "Wrong input: Collection `dup` already exists!")
        status, _, data = self.cl.raw("POST", "/collections/dup/snapshots?wait=false")
        self.assertEqual(status, 202)
        doc = json.loads(data)
        self.assertEqual(doc["status"], "accepted")
        self.assertNotIn("result", doc)
        self.assertEqual(self.cl.raw("GET", "/healthz")[2], b"healthz check passed")
        up = self.cl.result("PUT", "/collections/dup/points", {"points": [{"id": 1, "vector": [1]}]})
        self.assertEqual(up["status"], "acknowledged")


class IdleTimeoutTest(Base):
    extra_args = ("--idle-timeout", "0.5")

    def test_idle_connection_is_closed(self):
        c = self.server.conn()
        c.request("GET", "/collections")
        c.getresponse().read()
        c.sock.settimeout(30)
        self.assertEqual(c.sock.recv(1), b"")    # the server hung up
        c.close()


class SmallBodyLimitTest(Base):
    extra_args = ("--max-request-size-mb", "1")

    def test_oversized_body(self):
        self.create("b", {"size": 1, "distance": "Dot"})
        big = {"points": [{"id": i, "vector": [0.123456789]} for i in range(40000)]}
        status, _, data = self.cl.raw("PUT", "/collections/b/points", big)
        self.assertEqual(status, 400)
        self.assertIn("is larger than allowed (limit: 1048576 bytes)", json.loads(data)["status"]["error"])


class AuthTest(Base):
    extra_args = ("--api-key", "k3y")

    def test_api_key(self):
        status, headers, data = self.cl.raw("GET", "/collections")
        self.assertEqual(status, 401)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        self.assertEqual(data, b"Must provide an API key or an Authorization bearer token")
        status, _, data = self.cl.raw("GET", "/collections", headers={"api-key": "nope"})
        self.assertEqual((status, data), (401, b"Invalid API key or JWT"))
        self.assertEqual(self.cl.raw("GET", "/collections", headers={"api-key": "k3y"})[0], 200)
        self.assertEqual(self.cl.raw("GET", "/collections", headers={"Authorization": "Bearer k3y"})[0], 200)
        for open_path in ("/", "/healthz", "/livez", "/readyz"):
            self.assertEqual(self.cl.raw("GET", open_path)[0], 200, open_path)
        log = self.cl.raw("GET", "/__test/requests")[2]
        self.assertNotIn(b"k3y", log)
        self.assertIn(b"<redacted>", log)


class LifecycleTest(unittest.TestCase):
    def test_stdin_eof_stops(self):
        s = ServerProcess()
        s.proc.stdin.close()
        self.assertEqual(s.proc.wait(10), 0)
        s.proc.stdout.close()

    def test_sigterm_stops(self):
        s = ServerProcess()
        s.proc.send_signal(signal.SIGTERM)
        self.assertEqual(s.proc.wait(10), 0)
        s.proc.stdin.close()
        s.proc.stdout.close()

    def test_log_file(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "log.jsonl")
            s = ServerProcess("--log", path, "--api-key", "zz-secret")
            c = Client(s, {"api-key": "zz-secret"})
            c.raw("GET", "/collections")
            c.close()
            s.stop()
            with open(path, encoding="utf-8") as f:
                text = f.read()
            lines = [json.loads(line) for line in text.splitlines()]
            self.assertEqual(lines[0]["path"], "/collections")
            self.assertEqual(lines[0]["status"], 200)
            self.assertNotIn("zz-secret", text)


if __name__ == "__main__":
    unittest.main()
