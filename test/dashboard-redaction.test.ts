/**
 * No value from the data leaves the dashboard: performance-metrics.json is uploaded as a CI artifact,
 * and PostgreSQL's EXPLAIN prints the values a plan was made for. Every output is searched for an
 * e-mail address, a dossier number and a tenant id that the workload filtered on (bound and written
 * inline). The tenant id goes in raw SQL only: a Prisma operation's own tenant is attributed on
 * purpose (the per-tenant metrics are what the report is for).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { DatabasePerformanceDashboard } from '../scripts/lib/metrics/dashboard.ts'
import { writePerformanceMetrics } from '../scripts/lib/metrics/performance-metrics.ts'
import { renderMetricsExposition } from '../scripts/lib/web/prometheus.ts'
import { renderDashboard, renderTestResults } from '../scripts/lib/metrics/render.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const EMAIL = 'jean.dupont@example.fr'
const TENANT = 'tenant-secret-4242'
const AMOUNT = 987654321
const NUMERO = 'D-2026-SECRET'

for (const engine of ENGINES) {
  test(`${engine}: plans, SQL and recommendations in every output show placeholders, never the e-mail or tenant id filtered on`, async (t) => {
    const db = await openTestDatabase(t, engine)
    // Every fingerprint counts as slow, so every one is explained and recommended.
    const dashboard = new DatabasePerformanceDashboard({ environment: resolveEnvironment(), database: db, runTests: false, thresholds: { fastMs: 0, slowMs: 0 } })
    t.after(() => dashboard.close())
    const prisma = await dashboard.client()
    await prisma.user.findMany({ where: { email: EMAIL } })
    await prisma.dossier.findMany({ where: { numero: NUMERO, titre: { contains: EMAIL } } })
    await prisma.$queryRawUnsafe(`SELECT id FROM "Client" WHERE email = '${EMAIL}' AND "tenantId" = '${TENANT}' AND length(id) < ${AMOUNT}`)
    const metrics = await dashboard.analyzePerformance()
    assert.ok(metrics.recommendations.some((r) => r.kind === 'slow-query' || r.kind === 'index'), 'the statements were explained')

    const dir = tempDir(t)
    writePerformanceMetrics(join(dir, 'performance-metrics.json'), metrics)
    writeFileSync(join(dir, 'metrics.prom'), await renderMetricsExposition(metrics))
    const outputs = {
      'performance-metrics.json': readFileSync(join(dir, 'performance-metrics.json'), 'utf8'),
      'metrics.prom': readFileSync(join(dir, 'metrics.prom'), 'utf8'),
      terminal: `${renderTestResults(metrics.tests)}${renderDashboard(metrics)}`,
      recommendations: JSON.stringify(metrics.recommendations),
    }
    for (const [name, text] of Object.entries(outputs)) {
      for (const value of [EMAIL, 'dupont', TENANT, NUMERO, String(AMOUNT)]) assert.ok(!text.includes(value), `${name} holds ${value}:\n${text.slice(Math.max(0, text.indexOf(value) - 300), text.indexOf(value) + 100)}`)
    }
    if (engine === 'postgres') {
      const plans = metrics.recommendations.flatMap((r) => ('plan' in r.evidence ? r.evidence.plan : []))
      assert.ok(plans.some((line) => /Filter: .*email.*= \$\d|Filter: .*email.*= \?/.test(line)), plans.join('\n'))
    }
  })
}
