import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ENGINES, openTestDatabase } from './helpers/databases.ts'
import { addBulkDossiers } from './helpers/dashboard.ts'
import { DatabasePerformanceDashboard } from '../scripts/lib/metrics/dashboard.ts'
import type { Recommendation } from '../scripts/lib/metrics/advisor.ts'
import type { AppPrismaClient } from '../scripts/lib/db/connection.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const of = <K extends Recommendation['kind']>(list: readonly Recommendation[], kind: K) => list.filter((r): r is Extract<Recommendation, { kind: K }> => r.kind === kind)

for (const engine of ENGINES) {
  describe(`dashboard recommendations on ${engine}`, () => {
    test('a dropped index is recommended with its exact CREATE INDEX; applied, the query is faster and the recommendation goes away', async (t) => {
      const db = await openTestDatabase(t, engine)
      // D1 through Miniflare costs ~10 ms a round trip here: it needs a bigger table for the scan to stand out.
      const dossiers = engine === 'd1' ? 200_000 : 40_000
      const clientIds = await addBulkDossiers(db.sql, { clients: dossiers / 20, dossiers })
      await db.sql.executeScript('DROP INDEX "Dossier_clientId_idx"')
      if (engine === 'postgres') await db.sql.query('ANALYZE')
      // Every fingerprint counts as slow, so every one is explained: the verdicts depend on plans, not on timings.
      const dashboard = new DatabasePerformanceDashboard({ environment: resolveEnvironment(), database: db, runTests: false, thresholds: { fastMs: 0, slowMs: 0 } })
      t.after(() => dashboard.close())
      const prisma = await dashboard.client()
      const ids = clientIds.slice(0, 5)
      const workload = async () => {
        await prisma.client.findMany({ where: { id: { in: ids } }, include: { dossiers: true } })
        await prisma.user.findMany({ where: { tenantId: 'tenant-demo' } })
      }

      await workload()
      const before = await dashboard.analyzePerformance()
      const proposed = of(before.recommendations, 'index')
      assert.deepEqual(proposed.map((r) => r.statement), ['CREATE INDEX "Dossier_clientId_idx" ON "Dossier"("clientId");'], 'only the dropped index is proposed')
      const [recommendation] = proposed
      assert.deepEqual([recommendation!.table, recommendation!.columns], ['Dossier', ['clientId']])
      assert.equal(recommendation!.evidence.verification, engine === 'postgres' ? 'unverified' : 'used')
      assert.ok(recommendation!.evidence.plan.some((line) => /SCAN (main\.)?Dossier$|Seq Scan on Dossier/.test(line.trim())), recommendation!.evidence.plan.join('\n'))
      assert.match(recommendation!.message, /CREATE INDEX "Dossier_clientId_idx" ON "Dossier"\("clientId"\);/)
      if (engine === 'postgres') {
        // The tiny User table is read in full although User_tenantId_idx exists: never proposed again.
        const user = of(before.recommendations, 'slow-query').find((r) => r.message.includes('FROM User WHERE tenantId'))
        assert.match(user?.evidence.reason ?? '', /User_tenantId_idx\(tenantId\) sert déjà ce filtre/)
      }

      // Applied, the index is what the plan uses (the judge is the plan, not a timing that load can flip).
      await db.sql.executeScript(recommendation!.statement)
      if (engine === 'postgres') await db.sql.query('ANALYZE "Dossier"')

      await workload()
      const after = await dashboard.analyzePerformance()
      assert.deepEqual(of(after.recommendations, 'index'), [])
      const dossierPlan = of(after.recommendations, 'slow-query').find((r) => r.message.includes('FROM Dossier WHERE clientId IN'))
      assert.ok(dossierPlan?.evidence.plan.some((line) => line.includes('Dossier_clientId_idx')), dossierPlan?.evidence.plan.join('\n'))
    })

    test('N+1 and caching are recommended from observed repetitions only, with the measured numbers', async (t) => {
      const db = await openTestDatabase(t, engine)
      await db.sql.insertRows('Client', ['id', 'tenantId', 'firstName', 'lastName'], Array.from({ length: 12 }, (_, i) => [`n1-${i}`, 'tenant-demo', 'N', `Plus ${i}`]))
      // An unbounded window: the 12 lookups are one burst however loaded the machine. No statement
      // counts as slow (a slow one would add a recommendation): the verdicts depend on repetitions only.
      const dashboard = new DatabasePerformanceDashboard({ environment: resolveEnvironment(),
        database: db,
        runTests: false,
        thresholds: { fastMs: Number.MAX_SAFE_INTEGER, slowMs: Number.MAX_SAFE_INTEGER },
        advisor: { nPlusOneWindowMs: Number.MAX_SAFE_INTEGER },
      })
      t.after(() => dashboard.close())
      const prisma: AppPrismaClient = await dashboard.client()

      for (let i = 0; i < 12; i++) await prisma.client.findUnique({ where: { id: `n1-${i}` } })
      for (let i = 0; i < 8; i++) await prisma.plan.findMany({ where: { active: true } })
      const first = await dashboard.analyzePerformance()
      const nPlusOne = of(first.recommendations, 'n-plus-one')
      assert.equal(nPlusOne.length, 1, JSON.stringify(first.recommendations, null, 1))
      assert.deepEqual({ ...nPlusOne[0]!.evidence, windowMs: 0 }, { executions: 12, operations: 12, distinctParams: 12, operation: 'Client.findUnique', windowMs: 0 })
      const cache = of(first.recommendations, 'cache')
      assert.equal(cache.length, 1)
      assert.deepEqual({ ...cache[0]!.evidence, dbTimeMs: 0 }, { reads: 8, repeats: 7, repeatRatio: 0.875, dbTimeMs: 0 })
      assert.match(cache[0]!.message, /^Cache: 7 des 8 lectures \(88 %\) de « SELECT … FROM Plan WHERE active = \? .*» répétaient une lecture identique/)
      assert.deepEqual(first.cache.repeatedReads, { reads: 20, repeats: 7, ratio: 0.35 })

      // The same lookups issued together are batched by Prisma into one query: no N+1, no repeat.
      await Promise.all(Array.from({ length: 12 }, (_, i) => prisma.client.findUnique({ where: { id: `n1-${i}` } })))
      const second = await dashboard.analyzePerformance()
      assert.equal(second.globalMetrics.totalQueries, 12)
      assert.equal(second.globalMetrics.totalSqlStatements, 1)
      assert.deepEqual(second.recommendations, [])
    })
  })
}
