/**
 * Copying a finished, verified local backup to an object storage (`--offsite`, or `--dir <url>`):
 * the archive object first (streamed in parts, its size and our SHA-256 confirmed by a HEAD), the
 * metadata object LAST — so a listing of the storage never shows a backup whose archive is not
 * whole. Before copying, what killed runs left under the prefix is removed: incomplete multipart
 * uploads / uncommitted blocks, and archives whose metadata never came (all older than this run).
 */
import { createReadStream } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { ToolkitError } from '../../errors.ts'
import { partSizeFor, type ObjectStorage, type PutResult } from '../../storage/storage.ts'
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
 * Removes incomplete uploads and metadata-less archives under the storage's `backup-` names that
 * started before `startedBefore` (another process's live upload is newer and is spared).
 */
export async function sweepStorage(storage: ObjectStorage, startedBefore: Date): Promise<{ removed: string[]; warning?: string }> {
  let removed: string[] = []
  let warning: string | undefined
  try {
    removed = (await storage.sweepIncompleteUploads('backup-', { startedBefore })).removed
  } catch (error) {
    // Some S3-compatible services cannot list incomplete uploads; their lifecycle rule does it. The copy matters more.
    if (!(error instanceof ToolkitError)) throw error
    warning = `${error.message}${error.hint ? ` (${error.hint})` : ''}`
  }
  const names = new Map<string, Date>()
  for await (const object of storage.list('backup-')) if (!object.key.includes('/')) names.set(object.key, object.lastModified)
  for (const [name, modified] of names) {
    const suffix = [ENCRYPTED_SUFFIX, ARCHIVE_SUFFIX].find((candidate) => name.endsWith(candidate))
    if (suffix === undefined || modified >= startedBefore) continue
    const id = name.slice(0, -suffix.length)
    if (!isBackupId(id) || names.has(`${id}${SIDECAR_SUFFIX}`)) continue
    await storage.delete(name)
    removed.push(name)
  }
  return { removed, ...(warning !== undefined ? { warning } : {}) }
}

/**
 * Uploads the backup whose archive is `archivePath` (its stored form: `.tar.gz` or `.tar.gz.enc`)
 * and whose metadata text is `metadataText`.
 * @example await copyBackup(storage, { archivePath, metadataText }, { startedBefore: runStart })
 */
export async function copyBackup(storage: ObjectStorage, backup: { archivePath: string; metadataText: string }, options: { startedBefore: Date; onStep?: StepListener }): Promise<OffsiteCopy> {
  const metadata = JSON.parse(backup.metadataText) as BackupMetadata
  const stored = metadata.encryption?.ciphertext ?? metadata.archive
  if (stored === null) throw new ToolkitError('une sauvegarde non compressée ne peut pas être copiée hors site', { hint: 'retirez --no-compress : hors site, une sauvegarde est une archive et sa métadonnée', exitCode: 2 })
  const step = options.onStep ?? (() => {})
  const sweep = await sweepStorage(storage, options.startedBefore)
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
  const metadataPut = await storage.put(`${metadata.id}${SIDECAR_SUFFIX}`, Readable.from([text]), { size: text.length })
  return { location: storage.location, archive, metadata: metadataPut, swept: sweep.removed, ...(sweep.warning !== undefined ? { sweepWarning: sweep.warning } : {}) }
}
