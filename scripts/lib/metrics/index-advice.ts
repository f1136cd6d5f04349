/**
 * Index advice a DBA can sign: every observed statement with enough executions (not only the slow
 * ones) is explained; where a table is read in full, or through an index that does not serve its
 * filter, a composite tenant-leading index is drawn (equality columns, most selective first by the
 * engine's statistics, then one range column, then the ORDER BY columns) and PROVED on an
 * `IndexLab` — a scratch copy of the database (SQLite, D1) or a rolled-back transaction with a
 * hypopg what-if first (PostgreSQL): plan and median time before and after, index size. Nothing
 * whose measured gain is under `minGain` is proposed, nor any index an existing one covers.
 *
 * UPDATE and DELETE statements that filter scan like reads and are advised too, measured by
 * running them where nothing is kept: in a transaction rolled back (PostgreSQL) or on the scratch
 * copy, each run rolled back to a savepoint (SQLite, D1). Their timing includes the upkeep of the
 * new index, so an index that slows a write down more than it speeds its filter is not proposed.
 *
 * Plans and SQL in the results carry `?` where the statement had values: they come from
 * fingerprints, and plan lines go through `fingerprintSql`.
 */
import { createHash } from 'node:crypto'
import { quoteIdentifier } from '../db/connection.ts'
import { describeError } from '../errors.ts'
import type { IndexDefinition } from '../engines/metrics-engine.ts'
import { isFilteredWrite, UnmeasuredIndexError, type CandidateIndex, type ColumnStatistics, type IndexFinding, type IndexLab, type LabPlan, type PlanScan } from '../engines/index-lab.ts'
import { aggregateFingerprints } from './analysis.ts'
import type { OperationRecord } from './instrumentation.ts'
import { placeholderRoles, tableShape, tablesRead, type TableShape } from '../engines/statement-shape.ts'

/** A statement seen in the app's traffic, with how often it ran. */
export interface ObservedStatement {
  /** Fingerprint id (see fingerprint.ts). */
  id: string
  /** The statement as sent (placeholders, no values) or its fingerprint. */
  sql: string
  calls: number
  /** Bound values of one real execution, kept in memory only; without them, representative values are drawn from the data. */
  params?: readonly unknown[]
}

export interface IndexAdviceOptions {
  /** Statements run fewer times in the window are not considered. Default 5. */
  minCalls: number
  /** A proposal needs at least this measured gain, (before − after) / before. Default 0.2. */
  minGain: number
  /** Timed runs per measurement (median). Default 7. */
  runs: number
  /** The column that says which tenant a row belongs to: it leads every proposed index. Default `tenantId`. */
  tenantColumn: string
  /** Progress: one call per statement measured. */
  onProgress?: (event: { statementId: string; table: string; columns: string[] }) => void
}

export const DEFAULT_INDEX_ADVICE_OPTIONS: IndexAdviceOptions = { minCalls: 5, minGain: 0.2, runs: 7, tenantColumn: 'tenantId' }

export interface MeasuredPlan {
  plan: string[]
  medianMs: number
}

export interface IndexRecommendation {
  /** Stable across runs: derived from the table and the columns. */
  id: string
  kind: 'index'
  /** The index's name (Prisma's convention: `<Table>_<columns>_idx`). */
  name: string
  table: string
  columns: string[]
  /** The statement to run, values-free. */
  statement: string
  /** Fingerprints it speeds up; the evidence is measured on the first (the heaviest). */
  fingerprintIds: string[]
  /** Rows scanned × calls over the window, for the statements it serves. */
  severity: number
  /** Why the current plan is poor: `full` scan or an index that does not serve the filter. */
  problem: PlanScan['kind']
  message: string
  evidence: {
    before: MeasuredPlan
    after: MeasuredPlan
    /** (before − after) / before, measured. */
    gain: number
    /** before / after. */
    speedup: number
    indexBytes: number
    /** hypopg's plan with the index, or why there is none. */
    whatIf?: string[] | { unavailable: string }
    runs: number
    /** How the statement's values were chosen. */
    params: 'observed' | 'representative'
  }
}

export interface RejectedCandidate {
  statementId: string
  table: string
  columns: string[]
  reason: string
}

export interface IndexAdvice {
  recommendations: IndexRecommendation[]
  rejected: RejectedCandidate[]
  findings: IndexFinding[]
}

