import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ENGINES, createEmptyDatabaseUrl, openTestDatabase, tempDir } from './helpers/databases.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { DatabasePerformanceDashboard } from '../scripts/lib/metrics/dashboard.ts'
import { readPerformanceMetrics, writePerformanceMetrics } from '../scripts/lib/metrics/performance-metrics.ts'
import { renderMetricsExposition } from '../scripts/lib/web/prometheus.ts'
import { judge, requireJudge } from './helpers/judges.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

/** Prometheus' own linter is the judge of the exposition format. */
function promtoolCheck(text: string): { status: number; output: string } {
  const result = judge('promtool', ['check', 'metrics'], { input: text })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

for (const engine of ENGINES) {
  describe(`dashboard report on ${engine}`, () => {
    test("the six tests, the spec's JSON shape, real engine numbers and computed tenant storage", { skip: requireJudge('promtool') }, async (t) => {
      const db = await openTestDatabase(t, engine)
      const dashboard = new DatabasePerformanceDashboard({ environment: resolveEnvironment(), database: db })
      t.after(() => dashboard.close())
      const metrics = await dashboard.analyzePerformance()

      assert.deepEqual(
        metrics.tests.map((r) => [r.number, r.name, r.status, r.count, r.unit]),
        [
          [1, 'Connexion simple', 'passed', undefined, undefined],
          [2, 'Count Plans', 'passed', 6, 'plans'],
          [3, 'FindMany Tenants (avec relations)', 'passed', 6, 'tenants'],
          [4, 'Requête complexe Dossiers', 'passed', 6, 'dossiers'],
          [5, 'Agrégations', 'passed', 4, 'groupes'],
          [6, 'Requêtes parallèles', 'passed', 5, 'requêtes parallèles'],
        ],
      )
      // The spec's keys, and the snippet's `metrics.slowQueriesCount`.
      for (const key of ['timestamp', 'uptime', 'globalMetrics', 'tenantMetrics', 'recommendations', 'rawMetrics']) assert.ok(key in metrics, key)
      for (const key of ['totalQueries', 'averageDuration', 'slowQueries', 'fastQueries', 'mediumQueries', 'slowQueriesCount', 'cacheHitRate', 'connectionPoolSize', 'activeConnections']) {
        assert.ok(key in metrics.globalMetrics, key)
      }
      assert.equal(metrics.slowQueriesCount, metrics.globalMetrics.slowQueriesCount)
      const g = metrics.globalMetrics
      assert.equal(g.totalQueries, 10, '$queryRaw, plan.count, tenant.findMany, dossier.findMany, groupBy and five counts')
      assert.equal(g.totalSqlStatements, 14, 'tenant.findMany sends 4 statements, dossier.findMany 2')
      assert.equal(g.fastQueries + g.mediumQueries + g.slowQueriesCount, 10)
      assert.equal(metrics.rawMetrics.length, 10)
      assert.equal(metrics.fingerprints.reduce((n, f) => n + f.count, 0), 14)

      const [demo, ...others] = metrics.tenantMetrics
      assert.equal(others.length, 0, 'only test 4 names a tenant')
      assert.deepEqual({ ...demo!, averageDuration: 0, averageDbDuration: 0, storageUsed: 0 }, {
        tenantId: 'tenant-demo', tenantName: 'Cabinet Demo', queryCount: 1, averageDuration: 0, averageDbDuration: 0, totalDossiers: 9, totalClients: 3, storageUsed: 0,
      })

      if (engine === 'postgres') {
        const [row] = await db.sql.query<{ hit: string; read: string }>(`SELECT blks_hit AS hit, blks_read AS read FROM pg_stat_database WHERE datname = current_database()`)
        const now = Number(row!.hit) / (Number(row!.hit) + Number(row!.read))
        assert.ok(g.cacheHitRate !== null && g.cacheHitRate > 0 && g.cacheHitRate <= 1)
        assert.ok(Math.abs(g.cacheHitRate - now) < 0.05, `${g.cacheHitRate} read from pg_stat_database (now ${now})`)
        assert.match(metrics.cache.source, /^pg_stat_database/)
        assert.ok(g.activeConnections !== null && g.activeConnections >= 1, 'at least the connection asking')
        assert.equal(g.connectionPoolSize, 5)
        // pg_column_size over the rows, recomputed table by table.
        let bytes = 0
        for (const [table, column] of [['Tenant', 'id'], ['User', 'tenantId'], ['Client', 'tenantId'], ['Dossier', 'tenantId']]) {
          const [size] = await db.sql.query<{ b: string | null }>(`SELECT SUM(pg_column_size(t.*)) AS b FROM "${table}" t WHERE "${column}" = 'tenant-demo'`)
          bytes += Number(size!.b ?? 0)
        }
        assert.equal(demo!.storageUsed, bytes)
      } else {
        assert.equal(g.cacheHitRate, null, 'never a made-up number')
        assert.match(metrics.cache.source, /^n\/a : /)
        assert.equal(g.activeConnections, null)
        assert.equal(g.connectionPoolSize, engine === 'sqlite' ? 1 : null)
        if (engine === 'sqlite') {
          // The same method, recomputed in JavaScript from the rows themselves.
          const file = new Database(db.url.slice('file:'.length), { readonly: true })
          let bytes = 0
          for (const [table, column] of [['Tenant', 'id'], ['User', 'tenantId'], ['Client', 'tenantId'], ['Dossier', 'tenantId']]) {
            for (const row of file.prepare(`SELECT * FROM "${table}" WHERE "${column}" = 'tenant-demo'`).raw().all() as unknown[][]) {
              for (const value of row) bytes += typeof value === 'string' ? Buffer.byteLength(value) : typeof value === 'number' || typeof value === 'bigint' ? 8 : value instanceof Buffer ? value.length : 0
            }
          }
          file.close()
          assert.equal(demo!.storageUsed, bytes)
          assert.ok(metrics.cache.measured!.databaseBytes! > 0)
        }
      }
      assert.ok(demo!.storageUsed! > 1_000, `${demo!.storageUsed} bytes for 1 tenant, 3 users, 3 clients, 9 dossiers`)

      const dir = tempDir(t)
      const file = join(dir, 'performance-metrics.json')
      writePerformanceMetrics(file, metrics)
      assert.deepEqual(readPerformanceMetrics(file), JSON.parse(JSON.stringify(metrics)))
      assert.doesNotMatch(readFileSync(file, 'utf8'), /Marker|tenant-demo","OUVERT/, 'bound values are not written')

      const exposition = await renderMetricsExposition(metrics)
      const check = promtoolCheck(exposition)
      assert.equal(check.status, 0, check.output)
      assert.match(exposition, new RegExp(`^ipm_db_slow_operations_total\\{engine="${engine}"\\} ${g.slowQueriesCount}$`, 'm'))
      assert.equal(/^ipm_db_cache_hit_ratio/m.test(exposition), engine === 'postgres', 'no cache gauge where the engine has no counter')
      writeFileSync(join(dir, 'metrics.prom'), exposition)
    })

    test('an empty database: the connection test and the engine counters, the rest explained', { skip: requireJudge('promtool') }, async (t) => {
      const url = await createEmptyDatabaseUrl(t, engine)
      const db = await openDatabase(url, { environment: resolveEnvironment(), create: true })
      t.after(() => db.close())
      const dashboard = new DatabasePerformanceDashboard({ environment: resolveEnvironment(), database: db })
      const metrics = await dashboard.analyzePerformance()
      assert.deepEqual(metrics.tests.map((r) => r.status), ['passed', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped'])
      assert.match(metrics.tests[1]!.reason!, /pas les tables d'IA Poste Manager/)
      assert.match(metrics.notes[0]!, /^tables absentes: Plan, Tenant, User, Client, Dossier/)
      assert.equal(metrics.globalMetrics.totalQueries, 1)
      assert.deepEqual(metrics.tenantMetrics, [])
      assert.equal(promtoolCheck(await renderMetricsExposition(metrics)).status, 0)
    })
  })
}

test("the spec's monitoring snippet: the class imports from the script without running it", async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const { DatabasePerformanceDashboard: FromScript } = await import('../scripts/database-performance-dashboard.ts')
  const dashboard = new FromScript({ environment: resolveEnvironment(), database: db.url, tenant: 'cabinet-demo' })
  t.after(() => dashboard.close())
  const metrics = await dashboard.analyzePerformance()
  assert.equal(typeof metrics.slowQueriesCount, 'number')
  assert.equal(metrics.tests.filter((r) => r.status === 'passed').length, 6)
  const again = await dashboard.analyzePerformance()
  assert.ok(again.uptime >= metrics.uptime, 'one dashboard, measured over successive windows')
  assert.equal(again.window.startedAt, metrics.window.endedAt)
})
