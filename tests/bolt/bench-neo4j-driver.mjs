// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The baseline of bench/bench-bolt.c: the official npm neo4j-driver reading
// the same query from the same boltserver.py the bolt backend reads.
//
//   node tests/bolt/bench-neo4j-driver.mjs --uri bolt://127.0.0.1:PORT \
//        --stream-n 200000 --eager-n 50000 [--fetch-size 1000]
//
// After one warm-up query (the connection is pooled, as backplaned's is) it
// times, once each:
//   stream  UNWIND range(1, $n) AS i RETURN i, records consumed one at a
//           time and written as JSON Lines (what Graph.RunToFd delivers) to a
//           string sink;
//   eager   the same query through driver.executeQuery(), every record
//           materialized (what Graph.Run returns).
// The driver runs with disableLosslessIntegers (JS numbers: its fastest
// mode). Prints one JSON object: {"stream": {"records", "seconds"},
// "eager": {...}, "driver": "<version>"}.

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(path.join(here, 'package.json'))

let neo4j
try {
  neo4j = (await import('neo4j-driver')).default
} catch (e) {
  console.error('neo4j-driver is not installed: run `npm ci --prefix tests/bolt` (' + e.message + ')')
  process.exit(77)
}

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf('--' + name)
  return i >= 0 ? args[i + 1] : dflt
}
const uri = opt('uri')
const streamN = Number(opt('stream-n', '200000'))
const eagerN = Number(opt('eager-n', '50000'))
const fetchSize = Number(opt('fetch-size', '1000'))
if (!uri) {
  console.error('usage: bench-neo4j-driver.mjs --uri bolt://HOST:PORT [--stream-n N] [--eager-n N]')
  process.exit(2)
}

const QUERY = 'UNWIND range(1, $n) AS i RETURN i'
const driver = neo4j.driver(uri, neo4j.auth.basic('neo4j', 'password'),
  { disableLosslessIntegers: true, fetchSize, maxConnectionPoolSize: 1 })

function stream (n) {
  const session = driver.session({ fetchSize })
  let records = 0
  let bytes = 0
  const start = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    session.run(QUERY, { n: neo4j.int(n) }).subscribe({
      onKeys: keys => { bytes += JSON.stringify({ columns: keys }).length + 1 },
      onNext: record => {
        bytes += JSON.stringify(record.toObject()).length + 1
        records++
      },
      onCompleted: () => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9
        session.close().then(() => resolve({ records, seconds, bytes }), reject)
      },
      onError: e => { session.close().finally(() => reject(e)) }
    })
  })
}

async function eager (n) {
  const start = process.hrtime.bigint()
  const { records } = await driver.executeQuery(QUERY, { n: neo4j.int(n) })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  let sum = 0
  for (const r of records) sum += r.get('i')
  if (sum !== n * (n + 1) / 2) throw new Error('wrong records')
  return { records: records.length, seconds }
}

try {
  await stream(1000)   // warm-up: connection, handshake, JIT
  const s = await stream(streamN)
  if (s.records !== streamN) throw new Error(`stream: ${s.records} records, wanted ${streamN}`)
  const e = await eager(eagerN)
  const version = require('neo4j-driver/package.json').version
  console.log(JSON.stringify({ stream: s, eager: e, driver: version }))
} finally {
  await driver.close()
}
