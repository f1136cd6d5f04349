/**
 * A tenant's rows of one table in canonical form (canonical.ts), keyed by primary key, and the
 * order-independent content checksum of such a set of rows.
 */
import { createHash, hash as digestOf } from 'node:crypto'
import type { RowSource, RowValue, TableColumn } from '../db/table-reader.ts'
import type { EngineName } from '../db/url.ts'
import { engineNamed } from '../engines/index.ts'
import type { ValueKind } from '../migration/conversion.ts'
import { copyTextLine } from '../migration/checksum.ts'
import { canonicalValue, columnKind } from './canonical.ts'

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
  const codecs = columns.map(engineNamed(engine).valueCodec)
  const kinds = columns.map((c) => columnKind(c.declaredType))
  return (row) => row.map((value, i) => canonicalValue(kinds[i]!, codecs[i]!.text(value ?? null)))
}

/** The same row with its values in `columns` order (names); absent columns become null. */
export function reorder(table: CanonicalTable, row: CanonicalRow, columns: readonly string[]): CanonicalRow {
  return columns.map((name) => {
    const at = table.columns.indexOf(name)
    return at < 0 ? null : (row[at] ?? null)
  })
}

export interface TableChecksum {
  rows: number
  /** `sum256:<hex>`: the sum modulo 2^256 of each row's SHA-256, whatever order the rows come in. */
  checksum: string
}

/**
 * Order-independent checksum of rows: each row is its canonical values in column-NAME order as a
 * line of COPY text (the migration assistant's line, checksum.ts), hashed with SHA-256; the hashes are
 * added modulo 2^256. Equal row multisets give equal checksums on every engine.
 * @example const { checksum } = checksumRows(table.columns, table.rows.values())
 */
export function checksumRows(columns: readonly string[], rows: Iterable<CanonicalRow>): TableChecksum {
  const sum = new RowSetChecksum(columns)
  for (const row of rows) sum.add(row)
  return sum.result()
}

/**
 * The accumulator behind checksumRows, for rows that arrive one by one (streamed). The sum modulo
 * 2^256 is kept as eight 32-bit words, most significant first (a BigInt per row cost a third of a
 * drill's checksum pass).
 */
export class RowSetChecksum {
  private readonly order: number[]
  private readonly header: string
  private readonly words = new Uint32Array(8)
  private count = 0

  constructor(columns: readonly string[]) {
    const sorted = columns.map((name, i) => ({ name, i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    this.order = sorted.map((o) => o.i)
    this.header = `${sorted.map((o) => o.name).join('\t')}\n`
  }

  add(row: CanonicalRow): void {
    const digest = digestOf('sha256', this.header + copyTextLine(this.order.map((i) => row[i] ?? null)), 'buffer')
    let carry = 0
    for (let i = 7; i >= 0; i--) {
      const sum = this.words[i]! + digest.readUInt32BE(i * 4) + carry
      this.words[i] = sum >>> 0
      carry = sum > 0xffffffff ? 1 : 0
    }
    this.count++
  }

  result(): TableChecksum {
    return { rows: this.count, checksum: `sum256:${[...this.words].map((w) => w.toString(16).padStart(8, '0')).join('')}` }
  }
}

/**
 * The content checksum of a whole table streamed from a reader (a live database or a backup's
 * snapshot): what metadata records at create and a drill compares.
 * @example const { rows, checksum } = await checksumRowSource(table.columns, 'sqlite', reader.rows(table))
 */
export async function checksumRowSource(columns: readonly TableColumn[], engine: EngineName, rows: RowSource): Promise<TableChecksum> {
  const canonical = canonicalizer(columns, engine)
  const sum = new RowSetChecksum(columns.map((c) => c.name))
  if (Symbol.iterator in rows) for (const row of rows) sum.add(canonical(row))
  else for await (const row of rows) sum.add(canonical(row))
  return sum.result()
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
