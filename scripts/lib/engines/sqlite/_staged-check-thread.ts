/**
 * Helper thread of staged-check.ts: opens the staged database read-only and runs its part of step
 * 4's SQLite checks (`integrity`: integrity_check; `references`: foreign_key_check and rows per
 * table); posts what it found.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { quoteIdentifier } from '../../db/connection.ts'
import { describeError } from '../../errors.ts'
import { isWalModeFile } from './snapshot.ts'
import type { STAGED_CHECK_PARTS, StagedCheckPart } from './staged-check.ts'

const { path, part } = (workerData as { data: { path: string; part: (typeof STAGED_CHECK_PARTS)[number] } }).data

function check(): StagedCheckPart {
  if (isWalModeFile(path)) return { skipped: 'base en mode WAL: contrôlée à sa place' }
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    if (part === 'integrity') return { integrity: (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ') }
    const foreignKeyViolations = (db.pragma('foreign_key_check') as unknown[]).length
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[]
    const rows = Object.fromEntries(tables.map((name) => [name, Number(db.prepare(`SELECT count(*) FROM ${quoteIdentifier(name)}`).pluck().get())]))
    return { foreignKeyViolations, rows }
  } finally {
    db.close()
  }
}

try {
  parentPort!.postMessage(check())
} catch (error) {
  parentPort!.postMessage({ skipped: `contrôle anticipé en échec: ${describeError(error)}` } satisfies StagedCheckPart)
}
