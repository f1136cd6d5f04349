/**
 * A local folder as object storage. Key "a/b.tar.gz" is the file <root>/a/b.tar.gz; its SHA-256 is
 * kept beside it in <root>/a/b.tar.gz.sha256, in `sha256sum` format (so `sha256sum -c` checks it).
 *
 * Invariant: a put writes data and hash under temporary names (fsynced), renames the hash, then the
 * data, then fsyncs the folder; so a visible new object always has its hash, and a killed put leaves
 * only `*.tmp-<pid>-*` files (never listed; swept). Only regular files are objects: a link, a
 * folder or a device under a key is refused, never followed.
 */
import { constants, createReadStream, createWriteStream } from 'node:fs'
import { lstat, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ToolkitError } from '../errors.ts'
import { TEMPORARY_MARKER, fsyncPath, temporaryPathFor } from '../fs/atomic.ts'
import { checkKey, hashedBody, notFound, shouldSweep, type ByteRange, type ObjectHead, type ObjectStorage, type PutOptions, type PutResult, type StoredObject, type SweepOptions } from './storage.ts'

const HASH_SUFFIX = '.sha256'

function ioFailure(action: string, path: string, error: unknown): ToolkitError {
  if (error instanceof ToolkitError) return error
  const code = (error as NodeJS.ErrnoException).code
  const hints: Record<string, string> = {
    ENOSPC: 'le disque est plein : libérez de la place ou choisissez un autre dossier',
    EACCES: 'vérifiez les droits sur le dossier',
    EROFS: 'le dossier est en lecture seule',
  }
  return new ToolkitError(`${action} ${path} impossible (${code ?? (error as Error).message})`, { hint: hints[code ?? ''] ?? 'vérifiez le dossier et relancez', cause: error })
}

function notRegular(path: string): ToolkitError {
  return new ToolkitError(`${path} n’est pas un fichier ordinaire : refusé`, { hint: 'un lien, un dossier ou un périphérique ne peut pas être une sauvegarde ; retirez-le du dossier' })
}

export class FolderStorage implements ObjectStorage {
  readonly location: string
  readonly #root: string

  /** @example new FolderStorage('./backups') (relative paths are resolved against `cwd`) */
  constructor(root: string, options: { cwd?: string } = {}) {
    this.#root = resolve(options.cwd ?? '.', root)
    this.location = this.#root
  }

