/**
 * Copies one table from the source snapshot into the (temporary) SQLite target: COPY batches in,
 * each value converted, prepared inserts in large transactions out, a checksum of the source's
 * canonical values on the way. At most one batch of rows is in memory at a time. Where every
 * column's conversion has its C twin (copy-text-in-c.ts), the extension converts and inserts the
 * batch's lines itself; JavaScript takes over from a line it leaves.
 */
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../db/connection.ts'
import { ToolkitError, describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { lineOffset, parseCopyText } from './_copy-text.ts'
import { TableChecksum, copyTextLine } from './checksum.ts'
import { copyLinesInserter } from './copy-text-in-c.ts'
import { UnconvertibleValueError, type SqliteValue } from './conversion.ts'
import type { TableWork } from './plan.ts'
import type { PostgresSource } from './source.ts'

// SQLite's limit on parameters in one statement (SQLITE_MAX_VARIABLE_NUMBER, 32766 since 3.32).
const MAX_VARIABLES = 32_766

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
  return new ToolkitError('interrompu : la migration a été arrêtée avant la fin ; rien n’a été écrit', {
    hint: 'Relancez-la : elle repart de zéro.',
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
  const converters = work.converters
  const width = converters.length
  // Several rows per INSERT statement: fewer calls into SQLite (about 20% faster than one row each).
  const rowsPerInsert = Math.max(1, Math.min(16, Math.floor(MAX_VARIABLES / width)))
  const head = `INSERT INTO ${quoteIdentifier(table.name)} (${columns.join(', ')}) VALUES `
  const tuple = `(${columns.map(() => '?').join(', ')})`
  const insertOne = db.prepare(head + tuple)
  const insertMany = db.prepare(head + Array(rowsPerInsert).fill(tuple).join(', '))
  const transactionRows = options.transactionRows ?? 50_000
  const checksum = new TableChecksum()
  const pending: SqliteValue[] = new Array(rowsPerInsert * width)
  const pendingRows: (string | null)[][] = []
  let rows = 0
  let committed = 0
  let lastProgress = 0
  const report = (force: boolean) => {
    const now = performance.now()
    if (!force && now - lastProgress < 100) return
    lastProgress = now
    options.onProgress?.({ label: table.name, done: rows, total: work.planned.rows, unit: 'rows' })
  }
  // When every canonical value is the PostgreSQL text itself, the checksum is that of the raw COPY bytes.
  const identity = converters.every((converter) => converter.identity)
  const canonical: (string | null)[] = new Array(width)
  const commitIfDue = () => {
    if (rows - committed >= transactionRows) {
      db.exec('COMMIT')
      committed = rows
      options.onCommit?.(rows)
      db.exec('BEGIN')
    }
  }
  const flush = () => {
    const count = pendingRows.length
    if (count === 0) return
    try {
      if (count === rowsPerInsert) insertMany.run(pending)
      else for (let r = 0; r < count; r++) insertOne.run(pending.slice(r * width, (r + 1) * width))
    } catch (error) {
      if (!String((error as { code?: unknown }).code).startsWith('SQLITE_CONSTRAINT')) throw error
      // Which row broke the constraint? The failed statement left nothing behind: insert them one by one.
      for (let r = 0; r < count; r++) {
        try {
          insertOne.run(pending.slice(r * width, (r + 1) * width))
        } catch (rowError) {
          throw locate(rowError, work, pendingRows[r]!, undefined)
        }
      }
      throw locate(error, work, pendingRows[0]!, undefined)
    }
    rows += count
    pendingRows.length = 0
    commitIfDue()
  }
  /** Converts and inserts parsed rows (and adds their canonical lines when the checksum needs them). */
  const copyRows = (parsed: (string | null)[][]) => {
    for (const row of parsed) {
      if (row.length !== width) throw new ToolkitError(`table "${table.name}" : COPY a rendu ${row.length} valeurs pour ${width} colonnes`)
      const offset = pendingRows.length * width
      let column = 0
      try {
        for (; column < width; column++) {
          const text = row[column]!
          pending[offset + column] = text === null ? null : converters[column]!.toSqlite(text)
        }
      } catch (error) {
        throw locate(error, work, row, column)
      }
      pendingRows.push(row)
      if (pendingRows.length === rowsPerInsert) flush()
      if (!identity) {
        for (let i = 0; i < width; i++) {
          const text = row[i]!
          canonical[i] = text === null ? null : converters[i]!.canonicalFromPostgres(text)
        }
        checksum.addLine(copyTextLine(canonical))
      }
    }
  }
  report(true)
  // The extension inserts the lines of such tables without JavaScript seeing their values.
  const insertLines = identity ? copyLinesInserter(db, head + tuple, converters) : undefined
  db.exec('BEGIN')
  try {
    for await (const lines of source.lines(table)) {
      if (options.signal?.aborted) throw interruptedError()
      const inserted = insertLines?.(lines) ?? 0
      rows += inserted
      // A line the extension left (a value only JavaScript converts or refuses) and those after it.
      const parsed = parseCopyText(lines.subarray(lineOffset(lines, inserted)))
      copyRows(parsed)
      // Before the extension inserts the next lines, so rows keep their order.
      if (insertLines !== undefined) flush()
      if (identity) checksum.addRaw(lines, inserted + parsed.length)
      commitIfDue()
      report(false)
    }
    flush()
    db.exec('COMMIT')
    options.onCommit?.(rows)
  } catch (error) {
    // The temporary target is thrown away; the rollback only ends the transaction.
    if (db.inTransaction) {
      try {
        db.exec('ROLLBACK')
      } catch {}
    }
    if (error instanceof ToolkitError) throw error
    throw new ToolkitError(`la copie de la table "${table.name}" a échoué : ${describeError(error)}`, { cause: error })
  }
  report(true)
  if (checksum.rows !== rows) throw new ToolkitError(`table "${table.name}" : ${rows} lignes copiées mais ${checksum.rows} passées à l’empreinte`)
  return { name: table.name, rows, checksum: checksum.digest(), ms: performance.now() - started }
}

/** Adds the table, column and primary key of the row to a conversion or insert error. */
function locate(error: unknown, work: TableWork, row: (string | null)[], column: number | undefined): ToolkitError {
  const table = work.source
  const keys = table.columns.map((c, i) => [c, row[i]] as const).filter(([c]) => c.primaryKeyPosition > 0)
  const where = keys.length > 0 ? ` ligne ${keys.map(([c, v]) => `${c.name}=${v ?? 'NULL'}`).join(',')}` : ''
  const place = column === undefined ? `table "${table.name}"${where}` : `table "${table.name}", colonne "${table.columns[column]!.name}",${where}`
  if (error instanceof UnconvertibleValueError) return new ToolkitError(`${place} : ${error.message}`, { hint: error.hint, cause: error })
  return new ToolkitError(`${place} : ${describeError(error)}`, { cause: error })
}
