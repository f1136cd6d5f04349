/**
 * Where a replica's files live, behind the four operations replication needs: put a whole object
 * atomically, read one, list a "folder", delete one. Keys are `/`-separated relative paths
 * (`generations/<id>/segments/…`). Every method is asynchronous so that an object storage (S3, Azure)
 * can back the same interface later; the folder implementation below is the only one today.
 *
 * Invariant kept by every implementation: after `put`/`putFile` resolves, the object is durable and
 * readers see all of it or (before) none of it; a crash never leaves half an object under its key.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { TEMPORARY_MARKER, commitRename, fsyncPath, temporaryPathFor, writeFileAtomic } from '../fs/atomic.ts'

export interface ReplicaStore {
  /** A short description for messages (a folder path, a bucket URL without secrets). */
  readonly label: string
  /** Writes `data` under `key`, all or nothing. */
  put(key: string, data: Uint8Array): Promise<void>
  /** A local path where a large object for `key` can be built before `putFile` (same file system when possible). */
  stagingPathFor(key: string): string
  /** Moves a complete local file (built at `stagingPathFor(key)`) under `key`, all or nothing; the local file is consumed. */
  putFile(key: string, localPath: string): Promise<void>
  /** The whole object, or null when there is none. */
  get(key: string): Promise<Buffer | null>
  /** Copies an object to a local file (large objects: snapshots). */
  getFile(key: string, localPath: string): Promise<void>
  /** The names (last path component) of the objects directly under `prefix`; none when it does not exist. Temporary leftovers are never listed. */
  list(prefix: string): Promise<string[]>
  /** Removes an object; no error when it is already gone. */
  delete(key: string): Promise<void>
  /** Removes every object under `prefix`. */
  deletePrefix(prefix: string): Promise<void>
}

/**
 * A replica in a local folder: atomic writes by temporary name + fsync + rename + fsync of the folder.
 * @example const store = folderReplicaStore('/var/backups/pitr')
 */
export function folderReplicaStore(root: string): ReplicaStore {
  const pathOf = (key: string) => join(root, ...key.split('/'))
  const ensureParent = (path: string) => {
    const parent = dirname(path)
    if (!existsSync(parent)) {
      mkdirSync(parent, { recursive: true })
      fsyncPath(dirname(parent))
    }
  }
  return {
    label: root,
    async put(key, data) {
      const path = pathOf(key)
      ensureParent(path)
      writeFileAtomic(path, data)
    },
    stagingPathFor(key) {
      const path = pathOf(key)
      ensureParent(path)
      return temporaryPathFor(path)
    },
    async putFile(key, localPath) {
      const path = pathOf(key)
      ensureParent(path)
      fsyncPath(localPath)
      commitRename(localPath, path)
    },
    async get(key) {
      try {
        return readFileSync(pathOf(key))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw error
      }
    },
    async getFile(key, localPath) {
      copyFileSync(pathOf(key), localPath)
    },
    async list(prefix) {
      const path = pathOf(prefix)
      if (!existsSync(path)) return []
      return readdirSync(path).filter((name) => !name.includes(TEMPORARY_MARKER))
    },
    async delete(key) {
      rmSync(pathOf(key), { force: true })
    },
    async deletePrefix(prefix) {
      rmSync(pathOf(prefix), { recursive: true, force: true })
      fsyncPath(dirname(pathOf(prefix)))
    },
  }
}
