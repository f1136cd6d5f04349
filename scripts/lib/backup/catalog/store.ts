/**
 * Where the backups of `--dir` are kept, behind one interface: a local folder (the layout of
 * layout.ts, folders and archives) or any ObjectStorage (S3, Azure, a folder reached as storage:
 * archives only). Everything that lists, verifies, restores, prunes or rekeys goes through a
 * BackupStore and never asks which one it has.
 *
 * Objects of a backup on a storage: `<id>.tar.gz` (or `<id>.tar.gz.enc` when encrypted), then
 * `<id>.metadata.json` written LAST — a backup is complete iff its metadata object exists, as on disk.
 */
import { createReadStream } from 'node:fs'
import { lstat, open, readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { ToolkitError, describeError } from '../../errors.ts'
import { writeFileAtomic } from '../../fs/atomic.ts'
import type { ObjectStorage } from '../../storage/storage.ts'
import { ARCHIVE_SUFFIX, ENCRYPTED_SUFFIX, SIDECAR_SUFFIX, assertBackupId, isBackupId } from '../layout.ts'
import { parseMetadata } from '../metadata.ts'
import { findBackupEntry, listBackupEntries, type BackupEntry } from './catalog.ts'
import { removeBackup } from './rotation.ts'

/** A metadata object larger than this is not ours (and is not read into memory). */
const MAX_METADATA_BYTES = 16 << 20

export interface BackupStore {
  /** For messages: a folder's path or a storage URL without credentials. */
  readonly location: string
  /** True for an object storage (S3, Azure…): uncompressed folders cannot live there. */
  readonly remote: boolean
  /** Complete backups, newest first. */
  list(): Promise<BackupEntry[]>
  /** One complete backup; a ToolkitError when the id is malformed or unknown. */
  find(id: string): Promise<BackupEntry>
  /** The stored archive's bytes (the ciphertext when encrypted). */
  openArchive(entry: BackupEntry): Promise<Readable>
  /** `length` bytes of the stored archive from `offset` (fewer when it ends first): a tenant restore's sections. */
  readArchiveRange(entry: BackupEntry, offset: number, length: number): Promise<Buffer>
  /** The metadata's exact text (its seal covers these bytes). */
  metadataText(entry: BackupEntry): Promise<string>
  /** Replaces the metadata (rekey), atomically. */
  writeMetadata(entry: BackupEntry, text: string): Promise<void>
  /** Removes a backup, its metadata first so that it stops being complete before its archive goes. */
  remove(entry: BackupEntry): Promise<void>
}

/** The stored archive's name: the ciphertext for an encrypted backup. */
export function storedArchiveName(entry: Pick<BackupEntry, 'id' | 'metadata'>): string {
  return `${entry.id}${entry.metadata?.encryption !== undefined ? ENCRYPTED_SUFFIX : ARCHIVE_SUFFIX}`
}

/** The local backup folder (the layout of layout.ts). */
export function folderStore(backupDir: string): BackupStore {
  return {
    location: backupDir,
    remote: false,
    list: () => listBackupEntries(backupDir),
    find: (id) => findBackupEntry(backupDir, id),
    async openArchive(entry) {
      const info = await lstat(entry.paths.archive).catch(() => undefined)
      if (info === undefined) throw new ToolkitError(`archive ${entry.paths.archive} manquante`, { hint: 'la métadonnée est là sans son archive ; restaurez une autre sauvegarde' })
      if (!info.isFile()) throw new ToolkitError(`${entry.paths.archive} n’est pas un fichier ordinaire : refusé`, { hint: 'retirez ce fichier du dossier des sauvegardes' })
      return createReadStream(entry.paths.archive, { highWaterMark: 1 << 20 })
    },
    async readArchiveRange(entry, offset, length) {
      const handle = await open(entry.paths.archive, 'r')
      try {
        const buffer = Buffer.alloc(length)
        let got = 0
        while (got < length) {
          const { bytesRead } = await handle.read(buffer, got, length - got, offset + got)
          if (bytesRead === 0) break
          got += bytesRead
        }
        return buffer.subarray(0, got)
      } finally {
        await handle.close()
      }
    },
    metadataText: (entry) => readFile(entry.paths.sidecar, 'utf8'),
    writeMetadata: async (entry, text) => writeFileAtomic(entry.paths.sidecar, text),
    remove: (entry) => removeBackup(backupDir, entry),
  }
}

/** Backups kept as objects on a storage (S3, Azure, or a folder used as storage). */
export function objectStore(storage: ObjectStorage): BackupStore {
  const read = async (key: string): Promise<string> => {
    const head = await storage.head(key)
    if (head === undefined) throw new ToolkitError(`objet « ${key} » introuvable sur ${storage.location}`)
    if (head.size > MAX_METADATA_BYTES) throw new ToolkitError(`« ${key} » fait ${head.size} octets : ce n’est pas une métadonnée de sauvegarde`)
    const parts: Buffer[] = []
    for await (const chunk of await storage.get(key)) parts.push(chunk as Buffer)
    return Buffer.concat(parts).toString('utf8')
  }
  const entryFor = async (id: string, present: Set<string> | undefined): Promise<BackupEntry> => {
    const sidecar = `${id}${SIDECAR_SUFFIX}`
    const paths = { id, directory: id, archive: `${id}${ARCHIVE_SUFFIX}`, sidecar }
    try {
      const { metadata, sealValid } = parseMetadata(await read(sidecar), `${storage.location}${sidecar}`)
      if (metadata.id !== id) return { id, form: 'archive', paths, sealValid: false, problem: `sa métadonnée décrit une autre sauvegarde (${metadata.id})` }
      const archive = storedArchiveName({ id, metadata })
      const entry: BackupEntry = { id, form: 'archive', paths: { ...paths, archive }, metadata, sealValid }
      const there = present === undefined ? (await storage.head(archive)) !== undefined : present.has(archive)
      if (!there) entry.problem = `archive ${archive} absente du stockage`
      return entry
    } catch (error) {
      return { id, form: 'archive', paths, sealValid: false, problem: describeError(error) }
    }
  }
  return {
    location: storage.location,
    remote: true,
    async list() {
      const names = new Set<string>()
      for await (const object of storage.list('backup-')) if (!object.key.includes('/')) names.add(object.key)
      const ids = [...names].filter((name) => name.endsWith(SIDECAR_SUFFIX)).map((name) => name.slice(0, -SIDECAR_SUFFIX.length)).filter(isBackupId)
      const entries = await Promise.all(ids.map((id) => entryFor(id, names)))
      return entries.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    },
    async find(id) {
      assertBackupId(id)
      if ((await storage.head(`${id}${SIDECAR_SUFFIX}`)) === undefined) {
        throw new ToolkitError(`aucune sauvegarde « ${id} » sur ${storage.location}`, { hint: 'listez les sauvegardes avec « advanced-backup list --dir <url> »' })
      }
      return entryFor(id, undefined)
    },
    openArchive: (entry) => storage.get(entry.paths.archive),
    async readArchiveRange(entry, offset, length) {
      const parts: Buffer[] = []
      for await (const chunk of await storage.get(entry.paths.archive, { offset, length })) parts.push(chunk as Buffer)
      return Buffer.concat(parts)
    },
    metadataText: (entry) => read(entry.paths.sidecar),
    async writeMetadata(entry, text) {
      const bytes = Buffer.from(text, 'utf8')
      await storage.put(entry.paths.sidecar, Readable.from([bytes]), { size: bytes.length })
    },
    async remove(entry) {
      await storage.delete(entry.paths.sidecar)
      await storage.delete(entry.paths.archive)
    },
  }
}
