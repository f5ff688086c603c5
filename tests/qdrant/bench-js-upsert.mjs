// SPDX-License-Identifier: LGPL-2.1-or-later
// The baseline of bench/bench-qdrant.c: the official @qdrant/js-client-rest
// upserting a JSON Lines file (one point a line: {"id", "vector", "payload"})
// into an existing collection, in batches, the way an Electron main process
// would: stream the file, JSON.parse each line, client.upsert with wait.
//
//   node tests/qdrant/bench-js-upsert.mjs --url URL --collection NAME \
//        --file POINTS.jsonl [--batch 256] [--concurrency 1]
//
// Prints one JSON line on stdout:
//   {"points": N, "seconds": S, "requests": R, "rss_peak_mib": M}
// where seconds runs from the first line read to the last upsert answered
// (node's own start-up is not included). Exits 1 with a message on stderr if
// anything fails. Needs `npm ci --prefix tests/qdrant`.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback === undefined) {
      console.error(`bench-js-upsert: --${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return process.argv[i + 1];
}

const url = option('url');
const collection = option('collection');
const file = option('file');
const batchSize = Number(option('batch', '256'));
const concurrency = Number(option('concurrency', '1'));
if (!(batchSize >= 1) || !(concurrency >= 1)) {
  console.error('bench-js-upsert: --batch and --concurrency must be at least 1');
  process.exit(2);
}

let QdrantClient;
try {
  ({ QdrantClient } = await import('@qdrant/js-client-rest'));
} catch (e) {
  console.error(`bench-js-upsert: @qdrant/js-client-rest is not installed (${e.code ?? e.message}); ` +
                'run `npm ci --prefix tests/qdrant` first');
  process.exit(1);
}

const client = new QdrantClient({ url, checkCompatibility: false, timeout: 600000 });
const inFlight = new Set();
let points = 0;
let requests = 0;
let rssPeak = process.memoryUsage.rss();
let failure = null;

function send(batch) {
  const p = client.upsert(collection, { wait: true, points: batch })
    .then(() => {
      points += batch.length;
      requests++;
    }, (e) => {
      failure ??= e;
    })
    .finally(() => inFlight.delete(p));
  inFlight.add(p);
  return p;
}

const t0 = performance.now();
const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
let batch = [];
for await (const line of lines) {
  if (failure) break;
  if (line.trim() === '') continue;
  batch.push(JSON.parse(line));
  if (batch.length === batchSize) {
    send(batch);
    batch = [];
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    while (inFlight.size >= concurrency)
      await Promise.race(inFlight);
  }
}
if (batch.length > 0 && !failure)
  send(batch);
await Promise.all(inFlight);
const seconds = (performance.now() - t0) / 1000;
rssPeak = Math.max(rssPeak, process.memoryUsage.rss());

if (failure) {
  console.error(`bench-js-upsert: upsert failed: ${failure.message ?? failure}`);
  process.exit(1);
}
console.log(JSON.stringify({ points, seconds, requests, rss_peak_mib: rssPeak / 1048576 }));
