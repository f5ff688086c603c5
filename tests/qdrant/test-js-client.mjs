// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Conformance of tests/qdrant/qdrantserver.py against the official Qdrant
// REST client, @qdrant/js-client-rest (pinned in package.json): every call
// below goes through the real client, so a response shape the client does not
// accept, or a request body the server's OpenAPI validator rejects, fails here.
//
//   node --test-reporter=tap tests/qdrant/test-js-client.mjs         (TAP)
//   node tests/qdrant/test-js-client.mjs --bench [points] [dim]      (benchmark)
//
// Environment: QDRANT_SERVER (path to qdrantserver.py, default next to this
// file), PYTHON (default python3).  Needs `npm ci --prefix tests/qdrant`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER = process.env.QDRANT_SERVER || path.join(here, 'qdrantserver.py');
const PYTHON = process.env.PYTHON || 'python3';
const BENCH = process.argv.includes('--bench');

let qdrant;
try {
  qdrant = await import('@qdrant/js-client-rest');
} catch (e) {
  console.log(`Bail out! @qdrant/js-client-rest is not installed (${e.code ?? e.message}); ` +
              'run `npm ci --prefix tests/qdrant` first');
  process.exit(1);
}
const {
  QdrantClient,
  QdrantClientResourceExhaustedError,
  QdrantClientUnexpectedResponseError,
} = qdrant;

// ---------------------------------------------------------------------------
// server process
// ---------------------------------------------------------------------------

