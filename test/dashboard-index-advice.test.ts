import { sqliteSnapshot } from '../scripts/lib/engines/sqlite/snapshot.ts'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { openTestDatabase, defer, tempDir } from './helpers/databases.ts'
import { collectorOf, instrument } from '../scripts/lib/metrics/collector.ts'
import { analyzeAppTraffic, applyIndexRecommendation } from '../scripts/lib/metrics/app-traffic.ts'
import { toSqliteTimestamp } from '../scripts/lib/db/connection.ts'
import { instrumentDatabase } from '../scripts/lib/metrics/instrumentation.ts'
import { adviseIndexes, applyRecommendation, observedFromOperations, type IndexLab } from '../scripts/lib/metrics/index-advice.ts'
import { openSqliteIndexLab } from '../scripts/lib/engines/sqlite/index-advice.ts'
import { HYPOPG_INSTALL, openPostgresIndexLab } from '../scripts/lib/engines/postgres/index-advice.ts'
import type { DatabaseHandle } from '../scripts/lib/db/connection.ts'

const DOSSIERS = 20_000
const STATUTS = ['OUVERT', 'EN_COURS', 'EN_ATTENTE', 'CLOS'] as const

/** 20 000 dossiers of the demo cabinet, statut and due date spread; Dossier's own indexes dropped (the unique (tenantId, numero) stays). */
async function bigTenant(db: DatabaseHandle): Promise<void> {
  const sqlite = db.sql.dialect === 'sqlite'
  const start = Date.UTC(2026, 0, 1)
  const stamp = (ms: number) => (sqlite ? toSqliteTimestamp(new Date(ms)) : new Date(ms))
  await db.sql.insertRows('Client', ['id', 'tenantId', 'firstName', 'lastName'], Array.from({ length: 200 }, (_, i) => [`big-client-${i}`, 'tenant-demo', 'Prénom', `Nom ${i}`]))
  await db.sql.insertRows(
    'Dossier',
    ['id', 'tenantId', 'clientId', 'numero', 'titre', 'statut', 'priorite', 'dateEcheance', 'updatedAt'],
    Array.from({ length: DOSSIERS }, (_, i) => [`big-${i}`, 'tenant-demo', `big-client-${i % 200}`, `BIG-${i}`, 'Dossier', STATUTS[i % 4]!, 'NORMALE', stamp(start + ((i * 7919) % 365) * 86_400_000), stamp(start)]),
  )
  await db.sql.executeScript('DROP INDEX "Dossier_tenantId_idx"; DROP INDEX "Dossier_clientId_idx"')
  await db.sql.query('ANALYZE')
}

/** The app's traffic: a page of due dossiers of one status, and a count per status. */
async function appWorkload(db: DatabaseHandle, rounds: number) {
  const metrics = instrumentDatabase(db)
  for (let i = 0; i < rounds; i++) {
    await metrics.prisma.dossier.findMany({ where: { tenantId: 'tenant-demo', statut: 'EN_ATTENTE' }, orderBy: { dateEcheance: 'asc' }, take: 50 })
    await metrics.prisma.dossier.count({ where: { tenantId: 'tenant-demo', statut: STATUTS[i % 4] } })
    await metrics.prisma.plan.findMany({ where: { active: true } })
  }
  return observedFromOperations(metrics.drain().operations)
}

const LITERALS = /tenant-demo|EN_ATTENTE|OUVERT'|'CLOS|2026-/

interface LabCase {
  name: string
  engine: 'sqlite' | 'postgres'
  openLab(db: DatabaseHandle, live: boolean): Promise<IndexLab | string>
}

const CASES: LabCase[] = [
  { name: 'SQLite (scratch copy)', engine: 'sqlite', openLab: (db, live) => openSqliteIndexLab(db, { scratch: !live, snapshot: sqliteSnapshot }) },
  {
    name: 'PostgreSQL (hypopg, rolled-back build)',
    engine: 'postgres',
    openLab: async (db) => {
      const [hypopg] = await db.sql.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'`)
      if (hypopg === undefined) {
        if (process.env.TEST_REQUIRE_ALL === '1') throw new Error(`hypopg is missing (${HYPOPG_INSTALL})`)
        return `hypopg is not installed on the server (${HYPOPG_INSTALL})`
      }
      return openPostgresIndexLab(db)
    },
  },
]

