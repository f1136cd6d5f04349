/**
 * data.json rows rendered by SQLite itself: one text per row, built in SQL, so that no value is
 * formatted in JavaScript (measured on 1M dossiers: the JSON formatting in JavaScript cost more than
 * reading the rows). Each value is the JSON token `sqliteValueCodec` writes (rules in db/values.ts):
 * NULL `null`, integers with all their digits, text through `json_quote` (the same escapes as
 * JSON.stringify), BOOLEAN columns' 0/1 as false/true; reals and blobs, which SQLite would print
 * differently, go through the codec's own JavaScript (`realJson`, base64) as SQL functions.
 */
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { TableInfo } from '../../db/table-reader.ts'
import { realJson } from '../../db/values.ts'
import type { RenderedRow, RowLayout } from '../snapshot.ts'
import { isBooleanColumn } from './values.ts'

/** Past this many columns a row's rendering expression would exceed SQLite's expression depth (1000): such tables are formatted in JavaScript (here and in export.sql). */
export const MAX_RENDERED_COLUMNS = 200

const REAL_JSON = 'export_real_json'
const BLOB_JSON = 'export_blob_json'

/** Adds the SQL functions the rendering uses to `db` (once per connection). */
export function addRenderFunctions(db: Database.Database): void {
  db.function(REAL_JSON, { deterministic: true }, (value: unknown) => realJson(value as number))
  db.function(BLOB_JSON, { deterministic: true }, (value: unknown) => JSON.stringify((value as Buffer).toString('base64')))
}

function textLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

function jsonToken(column: TableInfo['columns'][number]): string {
  const c = quoteIdentifier(column.name)
  const any = `CASE typeof(${c}) WHEN 'real' THEN ${REAL_JSON}(${c}) WHEN 'blob' THEN ${BLOB_JSON}(${c}) ELSE json_quote(${c}) END`
  if (!isBooleanColumn(column)) return any
  return `CASE WHEN typeof(${c}) = 'integer' AND ${c} = 1 THEN 'true' WHEN typeof(${c}) = 'integer' AND ${c} = 0 THEN 'false' ELSE ${any} END`
}

/**
 * The rows of `table` rendered by `layout`, in `order` (an ORDER BY clause); each item is
 * [text, value of `groupBy`] (`groupBy` only when given). Undefined for a table too wide to render in SQL.
 * `db` must have the functions of `addRenderFunctions`.
 */
export function renderedJsonRows(db: Database.Database, table: TableInfo, layout: RowLayout, order: string, groupBy?: string): Iterable<RenderedRow> | undefined {
  if (table.columns.length > MAX_RENDERED_COLUMNS || table.columns.length === 0) return undefined
  const parts = table.columns.map((column, i) => `${textLiteral(layout.before[i]!)} || ${jsonToken(column)}`)
  const text = `${parts.join(' || ')} || ${textLiteral(layout.after)}`
  const owner = groupBy === undefined ? '' : `, ${quoteIdentifier(groupBy)}`
  return db.prepare(`SELECT ${text}${owner} FROM ${quoteIdentifier(table.name)}${order}`).raw(true).safeIntegers(true).iterate() as IterableIterator<RenderedRow>
}
