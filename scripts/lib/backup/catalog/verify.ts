/**
 * Verification: recompute every hash of a backup and compare with its metadata. One check per
 * file — ok, modified (a changed byte or size), missing, extra (not in the metadata: a stray file,
 * a link, anything outside the backup folder), invalid (unreadable metadata, a truncated or
 * corrupted archive) — and never stops at the first fault.
 * Restore's step 1 also has the files it needs written elsewhere as they are hashed (`extract`):
 * one read of the backup; the copies are usable only when the whole report is ok.
 *
 * A restore reads no more of an archive than it restores (`onlyExtract`), when the backup allows it:
 * its sealed metadata says create read the whole archive back and every hash matched (`verified`),
 * and the archive is made of our own gzip members. The members up to the last file restored are
 * inflated, every entry header until then judged, and the restored files hashed against the
 * metadata; the rest is only hashed with the archive's SHA-256, which proves it is byte for byte
 * the archive create verified whole. When that SHA-256 differs, the archive is read through again to
 * report what differs and where. An archive repacked by another tool is always read through.
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describeError } from '../../errors.ts'
import type { ProgressListener } from '../../progress.ts'
import { readArchive, type ArchiveDamage } from '../archive/archive.ts'
import { CopyWriteError, VerifiedCopies } from '../archive/copies.ts'
import { findBackupEntry } from './catalog.ts'
import type { GzipPool } from '../archive/gzip-blocks.ts'
import { ARCHIVE_SUFFIX, CSV_DIR, METADATA_FILE, SIDECAR_SUFFIX } from '../layout.ts'
import { hashFile, manifestHash, type FileDigest } from '../manifest.ts'
import { parseMetadata, type BackupMetadata } from '../metadata.ts'

export type CheckStatus = 'ok' | 'modified' | 'missing' | 'extra' | 'invalid'

/** How a status reads on the terminal (the JSON keeps the identifier). */
export const CHECK_STATUS_LABELS: Record<CheckStatus, string> = { ok: 'ok', modified: 'modifié', missing: 'manquant', extra: 'en trop', invalid: 'illisible' }

export interface FileCheck {
  /** Path inside the backup (`database.db`, `exports/Plan.csv`), or the file name of the archive / its metadata. */
  path: string
  status: CheckStatus
  expected?: { size: number; sha256: string }
  actual?: { size: number; sha256: string }
  detail?: string
  /** The archive's own bytes are damaged here (on the archive's check only). */
  damage?: ArchiveDamage
}

export interface VerifyReport {
  id: string
  form: 'directory' | 'archive'
  ok: boolean
  checks: FileCheck[]
  /** The metadata as read (absent when it could not be read at all). */
  metadata?: BackupMetadata
  /** False when an encrypted backup was checked without its key: only the ciphertext's size and SHA-256 and the metadata were. */
  contentVerified?: boolean
  /** `onlyExtract`: the listed files not inflated, proven only by the archive's SHA-256 (see the top of this file). */
  unread?: string[]
}

export interface VerifyOptions {
  pool?: GzipPool
  onProgress?: ProgressListener
  /** Incremental backups: verify every backup of the chain too (default true). */
  chain?: boolean
  /**
   * Files of the backup (paths as its metadata lists them) written to a destination (created; it
   * must not exist) while they are hashed. Not passed on to the parents of an incremental.
   */
  extract?: ReadonlyMap<string, string>
  /**
   * Called as soon as an `extract` copy is whole and matches the metadata's size and SHA-256, while
   * the rest of the backup is still being verified (restore checks the copy meanwhile; it uses that
   * only once the whole report is ok).
   */
  onCopied?: (dest: string) => void
  /** Restore: read the archive no further than the `extract` files where the backup allows it (see the top of this file). */
  onlyExtract?: boolean
}

/** The checks of an archive, and the listed files it did not inflate (`onlyExtract`). */
export interface ArchiveChecks {
  checks: FileCheck[]
  unread: string[]
}

/**
 * Verifies one backup of `backupDir`.
 * @example const report = await verifyBackup('backups', 'backup-2026-01-21T15-30-00'); if (!report.ok) …
 */
