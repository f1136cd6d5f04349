/**
 * export.sql of a SQLite snapshot: a script the `sqlite3` shell loads into an empty database,
 * giving a database whose `.dump` equals the snapshot's. It follows `.dump`'s own shape — tables
 * in schema order with their rows (in rowid order), sqlite_sequence and sqlite_stat1 contents,
 * virtual tables through `writable_schema`, then indexes, triggers and views — with exact
 * literals: integers as digits, reals in text that reads back to the same double (`sqliteLiteral`
 * writes the shortest, `3.0`, `1e999` for infinity; rows rendered in SQL have quote()'s, `1.0e+21`,
 * `9.0e+999`), text quoted with '' doubled, blobs as X'…'. sqlite_stat4 is
 * created explicitly, so a shell built without STAT4 (Debian's) loads it too.
 */
import type { Writable } from 'node:stream'
import Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { RowSource, RowValue, TableColumn } from '../../db/table-reader.ts'
import { realText } from '../../db/values.ts'
import { TextSink } from '../../fs/hashed-file.ts'
import type { ExportStats } from './csv.ts'
import { writeFormattedChunks, writeRows } from './_rows.ts'
import { rowOrder } from '../../engines/sqlite/table-reader.ts'
import { sqlChunks } from '../../engines/sqlite/export-format.ts'
import { loadExtension } from '../../engines/sqlite/extension.ts'
import { MAX_RENDERED_COLUMNS } from '../../engines/sqlite/rendered-rows.ts'

/** A value as a SQLite literal that reads back as the same value and type. */
export function sqliteLiteral(value: RowValue): string {
  if (value === null) return 'NULL'
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NULL'
    if (value === Infinity) return '1e999'
    if (value === -Infinity) return '-1e999'
    return realText(value)
  }
  if (typeof value === 'string') {
    // The sqlite3 shell cannot read a NUL inside a literal: spell such text as bytes.
    if (value.includes('\0')) return `CAST(X'${Buffer.from(value, 'utf8').toString('hex')}' AS TEXT)`
    const quoted = `'${value.replaceAll("'", "''")}'`
    return value.includes('\n') || value.includes('\r') ? spellLineBreaks(quoted) : quoted
  }
  return `X'${value.toString('hex')}'`
}

/**
 * Streams rows as `INSERT INTO "table" VALUES(…);` lines.
 * @example await exportSqlInserts(rows, { name: 'Plan', columns }, out)
 */
export async function exportSqlInserts(
  rows: RowSource,
  table: { name: string; columns?: readonly TableColumn[] },
  out: Writable,
  options: { onRows?: (rows: number) => void } = {},
): Promise<ExportStats> {
  const sink = new TextSink(out)
  const head = `INSERT INTO ${quoteIdentifier(table.name)} VALUES(`
  const count = await writeRows(
    rows,
    [sink],
    (row) => {
      let line = head
      for (let i = 0; i < row.length; i++) line += (i === 0 ? '' : ',') + sqliteLiteral(row[i]!)
      sink.push(line + ');\n')
    },
    options.onRows,
  )
  await sink.flush()
  return { rows: count }
}

/**
 * The SQL expression that renders a column's value as a literal, the way `sqliteLiteral` does:
 * quote() gives exact reals and X'…' blobs; text holding NUL — which quote() would cut — becomes
 * CAST(X'…' AS TEXT). Line breaks are spelled out afterwards in JavaScript (`spellLineBreaks`).
 */
function renderedLiteral(column: string): string {
  const c = quoteIdentifier(column)
  // instr first: for nearly every value it is 0 and the typeof() call is skipped (Dossier at 1M: 4.3 s → 3.9 s).
  return `CASE WHEN instr(${c}, char(0)) > 0 AND typeof(${c}) = 'text' THEN 'CAST(X''' || hex(${c}) || ''' AS TEXT)' ELSE quote(${c}) END`
}

const LINE_BREAK = /\r\n|\r|\n/g

/**
 * The shell drops a CR before LF when it reads a line: spell line breaks inside literals as
 * char(13) / char(10). In a rendered INSERT line they can only be inside text literals.
 */
function spellLineBreaks(text: string): string {
  return text.replace(LINE_BREAK, (eol) => `'||char(${eol === '\r\n' ? '13,10' : eol === '\r' ? '13' : '10'})||'`)
}

async function writeLines(lines: Iterable<string>, out: Writable, onRows: (rows: number) => void): Promise<ExportStats> {
  const sink = new TextSink(out)
  const count = await writeRows(lines, [sink], (line) => sink.push((line.includes('\n') || line.includes('\r') ? spellLineBreaks(line) : line) + '\n'), onRows)
  await sink.flush()
  return { rows: count }
}

interface SchemaRow {
  type: string
  name: string
  tbl_name: string
  sql: string | null
}

interface XInfoRow {
  name: string
  hidden: number
}

export interface SqliteScriptOptions {
  onRows?: (table: string, rows: number) => void
  /** false: the rows are rendered in SQL (or JavaScript) even when the C formatting is there (the tests compare both). */
  formatInC?: boolean
}