async function startServer(extraArgs = []) {
  const child = spawn(PYTHON, [SERVER, '--port', '0', ...extraArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('qdrantserver.py did not print LISTENING within 30 s')), 30000);
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      const m = /^LISTENING (\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`qdrantserver.py exited early with code ${code}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    child,
    port,
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();                      // EOF on stdin stops the server
      const t = setTimeout(() => child.kill('SIGTERM'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function raw(srv, method, p, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(srv.url + p, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

async function violations(srv) {
  return JSON.parse((await raw(srv, 'GET', '/__test/violations')).text);
}

async function resetViolations(srv) {
  await raw(srv, 'POST', '/__test/reset', { only: ['violations'] });
}

async function assertNoViolations(srv) {
  const v = await violations(srv);
  assert.deepEqual(v, [], `schema violations: ${JSON.stringify(v, null, 1)}`);
}

// Runs fn, expects it to throw; returns the error.
async function rejects(fn) {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail');
}

// ---------------------------------------------------------------------------
// data and expected scores (mirrors the server: f32 storage, f64 sums, f32 out)
// ---------------------------------------------------------------------------

function mulberry32(seed) {
  return function next() {
    seed |= 0;
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randVec(rng, dim) {
  const v = new Array(dim);
  for (let i = 0; i < dim; i++) v[i] = Math.round((rng() * 2 - 1) * 1e6) / 1e6;
  return v;
}

function prep(distance, v) {
  const a = Float32Array.from(v);
  if (distance === 'Cosine') {
    const n = Math.hypot(...a);
    if (n > 1.1920929e-7) {
      const inv = 1 / n;
      return Float32Array.from(a, (x) => x * inv);
    }
  }
  return a;
}

function score(distance, q, v) {
  let s = 0;
  switch (distance) {
    case 'Cosine':
    case 'Dot':
      for (let i = 0; i < q.length; i++) s += q[i] * v[i];
      return Math.fround(s);
    case 'Euclid':
      for (let i = 0; i < q.length; i++) s += (q[i] - v[i]) ** 2;
      return Math.fround(Math.sqrt(s));
    case 'Manhattan':
      for (let i = 0; i < q.length; i++) s += Math.abs(q[i] - v[i]);
      return Math.fround(s);
    default:
      throw new Error(distance);
  }
}

const largerBetter = (d) => d === 'Cosine' || d === 'Dot';

function expectedTop(distance, points, query, limit, pred = () => true) {
  const q = prep(distance, query);
  const scored = points.filter(pred).map((p) => ({ id: p.id, s: score(distance, q, prep(distance, p.vector)) }));
  scored.sort((a, b) => (largerBetter(distance) ? b.s - a.s : a.s - b.s) || (a.id - b.id));
  return scored.slice(0, limit);
}

// Hits must come in the expected order; scores equal within f32 rounding.
function assertHits(hits, expected, what) {
  assert.equal(hits.length, expected.length, `${what}: hit count`);
  for (let i = 0; i < hits.length; i++) {
    assert.equal(hits[i].id, expected[i].id, `${what}: hit ${i} id (got ${JSON.stringify(hits.map((h) => h.id))}, ` +
                 `expected ${JSON.stringify(expected.map((h) => h.id))})`);
    const tol = 2e-6 * Math.max(1, Math.abs(expected[i].s));
    assert.ok(Math.abs(hits[i].score - expected[i].s) <= tol,
              `${what}: hit ${i} score ${hits[i].score} vs expected ${expected[i].s}`);
  }
}

const CITIES = ['Berlin', 'London', 'Paris', 'Moscow', 'Rome'];

function makePoints(n, dim, seed) {
  const rng = mulberry32(seed);
  const pts = [];
  for (let i = 1; i <= n; i++) {
    const payload = {
      city: CITIES[i % CITIES.length],
      tags: [CITIES[(i + 1) % CITIES.length], CITIES[(i + 2) % CITIES.length]],
      count: i,
      price: i * 1.5,
      meta: { owner: { name: i % 2 ? 'alice' : 'bob' }, level: i % 4 },
      text: i % 3 === 0 ? 'the quick brown fox' : 'lazy dogs sleep',
      reviews: [{ stars: i % 5, user: `u${i}` }, { stars: (i + 2) % 5, user: `v${i}` }],
    };
    if (i % 7 === 0) payload.maybe = null;
    else if (i % 7 === 1) payload.maybe = [];
    else if (i % 7 === 2) payload.maybe = 'x';
    pts.push({ id: i, vector: randVec(rng, dim), payload });
  }
  return pts;
}

// ---------------------------------------------------------------------------
// benchmark mode
// ---------------------------------------------------------------------------

if (BENCH) {
  const args = process.argv.slice(process.argv.indexOf('--bench') + 1).filter((a) => /^\d+$/.test(a));
  const total = Number(args[0] ?? 100000);
  const dim = Number(args[1] ?? 384);
  const batch = 256;
  const concurrency = Number(process.env.QDRANT_BENCH_CONCURRENCY ?? 4);
  const srv = await startServer();
  try {
    const client = new QdrantClient({ url: srv.url, checkCompatibility: false });
    await client.createCollection('bench', { vectors: { size: dim, distance: 'Cosine' } });
    const rng = mulberry32(42);
    let next = 0;
    const t0 = performance.now();
    async function worker() {
      for (;;) {
        const start = next;
        if (start >= total) return;
        next += batch;
        const n = Math.min(batch, total - start);
        const ids = new Array(n);
        const vectors = new Array(n);
        const payloads = new Array(n);
        for (let i = 0; i < n; i++) {
          ids[i] = start + i + 1;
          vectors[i] = randVec(rng, dim);
          payloads[i] = { n: start + i };
        }
        await client.upsert('bench', { wait: true, batch: { ids, vectors, payloads } });
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    const secs = (performance.now() - t0) / 1000;
    const { count } = await client.count('bench', { exact: true });
    const tq = performance.now();
    const hits = await client.query('bench', { query: randVec(rng, dim), limit: 10 });
    const qsecs = (performance.now() - tq) / 1000;
    const v = await violations(srv);
    console.log(`# upserted ${total} points x ${dim} dims in batches of ${batch} ` +
                `(${concurrency} in flight) in ${secs.toFixed(2)} s = ${(total / secs).toFixed(0)} points/s`);
    console.log(`# brute-force query over ${count} points: ${qsecs.toFixed(2)} s, ${hits.points.length} hits`);
    console.log(`# schema violations: ${v.length}`);
    if (count !== total || v.length !== 0 || hits.points.length !== 10) {
      console.log('# FAILED');
      process.exitCode = 1;
    }
  } finally {
    await srv.stop();
  }
  process.exit();
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

let srv;
let client;
const warnings = [];
const realWarn = console.warn;

before(async () => {
  console.warn = (...a) => warnings.push(a.join(' '));
  srv = await startServer();
  client = new QdrantClient({ url: srv.url });   // checkCompatibility: true (default)
});

after(async () => {
  console.warn = realWarn;
  if (srv) await srv.stop();
});

