/**
 * The spec's operation kinds ("156ms - Dossier (READ)"): what a Prisma action does to the data,
 * shown beside the action itself, and the buckets and top 5 by database time, beside those by
 * operation (wall) time: under concurrency an operation waits for a connection, so the two differ.
 */
import type { OperationRecord } from './instrumentation.ts'

export type OperationKind = 'READ' | 'WRITE' | 'DELETE' | 'RAW'

const READS = new Set(['findUnique', 'findUniqueOrThrow', 'findFirst', 'findFirstOrThrow', 'findMany', 'count', 'aggregate', 'groupBy', 'findRaw', 'aggregateRaw'])
const DELETES = new Set(['delete', 'deleteMany'])

/** @example operationKind('findMany') // 'READ'; operationKind('upsert') // 'WRITE'; operationKind('$queryRaw') // 'RAW' */
export function operationKind(action: string): OperationKind {
  if (READS.has(action)) return 'READ'
  if (DELETES.has(action)) return 'DELETE'
  if (action.startsWith('$') || action.endsWith('Raw')) return 'RAW'
  return 'WRITE'
}

export interface TimeBuckets {
  fast: number
  medium: number
  slow: number
}

/** Operations classed by their database time with the same thresholds as wall time. */
export function databaseTimeBuckets(operations: readonly OperationRecord[], thresholds: { fastMs: number; slowMs: number }): TimeBuckets {
  const fast = operations.filter((o) => o.dbDurationMs < thresholds.fastMs).length
  const slow = operations.filter((o) => o.dbDurationMs > thresholds.slowMs).length
  return { fast, medium: operations.length - fast - slow, slow }
}

/** The `count` operations with the most database time, most first. */
export function topByDatabaseTime(operations: readonly OperationRecord[], count = 5): OperationRecord[] {
  return [...operations].sort((a, b) => b.dbDurationMs - a.dbDurationMs).slice(0, count)
}
