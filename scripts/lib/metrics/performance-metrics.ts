/**
 * performance-metrics.json: one versioned type, written atomically, validated when read.
 * It keeps the spec's shape (timestamp, uptime, globalMetrics, tenantMetrics, recommendations,
 * rawMetrics) and adds what makes the numbers checkable: the tests, per-fingerprint statistics,
 * the cache and system sources, the thresholds. Bound values of statements are never written.
 */
import { readFileSync } from 'node:fs'
import type { EngineName } from '../db/url.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { writeFileAtomic } from '../fs/atomic.ts'
import { ENGINES } from '../engines/index.ts'
import type { FingerprintStats, OperationStatistics, Thresholds } from './analysis.ts'
import type { Recommendation } from './advisor.ts'
import type { CacheStatistics } from '../engines/metrics-engine.ts'
import type { PerformanceTestResult } from './performance-tests.ts'

export const PERFORMANCE_METRICS_VERSION = 1

export interface GlobalMetrics extends OperationStatistics {
  /** The engine's own cache hit ratio (0..1), null when it does not expose one (see cache.source). */
  cacheHitRate: number | null
  connectionPoolSize: number | null
  activeConnections: number | null
}

export interface TenantMetrics {
  tenantId: string
  /** Null when the tenant no longer exists. */
  tenantName: string | null
  queryCount: number
  averageDuration: number
  averageDbDuration: number
  totalDossiers: number | null
  totalClients: number | null
  /** Bytes, computed as system.storageMethod says. */
  storageUsed: number | null
}

export interface RawOperation {
  id: number
  timestamp: string
  model: string | null
  action: string
  tenantId: string | null
  tenantSource: 'bound' | 'arguments' | null
  durationMs: number
  dbDurationMs: number
  rows: number
  error?: string
  sql: { fingerprintId: string; durationMs: number }[]
}

export interface PerformanceMetrics {
  version: typeof PERFORMANCE_METRICS_VERSION
  timestamp: string
  /** Milliseconds since the dashboard started. */
  uptime: number
  /** Same as globalMetrics.slowQueriesCount, at the top so the spec's monitoring snippet reads it. */
  slowQueriesCount: number
  engine: EngineName
  /** The database URL, password masked. */
  database: string
  window: { startedAt: string; endedAt: string; droppedOperations: number }
  thresholds: Thresholds
  tests: PerformanceTestResult[]
  globalMetrics: GlobalMetrics
  fingerprints: FingerprintStats[]
  tenantMetrics: TenantMetrics[]
  cache: CacheStatistics & { repeatedReads: { reads: number; repeats: number; ratio: number | null } }
  system: {
    uptimeMs: number
    activeConnections: number | null
    openConnections: number | null
    poolSize: number | null
    serverUptimeMs: number | null
    note?: string
    storageMethod: string
  }
  recommendations: Recommendation[]
  /** What could not be measured, and why (no tables, unknown tenant…). */
  notes: string[]
  /** Every operation of the window (the most recent 5 000 at most), without bound values. */
  rawMetrics: RawOperation[]
}

/**
 * @example writePerformanceMetrics('performance-metrics.json', await dashboard.analyzePerformance())
 */
export function writePerformanceMetrics(path: string, metrics: PerformanceMetrics): void {
  validatePerformanceMetrics(metrics)
  writeFileAtomic(path, `${JSON.stringify(metrics, null, 2)}\n`)
}

/** Reads and validates a metrics file; a ToolkitError names what is wrong. */
export function readPerformanceMetrics(path: string): PerformanceMetrics {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new ToolkitError(`lecture de ${path} impossible : ${describeError(error)}`, { cause: error })
  }
  try {
    return validatePerformanceMetrics(value)
  } catch (error) {
    throw new ToolkitError(`${path} n’est pas un fichier performance-metrics valide : ${describeError(error)}`, {
      hint: 'Réécrivez-le avec `npm run dashboard -- --output <chemin>`.',
      cause: error,
    })
  }
}

