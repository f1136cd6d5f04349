/**
 * Benchmark of restore and incremental backups on the 1M-dossier SQLite database (bench/.data/):
 * 1. the built tool's `restore` as an operator runs it (`node dist/advanced-backup.mjs restore <id>
 *    --to <file> --yes`, rebuilt here from the sources as `npm run build` does: verify every hash
 *    while copying the database out, in one read of the archive; atomic replace; Prisma +
 *    integrity_check + foreign keys + row counts)
 *    against `tar xzf` + `cp`, both under GNU time, alternated `--runs` times (target ≤ 0.6× on the
 *    median ratio: a loaded machine skews single runs; CPU printed too);
 * 2. an incremental backup after changing 1 % of the rows against the full backup: bytes (≤ 5 %)
 *    and time (≤ 25 %); its restore is checked to give the same row count and content hash.
 *
 *   npx tsx bench/restore.ts [--dossiers 1000000] [--runs 3] [--keep-output]
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import { buildDist } from '../scripts/lib/dist.ts'
import { BENCH_DATA_DIR, median, readGnuTime, scaleSqliteDatabase, underGnuTime, type GnuTimeReport } from './_data.ts'

const ROOT = join(import.meta.dirname, '..')
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

    // 1. Restore vs tar xzf + cp, each in its own process tree under GNU time (page cache warm for both:
    // the archive was just written and read), alternated.
    await buildDist({ root: ROOT, outDir: join(ROOT, 'dist') })
    const extractDir = join(work, 'tar')
    const target = join(work, 'restored.db')
    const timeFile = join(work, 'time')
    const tarSide = (): GnuTimeReport => {
      mkdirSync(extractDir)
      const script = `tar -xzf "$ARCHIVE" -C "$OUT" && cp "$OUT/${full.metadata.id}/database.db" "$COPY"`
      const [command, args] = underGnuTime(['bash', '-c', script], timeFile)
      const result = spawnSync(command, args, { env: { ...process.env, ARCHIVE: full.path, OUT: extractDir, COPY: join(work, 'baseline.db') }, stdio: ['ignore', 'ignore', 'inherit'] })
      if (result.status !== 0) throw new Error(`tar xzf + cp failed (exit ${result.status})`)
      rmSync(extractDir, { recursive: true, force: true })
      rmSync(join(work, 'baseline.db'), { force: true })
      return readGnuTime(timeFile)
    }
    const oursSide = (): GnuTimeReport & { steps: string } => {
      const [command, args] = underGnuTime([process.execPath, join(ROOT, 'dist', 'advanced-backup.mjs'), '--dir', backups, '--json', 'restore', full.metadata.id, '--to', target, '--yes'], timeFile)
      const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 })
      if (result.status !== 0) throw new Error(`advanced-backup restore failed (exit ${result.status})`)
      const restored = JSON.parse(result.stdout) as { steps: { step: number; name: string; durationMs: number }[] }
      rmSync(target, { force: true })
      return { ...readGnuTime(timeFile), steps: restored.steps.map((step) => `${step.step}. ${step.name} ${seconds(step.durationMs)}`).join(', ') }
    }
    const pairs: { tar: GnuTimeReport; ours: GnuTimeReport }[] = []
    for (let run = 1; run <= options.runs; run++) {
      // Odd runs: tar first; even runs: ours first.
      const tar = run % 2 === 1 ? tarSide() : undefined
      const ours = oursSide()
      const pair = { tar: tar ?? tarSide(), ours }
      pairs.push(pair)
      console.log(`  run ${run}: restore ${pair.ours.wallS.toFixed(2)} s, CPU ${pair.ours.cpuS.toFixed(2)} s (${ours.steps}) vs tar xzf + cp ${pair.tar.wallS.toFixed(2)} s, CPU ${pair.tar.cpuS.toFixed(2)} s: ${(pair.ours.wallS / pair.tar.wallS).toFixed(2)}×, load ${loadavg()[0]!.toFixed(1)}`)
    }
    const restoreMs = median(pairs.map((p) => p.ours.wallS)) * 1000
    const tarMs = median(pairs.map((p) => p.tar.wallS)) * 1000
    const restoreRatio = median(pairs.map((p) => p.ours.wallS / p.tar.wallS))
    const cpuRatio = median(pairs.map((p) => p.ours.cpuS / p.tar.cpuS))

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
    console.log(`restore ${seconds(restoreMs)} vs tar xzf + cp ${seconds(tarMs)} (medians of ${pairs.length} alternated runs): ${restoreRatio.toFixed(2)}× median ratio (target ≤ ${RESTORE_RATIO_TARGET}×) ${verdict(restoreRatio <= RESTORE_RATIO_TARGET)}; CPU ${cpuRatio.toFixed(2)}×`)
    console.log(`incremental bytes ${formatBytes(incremental.metadata.size)} vs full ${formatBytes(full.metadata.size)}: ${(bytesRatio * 100).toFixed(2)} % (target ≤ ${INCREMENTAL_BYTES_TARGET * 100} %) ${verdict(bytesRatio <= INCREMENTAL_BYTES_TARGET)}`)
    console.log(`incremental time ${seconds(incrementalMs)} vs full ${seconds(fullMs)}: ${(timeRatio * 100).toFixed(1)} % (target ≤ ${INCREMENTAL_TIME_TARGET * 100} %) ${verdict(timeRatio <= INCREMENTAL_TIME_TARGET)}`)
    console.log(`Load average at end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
    return same ? 0 : 1
  } finally {
    if (!options.keepOutput) rmSync(work, { recursive: true, force: true })
  }
})
