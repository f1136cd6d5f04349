/**
 * Recommendations derived from evidence only:
 * - an index, when the plan of a slow fingerprint reads a whole table that it filters or joins on
 *   columns no existing index leads with (and, where the engine can tell, the planner would use it);
 * - a slow query with its plan, when no index can help;
 * - an N+1 pattern, when one read fingerprint runs many times within a short window, each time for
 *   a separate operation;
 * - a cache, only when identical reads (same SQL, same values) were observed, with their ratio.
 */
import type { SqlConnection } from '../db/connection.ts'
import { describeError } from '../errors.ts'
import { createIndexStatement, filteredColumns } from '../engines/_index-sql.ts'
import { fingerprintId, fingerprintSql } from '../db/fingerprint.ts'
import type { FingerprintSample, FingerprintStats, Thresholds } from './analysis.ts'
import type { IndexTrial, MetricsEngine } from '../engines/metrics-engine.ts'
import type { OperationRecord } from './instrumentation.ts'
import { indexName, memoize } from './index-advice.ts'

interface BaseRecommendation {
  severity: 'warning' | 'info'
  /** One human sentence (French, as the dashboard). */
  message: string
  fingerprintIds: string[]
}

export type Recommendation =
  | (BaseRecommendation & {
      kind: 'index'
      statement: string
      table: string
      columns: string[]
      evidence: { plan: string[]; p95Ms: number; executions: number; verification: IndexTrial['verdict']; verificationDetail: string }
    })
  | (BaseRecommendation & { kind: 'slow-query'; evidence: { plan: string[]; p95Ms: number; executions: number; reason: string } })
  | (BaseRecommendation & {
      kind: 'n-plus-one'
      evidence: { executions: number; windowMs: number; operations: number; distinctParams: number; operation: string }
    })
  | (BaseRecommendation & { kind: 'cache'; evidence: { reads: number; repeats: number; repeatRatio: number; dbTimeMs: number } })

export interface AdvisorOptions {
  /** N+1: at least this many executions of one read fingerprint by separate operations… */
  nPlusOneMinRepeats: number
  /** …within this many milliseconds. */
  nPlusOneWindowMs: number
  /** Caching: at least this many identical repeated reads of one fingerprint… */
  cacheMinRepeats: number
  /** …making at least this share of its reads. */
  cacheMinRatio: number
}

export const DEFAULT_ADVISOR_OPTIONS: AdvisorOptions = { nPlusOneMinRepeats: 10, nPlusOneWindowMs: 1_000, cacheMinRepeats: 5, cacheMinRatio: 0.5 }

export interface AdviseInput {
  operations: readonly OperationRecord[]
  fingerprints: readonly FingerprintStats[]
  samples: ReadonlyMap<string, FingerprintSample>
  engine: MetricsEngine
  sql: SqlConnection
  thresholds: Thresholds
  options?: Partial<AdvisorOptions>
}

/**
 * @example const recommendations = await advise({ operations, fingerprints, samples, engine, sql: db.sql, thresholds })
 */
export async function advise(input: AdviseInput): Promise<Recommendation[]> {
  const options = { ...DEFAULT_ADVISOR_OPTIONS, ...input.options }
  return [...(await adviseIndexes(input)), ...adviseNPlusOne(input, options), ...adviseCaching(input, options)]
}

const ms = (value: number) => (value >= 100 ? String(Math.round(value)) : value.toFixed(1))

async function adviseIndexes({ fingerprints, samples, engine, sql, thresholds }: AdviseInput): Promise<Recommendation[]> {
  const recommendations: Recommendation[] = []
  const byStatement = new Map<string, Extract<Recommendation, { kind: 'index' }>>()
  const columnsOf = memoize((table: string) => engine.listColumns(sql, table))
  const indexesOf = memoize((table: string) => engine.listIndexes(sql, table))
  for (const fingerprint of fingerprints) {
    if (fingerprint.p95Ms <= thresholds.slowMs || !/^\s*(?:SELECT|WITH|UPDATE|DELETE)\b/i.test(fingerprint.fingerprint)) continue
    const sample = samples.get(fingerprint.id)
    if (sample === undefined) continue
    const params = parseParams(sample.params)
    let plan: Awaited<ReturnType<MetricsEngine['explain']>>
    try {
      plan = await engine.explain(sql, sample.sql, params)
    } catch (error) {
      recommendations.push(slowQuery(fingerprint, [], `EXPLAIN a échoué: ${describeError(error)}`))
      continue
    }
    const reasons: string[] = []
    let proposed = false
    for (const table of plan.fullScans) {
      const filters = filteredColumns(sample.sql, table, await columnsOf(table))
      if (filters.length === 0) {
        reasons.push(`${table} est lue entièrement, sans colonne filtrée à indexer`)
        continue
      }
      const columns = [...filters.filter((f) => f.kind === 'equality'), ...filters.filter((f) => f.kind === 'range').slice(0, 1)].map((f) => f.column).slice(0, 3)
      const indexes = await indexesOf(table)
      const serving = indexes.find((index) => index.columns[0] === columns[0] || filters.some((f) => f.kind === 'equality' && f.column === index.columns[0]))
      if (serving !== undefined) {
        reasons.push(`l'index ${serving.name}(${serving.columns.join(', ')}) sert déjà ce filtre sur ${table}; le planificateur a préféré lire la table`)
        continue
      }
      const index = { name: indexName(table, columns, indexes), table, columns }
      const trial = await engine.tryIndex(sql, sample.sql, params, index)
      if (trial.verdict === 'not-used') {
        reasons.push(`un index ${table}(${columns.join(', ')}) ne serait pas utilisé par le planificateur`)
        continue
      }
      proposed = true
      const statement = createIndexStatement(index)
      const existing = byStatement.get(statement)
      if (existing !== undefined) {
        existing.fingerprintIds.push(fingerprint.id)
        continue
      }
      const scan = plan.lines.find((line) => new RegExp(`\\b${table}\\b`).test(line))?.trim() ?? `SCAN ${table}`
      const verification = trial.verdict === 'used' ? `vérifié: ${trial.detail}` : `non vérifié: ${trial.detail}`
      const recommendation: Extract<Recommendation, { kind: 'index' }> = {
        kind: 'index',
        severity: 'warning',
        message:
          `Index manquant sur ${table}(${columns.join(', ')}): le plan lit toute la table (${scan}) pour « ${fingerprint.display} » ` +
          `(p95 ${ms(fingerprint.p95Ms)} ms, ${fingerprint.count} exécution${fingerprint.count > 1 ? 's' : ''}). Proposé: ${statement} (${verification})`,
        fingerprintIds: [fingerprint.id],
        statement,
        table,
        columns,
        evidence: { plan: plan.lines, p95Ms: fingerprint.p95Ms, executions: fingerprint.count, verification: trial.verdict, verificationDetail: trial.detail },
      }
      byStatement.set(statement, recommendation)
      recommendations.push(recommendation)
    }
    if (!proposed) {
      const reason = reasons.length > 0 ? reasons.join('; ') : 'le plan ne lit aucune table en entier'
      recommendations.push(slowQuery(fingerprint, plan.lines, reason))
    }
  }
  return recommendations
}

