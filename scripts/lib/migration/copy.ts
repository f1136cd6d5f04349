/**
 * Copies one table from the source snapshot into the (temporary) SQLite target: COPY batches in,
 * each value converted, prepared inserts in large transactions out, a checksum of the source's
 * canonical values on the way. At most one batch of rows is in memory at a time.
 */
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../db/connection.ts'
import { ToolkitError, describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { SERIALISED_NULL, TableChecksum, serialiseValue } from './checksum.ts'
import { UnconvertibleValueError, type SqliteValue } from './conversion.ts'
import type { TableWork } from './plan.ts'
import type { PostgresSource } from './source.ts'

export interface CopyTableOptions {
  /** Rows per transaction on the target. Default 50 000. */
  transactionRows?: number
  onProgress?: ProgressListener
  signal?: AbortSignal
  /** Called after each commit with the number of rows committed so far (the verifier follows it). */
  onCommit?: (rows: number) => void
}

export interface CopiedTable {
  name: string
  rows: number
  checksum: string
  ms: number
}

/** The error of a run stopped by its AbortSignal (Ctrl-C). */
export function interruptedError(): ToolkitError {
  return new ToolkitError('interrupted: the migration was stopped before it finished; nothing was written', {
    hint: 'Run it again; it starts from scratch.',
  })
}

/**
 * Copies `work.source` into the table of the same name in `db` (which must exist).
 * @example const copied = await copyTable(source, work, db, { onProgress }) // { rows, checksum: 'sha256:…' }
 */
export async function copyTable(source: PostgresSource, work: TableWork, db: Database.Database, options: CopyTableOptions = {}): Promise<CopiedTable> {
  const started = performance.now()
  const table = work.source
  const columns = table.columns.map((c) => quoteIdentifier(c.name))
  const insert = db.prepare(`INSERT INTO ${quoteIdentifier(table.name)} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
  const converters = work.converters
  const width = converters.length
  const transactionRows = options.transactionRows ?? 50_000
  const checksum = new TableChecksum()
  const values: SqliteValue[] = new Array(width)
  let inTransaction = 0
  let lastProgress = 0
  const report = (force: boolean) => {
    const now = performance.now()
    if (!force && now - lastProgress < 100) return
    lastProgress = now
    options.onProgress?.({ label: table.name, done: checksum.rows, total: work.planned.rows, unit: 'rows' })
  }
  report(true)
  db.exec('BEGIN')
  try {
    for await (const batch of source.rows(table)) {
      if (options.signal?.aborted) throw interruptedError()
      for (const row of batch) {
        if (row.length !== width) throw new ToolkitError(`table "${table.name}": COPY returned ${row.length} values for ${width} columns`)
        let serialised = ''
        let column = 0
        try {
          for (; column < width; column++) {
            const text = row[column]!
            if (text === null) {
              values[column] = null
              serialised += SERIALISED_NULL
            } else {
              const converter = converters[column]!
              values[column] = converter.toSqlite(text)
              serialised += serialiseValue(converter.canonicalFromPostgres(text))
            }
          }
          insert.run(values)
        } catch (error) {
          throw locate(error, work, row, column < width ? column : undefined)
        }
        checksum.addSerialisedRow(`${serialised}\n`)
        if (++inTransaction >= transactionRows) {
          db.exec('COMMIT')
          options.onCommit?.(checksum.rows)
          db.exec('BEGIN')
          inTransaction = 0
        }
      }
      report(false)
    }
    db.exec('COMMIT')
    options.onCommit?.(checksum.rows)
  } catch (error) {
    // The temporary target is thrown away; a rollback is only good manners (journal_mode is OFF).
    if (db.inTransaction) {
      try {
        db.exec('ROLLBACK')
      } catch {}
    }
    if (error instanceof ToolkitError) throw error
    throw new ToolkitError(`copying table "${table.name}" failed: ${describeError(error)}`, { cause: error })
  }
  report(true)
  return { name: table.name, rows: checksum.rows, checksum: checksum.digest(), ms: performance.now() - started }
}

/** Adds the table, column and primary key of the row to a conversion or insert error. */
function locate(error: unknown, work: TableWork, row: (string | null)[], column: number | undefined): ToolkitError {
  const table = work.source
  const keys = table.columns.map((c, i) => [c, row[i]] as const).filter(([c]) => c.primaryKeyPosition > 0)
  const where = keys.length > 0 ? ` row ${keys.map(([c, v]) => `${c.name}=${v ?? 'NULL'}`).join(',')}` : ''
  const place = column === undefined ? `table "${table.name}"${where}` : `table "${table.name}", column "${table.columns[column]!.name}",${where}`
  if (error instanceof UnconvertibleValueError) return new ToolkitError(`${place}: ${error.message}`, { hint: error.hint, cause: error })
  return new ToolkitError(`${place}: ${describeError(error)}`, { cause: error })
}
