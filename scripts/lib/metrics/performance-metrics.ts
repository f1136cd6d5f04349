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

/** Checks the shape of a metrics object and returns it typed; throws on the first mismatch. */
export function validatePerformanceMetrics(value: unknown): PerformanceMetrics {
  const root = object(value, '$')
  if (root.version !== PERFORMANCE_METRICS_VERSION) throw new Error(`$.version : attendu ${PERFORMANCE_METRICS_VERSION}, reçu ${JSON.stringify(root.version)}`)
  isoDate(root.timestamp, '$.timestamp')
  number(root.uptime, '$.uptime')
  number(root.slowQueriesCount, '$.slowQueriesCount')
  if (!['sqlite', 'postgres', 'd1'].includes(root.engine as string)) throw new Error(`$.engine : moteur inconnu ${JSON.stringify(root.engine)}`)
  string(root.database, '$.database')
  const window = object(root.window, '$.window')
  isoDate(window.startedAt, '$.window.startedAt')
  isoDate(window.endedAt, '$.window.endedAt')
  const thresholds = object(root.thresholds, '$.thresholds')
  number(thresholds.fastMs, '$.thresholds.fastMs')
  number(thresholds.slowMs, '$.thresholds.slowMs')
  array(root.tests, '$.tests').forEach((t, i) => {
    const test = object(t, `$.tests[${i}]`)
    number(test.number, `$.tests[${i}].number`)
    string(test.name, `$.tests[${i}].name`)
    oneOf(test.status, ['passed', 'failed', 'skipped'], `$.tests[${i}].status`)
    number(test.durationMs, `$.tests[${i}].durationMs`)
  })
  const global = object(root.globalMetrics, '$.globalMetrics')
  for (const key of ['totalQueries', 'averageDuration', 'averageDbDuration', 'p50Duration', 'p95Duration', 'p99Duration', 'maxDuration', 'fastQueries', 'mediumQueries', 'slowQueriesCount', 'totalSqlStatements', 'failedQueries']) {
    number(global[key], `$.globalMetrics.${key}`)
  }
  for (const key of ['cacheHitRate', 'connectionPoolSize', 'activeConnections']) nullableNumber(global[key], `$.globalMetrics.${key}`)
  array(global.slowQueries, '$.globalMetrics.slowQueries')
  array(global.topOperations, '$.globalMetrics.topOperations')
  if (global.slowQueriesCount !== root.slowQueriesCount) throw new Error('$.slowQueriesCount diffère de $.globalMetrics.slowQueriesCount')
  array(root.fingerprints, '$.fingerprints').forEach((f, i) => {
    const fingerprint = object(f, `$.fingerprints[${i}]`)
    string(fingerprint.id, `$.fingerprints[${i}].id`)
    string(fingerprint.fingerprint, `$.fingerprints[${i}].fingerprint`)
    for (const key of ['count', 'meanMs', 'p50Ms', 'p95Ms', 'p99Ms', 'maxMs', 'totalMs']) number(fingerprint[key], `$.fingerprints[${i}].${key}`)
  })
  array(root.tenantMetrics, '$.tenantMetrics').forEach((t, i) => {
    const tenant = object(t, `$.tenantMetrics[${i}]`)
    string(tenant.tenantId, `$.tenantMetrics[${i}].tenantId`)
    if (tenant.tenantName !== null) string(tenant.tenantName, `$.tenantMetrics[${i}].tenantName`)
    for (const key of ['queryCount', 'averageDuration', 'averageDbDuration']) number(tenant[key], `$.tenantMetrics[${i}].${key}`)
    for (const key of ['totalDossiers', 'totalClients', 'storageUsed']) nullableNumber(tenant[key], `$.tenantMetrics[${i}].${key}`)
  })
  const cache = object(root.cache, '$.cache')
  nullableNumber(cache.hitRate, '$.cache.hitRate')
  string(cache.source, '$.cache.source')
  const system = object(root.system, '$.system')
  number(system.uptimeMs, '$.system.uptimeMs')
  string(system.storageMethod, '$.system.storageMethod')
  array(root.recommendations, '$.recommendations').forEach((r, i) => {
    const recommendation = object(r, `$.recommendations[${i}]`)
    oneOf(recommendation.kind, ['index', 'slow-query', 'n-plus-one', 'cache'], `$.recommendations[${i}].kind`)
    string(recommendation.message, `$.recommendations[${i}].message`)
  })
  array(root.notes, '$.notes').forEach((n, i) => string(n, `$.notes[${i}]`))
  array(root.rawMetrics, '$.rawMetrics').forEach((r, i) => {
    const raw = object(r, `$.rawMetrics[${i}]`)
    string(raw.action, `$.rawMetrics[${i}].action`)
    number(raw.durationMs, `$.rawMetrics[${i}].durationMs`)
    array(raw.sql, `$.rawMetrics[${i}].sql`)
  })
  return value as PerformanceMetrics
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path} : objet attendu`)
  return value as Record<string, unknown>
}
function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${path} : tableau attendu`)
  return value
}
function number(value: unknown, path: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${path} : nombre attendu, reçu ${JSON.stringify(value)}`)
}
function nullableNumber(value: unknown, path: string): void {
  if (value !== null) number(value, path)
}
function string(value: unknown, path: string): void {
  if (typeof value !== 'string') throw new Error(`${path} : chaîne attendue`)
}
function isoDate(value: unknown, path: string): void {
  string(value, path)
  if (Number.isNaN(Date.parse(value as string))) throw new Error(`${path} : date ISO attendue`)
}
function oneOf(value: unknown, allowed: readonly string[], path: string): void {
  if (!allowed.includes(value as string)) throw new Error(`${path} : valeur attendue parmi ${allowed.join(', ')}, reçu ${JSON.stringify(value)}`)
}
