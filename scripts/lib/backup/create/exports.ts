/**
 * Writing a backup's exports (export.sql, data.json, exports/<table>.csv) into the staging folder,
 * each file hashed as it is written and handed over (`onFile`) the moment it is complete, so the
 * archive packs it while the next one is written.
 *
 * A SQLite file snapshot (SQLite and D1 sources) is exported on a helper thread: the main thread
 * stays free to feed the compression threads (measured on the 1M-dossier backup, formatting on the
 * main thread starved them), and the helper's young generation is capped, which keeps the heap of
 * gigabytes of short-lived strings small (uncapped, V8 grew it by ~80 MB). A PostgreSQL snapshot
 * lives in a transaction of this thread, so it is exported here. So is a small SQLite file: the
 * thread costs ~0.25 s of CPU and ~30 MB to start (it boots tsx), more than its exports take.
 */
import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { startTypeScriptThread } from '../../threads.ts'
import type { RowSource, TableInfo, ValueCodecFor } from '../../db/table-reader.ts'
import type { EngineName } from '../../db/url.ts'
import type { InPlaceRead, Snapshot } from '../../engines/snapshot.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import type { ProgressEvent, ProgressListener } from '../../progress.ts'
import { csvHeader, csvRowFormatter, exportCsv, exportCsvChunks } from '../exporters/csv.ts'
import { exportJsonDocument, jsonDocument, jsonRowFormatter, runRecorder, type DataJsonRun } from '../exporters/json.ts'
import { writeRows } from '../exporters/_rows.ts'
import { writeSqliteScript } from '../exporters/sql.ts'
import { HashedFile, TextSink, type WrittenFile } from '../../fs/hashed-file.ts'
import { CSV_DIR, JSON_EXPORT_FILE, SQL_EXPORT_FILE, csvFileFor, type ExportFormat } from '../layout.ts'

export interface ExportPlan {
  formats: readonly ExportFormat[]
  /** The staging folder. */
  dir: string
  engine: EngineName
  backupId: string
  timestamp: string
  /** fsync each file (not needed when the files only feed an archive that is fsynced itself). */
  durable: boolean
  /** Rows per table in the snapshot: every export must agree. */
  counts: ReadonlyMap<string, number>
  /**
   * Tables whose rows data.json (and the CSV files) write grouped by a column (table → column: a
   * tenant's rows in one run each, see tenant-restore/sections.ts); their runs come with data.json's `onFile`.
   */
  groupBy?: ReadonlyMap<string, string>
}

export interface ExportCallbacks {
  /** A file is complete (path inside the backup, its size and SHA-256; data.json's runs of the grouped tables). */
  onFile(name: string, written: WrittenFile, runs?: DataJsonRun[]): void
  onProgress?: ProgressListener
}

/** What the exports read: the snapshot's tables and rows; `sqliteFile` when it is a SQLite file, `sqliteConnection` when it is read in place. */
export interface ExportSource {
  engine: EngineName
  /** How the source's values are written (its table reader's `valueCodec`). */
  valueCodec: ValueCodecFor
  tables: readonly TableInfo[]
  rows(table: TableInfo, options?: { groupBy?: string }): RowSource
  /** The same rows rendered by the engine for data.json (Snapshot.jsonRows), where it can. */
  jsonRows?: Snapshot['jsonRows']
  /** The CSV records formatted by the engine (Snapshot.csvChunks), where it can. */
  csvChunks?: Snapshot['csvChunks']
  /** data.json's rows formatted by the engine (Snapshot.jsonChunks), where it can. */
  jsonChunks?: Snapshot['jsonChunks']
  sqliteFile?: string
  /**
   * The connection whose read transaction every export reads (an export read in place: InPlaceRead):
   * export.sql is read through it too, and no helper thread is used (its own connection would see another instant).
   */
  sqliteConnection?: InPlaceRead['sqliteConnection']
}

/** The size from which a SQLite file's exports are written by the helper thread. */
export const EXPORT_THREAD_FROM_BYTES = 32 * 1024 ** 2

/**
 * Writes every requested export of `source`, on a helper thread when it is a SQLite file of at
 * least `threadFromBytes` (default EXPORT_THREAD_FROM_BYTES).
 * @example await writeExports(source, plan, { onFile: (name, digest) => archive.add(name) })
 */
export async function writeExports(source: ExportSource, plan: ExportPlan, callbacks: ExportCallbacks, options: { threadFromBytes?: number } = {}): Promise<void> {
  const onThread = source.sqliteFile !== undefined && source.sqliteConnection === undefined && (await stat(source.sqliteFile)).size >= (options.threadFromBytes ?? EXPORT_THREAD_FROM_BYTES)
  return onThread ? writeExportsOnThread(source.sqliteFile!, plan, callbacks) : writeExportsHere(source, plan, callbacks)
}