export async function verifyBackup(backupDir: string, id: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const entry = await findBackupEntry(backupDir, id)
  const metadataName = entry.form === 'archive' ? `${id}${SIDECAR_SUFFIX}` : METADATA_FILE
  const checks: FileCheck[] = []
  if (entry.metadata === undefined) {
    checks.push({ path: metadataName, status: 'invalid', detail: entry.problem ?? 'illisible' })
    return { id, form: entry.form, ok: false, checks }
  }
  const metadata = entry.metadata
  const described = metadataCheck(metadataName, metadata, entry.sealValid, entry.form)
  checks.push(described)
  let unread: string[] = []
  if (entry.form === 'directory') {
    checks.push(...(await checkDirectory(entry.paths.directory, metadata.files, options)))
  } else {
    const onlyExtract = options.onlyExtract === true && (options.extract?.size ?? 0) > 0 && described.status === 'ok' && metadata.verified
    const archive = await checkArchive(entry.paths.archive, id, metadata, { ...options, onlyExtract })
    checks.push(...archive.checks)
    unread = archive.unread
  }
  // An incremental is only as good as the backups it builds on: a broken parent fails the child.
  if (metadata.incremental && (options.chain ?? true)) checks.push(await parentCheck(backupDir, metadata, { ...options, extract: undefined }))
  return { id, form: entry.form, ok: checks.every((check) => check.status === 'ok'), checks, metadata, ...(unread.length > 0 ? { unread } : {}) }
}

async function parentCheck(backupDir: string, metadata: BackupMetadata, options: VerifyOptions): Promise<FileCheck> {
  const path = `parent ${metadata.parentId ?? '(aucun)'}`
  if (metadata.parentId === null) return { path, status: 'invalid', detail: 'un backup incrémental sans parent' }
  if (metadata.parentId >= metadata.id) return { path, status: 'invalid', detail: 'le parent n’est pas plus ancien que le backup' }
  let report: VerifyReport
  try {
    report = await verifyBackup(backupDir, metadata.parentId, options)
  } catch (error) {
    return { path, status: 'missing', detail: describeError(error) }
  }
  if (report.ok) return { path, status: 'ok' }
  const bad = report.checks.filter((c) => c.status !== 'ok').map((c) => `${c.path} ${CHECK_STATUS_LABELS[c.status]}`)
  return { path, status: 'invalid', detail: `le parent échoue à la vérification : ${bad.join(' ; ')}` }
}

export function metadataCheck(path: string, metadata: BackupMetadata, sealValid: boolean, form: 'directory' | 'archive'): FileCheck {
  const faults: string[] = []
  if (!sealValid) faults.push('son contenu ne correspond pas à son sceau (metadataSha256) : il a été modifié')
  if (manifestHash(metadata.files) !== metadata.hash) faults.push('"hash" n’est pas le SHA-256 du manifeste de ses fichiers')
  if (metadata.compressed !== (form === 'archive')) faults.push(`"compressed" vaut ${metadata.compressed} mais le backup est ${form === 'archive' ? 'une archive' : 'un dossier'}`)
  if (form === 'archive' && metadata.archive === null) faults.push('"archive" manque')
  return faults.length === 0 ? { path, status: 'ok' } : { path, status: 'modified', detail: faults.join(' ; ') }
}

function compare(path: string, expected: FileDigest, actual: { size: number; sha256: string }): FileCheck {
  const want = { size: expected.size, sha256: expected.sha256 }
  if (actual.size === expected.size && actual.sha256 === expected.sha256) return { path, status: 'ok', expected: want, actual }
  const detail = actual.size !== expected.size ? `taille ${actual.size} au lieu de ${expected.size}` : 'SHA-256 différent'
  return { path, status: 'modified', expected: want, actual, detail }
}

/**
 * Checks the content files of a backup folder against `files` (metadata.json itself is not one of
 * them); anything else in the folder is reported as extra.
 */
