/**
 * Helper thread of staged-check.ts: opens the staged database read-only and runs its part of step
 * 4's SQLite checks (`integrity`: integrity_check; `references`: foreign_key_check and rows per
 * table); posts what it found.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { describeError } from '../../errors.ts'
import { isWalModeFile } from './snapshot.ts'
import { integrityOf, referencesOf, type SqliteQuery, type STAGED_CHECK_PARTS, type StagedCheckPart } from './staged-check.ts'

const { path, part } = (workerData as { data: { path: string; part: (typeof STAGED_CHECK_PARTS)[number] } }).data

async function check(): Promise<StagedCheckPart> {
  if (isWalModeFile(path)) return { skipped: 'base en mode WAL: contrôlée à sa place' }
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const query: SqliteQuery = async <Row extends object>(sql: string) => db.prepare(sql).all() as Row[]
    return part === 'integrity' ? { integrity: await integrityOf(query) } : await referencesOf(query)
  } finally {
    db.close()
  }
}

try {
  parentPort!.postMessage(await check())
} catch (error) {
  parentPort!.postMessage({ skipped: `contrôle anticipé en échec: ${describeError(error)}` } satisfies StagedCheckPart)
}