/** The exports, written by this thread. */
export async function writeExportsHere(source: ExportSource, plan: ExportPlan, callbacks: ExportCallbacks): Promise<void> {
  const totalRows = [...plan.counts.values()].reduce((a, b) => a + b, 0)
  const progress = callbacks.onProgress ?? (() => {})
  const exportFile = async (name: string, write: (out: HashedFile) => Promise<DataJsonRun[] | void>) => {
    const out = await HashedFile.create(join(plan.dir, name), { durable: plan.durable })
    try {
      const runs = await write(out)
      callbacks.onFile(name, await out.commit(), runs ?? undefined)
    } catch (error) {
      await out.abort()
      throw new ToolkitError(`échec de l’export ${name} : ${describeError(error)}`, { cause: error })
    }
  }
  const expectCounts = (what: string, written: ReadonlyMap<string, number>) => {
    for (const [table, rows] of written) {
      const expected = plan.counts.get(table)
      if (expected !== undefined && expected !== rows) throw new Error(`${what} a ${rows} lignes dans "${table}", l’instantané ${expected}`)
    }
  }
  /** Progress over all tables of one file: `rows` so far in `table`. */
  const tracker = (label: string) => {
    const before = new Map<string, number>()
    let base = 0
    return (table: string, rows: number) => {
      if (!before.has(table)) before.set(table, base)
      base = before.get(table)! + rows
      progress({ label, done: base, total: totalRows, unit: 'rows' })
    }
  }

  const sqlite = source.sqliteConnection ?? source.sqliteFile
  if (plan.formats.includes('sql') && sqlite !== undefined) {
    const onRows = tracker(SQL_EXPORT_FILE)
    await exportFile(SQL_EXPORT_FILE, async (out) => expectCounts(SQL_EXPORT_FILE, await writeSqliteScript(sqlite, out, { onRows })))
  }
  const json = plan.formats.includes('json')
  const csv = plan.formats.includes('csv')
  if (csv) await mkdir(join(plan.dir, CSV_DIR))
  // One read of each table for both files, unless the engine formats the CSV itself: its own read then costs less than formatting the rows here.
  if (json && csv && source.csvChunks === undefined) {
    await writeJsonAndCsv(source, plan, callbacks, tracker, expectCounts)
    return
  }
  // The CSV files first, data.json last: the archive's order when both are written in one pass (writeJsonAndCsv).
  if (csv) {
    const onRows = tracker('CSV')
    for (const table of source.tables) {
      const name = csvFileFor(table.name)
      await exportFile(name, async (out) => {
        const groupBy = plan.groupBy?.get(table.name)
        const formatted = source.csvChunks?.(table, { groupBy })
        const onTableRows = (rows: number) => onRows(table.name, rows)
        const stats = formatted !== undefined ? await exportCsvChunks(formatted, table.columns, out, { onRows: onTableRows }) : await exportCsv(source.rows(table, { groupBy }), table.columns, out, { valueCodec: source.valueCodec, onRows: onTableRows })
        expectCounts(name, new Map([[table.name, stats.rows]]))
      })
    }
  }
  if (json) {
    const onRows = tracker(JSON_EXPORT_FILE)
    await exportFile(JSON_EXPORT_FILE, async (out) => {
      const options = { engine: source.engine, valueCodec: source.valueCodec, backupId: plan.backupId, timestamp: plan.timestamp, onRows, renderedRows: source.jsonRows, formattedRows: source.jsonChunks, ...(plan.groupBy ? { groupBy: plan.groupBy } : {}) }
      const { counts, runs } = await exportJsonDocument((table, groupBy) => source.rows(table, { groupBy }), source.tables, out, options)
      expectCounts(JSON_EXPORT_FILE, counts)
      return runs
    })
  }
}

/**
 * data.json and the CSV files in one read of each table: each row is formatted twice but read
 * once (measured: reading 1M rows out of SQLite costs as much as formatting them).
 */
