/**
 * The CSV files, export.sql and data.json formatted in C by the connection that reads the rows
 * (export-format.c, a SQLite extension): JavaScript receives one 256 KiB buffer of records at a
 * time and only writes it. The build compiles it into dist/ (`compileExportFormat`, run by
 * dist.ts at `npm ci` and `npm test`); where it could not (no C compiler) the exports format in
 * JavaScript: the same bytes (test/sqlite-export-format.test.ts), about twice the time.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { TableColumn } from '../../db/table-reader.ts'
import { PROJECT_ROOT } from '../../environment.ts'
import type { FormattedChunks, FormattedRows, OwnerChange, RowLayout } from '../snapshot.ts'
import { isBooleanColumn } from './values.ts'

/** The C source, relative to the project root (dist.ts lists it among the build's sources). */
export const EXPORT_FORMAT_SOURCE = 'scripts/lib/engines/sqlite/export-format.c'
/** The compiled extension's name in dist/. */
export const EXPORT_FORMAT_LIBRARY = 'sqlite-export-format.so'

/** SQLite's limit on a function's arguments is 1000; the first is the record's kinds or head. */
const MAX_FORMATTED_COLUMNS = 999

/**
 * Compiles the extension into `outDir` with the machine's C compiler (`CC`, else `cc`) against
 * the SQLite headers better-sqlite3 ships; returns why it could not, or undefined once built.
 */
export function compileExportFormat(root: string, outDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const headers = join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'deps', 'sqlite3')
  const compiler = env.CC || 'cc'
  try {
    execFileSync(compiler, ['-O2', '-shared', '-fPIC', '-I', headers, '-o', join(outDir, EXPORT_FORMAT_LIBRARY), join(root, EXPORT_FORMAT_SOURCE), '-lm'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 })
    return undefined
  } catch (error) {
    const failure = error as { code?: string; stderr?: Buffer }
    if (failure.code === 'ENOENT') return `compilateur C introuvable (${compiler})`
    return `${compiler} a échoué : ${failure.stderr?.toString().trim().split('\n')[0] ?? String(error)}`
  }
}

const loaded = new WeakSet<Database.Database>()

/**
 * Loads the extension into `db` (once per connection); false when the build has none.
 * @example if (loadExportFormat(db)) for (const chunk of csvChunks(db, table, order)!.chunks) …
 */
export function loadExportFormat(db: Database.Database, library = join(PROJECT_ROOT, 'dist', EXPORT_FORMAT_LIBRARY)): boolean {
  if (loaded.has(db)) return true
  if (!existsSync(library)) return false
  db.loadExtension(library)
  loaded.add(db)
  return true
}

/**
 * The CSV records (exporters/csv.ts, without the header) of `table`'s `columns` in `order` (an
 * ORDER BY clause, or ''); undefined when `db` has no extension or the table has too many columns.
 */
export function csvChunks(db: Database.Database, table: string, columns: readonly TableColumn[], order: string): FormattedChunks | undefined {
  if (!loaded.has(db) || columns.length === 0 || columns.length > MAX_FORMATTED_COLUMNS) return undefined
  const kinds = columns.map((column) => (isBooleanColumn(column) ? 'b' : 'v')).join('')
  return formattedChunks(db, 'export_csv_record(?', columns.map((c) => c.name), kinds, table, order)
}

/** export.sql's `INSERT INTO "table" VALUES(…);` lines of `table` (exporters/sql.ts), like `csvChunks`. */
export function sqlChunks(db: Database.Database, table: string, columns: readonly string[], order: string): FormattedChunks | undefined {
  if (!loaded.has(db) || columns.length === 0 || columns.length > MAX_FORMATTED_COLUMNS) return undefined
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
  if (!loaded.has(db) || columns.length === 0 || columns.length > MAX_FORMATTED_COLUMNS - 1) return undefined
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
  const recordsSoFar = db.prepare('SELECT export_format_records()').pluck()
  const rest = db.prepare('SELECT export_format_rest()').pluck()
  const runs = db.prepare('SELECT export_format_runs()').pluck()
  const changes: OwnerChange[] = []
  const takeChanges = () => {
    if (withOwners) changes.push(...ownerChanges(runs.get() as Buffer | null))
  }
  let total: number | undefined
  function* chunks(): Generator<Buffer> {
    // What an export abandoned on this connection (a failed write) left in the buffer is not this table's.
    rest.get()
    for (const chunk of select.iterate(first)) {
      takeChanges()
      yield chunk as Buffer
    }
    takeChanges()
    total = recordsSoFar.get() as number
    const last = rest.get() as Buffer | null
    if (last !== null) yield last
  }
  return { chunks: chunks(), records: () => total ?? (recordsSoFar.get() as number), ownerChanges: () => changes }
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
