/**
 * Turns a recorded window into numbers: operations classed fast / medium / slow by wall time,
 * SQL aggregated per fingerprint (database time), activity per tenant, identical repeated reads.
 */
import { displaySql, fingerprintId, fingerprintSql, isReadStatement } from '../db/fingerprint.ts'
import type { OperationRecord, SqlRecord } from './instrumentation.ts'
import { roundMs, summarizeDurations, type DurationSummary } from '../statistics.ts'
import { databaseTimeBuckets, operationKind, topByDatabaseTime, type OperationKind, type TimeBuckets } from './operation-kind.ts'

export interface Thresholds {
  /** Faster than this is "fast". */
  fastMs: number
  /** Slower than this is "slow"; in between is "medium". */
  slowMs: number
}

export const DEFAULT_THRESHOLDS: Thresholds = { fastMs: 50, slowMs: 100 }

export interface FingerprintStats extends DurationSummary {
  id: string
  fingerprint: string
  /** Short form for people (no qualifiers, long column lists elided). */
  display: string
  /** The Prisma operations that sent it, as `Model.action`. */
  operations: string[]
  read: boolean
  distinctParams: number
  /** Executions identical (same SQL, same values) to an earlier one in the window. */
  repeatedIdentical: number
}

/** One execution of a fingerprint, kept for EXPLAIN; never written out (its values may be personal data). */
export interface FingerprintSample {
  sql: string
  params: string
}

export interface OperationSummary {
  timestamp: string
  model: string | null
  action: string
  /** The spec's label: READ, WRITE, DELETE or RAW. */
  kind: OperationKind
  tenantId: string | null
  durationMs: number
  dbDurationMs: number
  rows: number
  /** The fingerprint of its slowest statement. */
  fingerprintId: string | null
  sql: string | null
}

export interface OperationStatistics {
  totalQueries: number
  averageDuration: number
  averageDbDuration: number
  p50Duration: number
  p95Duration: number
  p99Duration: number
  maxDuration: number
  fastQueries: number
  mediumQueries: number
  slowQueriesCount: number
  /** Operations slower than the slow threshold, slowest first (at most 20). */
  slowQueries: OperationSummary[]
  /** The five slowest operations, whatever their class. */
  topOperations: OperationSummary[]
  /** The same classes by database time. */
  databaseTimeBuckets: TimeBuckets
  /** The five operations with the most database time. */
  topDatabaseOperations: OperationSummary[]
  totalSqlStatements: number
  failedQueries: number
}

export interface TenantActivity {
  queryCount: number
  averageDuration: number
  averageDbDuration: number
}

/** @example summarizeOperations(window.operations, DEFAULT_THRESHOLDS).slowQueriesCount */
export function summarizeOperations(operations: readonly OperationRecord[], thresholds: Thresholds): OperationStatistics {
  const wall = summarizeDurations(operations.map((o) => o.durationMs))
  const db = summarizeDurations(operations.map((o) => o.dbDurationMs))
  const bySlowest = [...operations].sort((a, b) => b.durationMs - a.durationMs)
  const slow = bySlowest.filter((o) => o.durationMs > thresholds.slowMs)
  const fast = operations.filter((o) => o.durationMs < thresholds.fastMs).length
  return {
    totalQueries: operations.length,
    averageDuration: wall.meanMs,
    averageDbDuration: db.meanMs,
    p50Duration: wall.p50Ms,
    p95Duration: wall.p95Ms,
    p99Duration: wall.p99Ms,
    maxDuration: wall.maxMs,
    fastQueries: fast,
    mediumQueries: operations.length - fast - slow.length,
    slowQueriesCount: slow.length,
    slowQueries: slow.slice(0, 20).map(summarizeOperation),
    topOperations: bySlowest.slice(0, 5).map(summarizeOperation),
    databaseTimeBuckets: databaseTimeBuckets(operations, thresholds),
    topDatabaseOperations: topByDatabaseTime(operations).map(summarizeOperation),
    totalSqlStatements: operations.reduce((n, o) => n + o.sql.length, 0),
    failedQueries: operations.filter((o) => o.error !== undefined).length,
  }
}

