/**
 * The backups of a backup folder, and the leftovers of killed runs.
 *
 * Invariant (kept by create.ts): a backup is complete iff its metadata exists, and the metadata is
 * the last thing written —
 * - uncompressed: the folder `backup-<ts>/` appears by one rename, with metadata.json already in it;
 * - compressed: `backup-<ts>.metadata.json` is written (atomically) after `backup-<ts>.tar.gz` is
 *   in place, so an archive without it is unfinished.
 * Work in progress carries TEMPORARY_MARKER and the pid of its process; it is never listed.
 */
import { mapFilesystemError } from '../../fs/errors.ts'
import { existsSync } from 'node:fs'
import { lstat, mkdir, readdir, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { TEMPORARY_MARKER } from '../../fs/atomic.ts'
import { ownerOfTemporaryName, removeDeadLeftovers } from '../../fs/leftovers.ts'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from '../../errors.ts'
import { ARCHIVE_SUFFIX, ENCRYPTED_SUFFIX, METADATA_FILE, SIDECAR_SUFFIX, assertBackupId, backupPaths, idOfTemporaryName, isBackupId, type BackupPaths } from '../layout.ts'
import { readMetadata, type BackupMetadata } from '../metadata.ts'

export interface BackupEntry {
  id: string
  form: 'directory' | 'archive'
  paths: BackupPaths
  /** Absent when the metadata cannot be read or is invalid (`problem` says why). */
  metadata?: BackupMetadata
  /** False when the metadata file was edited after it was written. */
  sealValid: boolean
  problem?: string
  /** Set when the archive or the metadata is not a regular file (a FIFO would block every reader): never opened. */
  notAFile?: string
}

/** Throws unless `backupDir` is a directory (a missing one is fine when `allowMissing`). */
export async function assertBackupDir(backupDir: string, options: { allowMissing: boolean }): Promise<boolean> {
  try {
    const info = await stat(backupDir)
    if (!info.isDirectory()) {
      throw new ToolkitError(`le dossier des backups ${backupDir} n’est pas un dossier`, { hint: 'Donnez à --dir un dossier (il est créé s’il manque).' })
    }
    return true
  } catch (error) {
    if (error instanceof ToolkitError) throw error
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && options.allowMissing) return false
    throw new ToolkitError(`backup directory ${backupDir}: ${describeError(error)}`, { cause: error })
  }
}

/**
 * The complete backups of a folder, newest first (ids sort by time).
 * @example for (const b of await listBackupEntries('backups')) console.log(b.id, b.metadata?.size)
 */
export async function listBackupEntries(backupDir: string): Promise<BackupEntry[]> {
  if (!(await assertBackupDir(backupDir, { allowMissing: true }))) return []
  const names = await readdir(backupDir)
  const ids = new Set<string>()
  for (const name of names) {
    if (name.includes(TEMPORARY_MARKER)) continue
    if (name.endsWith(SIDECAR_SUFFIX) && isBackupId(name.slice(0, -SIDECAR_SUFFIX.length))) ids.add(name.slice(0, -SIDECAR_SUFFIX.length))
    else if (isBackupId(name) && existsSync(join(backupDir, name, METADATA_FILE))) ids.add(name)
  }
  const entries = await Promise.all([...ids].map((id) => readEntry(backupDir, id)))
  return entries.filter((entry): entry is BackupEntry => entry !== undefined).sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
}

/** One complete backup by id; a ToolkitError when the id is malformed or unknown. */
export async function findBackupEntry(backupDir: string, id: string): Promise<BackupEntry> {
  assertBackupId(id)
  await assertBackupDir(backupDir, { allowMissing: true })
  const entry = await readEntry(backupDir, id)
  if (entry?.notAFile !== undefined) {
    throw new ToolkitError(entry.notAFile, { hint: 'Remplacez-le par le vrai fichier de la sauvegarde, ou choisissez une autre sauvegarde (`advanced-backup list`).' })
  }
  if (entry === undefined) {
    // A mistyped id is a usage error: the operation never started (and is not written to the history).
    throw new ToolkitError(`aucun backup « ${id} » dans ${backupDir}`, { hint: 'Listez les backups avec `advanced-backup list` (ou vérifiez --dir).', exitCode: USAGE_EXIT_CODE })
  }
  return entry
}

