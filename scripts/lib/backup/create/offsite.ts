/**
 * Copying a finished, verified local backup to an object storage (`--offsite`, or `--dir <url>`):
 * the archive object first (streamed in parts, its size and our SHA-256 confirmed by a HEAD), the
 * metadata object LAST — so a listing of the storage never shows a backup whose archive is not
 * whole. Before copying, what killed runs left under the prefix is removed: incomplete multipart
 * uploads / uncommitted blocks, and archives whose metadata never came — never what another live
 * create is uploading (its lease names it: storage/upload-leases.ts).
 */
import { createReadStream } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { ToolkitError } from '../../errors.ts'
import { partSizeFor, shouldSweep, type ObjectStorage, type PutResult } from '../../storage/storage.ts'
import { LEASE_PREFIX, LEASE_WRITE_GRACE_MS, takeUploadLease, type UploadLease, type UploadLeaseOptions } from '../../storage/upload-leases.ts'
import type { StepListener } from '../kill-points.ts'
import { ARCHIVE_SUFFIX, ENCRYPTED_SUFFIX, SIDECAR_SUFFIX, isBackupId } from '../layout.ts'
import type { BackupMetadata } from '../metadata.ts'

export interface OffsiteCopy {
  location: string
  archive: PutResult
  metadata: PutResult
  /** Leftovers of killed runs removed first. */
  swept: string[]
  /** Why incomplete uploads could not be swept (a service without ListMultipartUploads): the copy is still made. */
  sweepWarning?: string
}

/**
 * Removes what killed runs left under the storage's `backup-` names — incomplete uploads and
 * archives whose metadata never came — and lease writes killed before they completed, sparing every key a live lease names (another create, on
 * this host or another, still uploading it): those of dead owners go whatever their age, those no
 * lease names only if older than `lease.startedBefore`. Then the dead owners' leases go.
 */
export async function sweepStorage(storage: ObjectStorage, lease: Pick<UploadLease, 'startedBefore' | 'others'>): Promise<{ removed: string[]; warning?: string }> {
  const { live, dead, staleLeases } = lease.others
  const judge = (key: string) => (live.has(key) ? 'keep' : dead.has(key) ? 'remove' : undefined)
  let removed: string[] = []
  let warning: string | undefined
  try {
    removed = (await storage.sweepIncompleteUploads('backup-', { startedBefore: lease.startedBefore, judge })).removed
    // A lease whose own write was killed (Azure keeps its uncommitted blocks a week): no lease names it,
    // and no live write of one lasts LEASE_WRITE_GRACE_MS.
    const leaseWritesBefore = new Date(lease.startedBefore.getTime() - LEASE_WRITE_GRACE_MS)
    removed.push(...(await storage.sweepIncompleteUploads(LEASE_PREFIX, { startedBefore: leaseWritesBefore, judge: () => undefined })).removed)
  } catch (error) {
    // Some S3-compatible services cannot list incomplete uploads; their lifecycle rule does it. The copy matters more.
    if (!(error instanceof ToolkitError)) throw error
    warning = `${error.message}${error.hint ? ` (${error.hint})` : ''}`
  }
  const names = new Map<string, Date>()
  for await (const object of storage.list('backup-')) if (!object.key.includes('/')) names.set(object.key, object.lastModified)
  for (const [name, modified] of names) {
    const suffix = [ENCRYPTED_SUFFIX, ARCHIVE_SUFFIX].find((candidate) => name.endsWith(candidate))
    if (suffix === undefined || !shouldSweep(name, modified, { startedBefore: lease.startedBefore, judge })) continue
    const id = name.slice(0, -suffix.length)
    if (!isBackupId(id) || names.has(`${id}${SIDECAR_SUFFIX}`)) continue
    await storage.delete(name)
    removed.push(name)
  }
  // Only once their uploads are gone: a lease left without its uploads is harmless, the reverse is not.
  if (warning === undefined) for (const key of staleLeases) await storage.delete(key)
  return { removed, ...(warning !== undefined ? { warning } : {}) }
}

/**
 * Uploads the backup whose archive is `archivePath` (its stored form: `.tar.gz` or `.tar.gz.enc`)
 * and whose metadata text is `metadataText`, under a lease naming both objects (upload-leases.ts),
 * held from before the sweep until the metadata is written.
 * @example await copyBackup(storage, { archivePath, metadataText })
 */
export async function copyBackup(storage: ObjectStorage, backup: { archivePath: string; metadataText: string }, options: { onStep?: StepListener; lease?: UploadLeaseOptions } = {}): Promise<OffsiteCopy> {
  const metadata = JSON.parse(backup.metadataText) as BackupMetadata
  const stored = metadata.encryption?.ciphertext ?? metadata.archive
  if (stored === null) throw new ToolkitError('une sauvegarde non compressée ne peut pas être copiée hors site', { hint: 'retirez --no-compress : hors site, une sauvegarde est une archive et sa métadonnée', exitCode: 2 })
  const metadataKey = `${metadata.id}${SIDECAR_SUFFIX}`
  const lease = await takeUploadLease(storage, [stored.path, metadataKey], options.lease)
  try {
    return await copyUnderLease(storage, backup, { stored, metadataKey, lease, onStep: options.onStep ?? (() => {}) })
  } finally {
    await lease.release()
  }
}

async function copyUnderLease(storage: ObjectStorage, backup: { archivePath: string; metadataText: string }, context: { stored: { path: string; size: number; sha256: string }; metadataKey: string; lease: UploadLease; onStep: StepListener }): Promise<OffsiteCopy> {
  const { stored, metadataKey, lease, onStep: step } = context
  const sweep = await sweepStorage(storage, lease)
  const info = await lstat(backup.archivePath)
  if (!info.isFile() || info.size !== stored.size) throw new ToolkitError(`${backup.archivePath} ne correspond plus à sa métadonnée (${info.size} octets au lieu de ${stored.size})`, { hint: 'vérifiez la sauvegarde locale (« verify ») avant de la copier' })
  let sent = 0
  let announced = false
  const firstPart = partSizeFor(stored.size)
  async function* body(): AsyncGenerator<Buffer> {
    for await (const chunk of createReadStream(backup.archivePath, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      sent += chunk.length
      if (!announced && sent > firstPart) {
        announced = true
        step('offsite:mid-upload')
      }
      yield chunk
    }
  }
  const archive = await storage.put(stored.path, body(), { size: stored.size, sha256: stored.sha256 })
  step('offsite:before-metadata')
  const text = Buffer.from(backup.metadataText, 'utf8')
  const metadataPut = await storage.put(metadataKey, Readable.from([text]), { size: text.length })
  return { location: storage.location, archive, metadata: metadataPut, swept: sweep.removed, ...(sweep.warning !== undefined ? { sweepWarning: sweep.warning } : {}) }
}
