/**
 * A SQLite table's content checksum (tenant-restore/row-hash.ts) computed from a file nobody writes
 * meanwhile: rows read raw and synchronously, and a big rowid table split into rowid chunks that
 * this thread and helper threads (at most `availableParallelism()` in all, each with its own
 * read-only connection) take from one shared counter; the partial sums are added here (the sum
 * modulo 2^256 does not depend on how the rows are split). WITHOUT ROWID and small tables are read
 * by this thread alone.
 */
import { availableParallelism } from 'node:os'
import type Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import type { RowValue, TableInfo } from '../../db/table-reader.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { startTypeScriptThread } from '../../threads.ts'
import { addRawRows, canonicalColumns, RowSetChecksum, type PartialChecksum, type TableChecksum } from '../../tenant-restore/row-hash.ts'
import { sqliteValueCodec } from './values.ts'

/** Below this many rowids a table is summed by this thread alone (starting a helper thread costs about half a second of CPU). */
export const CHECKSUM_THREADS_FROM_ROWS = 200_000

/** Rowids per chunk: the threads take chunks from one shared counter until none is left. */
export const CHECKSUM_CHUNK_ROWS = 16_384

const MAX_ROWID = 2n ** 63n - 1n

export interface RangeChecksumTask {
  path: string
  table: TableInfo
  /** The rowid's name in SELECTs (`rowid`, or `_rowid_`/`oid` when a column is named rowid). */
  alias: string
  /** Rowids `[low + i * chunk, low + (i + 1) * chunk)` make chunk i; chunks `0 … chunks - 1` cover the table. */
  low: string
  chunk: string
  chunks: number
  /** Int32Array over it: [0] the next chunk to take (Atomics.add); [slot] set by the thread of that slot before its first take. */
  shared: SharedArrayBuffer
  /** This thread's slot (1…); 0 for the calling thread. */
  slot: number
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

/** Sums every row of `table` over an open connection, in this thread. */
export function checksumOnConnection(db: Database.Database, table: TableInfo): RowSetChecksum {
  const sum = new RowSetChecksum(table.columns.map((c) => c.name))
  addRawRows(sum, canonicalColumns(table.columns, sqliteValueCodec), db.prepare(selectColumns(table)).raw(true).safeIntegers(true).iterate() as IterableIterator<RowValue[]>)
  return sum
}

/** Takes chunks of `task` until none is left and sums their rows: what every thread of one table runs. */
export function checksumChunks(db: Database.Database, task: Omit<RangeChecksumTask, 'path'>): RowSetChecksum {
  const { table, alias, chunk, chunks } = task
  const low = BigInt(task.low)
  const size = BigInt(chunk)
  const shared = new Int32Array(task.shared)
  if (task.slot > 0) Atomics.store(shared, task.slot, 1)
  const sum = new RowSetChecksum(table.columns.map((c) => c.name))
  const canonical = canonicalColumns(table.columns, sqliteValueCodec)
  const statement = db.prepare(`${selectColumns(table)} WHERE ${alias} >= ? AND ${alias} <= ?`).raw(true).safeIntegers(true)
  for (let i = Atomics.add(shared, 0, 1); i < chunks; i = Atomics.add(shared, 0, 1)) {
    const from = low + BigInt(i) * size
    const last = from + size - 1n
    addRawRows(sum, canonical, statement.iterate(from, last > MAX_ROWID ? MAX_ROWID : last) as IterableIterator<RowValue[]>)
  }
  return sum
}

/**
 * The content checksum of `table` in the SQLite file `path`, read through `db` (a connection to
 * that file whose view nobody changes meanwhile) and, for a big rowid table, helper threads that
 * open the file read-only and take rowid chunks from the same counter as this thread (a helper
 * that starts late, on a busy machine, simply takes fewer).
 * @example const { rows, checksum } = await sqliteContentChecksum(db, '/tmp/drill/scratch.db', table)
 */
export async function sqliteContentChecksum(db: Database.Database, path: string, table: TableInfo, options: { threads?: number; threadsFromRows?: number; chunkRows?: number; helpersOnly?: boolean } = {}): Promise<TableChecksum> {
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), availableParallelism()))
  const alias = threads > 1 ? rowidAlias(db, table) : undefined
  if (alias === undefined) return checksumOnConnection(db, table).result()
  const [low, high] = db.prepare(`SELECT min(${alias}), max(${alias}) FROM ${quoteIdentifier(table.name)}`).raw(true).safeIntegers(true).get() as [bigint | null, bigint | null]
  if (low === null || high === null || high - low + 1n < BigInt(options.threadsFromRows ?? CHECKSUM_THREADS_FROM_ROWS)) return checksumOnConnection(db, table).result()
  const span = high - low + 1n
  // Sparse rowids (up to 2^63) would make too many chunks for the counter: at most 2^16 of them.
  const chunk = [BigInt(options.chunkRows ?? CHECKSUM_CHUNK_ROWS), (span + 65_535n) / 65_536n].reduce((a, b) => (a > b ? a : b))
  const chunks = Number((span + chunk - 1n) / chunk)
  const count = Math.min(threads - 1, chunks - 1)
  const task: RangeChecksumTask = { path, table, alias, low: String(low), chunk: String(chunk), chunks, shared: new SharedArrayBuffer(4 * (1 + count)), slot: 0 }
  const helpers = Array.from({ length: count }, (_, i) => checksumOnThread({ ...task, slot: i + 1 }))
  // Every awaited helper's failure is seen below; none is left unhandled meanwhile.
  for (const helper of helpers) helper.promise.catch(() => {})
  // helpersOnly (tests): this thread takes no chunk, so the helpers' path is the one checked.
  let sum: RowSetChecksum
  try {
    sum = options.helpersOnly ? new RowSetChecksum(table.columns.map((c) => c.name)) : checksumChunks(db, task)
  } catch (error) {
    for (const helper of helpers) helper.stop()
    throw error
  }
  // Every chunk is taken: a helper that has not marked its slot yet will find none, so it is not waited for.
  const shared = new Int32Array(task.shared)
  const working = helpers.filter((helper, i) => {
    if (options.helpersOnly) return true
    if (Atomics.load(shared, i + 1) === 1) return true
    helper.stop()
    return false
  })
  for (const part of await Promise.all(working.map((helper) => helper.promise))) sum.merge(part)
  return sum.result()
}

function checksumOnThread(task: RangeChecksumTask): { promise: Promise<PartialChecksum>; stop(): void } {
  const worker = startTypeScriptThread(new URL('./_checksum-thread.ts', import.meta.url), task)
  const promise = new Promise<PartialChecksum>((resolve, reject) => {
    let settled = false
    const finish = (error: unknown, part?: PartialChecksum) => {
      if (settled) return
      settled = true
      if (part !== undefined) resolve(part)
      else reject(error)
      void worker.terminate()
    }
    worker.on('message', (message: { part?: PartialChecksum; error?: string }) => {
      if (message.part !== undefined) finish(undefined, message.part)
      else finish(new ToolkitError(`empreinte de contenu de "${task.table.name}" : ${message.error ?? 'échec du thread'}`))
    })
    worker.on('error', (error) => finish(new ToolkitError(`le thread d’empreinte de "${task.table.name}" a échoué : ${describeError(error)}`, { cause: error })))
    worker.on('exit', (code) => finish(new ToolkitError(`le thread d’empreinte de "${task.table.name}" s’est arrêté (code ${code}) avant la fin`)))
  })
  return { promise, stop: () => void worker.terminate() }
}
