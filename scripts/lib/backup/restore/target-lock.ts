/**
 * The restore's exclusive lock on a file target: `<db>.restore-lock`, created exclusively
 * (O_EXCL: a link that fails when the name exists) and holding the pid, from before the verification
 * until the end of the run. A second restore of the same file refuses instead of taking a safety
 * copy of a half-restored database.
 * A lock whose pid is gone (a killed restore) is stale and taken over, and the half-made locks a
 * killed restore left (`<db>.restore-lock.tmp-<pid>-…`) are removed, like the other leftovers.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { TEMPORARY_MARKER, temporaryPathFor } from '../../fs/atomic.ts'
import { ToolkitError } from '../../errors.ts'
import { ownerOfTemporaryName, processIsAlive, removeDeadLeftovers } from '../../fs/leftovers.ts'

export const RESTORE_LOCK_SUFFIX = '.restore-lock'

export interface TargetLock {
  readonly path: string
  release(): void
}

/**
 * Takes the lock beside `target`, or refuses (ToolkitError) while another live restore holds it.
 * @example const lock = lockRestoreTarget('/srv/app/dev.db'); try { … } finally { lock.release() }
 */
export function lockRestoreTarget(target: string, options: { pid?: number; isAlive?: (pid: number) => boolean } = {}): TargetLock {
  const pid = options.pid ?? process.pid
  const isAlive = options.isAlive ?? processIsAlive
  const path = `${target}${RESTORE_LOCK_SUFFIX}`
  const temporaryPrefix = `${basename(path)}${TEMPORARY_MARKER}`
  removeDeadLeftovers(dirname(path), (name) => (name.startsWith(temporaryPrefix) ? ownerOfTemporaryName(name) : undefined), { isAlive })
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under a temporary name, then linked into place (link fails if the lock exists):
    // a lock file is never seen empty, so an unreadable one is garbage, not a lock being written.
    const temporary = temporaryPathFor(path)
    writeFileSync(temporary, `${pid}\n`, { mode: 0o644 })
    try {
      linkSync(temporary, path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const holder = lockHolder(path)
      if (holder !== undefined && holder !== pid && isAlive(holder)) throw busy(target, holder)
      // Stale (its process is gone): taken over, then created again.
      takeOver(path, (seen) => seen === holder)
      continue
    } finally {
      rmSync(temporary, { force: true })
    }
    return {
      path,
      release() {
        if (lockHolder(path) === pid) rmSync(path, { force: true })
      },
    }
  }
  throw busy(target, lockHolder(path))
}

function lockHolder(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim()
    return /^\d+$/.test(text) ? Number(text) : undefined
  } catch {
    return undefined
  }
}

/**
 * Removes a stale lock. It is first renamed to a name of our own (atomic: of two restores that
 * both saw it stale, one rename wins); if what we renamed is not the stale lock we judged (another
 * restore took it over meanwhile), it is linked back into place.
 */
function takeOver(path: string, isTheStaleOne: (holder: number | undefined) => boolean): boolean {
  const aside = `${path}.stale-${process.pid}`
  try {
    renameSync(path, aside)
  } catch {
    return false
  }
  if (!isTheStaleOne(lockHolder(aside))) {
    try {
      linkSync(aside, path)
    } catch {}
    rmSync(aside, { force: true })
    return false
  }
  rmSync(aside, { force: true })
  return true
}

function busy(target: string, holder: number | undefined): ToolkitError {
  return new ToolkitError(`une autre restauration de ${target} est en cours (pid ${holder ?? '?'}) : rien n’a été modifié`, {
    hint: `Attendez la fin de cette restauration ; si ce processus n’existe plus, supprimez ${target}${RESTORE_LOCK_SUFFIX}.`,
  })
}
