/**
 * Benchmark of SQLite continuous replication: lag (commit → seen in a durable segment) p50/p99 at a
 * given rate, replica bytes per hour of changes (extrapolated linearly from the run, said so in the
 * output) against the database size, segment objects kept, and the time to restore to the middle.
 *
 *   npx tsx bench/replication.ts [--seconds 30] [--rate 50] [--compact-every 60]
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Command } from 'commander'
import { replicate } from '../scripts/lib/engines/sqlite/wal-replicator.ts'
import { restoreToTime } from '../scripts/lib/engines/sqlite/wal-restore.ts'
import { listGenerations, listSegments, readSegmentHeader } from '../scripts/lib/replication/layout.ts'
import { folderReplicaStore } from '../scripts/lib/replication/store.ts'
import { BENCH_DATA_DIR } from './_data.ts'

const options = new Command('bench-replication')
  .option('--seconds <n>', 'write for this long', Number, 30)
  .option('--rate <n>', 'transactions per second', Number, 50)
  .option('--compact-every <s>', 'merge small segments this often (seconds)', Number, 60)
  .parse().opts<{ seconds: number; rate: number; compactEvery: number }>()
const work = join(BENCH_DATA_DIR, `replication-run-${process.pid}`)
mkdirSync(work, { recursive: true })
const databasePath = join(work, 'app.db')
const replica = folderReplicaStore(join(work, 'replica'))
const setup = new Database(databasePath)
setup.pragma('journal_mode = WAL')
setup.exec('CREATE TABLE commits (n INTEGER PRIMARY KEY, committed_at INTEGER NOT NULL)')
const controller = new AbortController()
const running = replicate({ databasePath, replica, compactEveryMs: options.compactEvery * 1000, signal: controller.signal })
const writer = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'test', 'helpers', 'replication-processes.ts'), 'writer', databasePath, String(options.seconds * 1000), String(options.rate), '0'], { stdio: 'inherit' })
await new Promise((resolve) => writer.once('exit', resolve))
await new Promise((resolve) => setTimeout(resolve, 1000))
controller.abort()
await running
const rows = setup.prepare('SELECT committed_at FROM commits ORDER BY n').pluck().all() as number[]
const generation = (await listGenerations(replica))[0]!
const refs = await listSegments(replica, generation.id)
const seen: number[] = []
for (const ref of refs) seen.push(...(await readSegmentHeader(replica, generation.id, ref)).commits.map((c) => Date.parse(c.seenAt)))
const lags = rows.map((t, i) => seen[i]! - t).sort((a, b) => a - b)
const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]
const segmentsDir = join(work, 'replica', 'generations', generation.id, 'segments')
const segmentBytes = readdirSync(segmentsDir).reduce((sum, name) => sum + statSync(join(segmentsDir, name)).size, 0)
const middle = new Date((rows[0]! + rows[rows.length - 1]!) / 2)
const t0 = performance.now()
const restored = await restoreToTime({ replica, at: middle, outputPath: join(work, 'restored.db') })
const restoreMs = performance.now() - t0
setup.close()
console.log(JSON.stringify({
  transactions: rows.length, seconds: options.seconds, rate: options.rate, achievedRate: Math.round(rows.length / options.seconds),
  lagMs: { p50: pct(0.5), p99: pct(0.99), max: lags[lags.length - 1] },
  segmentObjects: refs.length, merged: refs.filter((r) => r.first !== r.last).length,
  segmentBytes, segmentBytesPerHourExtrapolated: Math.round(segmentBytes * 3600 / options.seconds),
  databaseBytes: statSync(databasePath).size,
  restoreMiddle: { ms: Math.round(restoreMs), transactionsApplied: restored.transactionsApplied },
}, null, 2))
rmSync(work, { recursive: true, force: true })
