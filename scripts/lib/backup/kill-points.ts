/**
 * Kill points: named steps of the backup operations at which a test can make the process die by
 * SIGKILL, deterministically, to prove that a crash anywhere leaves no partial backup and a sound
 * database. `IPM_BACKUP_KILL_AT=create:before-publish npx tsx scripts/advanced-backup.ts` (read by
 * resolveEnvironment) kills the run when it reaches that step; unset, steps cost nothing.
 *
 * Operations report their steps through an `onStep` option; only AdvancedBackupSystem turns the
 * environment into a listener, so the library functions stay free of process-wide effects.
 */
import { ToolkitError } from '../errors.ts'
import { RESTORE_STEPS as RESTORE_STEP_NAMES } from './restore/steps.ts'

/** The steps of `create`, in the order a compressed backup reaches them. */
export const CREATE_STEPS = [
  /** Leftovers cleaned, the staging folder made. */
  'create:start',
  /** database.db (or database.sql) is in the staging folder. */
  'create:after-snapshot',
  /** export.sql written (the first export). */
  'create:after-sql-export',
  /** The first CSV file written, the others not yet. */
  'create:mid-csv',
  /** The archive has received its first bytes (compressed only). */
  'create:mid-pack',
  /** Every export written, metadata.json not yet. */
  'create:before-metadata',
  /** Written (and packed), not yet read back. */
  'create:before-verify',
  /** Verified, not yet renamed / linked into place. */
  'create:before-publish',
  /** Compressed: the archive is in place, its metadata beside it not yet (an unfinished backup). */
  'create:after-link',
  /** Published; the staging folder not yet removed, rotation not yet run. */
  'create:after-publish',
  /** Rotation is about to delete an old backup (only when there is one to delete). */
  'create:before-rotation-delete',
  /** Off-site copy: the archive's first part is on its way, the upload not finished (multipart when large). */
  'offsite:mid-upload',
  /** Off-site copy: the archive object is confirmed, its metadata object not written yet. */
  'offsite:before-metadata',
  /** Everything done but the history line. */
  'create:before-history',
] as const

/**
 * The steps of `restore` (restore/flow.ts announces each before it runs it), as `restore:<step>`:
 * verify (nothing done yet), confirm (verified), safety-copy (consent given), replace (the safety
 * copy made, the new database not yet written), mid-replace (announced by the engine: part of the
 * new database written — a SQLite file staged but not renamed, PostgreSQL's transaction open with
 * the old objects dropped and a first table loaded, D1's first rows inserted — not yet in place),
 * check (in place, not yet checked), report (checked, the history line not yet written).
 */
export const RESTORE_STEPS: readonly string[] = RESTORE_STEP_NAMES.map((name) => `restore:${name}`)

/** The steps of `drill` (backup/drill/drill.ts): its scratch database made; the backup restored into it, not yet checked. */
export const DRILL_STEPS = ['drill:scratch-created', 'drill:restored'] as const

export type StepListener = (step: string) => void

/** Every step a kill can be asked at. */
export function knownKillPoints(): string[] {
  return [...CREATE_STEPS, ...RESTORE_STEPS, ...DRILL_STEPS]
}

/**
 * A step listener that SIGKILLs this process at `killAt`, or undefined when `killAt` is unset.
 * @example createBackup({ …, onStep: killSwitch(environment.backupKillAt) })
 */
export function killSwitch(killAt: string | undefined): StepListener | undefined {
  if (killAt === undefined) return undefined
  if (!knownKillPoints().includes(killAt)) {
    throw new ToolkitError(`IPM_BACKUP_KILL_AT ne nomme aucune étape : "${killAt}"`, { hint: `Valeurs possibles : ${knownKillPoints().join(', ')} (ou retirez la variable).`, exitCode: 2 })
  }
  return (step) => {
    if (step === killAt) process.kill(process.pid, 'SIGKILL')
  }
}