/**
 * @example
 * const lab = await openSqliteIndexLab(db, { dir })
 * const advice = await adviseIndexes(lab, statements, { minCalls: 5 })
 * advice.recommendations[0] // { id: 'idx-…', statement: 'CREATE INDEX … ON "Dossier"("tenantId", "statut", "dateEcheance");', evidence: { gain: 0.97, … } }
 */
export async function adviseIndexes(lab: IndexLab, statements: readonly ObservedStatement[], options: Partial<IndexAdviceOptions> = {}): Promise<IndexAdvice> {
  const settings = { ...DEFAULT_INDEX_ADVICE_OPTIONS, ...options }
  const columnsOf = memoize((table: string) => lab.tableColumns(table))
  const indexesOf = memoize((table: string) => lab.tableIndexes(table))
  const byId = new Map<string, IndexRecommendation>()
  const rejected: RejectedCandidate[] = []
  const eligible = statements.filter((s) => s.calls >= settings.minCalls && (/^\s*(?:SELECT|WITH)\b/i.test(s.sql) || (lab.measuresWrites && isFilteredWrite(s.sql))))
  for (const statement of [...eligible].sort((a, b) => b.calls - a.calls)) {
    const tables = tablesRead(statement.sql)
    const columns = new Map<string, string[]>()
    for (const table of tables) columns.set(table, await columnsOf(table))
    const params = statement.params ?? (await representativeParams(lab, statement.sql, columns))
    let before: LabPlan
    try {
      before = await lab.explain(statement.sql, params)
    } catch (error) {
      rejected.push({ statementId: statement.id, table: '', columns: [], reason: `EXPLAIN a échoué: ${describeError(error)}` })
      continue
    }
    for (const scan of before.scans) {
      if (scan.kind === 'index' && !before.sorts) continue
      const tableColumns = columns.get(scan.table) ?? (await columnsOf(scan.table))
      const shape = tableShape(statement.sql, scan.table, tableColumns)
      if (shape.equality.length + shape.range.length === 0) continue
      const stats = await lab.columnStatistics(scan.table, [...shape.equality, ...shape.range])
      const candidateColumns = orderColumns(shape, stats, settings.tenantColumn)
      if (candidateColumns.length === 0) continue
      const existing = await indexesOf(scan.table)
      const covering = existing.find((index) => candidateColumns.every((column, i) => index.columns[i] === column))
      if (covering !== undefined) {
        rejected.push({ statementId: statement.id, table: scan.table, columns: candidateColumns, reason: `l'index existant ${covering.name}(${covering.columns.join(', ')}) couvre déjà ces colonnes` })
        continue
      }
      const candidate = { name: indexName(scan.table, candidateColumns, existing), table: scan.table, columns: candidateColumns }
      const id = recommendationId(candidate)
      const known = byId.get(id)
      if (known !== undefined) {
        known.fingerprintIds.push(statement.id)
        known.severity += scan.rows * statement.calls
        continue
      }
      settings.onProgress?.({ statementId: statement.id, table: scan.table, columns: candidateColumns })
      const whatIf = await lab.hypotheticalPlan(candidate, statement.sql, params)
      if (!('unavailable' in whatIf) && !whatIf.lines.some((line) => line.includes(candidate.name) || /<(?:\d+|\?)>btree/.test(line))) {
        rejected.push({ statementId: statement.id, table: scan.table, columns: candidateColumns, reason: 'le planificateur ne choisirait pas cet index (plan hypothétique hypopg)' })
        continue
      }
      const beforeMs = await lab.time(statement.sql, params, settings.runs)
      let measured: { value: { plan: LabPlan; medianMs: number }; bytes: number }
      try {
        measured = await lab.withIndex(candidate, async () => ({
          plan: await lab.explain(statement.sql, params),
          medianMs: await lab.time(statement.sql, params, settings.runs),
        }))
      } catch (error) {
        if (!(error instanceof UnmeasuredIndexError)) throw error
        rejected.push({ statementId: statement.id, table: scan.table, columns: candidateColumns, reason: `non mesuré: ${error.message}` })
        continue
      }
      const { value: after, bytes } = measured
      const gain = beforeMs <= 0 ? 0 : (beforeMs - after.medianMs) / beforeMs
      if (!after.plan.scans.some((s) => s.index === candidate.name)) {
        rejected.push({ statementId: statement.id, table: scan.table, columns: candidateColumns, reason: 'construit sur la copie, l\'index n\'est pas choisi par le planificateur' })
        continue
      }
      if (gain < settings.minGain) {
        rejected.push({
          statementId: statement.id,
          table: scan.table,
          columns: candidateColumns,
          reason: `gain mesuré ${Math.round(gain * 100)} % (< ${Math.round(settings.minGain * 100)} %): ${round(beforeMs)} ms → ${round(after.medianMs)} ms`,
        })
        continue
      }
      const sql = `${lab.createIndexVerb} ${quoteIdentifier(candidate.name)} ON ${quoteIdentifier(candidate.table)}(${candidate.columns.map(quoteIdentifier).join(', ')});`
      const speedup = after.medianMs > 0 ? beforeMs / after.medianMs : Infinity
      byId.set(id, {
        id,
        kind: 'index',
        name: candidate.name,
        table: candidate.table,
        columns: candidate.columns,
        statement: sql,
        fingerprintIds: [statement.id],
        severity: scan.rows * statement.calls,
        problem: scan.kind,
        message:
          `Index ${candidate.table}(${candidate.columns.join(', ')}): ${scan.kind === 'full' ? 'la table est lue entièrement' : scan.kind === 'index-filter' ? `l'index ${scan.index} ne sert pas le filtre` : 'le tri n\'est servi par aucun index'} ` +
          `(${scan.rows} lignes lues × ${statement.calls} exécutions); mesuré: ${round(beforeMs)} ms → ${round(after.medianMs)} ms (×${round(speedup)}), index de ${bytes} octets. Proposé: ${sql}`,
        evidence: {
          before: { plan: before.lines, medianMs: round(beforeMs) },
          after: { plan: after.plan.lines, medianMs: round(after.medianMs) },
          gain: Math.round(gain * 1000) / 1000,
          speedup: round(speedup),
          indexBytes: bytes,
          whatIf: 'unavailable' in whatIf ? whatIf : whatIf.lines,
          runs: settings.runs,
          params: statement.params === undefined ? 'representative' : 'observed',
        },
      })
    }
  }
  // A proposal whose columns lead another one's is served by it: one index, both statements.
  for (const narrow of [...byId.values()]) {
    const wider = [...byId.values()].find((other) => other !== narrow && other.table === narrow.table && other.columns.length > narrow.columns.length && narrow.columns.every((c, i) => other.columns[i] === c))
    if (wider === undefined) continue
    wider.fingerprintIds.push(...narrow.fingerprintIds)
    wider.severity += narrow.severity
    byId.delete(narrow.id)
  }
  const recommendations = [...byId.values()].sort((a, b) => b.severity - a.severity || a.id.localeCompare(b.id))
  return { recommendations, rejected, findings: await lab.indexFindings() }
}

export interface AppliedRecommendation {
  id: string
  statement: string
  before: MeasuredPlan
  after: MeasuredPlan
  /** Measured on the database itself, before and after the index was built. */
  gain: number
  /** The gain the recommendation predicted. */
  predictedGain: number
}

/**
 * Builds one proven index on the database (`lab` over the live database), timing the statement it
 * was proved on just before and just after: the real gain next to the predicted one. A write is
 * never run on a database that cannot roll it back (SQLite, D1), and D1's round trips dwarf a
 * statement's time: `measureOn` then opens a scratch copy of the database as it is at that moment,
 * once before and once after the build.
 * @example const applied = await applyRecommendation(await openSqliteIndexLab(db, { scratch: false }), recommendation, statement)
 */
export async function applyRecommendation(
  lab: IndexLab,
  recommendation: IndexRecommendation,
  statement: ObservedStatement,
  options: { runs?: number; measureOn?: () => Promise<IndexLab> } = {},
): Promise<AppliedRecommendation> {
  const runs = options.runs ?? recommendation.evidence.runs
  const onScratch = !lab.timesStatements || (!lab.measuresWrites && isFilteredWrite(statement.sql))
  if (onScratch && options.measureOn === undefined) throw new Error(`${recommendation.id} : une écriture (ou toute instruction sur D1) se mesure sur une copie jetable, aucune n’a été fournie`)
  const measure = async () => {
    const on = onScratch ? await options.measureOn!() : lab
    try {
      const columns = new Map<string, string[]>()
      for (const table of tablesRead(statement.sql)) columns.set(table, await on.tableColumns(table))
      const params = statement.params ?? (await representativeParams(on, statement.sql, columns))
      return { plan: await on.explain(statement.sql, params), ms: await on.time(statement.sql, params, runs) }
    } finally {
      if (on !== lab) await on.close()
    }
  }
  const { plan: beforePlan, ms: beforeMs } = await measure()
  await lab.apply(recommendation.statement, { name: recommendation.name, table: recommendation.table, columns: recommendation.columns })
  const { plan: afterPlan, ms: afterMs } = await measure()
  return {
    id: recommendation.id,
    statement: recommendation.statement,
    before: { plan: beforePlan.lines, medianMs: round(beforeMs) },
    after: { plan: afterPlan.lines, medianMs: round(afterMs) },
    gain: beforeMs <= 0 ? 0 : Math.round(((beforeMs - afterMs) / beforeMs) * 1000) / 1000,
    predictedGain: recommendation.evidence.gain,
  }
}

/**
 * Equality columns first — the tenant column leading, then the most selective (most distinct
 * values, fewest NULLs) — then the first range column, then the ORDER BY columns when no range
 * column breaks the order. At most four columns.
 */
export function orderColumns(shape: TableShape, stats: ReadonlyMap<string, ColumnStatistics>, tenantColumn: string): string[] {
  const selectivity = (column: string) => {
    const s = stats.get(column)
    return s === undefined ? 0 : s.distinct * (1 - s.nullFraction)
  }
  const equality = shape.equality
    .filter((column) => column === tenantColumn || (stats.get(column)?.distinct ?? 2) > 1)
    .sort((a, b) => Number(b === tenantColumn) - Number(a === tenantColumn) || selectivity(b) - selectivity(a))
  const columns = [...equality]
  const range = shape.range.find((column) => !columns.includes(column))
  if (range !== undefined) columns.push(range)
  else for (const column of shape.orderBy) if (!columns.includes(column)) columns.push(column)
  return columns.slice(0, 4)
}

/**
 * Values to replay a statement with when none were observed: for an equality the most frequent
 * value(s) of its column (the biggest tenant: the worst case), the median for a range, 100 rows
 * for a LIMIT (none for a LIMIT inside a count's subquery), 0 for an OFFSET.
 */
export async function representativeParams(lab: IndexLab, sql: string, columnsOf: ReadonlyMap<string, readonly string[]>): Promise<unknown[]> {
  const roles = placeholderRoles(sql, columnsOf)
  const inSubquery = /\)\s*AS\s*[`"]?sub[`"]?\s*$/i.test(sql)
  const values: unknown[] = []
  for (const role of roles) {
    switch (role.kind) {
      case 'equality': {
        const common = await lab.commonValues(role.table, role.column, role.position + 1)
        values.push(common[role.position] ?? common[0] ?? null)
        break
      }
      case 'range':
        values.push(await lab.medianValue(role.table, role.column))
        break
      case 'limit':
        values.push(inSubquery ? lab.noLimit : 100)
        break
      case 'offset':
        values.push(0)
        break
      case 'unknown':
        values.push(null)
    }
  }
  return values
}

/** `idx-` and 10 hex digits of the table and columns: the same proposal has the same id on every run. */
export function recommendationId(index: Pick<CandidateIndex, 'table' | 'columns'>): string {
  return `idx-${createHash('sha256').update(`${index.table}(${index.columns.join(',')})`).digest('hex').slice(0, 10)}`
}

/** Prisma's index name (`<Table>_<columns>_idx`), unique among the table's indexes. */
export function indexName(table: string, columns: readonly string[], existing: readonly IndexDefinition[]): string {
  const base = `${table}_${columns.join('_')}_idx`
  let name = base
  for (let n = 2; existing.some((index) => index.name === name); n++) name = `${base}${n}`
  return name
}

const round = (value: number) => (Number.isFinite(value) ? Math.round(value * 1000) / 1000 : value)

/** One load per key, however often it is asked for. */
export function memoize<T>(load: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const cache = new Map<string, Promise<T>>()
  return (key) => {
    let value = cache.get(key)
    if (value === undefined) cache.set(key, (value = load(key)))
    return value
  }
}

/**
 * The statements of recorded operations, one per fingerprint with the values of its slowest
 * execution (kept in memory for the measurement, never written out).
 */
export function observedFromOperations(operations: readonly OperationRecord[]): ObservedStatement[] {
  const { stats, samples } = aggregateFingerprints(operations)
  return stats.map((s) => {
    const sample = samples.get(s.id)!
    let params: unknown[] | undefined
    try {
      const parsed: unknown = JSON.parse(sample.params)
      if (Array.isArray(parsed)) params = parsed
    } catch {
      params = undefined
    }
    return { id: s.id, sql: sample.sql, calls: s.count, ...(params === undefined ? {} : { params }) }
  })
}
