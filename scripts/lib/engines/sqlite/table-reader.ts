/**
 * Table reader over a SQLite file opened read-only. Point it at a snapshot (a `VACUUM INTO`
 * copy), not at a live database, when the reads must describe one instant.
 */
import Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { RowValue, TableInfo, TableReader } from '../../db/table-reader.ts'
import { sqliteValueCodec } from './values.ts'
import { startSqliteContentChecksums } from './content-checksum.ts'

interface TableXInfoRow {
  name: string
  type: string
  notnull: number
  pk: number
  hidden: number
}

interface ForeignKeyListRow {
  id: number
  seq: number
  table: string
  from: string
  to: string | null
}

/**
 * A reader of a file nobody writes (a snapshot, a backup's copy): its content checksums may be
 * computed by several threads, each with its own connection.
 * @example const reader = openSqliteTableReader('/backups/b1/database.db'); for (const t of await reader.tables()) …
 */
export function openSqliteTableReader(path: string): TableReader {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  return sqliteTableReader(db, { quiescent: true })
}

/**
 * `quiescent`: nobody writes the file while the reader is open (other connections then see the
 * same rows as this one's read transaction), so content checksums may be split across threads.
 */
export function sqliteTableReader(db: Database.Database, options: { quiescent?: boolean } = {}): TableReader {
  return {
    engine: 'sqlite',
    valueCodec: sqliteValueCodec,
    async tables() {
      const names = db
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`)
        .pluck()
        .all() as string[]
      return names.map((name) => describeTable(db, name))
    },
    async *rows(table) {
      const statement = db.prepare(`SELECT ${table.columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${quoteIdentifier(table.name)}`)
      yield* statement.raw(true).safeIntegers(true).iterate() as IterableIterator<RowValue[]>
    },
    startContentChecksums(tables, run = {}) {
      // Threads only over a file nobody writes: their own connections must see this one's rows.
      return startSqliteContentChecksums(db, db.name, tables, { ...run, ...(options.quiescent && !db.memory ? {} : { threads: 1 }) })
    },
    async count(table) {
      return Number(db.prepare(`SELECT COUNT(*) FROM ${quoteIdentifier(table.name)}`).pluck().get())
    },
    async close() {
      if (db.inTransaction) db.exec('COMMIT')
      db.close()
    },
  }
}

function describeTable(db: Database.Database, name: string): TableInfo {
  // table_xinfo also lists generated columns (hidden 2 and 3): they hold no data of their own.
  const columns = (db.prepare(`PRAGMA table_xinfo(${quoteIdentifier(name)})`).all() as TableXInfoRow[])
    .filter((column) => column.hidden === 0)
    .map((column) => ({ name: column.name, declaredType: column.type, nullable: column.notnull === 0 && column.pk === 0, primaryKeyPosition: column.pk }))
  const fkRows = db.prepare(`PRAGMA foreign_key_list(${quoteIdentifier(name)})`).all() as ForeignKeyListRow[]
  const groups = new Map<number, ForeignKeyListRow[]>()
  for (const row of fkRows) groups.set(row.id, [...(groups.get(row.id) ?? []), row])
  const foreignKeys = [...groups.values()].map((group) => ({
    columns: group.map((row) => row.from),
    referencedTable: group[0]!.table,
    referencedColumns: group.map((row) => row.to ?? ''),
  }))
  return { name, columns, foreignKeys }
}

/**
 * `ORDER BY rowid` (or an unshadowed alias of it): the order `.dump` reads a rowid table in; with
 * `groupBy`, that column first (an index on it alone already holds its entries in rowid order, so
 * SQLite walks it without sorting).
 */
export function rowOrder(table: string, columns: readonly string[], withoutRowid: ReadonlySet<string>, groupBy?: string): string {
  const first = groupBy === undefined ? [] : [quoteIdentifier(groupBy)]
  const names = new Set(columns.map((c) => c.toLowerCase()))
  const alias = withoutRowid.has(table) ? undefined : ['rowid', '_rowid_', 'oid'].find((a) => !names.has(a))
  const order = [...first, ...(alias ? [alias] : [])]
  return order.length > 0 ? ` ORDER BY ${order.join(', ')}` : ''
}
