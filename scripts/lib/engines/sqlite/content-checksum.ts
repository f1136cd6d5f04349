/**
 * A SQLite table's content checksum (tenant-restore/row-hash.ts) computed from a file nobody writes
 * meanwhile: rows read raw and synchronously, and a big rowid table split into rowid chunks that
 * this thread and helper threads (at most `availableParallelism()` in all, each with its own
 * read-only connection) take from one shared counter; the partial sums are added here (the sum
 * modulo 2^256 does not depend on how the rows are split). WITHOUT ROWID and small tables are read
 * by this thread alone. Where the build compiled the extension (extension.ts), each table or chunk
 * is summed in C by its `content_checksum` aggregate, and in JavaScript only where it answers NULL
 * (a value only JavaScript canonicalises) or the table has a kind it leaves out (decimal, json).
 */
import { availableParallelism } from 'node:os'
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { ContentChecksumRun, RowValue, TableInfo } from '../../db/table-reader.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { startTypeScriptThread } from '../../threads.ts'
import { addRawRows, canonicalColumns, RowSetChecksum, rowLineHeader, type PartialChecksum, type TableChecksum } from '../../tenant-restore/row-hash.ts'
import { columnKind } from '../../tenant-restore/canonical.ts'
import { hasExtension, loadExtension, MAX_FUNCTION_ARGUMENTS } from './extension.ts'
import { isBooleanColumn, sqliteValueCodec } from './values.ts'

/** Below this many rowids a table is summed by this thread alone (starting a helper thread costs about half a second of CPU). */
export const CHECKSUM_THREADS_FROM_ROWS = 200_000

/** Rowids per chunk: the threads take chunks from one shared counter until none is left. */
export const CHECKSUM_CHUNK_ROWS = 16_384

const MAX_ROWID = 2n ** 63n - 1n

/** One table split in rowid chunks: chunk i is rowids `[low + i * chunk, low + (i + 1) * chunk)`. */
export interface RangeTable {
  table: TableInfo
  /** The rowid's name in SELECTs (`rowid`, or `_rowid_`/`oid` when a column is named rowid). */
  alias: string
  low: string
  chunk: string
  chunks: number
}

export interface RangeChecksumTask {
  path: string
  tables: RangeTable[]
  /**
   * Int32Array over it: [t] the next chunk of table t to take (Atomics.add); [tables.length + slot]
   * set by the thread of that slot before its first take.
   */
  shared: SharedArrayBuffer
  /** This thread's slot (1…); 0 for the calling thread. */
  slot: number
  /** Started early: helper threads run at the lowest priority, so that the caller's own work (a restore's check, which a drill times) keeps its core. */
  early: boolean
}

/** The rowid alias a SELECT can name, or undefined for a WITHOUT ROWID table (or one whose columns shadow every alias). */
function rowidAlias(db: Database.Database, table: TableInfo): string | undefined {
  const withoutRowid = db.prepare(`SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?`).pluck().get(table.name) === 1
  if (withoutRowid) return undefined
  const names = new Set(table.columns.map((c) => c.name.toLowerCase()))
  return ['rowid', '_rowid_', 'oid'].find((a) => !names.has(a))
}

function selectColumns(table: TableInfo): string {
  return `SELECT ${table.columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${quoteIdentifier(table.name)}`
}

/** extension.c's letter for each canonical kind it computes itself. */
const KIND_LETTERS: Partial<Record<ReturnType<typeof columnKind>, string>> = { text: 't', integer: 't', boolean: 't', bytes: 't', real: 'r', datetime: 'd' }

/** content_checksum takes the header and the kinds before the values. */
const MAX_SUMMED_COLUMNS = MAX_FUNCTION_ARGUMENTS - 2

/**
 * The sum of `table`'s rows by the extension's `content_checksum` — all of them, or those whose rowid
 * `alias` is in [from, to] — or undefined where JavaScript must sum them (no extension on `db`, a
 * column kind it leaves out, or a value it answers NULL for).
 */
