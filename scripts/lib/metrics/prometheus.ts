/**
 * The metrics in Prometheus' text exposition format, for a node_exporter textfile collector or any
 * scraper: gauges describing the last analysis window (`promtool check metrics` accepts the file).
 * Fingerprints are labelled by their short id; `ipm_db_sql_info` maps each id to its SQL.
 */
import { Gauge, Registry } from 'prom-client'
import { writeFileAtomic } from '../fs/atomic.ts'
import type { PerformanceMetrics } from './performance-metrics.ts'

const SECONDS = 1 / 1000

/** @example const text = await renderPrometheus(metrics) // "# HELP ipm_dashboard_uptime_seconds …" */
export async function renderPrometheus(metrics: PerformanceMetrics): Promise<string> {
  const registry = new Registry()
  const labels = { engine: metrics.engine }
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L | 'engine'>({ name, help, labelNames: ['engine', ...labelNames], registers: [registry] })

  const g = metrics.globalMetrics
  gauge('ipm_dashboard_uptime_seconds', 'Time since the dashboard started.').set(labels, metrics.uptime * SECONDS)
  gauge('ipm_dashboard_window_seconds', 'Length of the analysed window.').set(labels, (Date.parse(metrics.window.endedAt) - Date.parse(metrics.window.startedAt)) * SECONDS)
  const operations = gauge('ipm_db_operations', 'Prisma operations in the window, by speed class (see the threshold gauges).', ['class'])
  operations.set({ ...labels, class: 'fast' }, g.fastQueries)
  operations.set({ ...labels, class: 'medium' }, g.mediumQueries)
  operations.set({ ...labels, class: 'slow' }, g.slowQueriesCount)
  operations.set({ ...labels, class: 'failed' }, g.failedQueries)
  const thresholds = gauge('ipm_db_operation_threshold_seconds', 'Bounds of the speed classes: fast below fast, slow above slow.', ['bound'])
  thresholds.set({ ...labels, bound: 'fast' }, metrics.thresholds.fastMs * SECONDS)
  thresholds.set({ ...labels, bound: 'slow' }, metrics.thresholds.slowMs * SECONDS)
  const operationDuration = gauge('ipm_db_operation_duration_seconds', 'Wall time of the Prisma operations in the window.', ['stat'])
  for (const [stat, value] of [['mean', g.averageDuration], ['p50', g.p50Duration], ['p95', g.p95Duration], ['p99', g.p99Duration], ['max', g.maxDuration]] as const) {
    operationDuration.set({ ...labels, stat }, value * SECONDS)
  }
  gauge('ipm_db_operation_db_time_mean_seconds', 'Mean database time (SQL) per Prisma operation in the window.').set(labels, g.averageDbDuration * SECONDS)

  const executions = gauge('ipm_db_sql_executions', 'Executions of each SQL fingerprint in the window.', ['fingerprint'])
  const sqlDuration = gauge('ipm_db_sql_duration_seconds', 'Database time of each SQL fingerprint in the window.', ['fingerprint', 'stat'])
  const info = gauge('ipm_db_sql_info', 'The SQL of each fingerprint id (value always 1).', ['fingerprint', 'sql'])
  for (const f of metrics.fingerprints) {
    executions.set({ ...labels, fingerprint: f.id }, f.count)
    for (const [stat, value] of [['mean', f.meanMs], ['p50', f.p50Ms], ['p95', f.p95Ms], ['p99', f.p99Ms], ['max', f.maxMs], ['sum', f.totalMs]] as const) {
      sqlDuration.set({ ...labels, fingerprint: f.id, stat }, value * SECONDS)
    }
    info.set({ ...labels, fingerprint: f.id, sql: f.fingerprint.slice(0, 500) }, 1)
  }

  if (metrics.cache.hitRate !== null) gauge('ipm_db_cache_hit_ratio', "Share of block reads served from the engine's cache (since its statistics were reset).").set(labels, metrics.cache.hitRate)
  if (metrics.cache.repeatedReads.ratio !== null) {
    gauge('ipm_db_repeated_read_ratio', 'Share of reads in the window identical to an earlier read (same SQL, same values).').set(labels, metrics.cache.repeatedReads.ratio)
  }
  if (metrics.system.activeConnections !== null) gauge('ipm_db_connections_active', 'Connections running a statement, from the server.').set(labels, metrics.system.activeConnections)
  if (metrics.system.openConnections !== null) gauge('ipm_db_connections_open', 'Connections open to the database, from the server.').set(labels, metrics.system.openConnections)
  if (metrics.system.poolSize !== null) gauge('ipm_db_connection_pool_size', "Connections Prisma's adapter may hold in this process.").set(labels, metrics.system.poolSize)

  const tenantOperations = gauge('ipm_tenant_operations', 'Prisma operations attributed to each tenant in the window.', ['tenant'])
  const tenantStorage = gauge('ipm_tenant_storage_bytes', "Bytes stored in each tenant's rows (see the JSON file's system.storageMethod).", ['tenant'])
  const tenantRows = gauge('ipm_tenant_rows', 'Rows of each tenant, by table.', ['tenant', 'table'])
  for (const t of metrics.tenantMetrics) {
    tenantOperations.set({ ...labels, tenant: t.tenantId }, t.queryCount)
    if (t.storageUsed !== null) tenantStorage.set({ ...labels, tenant: t.tenantId }, t.storageUsed)
    if (t.totalDossiers !== null) tenantRows.set({ ...labels, tenant: t.tenantId, table: 'Dossier' }, t.totalDossiers)
    if (t.totalClients !== null) tenantRows.set({ ...labels, tenant: t.tenantId, table: 'Client' }, t.totalClients)
  }

  const recommendations = gauge('ipm_dashboard_recommendations', 'Recommendations of the last analysis, by kind.', ['kind'])
  for (const kind of ['index', 'slow-query', 'n-plus-one', 'cache'] as const) {
    recommendations.set({ ...labels, kind }, metrics.recommendations.filter((r) => r.kind === kind).length)
  }
  const tests = gauge('ipm_dashboard_test_duration_seconds', "Wall time of each of the spec's six tests (passed ones only).", ['test'])
  for (const test of metrics.tests) if (test.status === 'passed') tests.set({ ...labels, test: String(test.number) }, test.durationMs * SECONDS)

  return registry.metrics()
}

/** Writes the exposition file atomically (a scraper never reads half of it). */
export async function writePrometheusMetrics(path: string, metrics: PerformanceMetrics): Promise<void> {
  writeFileAtomic(path, await renderPrometheus(metrics))
}