export async function checkDirectory(dir: string, files: readonly FileDigest[], options: VerifyOptions = {}): Promise<FileCheck[]> {
  const checks: FileCheck[] = []
  const found = new Map<string, 'file' | string>()
  const walk = async (relative: string) => {
    for (const name of await readdir(join(dir, relative))) {
      const path = relative === '' ? name : `${relative}/${name}`
      const info = await lstat(join(dir, path))
      if (info.isDirectory()) {
        if (path === CSV_DIR) await walk(path)
        else found.set(path, 'dossier')
      } else {
        found.set(path, info.isFile() ? 'file' : info.isSymbolicLink() ? 'lien symbolique' : 'fichier spécial')
      }
    }
  }
  await walk('')
  const total = files.reduce((sum, file) => sum + file.size, 0)
  let done = 0
  const copies = new VerifiedCopies()
  try {
    for (const file of files) {
      const kind = found.get(file.path)
      found.delete(file.path)
      if (kind === undefined) {
        checks.push({ path: file.path, status: 'missing', expected: { size: file.size, sha256: file.sha256 } })
        continue
      }
      if (kind !== 'file') {
        checks.push({ path: file.path, status: 'modified', detail: `${kind}, pas un fichier` })
        continue
      }
      try {
        const base = done
        const dest = options.extract?.get(file.path)
        const copy = dest === undefined ? undefined : (chunk: Buffer) => copies.write(dest, chunk, file.path)
        if (dest !== undefined) await copies.write(dest, Buffer.alloc(0), file.path)
        const actual = await hashFile(join(dir, file.path), (n) => options.onProgress?.({ label: 'verify', done: (done = base + n), total, unit: 'bytes' }), copy)
        done = base + file.size
        const check = compare(file.path, file, actual)
        checks.push(check)
        if (dest !== undefined) {
          await copies.finish(dest)
          if (check.status === 'ok') options.onCopied?.(dest)
        }
      } catch (error) {
        if (error instanceof CopyWriteError) throw error
        checks.push({ path: file.path, status: 'invalid', detail: describeError(error) })
      }
    }
  } finally {
    await copies.close()
  }
  found.delete(METADATA_FILE)
  for (const [path, kind] of found) checks.push({ path, status: 'extra', detail: kind === 'file' ? 'absent des métadonnées' : `${kind}, absent des métadonnées` })
  return checks
}

/** Fields that differ between the metadata inside an archive and the copy beside it. */
const OUTSIDE_ONLY = ['archive', 'size', 'durationMs', 'encryption', 'tenantIndex', 'metadataSha256'] as const

/** The metadata inside the archive must be the one beside it, but for what only the outside can know. */
export function sameBackupDescription(inside: BackupMetadata, outside: BackupMetadata): boolean {
  const strip = (m: BackupMetadata) => {
    const copy: Record<string, unknown> = { ...m }
    for (const key of OUTSIDE_ONLY) delete copy[key]
    return JSON.stringify(copy)
  }
  return strip(inside) === strip(outside)
}

/**
 * Checks a compressed backup: the archive's size and SHA-256, then — reading it through, never
 * extracting — every entry against the metadata, and the metadata.json inside against the one beside.
 * With `onlyExtract`, the entries read until the `extract` copies were made (see the top of this file).
 */