export function summarizeOperation(operation: OperationRecord): OperationSummary {
  const slowest = operation.sql.reduce<SqlRecord | undefined>((max, s) => (max === undefined || s.durationMs > max.durationMs ? s : max), undefined)
  const fingerprint = slowest === undefined ? null : fingerprintSql(slowest.sql)
  return {
    timestamp: new Date(operation.startedAt).toISOString(),
    model: operation.model,
    action: operation.action,
    kind: operationKind(operation.action),
    tenantId: operation.tenantId,
    durationMs: roundMs(operation.durationMs),
    dbDurationMs: roundMs(operation.dbDurationMs),
    rows: operation.rows,
    fingerprintId: fingerprint === null ? null : fingerprintId(fingerprint),
    sql: fingerprint === null ? null : displaySql(fingerprint),
  }
}

/**
 * Aggregates every statement of the window per fingerprint, most total database time first.
 * @example aggregateFingerprints(window.operations).stats[0] // { fingerprint: 'SELECT … FROM Dossier …', count: 12, p95Ms: 4.2, … }
 */
export function aggregateFingerprints(
  operations: readonly OperationRecord[],
  unattributedSql: readonly SqlRecord[] = [],
): { stats: FingerprintStats[]; samples: Map<string, FingerprintSample> } {
  interface Group {
    fingerprint: string
    durations: number[]
    operations: Set<string>
    seen: Set<string>
    repeated: number
    slowest: SqlRecord
  }
  const groups = new Map<string, Group>()
  const add = (record: SqlRecord, operation: string | undefined) => {
    const fingerprint = fingerprintSql(record.sql)
    let group = groups.get(fingerprint)
    if (group === undefined) groups.set(fingerprint, (group = { fingerprint, durations: [], operations: new Set(), seen: new Set(), repeated: 0, slowest: record }))
    group.durations.push(record.durationMs)
    if (operation !== undefined) group.operations.add(operation)
    const identity = `${record.sql}\u0000${record.params}`
    if (group.seen.has(identity)) group.repeated++
    else group.seen.add(identity)
    if (record.durationMs > group.slowest.durationMs) group.slowest = record
  }
  for (const operation of [...operations].sort((a, b) => a.startedAt - b.startedAt)) {
    for (const record of operation.sql) add(record, `${operation.model ?? 'raw'}.${operation.action}`)
  }
  for (const record of unattributedSql) add(record, undefined)
  const stats: FingerprintStats[] = []
  const samples = new Map<string, FingerprintSample>()
  for (const group of groups.values()) {
    const id = fingerprintId(group.fingerprint)
    stats.push({
      id,
      fingerprint: group.fingerprint,
      display: displaySql(group.fingerprint),
      operations: [...group.operations].sort(),
      read: isReadStatement(group.fingerprint),
      distinctParams: group.seen.size,
      repeatedIdentical: group.repeated,
      ...summarizeDurations(group.durations),
    })
    samples.set(id, { sql: group.slowest.sql, params: group.slowest.params })
  }
  stats.sort((a, b) => b.totalMs - a.totalMs)
  return { stats, samples }
}

/** Operations, mean wall and database time per attributed tenant. */
export function tenantActivity(operations: readonly OperationRecord[]): Map<string, TenantActivity> {
  const byTenant = new Map<string, OperationRecord[]>()
  for (const operation of operations) {
    if (operation.tenantId === null) continue
    const list = byTenant.get(operation.tenantId) ?? []
    list.push(operation)
    byTenant.set(operation.tenantId, list)
  }
  return new Map(
    [...byTenant].map(([tenantId, list]) => [
      tenantId,
      {
        queryCount: list.length,
        averageDuration: summarizeDurations(list.map((o) => o.durationMs)).meanMs,
        averageDbDuration: summarizeDurations(list.map((o) => o.dbDurationMs)).meanMs,
      },
    ]),
  )
}

/** Reads that repeated an identical earlier read (same SQL, same values) in the window. */
export function repeatedReads(fingerprints: readonly FingerprintStats[]): { reads: number; repeats: number; ratio: number | null } {
  const reads = fingerprints.filter((f) => f.read)
  const total = reads.reduce((n, f) => n + f.count, 0)
  const repeats = reads.reduce((n, f) => n + f.repeatedIdentical, 0)
  return { reads: total, repeats, ratio: total === 0 ? null : Math.round((repeats / total) * 1000) / 1000 }
}
