/**
 * Verifying and restoring a backup that is encrypted or kept on an object storage: each backup of
 * its chain is copied into a private scratch folder as the plain local layout (`<id>.tar.gz` +
 * `<id>.metadata.json`), and the local verify / restore run there unchanged.
 *
 * The copy streams (memory: one 64 KiB chunk and the storage's read buffer) and is checked on the
 * way: every encrypted chunk is authenticated before its plaintext is written, and the stored
 * object's size and SHA-256 must equal the metadata's — so a truncated, bit-flipped or foreign
 * object is refused before any byte reaches a database file. The scratch copy exists because the
 * archive reader needs a file (it reads gzip members at known offsets, on every core).
 *
 * Without a key, an encrypted backup is verified as far as it can be: its metadata (seal, manifest)
 * and the stored ciphertext's size and SHA-256.
 */
import { join } from 'node:path'
import { ToolkitError, describeError } from '../../errors.ts'
import { writeFileAtomic } from '../../fs/atomic.ts'
import { unwrapDataKey, type KeySource } from '../../encryption/keys.ts'
import type { ProgressListener } from '../../progress.ts'
import { digestingStream, fetchArchive } from '../archive/sealed.ts'
import { ARCHIVE_SUFFIX, SIDECAR_SUFFIX } from '../layout.ts'
import type { BackupEntry } from './catalog.ts'
import { storedArchiveName, type BackupStore } from './store.ts'
import { metadataCheck, verifyBackup, type FileCheck, type VerifyReport } from './verify.ts'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** The one line for an encrypted backup and no key: exit 1, nothing written. */
export function keyMissing(id: string, kekId: string): ToolkitError {
  return new ToolkitError(`la sauvegarde ${id} est chiffrée et aucune clé n’est fournie`, { hint: `fournissez la clé d’identifiant ${kekId} : --key-file <chemin>, BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE` })
}

/** The backup `id` and every backup it builds on, the full one first. */
export async function storedChain(store: BackupStore, id: string): Promise<BackupEntry[]> {
  const chain: BackupEntry[] = []
  let next: string | null = id
  while (next !== null) {
    const entry = await store.find(next)
    if (entry.metadata === undefined) throw new ToolkitError(`sauvegarde ${entry.id} illisible : ${entry.problem ?? '?'}`, { hint: 'restaurez une autre sauvegarde (« list »)' })
    chain.unshift(entry)
    if (chain.length > 10_000) throw new ToolkitError(`chaîne incrémentale de ${id} sans fin`)
    next = entry.metadata.incremental ? entry.metadata.parentId : null
  }
  return chain
}

/** What a stored archive must hash to: the ciphertext for an encrypted backup, else the archive. */
function storedDigest(entry: BackupEntry): { size: number; sha256: string } {
  const m = entry.metadata!
  if (m.encryption !== undefined) return { size: m.encryption.ciphertext.size, sha256: m.encryption.ciphertext.sha256 }
  if (m.archive === null) throw new ToolkitError(`sauvegarde ${entry.id} sans archive : une sauvegarde non compressée ne se lit que dans un dossier local`)
  return { size: m.archive.size, sha256: m.archive.sha256 }
}

/**
 * Copies `id` and its chain into `scratchDir` as plain local backups (decrypted with `keySource`),
 * each checked as it streams; returns the chain. Throws (a ToolkitError) on a missing key, a wrong
 * key, or stored bytes that differ from their metadata; what was copied is left for the caller's
 * scratch cleanup.
 * @example await stageChain(store, id, scratch, source); await restoreBackup({ backupDir: scratch, id, … })
 */
export async function stageChain(store: BackupStore, id: string, scratchDir: string, keySource: KeySource | undefined): Promise<BackupEntry[]> {
  const chain = await storedChain(store, id)
  const keys = await openChainKeys(chain, keySource)
  await copyChain(store, chain, scratchDir, keys)
  return chain
}

