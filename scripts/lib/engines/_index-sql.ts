/** SQL text helpers of the advisor: which columns a statement filters on, and the index statement it proposes. */
import { quoteIdentifier } from '../db/connection.ts'
import type { ProposedIndex } from './metrics-engine.ts'

export interface ColumnFilter {
  column: string
  kind: 'equality' | 'range'
}

const OPERATOR = String.raw`(=|<=|>=|<(?!>)|>|IN\b|IS\b|BETWEEN\b)`

/**
 * The columns a statement filters or joins a table on, read from its SQL: `T.col = ?`, `T.col IN (…)`,
 * `T.col >= ?`… (and unqualified columns after WHERE when the statement reads only that table).
 * Equality filters come first: they are what an index's leading columns serve.
 */
export function filteredColumns(sql: string, table: string, tableColumns: readonly string[]): ColumnFilter[] {
  const text = sql.replace(/'(?:[^']|'')*'/g, '?').replace(/[`"]/g, '')
  const known = new Set(tableColumns)
  const found: ColumnFilter[] = []
  const add = (column: string, operator: string) => {
    if (!known.has(column) || found.some((f) => f.column === column)) return
    found.push({ column, kind: /^(=|IN|IS)$/i.test(operator) ? 'equality' : 'range' })
  }
  const escaped = table.replace(/\W/g, '\\$&')
  for (const match of text.matchAll(new RegExp(String.raw`(?<![\w.])(?:\w+\.)?${escaped}\.(\w+)\s*${OPERATOR}`, 'gi'))) add(match[1]!, match[2]!)
  const tablesRead = [...text.matchAll(/\b(?:FROM|JOIN|UPDATE)\s+(?:\w+\.)?(\w+)/gi)].map((m) => m[1])
  const where = /\bWHERE\b([\s\S]*)$/i.exec(text)?.[1]
  if (where !== undefined && tablesRead.length > 0 && tablesRead.every((name) => name === table)) {
    for (const match of where.matchAll(new RegExp(String.raw`(?<![\w.])(\w+)\s*${OPERATOR}`, 'gi'))) add(match[1]!, match[2]!)
  }
  return [...found.filter((f) => f.kind === 'equality'), ...found.filter((f) => f.kind === 'range')]
}

/** The statement the way Prisma's migrations write it. */
export function createIndexStatement(index: ProposedIndex): string {
  return `CREATE INDEX ${quoteIdentifier(index.name)} ON ${quoteIdentifier(index.table)}(${index.columns.map(quoteIdentifier).join(', ')});`
}
