/**
 * Benchmark of restore and incremental backups on the 1M-dossier SQLite database (bench/.data/):
 * 1. our `restore` of the full backup (verify every hash while copying the database out, in one read
 *    of the archive; atomic replace; Prisma + integrity_check + foreign keys + row counts) against
 *    `tar xzf` + `cp` (target ≤ 0.6×), the two alternated `--runs` times (median ratio: a loaded
 *    machine skews single runs);
 * 2. an incremental backup after changing 1 % of the rows against the full backup: bytes (≤ 5 %)
 *    and time (≤ 25 %); its restore is checked to give the same row count and content hash.
 *
 *   npx tsx bench/restore.ts [--dossiers 1000000] [--runs 3] [--keep-output]
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import { BENCH_DATA_DIR, scaleSqliteDatabase } from './_data.ts'

const RESTORE_RATIO_TARGET = 0.6
const INCREMENTAL_BYTES_TARGET = 0.05
const INCREMENTAL_TIME_TARGET = 0.25

const program = new Command('bench-restore')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--runs <n>', 'restore and tar xzf + cp, alternated this many times (median ratio)', (v) => Number(v), 3)
  .option('--keep-output', 'keep the work folder (bench/.data/restore-run-*)')


runCommand<{ dossiers: number; runs: number; keepOutput?: boolean }>(program, async (options) => {
  const source = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
  const work = join(BENCH_DATA_DIR, `restore-run-${process.pid}`)
  mkdirSync(work, { recursive: true })
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
  const timed = async <T>(work: () => Promise<T> | T): Promise<[T, number]> => {
    const t0 = performance.now()
    const value = await work()
    return [value, performance.now() - t0]
  }

  console.log(`Load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on this machine skews every time below)`)
  try {
    const live = join(work, 'app.db')
    copyFileSync(source, live)
    const backups = join(work, 'backups')
    const system = new AdvancedBackupSystem({ databaseUrl: `file:${live}`, backupDir: backups, environment: resolveEnvironment({}), maxBackups: 10 })

    console.log(`Full backup of ${formatBytes((await import('node:fs')).statSync(live).size)} (all formats, compressed, verified)…`)
    const [full, fullMs] = await timed(() => system.create())
    console.log(`  ${seconds(fullMs)}, ${formatBytes(full.metadata.size)}`)

    // 1. Restore vs tar xzf + cp (page cache warm for both: the archive was just written and read), alternated.
    const extractDir = join(work, 'tar')
    const target = join(work, 'restored.db')
    const pairs: { tarMs: number; restoreMs: number }[] = []
    for (let run = 1; run <= options.runs; run++) {
      mkdirSync(extractDir)
      const [, tarMs] = await timed(() => {
        execFileSync('tar', ['-xzf', full.path, '-C', extractDir])
        execFileSync('cp', [join(extractDir, full.metadata.id, 'database.db'), join(work, 'baseline.db')])
      })
      rmSync(extractDir, { recursive: true, force: true })
      rmSync(join(work, 'baseline.db'), { force: true })
      const [restored, restoreMs] = await timed(() => system.restore(full.metadata.id, { yes: true, to: target }))
      rmSync(target, { force: true })
      pairs.push({ tarMs, restoreMs })
      const steps = restored.steps.map((step) => `${step.step}. ${step.name} ${seconds(step.durationMs)}`).join(', ')
      console.log(`  run ${run}: restore ${seconds(restoreMs)} (${steps}) vs tar xzf + cp ${seconds(tarMs)}: ${(restoreMs / tarMs).toFixed(2)}×, load ${loadavg()[0]!.toFixed(1)}`)
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    const restoreMs = median(pairs.map((p) => p.restoreMs))
    const tarMs = median(pairs.map((p) => p.tarMs))
    const restoreRatio = median(pairs.map((p) => p.restoreMs / p.tarMs))

    // 2. Change 1 % of the rows (updates spread over Dossier, plus inserts and deletes), then an incremental.
    const db = new Database(live)
    const total = (db.prepare('SELECT (SELECT count(*) FROM "Dossier") + (SELECT count(*) FROM "Client") + (SELECT count(*) FROM "User") + (SELECT count(*) FROM "Tenant") AS n').get() as { n: number }).n
    const changes = Math.round(total / 100)
    db.exec('BEGIN')
    const updated = db.prepare(`UPDATE "Dossier" SET statut = 'CLOS', "updatedAt" = '2026-11-25T03:00:00.000+00:00' WHERE rowid IN (SELECT rowid FROM "Dossier" WHERE abs(random()) % 100 = 0 LIMIT ?)`).run(Math.round(changes * 0.9)).changes
    const deleted = db.prepare(`DELETE FROM "Dossier" WHERE rowid IN (SELECT rowid FROM "Dossier" WHERE statut <> 'CLOS' AND abs(random()) % 1000 = 0 LIMIT ?)`).run(Math.round(changes * 0.05)).changes
    const inserted = db.prepare(`INSERT INTO "Dossier" (id, "tenantId", "clientId", numero, titre, statut, priorite, "createdAt", "updatedAt")
      SELECT 'bench-' || rowid, "tenantId", "clientId", 'B-' || rowid, titre, 'OUVERT', 'NORMALE', "createdAt", "updatedAt" FROM "Dossier" LIMIT ?`).run(Math.round(changes * 0.05)).changes
    db.exec('COMMIT')
    db.close()
    console.log(`Changed ${updated + deleted + inserted} rows of ${total} (${updated} updated, ${deleted} deleted, ${inserted} inserted): incremental backup…`)
    const [incremental, incrementalMs] = await timed(() => system.create({ incremental: true }))
    console.log(`  ${seconds(incrementalMs)}, ${formatBytes(incremental.metadata.size)}`)
    const [chainRestore, chainMs] = await timed(() => system.restore(incremental.metadata.id, { yes: true, to: target }))
    const rowsOf = (path: string) => {
      const d = new Database(path, { readonly: true })
      try {
        return d.prepare(`SELECT count(*) AS n, sum(length(statut)) AS s FROM "Dossier"`).get()
      } finally {
        d.close()
      }
    }
    const same = JSON.stringify(rowsOf(target)) === JSON.stringify(rowsOf(live))
    console.log(`  restore of the chain (${chainRestore.chain.length} backups): ${seconds(chainMs)}, Dossier count and statut sum ${same ? 'equal the source' : 'DIFFER from the source'}`)

    const bytesRatio = incremental.metadata.size / full.metadata.size
    const timeRatio = incrementalMs / fullMs
    const verdict = (ok: boolean) => (ok ? 'OK' : 'MISSED')
    console.log('')
    console.log(`restore ${seconds(restoreMs)} vs tar xzf + cp ${seconds(tarMs)} (medians of ${pairs.length} alternated runs): ${restoreRatio.toFixed(2)}× median ratio (target ≤ ${RESTORE_RATIO_TARGET}×) ${verdict(restoreRatio <= RESTORE_RATIO_TARGET)}`)
    console.log(`incremental bytes ${formatBytes(incremental.metadata.size)} vs full ${formatBytes(full.metadata.size)}: ${(bytesRatio * 100).toFixed(2)} % (target ≤ ${INCREMENTAL_BYTES_TARGET * 100} %) ${verdict(bytesRatio <= INCREMENTAL_BYTES_TARGET)}`)
    console.log(`incremental time ${seconds(incrementalMs)} vs full ${seconds(fullMs)}: ${(timeRatio * 100).toFixed(1)} % (target ≤ ${INCREMENTAL_TIME_TARGET * 100} %) ${verdict(timeRatio <= INCREMENTAL_TIME_TARGET)}`)
    console.log(`Load average at end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
    return same ? 0 : 1
  } finally {
    if (!options.keepOutput) rmSync(work, { recursive: true, force: true })
  }
})