function slowQuery(fingerprint: FingerprintStats, plan: string[], reason: string): Recommendation {
  return {
    kind: 'slow-query',
    severity: 'warning',
    message: `Requête lente « ${fingerprint.display} »: p95 ${ms(fingerprint.p95Ms)} ms sur ${fingerprint.count} exécution${fingerprint.count > 1 ? 's' : ''}; pas d'index à proposer (${reason}). Plan: ${plan.map((l) => l.trim()).join(' / ') || 'n/a'}`,
    fingerprintIds: [fingerprint.id],
    evidence: { plan, p95Ms: fingerprint.p95Ms, executions: fingerprint.count, reason },
  }
}

function adviseNPlusOne({ operations, fingerprints }: AdviseInput, options: AdvisorOptions): Recommendation[] {
  const executions = new Map<string, { at: number; operation: OperationRecord; params: string }[]>()
  for (const operation of operations) {
    for (const record of operation.sql) {
      const id = fingerprintId(fingerprintSql(record.sql))
      const list = executions.get(id) ?? []
      list.push({ at: record.startedAt, operation, params: record.params })
      executions.set(id, list)
    }
  }
  const recommendations: Recommendation[] = []
  for (const fingerprint of fingerprints) {
    const list = executions.get(fingerprint.id)
    if (!fingerprint.read || list === undefined || list.length < options.nPlusOneMinRepeats) continue
    list.sort((a, b) => a.at - b.at)
    let best = { start: 0, end: 0 }
    for (let start = 0, end = 0; end < list.length; end++) {
      while (list[end]!.at - list[start]!.at > options.nPlusOneWindowMs) start++
      if (end - start > best.end - best.start) best = { start, end }
    }
    const burst = list.slice(best.start, best.end + 1)
    const separateOperations = new Set(burst.map((e) => e.operation.id)).size
    const distinctParams = new Set(burst.map((e) => e.params)).size
    if (separateOperations < options.nPlusOneMinRepeats || distinctParams < 2) continue
    const first = burst[0]!.operation
    const operation = `${first.model ?? 'raw'}.${first.action}`
    const windowMs = Math.round((burst[burst.length - 1]!.at - burst[0]!.at) * 10) / 10
    recommendations.push({
      kind: 'n-plus-one',
      severity: 'warning',
      message:
        `N+1 probable: « ${fingerprint.display} » exécutée ${burst.length} fois en ${ms(windowMs)} ms par ${separateOperations} opérations ${operation} distinctes ` +
        `(${distinctParams} jeux de valeurs); charger ces lignes en une requête (include, ou where: { id: { in: [...] } }).`,
      fingerprintIds: [fingerprint.id],
      evidence: { executions: burst.length, windowMs, operations: separateOperations, distinctParams, operation },
    })
  }
  return recommendations
}

function adviseCaching({ fingerprints }: AdviseInput, options: AdvisorOptions): Recommendation[] {
  const recommendations: Recommendation[] = []
  for (const fingerprint of fingerprints) {
    if (!fingerprint.read || fingerprint.repeatedIdentical < options.cacheMinRepeats) continue
    const repeatRatio = Math.round((fingerprint.repeatedIdentical / fingerprint.count) * 1000) / 1000
    if (repeatRatio < options.cacheMinRatio) continue
    const dbTimeMs = Math.round(fingerprint.meanMs * fingerprint.repeatedIdentical * 1000) / 1000
    recommendations.push({
      kind: 'cache',
      severity: 'info',
      message:
        `Cache: ${fingerprint.repeatedIdentical} des ${fingerprint.count} lectures (${Math.round(repeatRatio * 100)} %) de « ${fingerprint.display} » répétaient ` +
        `une lecture identique (même SQL, mêmes valeurs); un cache (ex. Redis, TTL court) les aurait évitées, soit ~${ms(dbTimeMs)} ms de temps base.`,
      fingerprintIds: [fingerprint.id],
      evidence: { reads: fingerprint.count, repeats: fingerprint.repeatedIdentical, repeatRatio, dbTimeMs },
    })
  }
  return recommendations
}

function parseParams(params: string): unknown[] {
  try {
    const parsed: unknown = JSON.parse(params)
    return Array.isArray(parsed) ? parsed : []
  } catch {
    return []
  }
}
