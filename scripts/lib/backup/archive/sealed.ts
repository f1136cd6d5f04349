/**
 * The encrypted form of a backup archive (`<id>.tar.gz.enc`, docs/ENCRYPTION_FORMAT.md) on a local
 * disk: sealing a finished `.tar.gz`, proving the sealed file opens back to the same bytes, and
 * opening a stored stream into a plaintext file whose bytes are checked twice — chunk by chunk by
 * the decrypting stream (nothing of a tampered chunk is written), and as a whole against the
 * ciphertext's recorded size and SHA-256.
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { Transform, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ToolkitError, describeError } from '../../errors.ts'
import { createDecryptStream, createEncryptStream } from '../../encryption/streams.ts'

export interface Digest {
  size: number
  sha256: string
}

/** A pass-through that hashes and counts what crosses it. */
export function digestingStream(): { stream: Transform; digest: () => Digest } {
  const hash = createHash('sha256')
  let size = 0
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      size += chunk.length
      callback(null, chunk)
    },
  })
  return { stream, digest: () => ({ size, sha256: hash.digest('hex') }) }
}

/**
 * Encrypts `source` into `dest` (created, mode 0600, fsynced) and returns the ciphertext's size and SHA-256.
 * @example const ciphertext = await sealFile('staging/x.tar.gz', 'staging/x.tar.gz.enc', dataKey)
 */
export async function sealFile(source: string, dest: string, dataKey: Buffer): Promise<Digest> {
  const { stream, digest } = digestingStream()
  await pipeline(createReadStream(source, { highWaterMark: 1 << 20 }), createEncryptStream(dataKey), stream, createWriteStream(dest, { flags: 'wx', mode: 0o600 }))
  const handle = await open(dest, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
  return digest()
}

/** Decrypts a sealed file without writing anything and compares the plaintext with `expected` (create's read-back). */
export async function assertOpensTo(sealed: string, dataKey: Buffer, expected: Digest): Promise<void> {
  const { stream, digest } = digestingStream()
  const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() })
  await pipeline(createReadStream(sealed, { highWaterMark: 1 << 20 }), createDecryptStream(dataKey), stream, sink)
  const actual = digest()
  if (actual.size !== expected.size || actual.sha256 !== expected.sha256) {
    throw new ToolkitError(`l’archive chiffrée ne redonne pas l’archive d’origine (${actual.size} octets au lieu de ${expected.size})`, { hint: 'rien n’a été publié ; vérifiez le disque et relancez' })
  }
}

/**
 * Writes the stored object `body` to `dest` (created, 0600), decrypting it when `dataKey` is given;
 * the stored bytes must match `stored` (size and SHA-256), else `dest` is removed and a ToolkitError
 * names what differs. With a key, a tampered chunk stops the copy before its plaintext is written.
 * @example await fetchArchive(await storage.get(key), dest, metadata.encryption.ciphertext, dataKey, key)
 */
export async function fetchArchive(body: Readable, dest: string, stored: Digest, dataKey: Buffer | undefined, name: string): Promise<Digest> {
  const { stream, digest } = digestingStream()
  try {
    const out = createWriteStream(dest, { flags: 'wx', mode: 0o600 })
    if (dataKey === undefined) await pipeline(body, stream, out)
    else await pipeline(body, stream, createDecryptStream(dataKey), out)
  } catch (error) {
    await rm(dest, { force: true })
    body.destroy()
    if ((error as NodeJS.ErrnoException).code === 'ENOSPC') throw new ToolkitError(`disque plein pendant la copie de « ${name} » vers ${dest}`, { hint: 'libérez de la place ou indiquez un autre dossier temporaire (TMPDIR)' })
    if (error instanceof ToolkitError) throw new ToolkitError(`« ${name} » refusé : ${error.message}`, { hint: error.hint, cause: error })
    throw new ToolkitError(`lecture de « ${name} » interrompue : ${describeError(error)}`, { hint: 'vérifiez la connexion au stockage et relancez', cause: error })
  }
  const actual = digest()
  if (actual.size !== stored.size || actual.sha256 !== stored.sha256) {
    await rm(dest, { force: true })
    throw new ToolkitError(`« ${name} » ne correspond pas à sa métadonnée (${actual.size} octets sur ${stored.size}, SHA-256 ${actual.sha256 === stored.sha256 ? 'identique' : 'différent'})`, { hint: 'la copie stockée est tronquée ou altérée ; restaurez une autre sauvegarde' })
  }
  return actual
}
