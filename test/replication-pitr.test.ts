/**
 * Point-in-time recovery of SQLite, end to end with real processes: a writer commits numbered
 * transactions at ~50 tx/s and checkpoints the database itself (PASSIVE, RESTART, TRUNCATE) while the
 * replicator copies the WAL; the replicator is SIGKILLed once and restarted; then restores at 20 random
 * instants must each be an exact prefix of the commits, judged with better-sqlite3 and the sqlite3 CLI.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { restoreToTime } from '../scripts/lib/engines/sqlite/wal-restore.ts'
import { listGenerations, listSegments, readSegment } from '../scripts/lib/replication/layout.ts'
import { reachableRange } from '../scripts/lib/replication/plan.ts'
import { folderReplicaStore } from '../scripts/lib/replication/store.ts'
import { tempDir } from './helpers/databases.ts'

const LAG_BOUND_MS = 1000
const CHILD = join(import.meta.dirname, 'helpers', 'replication-processes.ts')
const hasSqlite3 = spawnSync('sqlite3', ['-version']).status === 0

interface ChildRun { process: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> }

function startChild(args: string[]): ChildRun {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Record<string, unknown>[] = []
  let buffer = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8')
    let newline: number
    while ((newline = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>)
      buffer = buffer.slice(newline + 1)
    }
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { process: child, lines, exited }
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('restores at 20 random instants are exact prefixes of the commits, across a SIGKILL of the replicator and the application\'s own checkpoints', { skip: !hasSqlite3 && 'sqlite3 is missing: apt-get install sqlite3' }, async (t) => {
  const dir = tempDir(t, 'ipm-pitr-')
  const databasePath = join(dir, 'app.db')
  const replicaDir = join(dir, 'replica')
  const setup = new Database(databasePath)
  setup.pragma('journal_mode = WAL')
  setup.exec('CREATE TABLE commits (n INTEGER PRIMARY KEY, committed_at INTEGER NOT NULL)')
  setup.close()

  const children: ChildRun[] = []
  t.after(() => { for (const c of children) c.process.kill('SIGKILL') })
  const first = startChild(['replicate', databasePath, replicaDir, '150'])
  children.push(first)
  await waitFor(() => first.lines.some((l) => l.type === 'snapshot-written'), 'the first snapshot')
  const writer = startChild(['writer', databasePath, '6000', '50'])
  children.push(writer)
  await waitFor(() => first.lines.some((l) => l.type === 'segment-written'), 'the first copied commits')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const killedAt = Date.now()
  first.process.kill('SIGKILL')
  await first.exited
  const second = startChild(['replicate', databasePath, replicaDir, '150'])
  children.push(second)
  await waitFor(() => second.lines.some((l) => l.type === 'resumed' || l.type === 'generation-started'), 'the restarted replicator')
  const resumedAt = Date.now()
  assert.equal(await writer.exited, 0)
  await new Promise((resolve) => setTimeout(resolve, 500))
  second.process.kill('SIGTERM')
  assert.equal(await second.exited, 0)
  const stopped = second.lines.find((l) => l.type === 'stopped')
  assert.ok(stopped, 'the replicator reports its summary when stopped')

  const source = new Database(databasePath, { readonly: true })
  const commits = source.prepare('SELECT n, committed_at FROM commits ORDER BY n').all() as { n: number; committed_at: number }[]
  source.close()
  const total = (writer.lines[0] as { commits: number }).commits
  assert.equal(commits.length, total)
  assert.ok(total > 100, `the writer committed ${total} transactions`)
  // While the replicator ran, the application's checkpoints never broke continuity (one generation).
  assert.deepEqual(first.lines.filter((l) => l.type === 'generation-started' || l.type === 'warning').length, 1)
  // While it was down, the application's TRUNCATE checkpoints recycle the WAL: the restart either resumes,
  // or (usually) starts a new generation with a snapshot and a warning naming the gap.
  const restartEvents = second.lines.filter((l) => l.type === 'resumed' || l.type === 'generation-started' || l.type === 'warning')
  assert.ok(restartEvents.length === 1 ? restartEvents[0]!.type === 'resumed' : restartEvents.map((l) => l.type).join() === 'generation-started,warning', JSON.stringify(restartEvents))

  const replica = folderReplicaStore(replicaDir)
  const range = await reachableRange(replica)
  let seed = 1234567
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const from = Math.max(range.from.getTime(), commits[0]!.committed_at)
  for (let i = 0; i < 20; i++) {
    const at = new Date(from + Math.floor(random() * (range.to.getTime() - from)))
    const outputPath = join(dir, `restored-${i}.db`)
    const result = await restoreToTime({ replica, at, outputPath })
    assert.ok(result.stateAt.getTime() <= at.getTime())
    const restored = new Database(outputPath, { readonly: true })
    const rows = restored.prepare('SELECT n, committed_at FROM commits ORDER BY n').all() as { n: number; committed_at: number }[]
    restored.close()
    // An exact prefix: rows 1..k, identical to the source.
    assert.deepEqual(rows, commits.slice(0, rows.length))
    const k = rows.length
    // Nothing committed after T.
    assert.ok(k === 0 || rows[k - 1]!.committed_at <= at.getTime(), `T=${at.toISOString()}: row ${k} committed after T`)
    // Everything committed before T minus the lag bound (more while the replicator was down).
    const downtime = at.getTime() >= killedAt && at.getTime() <= resumedAt + LAG_BOUND_MS
    const bound = downtime ? resumedAt - killedAt + LAG_BOUND_MS : LAG_BOUND_MS
    const missing = commits.slice(k).filter((c) => c.committed_at < at.getTime() - bound)
    assert.deepEqual(missing.map((c) => c.n), [], `T=${at.toISOString()}: missing commits older than ${bound} ms`)
    // The sqlite3 CLI agrees.
    assert.equal(spawnSync('sqlite3', [outputPath, 'PRAGMA integrity_check;']).stdout.toString().trim(), 'ok')
    assert.equal(spawnSync('sqlite3', [outputPath, 'SELECT count(*), coalesce(max(n), 0) FROM commits;']).stdout.toString().trim(), `${k}|${k}`)
  }
})

test('a replicator killed while the application does not checkpoint resumes the same generation with no gap', async (t) => {
  const dir = tempDir(t, 'ipm-pitr-')
  const databasePath = join(dir, 'app.db')
  const replicaDir = join(dir, 'replica')
  const setup = new Database(databasePath)
  setup.pragma('journal_mode = WAL')
  setup.exec('CREATE TABLE commits (n INTEGER PRIMARY KEY, committed_at INTEGER NOT NULL)')
  // Another connection of the application stays open: when the last connection closes, SQLite
  // checkpoints and deletes the WAL, which rightly starts a new generation.
  t.after(() => setup.close())
  const children: ChildRun[] = []
  t.after(() => { for (const c of children) c.process.kill('SIGKILL') })
  const first = startChild(['replicate', databasePath, replicaDir, '100000'])
  children.push(first)
  await waitFor(() => first.lines.some((l) => l.type === 'snapshot-written'), 'the first snapshot')
  const writer = startChild(['writer', databasePath, '2500', '50', '0'])
  children.push(writer)
  await waitFor(() => first.lines.some((l) => l.type === 'segment-written'), 'the first copied commits')
  first.process.kill('SIGKILL')
  await first.exited
  const second = startChild(['replicate', databasePath, replicaDir, '100000'])
  children.push(second)
  assert.equal(await writer.exited, 0)
  await waitFor(() => second.lines.some((l) => l.type === 'resumed' || l.type === 'generation-started'), 'the restarted replicator')
  assert.ok(second.lines.some((l) => l.type === 'resumed'), JSON.stringify(second.lines.filter((l) => l.type !== 'segment-written')))
  await new Promise((resolve) => setTimeout(resolve, 400))
  second.process.kill('SIGTERM')
  assert.equal(await second.exited, 0)
  const generations = [...first.lines, ...second.lines].filter((l) => l.type === 'generation-started')
  assert.equal(generations.length, 1)
  assert.ok(!second.lines.some((l) => l.type === 'warning'))
  const total = (writer.lines[0] as { commits: number }).commits
  const replica = folderReplicaStore(replicaDir)
  const range = await reachableRange(replica)
  const result = await restoreToTime({ replica, at: range.to, outputPath: join(dir, 'latest.db') })
  const restored = new Database(result.outputPath, { readonly: true })
  assert.deepEqual(restored.prepare('SELECT count(*) AS c, max(n) AS m FROM commits').get(), { c: total, m: total })
  restored.close()
})

test('a database restored by copying a file over it (same inode, sidecars removed) starts a new generation, and both sides restore exactly', async (t) => {
  const dir = tempDir(t, 'ipm-pitr-')
  const databasePath = join(dir, 'app.db')
  const replicaDir = join(dir, 'replica')
  let app = new Database(databasePath)
  app.pragma('journal_mode = WAL')
  app.exec('CREATE TABLE t (x)')
  const children: ChildRun[] = []
  t.after(() => { for (const c of children) c.process.kill('SIGKILL') })
  const replicator = startChild(['replicate', databasePath, replicaDir, '100000'])
  children.push(replicator)
  const commits = () => replicator.lines.reduce((n, l) => n + (l.type === 'segment-written' ? (l.commits as number) : 0), 0)
  await waitFor(() => replicator.lines.some((l) => l.type === 'snapshot-written'), 'the first snapshot')
  app.prepare('INSERT INTO t VALUES (?)').run(1)
  app.prepare('INSERT INTO t VALUES (?)').run(2)
  await app.backup(join(dir, 'backup.db'))
  app.prepare('INSERT INTO t VALUES (?)').run(3)
  await waitFor(() => commits() >= 3, 'rows 1..3 copied')
  const inode = statSync(databasePath).ino
  // The operator's manual restore: application stopped, backup copied over the file, sidecars removed.
  app.close()
  copyFileSync(join(dir, 'backup.db'), databasePath)
  for (const sidecar of ['-wal', '-shm']) rmSync(`${databasePath}${sidecar}`, { force: true })
  assert.equal(statSync(databasePath).ino, inode)
  app = new Database(databasePath)
  t.after(() => app.close())
  app.prepare('INSERT INTO t VALUES (?)').run(4)
  await waitFor(() => replicator.lines.filter((l) => l.type === 'snapshot-written').length === 2, 'the new generation\'s snapshot')
  const started = replicator.lines.filter((l) => l.type === 'generation-started')
  assert.equal(started.length, 2)
  assert.match(String(started[1]!.reason), /nouvelle génération$/)
  app.prepare('INSERT INTO t VALUES (?)').run(5)
  await waitFor(() => replicator.lines.some((l) => l.type === 'segment-written' && l.generation === started[1]!.generation), 'row 5 copied')
  replicator.process.kill('SIGTERM')
  assert.equal(await replicator.exited, 0)
  const replica = folderReplicaStore(replicaDir)
  const generations = await listGenerations(replica)
  assert.equal(generations.length, 2)
  const rowsAt = async (at: Date, name: string) => {
    await restoreToTime({ replica, at, outputPath: join(dir, name) })
    const restored = new Database(join(dir, name), { readonly: true })
    try {
      return restored.prepare('SELECT x FROM t ORDER BY rowid').pluck().all()
    } finally {
      restored.close()
    }
  }
  const firstEnd = (await readSegment(replica, generations[0]!.id, (await listSegments(replica, generations[0]!.id)).at(-1)!)).header.commits.at(-1)!.seenAt
  assert.deepEqual(await rowsAt(new Date(firstEnd), 'before.db'), [1, 2, 3])
  assert.deepEqual(await rowsAt((await reachableRange(replica)).to, 'after.db'), [1, 2, 4, 5])
})
