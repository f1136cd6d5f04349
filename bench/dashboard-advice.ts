/**
 * The issue's numbers for the index advice: on the scale data with Dossier's own indexes dropped, the
 * app's queries (recorded by the collector, `instrument(client, { sink })`) go through
 * `analyzeAppTraffic` — the same call as `database-performance-dashboard.ts --source app` — which must
 * recommend the composite indexes they need, each measured ≥ 5× faster, in ≤ 30 s; then each one is
 * applied (`applyIndexRecommendation`, the `--apply` path), its real gain compared with the predicted
 * one (target: within 20 %), and a last analysis must no longer recommend it.
 *
 *   npx tsx bench/dashboard-advice.ts [--scale 1000000] [--database postgresql://…] [--rounds 5]
 *
 * SQLite: a copy of bench/.data/scale-<N>.db (seeded once by bench/_data.ts) is used and changed.
 * PostgreSQL (`--database`): a database seeded with `prisma/seed.ts --scale N`; its Dossier indexes are
 * dropped, then the advised ones are built in it (the bench changes that database).
 */
import { copyFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { Command, InvalidArgumentError } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import type { DatabaseHandle } from '../scripts/lib/db/connection.ts'
import { collectorOf, instrument } from '../scripts/lib/metrics/collector.ts'
import { analyzeAppTraffic, applyIndexRecommendation, type AppTrafficOptions } from '../scripts/lib/metrics/app-traffic.ts'
import { engineNamed } from '../scripts/lib/engines/index.ts'
import { BENCH_DATA_DIR, scaleSqliteDatabase } from './_data.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const integer = (min: number) => (value: string) => {
  const n = Number(value.replaceAll('_', ''))
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`)
  return n
}

const program = new Command('dashboard-advice')
  .option('--scale <dossiers>', 'SQLite: dossiers of the scale data set', integer(1_000), 1_000_000)
  .option('--database <url>', 'a database seeded with prisma/seed.ts --scale (instead of the SQLite copy); it is changed')
  .option('--rounds <n>', 'executions of each query shape per tenant', integer(1), 5)

/** Every non-unique index of Dossier: the state the issue asks for ("with the indexes on Dossier dropped"). */
async function dropDossierIndexes(db: DatabaseHandle): Promise<string[]> {
  const indexes = (await engineNamed(db.engine).metrics.listIndexes(db.sql, 'Dossier')).filter((index) => !index.unique)
  for (const index of indexes) await db.sql.query(`DROP INDEX "${index.name}"`)
  await db.sql.query('ANALYZE')
  return indexes.map((index) => index.name)
}

/** The app's Dossier screens, on the biggest cabinets: due files of one status, counts per status, one client's files. */
async function appWorkload(db: DatabaseHandle, sink: string, rounds: number): Promise<number> {
  const tenants = await db.sql.query<{ tenantId: string }>(`SELECT "tenantId" FROM "Tenant" t JOIN (SELECT "tenantId", COUNT(*) AS n FROM "Dossier" GROUP BY "tenantId") d ON d."tenantId" = t.id ORDER BY d.n DESC LIMIT 2`)
  const prisma = instrument(db.createQueryEventClient!(), { sink })
  let operations = 0
  const started = performance.now()
  for (const { tenantId } of tenants) {
    const [client] = await db.sql.query<{ clientId: string }>(`SELECT "clientId" FROM "Dossier" WHERE "tenantId" = ${db.engine === 'postgres' ? '$1' : '?'} GROUP BY "clientId" ORDER BY COUNT(*) DESC LIMIT 1`, [tenantId])
    for (let round = 0; round < rounds; round++) {
      await prisma.dossier.findMany({ where: { tenantId, statut: 'EN_ATTENTE' }, orderBy: { dateEcheance: 'asc' }, take: 50 })
      await prisma.dossier.count({ where: { tenantId, statut: (['OUVERT', 'EN_COURS', 'EN_ATTENTE', 'CLOS'] as const)[round % 4]! } })
      await prisma.dossier.findMany({ where: { clientId: client!.clientId }, orderBy: { createdAt: 'desc' }, take: 20 })
      operations += 3
    }
  }
  await collectorOf(prisma).close()
  await prisma.$disconnect()
  console.log(`Workload: ${operations} operations on the ${tenants.length} biggest cabinets in ${((performance.now() - started) / 1000).toFixed(1)} s (collector sink ${sink}).`)
  return operations
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

runCommand<{ scale: number; database?: string; rounds: number }>(program, async (options) => {
  let url = options.database
  if (url === undefined) {
    const source = await scaleSqliteDatabase(options.scale, { log: console.log })
    const copy = join(BENCH_DATA_DIR, `advice-${options.scale}.db`)
    for (const suffix of ['', '-journal', '-wal', '-shm', '.metrics.ndjson', '.metrics.ndjson.1']) rmSync(copy + suffix, { force: true })
    copyFileSync(source, copy)
    url = `file:${copy}`
  }
  const db = await openDatabase(url, { environment: resolveEnvironment() })
  try {
    const [{ n } = { n: 0 }] = await db.sql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM "Dossier"`)
    console.log(`Database: ${db.redactedUrl} (${db.engine}), ${Number(n).toLocaleString('en')} dossiers; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on this machine.`)
    console.log(`Dropped: ${(await dropDossierIndexes(db)).join(', ') || 'none'}.`)
    const sink = join(BENCH_DATA_DIR, `advice-${db.engine}.metrics.ndjson`)
    for (const file of [sink, `${sink}.1`]) rmSync(file, { force: true })
    await appWorkload(db, sink, options.rounds)

    const traffic: AppTrafficOptions = { database: db, source: 'app', sink, windowMs: 24 * 3_600_000, advice: { minCalls: 5, runs: 5 } }
    const started = performance.now()
    const report = await analyzeAppTraffic(traffic)
    const analysisMs = performance.now() - started
    console.log(`\nAnalysis (sink read, scratch copy or hypopg, every candidate measured): ${seconds(analysisMs)}; target ≤ 30 s: ${analysisMs <= 30_000 ? 'met' : 'NOT met'}.`)
    for (const rejected of report.advice.rejected) console.log(`  rejected ${rejected.table}(${rejected.columns.join(', ')}): ${rejected.reason}`)

    const rows: string[] = []
    for (const r of report.advice.recommendations) {
      const applyStarted = performance.now()
      const applied = await applyIndexRecommendation({ ...traffic, id: r.id })
      const applyMs = performance.now() - applyStarted
      const realSpeedup = applied.after.medianMs > 0 ? applied.before.medianMs / applied.after.medianMs : Infinity
      const gainGap = Math.abs(applied.gain - r.evidence.gain) / r.evidence.gain
      rows.push(
        `| ${r.table}(${r.columns.join(', ')}) | ${r.fingerprintIds.length} | ${r.evidence.before.medianMs} → ${r.evidence.after.medianMs} ms | ×${r.evidence.speedup.toFixed(1)} ${r.evidence.speedup >= 5 ? '✓' : '✗'} | ` +
          `${(r.evidence.indexBytes / 1_048_576).toFixed(1)} MiB | ${applied.before.medianMs} → ${applied.after.medianMs} ms | ×${realSpeedup.toFixed(1)} | ${(r.evidence.gain * 100).toFixed(1)} % / ${(applied.gain * 100).toFixed(1)} % (écart ${(gainGap * 100).toFixed(1)} %) ${gainGap <= 0.2 ? '✓' : '✗'} | ${seconds(applyMs)} |`,
      )
    }
    const after = await analyzeAppTraffic(traffic)
    const left = after.advice.recommendations.filter((r) => report.advice.recommendations.some((p) => p.id === r.id))
    console.log(`\n| index (${db.engine}) | statements | predicted (scratch/rollback) | predicted speedup ≥ 5× | index size | applied, real | real speedup | gain predicted / real (≤ 20 %) | --apply time |`)
    console.log('|---|---|---|---|---|---|---|---|---|')
    for (const row of rows) console.log(row)
    console.log(`\nAfter applying: ${left.length === 0 ? 'no applied recommendation is proposed again ✓' : `STILL PROPOSED: ${left.map((r) => r.id).join(', ')}`}; ${after.advice.recommendations.length} recommendation(s) left.`)
    console.log(`Load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}.`)
  } finally {
    await db.close()
  }
})
