/**
 * SQLite source: the snapshot is `VACUUM INTO` the staging folder — one read transaction, so it is
 * one instant of the database even while another process writes in WAL mode (a raw copy of the
 * file would silently miss what is still in -wal). The copy is fsynced here: VACUUM INTO does not.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { EngineName } from '../../db/url.ts'
import { quoteIdentifier, type SqlHandle } from '../../db/connection.ts'
import type { RowValue, TableInfo, TableReader } from '../../db/table-reader.ts'
import { openSqliteTableReader, rowOrder } from './table-reader.ts'
import { addRenderFunctions, renderedJsonRows } from './rendered-rows.ts'
import { csvChunks, jsonChunks } from './export-format.ts'
import { loadExtension } from './extension.ts'
import { fsyncPath } from '../../fs/atomic.ts'
import { DATABASE_FILE, type Snapshot, type SnapshotOptions } from '../snapshot.ts'

export async function sqliteSnapshot(db: SqlHandle, options: SnapshotOptions): Promise<Snapshot> {
  const path = join(options.dir, DATABASE_FILE)
  options.onProgress?.({ label: 'snapshot', done: 0, total: 1, unit: 'steps' })
  // better-sqlite3's default page cache is 16 MB per database, and VACUUM INTO fills one for the
  // source and one for the copy (+37 MB of RSS, measured): a scan in one pass needs little of it.
  await db.sql.query(`PRAGMA cache_size = ${SCAN_CACHE_KIB}`)
  await db.sql.query('VACUUM INTO ?', [path])
  makeRollbackJournal(path)
  if (options.durable ?? true) fsyncPath(path)
  options.onProgress?.({ label: 'snapshot', done: 1, total: 1, unit: 'steps' })
  return sqliteFileSnapshot('sqlite', path, [])
}

/** Page cache of the connections that scan a snapshot once (negative: KiB, as PRAGMA cache_size takes it). */
export const SCAN_CACHE_KIB = -2000

/** A snapshot whose artefact is a SQLite file: every export reads that file, read-only. */
export function sqliteFileSnapshot(engine: EngineName, path: string, warnings: string[]): Snapshot {
  const reader = openSqliteTableReader(path)
  // Rows straight from a statement: no promise per row (see exporters/_rows.ts).
  const db = new Database(path, { readonly: true, fileMustExist: true })
  return { ...connectionReads(engine, db, reader, warnings), artefact: { name: DATABASE_FILE, path }, sqliteFile: path }
}

/**
 * A snapshot's reads through one connection `db` (its rows, rendered rows, counts) beside `reader`
 * (which may read through `db` itself); closing it closes both. What a snapshot has beyond its artefact.
 */
export function connectionReads(engine: EngineName, db: Database.Database, reader: TableReader, warnings: string[]): Omit<Snapshot, 'artefact' | 'sqliteFile'> {
  db.pragma(`cache_size = ${SCAN_CACHE_KIB}`)
  addRenderFunctions(db)
  loadExtension(db)
  const withoutRowid = new Set(db.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND wr = 1`).pluck().all() as string[])
  /** The ORDER BY every read of a table's rows uses, so that each format lists them alike. */
  const orderOf = (table: TableInfo, groupBy?: string) => rowOrder(table.name, table.columns.map((c) => c.name), withoutRowid, groupBy)
  return {
    engine,
    reader,
    rows(table, options = {}) {
      const select = `SELECT ${table.columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${quoteIdentifier(table.name)}${orderOf(table, options.groupBy)}`
      return db.prepare(select).raw(true).safeIntegers(true).iterate() as IterableIterator<RowValue[]>
    },
    jsonRows(table, layout, options = {}) {
      return renderedJsonRows(db, table, layout, orderOf(table, options.groupBy), options.groupBy)
    },
    jsonChunks(table, layout, options = {}) {
      return jsonChunks(db, table.name, table.columns, layout, orderOf(table, options.groupBy), options.groupBy)
    },
    csvChunks(table, options = {}) {
      return csvChunks(db, table.name, table.columns, orderOf(table, options.groupBy))
    },
    async count(table) {
      return Number(db.prepare(`SELECT count(*) FROM ${quoteIdentifier(table.name)}`).pluck().get())
    },
    warnings,
    async close() {
      db.close()
      await reader.close()
    },
  }
}

/** Whether a SQLite file's header says WAL mode (bytes 18-19 = 2): opening it, even read-only, writes -wal/-shm files beside it. */
export function isWalModeFile(path: string): boolean {
  const header = Buffer.alloc(20)
  const fd = openSync(path, 'r')
  try {
    readSync(fd, header, 0, 20, 0)
  } finally {
    closeSync(fd)
  }
  return header[18] === 2 || header[19] === 2
}

/**
 * A backup file must open without -wal/-shm companions: if the copy says WAL, switch it to a
 * rollback journal.
 */
export function makeRollbackJournal(path: string): void {
  if (!isWalModeFile(path)) return
  const db = new Database(path)
  try {
    db.pragma('journal_mode = DELETE')
  } finally {
    db.close()
  }
}
