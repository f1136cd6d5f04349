/**
 * What proving an index asks of an engine: the `IndexLab` (one per engine folder,
 * `engines/<engine>/index-advice.ts`), the plans and statistics it answers with, and the few
 * rules every lab applies the same way. The advice itself (which index to draw, whether its gain
 * is enough) is metrics/index-advice.ts.
 */
import type { IndexDefinition } from './metrics-engine.ts'
import { fingerprintSql } from '../db/fingerprint.ts'
import { ToolkitError } from '../errors.ts'

export interface PlanScan {
  table: string
  /** `full`: every row read; `index-filter`: through an index, with a filter the index does not serve; `index`: served by an index. */
  kind: 'full' | 'index-filter' | 'index'
  index?: string
  /** Rows the scan reads, as the engine measured or estimated it. */
  rows: number
}

export interface LabPlan {
  /** One node per line, indented by depth, values shown as `?`. */
  lines: string[]
  scans: PlanScan[]
  /** Whether the engine sorts the rows itself (no index gives the order). */
  sorts: boolean
}

export interface ColumnStatistics {
  /** Distinct values (an estimate on large tables). */
  distinct: number
  /** Share of NULLs, 0..1. */
  nullFraction: number
}

export interface CandidateIndex {
  name: string
  table: string
  columns: string[]
}

export interface IndexFinding {
  kind: 'duplicate-index' | 'unused-index'
  table: string
  index: string
  columns: string[]
  /** For a duplicate: the index that already serves everything this one does. */
  coveredBy?: string
  /** For an unused index: scans since the statistics were reset (0). */
  scans?: number
  bytes?: number
  message: string
}

/** What measuring an index needs from an engine; one implementation per engine folder (`engines/<engine>/index-advice.ts`). */
export interface IndexLab {
  /** The value that means "no limit" for a LIMIT placeholder. */
  readonly noLimit: unknown
  /** Prefix of the proposed statement: `CREATE INDEX CONCURRENTLY` on PostgreSQL. */
  readonly createIndexVerb: string
  /** Whether `explain`/`time` may run an UPDATE or DELETE: its effects are rolled back (PostgreSQL, a scratch copy), never kept. */
  readonly measuresWrites: boolean
  /** Whether `time` measures the statement itself; false where round trips dwarf it (D1 through its API or Miniflare): measure on a scratch copy. */
  readonly timesStatements: boolean
  tableColumns(table: string): Promise<string[]>
  tableIndexes(table: string): Promise<IndexDefinition[]>
  columnStatistics(table: string, columns: readonly string[]): Promise<Map<string, ColumnStatistics>>
  /** The `count` most frequent values of a column, most frequent first. */
  commonValues(table: string, column: string, count: number): Promise<unknown[]>
  medianValue(table: string, column: string): Promise<unknown>
  explain(statement: string, params: readonly unknown[]): Promise<LabPlan>
  /** Median milliseconds of `runs` executions (after one warm-up). */
  time(statement: string, params: readonly unknown[], runs: number): Promise<number>
  /** The planner's plan with the index without building it (hypopg); a reason when the engine cannot. */
  hypotheticalPlan(index: CandidateIndex, statement: string, params: readonly unknown[]): Promise<LabPlan | { unavailable: string }>
  /** Builds the index where it cannot harm (scratch copy, rolled-back transaction), runs `measure`, removes it; `UnmeasuredIndexError` when the build cannot be measured. */
  withIndex<T>(index: CandidateIndex, measure: () => Promise<T>): Promise<{ value: T; bytes: number }>
  /** Runs a proven recommendation's statement on the database (outside any transaction), then refreshes the statistics of the new index. */
  apply(statement: string, index: CandidateIndex): Promise<void>
  /** Duplicate and unused indexes of the app's tables. */
  indexFindings(): Promise<IndexFinding[]>
  close(): Promise<void>
}

/**
 * Thrown by `withIndex` when the lab could not measure a candidate at all: not a verdict on the
 * index. The advice lists it among the rejected as "non mesuré", with this message.
 */
export class UnmeasuredIndexError extends ToolkitError {}

/** An UPDATE or DELETE with a WHERE: it finds its rows the way a read does. */
export function isFilteredWrite(sql: string): boolean {
  return /^\s*(?:UPDATE|DELETE)\b[\s\S]*\bWHERE\b/i.test(sql)
}

/** Plan lines with every value shown as `?` (PostgreSQL prints the bound values in its conditions). */
export function redactPlanLine(line: string): string {
  const indent = /^\s*/.exec(line)![0]
  return indent + fingerprintSql(line)
}

/** Non-unique indexes whose columns lead another index of the table: that one serves every lookup they serve. */
export function duplicateIndexes(table: string, indexes: readonly IndexDefinition[]): IndexFinding[] {
  const findings: IndexFinding[] = []
  for (const index of indexes) {
    if (index.unique) continue
    const wider = indexes.find((other) => other !== index && other.columns.length >= index.columns.length && index.columns.every((c, i) => other.columns[i] === c) && (other.columns.length > index.columns.length || other.unique || other.name < index.name))
    if (wider === undefined) continue
    findings.push({
      kind: 'duplicate-index',
      table,
      index: index.name,
      columns: index.columns,
      coveredBy: wider.name,
      message: `Index en double: ${index.name}(${index.columns.join(', ')}) est couvert par ${wider.name}(${wider.columns.join(', ')}); il coûte à chaque écriture sans servir de lecture de plus.`,
    })
  }
  return findings
}