  #path(key: string): string {
    checkKey(key, this.location, [HASH_SUFFIX])
    if (key.includes(TEMPORARY_MARKER)) throw new ToolkitError(`nom d’objet réservé « ${key} » sur ${this.location}`, { hint: `« ${TEMPORARY_MARKER} » marque les fichiers en cours d’écriture ; choisissez un autre nom` })
    return join(this.#root, ...key.split('/'))
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const path = this.#path(key)
    const dataTemporary = temporaryPathFor(path)
    const hashTemporary = temporaryPathFor(`${path}${HASH_SUFFIX}`)
    const result = { size: 0, sha256: '' }
    try {
      await mkdir(dirname(path), { recursive: true })
      const existing = await lstat(path).catch(() => undefined)
      if (existing !== undefined && !existing.isFile()) throw notRegular(path)
      const out = createWriteStream(dataTemporary, { flags: 'wx', mode: 0o600 })
      await pipeline(hashedBody(key, body, options, result), out)
      await fsyncFile(dataTemporary)
      const hashFile = await open(hashTemporary, 'wx', 0o600)
      try {
        await hashFile.writeFile(`${result.sha256}  ${basename(path)}\n`)
        await hashFile.sync()
      } finally {
        await hashFile.close()
      }
      await rename(hashTemporary, `${path}${HASH_SUFFIX}`)
      await rename(dataTemporary, path)
      fsyncPath(dirname(path))
    } catch (error) {
      await rm(dataTemporary, { force: true })
      await rm(hashTemporary, { force: true })
      if (error instanceof ToolkitError) throw error
      const failure = ioFailure('écriture de', path, error)
      throw new ToolkitError(`envoi de « ${key} » sur ${this.location} a échoué : ${failure.message}`, { hint: failure.hint, cause: error })
    }
    return { key, ...result }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.#path(key)
    let handle
    try {
      // O_NOFOLLOW: a link planted at the key is refused by the open itself, not by a check before it.
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw notFound(key, this.location)
      if (code === 'ELOOP') throw notRegular(path)
      throw ioFailure('lecture de', path, error)
    }
    const stats = await handle.stat()
    if (!stats.isFile()) {
      await handle.close()
      throw notRegular(path)
    }
    const end = range?.length === undefined ? undefined : range.offset + range.length - 1
    if (range?.length === 0) {
      await handle.close()
      return Readable.from([])
    }
    return createReadStream('', { fd: handle, start: range?.offset, end, autoClose: true })
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    const path = this.#path(key)
    const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw ioFailure('lecture de', path, error)
    })
    if (stats === undefined) return undefined
    if (!stats.isFile()) throw notRegular(path)
    return { key, size: stats.size, lastModified: stats.mtime, sha256: await this.#storedHash(path) }
  }

  async #storedHash(path: string): Promise<string | undefined> {
    const hashPath = `${path}${HASH_SUFFIX}`
    const stats = await lstat(hashPath).catch(() => undefined)
    if (stats === undefined || !stats.isFile() || stats.size > 4096) return undefined
    const match = /^([0-9a-f]{64}) {2}(.+)\n$/.exec(await readFile(hashPath, 'utf8'))
    return match && match[2] === basename(path) ? match[1] : undefined
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const keys: StoredObject[] = []
    // Start at the deepest folder the prefix names, so listing one backup's prefix stays cheap.
    const folderPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : ''
    await this.#walk(folderPart, prefix, keys)
    keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    yield* keys
  }

  async #walk(folderKey: string, prefix: string, into: StoredObject[], onEntry?: (key: string, path: string) => Promise<void>): Promise<void> {
    const folder = folderKey === '' ? this.#root : join(this.#root, ...folderKey.split('/'))
    let entries
    try {
      entries = await readdir(folder, { withFileTypes: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return
      throw ioFailure('lecture du dossier', folder, error)
    }
    for (const entry of entries) {
      const key = folderKey === '' ? entry.name : `${folderKey}/${entry.name}`
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#walk(key, prefix, into, onEntry)
        continue
      }
      if (!key.startsWith(prefix)) continue
      if (onEntry !== undefined) {
        await onEntry(key, join(folder, entry.name))
        continue
      }
      // Links, sockets and the like are not objects; temporary files and hashes are not either.
      if (!entry.isFile() || entry.name.includes(TEMPORARY_MARKER) || entry.name.endsWith(HASH_SUFFIX)) continue
      const stats = await lstat(join(folder, entry.name)).catch(() => undefined)
      if (stats?.isFile()) into.push({ key, size: stats.size, lastModified: stats.mtime })
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key)
    try {
      const stats = await lstat(path).catch(() => undefined)
      if (stats !== undefined && !stats.isFile()) throw notRegular(path)
      await unlink(path).catch(ignoreMissing)
      await unlink(`${path}${HASH_SUFFIX}`).catch(ignoreMissing)
      fsyncPath(dirname(path))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw ioFailure('suppression de', path, error)
    }
  }

  async sweepIncompleteUploads(prefix: string, options: SweepOptions): Promise<{ removed: string[] }> {
    const removed: string[] = []
    const folderPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : ''
    await this.#walk(folderPart, prefix, [], async (key, path) => {
      const stats = await lstat(path).catch(() => undefined)
      // The object a leftover belongs to: its key without the temporary marker and the hash suffix.
      const objectKey = key.split(TEMPORARY_MARKER)[0]!.replace(/\.sha256$/, '')
      if (stats === undefined || !stats.isFile() || !shouldSweep(objectKey, stats.mtime, options)) return
      const isTemporary = basename(path).includes(TEMPORARY_MARKER)
      // A hash whose object is gone: the put died between the two renames.
      const isOrphanHash = basename(path).endsWith(HASH_SUFFIX) && (await lstat(path.slice(0, -HASH_SUFFIX.length)).catch(() => undefined)) === undefined
      if (!isTemporary && !isOrphanHash) return
      await rm(path, { force: true })
      removed.push(key)
    })
    return { removed: removed.sort() }
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
