/**
 * The migration's output file. Invariant: the target path holds either what it held before or a
 * complete, verified migration — never part of one. The database is built under a temporary name
 * beside the target (`<target>.tmp-<pid>-…`), fsynced, and renamed over it; a replaced file is first
 * hard-linked (or copied) to `<target>.before-migration`. A killed run's temporary file is removed
 * by the next run once its process is gone.
 */
import { copyFileSync, existsSync, linkSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { TEMPORARY_MARKER, commitRename, fsyncPath, temporaryPathFor } from '../fs/atomic.ts'
import { ownerOfTemporaryName, removeDeadLeftovers } from '../fs/leftovers.ts'
import { ToolkitError } from '../errors.ts'
import { BEFORE_MIGRATION_SUFFIX } from './plan.ts'

const SIDECARS = ['', '-journal', '-wal', '-shm']

/** A fresh temporary path for building `target`. */
export function temporaryTargetPath(target: string): string {
  return temporaryPathFor(target)
}

/** Removes a temporary database and its sidecar files. */
export function removeTemporary(path: string): void {
  for (const suffix of SIDECARS) rmSync(path + suffix, { force: true })
}

/**
 * Removes the temporary files that killed runs left beside `target` (their process no longer exists).
 * @example removeStaleTemporaries('/data/app.db') // ['/data/app.db.tmp-4242-lx1k2']
 */
export function removeStaleTemporaries(target: string): string[] {
  const dir = dirname(target)
  const prefix = `${basename(target)}${TEMPORARY_MARKER}`
  const ownerOf = (name: string) => (name.startsWith(prefix) ? ownerOfTemporaryName(name.slice(basename(target).length)) : undefined)
  // Best effort: a read-only directory is reported by the plan.
  return removeDeadLeftovers(dir, ownerOf, { bestEffort: true }).map((name) => join(dir, name))
}

/**
 * Makes the complete temporary database the target, durably. With `replace`, an existing target is
 * kept as `<target>.before-migration` (replacing an older one); without, an existing target is refused.
 * @returns where the previous file was kept, if there was one
 */
export function commitTarget(temporary: string, target: string, options: { replace: boolean }): { previous?: string } {
  fsyncPath(temporary)
  let previous: string | undefined
  if (existsSync(target)) {
    if (!options.replace) throw new ToolkitError(`la cible ${target} est apparue pendant la migration`, { hint: 'Passez --force pour la remplacer.' })
    previous = `${target}${BEFORE_MIGRATION_SUFFIX}`
    rmSync(previous, { force: true })
    try {
      linkSync(target, previous)
    } catch {
      copyFileSync(target, previous)
      fsyncPath(previous)
    }
  }
  commitRename(temporary, target)
  return previous === undefined ? {} : { previous }
}
