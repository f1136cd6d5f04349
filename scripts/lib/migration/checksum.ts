/**
 * The per-table checksum both sides of a migration compute the same way: SHA-256 over each row's
 * canonical values (see conversion.ts) written as a line of PostgreSQL's COPY text format — values
 * escaped as COPY escapes them, `\N` for NULL, tabs between, a newline after — in the order the rows
 * were copied: the source's primary-key order, which is the target's rowid order because the target
 * is written in that order. When every canonical value is the PostgreSQL text itself, the source's
 * line is the COPY output byte for byte, so the source side hashes the raw stream.
 */
import { createHash, type Hash } from 'node:crypto'

const FLUSH_CHARS = 1 << 20
const SPECIAL = /[\\\b\f\n\r\t\v]/
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' }

/** A value as PostgreSQL's COPY writes it in text format (other control characters stay as they are). */
export function escapeCopyText(value: string): string {
  return SPECIAL.test(value) ? value.replace(/[\\\b\f\n\r\t\v]/g, (c) => ESCAPES[c]!) : value
}

/** One row's line: canonical values (null for NULL), escaped and joined. */
export function copyTextLine(values: readonly (string | null)[]): string {
  let line = ''
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    line += (i === 0 ? '' : '\t') + (value === null || value === undefined ? '\\N' : escapeCopyText(value))
  }
  return `${line}\n`
}

export class TableChecksum {
  rows = 0
  private readonly hash: Hash = createHash('sha256')
  private pending = ''

  /** Adds one row's line (see copyTextLine). */
  addLine(line: string): void {
    this.rows++
    this.pending += line
    if (this.pending.length > FLUSH_CHARS) {
      this.hash.update(this.pending)
      this.pending = ''
    }
  }

  /** Adds `rows` complete lines of raw COPY text output. */
  addRaw(bytes: Buffer, rows: number): void {
    if (this.pending !== '') {
      this.hash.update(this.pending)
      this.pending = ''
    }
    this.hash.update(bytes)
    this.rows += rows
  }

  /** Counts `rows` lines whose bytes came in chunks of unknown line counts (`addRaw(chunk, 0)`). */
  countRows(rows: number): void {
    this.rows += rows
  }

  /** `sha256:<hex>` of every line added. */
  digest(): string {
    this.hash.update(this.pending)
    this.pending = ''
    return `sha256:${this.hash.digest('hex')}`
  }
}
