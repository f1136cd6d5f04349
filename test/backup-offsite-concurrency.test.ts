/**
 * Creates that share one remote prefix (two cron jobs overlapping, two machines backing up to one
 * bucket), on s3rver and Azurite: the sweep of one create never destroys an upload that another
 * live create is making, while what a killed create left is still swept by the next run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { defer, tempDir } from './helpers/databases.ts'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { STORAGES, blobDatabase, holdingProxy, type StorageUnderTest } from './helpers/storage.ts'
import { openStorage } from '../scripts/lib/storage/url.ts'
import { LEASE_PREFIX, currentOwner, ownerIsAlive, takeUploadLease } from '../scripts/lib/storage/upload-leases.ts'
import { sweepStorage } from '../scripts/lib/backup/create/offsite.ts'

const MIB = 1024 * 1024
const ID = /backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:-\d+)?/
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function objectKeys(storage: StorageUnderTest): Promise<string[]> {
  const keys: string[] = []
  for await (const object of openStorage(storage.url, { env: storage.env }).list('')) keys.push(object.key)
  return keys.sort()
}

test('an upload lease’s owner: same host and pid space judged by its pid and process start, another host or pid space by the lease’s age', () => {
  const here = { host: 'cabinet-1', pid: 100, processStart: 'boot-a:5000', pidSpace: 'boot-a:pid:[1]' }
  const alive = (pid: number) => pid === 100 || pid === 200
  const startOf = (pid: number) => (pid === 100 ? 'boot-a:5000' : pid === 200 ? 'boot-a:7000' : undefined)
  const judge = (owner: { host: string; pid: number; processStart?: string; pidSpace?: string }, age: number) => ownerIsAlive(owner, here, age, { isAlive: alive, startOf, staleAfterMs: 24 * 3_600_000 })
  assert.equal(judge({ host: 'cabinet-1', pid: 100, processStart: 'boot-a:5000' }, 0), true, 'a live pid')
  assert.equal(judge({ host: 'cabinet-1', pid: 300 }, 0), false, 'a dead pid, however young the lease')
  assert.equal(judge({ host: 'cabinet-1', pid: 200, processStart: 'boot-a:5000' }, 0), false, 'a reused pid: another process start')
  assert.equal(judge({ host: 'cabinet-1', pid: 200, processStart: 'boot-b:5000' }, 0), false, 'a reused pid after a reboot')
  assert.equal(judge({ host: 'cabinet-2', pid: 300 }, 23 * 3_600_000), true, 'another host, refreshed within 24 h')
  assert.equal(judge({ host: 'cabinet-2', pid: 100 }, 25 * 3_600_000), false, 'another host, silent for more than 24 h (its pid means nothing here)')
  // A cloned container with the same host name: its pid 300 is not ours to judge (dead here, maybe alive there).
  assert.equal(judge({ host: 'cabinet-1', pid: 300, pidSpace: 'boot-c:pid:[1]' }, 0), true, 'same host name, another pid space: judged as another host')
  assert.equal(judge({ host: 'cabinet-1', pid: 300, pidSpace: 'boot-a:pid:[2]' }, 23 * 3_600_000), true, 'same host name and boot, another pid namespace')
  assert.equal(judge({ host: 'cabinet-1', pid: 300, pidSpace: 'boot-c:pid:[1]' }, 25 * 3_600_000), false, 'another pid space, silent for more than 24 h')
  assert.equal(judge({ host: 'cabinet-1', pid: 300, pidSpace: 'boot-a:pid:[1]' }, 0), false, 'same pid space: a dead pid is dead at once')
  const me = currentOwner()
  assert.equal(me.pid, process.pid)
  assert.match(me.pidSpace ?? '', /^[0-9a-f-]{36}:pid:\[\d+\]$/, 'on Linux, the boot id and the pid namespace')
  assert.equal(ownerIsAlive(me, me, 0), true)
})

test('a live lease is rewritten while its upload lasts, and deleted when released', async (t) => {
  const storage = openStorage(join(tempDir(t, 'ipm-lease-'), 'offsite'), { env: {} })
  const lease = await takeUploadLease(storage, ['backup-2020-01-01T00-00-00.tar.gz'], { refreshMs: 50 })
  const first = (await storage.head(lease.key))!.lastModified.getTime()
  while ((await storage.head(lease.key))!.lastModified.getTime() === first) await sleep(50)
  await lease.release()
  assert.equal(await storage.head(lease.key), undefined)
})

for (const entry of STORAGES.filter((e) => e.name !== 'folder')) {
  test(`${entry.name}: two creates to one prefix at the same time both succeed and both verify`, async (t) => {
    const storage = await entry.start(t)
    const dir = tempDir(t, 'ipm-concurrent-')
    blobDatabase(join(dir, 'app.db'), 16)
    const env = { DATABASE_URL: 'file:./app.db', BACKUP_HISTORY_DIR: join(dir, 'history'), IPM_BACKUP_KILL_AT: '' }
    // The first create reaches the service through a link that stalls after 20 MiB: its upload is started, not finished.
    const proxy = await holdingProxy(t, storage.servicePort!, { holdAfterBytes: 20 * MIB })
    const slow = storage.through!(proxy.port)
    let firstEnded: unknown
    const first = runScriptAsync('scripts/advanced-backup.ts', ['--dir', slow.url, 'create', '--formats', 'sql'], { cwd: dir, env: { ...slow.env, ...env } })
    first.then((result) => (firstEnded = result), (error: unknown) => (firstEnded = error))
    while (!(proxy.holding() && (await storage.incompleteUploads()).length > 0)) {
      assert.equal(firstEnded, undefined, `the first create ended before its upload stalled: ${JSON.stringify(firstEnded)}`)
      await sleep(100)
    }
    const inFlight = await storage.incompleteUploads()
    // The second create runs whole while the first one's upload waits.
    const second = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', storage.url, 'create', '--formats', 'sql'], { cwd: dir, env: { ...storage.env, ...env } })
    assert.equal(second.status, 0, second.stderr)
    assert.deepEqual((await storage.incompleteUploads()).filter((upload) => inFlight.includes(upload)), inFlight, 'the first create’s upload is still there')
    proxy.release()
    const firstResult = await first
    assert.equal(firstResult.status, 0, firstResult.stderr)
    const ids = [ID.exec(firstResult.stdout)![0], ID.exec(second.stdout)![0]]
    assert.notEqual(ids[0], ids[1])
    for (const id of ids) {
      const verified = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', storage.url, 'verify', id], { cwd: dir, env: { ...storage.env, ...env } })
      assert.equal(verified.status, 0, `${id}: ${verified.stdout}${verified.stderr}`)
    }
    const listed = JSON.parse((await runScriptAsync('scripts/advanced-backup.ts', ['--dir', storage.url, 'list', '--json'], { cwd: dir, env: { ...storage.env, ...env } })).stdout) as { backups: { id: string }[] }
    assert.deepEqual(listed.backups.map((backup) => backup.id).sort(), [...ids].sort())
    assert.deepEqual(await storage.incompleteUploads(), [])
    assert.deepEqual((await objectKeys(storage)).filter((key) => !key.startsWith('backup-')), [], 'no lease or other object left beside the backups')
  })

  test(`${entry.name}: an upload of a live create on another host is spared by the next creates; once its lease is stale, it is swept`, async (t) => {
    const storage = await entry.start(t)
    const dir = tempDir(t, 'ipm-other-host-')
    blobDatabase(join(dir, 'app.db'), 1)
    const env = { ...storage.env, DATABASE_URL: 'file:./app.db', BACKUP_HISTORY_DIR: join(dir, 'history'), IPM_BACKUP_KILL_AT: '' }
    const key = 'backup-2020-01-01T00-00-00.tar.gz'
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'test/helpers/storage-upload-child.ts'), JSON.stringify({ url: storage.url, env: storage.env, partSize: 5 * MIB, key, stallAfterBytes: 6 * MIB, leaseHost: 'autre-machine' })], { stdio: ['ignore', 'pipe', 'pipe'] })
    defer(t, () => void (child.exitCode === null && child.kill('SIGKILL')))
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk))
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    while (!(output.includes('stalled') && (await storage.incompleteUploads()).length > 0)) {
      assert.equal(child.exitCode, null, `the child started no upload: ${output}`)
      await sleep(100)
    }
    const theirs = await storage.incompleteUploads()
    const create = () => runScriptAsync('scripts/advanced-backup.ts', ['--dir', storage.url, 'create', '--formats', 'sql'], { cwd: dir, env })
    const created = await create()
    assert.equal(created.status, 0, created.stderr)
    assert.deepEqual(await storage.incompleteUploads(), theirs, 'the other host’s live upload is left alone')
    // That machine dies: here its pid means nothing, so its lease holds until it is a day old.
    child.kill('SIGKILL')
    assert.equal(await exited, 'SIGKILL')
    const again = await create()
    assert.equal(again.status, 0, again.stderr)
    assert.deepEqual(await storage.incompleteUploads(), theirs, 'a fresh lease of another host is trusted')
    // A sweep for which "stale" starts at once (the storage's dates have a one-second grain).
    await sleep(1100)
    const client = openStorage(storage.url, { env: storage.env })
    const lease = await takeUploadLease(client, [], { staleAfterMs: 0 })
    const swept = await sweepStorage(client, lease)
    await lease.release()
    assert.deepEqual(swept.removed, [key])
    assert.deepEqual(await storage.incompleteUploads(), [])
    assert.deepEqual((await objectKeys(storage)).filter((name) => name.startsWith(LEASE_PREFIX)), [], 'the dead lease is gone, ours released')
  })

  test(`${entry.name}: a lease whose own write was killed (never committed) is swept once older than any lease write takes`, async (t) => {
    const storage = await entry.start(t)
    const key = `${LEASE_PREFIX}autre-machine-4242-deadbeef.json`
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'test/helpers/storage-upload-child.ts'), JSON.stringify({ url: storage.url, env: storage.env, partSize: 5 * MIB, key, stallAfterBytes: 6 * MIB })], { stdio: ['ignore', 'pipe', 'pipe'] })
    defer(t, () => void (child.exitCode === null && child.kill('SIGKILL')))
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk))
    while (!(output.includes('stalled') && (await storage.incompleteUploads()).length > 0)) {
      assert.equal(child.exitCode, null, `the child started no upload: ${output}`)
      await sleep(100)
    }
    child.kill('SIGKILL')
    const client = openStorage(storage.url, { env: storage.env })
    const none = { live: new Set<string>(), dead: new Set<string>(), owners: new Map(), staleLeases: [] }
    // Started just now: a lease write in flight, left alone.
    const early = await sweepStorage(client, { startedBefore: new Date(), others: none })
    assert.deepEqual(early.removed, [])
    assert.equal((await storage.incompleteUploads()).length, 1)
    // Seen from a sweep an hour later: no lease write lasts that long.
    const later = await sweepStorage(client, { startedBefore: new Date(Date.now() + 3_600_000), others: none })
    assert.deepEqual(later.removed, [key])
    assert.deepEqual(await storage.incompleteUploads(), [])
  })
}
