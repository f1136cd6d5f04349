/**
 * A tenant's rows of one table in canonical form (canonical.ts), keyed by primary key, and the
 * order-independent content checksum of such a set of rows.
 */
import { createHash } from 'node:crypto'
import type { ContentChecksumRun, RowSource, RowValue, TableColumn, TableInfo, TableReader } from '../db/table-reader.ts'
import type { EngineName } from '../db/url.ts'
import { engineNamed } from '../engines/index.ts'
import type { ValueKind } from '../migration/conversion.ts'
import { columnKind } from './canonical.ts'
import { addRawRows, canonicalColumns, RowSetChecksum, type TableChecksum } from './row-hash.ts'

export { RowSetChecksum, type TableChecksum }

export type CanonicalRow = (string | null)[]

export interface CanonicalTable {
  name: string
  /** Column names, in the order of each row's values. */
  columns: string[]
  kinds: ValueKind[]
  /** Positions of the primary-key columns in `columns`, in key order. */
  keyPositions: number[]
  /** Rows by `rowKey`. */
  rows: Map<string, CanonicalRow>
}

export function emptyCanonicalTable(name: string, columns: readonly { name: string; declaredType: string }[], key: readonly string[]): CanonicalTable {
  const names = columns.map((c) => c.name)
  return { name, columns: names, kinds: columns.map((c) => columnKind(c.declaredType)), keyPositions: key.map((k) => names.indexOf(k)), rows: new Map() }
}

/** The primary key of a canonical row as one string. */
export function rowKey(table: Pick<CanonicalTable, 'keyPositions'>, row: CanonicalRow): string {
  return table.keyPositions.map((i) => row[i] ?? '\u0001NULL').join('\u0000')
}

export function addRow(table: CanonicalTable, row: CanonicalRow): void {
  table.rows.set(rowKey(table, row), row)
}

/** Turns rows read from an engine (RowValue, the table reader's convention) into canonical rows: exported text first, as the backup's exports hold it, then canonical. */
export function canonicalizer(columns: readonly TableColumn[], engine: EngineName): (row: readonly RowValue[]) => CanonicalRow {
  const canonical = canonicalColumns(columns, engineNamed(engine).valueCodec)
  return (row) => canonical.map((f, i) => f(row[i]))
}

/** The same row with its values in `columns` order (names); absent columns become null. */
export function reorder(table: CanonicalTable, row: CanonicalRow, columns: readonly string[]): CanonicalRow {
  return columns.map((name) => {
    const at = table.columns.indexOf(name)
    return at < 0 ? null : (row[at] ?? null)
  })
}

/**
 * Order-independent checksum of rows: each row is its canonical values in column-NAME order as a
 * line of COPY text (the migration assistant's line, checksum.ts), hashed with SHA-256; the hashes are
 * added modulo 2^256 (row-hash.ts). Equal row multisets give equal checksums on every engine.
 * @example const { checksum } = checksumRows(table.columns, table.rows.values())
 */
export function checksumRows(columns: readonly string[], rows: Iterable<CanonicalRow>): TableChecksum {
  const sum = new RowSetChecksum(columns)
  for (const row of rows) sum.add(row)
  return sum.result()
}

/**
 * The content checksum of a whole table streamed from a reader (a live database or a backup's
 * snapshot). Prefer `tableChecksum`, which lets the engine's reader split the work.
 * @example const { rows, checksum } = await checksumRowSource(table.columns, 'sqlite', reader.rows(table))
 */
export async function checksumRowSource(columns: readonly TableColumn[], engine: EngineName, rows: RowSource): Promise<TableChecksum> {
  const canonical = canonicalColumns(columns, engineNamed(engine).valueCodec)
  const sum = new RowSetChecksum(columns.map((c) => c.name))
  if (Symbol.iterator in rows) addRawRows(sum, canonical, rows)
  else {
    const values: (string | null)[] = new Array(canonical.length)
    for await (const row of rows) {
      for (let i = 0; i < canonical.length; i++) values[i] = canonical[i]!(row[i])
      sum.add(values)
    }
  }
  return sum.result()
}

/** What `startTableChecksums` reads through: a table reader, or a snapshot's synchronous rows with its reader's threads. */
export type ChecksumSource = Pick<TableReader, 'engine' | 'startContentChecksums'> & { rows(table: TableInfo): RowSource }

/**
 * The content checksums of `tables` as `reader` sees them: what metadata records at create
 * (`contents`), and what drills, cross-engine restores and tests compare. A reader that can split
 * the work (a SQLite file nobody writes: several threads over rowid ranges) starts it now and
 * `early` lets its helper threads use every core while the caller keeps this thread busy; otherwise
 * `finish` streams each table's rows through `checksumRowSource`. The values are the same either way.
 * @example const sums = await startTableChecksums(reader, await reader.tables()).finish()
 */
export function startTableChecksums(reader: ChecksumSource, tables: readonly TableInfo[], options: { early?: boolean } = {}): ContentChecksumRun {
  if (reader.startContentChecksums !== undefined) return reader.startContentChecksums(tables, options)
  return {
    async finish() {
      const sums = new Map<string, TableChecksum>()
      for (const table of tables) sums.set(table.name, await checksumRowSource(table.columns, reader.engine, reader.rows(table)))
      return sums
    },
    cancel() {},
  }
}

/**
 * The content checksum of every row of one table (`startTableChecksums` for it alone).
 * @example const { rows, checksum } = await tableChecksum(reader, table)
 */
export async function tableChecksum(reader: ChecksumSource, table: TableInfo): Promise<TableChecksum> {
  return (await startTableChecksums(reader, [table]).finish()).get(table.name)!
}

export interface TenantChecksum {
  tenantId: string
  tables: Record<string, TableChecksum>
  /** SHA-256 over every table's name, row count and checksum, in name order. */
  checksum: string
}

export function combineChecksums(tenantId: string, tables: Record<string, TableChecksum>): TenantChecksum {
  const names = Object.keys(tables).sort()
  const hash = createHash('sha256')
  for (const name of names) hash.update(`${name}\t${tables[name]!.rows}\t${tables[name]!.checksum}\n`)
  return { tenantId, tables: Object.fromEntries(names.map((n) => [n, tables[n]!])), checksum: `sha256:${hash.digest('hex')}` }
}
