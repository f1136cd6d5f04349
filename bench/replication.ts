/**
 * Benchmark of SQLite continuous replication: lag (commit → seen in a durable segment) p50/p99 at a
 * given rate, replica bytes per hour of changes (extrapolated) against the database size, restore time.
 *
 *   npx tsx bench/replication.ts [--seconds 30] [--rate 50]
 */
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Command } from 'commander'
import { replicate } from '../scripts/lib/engines/sqlite/wal-replicator.ts'
import { restoreToTime } from '../scripts/lib/engines/sqlite/wal-restore.ts'
import { listGenerations, listSegmentSeqs, readSegmentHeader } from '../scripts/lib/replication/layout.ts'
import { BENCH_DATA_DIR } from './_data.ts'

const options = new Command('bench-replication').option('--seconds <n>', 'write for this long', Number, 30).option('--rate <n>', 'transactions per second', Number, 50).parse().opts<{ seconds: number; rate: number }>()
const work = join(BENCH_DATA_DIR, `replication-run-${process.pid}`)
mkdirSync(work, { recursive: true })
const databasePath = join(work, 'app.db')
const replicaDir = join(work, 'replica')
const setup = new Database(databasePath)
setup.pragma('journal_mode = WAL')
setup.exec('CREATE TABLE commits (n INTEGER PRIMARY KEY, committed_at INTEGER NOT NULL)')
const controller = new AbortController()
const running = replicate({ databasePath, replicaDir, signal: controller.signal })
const writer = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'test', 'helpers', 'replication-processes.ts'), 'writer', databasePath, String(options.seconds * 1000), String(options.rate), '0'], { stdio: 'inherit' })
await new Promise((resolve) => writer.once('exit', resolve))
await new Promise((resolve) => setTimeout(resolve, 500))
controller.abort()
await running
const rows = setup.prepare('SELECT committed_at FROM commits ORDER BY n').pluck().all() as number[]
const generation = listGenerations(replicaDir)[0]!
const seen = listSegmentSeqs(replicaDir, generation.id).flatMap((seq) => readSegmentHeader(replicaDir, generation.id, seq).commits.map((c) => Date.parse(c.seenAt)))
const lags = rows.map((t, i) => seen[i]! - t).sort((a, b) => a - b)
const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]
const replicaBytes = listSegmentSeqs(replicaDir, generation.id).reduce((sum, seq) => sum + statSync(join(replicaDir, 'generations', generation.id, 'segments', `${String(seq).padStart(16, '0')}.segment`)).size, 0)
const t0 = performance.now()
const middle = new Date((rows[0]! + rows[rows.length - 1]!) / 2)
restoreToTime({ replicaDir, at: middle, outputPath: join(work, 'restored.db') })
const restoreMs = performance.now() - t0
setup.close()
console.log(JSON.stringify({
  transactions: rows.length, seconds: options.seconds, rate: options.rate,
  lagMs: { p50: pct(0.5), p99: pct(0.99), max: lags[lags.length - 1] },
  segmentBytes: replicaBytes, segmentBytesPerHour: Math.round(replicaBytes * 3600 / options.seconds),
  databaseBytes: statSync(databasePath).size, restoreMiddleMs: Math.round(restoreMs),
}, null, 2))
rmSync(work, { recursive: true, force: true })
