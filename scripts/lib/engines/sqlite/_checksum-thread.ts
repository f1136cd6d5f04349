/**
 * Helper thread of content-checksum.ts: opens the SQLite file read-only, takes rowid chunks of one table
 * from the shared counter, sums them, posts the partial sum (or the failure) to its parent.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { describeError } from '../../errors.ts'
import { checksumChunks, type RangeChecksumTask } from './content-checksum.ts'

const task = (workerData as { data: RangeChecksumTask }).data
try {
  const db = new Database(task.path, { readonly: true, fileMustExist: true })
  try {
    parentPort!.postMessage({ part: checksumChunks(db, task).partial() })
  } finally {
    db.close()
  }
} catch (error) {
  parentPort!.postMessage({ error: describeError(error) })
}