export async function checkArchive(archivePath: string, id: string, metadata: BackupMetadata, options: VerifyOptions = {}): Promise<ArchiveChecks> {
  const archiveName = `${id}${ARCHIVE_SUFFIX}`
  const checks: FileCheck[] = []
  const prefix = `${id}/`
  const expected = new Map(metadata.files.map((file) => [`${prefix}${file.path}`, file]))
  let report
  try {
    report = await readArchive(archivePath, {
      pool: options.pool,
      keepContent: (path) => path === `${id}/${METADATA_FILE}`,
      extract: new Map([...(options.extract ?? [])].map(([path, dest]) => [`${id}/${path}`, dest])),
      onBytes: (done) => options.onProgress?.({ label: 'verify', done, total: metadata.archive?.size, unit: 'bytes' }),
      onlyExtract: options.onlyExtract ?? false,
      onCopied: (entry) => {
        const file = expected.get(entry.path)
        if (file !== undefined && compare(file.path, file, entry).status === 'ok') options.onCopied?.(entry.copiedTo!)
      },
    })
  } catch (error) {
    if (error instanceof CopyWriteError) throw error
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT'
    return { checks: [{ path: archiveName, status: missing ? 'missing' : 'invalid', detail: missing ? undefined : describeError(error) }], unread: [] }
  }
  const expectedArchive = metadata.archive ?? { size: -1, sha256: '' }
  const archiveCheck = compare(archiveName, { path: archiveName, ...expectedArchive }, { size: report.size, sha256: report.sha256 })
  // The bytes not inflated are not the ones create verified: read it all to say which file differs, and where.
  if (report.partial && archiveCheck.status !== 'ok') return checkArchive(archivePath, id, metadata, { pool: options.pool, onProgress: options.onProgress })
  if (report.problems.length > 0) {
    archiveCheck.status = archiveCheck.status === 'ok' ? 'invalid' : archiveCheck.status
    archiveCheck.detail = [archiveCheck.status === 'modified' ? archiveCheck.detail : undefined, ...report.problems].filter(Boolean).join('; ')
  }
  checks.push(archiveCheck)
  // The archive's own bytes are damaged (a gzip member that does not inflate, a cut): that is the
  // finding, and where; listing every file after it as missing would only hide it.
  if (report.damage !== undefined) {
    archiveCheck.damage = report.damage
    return { checks, unread: [] }
  }

  const directories = new Set([prefix, `${prefix}${CSV_DIR}/`])
  let innerSeen = false
  for (const entry of report.entries) {
    if (entry.type === 'Directory' && directories.has(entry.path.endsWith('/') ? entry.path : `${entry.path}/`)) continue
    if (entry.type === 'File' && entry.path === `${prefix}${METADATA_FILE}` && !innerSeen) {
      innerSeen = true
      checks.push(innerMetadataCheck(entry.content, metadata))
      continue
    }
    const file = entry.type === 'File' ? expected.get(entry.path) : undefined
    if (file === undefined) {
      const kind = entry.type === 'File' ? 'absent des métadonnées' : `${entry.type}${entry.linkpath ? ` → ${entry.linkpath}` : ''}, absent des métadonnées`
      checks.push({ path: entry.path, status: 'extra', detail: kind })
      continue
    }
    expected.delete(entry.path)
    checks.push(compare(file.path, file, entry))
  }
  // A partial read did not reach the files after the copies: they are unread, not missing.
  const unread = report.partial ? [...expected.values()].map((file) => file.path) : []
  if (!report.partial) {
    if (!innerSeen) checks.push({ path: METADATA_FILE, status: 'missing', detail: 'pas de metadata.json dans l’archive' })
    for (const file of expected.values()) checks.push({ path: file.path, status: 'missing', expected: { size: file.size, sha256: file.sha256 } })
  }
  // One line per file in the metadata's order (whatever order the archive holds them in), then the rest.
  const order = new Map(metadata.files.map((file, index) => [file.path, index]))
  const rank = (check: FileCheck, index: number) => (check.path === archiveName ? -1 : (order.get(check.path) ?? metadata.files.length + index))
  return { checks: checks.map((check, index) => ({ check, key: rank(check, index) })).sort((a, b) => a.key - b.key).map(({ check }) => check), unread }
}

function innerMetadataCheck(content: Buffer | undefined, outside: BackupMetadata): FileCheck {
  const path = `${METADATA_FILE} (dans l’archive)`
  if (content === undefined) return { path, status: 'invalid', detail: 'plus de 16 Mio' }
  try {
    const { metadata, sealValid } = parseMetadata(content.toString('utf8'), path)
    if (!sealValid) return { path, status: 'modified', detail: 'son contenu ne correspond pas à son sceau (metadataSha256)' }
    if (!sameBackupDescription(metadata, outside)) return { path, status: 'modified', detail: 'diffère des métadonnées posées à côté de l’archive' }
    return { path, status: 'ok' }
  } catch (error) {
    return { path, status: 'invalid', detail: describeError(error) }
  }
}