/**
 * Writes the whole export.sql of a SQLite file (opened read-only), or of an open connection in its
 * read transaction (left open); returns the rows written per table (sqlite_sequence and sqlite_stat
 * tables included under their own names).
 */
export async function writeSqliteScript(source: string | Database.Database, out: Writable, options: SqliteScriptOptions = {}): Promise<Map<string, number>> {
  const db = typeof source === 'string' ? new Database(source, { readonly: true, fileMustExist: true }) : source
  // One pass over the file: a small page cache is enough (better-sqlite3's default is 16 MB).
  if (typeof source === 'string') db.pragma('cache_size = -2000')
  loadExtension(db)
  const counts = new Map<string, number>()
  const sink = new TextSink(out)
  const began = !db.inTransaction
  try {
    if (began) db.exec('BEGIN')
    const schema = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid').all() as SchemaRow[]
    const withoutRowid = new Set(
      (db.prepare('SELECT name FROM pragma_table_list WHERE schema = ? AND wr = 1').pluck().all('main') as string[]),
    )
    sink.push('PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n')
    let writableSchema = false
    let analyzed = false
    const tables = schema
      .filter((row) => row.type === 'table' && row.sql !== null)
      .sort((a, b) => Number(a.tbl_name === 'sqlite_sequence') - Number(b.tbl_name === 'sqlite_sequence'))
    for (const table of tables) {
      const sql = table.sql!
      if (table.name === 'sqlite_sequence') {
        sink.push('DELETE FROM sqlite_sequence;\n')
      } else if (table.name === 'sqlite_stat1') {
        if (!analyzed) sink.push('ANALYZE sqlite_schema;\n')
        analyzed = true
      } else if (/^sqlite_stat\d$/.test(table.name)) {
        // sqlite_stat4 exists only in SQLITE_ENABLE_STAT4 builds (better-sqlite3's, not every sqlite3
        // shell's): create it explicitly so any shell can load its rows.
        const create = `CREATE TABLE IF NOT EXISTS ${sql.slice('CREATE TABLE '.length)};\n`
        sink.push(writableSchema ? create : `PRAGMA writable_schema=ON;\n${create}PRAGMA writable_schema=OFF;\n`)
      } else if (table.name.startsWith('sqlite_')) {
        continue
      } else if (/^CREATE VIRTUAL TABLE/i.test(sql)) {
        if (!writableSchema) sink.push('PRAGMA writable_schema=ON;\n')
        writableSchema = true
        // What `.dump` does: the module recreates nothing here; its shadow tables follow as tables.
        sink.push(`INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table',${sqliteLiteral(table.name)},${sqliteLiteral(table.name)},0,${sqliteLiteral(sql)});\n`)
        continue
      } else {
        sink.push(writableSchema && sql.startsWith('CREATE TABLE ') ? `CREATE TABLE IF NOT EXISTS ${sql.slice('CREATE TABLE '.length)};\n` : `${sql};\n`)
      }
      await sink.flush()
      const columns = (db.prepare(`PRAGMA table_xinfo(${quoteIdentifier(table.name)})`).all() as XInfoRow[]).filter((c) => c.hidden === 0).map((c) => c.name)
      const order = rowOrder(table.name, columns, withoutRowid)
      const onRows = (n: number) => options.onRows?.(table.name, n)
      let stats: ExportStats
      const formatted = options.formatInC === false ? undefined : sqlChunks(db, table.name, columns, order)
      if (formatted !== undefined) {
        // Formatted in C (the same lines as rendered in SQL below, at about half the time).
        stats = { rows: await writeFormattedChunks(formatted, sink, onRows) }
        await sink.flush()
      } else if (columns.length <= MAX_RENDERED_COLUMNS) {
        // SQLite renders each INSERT itself (quote() gives exact literals): one string per row to move.
        const line = `'INSERT INTO ' || ${sqliteLiteral(quoteIdentifier(table.name))} || ' VALUES(' || ${columns.map(renderedLiteral).join(" || ',' || ")} || ');'`
        const lines = db.prepare(`SELECT ${line} FROM ${quoteIdentifier(table.name)}${order}`).pluck().iterate() as IterableIterator<string>
        stats = await writeLines(lines, out, onRows)
      } else {
        const select = `SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${quoteIdentifier(table.name)}${order}`
        stats = await exportSqlInserts(db.prepare(select).raw(true).safeIntegers(true).iterate() as IterableIterator<RowValue[]>, table, out, { onRows })
      }
      counts.set(table.name, stats.rows)
    }
    for (const row of schema) {
      if (row.sql === null || !['index', 'trigger', 'view'].includes(row.type)) continue
      sink.push(`${row.sql};\n`)
    }
    if (writableSchema) sink.push('PRAGMA writable_schema=OFF;\n')
    sink.push('COMMIT;\n')
    await sink.flush()
  } finally {
    if (began && db.inTransaction) db.exec('COMMIT')
    if (typeof source === 'string') db.close()
  }
  return counts
}
