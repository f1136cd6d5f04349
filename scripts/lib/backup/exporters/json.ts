/**
 * data.json: every row of every table in one JSON document, streamed (never built in memory):
 *
 *   { "formatVersion": 1, "engine": "sqlite", "backupId": "backup-…", "timestamp": "…",
 *     "tables": { "Plan": { "columns": [{ "name": "id", "type": "TEXT" }, …],
 *                           "rows": [ { "id": "plan-solo", … }, … ], "rowCount": 6 }, … } }
 *
 * Values follow `db/values.ts`. Integers and PostgreSQL numerics are JSON numbers with all their
 * digits, so nothing is rounded in the file: Python's `json` reads integers exactly (and decimals
 * exactly with `parse_float=decimal.Decimal`); JavaScript's `JSON.parse` rounds integers beyond
 * 2^53, so read those with a big-number-aware parser.
 */
import type { Writable } from 'node:stream'
import type { RowSource, RowValue, TableColumn, TableInfo, ValueCodecFor } from '../../db/table-reader.ts'
import type { EngineName } from '../../db/url.ts'
import type { RowLayout, Snapshot } from '../../engines/snapshot.ts'
import { TextSink } from '../../fs/hashed-file.ts'
import { writeFormattedChunks, writeRows } from './_rows.ts'
import type { ExportOptions, ExportStats } from './csv.ts'

export const DATA_JSON_FORMAT_VERSION = 1

/**
 * The text around the values of one row object, for `jsonRowFormatter` and for engines that render
 * rows themselves (Snapshot.jsonRows): `before[0]` holds the separator `,` that the first row drops.
 */