export function checksumInC(db: Database.Database, table: TableInfo, range?: { alias: string; from: bigint; to: bigint }): PartialChecksum | undefined {
  if (!hasExtension(db) || table.columns.length === 0 || table.columns.length > MAX_SUMMED_COLUMNS) return undefined
  const { order, header } = rowLineHeader(table.columns.map((c) => c.name))
  const columns = order.map((i) => table.columns[i]!)
  const letters = columns.map((column) => KIND_LETTERS[columnKind(column.declaredType)])
  if (letters.some((letter) => letter === undefined)) return undefined
  const kinds = columns.map((column, i) => (isBooleanColumn(column) ? 'b' : 'v') + letters[i]).join('')
  const where = range === undefined ? '' : ` WHERE ${range.alias} >= ? AND ${range.alias} <= ?`
  const sum = db.prepare(`SELECT content_checksum(?, ?, ${columns.map((c) => quoteIdentifier(c.name)).join(', ')}) FROM ${quoteIdentifier(table.name)}${where}`).pluck()
  const blob = (range === undefined ? sum.get(header, kinds) : sum.get(header, kinds, range.from, range.to)) as Buffer | null
  if (blob === null) return undefined
  return { rows: Number(blob.readBigInt64LE(0)), words: Array.from({ length: 8 }, (_, i) => blob.readUInt32BE(8 + 4 * i)) }
}

/** Sums every row of `table` over an open connection, in this thread. */
export function checksumOnConnection(db: Database.Database, table: TableInfo): RowSetChecksum {
  const sum = new RowSetChecksum(table.columns.map((c) => c.name))
  const partial = checksumInC(db, table)
  if (partial !== undefined) sum.merge(partial)
  else addRawRows(sum, canonicalColumns(table.columns, sqliteValueCodec), db.prepare(selectColumns(table)).raw(true).safeIntegers(true).iterate() as IterableIterator<RowValue[]>)
  return sum
}

/**
 * Takes chunks of each table of `task` in turn until none is left, and sums their rows (one sum per
 * table, in `task.tables` order): what every thread of a run executes.
 */
export function checksumChunks(db: Database.Database, task: Omit<RangeChecksumTask, 'path'>): RowSetChecksum[] {
  const shared = new Int32Array(task.shared)
  if (task.slot > 0) Atomics.store(shared, task.tables.length + task.slot, 1)
  return task.tables.map(({ table, alias, chunk, chunks, low }, t) => {
    const sum = new RowSetChecksum(table.columns.map((c) => c.name))
    const canonical = canonicalColumns(table.columns, sqliteValueCodec)
    const statement = db.prepare(`${selectColumns(table)} WHERE ${alias} >= ? AND ${alias} <= ?`).raw(true).safeIntegers(true)
    const size = BigInt(chunk)
    for (let i = Atomics.add(shared, t, 1); i < chunks; i = Atomics.add(shared, t, 1)) {
      const from = BigInt(low) + BigInt(i) * size
      const last = from + size - 1n
      const to = last > MAX_ROWID ? MAX_ROWID : last
      const partial = checksumInC(db, table, { alias, from, to })
      if (partial !== undefined) sum.merge(partial)
      else addRawRows(sum, canonical, statement.iterate(from, to) as IterableIterator<RowValue[]>)
    }
    return sum
  })
}

export interface ContentChecksumOptions {
  /** Threads in all, this one included (default and maximum: `availableParallelism()`). */
  threads?: number
  /** Rowid span from which a table is split across threads (default `CHECKSUM_THREADS_FROM_ROWS`). */
  threadsFromRows?: number
  chunkRows?: number
  /**
   * Start now and let this thread join at `finish`: one helper thread per core, for a caller that
   * keeps this thread busy meanwhile (a drill, while the restore checks the file).
   */
  early?: boolean
  /** Tests: this thread takes no chunk, so the helpers' path is the one checked. */
  helpersOnly?: boolean
}

/**
 * The content checksums of `tables` in the SQLite file `path`, read through `db` (a connection to
 * that file whose view nobody changes meanwhile) and, for big rowid tables, helper threads that
 * open the file read-only and take rowid chunks from the same counters as this thread (a helper
 * that starts late, on a busy machine, simply takes fewer). Helpers start at once; the rest of the
 * work is done by `finish`.
 * @example const sums = await startSqliteContentChecksums(db, '/tmp/drill/scratch.db', tables).finish()
 */
