/**
 * Snapshots for the web dashboard tests: a `PerformanceMetrics` shaped as the dashboard writes it
 * (checked by validatePerformanceMetrics), with operations whose SQL durations feed the histogram,
 * a PostgreSQL-style plan quoting a literal (which must never reach the page), and a backup status.
 */
import { operationKind } from '../../scripts/lib/metrics/operation-kind.ts'
import { fingerprintId } from '../../scripts/lib/db/fingerprint.ts'
import { validatePerformanceMetrics, type PerformanceMetrics, type RawOperation } from '../../scripts/lib/metrics/performance-metrics.ts'
import { summarizeDurations } from '../../scripts/lib/statistics.ts'
import type { DashboardSnapshot } from '../../scripts/lib/web/snapshot.ts'

export const LITERAL_IN_PLAN = 'tenant-secret-literal'

export interface QueryShape {
  fingerprint: string
  display: string
  durationsMs: number[]
  model: string
  action: string
}

export const BASE_QUERIES: QueryShape[] = [
  { fingerprint: 'SELECT "id", "name" FROM "Plan" WHERE ?=? LIMIT ?', display: 'SELECT id, name FROM Plan LIMIT ?', durationsMs: [0.4, 0.6, 0.8, 1.2], model: 'Plan', action: 'findMany' },
  { fingerprint: 'SELECT COUNT(*) FROM "Dossier" WHERE "tenantId" = ? AND "statut" = ?', display: 'SELECT COUNT(*) FROM Dossier WHERE tenantId = ? AND statut = ?', durationsMs: [3, 7, 12, 140, 260], model: 'Dossier', action: 'count' },
  { fingerprint: 'SELECT "id" FROM "Client" WHERE "tenantId" = ? ORDER BY "lastName" LIMIT ?', display: 'SELECT id FROM Client WHERE tenantId = ? ORDER BY lastName LIMIT ?', durationsMs: [2, 2.5], model: 'Client', action: 'findMany' },
]

