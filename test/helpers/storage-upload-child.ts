/**
 * A process that starts an upload and then stalls forever, for the SIGKILL tests: argv[2] is JSON
 * { url, env, partSize, key, stallAfterBytes, leaseHost? }. With `leaseHost`, it first takes an
 * upload lease for `key` as that host (a create on another machine). It prints "stalled" once its
 * body stopped producing.
 */
import { randomBytes } from 'node:crypto'
import { openStorage, type StorageEnvironment } from '../../scripts/lib/storage/url.ts'
import { takeUploadLease } from '../../scripts/lib/storage/upload-leases.ts'

const { url, env, partSize, key, stallAfterBytes, leaseHost } = JSON.parse(process.argv[2]!) as { url: string; env: StorageEnvironment; partSize: number; key: string; stallAfterBytes: number; leaseHost?: string }
const storage = openStorage(url, { env, partSize })
setInterval(() => {}, 60_000)
if (leaseHost !== undefined) await takeUploadLease(storage, [key], { owner: { host: leaseHost, pid: process.pid } })
async function* body(): AsyncGenerator<Buffer> {
  for (let sent = 0; sent < stallAfterBytes; sent += 1024 * 1024) yield randomBytes(1024 * 1024)
  process.stdout.write('stalled\n')
  await new Promise(() => {})
}
await storage.put(key, body())