async function writeJsonAndCsv(
  source: ExportSource,
  plan: ExportPlan,
  callbacks: ExportCallbacks,
  tracker: (label: string) => (table: string, rows: number) => void,
  expectCounts: (what: string, written: ReadonlyMap<string, number>) => void,
): Promise<void> {
  const fail = (name: string, error: unknown) => new ToolkitError(`échec de l’export ${name} : ${describeError(error)}`, { cause: error })
  const jsonOut = await HashedFile.create(join(plan.dir, JSON_EXPORT_FILE), { durable: plan.durable })
  const jsonRows = new Map<string, number>()
  const runs: DataJsonRun[] = []
  try {
    const jsonSink = new TextSink(jsonOut, { countBytes: (plan.groupBy?.size ?? 0) > 0 })
    const onRows = tracker('JSON + CSV')
    jsonSink.push(jsonDocument.head({ engine: source.engine, backupId: plan.backupId, timestamp: plan.timestamp }))
    for (const [index, table] of source.tables.entries()) {
      const name = csvFileFor(table.name)
      const csvOut = await HashedFile.create(join(plan.dir, name), { durable: plan.durable }).catch((error: unknown) => {
        throw fail(name, error)
      })
      try {
        const csvSink = new TextSink(csvOut)
        const toJson = jsonRowFormatter(table.columns, source.valueCodec, jsonDocument.indent)
        const toCsv = csvRowFormatter(table.columns, source.valueCodec)
        jsonSink.push(jsonDocument.tableHead(table, index === 0))
        csvSink.push(csvHeader(table.columns))
        const groupBy = plan.groupBy?.get(table.name)
        const recorder = groupBy === undefined ? undefined : runRecorder(table, groupBy, jsonSink, runs)
        const count = await writeRows(
          source.rows(table, { groupBy }),
          [jsonSink, csvSink],
          (row, rowIndex) => {
            recorder?.row(row)
            jsonSink.push(toJson(row, rowIndex === 0))
            csvSink.push(toCsv(row))
          },
          (n) => onRows(table.name, n),
        )
        await csvSink.flush()
        expectCounts(name, new Map([[table.name, count]]))
        callbacks.onFile(name, await csvOut.commit())
        jsonRows.set(table.name, count)
        recorder?.end()
        jsonSink.push(jsonDocument.tableTail(count))
      } catch (error) {
        await csvOut.abort()
        throw error instanceof ToolkitError ? error : fail(name, error)
      }
    }
    jsonSink.push(jsonDocument.tail(source.tables.length))
    await jsonSink.flush()
    expectCounts(JSON_EXPORT_FILE, jsonRows)
    callbacks.onFile(JSON_EXPORT_FILE, await jsonOut.commit(), runs)
  } catch (error) {
    await jsonOut.abort()
    throw error instanceof ToolkitError ? error : fail(JSON_EXPORT_FILE, error)
  }
}

/** What the helper thread is given (exports-thread.ts). */
export interface ExportThreadData {
  sqliteFile: string
  plan: Omit<ExportPlan, 'counts' | 'groupBy'> & { counts: [string, number][]; groupBy?: [string, string][] }
}

export type ExportThreadMessage =
  | { type: 'file'; name: string; written: WrittenFile; runs?: DataJsonRun[] }
  | { type: 'progress'; event: ProgressEvent }
  | { type: 'done' }
  | { type: 'error'; message: string; code?: string; toolkit: boolean }

// A young generation this small keeps the heap near its live size; more did not make the exports faster here.
const HELPER_YOUNG_GENERATION_MB = 8

/** The exports of a SQLite file, written by a helper thread. */
export function writeExportsOnThread(sqliteFile: string, plan: ExportPlan, callbacks: ExportCallbacks): Promise<void> {
  const workerData: ExportThreadData = { sqliteFile, plan: { ...plan, counts: [...plan.counts], groupBy: plan.groupBy ? [...plan.groupBy] : undefined } }
  return new Promise((resolve, reject) => {
    const worker = startTypeScriptThread(new URL('./exports-thread.ts', import.meta.url), workerData, { resourceLimits: { maxYoungGenerationSizeMb: HELPER_YOUNG_GENERATION_MB } })
    let settled = false
    const finish = (error?: unknown) => {
      if (settled) return
      settled = true
      if (error === undefined) resolve()
      else reject(error)
      void worker.terminate()
    }
    worker.on('message', (message: ExportThreadMessage) => {
      try {
        if (message.type === 'file') callbacks.onFile(message.name, message.written, message.runs)
        else if (message.type === 'progress') callbacks.onProgress?.(message.event)
        else if (message.type === 'done') finish()
        else {
          const cause = Object.assign(new Error(message.message), message.code ? { code: message.code } : {})
          finish(message.toolkit ? new ToolkitError(message.message, { cause }) : cause)
        }
      } catch (error) {
        finish(error)
      }
    })
    worker.on('error', (error) => finish(new ToolkitError(`le thread d’export a échoué : ${describeError(error)}`, { cause: error })))
    worker.on('exit', (code) => finish(new ToolkitError(`le thread d’export s’est arrêté (code ${code}) avant la fin`)))
  })
}
