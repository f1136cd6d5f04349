/**
 * A snapshot: one instant of the source database, captured into the staging folder as the
 * backup's database artefact, plus a table reader over that same instant for every export.
 *
 * | engine     | artefact      | taken with                                         | exports read            |
 * | ---------- | ------------- | -------------------------------------------------- | ----------------------- |
 * | SQLite     | database.db   | `VACUUM INTO` (one read transaction)               | database.db (read-only) |
 * | PostgreSQL | database.sql  | one REPEATABLE READ READ ONLY transaction (DDL from the catalog + COPY) | the same transaction |
 * | D1         | database.db   | rebuilt from D1, page by page (not one instant)    | database.db (read-only) |
 */
import type { RowSource, RowValue, TableInfo, TableReader } from '../db/table-reader.ts'
import type { EngineName } from '../db/url.ts'
import type { ProgressListener } from '../progress.ts'
import type { WrittenFile } from '../fs/hashed-file.ts'
import type Database from 'better-sqlite3'

/** The database itself: a SQLite file (SQLite and D1 sources)… */
export const DATABASE_FILE = 'database.db'
/** …or a script `psql` restores into an empty database (PostgreSQL sources). */
export const DATABASE_SQL_FILE = 'database.sql'

export interface Snapshot {
  engine: EngineName
  /** The database artefact, already in the staging folder; `digest` when it was hashed as it was written. */
  artefact: { name: string; path: string; digest?: WrittenFile }
  /** The SQLite file of the snapshot (SQLite and D1): what export.sql is written from. */
  sqliteFile?: string
  /** Reads the snapshot's tables (closed by `close`). */
  reader: TableReader
  /**
   * The rows of one table of `reader.tables()`, in `table.columns` order (synchronous where the engine allows):
   * in the engine's usual order (primary key, or rowid on SQLite), or grouped by the values of the column
   * `groupBy` first (then the usual order), so that each tenant's rows are one run of data.json.
   */
  rows(table: TableInfo, options?: { groupBy?: string }): RowSource
  /**
   * The rows of `rows(table, options)`, each already rendered by the engine as one text (SQLite:
   * built in SQL, no value formatted in JavaScript): the values as the codec's `json` tokens, laid
   * out by `layout`. Each item is [text, value of the `groupBy` column]. Absent, or undefined for a
   * table, where the caller formats the rows itself.
   */
  jsonRows?(table: TableInfo, layout: RowLayout, options?: { groupBy?: string }): Iterable<RenderedRow> | undefined
  /**
   * The CSV records of `rows(table, options)` (exporters/csv.ts's bytes, header apart), formatted by
   * the engine in buffers (SQLite: engines/sqlite/export-format.ts). Absent, or undefined for a
   * table, where the caller formats the rows itself.
   */
  csvChunks?(table: TableInfo, options?: { groupBy?: string }): FormattedChunks | undefined
  /**
   * data.json's rows of `rows(table, options)` formatted by the engine in buffers (exporters/json.ts's
   * bytes, laid out by `layout`), with where each value of `groupBy` starts. Absent, or undefined
   * for a table, where `jsonRows` or the caller formats them.
   */
  jsonChunks?(table: TableInfo, layout: RowLayout, options?: { groupBy?: string }): FormattedRows | undefined
  /** Row count of one table, in the same snapshot. */
  count(table: TableInfo): Promise<number>
  /** What this backup cannot guarantee or leaves out. */
  warnings: string[]
  close(): Promise<void>
}

/**
 * The live database read in place for exports alone (`advanced-backup export`): the reads of a
 * snapshot, in one read transaction of the database itself, without an artefact or any copy.
 */
export interface InPlaceRead extends Omit<Snapshot, 'artefact' | 'sqliteFile'> {
  /** The connection holding that transaction (SQLite): export.sql is read through it, so it shows the same instant. */
  sqliteConnection?: Database.Database
}

/** Records formatted by the engine, in buffers; `records()` counts those formatted so far, all of them once `chunks` is done. */
export interface FormattedChunks {
  chunks: Iterable<Buffer>
  records(): number
}

/** In a table's formatted rows, the byte offset where rows of another value of the grouping column start (`owner` as String() writes it; undefined: NULL). */
export interface OwnerChange {
  at: number
  owner: string | undefined
}

/** Formatted rows that also tell where each owner's rows start: `ownerChanges()`, once `chunks` is done. */
export interface FormattedRows extends FormattedChunks {
  ownerChanges(): readonly OwnerChange[]
}

/** A rendered row: `before[0]`, the first value, `before[1]`, the second value, …, `after`. */
export interface RowLayout {
  before: readonly string[]
  after: string
}

/** A row rendered by the engine, and the value of its grouping column when one was asked for. */
export type RenderedRow = readonly [text: string, owner?: RowValue]

export interface SnapshotOptions {
  /** The staging folder the artefact is written into. */
  dir: string
  /** fsync the artefact (not needed when it only feeds an archive that is fsynced itself). Default true. */
  durable?: boolean
  onProgress?: ProgressListener
}

/** The newest finished, not rolled back migration in the snapshot's `_prisma_migrations`, or null. */
export async function newestMigration(reader: TableReader, tables: readonly TableInfo[]): Promise<string | null> {
  const table = tables.find((t) => t.name === '_prisma_migrations')
  if (table === undefined) return null
  const index = (name: string) => table.columns.findIndex((c) => c.name === name)
  const [name, finished, rolledBack, started] = ['migration_name', 'finished_at', 'rolled_back_at', 'started_at'].map(index) as [number, number, number, number]
  if (name < 0 || finished < 0) return null
  let newest: { name: string; key: string } | null = null
  for await (const row of reader.rows(table)) {
    if (row[finished] === null || (rolledBack >= 0 && row[rolledBack] !== null)) continue
    // Migration names start with their timestamp; the start time breaks ties like Prisma's ordering.
    const key = `${String(row[name])}\u0000${started >= 0 ? String(row[started]) : ''}`
    if (newest === null || key > newest.key) newest = { name: String(row[name]), key }
  }
  return newest?.name ?? null
}
