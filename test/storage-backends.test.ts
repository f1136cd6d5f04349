/**
 * One suite over every storage backend (test/helpers/storage.ts STORAGES: folder, s3rver, Azurite):
 * every operation with exact bytes and hashes, multipart/blocks, and failures — a body that dies
 * mid-upload, a connection dropped mid-part, a SIGKILL mid-upload, a truncated or altered object, a
 * full disk during download. After each failure the service's own view (s3rver's upload folder,
 * Azure's uncommitted blobs, the folder's temporary files) must hold no incomplete upload.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { suiteCleanup, tempDir, defer } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { STORAGES, cuttingProxy, type StorageUnderTest } from './helpers/storage.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { openStorage } from '../scripts/lib/storage/url.ts'
import { checkObject, type ObjectStorage } from '../scripts/lib/storage/storage.ts'
import { downloadObject, uploadFile } from '../scripts/lib/storage/transfer.ts'
import { createDecryptStream, createEncryptStream } from '../scripts/lib/encryption/streams.ts'

const MIB = 1024 * 1024
/** lib-storage's minimum part size; small enough that 20 MiB is four parts. */
const TEST_PART_SIZE = 5 * MIB

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function keys(storage: ObjectStorage, prefix = ''): Promise<string[]> {
  const found: string[] = []
  for await (const object of storage.list(prefix)) found.push(object.key)
  return found
}

/** `bytes` in 1 MiB pieces, then an error after `failAfter` bytes when given. */
async function* pieces(bytes: Buffer, failAfter?: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += MIB) {
    if (failAfter !== undefined && offset >= failAfter) throw new Error('source disk read error (injected)')
    yield bytes.subarray(offset, offset + MIB)
  }
}

