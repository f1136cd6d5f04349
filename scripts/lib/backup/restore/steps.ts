/**
 * The steps of a restore and their runner: each step is announced before it runs (history,
 * crash-test kill points as `restore:<step>`), then its outcome, detail and duration recorded.
 */
import { describeError } from '../../errors.ts'
import type { BackupMetadata } from '../metadata.ts'
import type { RowCount } from '../../engines/engine.ts'

/**
 * In order. `mid-replace` is announced by the engine inside step 3, once part of the new database
 * is written and before it is whole (a crash there must leave the old database, untouched).
 */
export const RESTORE_STEPS = ['verify', 'confirm', 'safety-copy', 'replace', 'mid-replace', 'check', 'report'] as const
export type RestoreStepName = (typeof RESTORE_STEPS)[number]

export interface RestorePlan {
  id: string
  /** The backups read, the full one first (more than one for an incremental). */
  chain: string[]
  engine: BackupMetadata['engine']
  target: string
  targetExists: boolean
  /** Where the current database is kept (null when there is none). */
  safetyCopy: string | null
  timestamp: string
  tables: { name: string; rows: number }[]
}

export interface RestoreStepResult {
  step: 1 | 2 | 3 | 4 | 5
  name: 'verify' | 'safety-copy' | 'replace' | 'check' | 'report'
  status: 'ok' | 'skipped' | 'failed'
  detail: string
  durationMs: number
}

export interface RestoreResult extends RestorePlan {
  dryRun: boolean
  restored: boolean
  steps: RestoreStepResult[]
  /** Per table: rows the metadata records and rows found after the restore. */
  counts: RowCount[]
  integrity: string
  foreignKeyViolations: number
  /** Bytes of the restored database file. */
  size: number
  durationMs: number
  warnings: string[]
}

/**
 * Runs the steps of a restore: announces each one (kill points, confirmation hooks) before it
 * starts, then records its outcome, detail and duration in `steps`, failed ones included.
 */
export function restoreStepRunner(steps: RestoreStepResult[], announce?: (name: RestoreStepName) => void | Promise<void>) {
  return async <T>(step: RestoreStepResult['step'], name: RestoreStepResult['name'], work: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    await announce?.(name)
    const t0 = performance.now()
    try {
      const { value, detail } = await work()
      steps.push({ step, name, status: 'ok', detail, durationMs: Math.round(performance.now() - t0) })
      return value
    } catch (error) {
      steps.push({ step, name, status: 'failed', detail: describeError(error), durationMs: Math.round(performance.now() - t0) })
      throw error
    }
  }
}
