// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Conformance of tests/bolt/boltserver.py against the official npm neo4j-driver
// (pinned in package.json).  The driver is the oracle: if it talks to the stub
// the way it talks to Neo4j, the stub is fit to test the project's C client.
//
// Run: node --test-reporter=tap tests/bolt/test-neo4j-driver.mjs
// Needs `npm ci --prefix tests/bolt` first.  Env: BOLT_SERVER (path of
// boltserver.py, default: next to this file), PYTHON (default python3).

import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

let neo4j
try {
  neo4j = (await import('neo4j-driver')).default
} catch (e) {
  console.log('Bail out! neo4j-driver is not installed: run `npm ci --prefix tests/bolt` ' +
              '(tests/bolt/node_modules is missing) — ' + e.message)
  process.exit(1)
}

const SERVER = process.env.BOLT_SERVER || path.join(here, 'boltserver.py')
const PYTHON = process.env.PYTHON || 'python3'
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bolt-conformance-'))
const servers = []
const drivers = []
let serial = 0

async function startServer (args = []) {
  const log = path.join(tmp, `server-${++serial}.jsonl`)
  const proc = spawn(PYTHON, [SERVER, '--port', '0', '--log', log, ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] })
  servers.push(proc)
  const port = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout })
    const timer = setTimeout(() => reject(new Error('no LISTENING line in 10 s')), 10000)
    rl.once('line', line => {
      clearTimeout(timer)
      const m = /^LISTENING (\d+)$/.exec(line)
      if (m) resolve(Number(m[1]))
      else reject(new Error(`unexpected first line: ${line}`))
    })
    proc.once('exit', code => reject(new Error(`server exited early (${code})`)))
  })
  const entries = () => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l))
  return { proc, port, log, entries, address: `127.0.0.1:${port}` }
}

function driverFor (uri, auth = neo4j.auth.basic('neo4j', 'password'), config = {}) {
  const d = neo4j.driver(uri, auth, { maxTransactionRetryTime: 15000, ...config })
  drivers.push(d)
  return d
}

after(async () => {
  for (const d of drivers) await d.close().catch(() => {})
  for (const p of servers) p.kill('SIGTERM')
  fs.rmSync(tmp, { recursive: true, force: true })
})

const main = await startServer()
const driver = driverFor(`bolt://${main.address}`)

const messages = (srv, name, dir = 'in') =>
  srv.entries().filter(e => e.msg === name && e.dir === dir)

