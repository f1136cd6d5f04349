/**
 * Real storage services for the storage suite, one entry per backend in STORAGES (a fourth backend
 * is one more entry): a temp folder, s3rver (in-process, 127.0.0.1, free port) and Azurite 3.35.0
 * (child process). Each entry also brings its judges: the incomplete uploads the service holds,
 * looked at beside our library (s3rver's `._S3rver_uploads/` folder, Azure's uncommitted blobs,
 * the folder's temporary files), and a raw overwrite that changes stored bytes but not our hash.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { S3Client, PutObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3'
import { BlobServiceClient } from '@azure/storage-blob'
import S3rver from 's3rver'
import Database from 'better-sqlite3'
import { REPO_ROOT } from './cli.ts'
import { defer, tempDir } from './databases.ts'
import type { StorageEnvironment } from '../../scripts/lib/storage/url.ts'

type Cleanup = Parameters<typeof tempDir>[0]

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function waitForPort(port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * A TCP proxy to 127.0.0.1:`target` that cuts the connection carrying the client's `cutAfterBytes`-th
 * byte (counted over all connections, client to server), then either refuses every later connection
 * (`then: 'refuse'`: the network is gone) or forwards them (`then: 'forward'`: one dropped connection).
 */
export async function cuttingProxy(t: Cleanup, target: number, options: { cutAfterBytes: number; then: 'refuse' | 'forward' }): Promise<{ port: number; cuts: () => number }> {
  let sent = 0
  let cuts = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    sockets.add(client)
    if (cuts > 0 && options.then === 'refuse') return void client.destroy()
    const upstream = connect(target, '127.0.0.1')
    sockets.add(upstream)
    const close = () => (client.destroy(), upstream.destroy())
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
    client.on('data', (chunk: Buffer) => {
      if (cuts === 0 && sent + chunk.length > options.cutAfterBytes) {
        upstream.write(chunk.subarray(0, options.cutAfterBytes - sent))
        sent = options.cutAfterBytes
        cuts += 1
        // RST rather than FIN: what a dropped network or a killed server looks like.
        client.resetAndDestroy()
        upstream.destroy()
        return
      }
      sent += chunk.length
      upstream.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(t, () => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return { port: (server.address() as { port: number }).port, cuts: () => cuts }
}

/**
 * A TCP proxy to 127.0.0.1:`target` that forwards the client's first `holdAfterBytes` bytes (counted
 * over all connections, client to server), then holds every later byte until `release()`: a link
 * that stalls mid-upload, without a clock. `holding()` is true once it holds something.
 */
export async function holdingProxy(t: Cleanup, target: number, options: { holdAfterBytes: number }): Promise<{ port: number; holding: () => boolean; sent: () => number; release: () => void }> {
  let sent = 0
  let released = false
  const held: { upstream: Socket; chunk: Buffer }[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1')
    sockets.add(client).add(upstream)
    const close = () => (client.destroy(), upstream.destroy())
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
    client.on('data', (chunk: Buffer) => {
      if (released) return void upstream.write(chunk)
      const room = Math.max(0, options.holdAfterBytes - sent)
      if (room > 0) upstream.write(chunk.subarray(0, room))
      sent += Math.min(room, chunk.length)
      if (chunk.length > room) held.push({ upstream, chunk: chunk.subarray(room) })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(t, () => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return {
    port: (server.address() as { port: number }).port,
    holding: () => held.length > 0,
    sent: () => sent,
    release() {
      released = true
      for (const { upstream, chunk } of held.splice(0)) upstream.write(chunk)
    },
  }
}

export interface StorageUnderTest {
  url: string
  env: StorageEnvironment
  /** Incomplete uploads as the service itself holds them (not through our library). */
  incompleteUploads(): Promise<string[]>
  /** Replaces the stored bytes of `key` behind the library's back, keeping its recorded SHA-256. */
  overwriteRaw(key: string, bytes: Buffer): Promise<void>
  /** How many parts or blocks the stored object was assembled from (undefined: not applicable). */
  partCount(key: string): Promise<number | undefined>
  /** The same storage reached through 127.0.0.1:`port` (a proxy); undefined for a folder. */
  through?(port: number): { url: string; env: StorageEnvironment }
  /** The service's own port (for a proxy in front of it). */
  servicePort?: number
}

export interface StorageEntry {
  name: string
  /** Starts the service (stopped after `t`) and returns an empty storage on it. */
  start(t: Cleanup): Promise<StorageUnderTest>
}

const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER-secret-0123456789', AWS_REGION: 'us-east-1' }

/**
 * s3rver 3.7.1 answers 405/501 to AbortMultipartUpload and ListMultipartUploads. These two calls are
 * added here, per AWS's API reference, over s3rver's own upload folder, so that the library's abort
 * and sweep run against a server; the judge of what is left stays the folder itself.
 */
function addMultipartHousekeeping(server: S3rver, directory: string): Map<string, Set<string>> {
  const uploadsOf = (bucket: string) => join(directory, bucket, '._S3rver_uploads')
  // Part numbers received by the newest upload of each key: s3rver stores a multipart object as one
  // plain object, so this is how a test sees that an upload was multipart.
  const partsByKey = new Map<string, Set<string>>()
  const uploadOfKey = new Map<string, string>()
  ;(server as unknown as { middleware: unknown[] }).middleware.unshift(async (ctx: { method: string; path: string; query: Record<string, string>; status: number; type: string; body: unknown }, next: () => Promise<void>) => {
    const object = /^\/([^/]+)\/(.+)$/.exec(ctx.path)
    if (ctx.method === 'PUT' && object && ctx.query.uploadId !== undefined && ctx.query.partNumber !== undefined) {
      const key = decodeURIComponent(object[2]!)
      if (uploadOfKey.get(key) !== ctx.query.uploadId) partsByKey.set(key, new Set())
      uploadOfKey.set(key, ctx.query.uploadId)
      partsByKey.get(key)!.add(ctx.query.partNumber)
    }
    if (ctx.method === 'DELETE' && object && ctx.query.uploadId !== undefined) {
      const dir = join(uploadsOf(object[1]!), ctx.query.uploadId.replace(/[^0-9a-f]/g, ''))
      if (!existsSync(dir)) {
        ctx.status = 404
        ctx.type = 'application/xml'
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>'
        return
      }
      rmSync(dir, { recursive: true, force: true })
      ctx.status = 204
      return
    }
    const bucket = /^\/([^/]+)\/?$/.exec(ctx.path)
    if (ctx.method === 'GET' && bucket && ctx.query.uploads !== undefined) {
      const prefix = ctx.query.prefix ?? ''
      const folder = uploadsOf(bucket[1]!)
      const uploads = (existsSync(folder) ? readdirSync(folder) : [])
        .map((id) => ({ id, key: readFileSync(join(folder, id, 'key'), 'utf8'), initiated: statSync(join(folder, id)).birthtime }))
        .filter((upload) => upload.key.startsWith(prefix))
      const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;')
      ctx.type = 'application/xml'
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${bucket[1]}</Bucket><Prefix>${escape(prefix)}</Prefix><IsTruncated>false</IsTruncated>${uploads.map((u) => `<Upload><Key>${escape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`).join('')}</ListMultipartUploadsResult>`
      return
    }
    return next()
  })
  return partsByKey
}

const folderEntry: StorageEntry = {
  name: 'folder',
  async start(t) {
    const root = join(tempDir(t, 'ipm-storage-'), 'backups')
    const walk = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])) : [])
    return {
      url: root,
      env: {},
      incompleteUploads: async () => walk(root).filter((path) => path.includes('.tmp-')),
      overwriteRaw: async (key, bytes) => writeFileSync(join(root, key), bytes),
      partCount: async () => undefined,
    }
  },
}

const s3Entry: StorageEntry = {
  name: 's3',
  async start(t) {
    const directory = tempDir(t, 'ipm-s3rver-')
    const bucket = 'ipm-backups'
    const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] })
    const partsByKey = addMultipartHousekeeping(server, directory)
    const { port } = (await server.run()) as { port: number }
    defer(t, () => server.close())
    const endpoint = `http://127.0.0.1:${port}`
    const env = { ...S3_ENV, AWS_ENDPOINT_URL_S3: endpoint }
    const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: S3_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: S3_ENV.AWS_SECRET_ACCESS_KEY }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' })
    defer(t, () => client.destroy())
    const prefix = 'prod/'
    const uploads = join(directory, bucket, '._S3rver_uploads')
    return {
      url: `s3://${bucket}/${prefix}`,
      env,
      servicePort: port,
      incompleteUploads: async () => (existsSync(uploads) ? readdirSync(uploads) : []),
      async overwriteRaw(key, bytes) {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}${key}` }))
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${key}`, Body: bytes, Metadata: head.Metadata }))
      },
      partCount: async (key) => partsByKey.get(`${prefix}${key}`)?.size ?? 1,
      through: (proxyPort) => ({ url: `s3://${bucket}/${prefix}`, env: { ...env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${proxyPort}` } }),
    }
  },
}

/** Azurite's well-known development account (public, documented by Microsoft). */
const AZURITE_ACCOUNT = 'devstoreaccount1'
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const azuriteConnectionString = (port: number) => `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`

const azureEntry: StorageEntry = {
  name: 'azure',
  async start(t) {
    const location = tempDir(t, 'ipm-azurite-')
    const port = await freePort()
    const child = spawn(join(REPO_ROOT, 'node_modules/.bin/azurite-blob'), ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', location, '--skipApiVersionCheck', '--silent'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    defer(t, () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    }))
    await waitForPort(port).catch((error: Error) => {
      throw new Error(`${error.message}; azurite said: ${stderr}`)
    })
    const connectionString = azuriteConnectionString(port)
    const service = BlobServiceClient.fromConnectionString(connectionString)
    const containerName = 'ipm-backups'
    const container = service.getContainerClient(containerName)
    await container.create()
    const prefix = 'prod/'
    return {
      url: `azure://${containerName}/${prefix}`,
      env: { AZURE_STORAGE_CONNECTION_STRING: connectionString },
      servicePort: port,
      async incompleteUploads() {
        const committed = new Set<string>()
        for await (const blob of container.listBlobsFlat()) committed.add(blob.name)
        const names: string[] = []
        for await (const blob of container.listBlobsFlat({ includeUncommitedBlobs: true })) if (!committed.has(blob.name)) names.push(blob.name)
        return names
      },
      async overwriteRaw(key, bytes) {
        const blob = container.getBlockBlobClient(`${prefix}${key}`)
        const { metadata } = await blob.getProperties()
        await blob.upload(bytes, bytes.length, { metadata: metadata ?? {} })
      },
      async partCount(key) {
        return (await container.getBlockBlobClient(`${prefix}${key}`).getBlockList('committed')).committedBlocks?.length
      },
      through: (proxyPort) => ({ url: `azure://${containerName}/${prefix}`, env: { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(proxyPort) } }),
    }
  },
}

/** Every backend, narrowed by TEST_STORAGES=folder,s3 (like TEST_ENGINES). */
export const STORAGES: StorageEntry[] = [folderEntry, s3Entry, azureEntry].filter((entry) => process.env.TEST_STORAGES === undefined || process.env.TEST_STORAGES.split(',').includes(entry.name))

/**
 * A SQLite database at `path` holding `mib` random 1 MiB blobs: its archive is larger than `mib` - 1
 * MiB whatever the compression, so an upload of it is multipart beyond one part (8 MiB).
 */
export function blobDatabase(path: string, mib: number): void {
  const db = new Database(path)
  try {
    db.exec(`CREATE TABLE Attachment (id INTEGER PRIMARY KEY, content BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${mib}) INSERT INTO Attachment SELECT i, randomblob(1048576) FROM n;`)
  } finally {
    db.close()
  }
}
