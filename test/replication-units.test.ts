/**
 * Units of point-in-time recovery against WAL files SQLite itself writes: the WAL parser, refusals of
 * instants out of range or without offset, and retention.
 */
import assert from 'node:assert/strict'
import { closeSync, copyFileSync, existsSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { readCommittedFrames, readWalHeaderAt, positionAtHeader } from '../scripts/lib/engines/sqlite/wal-format.ts'
import { replicate, type ReplicationEvent } from '../scripts/lib/engines/sqlite/wal-replicator.ts'
import { restoreToTime } from '../scripts/lib/engines/sqlite/wal-restore.ts'
import { listGenerations, listSegments, listSnapshots, readSegment, resolveSegments } from '../scripts/lib/replication/layout.ts'
import { applyRetention } from '../scripts/lib/replication/retention.ts'
import { folderReplicaStore } from '../scripts/lib/replication/store.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { tempDir } from './helpers/databases.ts'

test('the WAL parser finds exactly the committed transactions SQLite wrote, and ignores a torn last frame', (t) => {
  const dir = tempDir(t, 'ipm-wal-')
  const db = new Database(join(dir, 'a.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('wal_autocheckpoint = 0')
  db.exec('CREATE TABLE t (x)')
  for (let i = 0; i < 5; i++) db.prepare('INSERT INTO t VALUES (?)').run(i)
  // A copy of the WAL while the database is open, as the replicator reads it.
  copyFileSync(join(dir, 'a.db-wal'), join(dir, 'copy-wal'))
  db.close()
  const header = readWalHeaderAt(join(dir, 'copy-wal'))!
  assert.equal(header.pageSize, 4096)
  const fd = openSync(join(dir, 'copy-wal'), 'r')
  const found = readCommittedFrames(fd, header, positionAtHeader(header))
  closeSync(fd)
  assert.equal(found.commits.length, 6)
  assert.deepEqual(found.commits.map((c) => c.databasePages), [2, 2, 2, 2, 2, 2])
  assert.equal(found.end.frame, found.commits[5]!.frame)
  assert.equal(readWalHeaderAt(join(dir, 'missing-wal')), null)
  truncateSync(join(dir, 'copy-wal'), statSync(join(dir, 'copy-wal')).size - 100)
  const tornFd = openSync(join(dir, 'copy-wal'), 'r')
  assert.equal(readCommittedFrames(tornFd, header, positionAtHeader(header)).commits.length, 5)
  closeSync(tornFd)
})

test('a restore refuses a time before the oldest snapshot or after the newest commit, naming the reachable range; retention keeps what the oldest kept snapshot needs', async (t) => {
  const dir = tempDir(t, 'ipm-pitr-')
  const databasePath = join(dir, 'app.db')
  const replica = folderReplicaStore(join(dir, 'replica'))
  const db = new Database(databasePath)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE t (x)')
  let clock = Date.parse('2026-03-01T09:00:00Z')
  const now = () => new Date(clock)
  const controller = new AbortController()
  const running = replicate({ databasePath, replica, now, pollIntervalMs: 10, snapshotEveryMs: 3_600_000, retentionMs: 2 * 3_600_000, signal: controller.signal })
  for (let hour = 0; hour < 5; hour++) {
    db.prepare('INSERT INTO t VALUES (?)').run(hour)
    await new Promise((resolve) => setTimeout(resolve, 150))
    clock += 3_600_000
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  controller.abort()
  await running
  const [generation] = await listGenerations(replica)
  const snapshots = (await listSnapshots(replica, generation!.id)).map((s) => s.at)
  // Kept: the snapshots of the last 2 hours and the newest before them.
  assert.deepEqual(snapshots, ['2026-03-01T11:00:00.000Z', '2026-03-01T12:00:00.000Z', '2026-03-01T13:00:00.000Z', '2026-03-01T14:00:00.000Z'])
  await assert.rejects(() => restoreToTime({ replica, at: new Date('2026-03-01T10:00:00Z'), outputPath: join(dir, 'out.db') }), (e: unknown) =>
    e instanceof ToolkitError && e.exitCode === 2 && e.message === 'Instant 2026-03-01T10:00:00.000Z hors de la plage restaurable (du 2026-03-01T11:00:00.000Z au 2026-03-01T14:00:00.000Z).')
  await assert.rejects(() => restoreToTime({ replica, at: new Date('2026-03-01T15:00:00Z'), outputPath: join(dir, 'out.db') }), /hors de la plage/)
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('out')), [])
  const result = await restoreToTime({ replica, at: new Date('2026-03-01T12:30:00Z'), outputPath: join(dir, 'out.db') })
  const restored = new Database(result.outputPath, { readonly: true })
  assert.deepEqual(restored.prepare('SELECT x FROM t ORDER BY x').pluck().all(), [0, 1, 2, 3])
  restored.close()
  db.close()
  assert.deepEqual(await applyRetention({ store: replica, now: new Date('2026-03-01T14:00:00Z'), retentionMs: 2 * 3_600_000, currentGenerationId: generation!.id }), { removedSnapshots: 0, removedSegments: 0, removedGenerations: [] })
})

async function until(condition: () => boolean, what: string): Promise<void> {
  // No wall-clock threshold: the test runner's own timeout is the only limit.
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.ok(condition(), what)
}

test('merged segments keep every commit restorable; the index is only a cache (missing or damaged, it is rebuilt from segments); superseded segments are ignored', async (t) => {
  const dir = tempDir(t, 'ipm-pitr-')
  const databasePath = join(dir, 'app.db')
  const replica = folderReplicaStore(join(dir, 'replica'))
  const db = new Database(databasePath)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE t (x)')
  const events: ReplicationEvent[] = []
  const controller = new AbortController()
  const running = replicate({ databasePath, replica, minCopyIntervalMs: 0, compactEveryMs: 0, onEvent: (e) => events.push(e), signal: controller.signal })
  await until(() => events.some((e) => e.type === 'snapshot-written'), 'first snapshot')
  for (let i = 1; i <= 12; i++) {
    db.prepare('INSERT INTO t VALUES (?)').run(i)
    await until(() => events.filter((e) => e.type === 'segment-written').length >= i, `segment ${i}`)
  }
  await until(() => events.some((e) => e.type === 'compaction'), 'a compaction')
  controller.abort()
  await running
  const [generation] = await listGenerations(replica)
  const refs = await listSegments(replica, generation!.id)
  assert.ok(refs.some((r) => r.last > r.first), JSON.stringify(refs))
  const seenAt: string[] = []
  for (const ref of refs) seenAt.push(...(await readSegment(replica, generation!.id, ref)).header.commits.map((c) => c.seenAt))
  assert.equal(seenAt.length, 12)
  const check = async (label: string) => {
    for (const [i, at] of seenAt.entries()) {
      const outputPath = join(dir, `${label}-${i}.db`)
      await restoreToTime({ replica, at: new Date(at), outputPath })
      const restored = new Database(outputPath, { readonly: true })
      const expected = seenAt.filter((s) => s <= at).length
      assert.deepEqual(restored.prepare('SELECT x FROM t ORDER BY rowid').pluck().all(), Array.from({ length: expected }, (_, k) => k + 1), `${label} at ${at}`)
      restored.close()
    }
  }
  await check('indexed')
  const indexPath = join(dir, 'replica', 'generations', generation!.id, 'index.json')
  assert.ok(existsSync(indexPath))
  writeFileSync(indexPath, '{"version": 2, "segm')
  await check('damaged-index')
  rmSync(indexPath)
  await check('no-index')
  assert.deepEqual(resolveSegments([{ first: 0, last: 0 }, { first: 1, last: 1 }, { first: 0, last: 5 }, { first: 6, last: 6 }]), { live: [{ first: 0, last: 5 }, { first: 6, last: 6 }], superseded: [{ first: 0, last: 0 }, { first: 1, last: 1 }] })
  db.close()
})
