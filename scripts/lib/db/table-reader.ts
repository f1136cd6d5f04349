/**
 * Reading a whole database table by table, the same way on every engine: what backups, exports
 * and migrations are built on. Tables are discovered from the database's own catalog (never a
 * hard-coded list) and rows are streamed, never loaded whole.
 */
import type { EngineName } from './url.ts'

export interface TableColumn {
  name: string
  /** The declared type as the engine reports it: `TEXT`, `DATETIME`, `numeric(65,30)`, `"DossierStatut"`… */
  declaredType: string
  nullable: boolean
  /** 1-based position in the primary key; 0 when not part of it. */
  primaryKeyPosition: number
}

export interface ForeignKey {
  columns: string[]
  referencedTable: string
  referencedColumns: string[]
}

export interface TableInfo {
  name: string
  columns: TableColumn[]
  foreignKeys: ForeignKey[]
}

/**
 * How values arrive, per engine:
 * - SQLite and D1: INTEGER as bigint (exact beyond 2^53), REAL as number, TEXT as string, BLOB as Buffer, NULL as null.
 * - PostgreSQL: every value as PostgreSQL's own text form (exact: numeric, int8, timestamps with
 *   microseconds, bytea as `\x…` hex), or null; `declaredType` says how to read it.
 */
export type RowValue = bigint | number | string | Buffer | null

/** How one column's values are written in data.json and the CSV files (the rules: values.ts). */
export interface ValueCodec {
  /** The value as a JSON token. */
  json(value: RowValue): string
  /** The value as CSV field text, or null for SQL NULL. */
  text(value: RowValue): string | null
}

/** Picks the codec of a column once, so the per-value work is a switch on the runtime type. */
export type ValueCodecFor = (column: TableColumn) => ValueCodec

/** Content checksums being computed; helper threads may already be at work. */
export interface ContentChecksumRun {
  /** This thread takes its share of the work, then every table's checksum is returned, by name. */
  finish(): Promise<Map<string, { rows: number; checksum: string }>>
  /** Stops the helper threads (the sums are not needed any more). */
  cancel(): void
}

export interface TableReader {
  readonly engine: EngineName
  /** How this engine's values are written in the exports. */
  readonly valueCodec: ValueCodecFor
  /** Every user table (including Prisma's `_prisma_migrations`), sorted by name. */
  tables(): Promise<TableInfo[]>
  /**
   * The rows of one table as arrays in `table.columns` order, in primary-key (or storage) order;
   * `groupBy` (where the engine's snapshot uses it: PostgreSQL) puts that column's order first.
   */
  rows(table: TableInfo, options?: { batchSize?: number; groupBy?: string }): AsyncIterable<RowValue[]>
  /**
   * Starts the content checksums (tenant-restore/row-hash.ts) of `tables`, when this reader can
   * compute them faster than by streaming `rows` (SQLite: several threads over rowid ranges of a
   * file nobody writes); `early`: the caller keeps this thread busy until `finish` (helper threads
   * then use every core meanwhile). Same values as `checksumRowSource` over `rows`.
   */
  startContentChecksums?(tables: readonly TableInfo[], options?: { early?: boolean }): ContentChecksumRun
  /** Row count of one table, read in the same snapshot as `rows`. */
  count(table: TableInfo): Promise<number>
  close(): Promise<void>
}

/**
 * Orders tables so that every table comes after the tables its foreign keys point to
 * (self-references are ignored; a cycle keeps its tables in name order at the end).
 */
export function tablesInDependencyOrder(tables: readonly TableInfo[]): TableInfo[] {
  const byName = new Map(tables.map((table) => [table.name, table]))
  const ordered: TableInfo[] = []
  const placed = new Set<string>()
  const visiting = new Set<string>()
  const visit = (table: TableInfo) => {
    if (placed.has(table.name) || visiting.has(table.name)) return
    visiting.add(table.name)
    for (const fk of table.foreignKeys) {
      const parent = byName.get(fk.referencedTable)
      if (parent !== undefined && parent.name !== table.name) visit(parent)
    }
    visiting.delete(table.name)
    placed.add(table.name)
    ordered.push(table)
  }
  // Code-point order, as the catalogs' ORDER BY name gives it.
  for (const table of [...tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) visit(table)
  return ordered
}

export type RowSource = AsyncIterable<RowValue[]> | Iterable<RowValue[]>
