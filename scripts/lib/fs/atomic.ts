/**
 * Durable, all-or-nothing file writes: write under a temporary name beside the target, fsync it,
 * rename it over the target, fsync the directory. A crash leaves the old file or the new one, never half of one.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

/** The marker in temporary names, so a later run can recognise (and clean) a killed run's leftovers. */
export const TEMPORARY_MARKER = '.tmp-'

/** A temporary path in the same directory as `path` (same file system, so rename is atomic). */
export function temporaryPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}${TEMPORARY_MARKER}${process.pid}-${Date.now().toString(36)}`)
}

/** Flushes a file's (or directory's) contents to the disk. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Renames a complete, already fsynced file or directory into place and makes the rename durable. */
export function commitRename(temporaryPath: string, finalPath: string): void {
  renameSync(temporaryPath, finalPath)
  fsyncPath(dirname(finalPath))
}

/**
 * Writes a whole file atomically.
 * @example writeFileAtomic('performance-metrics.json', JSON.stringify(metrics, null, 2))
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const temporary = temporaryPathFor(path)
  try {
    writeFileSync(temporary, data)
    fsyncPath(temporary)
    commitRename(temporary, path)
  } catch (error) {
    rmSync(temporary, { force: true })
    throw error
  }
}
