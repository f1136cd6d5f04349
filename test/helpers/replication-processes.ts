/**
 * The two child processes of the point-in-time recovery test, selected by argv[2]:
 * - `writer <db> <durationMs> <rate> [checkpoints: 1|0]`: commits numbered transactions (one row each, with the writer's
 *   clock read inside the transaction, so the commit happened at or after it), and checkpoints the
 *   database itself every ~700 ms in turn PASSIVE, RESTART, TRUNCATE, as an application may;
 * - `replicate <db> <replicaDir>`: runs replicate() until SIGTERM, printing its events as JSON lines.
 */
import Database from 'better-sqlite3'
import { replicate } from '../../scripts/lib/engines/sqlite/wal-replicator.ts'
import { folderReplicaStore } from '../../scripts/lib/replication/store.ts'

const [role, databasePath, arg1, arg2, arg3] = process.argv.slice(2)

if (role === 'writer') {
  const db = new Database(databasePath!)
  db.pragma('busy_timeout = 10000')
  const insert = db.prepare('INSERT INTO commits (n, committed_at) VALUES (?, ?)')
  const end = Date.now() + Number(arg1)
  const period = 1000 / Number(arg2)
  const modes = ['PASSIVE', 'RESTART', 'TRUNCATE']
  let n = 0
  let nextCheckpoint = arg3 === '0' ? Infinity : Date.now() + 700
  while (Date.now() < end) {
    n += 1
    db.transaction(() => insert.run(n, Date.now()))()
    if (Date.now() >= nextCheckpoint) {
      // A short busy timeout: RESTART and TRUNCATE wait for readers, and the replicator is always one.
      db.pragma('busy_timeout = 50')
      db.pragma(`wal_checkpoint(${modes[n % 3]})`)
      db.pragma('busy_timeout = 10000')
      nextCheckpoint = Date.now() + 700
    }
    await new Promise((resolve) => setTimeout(resolve, period))
  }
  db.close()
  process.stdout.write(`${JSON.stringify({ commits: n })}\n`)
} else if (role === 'replicate') {
  const controller = new AbortController()
  process.once('SIGTERM', () => controller.abort())
  const summary = await replicate({
    databasePath: databasePath!,
    replica: folderReplicaStore(arg1!),
    checkpointThresholdPages: Number(arg2 ?? 200),
    onEvent: (event) => process.stdout.write(`${JSON.stringify({ ...event, wallClock: Date.now() })}\n`),
    signal: controller.signal,
  })
  process.stdout.write(`${JSON.stringify({ type: 'stopped', summary })}\n`)
}
