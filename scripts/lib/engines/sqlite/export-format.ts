/**
 * The CSV files, export.sql and data.json formatted in C by the connection that reads the rows
 * (extension.c's export_…_record functions): JavaScript receives one 256 KiB buffer of records at a
 * time and only writes it. Undefined where the connection has no extension (extension.ts): the
 * exporters then format the rows in JavaScript, to the same bytes (test/sqlite-export-format.test.ts).
 */
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { TableColumn } from '../../db/table-reader.ts'
import { extensionChunks, hasExtension, MAX_FUNCTION_ARGUMENTS } from './extension.ts'
import type { FormattedChunks, FormattedRows, OwnerChange, RowLayout } from '../snapshot.ts'
import { isBooleanColumn } from './values.ts'

/** The record functions take their kinds, head or layout before the values. */
const MAX_FORMATTED_COLUMNS = MAX_FUNCTION_ARGUMENTS - 1

/**
 * The CSV records (exporters/csv.ts, without the header) of `table`'s `columns` in `order` (an
 * ORDER BY clause, or ''); undefined when `db` has no extension or the table has too many columns.
 */
export function csvChunks(db: Database.Database, table: string, columns: readonly TableColumn[], order: string): FormattedChunks | undefined {
  if (!hasExtension(db) || columns.length === 0 || columns.length > MAX_FORMATTED_COLUMNS) return undefined
  const kinds = columns.map((column) => (isBooleanColumn(column) ? 'b' : 'v')).join('')
  return formattedChunks(db, 'export_csv_record(?', columns.map((c) => c.name), kinds, table, order)
}

/** export.sql's `INSERT INTO "table" VALUES(…);` lines of `table` (exporters/sql.ts), like `csvChunks`. */
export function sqlChunks(db: Database.Database, table: string, columns: readonly string[], order: string): FormattedChunks | undefined {
  if (!hasExtension(db) || columns.length === 0 || columns.length > MAX_FORMATTED_COLUMNS) return undefined
  return formattedChunks(db, 'export_sql_record(?', columns, `INSERT INTO ${quoteIdentifier(table)} VALUES(`, table, order)
}

/** U+001F: what separates the layout's fields (JSON.stringify writes it \u001f, so no field holds it raw). */
const FIELD = '\x1f'

/**
 * data.json's row objects of `table` laid out by `layout` (exporters/json.ts's jsonRowFormatter
 * bytes, the first without its ','), in `order`; with `groupBy`, where each of its values' rows
 * start (json.ts's runRecorder). Undefined like `csvChunks`.
 */
export function jsonChunks(db: Database.Database, table: string, columns: readonly TableColumn[], layout: RowLayout, order: string, groupBy?: string): FormattedRows | undefined {
  if (!hasExtension(db) || columns.length === 0 || columns.length > MAX_FORMATTED_COLUMNS - 1) return undefined
  const kinds = (groupBy === undefined ? '-' : 'r') + columns.map((column) => (isBooleanColumn(column) ? 'b' : 'v')).join('')
  const values = groupBy === undefined ? columns.map((c) => c.name) : [groupBy, ...columns.map((c) => c.name)]
  const record = groupBy === undefined ? 'export_json_record(?, NULL' : 'export_json_record(?'
  return formattedChunks(db, record, values, [kinds, layout.after, ...layout.before].join(FIELD), table, order, groupBy !== undefined)
}

/**
 * `call` is the record function's call up to its first argument ('export_csv_record(?'); `values`
 * the columns given after it. Each LIMIT -1 keeps SQLite from merging a subquery into the query
 * around it: the innermost sorts the rows (a sort computes its result columns before sorting, so
 * the function must be called after it, in sorted order), the middle one calls the function once
 * per row (merged into the outer WHERE, it would be called twice; the record count, checked
 * against count(*) by the exports, would tell).
 */
function formattedChunks(db: Database.Database, call: string, values: readonly string[], first: string, table: string, order: string): FormattedChunks
function formattedChunks(db: Database.Database, call: string, values: readonly string[], first: string, table: string, order: string, withOwners: boolean): FormattedRows
function formattedChunks(db: Database.Database, call: string, values: readonly string[], first: string, table: string, order: string, withOwners = false): FormattedRows {
  const names = values.map((_, i) => `v${i}`)
  const rows = `SELECT ${values.map((value, i) => `${quoteIdentifier(value)} AS ${names[i]}`).join(', ')} FROM ${quoteIdentifier(table)}${order} LIMIT -1`
  const select = db.prepare(`SELECT chunk FROM (SELECT ${call}, ${names.join(', ')}) AS chunk FROM (${rows}) LIMIT -1) WHERE chunk IS NOT NULL`).pluck()
  const runs = db.prepare('SELECT export_format_runs()').pluck()
  const changes: OwnerChange[] = []
  const takeChanges = withOwners ? () => void changes.push(...ownerChanges(runs.get() as Buffer | null)) : undefined
  return { ...extensionChunks(db, select, [first], takeChanges), ownerChanges: () => changes }
}

/** export_format_runs()'s blob: [offset int64 LE][length int32 LE, -1 for NULL][UTF-8 bytes]… */
function ownerChanges(blob: Buffer | null): OwnerChange[] {
  const changes: OwnerChange[] = []
  for (let i = 0; blob !== null && i < blob.length; ) {
    const at = Number(blob.readBigInt64LE(i))
    const length = blob.readInt32LE(i + 8)
    i += 12
    changes.push({ at, owner: length < 0 ? undefined : blob.toString('utf8', i, i + length) })
    i += Math.max(0, length)
  }
  return changes
}
