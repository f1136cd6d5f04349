/**
 * Rotation: keep the `maxBackups` newest complete backups and remove the rest — but never the
 * newest verified backup, which is kept on top of them if it is older, nor a backup that a kept
 * incremental backup builds on (its parent, the parent's parent…, up to the full backup). Unfinished work and files
 * that are not backups are never touched here (catalog.ts cleans killed runs' leftovers).
 */
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { TEMPORARY_MARKER, fsyncPath } from '../../fs/atomic.ts'
import { ToolkitError } from '../../errors.ts'
import type { BackupEntry } from './catalog.ts'

export interface RotationPlan {
  keep: BackupEntry[]
  remove: BackupEntry[]
  /** The newest verified backup when it is kept beyond `maxBackups`. */
  keptBecauseVerified?: string
  /** Backups kept beyond `maxBackups` because a kept incremental backup needs them (its chain). */
  keptForChain?: string[]
}

/**
 * Decides what rotation keeps; `entries` newest first (as `listBackupEntries` gives them).
 * @example planRotation(await listBackupEntries('backups'), 10).remove.map((b) => b.id)
 */
export function planRotation(entries: readonly BackupEntry[], maxBackups: number): RotationPlan {
  if (!Number.isSafeInteger(maxBackups) || maxBackups < 1) {
    throw new ToolkitError(`the number of backups to keep must be a whole number ≥ 1, got ${maxBackups}`, { hint: 'Use --keep 1 or more.' })
  }
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
  const keep = sorted.slice(0, maxBackups)
  const remove = sorted.slice(maxBackups)
  const newestVerified = sorted.find((entry) => entry.metadata?.verified === true && entry.sealValid)
  let keptBecauseVerified: string | undefined
  if (newestVerified !== undefined && !keep.includes(newestVerified)) {
    remove.splice(remove.indexOf(newestVerified), 1)
    keep.push(newestVerified)
    keptBecauseVerified = newestVerified.id
  }
  // A kept incremental is worthless without every backup it builds on: keep its whole chain.
  const byId = new Map(sorted.map((entry) => [entry.id, entry]))
  const keptForChain: string[] = []
  for (let i = 0; i < keep.length; i++) {
    const parentId = keep[i]!.metadata?.incremental ? keep[i]!.metadata?.parentId : null
    const parent = parentId ? byId.get(parentId) : undefined
    if (parent === undefined || keep.includes(parent)) continue
    remove.splice(remove.indexOf(parent), 1)
    keep.push(parent)
    keptForChain.push(parent.id)
  }
  return { keep, remove, ...(keptBecauseVerified ? { keptBecauseVerified } : {}), ...(keptForChain.length > 0 ? { keptForChain } : {}) }
}

/**
 * Deletes one backup so that it stops being complete first: the metadata beside an archive goes
 * before the archive; a folder is renamed to a temporary name before it is removed.
 */
export async function removeBackup(backupDir: string, entry: BackupEntry): Promise<void> {
  if (entry.form === 'archive') {
    await rm(entry.paths.sidecar, { force: true })
    fsyncPath(backupDir)
    await rm(entry.paths.archive, { force: true })
    return
  }
  const doomed = join(backupDir, `${entry.id}${TEMPORARY_MARKER}${process.pid}-delete`)
  await rename(entry.paths.directory, doomed)
  fsyncPath(backupDir)
  await rm(doomed, { recursive: true, force: true })
}
