/**
 * Between a local file and a storage: an upload that knows its size and SHA-256 before it starts (so S3
 * stores the hash at creation), and a download that is atomic and checked against the stored hash
 * (temporary name, fsync, rename only if the bytes match; nothing is left behind on failure).
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { lstat, open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ToolkitError } from '../errors.ts'
import { fsyncPath, temporaryPathFor } from '../fs/atomic.ts'
import { notFound, type ObjectStorage, type PutResult } from './storage.ts'

/**
 * Uploads a regular local file to `key`; `sha256` saves the hashing pass when the caller already has it.
 * @example await uploadFile(storage, 'backup-x.tar.gz', '/var/backups/backup-x.tar.gz', { sha256: metadata.archive.sha256 })
 */
export async function uploadFile(storage: ObjectStorage, key: string, path: string, options: { sha256?: string } = {}): Promise<PutResult> {
  const stats = await lstat(path).catch((error: unknown) => {
    throw new ToolkitError(`fichier à envoyer ${path} introuvable`, { hint: 'vérifiez le chemin', cause: error })
  })
  if (!stats.isFile()) throw new ToolkitError(`${path} n’est pas un fichier ordinaire : refusé`, { hint: 'indiquez le fichier lui-même, pas un lien ni un dossier' })
  let sha256 = options.sha256
  if (sha256 === undefined) {
    const hash = createHash('sha256')
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
    sha256 = hash.digest('hex')
  }
  return storage.put(key, createReadStream(path), { size: stats.size, sha256 })
}

/**
 * Downloads `key` to `path` atomically; the file appears only if its bytes match the stored size and
 * SHA-256 (or `expectedSha256`, e.g. from the backup's metadata).
 * @example await downloadObject(storage, 'backup-x.tar.gz', '/tmp/restore/backup-x.tar.gz')
 */
export async function downloadObject(storage: ObjectStorage, key: string, path: string, options: { expectedSha256?: string } = {}): Promise<{ size: number; sha256: string }> {
  const head = await storage.head(key)
  if (head === undefined) throw notFound(key, storage.location)
  const expected = options.expectedSha256 ?? head.sha256
  if (expected === undefined) throw new ToolkitError(`« ${key} » sur ${storage.location} n’a pas de SHA-256 enregistré : impossible de vérifier le téléchargement`, { hint: 'passez le SHA-256 attendu (celui de la métadonnée de la sauvegarde)' })
  const temporary = temporaryPathFor(path)
  const hash = createHash('sha256')
  let size = 0
  try {
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk)
        size += chunk.length
        callback(null, chunk)
      },
    })
    await pipeline(await storage.get(key), hashing, createWriteStream(temporary, { flags: 'wx', mode: 0o600 }))
    const sha256 = hash.digest('hex')
    if (size !== head.size || sha256 !== expected) {
      throw new ToolkitError(`« ${key} » téléchargé depuis ${storage.location} ne correspond pas à son empreinte (${size} octets sur ${head.size}, SHA-256 ${sha256 === expected ? 'identique' : 'différent'})`, { hint: 'la copie distante est tronquée ou altérée ; restaurez une autre sauvegarde' })
    }
    const handle = await open(temporary, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, path)
    fsyncPath(dirname(path))
    return { size, sha256 }
  } catch (error) {
    await rm(temporary, { force: true })
    if (error instanceof ToolkitError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC') throw new ToolkitError(`disque plein pendant le téléchargement de « ${key} » vers ${dirname(path)}`, { hint: 'libérez de la place ou choisissez un autre dossier de destination' })
    throw new ToolkitError(`téléchargement de « ${key} » vers ${path} impossible (${code ?? (error as Error).message})`, { hint: 'vérifiez le dossier de destination', cause: error })
  }
}
