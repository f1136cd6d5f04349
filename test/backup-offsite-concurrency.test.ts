/**
 * Creates that share one remote prefix (two cron jobs overlapping, two machines backing up to one
 * bucket), on s3rver and Azurite: the sweep of one create never destroys an upload that another
 * live create is making, while what a killed create left is still swept by the next run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { tempDir } from './helpers/databases.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { run } from './helpers/backup.ts'
import { STORAGES, holdingProxy, type StorageUnderTest } from './helpers/storage.ts'
import { openStorage } from '../scripts/lib/storage/url.ts'

const MIB = 1024 * 1024
const ID = /backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:-\d+)?/
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function objectKeys(storage: StorageUnderTest): Promise<string[]> {
  const keys: string[] = []
  for await (const object of openStorage(storage.url, { env: storage.env }).list('')) keys.push(object.key)
  return keys.sort()
}

/** A database of `mib` random 1 MiB blobs: its archive is larger than a part, so the upload is multipart. */
function blobDatabase(dir: string, mib: number): void {
  run('sqlite3', [join(dir, 'app.db')], { input: `CREATE TABLE Attachment (id INTEGER PRIMARY KEY, content BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${mib}) INSERT INTO Attachment SELECT i, randomblob(1048576) FROM n;` })
}

for (const entry of STORAGES.filter((e) => e.name !== 'folder')) {
  test(`${entry.name}: two creates to one prefix at the same time both succeed and both verify`, async (t) => {
    const storage = await entry.start(t)
    const dir = tempDir(t, 'ipm-concurrent-')
    blobDatabase(dir, 16)
    const env = { DATABASE_URL: 'file:./app.db', BACKUP_HISTORY_DIR: join(dir, 'history'), IPM_BACKUP_KILL_AT: '' }
    // The first create reaches the service through a link that stalls after 20 MiB: its upload is started, not finished.
    const proxy = await holdingProxy(t, storage.servicePort!, { holdAfterBytes: 20 * MIB })
    const slow = storage.through!(proxy.port)
    let firstDone = false
    const first = runScriptAsync('scripts/advanced-backup.ts', ['--dir', slow.url, 'create', '--formats', 'sql'], { cwd: dir, env: { ...slow.env, ...env } }).finally(() => (firstDone = true))
    while (!(proxy.holding() && (await storage.incompleteUploads()).length > 0)) {
      assert.equal(firstDone, false, `the first create ended before its upload stalled: ${JSON.stringify(await first)}`)
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
}
