/**
 * Benchmark of restoring one cabinet against a full restore, on the scale SQLite database
 * (bench/.data/, `prisma/seed.ts --scale`): the cabinet whose dossier count is nearest 5,000 is
 * damaged (half its dossiers deleted), then restored from a compressed json backup; every other
 * cabinet's checksum is compared before and after. Target: ≤ 5 % of the full restore's time. The
 * tenant restore reads only the cabinet's sections of the archive (tenant-restore/sections.ts).
 *
 *   npx tsx bench/tenant-restore.ts [--dossiers 1000000] [--keep-output]
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Command } from 'commander'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { tenantChecksum } from '../scripts/lib/tenant-restore/checksum.ts'
import { restoreTenant } from '../scripts/lib/tenant-restore/restore.ts'
import { BENCH_DATA_DIR, scaleSqliteDatabase } from './_data.ts'

const TARGET_RATIO = 0.05

const options = new Command('bench-tenant-restore')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--others <n>', 'how many other cabinets to checksum before and after (the largest ones)', (v) => Number(v), 50)
  .option('--keep-output', 'keep the work folder (bench/.data/tenant-restore-run-*)')
  .parse()
  .opts<{ dossiers: number; others: number; keepOutput?: boolean }>()

const source = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
const work = join(BENCH_DATA_DIR, `tenant-restore-run-${process.pid}`)
mkdirSync(work, { recursive: true })
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const timed = async <T>(work: () => Promise<T> | T): Promise<[T, number]> => {
  const t0 = performance.now()
  const value = await work()
  return [value, performance.now() - t0]
}

console.log(`Load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
try {
  const live = join(work, 'app.db')
  copyFileSync(source, live)
  const backups = join(work, 'backups')
  const system = new AdvancedBackupSystem({ databaseUrl: `file:${live}`, backupDir: backups, environment: resolveEnvironment({}), maxBackups: 10 })
  const [full, backupMs] = await timed(() => system.create())
  console.log(`Full backup (all formats, compressed, verified): ${seconds(backupMs)}`)

  const raw = new Database(live)
  const counts = raw.prepare(`SELECT "tenantId" AS id, count(*) AS n FROM "Dossier" GROUP BY "tenantId" ORDER BY abs(count(*) - 5000), "tenantId"`).all() as { id: string; n: number }[]
  const chosen = counts[0]!
  const others = counts.slice(1).sort((a, b) => b.n - a.n).slice(0, options.others)
  const deleted = raw.prepare(`DELETE FROM "Dossier" WHERE "tenantId" = ? AND rowid % 2 = 0`).run(chosen.id).changes
  raw.close()
  console.log(`Cabinet ${chosen.id}: ${chosen.n} dossiers, ${deleted} deleted; ${others.length} other cabinets checked (${others.reduce((s, o) => s + o.n, 0)} dossiers)`)

  let tenantMs = 0
  const db = await openDatabase(`file:${live}`, { environment: resolveEnvironment() })
  try {
    const before = new Map<string, string>()
    for (const other of others) before.set(other.id, (await tenantChecksum({ db, tenantId: other.id })).checksum)
    const [dry, dryMs] = await timed(() => restoreTenant({ backup: { backupDir: backups, id: full.metadata.id }, target: db, tenant: chosen.id, dryRun: true }))
    const dossierPlan = dry.plan.tables.find((t) => t.table === 'Dossier')!
    console.log(`Dry run: ${seconds(dryMs)} (Dossier: ${dossierPlan.toInsert} to insert, ${dossierPlan.toDelete} to delete, ${dossierPlan.unchanged} unchanged)`)
    let result
    ;[result, tenantMs] = await timed(() => restoreTenant({ backup: { backupDir: backups, id: full.metadata.id }, target: db, tenant: chosen.id, safetyDir: work }))
    console.log(`Tenant restore: ${seconds(tenantMs)} (${result.deleted} rows deleted, ${result.inserted} inserted, safety export ${result.safetyExport!.bytes} bytes)`)
    const read = result.plan.backupRead
    console.log(`Backup read: ${read.path === 'sections' ? `the cabinet's sections only, ${read.bytes} of ${full.metadata.size} archive bytes` : `data.json whole (${read.reason})`}`)
    let unchanged = 0
    for (const other of others) if ((await tenantChecksum({ db, tenantId: other.id })).checksum === before.get(other.id)) unchanged++
    console.log(`Other cabinets with an unchanged checksum: ${unchanged} / ${others.length}`)
    if (unchanged !== others.length || result.after?.checksum !== dry.plan.backupChecksum.checksum) process.exitCode = 1
  } finally {
    await db.close()
  }

  const target = join(work, 'restored.db')
  const [, fullMs] = await timed(() => system.restore(full.metadata.id, { yes: true, to: target }))
  console.log(`Full restore: ${seconds(fullMs)}`)
  const ratio = tenantMs / fullMs
  console.log('')
  console.log(`tenant restore ${seconds(tenantMs)} vs full restore ${seconds(fullMs)}: ${(ratio * 100).toFixed(1)} % (target ≤ ${TARGET_RATIO * 100} %) ${ratio <= TARGET_RATIO ? 'OK' : 'MISSED'}`)
  console.log(`Load average at end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
} finally {
  if (!options.keepOutput) rmSync(work, { recursive: true, force: true })
}
