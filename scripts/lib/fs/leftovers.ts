/**
 * What killed runs leave behind, and the one rule for removing it: a file or folder whose name
 * carries a process id (`<name>.tmp-<pid>-…`, `ipm-stage-<pid>-…`) is a leftover once that process
 * is gone. Work of a live process, this one included, is never touched.
 */
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { TEMPORARY_MARKER } from './atomic.ts'

/** True while a process with this pid exists on this machine (EPERM: it exists, another user's). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid that owns a temporary name (`…<TEMPORARY_MARKER><pid>-…`), or undefined when the name is not one of ours. */
export function ownerOfTemporaryName(name: string): number | undefined {
  const at = name.indexOf(TEMPORARY_MARKER)
  if (at < 0) return undefined
  const pid = Number(/^(\d+)-/.exec(name.slice(at + TEMPORARY_MARKER.length))?.[1])
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

export interface RemoveDeadLeftoversOptions {
  /** Defaults to processIsAlive; tests inject their own. */
  isAlive?: (pid: number) => boolean
  /** An entry (or the folder) that cannot be read or removed is passed over instead of failing the run. */
  bestEffort?: boolean
}

/**
 * Removes the entries of `dir` (files or whole folders) that `ownerOf` gives to a process that is
 * gone; `ownerOf` returns undefined for names that are not leftovers. A missing `dir` holds none.
 * @returns the names removed
 * @example removeDeadLeftovers('/data', (name) => (name.startsWith('app.db.tmp-') ? ownerOfTemporaryName(name) : undefined))
 */
export function removeDeadLeftovers(dir: string, ownerOf: (name: string) => number | undefined, options: RemoveDeadLeftoversOptions = {}): string[] {
  const isAlive = options.isAlive ?? processIsAlive
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (error) {
    if (options.bestEffort || (error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const removed: string[] = []
  for (const name of names) {
    const pid = ownerOf(name)
    if (pid === undefined || pid === process.pid || isAlive(pid)) continue
    try {
      rmSync(join(dir, name), { recursive: true, force: true })
      removed.push(name)
    } catch (error) {
      if (!options.bestEffort) throw error
    }
  }
  return removed
}
