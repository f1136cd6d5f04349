/**
 * The migration's per-row work done by the SQLite extension (engines/sqlite/extension.c): COPY
 * lines inserted without JavaScript seeing a value (copy_text_insert), and the verification's
 * canonical lines built by the connection that reads the target (copy_text_line). Each stands for
 * the JavaScript of conversion.ts and checksum.ts, to the same values and bytes
 * (test/migrate-in-c.test.ts); undefined where the connection has no extension or a column's
 * conversion has no C letter, and JavaScript then does the work as before.
 */
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../db/connection.ts'
import { extensionChunks, loadExtension, MAX_FUNCTION_ARGUMENTS } from '../engines/sqlite/extension.ts'
import type { Converter } from './conversion.ts'

/**
 * A function that inserts whole COPY lines with `insert` (one `?` per converter, in order) and
 * returns how many it inserted: all of them, or fewer when the next line needs JavaScript (a value
 * only conversion.ts converts or refuses, a constraint it breaks; that line is not inserted).
 * @example const insertLines = copyLinesInserter(db, 'INSERT INTO "t" ("a") VALUES (?)', converters); insertLines?.(lines) // 512
 */
export function copyLinesInserter(db: Database.Database, insert: string, converters: readonly Converter[]): ((lines: Buffer) => number) | undefined {
  const kinds = letters(converters.map((converter) => converter.toSqliteInC))
  if (kinds === undefined || !loadExtension(db)) return undefined
  const call = db.prepare('SELECT copy_text_insert(?, ?, ?)').pluck()
  return (lines) => Number(call.get(insert, kinds, lines))
}

/** A step of canonical lines read from the target: the lines' bytes in chunks, then their count and the last rowid read. */
export interface CanonicalLines {
  chunks: Iterable<Buffer>
  /** After `chunks` is read: the lines (rows) it held, and the rowid of the last. */
  records(): number
  lastRowid(): bigint
}

/**
 * Reads up to `limit` rows of `table` after rowid `after` (from the first when undefined) in rowid
 * order as checksum.ts's lines of their canonical values (conversion.ts's canonicalFromSqlite).
 * @example const read = canonicalLinesReader(db, 't', columns, converters, 'rowid'); for (const c of read(undefined, 10_000)!.chunks) hash.update(c)
 */
export function canonicalLinesReader(
  db: Database.Database,
  table: string,
  columns: readonly string[],
  converters: readonly Converter[],
  rowid: string,
): ((after: bigint | undefined, limit: number) => CanonicalLines) | undefined {
  const kinds = letters(converters.map((converter) => converter.canonicalFromSqliteInC))
  // The kinds and the rowid come before the values.
  if (kinds === undefined || columns.length > MAX_FUNCTION_ARGUMENTS - 2 || !loadExtension(db)) return undefined
  const names = columns.map((_, i) => `v${i}`)
  const rows = `SELECT ${rowid} AS k, ${columns.map((column, i) => `${quoteIdentifier(column)} AS ${names[i]}`).join(', ')} FROM ${quoteIdentifier(table)}`
  // The inner LIMIT keeps the rows in rowid order under the call; the outer one calls it once per row (see export-format.ts).
  const around = (where: string) => db.prepare(`SELECT chunk FROM (SELECT copy_text_line(?, k, ${names.join(', ')}) AS chunk FROM (${rows}${where} ORDER BY ${rowid} LIMIT ?) LIMIT -1) WHERE chunk IS NOT NULL`).pluck()
  const first = around('')
  const next = around(` WHERE ${rowid} > ?`)
  const last = db.prepare('SELECT copy_text_last_key()').pluck().safeIntegers(true)
  return (after, limit) => ({
    ...extensionChunks(db, after === undefined ? first : next, after === undefined ? [kinds, limit] : [kinds, after, limit]),
    lastRowid: () => last.get() as bigint,
  })
}

/** One letter per column, or undefined when a column has none. */
function letters(perColumn: readonly (string | undefined)[]): string | undefined {
  return perColumn.length > 0 && perColumn.every((letter) => letter !== undefined) ? perColumn.join('') : undefined
}
