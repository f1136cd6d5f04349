/**
 * The order-independent content checksum of a set of rows, with nothing engine-specific in it, so
 * that an engine's own reader (engines/sqlite/content-checksum.ts, also in worker threads) and
 * rows.ts compute the very same value: each row is its canonical values (canonical.ts) in
 * column-NAME order as a line of COPY text (migration/checksum.ts), prefixed by the column names'
 * line, hashed with SHA-256; the hashes are added modulo 2^256, so partial sums over any split of
 * the rows add up to the whole (`RowSetChecksum.merge`).
 */
import { hash as digestOf } from 'node:crypto'
import type { RowValue, TableColumn, ValueCodec } from '../db/table-reader.ts'
import { escapeCopyText } from '../migration/checksum.ts'
import { canonicalValue, columnKind } from './canonical.ts'

export interface TableChecksum {
  rows: number
  /** `sum256:<hex>`: the sum modulo 2^256 of each row's SHA-256, whatever order the rows come in. */
  checksum: string
}

/** A partial sum that crosses a thread boundary: the row count and the eight 32-bit words, most significant first. */
export interface PartialChecksum {
  rows: number
  words: number[]
}

/**
 * What every row's line starts with: the column names in name order, tab-separated, and a newline;
 * `order[i]` is the position in `columns` of the i-th name in that order.
 */
export function rowLineHeader(columns: readonly string[]): { order: number[]; header: string } {
  const sorted = columns.map((name, i) => ({ name, i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return { order: sorted.map((o) => o.i), header: `${sorted.map((o) => o.name).join('\t')}\n` }
}

/**
 * The accumulator: the sum modulo 2^256 is kept as eight 32-bit words, most significant first
 * (a BigInt per row cost a third of a drill's checksum pass).
 */
export class RowSetChecksum {
  private readonly order: number[]
  private readonly header: string
  private readonly words = new Uint32Array(8)
  private count = 0

  constructor(columns: readonly string[]) {
    ;({ order: this.order, header: this.header } = rowLineHeader(columns))
  }

  /** Adds one row of canonical values (null for NULL), in the constructor's column order. */
  add(row: readonly (string | null | undefined)[]): void {
    let line = this.header
    const order = this.order
    for (let i = 0; i < order.length; i++) {
      const value = row[order[i]!]
      line += (i === 0 ? '' : '\t') + (value === null || value === undefined ? '\\N' : escapeCopyText(value))
    }
    this.addDigest(digestOf('sha256', `${line}\n`, 'buffer'))
  }

  /** Adds one row's SHA-256. */
  private addDigest(digest: Buffer): void {
    const words = this.words
    let carry = 0
    for (let i = 7; i >= 0; i--) {
      const sum = words[i]! + digest.readUInt32BE(i * 4) + carry
      words[i] = sum >>> 0
      carry = sum > 0xffffffff ? 1 : 0
    }
    this.count++
  }

  /** Adds a partial sum (another part of the same table's rows). */
  merge(part: PartialChecksum): void {
    let carry = 0
    for (let i = 7; i >= 0; i--) {
      const sum = this.words[i]! + part.words[i]! + carry
      this.words[i] = sum >>> 0
      carry = sum > 0xffffffff ? 1 : 0
    }
    this.count += part.rows
  }

  partial(): PartialChecksum {
    return { rows: this.count, words: [...this.words] }
  }

  result(): TableChecksum {
    return { rows: this.count, checksum: `sum256:${[...this.words].map((w) => w.toString(16).padStart(8, '0')).join('')}` }
  }
}

/**
 * One function per column from a value as the engine's reader delivers it to its canonical text:
 * the exporters' text (the engine's codec), then canonical.ts for the column's kind — chosen once,
 * so the per-value work is the codec and, for kinds other than text, one canonicalisation.
 */
export function canonicalColumns(columns: readonly TableColumn[], codecFor: (column: TableColumn) => ValueCodec): ((value: RowValue | undefined) => string | null)[] {
  return columns.map((column) => {
    const text = codecFor(column).text
    const kind = columnKind(column.declaredType)
    if (kind === 'text' || kind === 'integer' || kind === 'boolean' || kind === 'bytes') return (value) => text(value ?? null)
    return (value) => canonicalValue(kind, text(value ?? null))
  })
}

/**
 * The checksum of rows as a reader delivers them (arrays in `columns` order), synchronously.
 * @example const sum = new RowSetChecksum(names); addRawRows(sum, canonicalColumns(columns, codec), statement.iterate())
 */
export function addRawRows(sum: RowSetChecksum, canonical: readonly ((value: RowValue | undefined) => string | null)[], rows: Iterable<readonly RowValue[]>): void {
  const width = canonical.length
  const values: (string | null)[] = new Array(width)
  for (const row of rows) {
    for (let i = 0; i < width; i++) values[i] = canonical[i]!(row[i])
    sum.add(values)
  }
}