for (const c of CASES) {
  describe(`index advice on ${c.name}`, () => {
    test('the composite tenant-leading index the app needs, proved by measurement; applied, it disappears', async (t) => {
      const db = await openTestDatabase(t, c.engine)
      await bigTenant(db)
      const statements = await appWorkload(db, 6)
      const lab = await c.openLab(db, false)
      if (typeof lab === 'string') return t.skip(lab)
      defer(t, () => lab.close())
      const advice = await adviseIndexes(lab, statements, { minCalls: 5, minGain: 0.2, runs: 5 })
      t.diagnostic(JSON.stringify(advice.recommendations.map((r) => [r.statement, r.evidence.before.medianMs, r.evidence.after.medianMs, r.evidence.indexBytes])))
      assert.deepEqual(advice.recommendations.map((r) => [r.table, r.columns]), [['Dossier', ['tenantId', 'statut', 'dateEcheance']]], JSON.stringify(advice, null, 1))
      const [recommendation] = advice.recommendations
      assert.match(recommendation!.id, /^idx-[0-9a-f]{10}$/)
      assert.equal(recommendation!.fingerprintIds.length, 2, 'the count by status is served by the same index')
      assert.ok(['full', 'index-filter'].includes(recommendation!.problem))
      if (c.engine === 'postgres') {
        assert.ok(Array.isArray(recommendation!.evidence.whatIf) && recommendation!.evidence.whatIf.some((line) => /btree_Dossier/.test(line)), JSON.stringify(recommendation!.evidence.whatIf))
        assert.match(recommendation!.statement, /^CREATE INDEX CONCURRENTLY "Dossier_tenantId_statut_dateEcheance_idx"/)
        const [left] = await db.sql.query<{ n: string }>(`SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'Dossier_tenantId_statut_dateEcheance_idx'`)
        assert.equal(Number(left!.n), 0, 'the measured index was rolled back')
        const [extension] = await db.sql.query(`SELECT 1 FROM pg_extension WHERE extname = 'hypopg'`)
        assert.equal(extension, undefined, 'hypopg was created in a rolled-back transaction')
      }
      const { before, after, gain } = recommendation!.evidence
      assert.ok(after.medianMs < before.medianMs && gain >= 0.2, `${before.medianMs} → ${after.medianMs}`)
      assert.ok(recommendation!.evidence.indexBytes > 0)
      assert.ok(after.plan.some((line) => line.includes(recommendation!.name)), after.plan.join('\n'))
      assert.ok(!before.plan.some((line) => line.includes(recommendation!.name)))
      assert.doesNotMatch(JSON.stringify(advice), LITERALS, 'no literal value in advice, plans or SQL')

      // The same advice twice: the same id.
      const again = await adviseIndexes(lab, statements, { minCalls: 5, runs: 3 })
      assert.deepEqual(again.recommendations.map((r) => r.id), [recommendation!.id])
      // A gain threshold no index can reach: nothing proposed, the reason recorded.
      const strict = await adviseIndexes(lab, statements, { minCalls: 5, minGain: 1.01, runs: 3 })
      assert.deepEqual(strict.recommendations, [])
      assert.ok(strict.rejected.some((r) => /^gain mesuré/.test(r.reason)), JSON.stringify(strict.rejected))

      const live = await c.openLab(db, true)
      assert.notEqual(typeof live, 'string')
      const liveLab = live as IndexLab
      defer(t, () => liveLab.close())
      const proved = statements.find((s) => s.id === recommendation!.fingerprintIds[0])!
      const applied = await applyRecommendation(liveLab, recommendation!, proved)
      assert.ok(applied.after.medianMs < applied.before.medianMs, JSON.stringify(applied))
      assert.ok(applied.after.plan.some((line) => line.includes(recommendation!.name)))
      const afterApply = await adviseIndexes(liveLab, await appWorkload(db, 6), { minCalls: 5, runs: 3 })
      assert.deepEqual(afterApply.recommendations, [], 'applied, the recommendation disappears')
      t.diagnostic(`applied: ${applied.before.medianMs} ms → ${applied.after.medianMs} ms (gain ${applied.gain}, predicted ${applied.predictedGain})`)
    })

    test('without observed values, representative ones are drawn from the data (the biggest tenant)', async (t) => {
      const db = await openTestDatabase(t, c.engine)
      await bigTenant(db)
      const statements = (await appWorkload(db, 5)).map(({ params: _params, ...rest }) => rest)
      const lab = await c.openLab(db, false)
      if (typeof lab === 'string') return t.skip(lab)
      defer(t, () => lab.close())
      const advice = await adviseIndexes(lab, statements, { minCalls: 5, runs: 3 })
      assert.deepEqual(advice.recommendations.map((r) => [r.columns, r.evidence.params]), [[['tenantId', 'statut', 'dateEcheance'], 'representative']], JSON.stringify(advice, null, 1))
    })
  })
}