export function startSqliteContentChecksums(db: Database.Database, path: string, tables: readonly TableInfo[], options: ContentChecksumOptions = {}): ContentChecksumRun {
  loadExtension(db)
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), availableParallelism()))
  const split: RangeTable[] = []
  const alone: TableInfo[] = []
  for (const table of tables) {
    const range = threads > 1 ? rangeOf(db, table, options) : undefined
    if (range === undefined) alone.push(table)
    else split.push(range)
  }
  const chunks = split.reduce((n, t) => n + t.chunks, 0)
  // No more helpers than chunks left for them; helpersOnly (tests) has at least one, this thread taking none.
  const count = split.length === 0 ? 0 : options.helpersOnly ? Math.max(1, Math.min(threads, chunks)) : Math.min(options.early ? threads : threads - 1, chunks - 1)
  const task: RangeChecksumTask = { path, tables: split, shared: new SharedArrayBuffer(4 * (split.length + 1 + count)), slot: 0, early: options.early === true }
  const helpers = Array.from({ length: count }, (_, i) => checksumOnThread({ ...task, slot: i + 1 }))
  // Every awaited helper's failure is seen in finish; none is left unhandled meanwhile.
  for (const helper of helpers) helper.promise.catch(() => {})
  const cancel = () => helpers.forEach((helper) => helper.stop())
  return {
    cancel,
    async finish() {
      const sums = new Map<string, TableChecksum>()
      let mine: RowSetChecksum[]
      try {
        for (const table of alone) sums.set(table.name, checksumOnConnection(db, table).result())
        mine = options.helpersOnly ? split.map((t) => new RowSetChecksum(t.table.columns.map((c) => c.name))) : checksumChunks(db, task)
      } catch (error) {
        cancel()
        throw error
      }
      // Every chunk is taken: a helper that has not marked its slot yet will find none, so it is not waited for.
      const shared = new Int32Array(task.shared)
      const working = helpers.filter((helper, i) => {
        if (options.helpersOnly || Atomics.load(shared, split.length + i + 1) === 1) return true
        helper.stop()
        return false
      })
      for (const parts of await Promise.all(working.map((helper) => helper.promise))) parts.forEach((part, t) => mine[t]!.merge(part))
      split.forEach((t, i) => sums.set(t.table.name, mine[i]!.result()))
      return sums
    },
  }
}

/** The rowid chunks of a table worth splitting across threads, or undefined (small, or WITHOUT ROWID). */
function rangeOf(db: Database.Database, table: TableInfo, options: ContentChecksumOptions): RangeTable | undefined {
  const alias = rowidAlias(db, table)
  if (alias === undefined) return undefined
  const [low, high] = db.prepare(`SELECT min(${alias}), max(${alias}) FROM ${quoteIdentifier(table.name)}`).raw(true).safeIntegers(true).get() as [bigint | null, bigint | null]
  if (low === null || high === null || high - low + 1n < BigInt(options.threadsFromRows ?? CHECKSUM_THREADS_FROM_ROWS)) return undefined
  const span = high - low + 1n
  // Sparse rowids (up to 2^63) would make too many chunks for the counter: at most 2^16 of them.
  const chunk = [BigInt(options.chunkRows ?? CHECKSUM_CHUNK_ROWS), (span + 65_535n) / 65_536n].reduce((a, b) => (a > b ? a : b))
  return { table, alias, low: String(low), chunk: String(chunk), chunks: Number((span + chunk - 1n) / chunk) }
}

/** The content checksum of one table (`startSqliteContentChecksums` for it alone). */
export async function sqliteContentChecksum(db: Database.Database, path: string, table: TableInfo, options: ContentChecksumOptions = {}): Promise<TableChecksum> {
  return (await startSqliteContentChecksums(db, path, [table], options).finish()).get(table.name)!
}

function checksumOnThread(task: RangeChecksumTask): { promise: Promise<PartialChecksum[]>; stop(): void } {
  const worker = startTypeScriptThread(new URL('./_checksum-thread.ts', import.meta.url), task)
  const names = task.tables.map((t) => `"${t.table.name}"`).join(', ')
  const promise = new Promise<PartialChecksum[]>((resolve, reject) => {
    let settled = false
    const finish = (error: unknown, parts?: PartialChecksum[]) => {
      if (settled) return
      settled = true
      if (parts !== undefined) resolve(parts)
      else reject(error)
      void worker.terminate()
    }
    worker.on('message', (message: { parts?: PartialChecksum[]; error?: string }) => {
      if (message.parts !== undefined) finish(undefined, message.parts)
      else finish(new ToolkitError(`empreinte de contenu de ${names} : ${message.error ?? 'échec du thread'}`))
    })
    worker.on('error', (error) => finish(new ToolkitError(`le thread d’empreinte de ${names} a échoué : ${describeError(error)}`, { cause: error })))
    worker.on('exit', (code) => finish(new ToolkitError(`le thread d’empreinte de ${names} s’est arrêté (code ${code}) avant la fin`)))
  })
  return { promise, stop: () => void worker.terminate() }
}
