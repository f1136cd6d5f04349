/**
 * Durable, all-or-nothing file writes: write under a temporary name beside the target, fsync it,
 * rename it over the target, fsync the directory. A crash leaves the old file or the new one, never half of one.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { constants, copyFile, link, rm } from 'node:fs/promises'
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

/** Filesystems where a hard link cannot join `source` and `dest`: then the bytes are copied. */
const NO_LINK = ['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP']

/**
 * Gives the file `source` the name `dest` (which must not exist) and removes `source`: a hard link
 * on the same filesystem (no byte copied), a copy across filesystems. Durability is the caller's
 * (fsync `dest`, then its folder, before relying on it).
 * @example await moveFile('/tmp/ipm-restore-1-x/verified/database.db', '/srv/app/dev.db.tmp-1-x')
 */
export async function moveFile(source: string, dest: string): Promise<void> {
  try {
    await link(source, dest)
  } catch (error) {
    if (!NO_LINK.includes((error as NodeJS.ErrnoException).code ?? '')) throw error
    await copyFile(source, dest, constants.COPYFILE_EXCL)
  }
  await rm(source)
}
