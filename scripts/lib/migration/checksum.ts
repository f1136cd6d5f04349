/**
 * The per-table checksum both sides of a migration compute the same way: SHA-256 over each row's
 * canonical values (see conversion.ts), in the order the rows were copied — the source's primary-key
 * order, which is the target's rowid order because the target is written in that order.
 * A row is serialised as `=<value>\0` per value and `\0` for NULL, then `\n`: no two rows collide,
 * because canonical values hold no NUL (PostgreSQL text cannot; the markers of unexpected values do,
 * which changes the row's count of NULs and so can never match a well-formed row).
 */
import { createHash, type Hash } from 'node:crypto'

const FLUSH_CHARS = 1 << 20

export class TableChecksum {
  rows = 0
  private readonly hash: Hash = createHash('sha256')
  private pending = ''

  /** Adds one row, already serialised with `serialiseValue` for each value and `\n` at its end. */
  addSerialisedRow(row: string): void {
    this.rows++
    this.pending += row
    if (this.pending.length > FLUSH_CHARS) {
      this.hash.update(this.pending)
      this.pending = ''
    }
  }

  /** `sha256:<hex>` of every row added. */
  digest(): string {
    this.hash.update(this.pending)
    this.pending = ''
    return `sha256:${this.hash.digest('hex')}`
  }
}

/** The serialisation of NULL in a row. */
export const SERIALISED_NULL = '\0'

/** One canonical value (or null) as it enters a row's serialisation. */
export function serialiseValue(canonical: string | null): string {
  return canonical === null ? SERIALISED_NULL : `=${canonical}\0`
}
