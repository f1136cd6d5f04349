/**
 * Benchmark of a restore drill against a plain restore of the same backup, on the scale SQLite
 * database (bench/.data/): one full backup, then (per round) `restore <id> --to <file>` and
 * `drill <id>` (the same restore into a scratch file, then integrity, row counts and content
 * checksums of every table, migration status, the six read queries), alternately. The best time
 * of each is compared, in wall time (the target: drill ≤ 1.5× restore) and in this process's CPU
 * time (user + system, every thread), which other work on a shared machine skews less. Each round
 * also times the content-checksum pass alone on the restored file (as a drill runs it, then on one thread).
 *
 *   npx tsx bench/drill.ts [--dossiers 1000000] [--rounds 1] [--keep-output]
 */
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { checksumRowSource, tableChecksum } from '../scripts/lib/tenant-restore/rows.ts'
import { BENCH_DATA_DIR, scaleSqliteDatabase } from './_data.ts'

const TARGET_RATIO = 1.5

const program = new Command('bench-drill')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--rounds <n>', 'restore + drill pairs (the best of each is compared)', (v) => Number(v), 1)
  .option('--keep-output', 'keep the work folder (bench/.data/drill-run-*)')

runCommand<{ dossiers: number; rounds: number; keepOutput?: boolean }>(program, async (options) => {
  const source = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
  const work = join(BENCH_DATA_DIR, `drill-run-${process.pid}`)
  mkdirSync(work, { recursive: true })
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ')
  const timed = async <T>(work: () => Promise<T>): Promise<[T, number, number]> => {
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const value = await work()
    const cpu = process.cpuUsage(cpu0)
    return [value, performance.now() - t0, (cpu.user + cpu.system) / 1000]
  }

  console.log(`Load average at start: ${load()} (other work on this machine skews every time below)`)
  try {
    const live = join(work, 'app.db')
    copyFileSync(source, live)
    const backups = join(work, 'backups')
    const system = new AdvancedBackupSystem({ databaseUrl: `file:${live}`, backupDir: backups, environment: resolveEnvironment({}), maxBackups: 10 })
    console.log(`Full backup of ${formatBytes(statSync(live).size)} (all formats, compressed, verified, content checksums recorded)…`)
    const [full, backupMs] = await timed(() => system.create())
    console.log(`  ${seconds(backupMs)}, ${formatBytes(full.metadata.size)}`)
    const id = full.metadata.id

    let bestRestore = Infinity
    let bestDrill = Infinity
    let bestRestoreCpu = Infinity
    let bestDrillCpu = Infinity
    let failed = false
    for (let round = 1; round <= options.rounds; round++) {
      const target = join(work, 'restored.db')
      const [restored, restoreMs, restoreCpu] = await timed(() => system.restore(id, { yes: true, to: target }))
      // The drill's content-checksum pass alone, on the restored file: as the drill runs it (threads
      // allowed: nobody writes the file), then streamed on one thread.
      for (const quiescent of [true, false]) {
        const db = await openDatabase(`file:${target}`, { environment: resolveEnvironment({}) })
        const reader = await db.openTableReader({ quiescent })
        const [, passMs, passCpu] = await timed(async () => {
          for (const table of await reader.tables()) await (quiescent ? tableChecksum(reader, table) : checksumRowSource(table.columns, db.engine, reader.rows(table)))
        })
        await reader.close()
        await db.close()
        console.log(`Round ${round}: content-checksum pass ${quiescent ? '(as a drill: threads allowed)' : '(one thread, streamed)'} ${seconds(passMs)}, CPU ${seconds(passCpu)} (load ${load()})`)
      }
      rmSync(target, { force: true })
      bestRestore = Math.min(bestRestore, restoreMs)
      bestRestoreCpu = Math.min(bestRestoreCpu, restoreCpu)
      console.log(`Round ${round}: restore ${seconds(restoreMs)}, CPU ${seconds(restoreCpu)} (load ${load()})`)
      for (const step of restored.steps) console.log(`  ${step.step}. ${step.name.padEnd(12)} ${seconds(step.durationMs)}  ${step.detail}`)

      const marks = new Map<string, number>()
      const t0 = performance.now()
      const [drilled, drillMs, drillCpu] = await timed(() => system.drill({ id, scratchRoot: join(work, 'drills'), step: (name) => marks.set(name, performance.now() - t0) }))
      bestDrill = Math.min(bestDrill, drillMs)
      bestDrillCpu = Math.min(bestDrillCpu, drillCpu)
      const restoredAt = marks.get('drill:restored') ?? drillMs
      console.log(`Round ${round}: drill ${seconds(drillMs)}, CPU ${seconds(drillCpu)} (load ${load()}): until the scratch database ${seconds(marks.get('drill:scratch-created') ?? 0)}, restored at ${seconds(restoredAt)} (RTO ${seconds(drilled.rtoMs ?? 0)}), checks and wrap-up ${seconds(drillMs - restoredAt)}`)
      for (const check of drilled.checks) console.log(`  ${check.status.padEnd(8)} ${check.name.padEnd(12)} ${check.detail}`)
      if (!drilled.ok) failed = true
    }

    const ratio = bestDrill / bestRestore
    console.log('')
    console.log(`drill ${seconds(bestDrill)} vs restore ${seconds(bestRestore)} (best of ${options.rounds}): ${ratio.toFixed(2)}× (target ≤ ${TARGET_RATIO}×) ${ratio <= TARGET_RATIO ? 'OK' : 'MISSED'}`)
    console.log(`CPU time: drill ${seconds(bestDrillCpu)} vs restore ${seconds(bestRestoreCpu)}: ${(bestDrillCpu / bestRestoreCpu).toFixed(2)}×`)
    console.log(`Load average at end: ${load()}`)
    return failed ? 1 : 0
  } finally {
    if (!options.keepOutput) rmSync(work, { recursive: true, force: true })
  }
})