/** A snapshot whose operations are numbered from `firstId` (the exporter counts each id once). */
export function sampleSnapshot(options: { queries?: QueryShape[]; collectedAt?: string; firstId?: number; backup?: DashboardSnapshot['backup'] } = {}): DashboardSnapshot {
  const queries = options.queries ?? BASE_QUERIES
  const collectedAt = options.collectedAt ?? '2025-03-01T10:00:00.000Z'
  let id = options.firstId ?? 1
  const raw: RawOperation[] = []
  for (const query of queries) {
    for (const durationMs of query.durationsMs) {
      raw.push({
        id: id++,
        timestamp: collectedAt,
        model: query.model,
        action: query.action,
        tenantId: 'tenant-demo',
        tenantSource: 'bound',
        durationMs: durationMs + 0.5,
        dbDurationMs: durationMs,
        rows: 1,
        sql: [{ fingerprintId: fingerprintId(query.fingerprint), durationMs }],
      })
    }
  }
  const all = summarizeDurations(raw.map((r) => r.durationMs))
  const slow = raw.filter((r) => r.durationMs > 100)
  const slowCount = queries[1]!.durationsMs.filter((d) => d + 0.5 > 100).length
  const slowFingerprint = queries[1]!
  const metrics: PerformanceMetrics = {
    version: 1,
    timestamp: collectedAt,
    uptime: 60_000,
    slowQueriesCount: slow.length,
    engine: 'postgres',
    database: 'postgresql://postgres:****@127.0.0.1:5432/ipm',
    window: { startedAt: '2025-03-01T09:59:00.000Z', endedAt: collectedAt, droppedOperations: 0 },
    thresholds: { fastMs: 50, slowMs: 100 },
    tests: [{ number: 1, name: 'Count Plans', status: 'passed', count: 6, unit: 'plans', durationMs: 1.5 }],
    globalMetrics: {
      totalQueries: raw.length,
      averageDuration: all.meanMs,
      averageDbDuration: all.meanMs - 0.5,
      p50Duration: all.p50Ms,
      p95Duration: all.p95Ms,
      p99Duration: all.p99Ms,
      maxDuration: all.maxMs,
      fastQueries: raw.filter((r) => r.durationMs < 50).length,
      mediumQueries: raw.filter((r) => r.durationMs >= 50 && r.durationMs <= 100).length,
      slowQueriesCount: slow.length,
      slowQueries: slow.map((r) => ({ timestamp: r.timestamp, model: r.model, action: r.action, kind: operationKind(r.action), tenantId: r.tenantId, durationMs: r.durationMs, dbDurationMs: r.dbDurationMs, rows: r.rows, fingerprintId: r.sql[0]!.fingerprintId, sql: slowFingerprint.display })),
      topOperations: [],
      databaseTimeBuckets: { fast: raw.filter((r) => r.dbDurationMs < 50).length, medium: raw.filter((r) => r.dbDurationMs >= 50 && r.dbDurationMs <= 100).length, slow: raw.filter((r) => r.dbDurationMs > 100).length },
      topDatabaseOperations: [],
      totalSqlStatements: raw.length,
      failedQueries: 0,
      cacheHitRate: 0.9731,
      connectionPoolSize: 10,
      activeConnections: 2,
    },
    fingerprints: queries.map((q) => ({
      id: fingerprintId(q.fingerprint),
      fingerprint: q.fingerprint,
      display: q.display,
      operations: [`${q.model}.${q.action}`],
      read: true,
      distinctParams: 1,
      repeatedIdentical: 0,
      ...summarizeDurations(q.durationsMs),
    })),
    tenantMetrics: [{ tenantId: 'tenant-demo', tenantName: 'Cabinet Demo', queryCount: raw.length, averageDuration: all.meanMs, averageDbDuration: all.meanMs - 0.5, totalDossiers: 120, totalClients: 40, storageUsed: 65_536 }],
    cache: { hitRate: 0.9731, source: 'pg_stat_database', repeatedReads: { reads: raw.length, repeats: 0, ratio: 0 } },
    system: { uptimeMs: 60_000, activeConnections: 2, openConnections: 5, poolSize: 10, serverUptimeMs: 3_600_000, storageMethod: 'pg_column_size' },
    recommendations: [
      {
        kind: 'slow-query',
        severity: 'warning',
        message: `Requête lente « ${slowFingerprint.display} »: p95 260 ms sur ${slowCount} exécutions. Plan: Seq Scan on Dossier (Filter: ("tenantId" = '${LITERAL_IN_PLAN}'::text))`,
        fingerprintIds: [fingerprintId(slowFingerprint.fingerprint)],
        evidence: { plan: [`Seq Scan on Dossier (Filter: (("tenantId" = '${LITERAL_IN_PLAN}'::text) AND (priorite > 3)))`], p95Ms: 260, executions: slowFingerprint.durationsMs.length, reason: 'aucun index utile' },
      },
    ],
    notes: [],
    rawMetrics: raw,
  }
  validatePerformanceMetrics(metrics)
  return {
    collectedAt,
    metrics,
    backup:
      options.backup === undefined
        ? {
            backupDir: '/srv/backups',
            checkedAt: collectedAt,
            newest: { id: 'backup-2025-03-01T03-00-00', timestamp: '2025-03-01T03:00:00.000Z', ageSeconds: 25_200, sizeBytes: 1_048_576, verified: true, offsite: { target: 's3://ipm-backups/prod' } },
            newestVerified: { id: 'backup-2025-03-01T03-00-00', timestamp: '2025-03-01T03:00:00.000Z', ageSeconds: 25_200 },
            lastRun: { operation: 'create', at: '2025-03-01T03:01:00.000Z', result: 'success' },
            lastDrill: { at: '2025-02-28T04:00:00.000Z', result: 'success' },
            problems: [],
          }
        : options.backup,
  }
}
