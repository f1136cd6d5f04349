/**
 * A replica on object storage (S3, Azure, or any `ObjectStorage`), and the one way a `--dir` value
 * becomes a ReplicaStore. Objects are whole or absent (ObjectStorage's invariant), so the replica's
 * own invariant (a half-written object is never visible under its key) holds as on a folder.
 * Large objects (snapshots) are built in a local staging folder, then uploaded with their SHA-256 and
 * downloaded atomically, checked against it.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { temporaryPathFor } from '../fs/atomic.ts'
import type { ObjectStorage } from '../storage/storage.ts'
import { downloadObject, uploadFile } from '../storage/transfer.ts'
import { openStorage, parseStorageUrl, type StorageEnvironment } from '../storage/url.ts'
import { folderReplicaStore, type ReplicaStore } from './store.ts'

/**
 * @example const replica = objectReplicaStore(openStorage('s3://ipm-pitr/prod', { env }), '/var/tmp/ipm-pitr-staging')
 */
export function objectReplicaStore(storage: ObjectStorage, stagingDir: string): ReplicaStore {
  const read = async (key: string): Promise<Buffer | null> => {
    if ((await storage.head(key)) === undefined) return null
    const chunks: Buffer[] = []
    for await (const chunk of await storage.get(key)) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }
  return {
    label: storage.location,
    async put(key, data) {
      const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      await storage.put(key, Readable.from([body]), { size: body.length })
    },
    stagingPathFor(key) {
      mkdirSync(stagingDir, { recursive: true, mode: 0o700 })
      return temporaryPathFor(join(stagingDir, key.replaceAll('/', '_')))
    },
    async putFile(key, localPath) {
      try {
        await uploadFile(storage, key, localPath)
      } finally {
        rmSync(localPath, { force: true })
      }
    },
    get: read,
    async getFile(key, localPath) {
      await downloadObject(storage, key, localPath)
    },
    async list(prefix) {
      const names = new Set<string>()
      const start = `${prefix.replace(/\/+$/, '')}/`
      for await (const object of storage.list(start)) {
        const name = object.key.slice(start.length).split('/')[0]
        if (name) names.add(name)
      }
      return [...names].sort()
    },
    async delete(key) {
      await storage.delete(key)
    },
    async deletePrefix(prefix) {
      const keys: string[] = []
      for await (const object of storage.list(`${prefix.replace(/\/+$/, '')}/`)) keys.push(object.key)
      for (const key of keys) await storage.delete(key)
    },
  }
}

/**
 * The replica a `--dir`/`--replica` value names: a folder (the replica's own atomic folder format),
 * `s3://bucket/prefix` or `azure://container/prefix` (through scripts/lib/storage).
 * @example const replica = openReplicaStore('s3://ipm-pitr/prod', { env: environment.storage, cwd, stagingDir })
 */
export function openReplicaStore(url: string, options: { env: StorageEnvironment; cwd: string; stagingDir: string }): ReplicaStore {
  const parsed = parseStorageUrl(url)
  if (parsed.kind === 'folder') return folderReplicaStore(resolve(options.cwd, parsed.path))
  return objectReplicaStore(openStorage(url, { env: options.env, cwd: options.cwd }), options.stagingDir)
}
