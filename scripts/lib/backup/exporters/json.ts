/**
 * data.json: every row of every table in one JSON document, streamed (never built in memory):
 *
 *   { "formatVersion": 1, "engine": "sqlite", "backupId": "backup-…", "timestamp": "…",
 *     "tables": { "Plan": { "columns": [{ "name": "id", "type": "TEXT" }, …],
 *                           "rows": [ { "id": "plan-solo", … }, … ], "rowCount": 6 }, … } }
 *
 * Values follow `_values.ts`. Integers and PostgreSQL numerics are JSON numbers with all their
 * digits, so nothing is rounded in the file: Python's `json` reads integers exactly (and decimals
 * exactly with `parse_float=decimal.Decimal`); JavaScript's `JSON.parse` rounds integers beyond
 * 2^53, so read those with a big-number-aware parser.
 */
import type { Writable } from 'node:stream'
import type { TableColumn, TableInfo } from '../../db/table-reader.ts'
import { TextSink } from '../hashed-file.ts'
import { codecFor } from './_values.ts'
import { forEachRow, type RowSource } from './_rows.ts'
import { REPORT_EVERY, type ExportOptions, type ExportStats } from './csv.ts'

export const DATA_JSON_FORMAT_VERSION = 1

/**
 * Streams rows as a JSON array of objects keyed by column name (the `rows` array of one table).
 * @example await exportJsonRows(reader.rows(table), table.columns, out, { engine: 'sqlite' })
 */
export async function exportJsonRows(rows: RowSource, columns: readonly TableColumn[], out: Writable, options: ExportOptions & { indent?: string }): Promise<ExportStats> {
  const sink = new TextSink(out)
  const indent = options.indent ?? ''
  const codecs = columns.map((column) => codecFor(column, options.engine))
  const keys = columns.map((column) => `${JSON.stringify(column.name)}: `)
  let count = 0
  let nextReport = REPORT_EVERY
  sink.push('[')
  await forEachRow(
    rows,
    (row) => {
      let text = count === 0 ? `\n${indent}  {` : `,\n${indent}  {`
      for (let i = 0; i < codecs.length; i++) {
        if (i > 0) text += ', '
        text += keys[i]! + codecs[i]!.json(row[i] ?? null)
      }
      sink.push(text + '}')
      count++
      return sink.full
    },
    async () => {
      await sink.flush()
      if (count >= nextReport) {
        options.onRows?.(count)
        nextReport = count + REPORT_EVERY
      }
    },
  )
  sink.push(count === 0 ? ']' : `\n${indent}]`)
  await sink.flush()
  options.onRows?.(count)
  return { rows: count }
}

export interface JsonDocumentOptions extends Omit<ExportOptions, 'onRows'> {
  backupId: string
  timestamp: string
  onRows?: (table: string, rows: number) => void
}

/** Writes the whole data.json of `tables`, each read from `rows(table)`; returns the rows written per table. */
export async function exportJsonDocument(rows: (table: TableInfo) => RowSource, tables: readonly TableInfo[], out: Writable, options: JsonDocumentOptions): Promise<Map<string, number>> {
  const sink = new TextSink(out)
  const counts = new Map<string, number>()
  sink.push(
    `{\n  "formatVersion": ${DATA_JSON_FORMAT_VERSION},\n  "engine": ${JSON.stringify(options.engine)},\n` +
      `  "backupId": ${JSON.stringify(options.backupId)},\n  "timestamp": ${JSON.stringify(options.timestamp)},\n  "tables": {`,
  )
  for (const [index, table] of tables.entries()) {
    const columns = table.columns.map((c) => `{ "name": ${JSON.stringify(c.name)}, "type": ${JSON.stringify(c.declaredType)} }`)
    sink.push(`${index === 0 ? '' : ','}\n    ${JSON.stringify(table.name)}: {\n      "columns": [${columns.join(', ')}],\n      "rows": `)
    await sink.flush()
    const stats = await exportJsonRows(rows(table), table.columns, out, {
      engine: options.engine,
      indent: '      ',
      onRows: (rows) => options.onRows?.(table.name, rows),
    })
    counts.set(table.name, stats.rows)
    sink.push(`,\n      "rowCount": ${stats.rows}\n    }`)
  }
  sink.push(tables.length === 0 ? '}\n}\n' : '\n  }\n}\n')
  await sink.flush()
  return counts
}