async function readEntry(backupDir: string, id: string): Promise<BackupEntry | undefined> {
  const paths = backupPaths(backupDir, id)
  // When both forms exist (an archive unpacked in place), the archive with its metadata is the backup.
  const form = existsSync(paths.sidecar) ? 'archive' : existsSync(join(paths.directory, METADATA_FILE)) ? 'directory' : undefined
  if (form === undefined) return undefined
  for (const path of form === 'archive' ? [paths.sidecar, paths.archive] : [join(paths.directory, METADATA_FILE)]) {
    const kind = await nonRegularKind(path)
    if (kind !== undefined) {
      const notAFile = `${path} est ${kind}, pas un fichier ordinaire : la sauvegarde ${id} est refusée sans être ouverte`
      return { id, form, paths, sealValid: false, problem: notAFile, notAFile }
    }
  }
  try {
    const { metadata, sealValid } = await readMetadata(form === 'archive' ? paths.sidecar : join(paths.directory, METADATA_FILE))
    if (metadata.id !== id) return { id, form, paths, sealValid: false, problem: `ses métadonnées nomment un autre backup (${metadata.id})` }
    // An encrypted backup's stored object is the ciphertext beside its metadata.
    // (A decrypted copy — `<id>.tar.gz` and no ciphertext, as restore stages it — is read as the plain archive it is.)
    if (metadata.encryption !== undefined && !(existsSync(paths.archive) && !existsSync(join(backupDir, `${id}${ENCRYPTED_SUFFIX}`)))) paths.archive = join(backupDir, `${id}${ENCRYPTED_SUFFIX}`)
    // Metadata without its archive (deleted by hand, a lost disk sync): listed with the reason, never restorable.
    if (form === 'archive' && !existsSync(paths.archive)) return { id, form, paths, metadata, sealValid, problem: `archive ${basename(paths.archive)} absente du dossier` }
    return { id, form, paths, metadata, sealValid }
  } catch (error) {
    return { id, form, paths, sealValid: false, problem: describeError(error) }
  }
}

/**
 * What `path` is when it is not a regular file (a link is judged by its target), from lstat/stat
 * only: opening a FIFO blocks until a writer comes, so a backup folder's files are typed first.
 */
async function nonRegularKind(path: string): Promise<string | undefined> {
  let info
  try {
    info = await lstat(path)
    if (info.isSymbolicLink()) info = await stat(path)
  } catch {
    return undefined
  }
  if (info.isFile()) return undefined
  if (info.isFIFO()) return 'un tube nommé (FIFO)'
  if (info.isDirectory()) return 'un dossier'
  if (info.isSocket()) return 'une socket'
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'un périphérique'
  return 'un fichier spécial'
}

/**
 * Removes what killed runs left: temporary names whose process is gone, and archives whose
 * metadata was never written (unless a live run is still finishing that very backup).
 * Work of a running process (its pid is alive) is never touched.
 */
export async function removeLeftovers(backupDir: string, options: { isAlive?: (pid: number) => boolean } = {}): Promise<string[]> {
  const names = await readdir(backupDir)
  const removed = removeDeadLeftovers(backupDir, (name) => (idOfTemporaryName(name) === undefined ? undefined : ownerOfTemporaryName(name)), options)
  const gone = new Set(removed)
  // A live run's temporaries: its archive may still be waiting for its metadata.
  const busyIds = new Set(names.filter((name) => ownerOfTemporaryName(name) !== undefined && !gone.has(name)).map(idOfTemporaryName))
  for (const name of names) {
    const suffix = [ARCHIVE_SUFFIX, ENCRYPTED_SUFFIX].find((candidate) => name.endsWith(candidate))
    if (suffix === undefined) continue
    const id = name.slice(0, -suffix.length)
    if (!isBackupId(id) || busyIds.has(id) || existsSync(join(backupDir, `${id}${SIDECAR_SUFFIX}`))) continue
    await rm(join(backupDir, name), { force: true })
    removed.push(name)
  }
  return removed
}

/**
 * Makes the backup directory ready for a new backup: it must be a directory (created if missing),
 * and the leftovers of killed runs are removed. Returns what was removed.
 */
export async function prepareBackupDir(backupDir: string): Promise<string[]> {
  await assertBackupDir(backupDir, { allowMissing: true })
  try {
    await mkdir(backupDir, { recursive: true })
  } catch (error) {
    throw mapFilesystemError(error, 'le dossier des backups', backupDir) ?? error
  }
  return removeLeftovers(backupDir)
}