test('version check of the official client passes against 1.19.0', async () => {
  const info = await client.versionInfo();
  assert.equal(info.title, 'qdrant - vector search engine');
  assert.equal(info.version, '1.19.0');
  await client.getCollections();
  // Wait until the client's own compatibility probe (a second GET /) has
  // been answered, then give its promise a moment to settle.
  for (let i = 0; i < 100; i++) {
    const log = JSON.parse((await raw(srv, 'GET', '/__test/requests')).text);
    if (log.filter((e) => e.method === 'GET' && e.path === '/').length >= 2) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(warnings.filter((w) => /incompatible|Failed to obtain/.test(w)), []);

  // The check is real: a 2.0.0 server makes the same client warn.
  const other = await startServer(['--version', '2.0.0']);
  try {
    const c2 = new QdrantClient({ url: other.url });
    await c2.getCollections();
    for (let i = 0; i < 50 && !warnings.some((w) => /incompatible/.test(w)); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(warnings.some((w) => /Client version 1\.19\.0 is incompatible with server version 2\.0\.0/.test(w)),
              `warnings: ${JSON.stringify(warnings)}`);
  } finally {
    await other.stop();
  }
});

test('health endpoints answer plain text', async () => {
  for (const [p, text] of [['/healthz', 'healthz check passed'], ['/livez', 'healthz check passed'],
    ['/readyz', 'all shards are ready']]) {
    const r = await raw(srv, 'GET', p);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    assert.equal(r.text, text);
  }
});

const DIST = ['Cosine', 'Dot', 'Euclid', 'Manhattan'];
const DIM = 8;
const POINTS = makePoints(60, DIM, 7);

test('create, get, list, exists for every distance', async () => {
  for (const d of DIST) {
    const name = `single_${d.toLowerCase()}`;
    assert.equal(await client.collectionExists(name).then((r) => r.exists), false);
    assert.equal(await client.createCollection(name, { vectors: { size: DIM, distance: d } }), true);
    const info = await client.getCollection(name);
    assert.equal(info.status, 'green');
    assert.equal(info.config.params.vectors.size, DIM);
    assert.equal(info.config.params.vectors.distance, d);
    assert.equal(info.points_count, 0);
    assert.deepEqual(await client.collectionExists(name), { exists: true });
  }
  const { collections } = await client.getCollections();
  for (const d of DIST) assert.ok(collections.some((c) => c.name === `single_${d.toLowerCase()}`));

  const err = await rejects(() => client.createCollection('single_cosine', { vectors: { size: DIM, distance: 'Cosine' } }));
  assert.equal(err.status, 409);
  assert.equal(err.data.status.error, 'Wrong input: Collection `single_cosine` already exists!');
  await assertNoViolations(srv);
});

test('upsert (list and batch forms) and exact scoring for every distance', async () => {
  for (const d of DIST) {
    const name = `single_${d.toLowerCase()}`;
    const half = POINTS.length / 2;
    const r1 = await client.upsert(name, { wait: true, points: POINTS.slice(0, half) });
    assert.equal(r1.status, 'completed');
    assert.equal(typeof r1.operation_id, 'number');
    const rest = POINTS.slice(half);
    const r2 = await client.upsert(name, {
      wait: false,
      batch: { ids: rest.map((p) => p.id), vectors: rest.map((p) => p.vector), payloads: rest.map((p) => p.payload) },
    });
    assert.equal(r2.status, 'acknowledged');
    assert.equal((await client.count(name, { exact: true })).count, POINTS.length);

    const rng = mulberry32(99);
    for (let k = 0; k < 5; k++) {
      const q = randVec(rng, DIM);
      const res = await client.query(name, { query: q, limit: 7, with_payload: true });
      assertHits(res.points, expectedTop(d, POINTS, q, 7), `${d} query ${k}`);
      for (const h of res.points) {
        assert.equal(typeof h.version, 'number');
        assert.deepEqual(h.payload, POINTS[h.id - 1].payload);
        assert.equal(h.vector, undefined);
      }
    }
    // offset, with_vector, {nearest: …}
    const q = randVec(rng, DIM);
    const all = expectedTop(d, POINTS, q, 10);
    const res = await client.query(name, { query: { nearest: q }, limit: 4, offset: 3, with_vector: true });
    assertHits(res.points, all.slice(3, 7), `${d} offset`);
    const stored = prep(d, POINTS[res.points[0].id - 1].vector);
    assert.equal(res.points[0].vector.length, DIM);
    res.points[0].vector.forEach((x, i) => assert.equal(Math.fround(x), stored[i]));
    assert.equal(res.points[0].payload, undefined);

    // score_threshold: a lower bound for similarities, an upper bound for distances
    const thr = all[4].s;
    const thrRes = await client.query(name, { query: q, limit: 50, score_threshold: thr });
    const keep = expectedTop(d, POINTS, q, 100).filter((h) => (largerBetter(d) ? h.s > thr : h.s < thr));
    assertHits(thrRes.points, keep, `${d} score_threshold`);
    assert.equal(thrRes.points.length, 4);
  }
  await assertNoViolations(srv);
});

test('query by point id excludes that point', async () => {
  const res = await client.query('single_dot', { query: 5, limit: 3 });
  const expected = expectedTop('Dot', POINTS.filter((p) => p.id !== 5), POINTS[4].vector, 3);
  assertHits(res.points, expected, 'query by id');
  await assertNoViolations(srv);
});

test('filters of every kind', async () => {
  const q = randVec(mulberry32(5), DIM);
  const cases = [
    ['match value', { must: [{ key: 'city', match: { value: 'Berlin' } }] }, (p) => p.payload.city === 'Berlin'],
    ['match value in array', { must: [{ key: 'tags', match: { value: 'Rome' } }] }, (p) => p.payload.tags.includes('Rome')],
    ['match integer', { must: [{ key: 'meta.level', match: { value: 2 } }] }, (p) => p.payload.meta.level === 2],
    ['match any', { must: [{ key: 'city', match: { any: ['Paris', 'Rome'] } }] },
      (p) => ['Paris', 'Rome'].includes(p.payload.city)],
    ['match except', { must: [{ key: 'city', match: { except: ['Paris', 'Rome'] } }] },
      (p) => !['Paris', 'Rome'].includes(p.payload.city)],
    ['match text', { must: [{ key: 'text', match: { text: 'brown' } }] }, (p) => p.payload.text.includes('brown')],
    ['range', { must: [{ key: 'price', range: { gt: 10, lte: 30 } }] }, (p) => p.payload.price > 10 && p.payload.price <= 30],
    ['range gte/lt', { must: [{ key: 'count', range: { gte: 50, lt: 55 } }] }, (p) => p.payload.count >= 50 && p.payload.count < 55],
    ['nested key a.b.c', { must: [{ key: 'meta.owner.name', match: { value: 'alice' } }] },
      (p) => p.payload.meta.owner.name === 'alice'],
    ['array of objects reviews[].stars', { must: [{ key: 'reviews[].stars', match: { value: 4 } }] },
      (p) => p.payload.reviews.some((r) => r.stars === 4)],
    ['has_id', { must: [{ has_id: [3, 9, 27, 1000] }] }, (p) => [3, 9, 27].includes(p.id)],
    ['is_empty', { must: [{ is_empty: { key: 'maybe' } }] },
      (p) => !('maybe' in p.payload) || p.payload.maybe === null || (Array.isArray(p.payload.maybe) && p.payload.maybe.length === 0)],
    ['is_null', { must: [{ is_null: { key: 'maybe' } }] }, (p) => p.payload.maybe === null],
    ['must_not', { must_not: [{ key: 'city', match: { value: 'Berlin' } }] }, (p) => p.payload.city !== 'Berlin'],
    ['should', { should: [{ key: 'city', match: { value: 'Berlin' } }, { key: 'count', range: { lt: 5 } }] },
      (p) => p.payload.city === 'Berlin' || p.payload.count < 5],
    ['nested filter', { must: [{ should: [{ key: 'city', match: { value: 'Rome' } }], must_not: [{ has_id: [4] }] }] },
      (p) => p.payload.city === 'Rome' && p.id !== 4],
    ['nested condition', { must: [{ nested: { key: 'reviews', filter: { must: [{ key: 'stars', match: { value: 0 } }, { key: 'user', match: { value: 'v3' } }] } } }] },
      (p) => p.payload.reviews.some((r) => r.stars === 0 && r.user === 'v3')],
    ['min_should', { min_should: { min_count: 2, conditions: [
      { key: 'city', match: { value: 'Berlin' } }, { key: 'meta.owner.name', match: { value: 'alice' } },
      { key: 'count', range: { gt: 30 } }] } },
    (p) => [p.payload.city === 'Berlin', p.payload.meta.owner.name === 'alice', p.payload.count > 30].filter(Boolean).length >= 2],
    ['values_count', { must: [{ key: 'tags', values_count: { gte: 2 } }] }, () => true],
  ];
  for (const [what, filter, pred] of cases) {
    const res = await client.query('single_euclid', { query: q, filter, limit: 100 });
    const expected = expectedTop('Euclid', POINTS, q, 100, pred);
    assert.ok(expected.length > 0, `${what}: test data must match something`);
    assertHits(res.points, expected, what);
    const { count } = await client.count('single_euclid', { filter, exact: true });
    assert.equal(count, expected.length, `${what}: count`);
  }
  await assertNoViolations(srv);
});

test('invalid filters are rejected with 400 and recorded as violations', async () => {
  const err = await rejects(() => client.query('single_dot', { query: randVec(mulberry32(1), DIM), filter: { musts: [] } }));
  assert.equal(err.status, 400);
  assert.match(err.data.status.error, /^Format error in JSON body: unknown field `musts`/);
  const err2 = await rejects(() => client.query('single_dot', { query: randVec(mulberry32(1), DIM), limit: 0 }));
  assert.equal(err2.status, 422);
  assert.equal(err2.data.status.error, 'Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]');
  const v = await violations(srv);
  assert.equal(v.length, 2);
  assert.equal(v[0].location, '$.filter');
  assert.equal(v[1].location, '$.limit');
  await resetViolations(srv);
});

test('query batch returns one result list per search, in order', async () => {
  const rng = mulberry32(11);
  const q1 = randVec(rng, DIM);
  const q2 = randVec(rng, DIM);
  const res = await client.queryBatch('single_cosine', {
    searches: [
      { query: q1, limit: 3 },
      { query: q2, limit: 5, filter: { must: [{ key: 'city', match: { value: 'Paris' } }] }, with_payload: ['city'] },
    ],
  });
  assert.equal(res.length, 2);
  assertHits(res[0].points, expectedTop('Cosine', POINTS, q1, 3), 'batch 0');
  assertHits(res[1].points, expectedTop('Cosine', POINTS, q2, 5, (p) => p.payload.city === 'Paris'), 'batch 1');
  for (const h of res[1].points) assert.deepEqual(h.payload, { city: 'Paris' });
  await assertNoViolations(srv);
});

test('scroll pages to the end, every point exactly once', async () => {
  const seen = [];
  let offset;
  let pages = 0;
  do {
    const page = await client.scroll('single_manhattan', { limit: 7, offset, with_payload: false });
    pages++;
    for (const p of page.points) {
      seen.push(p.id);
      assert.equal(p.payload, undefined);
    }
    offset = page.next_page_offset ?? undefined;
    assert.ok(pages < 100);
  } while (offset !== undefined);
  assert.deepEqual(seen, POINTS.map((p) => p.id));
  assert.equal(pages, Math.ceil(POINTS.length / 7));

  const filtered = await client.scroll('single_manhattan', {
    limit: 100, filter: { must: [{ key: 'city', match: { value: 'London' } }] }, with_vector: true,
  });
  assert.deepEqual(filtered.points.map((p) => p.id), POINTS.filter((p) => p.payload.city === 'London').map((p) => p.id));
  assert.equal(filtered.next_page_offset, null);
  assert.equal(filtered.points[0].vector.length, DIM);
  await assertNoViolations(srv);
});

test('retrieve, delete by id and by filter, 404 for a deleted point', async () => {
  const name = 'single_dot';
  const got = await client.retrieve(name, { ids: [2, 4, 999], with_vector: true });
  assert.deepEqual(got.map((r) => r.id), [2, 4]);
  assert.deepEqual(got[0].payload, POINTS[1].payload);
  got[0].vector.forEach((x, i) => assert.equal(Math.fround(x), Math.fround(POINTS[1].vector[i])));

  const before = (await client.count(name)).count;
  const d1 = await client.delete(name, { wait: true, points: [2, 4] });
  assert.equal(d1.status, 'completed');
  assert.equal((await client.count(name)).count, before - 2);
  assert.deepEqual(await client.retrieve(name, { ids: [2, 4] }), []);

  const err = await rejects(() => client.api().getPoint({ collection_name: name, id: 2 }));
  assert.equal(err.status, 404);
  assert.equal(err.data.status.error, 'Not found: Point with id 2 does not exists!');

  const londoners = POINTS.filter((p) => p.payload.city === 'London' && p.id !== 2 && p.id !== 4).length;
  await client.delete(name, { wait: true, filter: { must: [{ key: 'city', match: { value: 'London' } }] } });
  assert.equal((await client.count(name)).count, before - 2 - londoners);
  assert.equal((await client.count(name, { filter: { must: [{ key: 'city', match: { value: 'London' } }] } })).count, 0);
  await assertNoViolations(srv);
});

test('payload operations', async () => {
  const name = 'single_cosine';
  await client.setPayload(name, { payload: { flag: true }, points: [1, 2] });
  await client.overwritePayload(name, { payload: { only: 1 }, points: [3] });
  await client.deletePayload(name, { keys: ['city'], points: [1] });
  await client.clearPayload(name, { points: [4] });
  const got = await client.retrieve(name, { ids: [1, 2, 3, 4] });
  assert.equal(got[0].payload.flag, true);
  assert.equal(got[0].payload.city, undefined);
  assert.equal(got[1].payload.flag, true);
  assert.equal(got[1].payload.city, POINTS[1].payload.city);
  assert.deepEqual(got[2].payload, { only: 1 });
  assert.deepEqual(got[3].payload, {});
  await assertNoViolations(srv);
});

test('named vectors', async () => {
  const name = 'named';
  await client.createCollection(name, {
    vectors: { image: { size: 4, distance: 'Dot' }, text: { size: 3, distance: 'Cosine' } },
  });
  const info = await client.getCollection(name);
  assert.deepEqual(info.config.params.vectors, { image: { size: 4, distance: 'Dot' }, text: { size: 3, distance: 'Cosine' } });
  const rng = mulberry32(3);
  const pts = [];
  for (let i = 1; i <= 20; i++) {
    pts.push({ id: i, vector: { image: randVec(rng, 4), text: randVec(rng, 3) }, payload: { i } });
  }
  pts.push({ id: 21, vector: { image: randVec(rng, 4) }, payload: { i: 21 } });
  await client.upsert(name, { points: pts });
  const qi = randVec(rng, 4);
  const qt = randVec(rng, 3);
  const ri = await client.query(name, { query: qi, using: 'image', limit: 5 });
  assertHits(ri.points, expectedTop('Dot', pts.map((p) => ({ id: p.id, vector: p.vector.image })), qi, 5), 'image');
  const rt = await client.query(name, { query: qt, using: 'text', limit: 30, with_vector: ['text'] });
  assertHits(rt.points, expectedTop('Cosine', pts.filter((p) => p.vector.text).map((p) => ({ id: p.id, vector: p.vector.text })), qt, 30), 'text');
  assert.deepEqual(Object.keys(rt.points[0].vector), ['text']);

  const noUsing = await rejects(() => client.query(name, { query: qi, limit: 1 }));
  assert.equal(noUsing.status, 400);
  assert.equal(noUsing.data.status.error, 'Wrong input: Not existing vector name error: ');
  const wrongDim = await rejects(() => client.query(name, { query: qt, using: 'image' }));
  assert.equal(wrongDim.data.status.error, 'Wrong input: Vector dimension error: expected dim: 4, got 3');
  await assertNoViolations(srv);
});

test('UUID ids in any textual form are normalized; u64 ids are exact', async () => {
  const name = 'ids';
  await client.createCollection(name, { vectors: { size: 2, distance: 'Euclid' } });
  const forms = [
    '936DA01F9ABD4d9d80C702AF85C822A8',
    '550e8400-e29b-41d4-a716-446655440000',
    'urn:uuid:F9168C5E-CEB2-4faa-B6BF-329BF39FA1E4',
    '{6ba7b810-9dad-11d1-80b4-00c04fd430c8}',
  ];
  await client.upsert(name, { points: forms.map((id, i) => ({ id, vector: [i, 0] })) });
  const got = await client.scroll(name, { limit: 10 });
  const ids = got.points.map((p) => p.id).sort();
  assert.deepEqual(ids, [
    '550e8400-e29b-41d4-a716-446655440000', '6ba7b810-9dad-11d1-80b4-00c04fd430c8',
    '936da01f-9abd-4d9d-80c7-02af85c822a8', 'f9168c5e-ceb2-4faa-b6bf-329bf39fa1e4',
  ]);
  const bad = await rejects(() => client.upsert(name, { points: [{ id: 'not-a-uuid', vector: [0, 0] }] }));
  assert.equal(bad.status, 400);
  assert.equal(bad.data.status.error,
    'Format error in JSON body: value not-a-uuid is not a valid point ID, valid values are either an unsigned integer or a UUID');
  const neg = await rejects(() => client.upsert(name, { points: [{ id: -1, vector: [0, 0] }] }));
  assert.equal(neg.status, 400);
  await resetViolations(srv);

  // 2^64-1 does not fit a JS number. Through the client it only works where
  // JSON.rawJSON exists (Node >= 21, BigInt ids); always check the wire.
  const MAX = '18446744073709551615';
  const up = await raw(srv, 'PUT', `/collections/${name}/points?wait=true`,
                       `{"points":[{"id":${MAX},"vector":[5,5],"payload":{"big":true}}]}`);
  assert.equal(up.status, 200, up.text);
  const back = await raw(srv, 'POST', `/collections/${name}/points`, `{"ids":[${MAX}]}`);
  assert.match(back.text, new RegExp(`"id":${MAX}[,}]`));
  const hit = await raw(srv, 'POST', `/collections/${name}/points/query`, '{"query":[5,5],"limit":1}');
  assert.match(hit.text, new RegExp(`"id":${MAX},"version":\\d+,"score":0`));
  const over = await raw(srv, 'PUT', `/collections/${name}/points`, '{"points":[{"id":18446744073709551616,"vector":[1,1]}]}');
  assert.equal(over.status, 400);
  if ('rawJSON' in JSON) {
    const r = await client.retrieve(name, { ids: [BigInt(MAX)] });
    assert.equal(r[0].id, BigInt(MAX));
    await client.upsert(name, { points: [{ id: BigInt(MAX) - 1n, vector: [1, 2] }] });
    assert.equal((await client.retrieve(name, { ids: [BigInt(MAX) - 1n] }))[0].id, BigInt(MAX) - 1n);
  } else {
    // Node 20: the client parses the id as a lossy double; the server is exact.
    const r = await client.retrieve(name, { ids: [1] });
    assert.deepEqual(r, []);
  }
  await resetViolations(srv);
});

test('snapshots: create, list, download, delete; wait=false is 202', async () => {
  const name = 'single_euclid';
  const snap = await client.createSnapshot(name);
  assert.match(snap.name, /^single_euclid-\d+-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.snapshot$/);
  assert.equal(typeof snap.size, 'number');
  assert.match(snap.checksum, /^[0-9a-f]{64}$/);
  assert.match(snap.creation_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
  const list = await client.listSnapshots(name);
  assert.deepEqual(list.map((s) => s.name), [snap.name]);
  const dl = await fetch(`${srv.url}/collections/${name}/snapshots/${snap.name}`);
  const bytes = Buffer.from(await dl.arrayBuffer());
  assert.equal(bytes.length, snap.size);
  assert.equal(await client.deleteSnapshot(name, snap.name), true);
  assert.deepEqual(await client.listSnapshots(name), []);
  const missing = await rejects(() => client.deleteSnapshot(name, snap.name));
  assert.equal(missing.status, 404);

  // The official client treats 202 as unexpected, exactly as against Qdrant.
  const acc = await rejects(() => client.createSnapshot(name, { wait: false }));
  assert.ok(acc instanceof QdrantClientUnexpectedResponseError, String(acc));
  assert.match(acc.message, /^Unexpected Response: 202 \(Accepted\)/);
  const r = await raw(srv, 'POST', `/collections/${name}/snapshots?wait=false`);
  assert.equal(r.status, 202);
  assert.equal(JSON.parse(r.text).status, 'accepted');
  await assertNoViolations(srv);
});

test('missing collection: 404 with the real text', async () => {
  const err = await rejects(() => client.getCollection('nope'));
  assert.equal(err.status, 404);
  assert.equal(err.data.status.error, 'Not found: Collection `nope` doesn\'t exist!');
  assert.equal(typeof err.data.time, 'number');
  const err2 = await rejects(() => client.upsert('nope', { points: [{ id: 1, vector: [1] }] }));
  assert.equal(err2.status, 404);
  assert.equal(await client.deleteCollection('nope'), false);
  assert.deepEqual(await client.collectionExists('nope'), { exists: false });
  await assertNoViolations(srv);
});

test('429 with Retry-After reaches the client as ResourceExhausted', async () => {
  await raw(srv, 'POST', '/__test/faults', { path_regex: '/points/count$', kind: '429', retry_after: 2, count: 1 });
  const err = await rejects(() => client.count('single_cosine'));
  assert.ok(err instanceof QdrantClientResourceExhaustedError, String(err));
  assert.equal(err.retry_after, 2);
  // The fault was consumed; the next call succeeds.
  assert.equal(typeof (await client.count('single_cosine')).count, 'number');
  const log = JSON.parse((await raw(srv, 'GET', '/__test/requests')).text);
  const counts = log.filter((e) => e.path === '/collections/single_cosine/points/count');
  assert.equal(counts.at(-2).status, 429);
  assert.equal(counts.at(-2).fault, '429');
  assert.equal(counts.at(-1).status, 200);

  await raw(srv, 'POST', '/__test/faults', { path_regex: '^/collections$', kind: '503', count: 1 });
  const e503 = await rejects(() => client.getCollections());
  assert.equal(e503.status, 503);
  await assertNoViolations(srv);
});

test('stalls trip the client timeout; drops surface as errors', async () => {
  const fast = new QdrantClient({ url: srv.url, timeout: 300, checkCompatibility: false });
  await raw(srv, 'POST', '/__test/faults', { path_regex: '^/collections$', kind: 'stall', stall_ms: 4000, count: 1 });
  const t0 = Date.now();
  const err = await rejects(() => fast.getCollections());
  assert.equal(err.constructor.name, 'QdrantClientTimeoutError');
  assert.ok(Date.now() - t0 < 3500, 'the client gave up before the stalled answer');
  await raw(srv, 'POST', '/__test/faults', { path_regex: '^/collections$', kind: 'drop', count: 1 });
  await rejects(() => fast.getCollections());
  assert.ok(Array.isArray((await fast.getCollections()).collections));
});

test('api-key mode: good key works, bad or missing key is a plain-text 401', async () => {
  const keyed = await startServer(['--api-key', 's3cret-key']);
  try {
    const good = new QdrantClient({ url: keyed.url, apiKey: 's3cret-key' });
    assert.equal(await good.createCollection('k', { vectors: { size: 2, distance: 'Dot' } }), true);
    assert.equal((await good.getCollections()).collections.length, 1);

    const bad = new QdrantClient({ url: keyed.url, apiKey: 'wrong', checkCompatibility: false });
    const e1 = await rejects(() => bad.getCollections());
    assert.equal(e1.status, 401);
    assert.equal(e1.data, 'Invalid API key or JWT');
    const none = new QdrantClient({ url: keyed.url, checkCompatibility: false });
    const e2 = await rejects(() => none.getCollections());
    assert.equal(e2.status, 401);
    assert.equal(e2.data, 'Must provide an API key or an Authorization bearer token');
    const r = await raw(keyed, 'GET', '/collections');
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    // GET / and the health checks need no key; Bearer works too.
    assert.equal((await none.versionInfo()).version, '1.19.0');
    assert.equal((await raw(keyed, 'GET', '/collections', undefined, { authorization: 'Bearer s3cret-key' })).status, 200);
    // The key never reaches the request log.
    const log = (await raw(keyed, 'GET', '/__test/requests')).text;
    assert.ok(!log.includes('s3cret-key'));
    assert.deepEqual(await violations(keyed), []);
  } finally {
    await keyed.stop();
  }
});

test('no request of the official client violated the v1.19.0 schema', async () => {
  await assertNoViolations(srv);
  const log = JSON.parse((await raw(srv, 'GET', '/__test/requests')).text);
  assert.ok(log.length > 50);
  assert.ok(log.every((e) => !e.path.endsWith('/points/search')), 'the client never calls /points/search');
});