for (const c of CASES) {
  describe(`index findings and plan reading on ${c.name}`, () => {
    test('a scan through an index that does not serve the filter is told apart; duplicate indexes are flagged', async (t) => {
      const db = await openTestDatabase(t, c.engine)
      const lab = await c.openLab(db, true)
      if (typeof lab === 'string') return t.skip(lab)
      defer(t, () => lab.close())
      const statement = c.engine === 'postgres' ? 'SELECT "id" FROM "Dossier" WHERE "tenantId" = $1 AND "titre" = $2' : 'SELECT "id" FROM "Dossier" WHERE "tenantId" = ? AND "titre" = ?'
      const plan = await lab.explain(statement, ['tenant-demo', 'Succession Martin'])
      const scan = plan.scans.find((s) => s.table === 'Dossier')
      assert.equal(scan?.kind, 'index-filter', plan.lines.join('\n'))
      assert.match(scan?.index ?? '', /^Dossier_tenantId/)
      assert.doesNotMatch(plan.lines.join('\n'), /tenant-demo|Succession/)

      const findings = await lab.indexFindings()
      const duplicate = findings.find((f) => f.kind === 'duplicate-index' && f.index === 'Dossier_tenantId_idx')
      assert.equal(duplicate?.coveredBy, 'Dossier_tenantId_numero_key', JSON.stringify(findings))
      if (c.engine === 'postgres') {
        const unused = findings.filter((f) => f.kind === 'unused-index').map((f) => f.index)
        assert.ok(unused.includes('Dossier_clientId_idx'), unused.join(', '))
        assert.ok(!unused.some((name) => name.endsWith('_pkey') || name.endsWith('_key')), 'unique indexes are never "unused"')
      }
    })
  })
}

describe('advice from the app-side collector (SQLite)', () => {
  test('the sink alone (fingerprints, no values) leads to the proven index, and --apply builds it with a real gain', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    await bigTenant(db)
    const sink = join(tempDir(t), 'app.metrics.ndjson')
    const prisma = instrument(db.createQueryEventClient!(), { sink, flushIntervalMs: 60_000 })
    for (let i = 0; i < 6; i++) {
      await prisma.dossier.findMany({ where: { tenantId: 'tenant-demo', statut: 'EN_ATTENTE' }, orderBy: { dateEcheance: 'asc' }, take: 50 })
      await prisma.dossier.count({ where: { tenantId: 'tenant-demo', statut: STATUTS[i % 4] } })
    }
    await collectorOf(prisma).close()
    const options = { database: db, source: 'app' as const, sink, windowMs: 3_600_000, advice: { minCalls: 5, runs: 3 } }
    const report = await analyzeAppTraffic(options)
    assert.deepEqual(report.advice.recommendations.map((r) => [r.columns, r.evidence.params]), [[['tenantId', 'statut', 'dateEcheance'], 'representative']], JSON.stringify(report.advice, null, 1))
    assert.ok(report.statements.some((s) => s.kind === 'op' && s.display.startsWith('Dossier.findMany') && s.calls === 6 && s.tenants?.['tenant-demo'] === 6))
    assert.ok(report.statements.some((s) => s.kind === 'sql' && s.display.startsWith('SELECT … FROM Dossier') && s.tenants?.['tenant-demo'] === 6), 'SQL statements carry their operation\'s tenant')
    // Tenant ids are what the per-tenant numbers are about; nothing else from the data is written.
    assert.doesNotMatch(JSON.stringify({ ...report, statements: report.statements.map(({ tenants: _tenants, ...s }) => s) }), LITERALS)
    const applied = await applyIndexRecommendation({ ...options, id: report.advice.recommendations[0]!.id })
    assert.ok(applied.after.medianMs < applied.before.medianMs, JSON.stringify(applied))
    assert.deepEqual((await analyzeAppTraffic(options)).advice.recommendations, [])
  })
})