export function jsonRowLayout(columns: readonly TableColumn[], indent: string): RowLayout {
  const before = columns.map((column, i) => `${i === 0 ? `,\n${indent}  {` : ', '}${JSON.stringify(column.name)}: `)
  return columns.length === 0 ? { before, after: `,\n${indent}  {}` } : { before, after: '}' }
}

/** Formats one row as a JSON object, preceded by the separator (none before the first row). */
export function jsonRowFormatter(columns: readonly TableColumn[], valueCodec: ValueCodecFor, indent: string): (row: RowValue[], first: boolean) => string {
  const codecs = columns.map(valueCodec)
  const { before, after } = jsonRowLayout(columns, indent)
  return (row, first) => {
    let text = ''
    for (let i = 0; i < codecs.length; i++) text += before[i]! + codecs[i]!.json(row[i] ?? null)
    text += after
    return first ? text.slice(1) : text
  }
}

/**
 * Streams rows as a JSON array of objects keyed by column name (the `rows` array of one table).
 * @example await exportJsonRows(reader.rows(table), table.columns, out, { valueCodec: reader.valueCodec })
 */
export async function exportJsonRows(rows: RowSource, columns: readonly TableColumn[], out: Writable, options: ExportOptions & { indent?: string }): Promise<ExportStats> {
  const sink = new TextSink(out)
  const indent = options.indent ?? ''
  const format = jsonRowFormatter(columns, options.valueCodec, indent)
  sink.push('[')
  const count = await writeRows(rows, [sink], (row, index) => sink.push(format(row, index === 0)), options.onRows)
  sink.push(count === 0 ? ']' : `\n${indent}]`)
  await sink.flush()
  return { rows: count }
}

/**
 * One run of data.json: the rows of `table` whose grouping column holds `owner` (rows written
 * grouped, see Snapshot.rows' `groupBy`), bytes [start, end) of the file — from the separator
 * before its first row to the end of its last row.
 */
export interface DataJsonRun {
  table: string
  owner: string
  start: number
  end: number
}

/**
 * Watches the rows of `table` as they are pushed to `sink` (built with `countBytes`) and appends
 * to `runs` where each value of its column `column` starts and stops. Call `row` (or `owner` with
 * that column's value) before pushing a row's text, `end` before the table's tail. NULLs belong to no run.
 */
export function runRecorder(
  table: TableInfo,
  column: string,
  sink: TextSink,
  runs: DataJsonRun[],
): { row(row: readonly RowValue[]): void; owner(value: RowValue | undefined): void; ownerAt(name: string | undefined, here: number): void; end(): void } {
  const at = table.columns.findIndex((c) => c.name === column)
  let open: DataJsonRun | undefined
  /** Rows of `name` (undefined: NULL) start at byte `here`. */
  const ownerAt = (name: string | undefined, here: number) => {
    if (name === open?.owner) return
    if (open) open.end = here
    open = name === undefined ? undefined : { table: table.name, owner: name, start: here, end: here }
    if (open) runs.push(open)
  }
  const owner = (value: RowValue | undefined) => ownerAt(value === null || value === undefined ? undefined : String(value), sink.bytes)
  return {
    row: (row) => owner(row[at]),
    owner,
    ownerAt,
    end() {
      if (open) open.end = sink.bytes
      open = undefined
    },
  }
}

export interface JsonDocumentOptions extends Omit<ExportOptions, 'onRows'> {
  engine: EngineName
  backupId: string
  timestamp: string
  onRows?: (table: string, rows: number) => void
  /** Tables whose rows come grouped by a column (table → column): their runs are recorded. */
  groupBy?: ReadonlyMap<string, string>
  /** The rows rendered by the engine (Snapshot.jsonRows), used for every table it renders. */
  renderedRows?: Snapshot['jsonRows']
  /** The rows formatted by the engine in buffers (Snapshot.jsonChunks), used first for every table it formats. */
  formattedRows?: Snapshot['jsonChunks']
}

/** The pieces of data.json around the rows, for writers that produce the rows themselves. */
export const jsonDocument = {
  /** The rows of a table are indented this much. */
  indent: '      ',
  head: (options: Pick<JsonDocumentOptions, 'engine' | 'backupId' | 'timestamp'>) =>
    `{\n  "formatVersion": ${DATA_JSON_FORMAT_VERSION},\n  "engine": ${JSON.stringify(options.engine)},\n` +
    `  "backupId": ${JSON.stringify(options.backupId)},\n  "timestamp": ${JSON.stringify(options.timestamp)},\n  "tables": {`,
  /** Opens a table's object up to `"rows": [`. */
  tableHead: (table: TableInfo, first: boolean) => {
    const columns = table.columns.map((c) => `{ "name": ${JSON.stringify(c.name)}, "type": ${JSON.stringify(c.declaredType)} }`)
    return `${first ? '' : ','}\n    ${JSON.stringify(table.name)}: {\n      "columns": [${columns.join(', ')}],\n      "rows": [`
  },
  /** Closes the rows array and the table's object. */
  tableTail: (rows: number) => `${rows === 0 ? '' : '\n      '}],\n      "rowCount": ${rows}\n    }`,
  tail: (tables: number) => (tables === 0 ? '}\n}\n' : '\n  }\n}\n'),
}

/**
 * Writes the whole data.json of `tables`, each read from `rows(table, groupBy)` (the column of
 * `options.groupBy`, if any); returns the rows written per table and the runs of the grouped tables.
 */
export async function exportJsonDocument(
  rows: (table: TableInfo, groupBy?: string) => RowSource,
  tables: readonly TableInfo[],
  out: Writable,
  options: JsonDocumentOptions,
): Promise<{ counts: Map<string, number>; runs: DataJsonRun[] }> {
  const grouped = options.groupBy ?? new Map<string, string>()
  const sink = new TextSink(out, { countBytes: grouped.size > 0 })
  const counts = new Map<string, number>()
  const runs: DataJsonRun[] = []
  sink.push(jsonDocument.head(options))
  for (const [index, table] of tables.entries()) {
    sink.push(jsonDocument.tableHead(table, index === 0))
    const column = grouped.get(table.name)
    const recorder = column === undefined ? undefined : runRecorder(table, column, sink, runs)
    const onRows = (n: number) => options.onRows?.(table.name, n)
    const layout = jsonRowLayout(table.columns, jsonDocument.indent)
    const formatted = options.formattedRows?.(table, layout, { groupBy: column })
    const rendered = formatted === undefined ? options.renderedRows?.(table, layout, { groupBy: column }) : undefined
    let count: number
    if (formatted !== undefined) {
      // Offsets of the owner changes count from the table's first row.
      const base = recorder === undefined ? 0 : sink.bytes
      count = await writeFormattedChunks(formatted, sink, onRows)
      for (const change of formatted.ownerChanges()) recorder?.ownerAt(change.owner, base + change.at)
    } else if (rendered !== undefined) {
      count = await writeRows(
        rendered,
        [sink],
        ([text, owner], rowIndex) => {
          recorder?.owner(owner)
          sink.push(rowIndex === 0 ? text.slice(1) : text)
        },
        onRows,
      )
    } else {
      const format = jsonRowFormatter(table.columns, options.valueCodec, jsonDocument.indent)
      count = await writeRows(
        rows(table, column),
        [sink],
        (row, rowIndex) => {
          recorder?.row(row)
          sink.push(format(row, rowIndex === 0))
        },
        onRows,
      )
    }
    recorder?.end()
    counts.set(table.name, count)
    sink.push(jsonDocument.tableTail(count))
  }
  sink.push(jsonDocument.tail(tables.length))
  await sink.flush()
  return { counts, runs }
}
