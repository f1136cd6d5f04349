/**
 * Helper thread of content-checksum.ts: opens the SQLite file read-only, takes rowid chunks of each
 * table in turn from the shared counters, sums them, posts the partial sums (or the failure) to its parent.
 */
import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { describeError } from '../../errors.ts'
import { checksumChunks, type RangeChecksumTask } from './content-checksum.ts'
import { loadExtension } from './extension.ts'

const task = (workerData as { data: RangeChecksumTask }).data
// On Linux a thread has its own nice value: pid 0 is this thread, not the process.
if (task.early) setPriority(0, 19)
try {
  const db = new Database(task.path, { readonly: true, fileMustExist: true })
  try {
    loadExtension(db)
    parentPort!.postMessage({ parts: checksumChunks(db, task).map((sum) => sum.partial()) })
  } finally {
    db.close()
  }
} catch (error) {
  parentPort!.postMessage({ error: describeError(error) })
}