test('connect, verifyConnectivity and server info over Bolt 5.8 (manifest v1)', async () => {
  await driver.verifyConnectivity()
  const info = await driver.getServerInfo()
  assert.equal(info.protocolVersion, 5.8)
  assert.equal(info.agent, 'Neo4j/5.26.0')
  const hs = messages(main, 'HANDSHAKE')[0]
  assert.equal(hs.proposals[0], '000001ff', 'driver offers the manifest first')
  assert.equal(hs.manifest, true)
  assert.equal(hs.client_choice, '00000805')
  const hello = messages(main, 'HELLO')[0].fields[0]
  assert.match(hello.user_agent, /^neo4j-javascript\//)
  assert.equal(typeof hello.bolt_agent.product, 'string')
  assert.equal(hello.credentials, undefined, 'no auth in HELLO from 5.1 on')
  const logon = messages(main, 'LOGON')[0].fields[0]
  assert.equal(logon.scheme, 'basic')
  assert.equal(logon.credentials, '******', 'the log redacts credentials')
})

test('RETURN $params round-trips every value kind', async () => {
  const session = driver.session()
  try {
    const ints = ['-9223372036854775808', '-2147483649', '-2147483648', '-32769', '-32768',
      '-129', '-128', '-17', '-16', '-1', '0', '1', '127', '128', '32767', '32768',
      '2147483647', '2147483648', '9223372036854775807'].map(s => neo4j.int(s))
    const long = 'x'.repeat(200000) + '✓'
    const params = {
      ints,
      floats: [0.0, -1.5, 3.141592653589793, 1e308, -Infinity, Infinity],
      nan: NaN,
      strs: ['', 'a', 'é', '日本語', '😀 emoji', 's'.repeat(15), 's'.repeat(16), 's'.repeat(255), 's'.repeat(256), 's'.repeat(65536)],
      long,
      list: [neo4j.int(1), 'two', [true, false, null], { k: 'v' }],
      map: { a: neo4j.int(1), nested: { deep: [neo4j.int(2), 'x'] }, empty: {} },
      bytes: new Int8Array([0, 1, -1, 127, -128]),
      nul: null,
      t: true,
      f: false,
      date: new neo4j.types.Date(2024, 2, 29),
      dt: new neo4j.types.DateTime(2024, 2, 29, 12, 0, 1, 5, 3600),
      dtz: new neo4j.types.DateTime(2024, 7, 1, 12, 0, 0, 0, undefined, 'Europe/Stockholm'),
      dur: new neo4j.types.Duration(1, 2, 3, 4),
      pt: new neo4j.types.Point(7203, 1.5, 2.5)
    }
    const names = Object.keys(params)
    const query = 'RETURN ' + names.map(n => `$${n} AS ${n}`).join(', ')
    const rec = (await session.run(query, params)).records[0]
    assert.deepEqual(rec.keys, names)
    for (const [i, v] of ints.entries()) {
      const got = rec.get('ints')[i]
      assert.ok(neo4j.isInt(got), `ints[${i}] is a neo4j Integer`)
      assert.equal(got.toString(), v.toString())
    }
    assert.deepEqual(rec.get('floats'), params.floats)
    assert.ok(Number.isNaN(rec.get('nan')))
    assert.deepEqual(rec.get('strs'), params.strs)
    assert.equal(rec.get('long'), long)
    assert.equal(rec.get('list')[1], 'two')
    assert.deepEqual(rec.get('list')[2], [true, false, null])
    assert.equal(rec.get('map').nested.deep[0].toNumber(), 2)
    assert.deepEqual(Array.from(rec.get('bytes')), [0, 1, -1, 127, -128])
    assert.equal(rec.get('nul'), null)
    assert.equal(rec.get('t'), true)
    assert.equal(rec.get('f'), false)
    assert.equal(rec.get('date').toString(), '2024-02-29')
    assert.equal(rec.get('dt').toString(), params.dt.toString())
    assert.equal(rec.get('dtz').timeZoneId, 'Europe/Stockholm')
    assert.equal(rec.get('dtz').hour.toNumber(), 12)
    assert.equal(rec.get('dur').toString(), params.dur.toString())
    assert.ok(neo4j.isPoint(rec.get('pt')))
    assert.equal(rec.get('pt').x, 1.5)
    // literals
    const lit = (await session.run("RETURN 1 AS one, 'x' AS s, null AS n, -2.5 AS f, [1, 'a'] AS l, {k: true} AS m")).records[0]
    assert.equal(lit.get('one').toNumber(), 1)
    assert.equal(lit.get('s'), 'x')
    assert.equal(lit.get('n'), null)
    assert.equal(lit.get('f'), -2.5)
    assert.equal(lit.get('l')[1], 'a')
    assert.equal(lit.get('m').k, true)
  } finally {
    await session.close()
  }
})

// v5: element ids present; eid: how the server spells them (Neo4j "4:<uuid>:<id>",
// Memgraph the plain id)
function checkTypes (rec, v5, neo4jIds = true) {
  const node = rec.get('node')
  assert.ok(node instanceof neo4j.types.Node)
  assert.equal(node.identity.toNumber(), 1)
  assert.deepEqual(node.labels, ['Person', 'Test'])
  assert.equal(node.properties.name, 'Alice')
  assert.equal(node.properties.age.toNumber(), 33)
  if (v5 && neo4jIds) assert.match(node.elementId, /^4:[0-9a-f-]{36}:1$/)
  else assert.equal(node.elementId, '1')
  const rel = rec.get('relationship')
  assert.ok(rel instanceof neo4j.types.Relationship)
  assert.equal(rel.type, 'KNOWS')
  assert.equal(rel.start.toNumber(), 1)
  assert.equal(rel.end.toNumber(), 2)
  assert.equal(rel.properties.since.toNumber(), 2020)
  if (v5 && neo4jIds) assert.match(rel.elementId, /^5:[0-9a-f-]{36}:7$/)
  else assert.equal(rel.elementId, '7')
  assert.equal(rel.startNodeElementId, node.elementId)
  const p = rec.get('path')
  assert.ok(p instanceof neo4j.types.Path)
  assert.equal(p.length, 1)
  assert.equal(p.start.properties.name, 'Alice')
  assert.equal(p.end.properties.name, 'Bob')
  assert.equal(p.segments[0].relationship.type, 'KNOWS')
  assert.equal(p.segments[0].relationship.start.toNumber(), 1)
  assert.ok(neo4j.isDate(rec.get('date')))
  assert.equal(rec.get('date').toString(), '2024-02-29')
  assert.ok(neo4j.isTime(rec.get('time')))
  assert.equal(rec.get('time').toString(), '12:34:56.789012345+01:00')
  assert.ok(neo4j.isLocalTime(rec.get('localtime')))
  assert.equal(rec.get('localtime').toString(), '23:59:59.999999999')
  const dt = rec.get('datetime')
  assert.ok(neo4j.isDateTime(dt))
  assert.equal(dt.toString(), '2024-02-29T12:34:56.123456789+01:00')
  const dtz = rec.get('datetimezoneid')
  assert.ok(neo4j.isDateTime(dtz))
  assert.equal(dtz.timeZoneId, 'Europe/Stockholm')
  assert.equal(dtz.hour.toNumber(), 12)
  assert.equal(dtz.timeZoneOffsetSeconds.toNumber(), 7200)
  assert.ok(neo4j.isLocalDateTime(rec.get('localdatetime')))
  assert.equal(rec.get('localdatetime').toString(), '2024-02-29T12:34:56.000000001')
  const dur = rec.get('duration')
  assert.ok(neo4j.isDuration(dur))
  assert.equal(dur.months.toNumber(), 14)
  assert.equal(dur.days.toNumber(), 3)
  assert.equal(dur.seconds.toNumber(), 3723)
  assert.equal(dur.nanoseconds.toNumber(), 500)
  const p2 = rec.get('point2d')
  assert.ok(neo4j.isPoint(p2))
  assert.deepEqual([p2.srid.toNumber(), p2.x, p2.y, p2.z], [7203, 1.5, -2.25, undefined])
  const p3 = rec.get('point3d')
  assert.deepEqual([p3.srid.toNumber(), p3.x, p3.y, p3.z], [4979, 12.5, 55.75, 100])
  assert.deepEqual(Array.from(rec.get('bytes')), [0, 1, -2, -1])
  assert.equal(rec.get('list')[1], 'two')
  assert.equal(rec.get('map').b.c[1].toNumber(), 2)
  assert.equal(rec.get('float'), 3.141592653589793)
  assert.equal(rec.get('string'), 'héllo wörld ✓ 😀')
  assert.equal(rec.get('null'), null)
  assert.equal(rec.get('boolean'), true)
  assert.deepEqual(rec.get('ints').map(i => i.toString()), [
    '-9223372036854775808', '-2147483649', '-2147483648', '-32769', '-32768', '-129',
    '-128', '-17', '-16', '0', '127', '128', '32767', '32768', '2147483647',
    '2147483648', '9223372036854775807'])
}

test('CALL test.types() hydrates to driver graph, temporal and spatial classes (5.8)', async () => {
  const { records } = await driver.executeQuery('CALL test.types()')
  assert.equal(records.length, 1)
  checkTypes(records[0], true)
})

test('streaming 100k rows with fetchSize 1000 uses PULL n=1000 and has_more', async () => {
  const session = driver.session({ fetchSize: 1000 })
  let count = 0
  let sum = 0
  try {
    await new Promise((resolve, reject) => {
      session.run('UNWIND range(1, $n) AS i RETURN i', { n: neo4j.int(100000) }).subscribe({
        onNext: r => { count++; sum += r.get('i').toNumber() },
        onCompleted: resolve,
        onError: reject
      })
    })
  } finally {
    await session.close()
  }
  assert.equal(count, 100000)
  assert.equal(sum, 100000 * 100001 / 2)
  const pulls = messages(main, 'PULL').filter(e => e.fields[0].n === 1000)
  assert.ok(pulls.length >= 100, `expected >= 100 PULL {n: 1000}, saw ${pulls.length}`)
  const more = main.entries().filter(e => e.msg === 'SUCCESS' && e.fields[0].has_more === true)
  assert.ok(more.length >= 99, `expected >= 99 has_more, saw ${more.length}`)
})

const counterOf = bm => Number(/:(\d+)$/.exec(bm)[1])

test('explicit transactions: rollback discards, commit persists, bookmarks increase', async () => {
  const session = driver.session()
  try {
    await session.run('MATCH (n:TxTest) DETACH DELETE n')
    const tx1 = await session.beginTransaction()
    const created = await tx1.run('CREATE (n:TxTest {name: $name}) RETURN n', { name: 'rolled back' })
    assert.equal(created.records[0].get('n').properties.name, 'rolled back')
    assert.equal(created.summary.counters.updates().nodesCreated, 1)
    await tx1.rollback()
    let r = await session.run('MATCH (n:TxTest) RETURN count(n) AS c')
    assert.equal(r.records[0].get('c').toNumber(), 0)
    const before = session.lastBookmarks()[0]
    const tx2 = await session.beginTransaction()
    await tx2.run('CREATE (n:TxTest {name: $name})', { name: 'kept' })
    const inside = await tx2.run('MATCH (n:TxTest) RETURN n.name AS name')
    assert.deepEqual(inside.records.map(x => x.get('name')), ['kept'], 'a tx sees its own writes')
    await tx2.commit()
    const afterCommit = session.lastBookmarks()[0]
    assert.match(afterCommit, /^FB:kcwQ/)
    assert.ok(counterOf(afterCommit) > counterOf(before), `${afterCommit} > ${before}`)
    r = await session.run('MATCH (n:TxTest) RETURN n')
    assert.equal(r.records.length, 1)
    assert.equal(r.records[0].get('n').properties.name, 'kept')
    const w = await session.run('CREATE (n:TxTest {name: "auto"})')
    assert.equal(w.summary.queryType, 'w')
    assert.equal(w.summary.counters.updates().nodesCreated, 1)
    assert.equal(w.summary.counters.updates().propertiesSet, 1)
    const autoBm = session.lastBookmarks()[0]
    assert.ok(counterOf(autoBm) > counterOf(afterCommit), 'autocommit write advances the bookmark')
    const runs = messages(main, 'BEGIN').map(e => e.fields[0].bookmarks || [])
    assert.ok(runs.some(b => b.includes(before)), 'BEGIN carries the session bookmarks')
    const del = await session.run('MATCH (n:TxTest) DETACH DELETE n')
    assert.equal(del.summary.counters.updates().nodesDeleted, 2)
  } finally {
    await session.close()
  }
})

test('executeWrite retries a transient DeadlockDetected and then succeeds', async () => {
  const session = driver.session()
  const key = `retry-${Date.now()}`
  let attempts = 0
  try {
    const attempt = await session.executeWrite(async tx => {
      attempts++
      const r = await tx.run('CALL test.transient($key, $n)', { key, n: neo4j.int(1) })
      return r.records[0].get('attempt').toNumber()
    })
    assert.equal(attempts, 2)
    assert.equal(attempt, 2)
  } finally {
    await session.close()
  }
  const failures = main.entries().filter(e => e.msg === 'FAILURE' &&
    e.fields[0].neo4j_code === 'Neo.TransientError.Transaction.DeadlockDetected')
  assert.ok(failures.length >= 1)
})

test('a syntax error surfaces Neo.ClientError.Statement.SyntaxError (GQL form on 5.8)', async () => {
  const session = driver.session()
  try {
    await assert.rejects(session.run('THIS IS NOT CYPHER'), e => {
      assert.equal(e.code, 'Neo.ClientError.Statement.SyntaxError')
      assert.equal(e.gqlStatus, '42001')
      assert.equal(e.classification, 'CLIENT_ERROR')
      assert.match(e.message, /Invalid input 'THIS'/)
      return true
    })
    // the connection recovers: IGNORED for the pipelined PULL, then RESET
    const r = await session.run('RETURN 1 AS x')
    assert.equal(r.records[0].get('x').toNumber(), 1)
  } finally {
    await session.close()
  }
  const out = main.entries()
  const i = out.findIndex(e => e.msg === 'RUN' && e.fields[0] === 'THIS IS NOT CYPHER')
  const rest = out.slice(i).filter(e => e.dir)
  assert.equal(rest[1].msg, 'FAILURE')
  assert.ok(rest.some(e => e.msg === 'IGNORED'), 'pipelined PULL is IGNORED')
  assert.ok(rest.some(e => e.msg === 'RESET'), 'driver sends RESET after a FAILURE')
  await assert.rejects(driver.executeQuery('CALL test.terminated()'),
    e => e.code === 'Neo.ClientError.Transaction.Terminated')
})

test('tx timeout, access mode and unknown database failures', async () => {
  const session = driver.session()
  try {
    await assert.rejects(session.run('CALL test.sleep(2000)', {}, { timeout: 100 }),
      e => e.code === 'Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration')
    await assert.rejects(session.executeRead(tx => tx.run('CREATE (n:X)')),
      e => e.code === 'Neo.ClientError.Statement.AccessMode')
  } finally {
    await session.close()
  }
  await assert.rejects(driver.executeQuery('RETURN 1', {}, { database: 'nope' }),
    e => e.code === 'Neo.ClientError.Database.DatabaseNotFound')
})

test('a connection lost at COMMIT fails the commit', async () => {
  const session = driver.session()
  try {
    const tx = await session.beginTransaction()
    await tx.run('CALL test.dropOnCommit()')
    await assert.rejects(tx.commit())
  } finally {
    await session.close().catch(() => {})
  }
  assert.ok(main.entries().some(e => e.event === 'drop-on-commit'))
})

test('authentication: wrong password is Unauthorized, right one works', async () => {
  const srv = await startServer(['--auth', 'neo4j:s3cret'])
  const bad = driverFor(`bolt://${srv.address}`, neo4j.auth.basic('neo4j', 'wrong'))
  await assert.rejects(bad.verifyConnectivity(),
    e => e.code === 'Neo.ClientError.Security.Unauthorized')
  const good = driverFor(`bolt://${srv.address}`, neo4j.auth.basic('neo4j', 's3cret'))
  await good.verifyConnectivity()
  const { records } = await good.executeQuery('RETURN 42 AS x')
  assert.equal(records[0].get('x').toNumber(), 42)
  assert.ok(!fs.readFileSync(srv.log, 'utf8').includes('s3cret'), 'secrets never reach the log')
})

test('neo4j:// routing: writes go to the writer, reads to the reader', async () => {
  const writer = await startServer(['--role', 'writer'])
  const reader = await startServer(['--role', 'reader'])
  const table = { ttl: 300, routers: [], writers: [writer.address], readers: [reader.address] }
  const router = await startServer(['--router', '--role', 'router', '--routing-table', JSON.stringify(table)])
  table.routers = [router.address]
  const d = driverFor(`neo4j://${router.address}`)
  await d.verifyConnectivity()
  await d.executeQuery('CREATE (n:Routed {v: 1})', {}, { routing: neo4j.routing.WRITE })
  const { records } = await d.executeQuery('MATCH (n:Routed) RETURN count(n) AS c', {},
    { routing: neo4j.routing.READ })
  assert.equal(records[0].get('c').toNumber(), 0, 'separate processes: the reader has no data')
  const runs = s => messages(s, 'RUN').map(e => e.fields[0])
  assert.ok(runs(writer).includes('CREATE (n:Routed {v: 1})'))
  assert.ok(!runs(reader).includes('CREATE (n:Routed {v: 1})'))
  assert.ok(runs(reader).includes('MATCH (n:Routed) RETURN count(n) AS c'))
  const route = messages(router, 'ROUTE')
  assert.ok(route.length >= 1, 'driver asked the router for a table')
  assert.equal(typeof route[0].fields[0].address, 'string')
  const rt = router.entries().find(e => e.msg === 'SUCCESS' && e.fields[0].rt).fields[0].rt
  assert.equal(rt.db, 'neo4j')
  assert.deepEqual(rt.servers.find(s => s.role === 'WRITE').addresses, [writer.address])
  // a follower rejects writes the way a Neo4j cluster member does
  const direct = driverFor(`bolt://${reader.address}`)
  await assert.rejects(direct.executeQuery('CREATE (n:X)'),
    e => e.code === 'Neo.ClientError.Cluster.NotALeader')
})

test('neo4j:// leader moved: executeWrite meets NotALeader, refreshes the table, commits on the leader', async () => {
  const follower = await startServer(['--role', 'reader'])
  const leader = await startServer(['--role', 'writer'])
  // the router's first table still names the old leader; later ones the new one
  const tables = [{ ttl: 300, writers: [follower.address] }, { ttl: 300, writers: [leader.address] }]
  const router = await startServer(['--role', 'router', '--routing-table', JSON.stringify(tables)])
  const d = driverFor(`neo4j://${router.address}`)
  const session = d.session({ defaultAccessMode: neo4j.session.WRITE })
  let attempts = 0
  try {
    await session.executeWrite(async tx => {
      attempts++
      await tx.run('CREATE (n:Led {v: 1})')
    })
  } finally {
    await session.close()
  }
  assert.equal(attempts, 2, 'one attempt on the follower, one on the leader')
  const failures = follower.entries().filter(e => e.msg === 'FAILURE')
  assert.equal(failures.length, 1)
  assert.equal(failures[0].fields[0].neo4j_code, 'Neo.ClientError.Cluster.NotALeader')
  assert.equal(messages(follower, 'COMMIT').length, 0)
  assert.equal(messages(leader, 'COMMIT').length, 1)
  assert.ok(messages(router, 'ROUTE').length >= 2, 'the driver fetched the table again')
})

test('memgraph mode negotiates Bolt 5.2 and answers {code, message} failures', async () => {
  const srv = await startServer(['--mode', 'memgraph'])
  const d = driverFor(`bolt://${srv.address}`, neo4j.auth.basic('', ''))
  const info = await d.getServerInfo()
  assert.equal(info.protocolVersion, 5.2)
  assert.match(info.agent, /Memgraph/)
  const hs = messages(srv, 'HANDSHAKE')[0]
  assert.equal(hs.manifest, undefined, 'memgraph does not answer the manifest')
  const { records } = await d.executeQuery('CALL test.types()')
  checkTypes(records[0], true, false)
  await assert.rejects(d.executeQuery('NOT CYPHER'), e => e.code === 'Neo.ClientError.Statement.SyntaxError')
  const f = srv.entries().find(e => e.msg === 'FAILURE').fields[0]
  assert.deepEqual(Object.keys(f).sort(), ['code', 'message'])
  assert.ok(messages(srv, 'LOGON').length >= 1, '5.2 authenticates with LOGON')
})

test('--max-version 4.4: Bolt 4.4 with 3-field nodes, utc patch and legacy handshake', async () => {
  const srv = await startServer(['--max-version', '4.4'])
  const d = driverFor(`bolt://${srv.address}`)
  const info = await d.getServerInfo()
  assert.equal(info.protocolVersion, 4.4)
  assert.equal(info.agent, 'Neo4j/4.4.40')
  const { records } = await d.executeQuery('CALL test.types()')
  checkTypes(records[0], false)
  const hello = srv.entries().find(e => e.msg === 'SUCCESS' && e.fields[0].server).fields[0]
  assert.deepEqual(hello.patch_bolt, ['utc'])
  assert.ok(messages(srv, 'HELLO')[0].fields[0].credentials, '4.4 carries auth in HELLO')
  await assert.rejects(d.executeQuery('BAD'), e => e.code === 'Neo.ClientError.Statement.SyntaxError')
})

test('--max-version 5.4: plain 4-byte reply to a manifest offer, TELEMETRY when hinted', async () => {
  const srv = await startServer(['--max-version', '5.4', '--telemetry'])
  const d = driverFor(`bolt://${srv.address}`)
  const info = await d.getServerInfo()
  assert.equal(info.protocolVersion, 5.4)
  const session = d.session()
  try {
    await session.executeRead(tx => tx.run('RETURN 1 AS x'))
  } finally {
    await session.close()
  }
  assert.ok(messages(srv, 'TELEMETRY').length >= 1, 'driver sent TELEMETRY after telemetry.enabled')
  await assert.rejects(d.executeQuery('BAD'), e => {
    assert.equal(e.code, 'Neo.ClientError.Statement.SyntaxError')
    return true
  })
  const f = srv.entries().find(e => e.msg === 'FAILURE').fields[0]
  assert.deepEqual(Object.keys(f).sort(), ['code', 'message'], 'pre-5.7 FAILURE shape')
})

test('small chunks and NOOP chunks between messages are handled by the driver', async () => {
  const srv = await startServer(['--max-chunk', '7', '--noop-every', '1'])
  const d = driverFor(`bolt://${srv.address}`)
  const { records } = await d.executeQuery('CALL test.types()')
  checkTypes(records[0], true)
  const big = 'y'.repeat(70000)
  const r = await d.executeQuery('RETURN $s AS s, $n AS n', { s: big, n: neo4j.int(5) })
  assert.equal(r.records[0].get('s'), big)
  const rows = await d.executeQuery('UNWIND range(1, 3000) AS i RETURN i')
  assert.equal(rows.records.length, 3000)
})

test('connection.recv_timeout_seconds hint: NOOPs keep a slow query alive', async () => {
  const srv = await startServer(['--recv-timeout', '1'])
  const d = driverFor(`bolt://${srv.address}`)
  const { records } = await d.executeQuery('CALL test.sleep(2500)')
  assert.equal(records[0].get('slept').toNumber(), 2500)
  // without the keep-alive NOOPs the driver gives up after the hinted 1 s
  const silent = await startServer(['--recv-timeout', '1', '--no-keepalive'])
  const session = driverFor(`bolt://${silent.address}`).session()
  const t0 = Date.now()
  await assert.rejects(session.run('CALL test.sleep(4000)'), e => {
    assert.match(e.message, /didn't respond in 1000ms/)
    return true
  })
  await session.close().catch(() => {})
  assert.ok(Date.now() - t0 < 3000, 'the driver enforced the 1 s receive timeout')
})

test('TLS: bolt+ssc:// against a self-signed certificate', async () => {
  const key = path.join(tmp, 'key.pem')
  const cert = path.join(tmp, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  const srv = await startServer(['--tls-cert', cert, '--tls-key', key])
  const d = driverFor(`bolt+ssc://localhost:${srv.port}`)
  await d.verifyConnectivity()
  const { records } = await d.executeQuery('UNWIND range(1, 5000) AS i RETURN i')
  assert.equal(records.length, 5000)
  assert.equal(srv.entries().find(e => e.event === 'open').tls, true)
})

test('GOODBYE on driver close; pooled connection is reused', async () => {
  const srv = await startServer([])
  const d = neo4j.driver(`bolt://${srv.address}`, neo4j.auth.basic('neo4j', 'password'))
  const a = await d.executeQuery('CALL test.connectionId()')
  const b = await d.executeQuery('CALL test.connectionId()')
  assert.equal(a.records[0].get('connection_id'), b.records[0].get('connection_id'))
  await d.close()
  for (let i = 0; i < 100 && messages(srv, 'GOODBYE').length === 0; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  assert.ok(messages(srv, 'GOODBYE').length >= 1)
})

test('1,000,000 rows stream through the driver (fetchSize 1000)', async t => {
  const session = driver.session({ fetchSize: 1000 })
  let count = 0
  let last = 0
  const t0 = Date.now()
  try {
    await new Promise((resolve, reject) => {
      session.run('UNWIND range(1, 1000000) AS i RETURN i').subscribe({
        onNext: r => { count++; last = r.get('i').toNumber() },
        onCompleted: resolve,
        onError: reject
      })
    })
  } finally {
    await session.close()
  }
  assert.equal(count, 1000000)
  assert.equal(last, 1000000)
  t.diagnostic(`1e6 rows in ${Date.now() - t0} ms`)
})