/** The data key of every encrypted backup of `chain`, opened before any byte is copied: a missing or wrong key fails in one line. */
async function openChainKeys(chain: BackupEntry[], keySource: KeySource | undefined): Promise<Map<string, Buffer>> {
  const keys = new Map<string, Buffer>()
  for (const entry of chain) {
    const encryption = entry.metadata!.encryption
    if (encryption === undefined) continue
    if (keySource === undefined) throw keyMissing(entry.id, encryption.key.kekId)
    keys.set(entry.id, await unwrapDataKey(encryption.key, keySource))
  }
  return keys
}

/** Copies each backup of `chain` into `scratchDir`, checked as it streams; wipes the data keys afterwards. */
async function copyChain(store: BackupStore, chain: BackupEntry[], scratchDir: string, keys: Map<string, Buffer>): Promise<void> {
  try {
    for (const entry of chain) {
      if (entry.problem !== undefined) throw new ToolkitError(`sauvegarde ${entry.id} incomplète : ${entry.problem}`, { hint: 'restaurez une autre sauvegarde (« list »)' })
      await fetchArchive(await store.openArchive(entry), join(scratchDir, `${entry.id}${ARCHIVE_SUFFIX}`), storedDigest(entry), keys.get(entry.id), `${store.location}${store.remote ? '' : '/'}${storedArchiveName(entry)}`)
      writeFileAtomic(join(scratchDir, `${entry.id}${SIDECAR_SUFFIX}`), await store.metadataText(entry))
    }
  } finally {
    for (const key of keys.values()) key.fill(0)
  }
}

/**
 * Verifies a backup of any store: with the key (or unencrypted), everything the local verify checks,
 * on a checked scratch copy; without the key, the metadata and the stored ciphertext's size and SHA-256.
 * @example const report = await verifyStoredBackup(objectStore(storage), id, { scratchDir, keySource })
 */
export async function verifyStoredBackup(store: BackupStore, id: string, options: { scratchDir: string; keySource: KeySource | undefined; onProgress?: ProgressListener }): Promise<VerifyReport> {
  const entry = await store.find(id)
  const metadataName = `${id}${SIDECAR_SUFFIX}`
  if (entry.metadata === undefined) return { id, form: 'archive', ok: false, checks: [{ path: metadataName, status: 'invalid', detail: entry.problem ?? 'illisible' }] }
  const metadata = entry.metadata
  const archiveName = storedArchiveName(entry)
  const head = metadataCheck(metadataName, metadata, entry.sealValid, 'archive')
  if (entry.problem !== undefined) return { id, form: 'archive', ok: false, checks: [head, { path: archiveName, status: 'missing', detail: entry.problem }], metadata }
  if (metadata.encryption !== undefined && options.keySource === undefined) {
    const expected = storedDigest(entry)
    const { stream, digest } = digestingStream()
    let archiveCheck: FileCheck
    try {
      await pipeline(await store.openArchive(entry), stream, new Writable({ write: (_chunk, _encoding, callback) => callback() }))
      const actual = digest()
      const same = actual.size === expected.size && actual.sha256 === expected.sha256
      archiveCheck = { path: archiveName, status: same ? 'ok' : 'modified', expected, actual, ...(same ? {} : { detail: actual.size !== expected.size ? `taille ${actual.size} au lieu de ${expected.size}` : 'SHA-256 différent' }) }
    } catch (error) {
      archiveCheck = { path: archiveName, status: 'invalid', detail: describeError(error) }
    }
    const checks = [head, archiveCheck]
    return { id, form: 'archive', ok: checks.every((c) => c.status === 'ok'), checks, metadata, contentVerified: false }
  }
  const chain = await storedChain(store, id)
  // A wrong or missing key is the operator's mistake, not a damaged backup: it throws (one clear line).
  const keys = await openChainKeys(chain, options.keySource)
  try {
    await copyChain(store, chain, options.scratchDir, keys)
  } catch (error) {
    return { id, form: 'archive', ok: false, checks: [head, { path: archiveName, status: 'invalid', detail: describeError(error) }], metadata }
  }
  const report = await verifyBackup(options.scratchDir, id, { ...(options.onProgress ? { onProgress: options.onProgress } : {}) })
  return { ...report, checks: [head, ...report.checks.filter((c) => c.path !== metadataName)], ok: head.status === 'ok' && report.ok, metadata, contentVerified: true }
}
