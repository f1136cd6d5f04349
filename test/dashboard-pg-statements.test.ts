import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import pg from 'pg'
import { privateClusterUnavailable, startPrivateCluster, startStatementsCluster } from './helpers/pg-private-cluster.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { PG_STAT_STATEMENTS_HOWTO, snapshotStatements } from '../scripts/lib/engines/postgres/statements.ts'
import { diffStatementSnapshots } from '../scripts/lib/metrics/statements.ts'
import { type StatementCounters, type StatementSnapshot } from '../scripts/lib/engines/metrics-engine.ts'
import { defer, openTestDatabase } from './helpers/databases.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const ROOT = join(import.meta.dirname, '..')
const unavailable = privateClusterUnavailable()

/** pg_stat_statements of one database, as psql prints it (CSV), in the library's snapshot shape. */
function psqlSnapshot(cluster: { psql(db: string, sql: string, args?: string[]): string }, database: string): StatementSnapshot {
  const out = cluster.psql(
    database,
    `SELECT userid, dbid, queryid, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, replace(query, E'\\n', ' ')
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '${database}') AND query NOT LIKE '%pg_stat_statements%'`,
    ['-A', '-t', '-F', '\x1f'],
  )
  const entries: StatementCounters[] = out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [userid, dbid, queryid, calls, time, rows, hit, read, ...query] = line.split('\x1f')
      return { userid: userid!, dbid: dbid!, queryid: queryid!, query: query.join('\x1f'), calls: Number(calls), totalExecTimeMs: Number(time), rows: Number(rows), sharedBlksHit: Number(hit), sharedBlksRead: Number(read) }
    })
  return { takenAt: 0, entries }
}

describe('pg_stat_statements as the source of the app\'s real statements', { skip: unavailable }, () => {
  test('a workload replayed by another process: the window\'s numbers equal pg_stat_statements read by psql', async (t) => {
    const { cluster, db } = await startStatementsCluster(t)

    const psqlBefore = psqlSnapshot(cluster, 'app')
    const before = await snapshotStatements(db.sql)
    assert.equal(before.available, true)
    const replay = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/replay-workload.ts'), cluster.urlOf('app'), '12'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(replay.status, 0, replay.stderr)
    const after = await snapshotStatements(db.sql)
    const psqlAfter = psqlSnapshot(cluster, 'app')
    assert.ok(before.available && after.available)

    const window = diffStatementSnapshots(before.snapshot, after.snapshot)
    const judge = diffStatementSnapshots(psqlBefore, psqlAfter)
    const numbers = (w: typeof window) => w.statements.map((s) => ({ queryids: s.queryids, calls: s.calls, totalMs: s.totalMs, rows: s.rows, hit: s.sharedBlksHit, read: s.sharedBlksRead }))
    assert.deepEqual(numbers(window), numbers(judge))
    const byDisplay = new Map(window.statements.map((s) => [s.display, s]))
    const find = (pattern: RegExp) => [...byDisplay.entries()].filter(([display]) => pattern.test(display)).map(([, s]) => s)
    assert.deepEqual(find(/^INSERT INTO Client/).map((s) => [s.calls, s.rows]), [[12, 12]])
    assert.deepEqual(find(/^UPDATE Client SET/).map((s) => s.calls), [12])
    assert.deepEqual(find(/^SELECT COUNT\(\*\) AS _count\$_all FROM \(SELECT Dossier\.id FROM Dossier WHERE/).map((s) => s.calls).length <= 1, true)
    for (const s of window.statements) {
      assert.ok(s.calls > 0 && s.totalMs >= 0 && s.rows >= 0, JSON.stringify(s))
      assert.doesNotMatch(s.fingerprint, /tenant-demo|Rejeu|(?<![\d.])0100000000(?!\d)/, 'no literal value in a statement')
    }
    assert.ok(window.statements.reduce((n, s) => n + s.calls, 0) >= 12 * 5)
  })

  test('evicted or reset entries count from zero, never negative; pg_stat_statements_reset is never called by the library', async (t) => {
    const cluster = await startPrivateCluster(t, { config: ["shared_preload_libraries = 'pg_stat_statements'"] })
    cluster.psql('postgres', 'CREATE DATABASE app')
    cluster.psql('app', 'CREATE EXTENSION pg_stat_statements; CREATE TABLE t (id int)')
    const client = new pg.Client({ connectionString: cluster.urlOf('app') })
    await client.connect()
    defer(t, () => client.end())
    const db = await openDatabase(cluster.urlOf('app'), { environment: resolveEnvironment() })
    defer(t, () => db.close())
    for (let i = 0; i < 5; i++) await client.query('SELECT count(*) FROM t WHERE id = $1', [i])
    const first = await snapshotStatements(db.sql)
    // Someone else resets the view (or the entry is evicted and comes back): fewer calls than before.
    cluster.psql('app', 'SELECT pg_stat_statements_reset()')
    for (let i = 0; i < 2; i++) await client.query('SELECT count(*) FROM t WHERE id = $1', [i])
    const second = await snapshotStatements(db.sql)
    assert.ok(first.available && second.available)
    const window = diffStatementSnapshots(first.snapshot, second.snapshot)
    const count = window.statements.find((s) => s.display.startsWith('SELECT count(*) FROM t WHERE id = ?'))
    assert.equal(count?.calls, 2)
    assert.ok(window.restartedEntries >= 1)
    for (const s of window.statements) assert.ok(s.calls > 0 && s.totalMs >= 0 && s.rows >= 0 && s.sharedBlksHit >= 0 && s.sharedBlksRead >= 0)
  })
})

describe('pg_stat_statements missing', () => {
  test('on a server without the extension: one French line saying how to enable it', async (t) => {
    const db = await openTestDatabase(t, 'postgres', { seed: false })
    const result = await snapshotStatements(db.sql)
    assert.deepEqual(result, { available: false, reason: PG_STAT_STATEMENTS_HOWTO })
    assert.match(PG_STAT_STATEMENTS_HOWTO, /shared_preload_libraries = 'pg_stat_statements'.*CREATE EXTENSION pg_stat_statements/)
  })
})