/** Checks one value at `path` (`$.window.startedAt`); throws an Error naming the path on a mismatch. */
type Check = (value: unknown, path: string) => void

/** The shape of a metrics file, field by field; arrays of records are checked element by element. */
const METRICS_SHAPE: Check = record({
  timestamp: isoDate,
  uptime: number,
  slowQueriesCount: number,
  engine: oneOf(ENGINES.map((engine) => engine.name)),
  database: string,
  window: record({ startedAt: isoDate, endedAt: isoDate }),
  thresholds: record({ fastMs: number, slowMs: number }),
  tests: each(record({ number, name: string, status: oneOf(['passed', 'failed', 'skipped']), durationMs: number })),
  globalMetrics: record({
    ...all(['totalQueries', 'averageDuration', 'averageDbDuration', 'p50Duration', 'p95Duration', 'p99Duration', 'maxDuration', 'fastQueries', 'mediumQueries', 'slowQueriesCount', 'totalSqlStatements', 'failedQueries'], number),
    ...all(['cacheHitRate', 'connectionPoolSize', 'activeConnections'], nullable(number)),
    slowQueries: array,
    topOperations: array,
  }),
  fingerprints: each(record({ id: string, fingerprint: string, ...all(['count', 'meanMs', 'p50Ms', 'p95Ms', 'p99Ms', 'maxMs', 'totalMs'], number) })),
  tenantMetrics: each(record({
    tenantId: string,
    tenantName: nullable(string),
    ...all(['queryCount', 'averageDuration', 'averageDbDuration'], number),
    ...all(['totalDossiers', 'totalClients', 'storageUsed'], nullable(number)),
  })),
  cache: record({ hitRate: nullable(number), source: string }),
  system: record({ uptimeMs: number, storageMethod: string }),
  recommendations: each(record({ kind: oneOf(['index', 'slow-query', 'n-plus-one', 'cache']), message: string })),
  notes: each(string),
  rawMetrics: each(record({ action: string, durationMs: number, sql: array })),
})

/** Checks the shape of a metrics object and returns it typed; throws on the first mismatch. */
export function validatePerformanceMetrics(value: unknown): PerformanceMetrics {
  const root = object(value, '$')
  if (root.version !== PERFORMANCE_METRICS_VERSION) throw new Error(`$.version : attendu ${PERFORMANCE_METRICS_VERSION}, reçu ${JSON.stringify(root.version)}`)
  METRICS_SHAPE(root, '$')
  if ((root.globalMetrics as Record<string, unknown>).slowQueriesCount !== root.slowQueriesCount) throw new Error('$.slowQueriesCount diffère de $.globalMetrics.slowQueriesCount')
  return value as PerformanceMetrics
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path} : objet attendu`)
  return value as Record<string, unknown>
}
function record(fields: Record<string, Check>): Check {
  return (value, path) => {
    const checked = object(value, path)
    for (const [key, check] of Object.entries(fields)) check(checked[key], `${path}.${key}`)
  }
}
function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${path} : tableau attendu`)
  return value
}
function each(check: Check): Check {
  return (value, path) => array(value, path).forEach((element, i) => check(element, `${path}[${i}]`))
}
function all(keys: readonly string[], check: Check): Record<string, Check> {
  return Object.fromEntries(keys.map((key) => [key, check]))
}
function number(value: unknown, path: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${path} : nombre attendu, reçu ${JSON.stringify(value)}`)
}
function nullable(check: Check): Check {
  return (value, path) => { if (value !== null) check(value, path) }
}
function string(value: unknown, path: string): void {
  if (typeof value !== 'string') throw new Error(`${path} : chaîne attendue`)
}
function isoDate(value: unknown, path: string): void {
  string(value, path)
  if (Number.isNaN(Date.parse(value as string))) throw new Error(`${path} : date ISO attendue`)
}
function oneOf(allowed: readonly string[]): Check {
  return (value, path) => {
    if (!allowed.includes(value as string)) throw new Error(`${path} : valeur attendue parmi ${allowed.join(', ')}, reçu ${JSON.stringify(value)}`)
  }
}
