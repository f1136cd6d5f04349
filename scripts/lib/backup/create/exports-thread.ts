/**
 * The helper thread of exports.ts: opens the SQLite snapshot read-only, writes the exports,
 * and reports each finished file, progress, and the end (or the failure) to its parent.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ToolkitError, describeError } from '../../errors.ts'
import { writeExportsHere, type ExportThreadData, type ExportThreadMessage } from './exports.ts'
import { sqliteFileSnapshot } from '../../engines/sqlite/snapshot.ts'

const post = (message: ExportThreadMessage) => parentPort!.postMessage(message)
const { sqliteFile, plan } = (workerData as { data: ExportThreadData }).data
const snapshot = sqliteFileSnapshot(plan.engine, sqliteFile, [])
let lastProgress = 0
try {
  await writeExportsHere(
    { engine: plan.engine, valueCodec: snapshot.reader.valueCodec, tables: await snapshot.reader.tables(), rows: (table, options) => snapshot.rows(table, options), jsonRows: snapshot.jsonRows, csvChunks: snapshot.csvChunks, jsonChunks: snapshot.jsonChunks, sqliteFile },
    { ...plan, counts: new Map(plan.counts), groupBy: plan.groupBy ? new Map(plan.groupBy) : undefined },
    {
      onFile: (name, written, runs) => post({ type: 'file', name, written, ...(runs ? { runs } : {}) }),
      onProgress: (event) => {
        // A few updates a second are enough for a progress bar.
        const now = performance.now()
        if (now - lastProgress < 100 && event.done !== event.total) return
        lastProgress = now
        post({ type: 'progress', event })
      },
    },
  )
  post({ type: 'done' })
} catch (error) {
  let code: string | undefined
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5 && code === undefined; e = e.cause, depth++) {
    code = (e as NodeJS.ErrnoException).code
  }
  post({ type: 'error', message: describeError(error), ...(code ? { code } : {}), toolkit: error instanceof ToolkitError })
} finally {
  await snapshot.close()
}