for (const entry of STORAGES) {
  describe(`storage: ${entry.name}`, () => {
    const cleanup = suiteCleanup()
    let service: StorageUnderTest
    let storage: ObjectStorage
    before(async () => {
      service = await entry.start(cleanup)
      storage = openStorage(service.url, { env: service.env, partSize: TEST_PART_SIZE, maxAttempts: 2 })
    })

    test('put, head, get (whole and ranges), list by prefix, overwrite and delete, with exact bytes and hashes', async () => {
      const one = randomBytes(1000)
      const unknown = randomBytes(70_000)
      assert.deepEqual(await storage.put('set1/a/one.bin', Readable.from([one]), { size: one.length, sha256: sha256(one) }), { key: 'set1/a/one.bin', size: 1000, sha256: sha256(one) })
      assert.deepEqual(await storage.put('set1/a/empty.bin', Readable.from([])), { key: 'set1/a/empty.bin', size: 0, sha256: sha256(Buffer.alloc(0)) })
      assert.deepEqual(await storage.put('set1/b.bin', pieces(unknown)), { key: 'set1/b.bin', size: 70_000, sha256: sha256(unknown) })
      const head = await storage.head('set1/a/one.bin')
      assert.equal(head?.size, 1000)
      assert.equal(head?.sha256, sha256(one))
      assert.ok(head!.lastModified instanceof Date && head!.lastModified.getTime() > Date.now() - 3_600_000)
      assert.equal((await storage.head('set1/b.bin'))?.sha256, sha256(unknown))
      assert.ok((await readAll(await storage.get('set1/a/one.bin'))).equals(one))
      assert.ok((await readAll(await storage.get('set1/a/one.bin', { offset: 10, length: 100 }))).equals(one.subarray(10, 110)))
      assert.ok((await readAll(await storage.get('set1/a/one.bin', { offset: 990 }))).equals(one.subarray(990)))
      assert.equal((await readAll(await storage.get('set1/a/one.bin', { offset: 5, length: 0 }))).length, 0)
      assert.equal((await readAll(await storage.get('set1/a/empty.bin'))).length, 0)
      assert.deepEqual(await keys(storage, 'set1/'), ['set1/a/empty.bin', 'set1/a/one.bin', 'set1/b.bin'])
      assert.deepEqual(await keys(storage, 'set1/a/'), ['set1/a/empty.bin', 'set1/a/one.bin'])
      assert.deepEqual(await keys(storage, 'set1/a/o'), ['set1/a/one.bin'])
      assert.deepEqual(await keys(storage, 'set1/b'), ['set1/b.bin'])
      assert.deepEqual(await keys(storage, 'nothing-here/'), [])
      const listed = []
      for await (const object of storage.list('set1/b')) listed.push({ key: object.key, size: object.size })
      assert.deepEqual(listed, [{ key: 'set1/b.bin', size: 70_000 }])
      const replacement = randomBytes(3000)
      await storage.put('set1/a/one.bin', Readable.from([replacement]))
      assert.deepEqual({ ...(await storage.head('set1/a/one.bin')), lastModified: undefined }, { key: 'set1/a/one.bin', size: 3000, sha256: sha256(replacement), lastModified: undefined })
      assert.deepEqual(await checkObject(storage, 'set1/a/one.bin'), { key: 'set1/a/one.bin', size: 3000, sha256: sha256(replacement), expected: { size: 3000, sha256: sha256(replacement) }, ok: true })
      await storage.delete('set1/a/one.bin')
      await storage.delete('set1/a/one.bin')
      assert.equal(await storage.head('set1/a/one.bin'), undefined)
      assert.deepEqual(await keys(storage, 'set1/'), ['set1/a/empty.bin', 'set1/b.bin'])
      await assert.rejects(storage.get('set1/a/one.bin'), (error: Error) => error instanceof ToolkitError && error.message === `objet « set1/a/one.bin » introuvable sur ${storage.location}`)
      for (const bad of ['../escape', '/abs', 'a//b', 'a/./b', '', 'back\\slash']) await assert.rejects(storage.put(bad, Readable.from([one])), /nom d’objet invalide/, bad)
      assert.deepEqual(await service.incompleteUploads(), [])
    })

    test('20 MiB streams in parts of the injected size and comes back byte for byte; uploadFile and downloadObject are atomic and checked', async (t) => {
      const big = randomBytes(20 * MIB)
      const put = await storage.put('set2/big.bin', pieces(big), { size: big.length })
      assert.deepEqual(put, { key: 'set2/big.bin', size: big.length, sha256: sha256(big) })
      const parts = await service.partCount('set2/big.bin')
      if (parts !== undefined) assert.equal(parts, 4)
      assert.equal(sha256(await readAll(await storage.get('set2/big.bin'))), sha256(big))
      const dir = tempDir(t)
      const target = join(dir, 'big.bin')
      assert.deepEqual(await downloadObject(storage, 'set2/big.bin', target), { size: big.length, sha256: sha256(big) })
      assert.ok(readFileSync(target).equals(big))
      assert.deepEqual(await uploadFile(storage, 'set2/copy.bin', target), { key: 'set2/copy.bin', size: big.length, sha256: sha256(big) })
      assert.equal((await storage.head('set2/copy.bin'))?.sha256, sha256(big))
      assert.deepEqual(readdirSync(dir), ['big.bin'])
      assert.deepEqual(await service.incompleteUploads(), [])
    })

    test('a body that fails mid-upload, or differs from its announced size or hash, leaves no object and no incomplete upload', async () => {
      const body = randomBytes(12 * MIB)
      await assert.rejects(storage.put('set3/failed.bin', pieces(body, 11 * MIB), { size: body.length }), (error: Error) => error instanceof ToolkitError && error.message.startsWith('envoi de « set3/failed.bin »'))
      await assert.rejects(storage.put('set3/short.bin', pieces(body), { size: body.length + 1 }), /^ToolkitError: envoi de « set3\/short\.bin » refusé : 12582912 octets reçus, 12582913 annoncés$/)
      await assert.rejects(storage.put('set3/long.bin', pieces(body), { size: 100 }), /refusé : plus de 100 octets reçus/)
      await assert.rejects(storage.put('set3/hash.bin', pieces(body), { sha256: sha256(Buffer.from('other')) }), /refusé : SHA-256 différent de celui annoncé/)
      assert.deepEqual(await keys(storage, 'set3/'), [])
      for (const key of ['set3/failed.bin', 'set3/short.bin', 'set3/long.bin', 'set3/hash.bin']) assert.equal(await storage.head(key), undefined)
      assert.deepEqual(await service.incompleteUploads(), [])
    })

    test('a truncated or bit-flipped stored object is caught by its hash, and by decryption when encrypted', async (t) => {
      const bytes = randomBytes(300_000)
      for (const [name, alter] of [['truncated', (b: Buffer) => b.subarray(0, b.length - 1)], ['bit-flipped', (b: Buffer) => { const c = Buffer.from(b); c[150_000]! ^= 0x04; return c }]] as const) {
        const key = `set4/${name}.bin`
        await storage.put(key, Readable.from([bytes]))
        await service.overwriteRaw(key, alter(bytes))
        const check = await checkObject(storage, key)
        assert.equal(check.ok, false, name)
        assert.equal(check.expected.sha256, sha256(bytes))
        const dir = tempDir(t)
        await assert.rejects(downloadObject(storage, key, join(dir, 'out')), /ne correspond pas à son empreinte/)
        assert.deepEqual(readdirSync(dir), [], 'nothing left behind')
      }
      const dataKey = randomBytes(32)
      await storage.put('set4/encrypted.bin', Readable.from([bytes]).pipe(createEncryptStream(dataKey)))
      const sealed = await readAll(await storage.get('set4/encrypted.bin'))
      const flipped = Buffer.from(sealed)
      flipped[100_000]! ^= 0x01
      await service.overwriteRaw('set4/encrypted.bin', flipped)
      const emitted: Buffer[] = []
      await assert.rejects(pipeline(await storage.get('set4/encrypted.bin'), createDecryptStream(dataKey), async function* (source) {
        for await (const chunk of source) emitted.push(chunk as Buffer)
      }), /^ToolkitError: déchiffrement refusé au bloc 1 : /)
      assert.ok(Buffer.concat(emitted).equals(bytes.subarray(0, 65536)), 'only the verified chunk 0 came out')
    })

    // A folder has no connection to drop: the test exists for the network storages only (not a skip, which CI refuses).
    if (entry.name !== 'folder') test('a connection dropped mid-part is retried; a network that stays down fails cleanly and the next sweep leaves nothing', async (t) => {
      const body = randomBytes(12 * MIB)
      const once = await cuttingProxy(t, service.servicePort!, { cutAfterBytes: 7 * MIB, then: 'forward' })
      const viaOnce = service.through!(once.port)
      const retried = openStorage(viaOnce.url, { env: viaOnce.env, partSize: TEST_PART_SIZE, maxAttempts: 3 })
      assert.deepEqual(await retried.put('set5/retried.bin', pieces(body), { size: body.length }), { key: 'set5/retried.bin', size: body.length, sha256: sha256(body) })
      assert.equal(once.cuts(), 1)
      assert.equal(sha256(await readAll(await storage.get('set5/retried.bin'))), sha256(body))

      const down = await cuttingProxy(t, service.servicePort!, { cutAfterBytes: 7 * MIB, then: 'refuse' })
      const viaDown = service.through!(down.port)
      const failing = openStorage(viaDown.url, { env: viaDown.env, partSize: TEST_PART_SIZE, maxAttempts: 2 })
      await assert.rejects(failing.put('set5/lost.bin', pieces(body), { size: body.length }), (error: Error) => {
        assert.ok(error instanceof ToolkitError)
        assert.match(error.message, /^envoi de « set5\/lost\.bin » sur (s3|azure):\/\/ipm-backups\/prod\/ a échoué : /)
        assert.doesNotMatch(`${error.message} ${error.hint} ${String((error.cause as Error)?.message)}`, /S3RVER-secret|Eby8vdM02x/)
        assert.match(error.hint ?? '', /vérifiez/)
        return true
      })
      assert.equal(await storage.head('set5/lost.bin'), undefined)
      const swept = await storage.sweepIncompleteUploads('set5/', { startedBefore: new Date(Date.now() + 1000) })
      assert.ok(swept.removed.every((key) => key === 'set5/lost.bin'), JSON.stringify(swept))
      assert.deepEqual(await service.incompleteUploads(), [])
      assert.deepEqual(await keys(storage, 'set5/'), ['set5/retried.bin'])
    })

    test('a SIGKILL mid-upload leaves nothing visible, and the next sweep leaves no incomplete upload', async (t) => {
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'test/helpers/storage-upload-child.ts'), JSON.stringify({ url: service.url, env: service.env, partSize: TEST_PART_SIZE, key: 'set6/killed.bin', stallAfterBytes: 6 * MIB })], { stdio: ['ignore', 'pipe', 'pipe'] })
      defer(t, () => void (child.exitCode === null && child.kill('SIGKILL')))
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
      // Kill once the service (or the folder) holds a started upload of the child.
      for (let waited = 0; (await service.incompleteUploads()).length === 0; waited += 100) {
        assert.ok(waited < 120_000 && child.exitCode === null, `the child started no upload: ${stderr}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      child.kill('SIGKILL')
      assert.equal(await exited, 'SIGKILL')
      assert.equal(await storage.head('set6/killed.bin'), undefined)
      assert.deepEqual(await keys(storage, 'set6/'), [])
      // A sweep that spares uploads started after its cutoff leaves the killed one alone…
      assert.deepEqual(await storage.sweepIncompleteUploads('set6/', { startedBefore: new Date(0) }), { removed: [] })
      assert.notDeepEqual(await service.incompleteUploads(), [])
      // …and one past it removes it.
      const swept = await storage.sweepIncompleteUploads('set6/', { startedBefore: new Date(Date.now() + 1000) })
      assert.equal(swept.removed.length, 1)
      assert.match(swept.removed[0]!, /^set6\/killed\.bin/)
      assert.deepEqual(await service.incompleteUploads(), [])
      assert.deepEqual(await keys(storage, 'set6/'), [])
    })

    test('a full local disk during download fails with one clear line and leaves nothing on that disk', async (t) => {
      const mountPoint = join(tempDir(t), 'small-disk')
      mkdirSync(mountPoint)
      const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint], { encoding: 'utf8' })
      if (mount.status !== 0) return t.skip(`needs root and tmpfs to make a small disk (mount -t tmpfs: ${mount.stderr.trim() || mount.error?.message})`)
      defer(t, () => spawnSync('umount', [mountPoint]))
      const bytes = randomBytes(4 * MIB)
      await storage.put('set7/four-mib.bin', Readable.from([bytes]))
      await assert.rejects(downloadObject(storage, 'set7/four-mib.bin', join(mountPoint, 'four-mib.bin')), (error: Error) => error instanceof ToolkitError && error.message === `disque plein pendant le téléchargement de « set7/four-mib.bin » vers ${mountPoint}` && error.hint === 'libérez de la place ou choisissez un autre dossier de destination')
      assert.deepEqual(readdirSync(mountPoint), [])
      assert.equal(existsSync(join(mountPoint, 'four-mib.bin')), false)
    })
  })
}
