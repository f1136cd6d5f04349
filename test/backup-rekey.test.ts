/**
 * `advanced-backup rekey` over every storage of STORAGES (a folder, s3rver, Azurite): the data key
 * of every encrypted backup re-wrapped under a new key, the archives byte for byte the same, the old
 * key refused afterwards, a plain backup left alone, and a wrong current key refused with nothing
 * rewritten. Then a restore with the new key alone gives the database back.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { runScriptAsync, type CliResult } from './helpers/cli.ts'
import { sqliteCount } from './helpers/backup.ts'
import { STORAGES, type StorageUnderTest } from './helpers/storage.ts'
import { openStorage } from '../scripts/lib/storage/url.ts'

const ID = /backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:-\d+)?/

/** SHA-256 of every backup object, by key (a folder also holds history.jsonl, which rekey appends to). */
async function digests(storage: StorageUnderTest): Promise<Map<string, string>> {
  const store = openStorage(storage.url, { env: storage.env })
  const result = new Map<string, string>()
  for await (const object of store.list('backup-')) {
    const hash = createHash('sha256')
    for await (const chunk of await store.get(object.key)) hash.update(chunk as Buffer)
    result.set(object.key, hash.digest('hex'))
  }
  return result
}

for (const entry of STORAGES) {
  test(`${entry.name}: rekey re-wraps every encrypted backup under the new key, archives untouched; the old key and a wrong key are refused`, async (t) => {
    const storage = await entry.start(t)
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t, 'ipm-rekey-')
    copyFileSync(db.url.slice('file:'.length), join(dir, 'app.db'))
    const dossiers = sqliteCount(join(dir, 'app.db'), 'Dossier')
    const cli = (args: string[]): Promise<CliResult> =>
      runScriptAsync('scripts/advanced-backup.ts', ['--dir', storage.url, ...args], { cwd: dir, env: { ...storage.env, TZ: 'UTC', DATABASE_URL: 'file:./app.db', BACKUP_HISTORY_DIR: join(dir, 'history'), BACKUP_ENCRYPTION_KEY: '', BACKUP_PASSPHRASE: '' } })
    for (const made of await Promise.all(['old.key', 'new.key', 'other.key'].map((name) => cli(['keygen', '--key-file', name])))) assert.equal(made.status, 0, made.stderr)

    const ids: string[] = []
    for (const args of [['--encrypt', '--key-file', 'old.key'], ['--encrypt', '--key-file', 'old.key'], []]) {
      const created = await cli(['create', ...args, '--formats', 'sql'])
      assert.equal(created.status, 0, created.stderr)
      ids.push(ID.exec(created.stdout)![0])
      // Ids are per second.
      await new Promise((resolve) => setTimeout(resolve, 1_050))
    }
    const [first, second, plain] = ids as [string, string, string]
    const before = await digests(storage)

    // A wrong current key: refused, nothing rewritten.
    const wrong = await cli(['rekey', '--key-file', 'other.key', '--new-key-file', 'new.key'])
    assert.equal(wrong.status, 1, wrong.stdout)
    assert.match(wrong.stderr, /^Erreur : .*mauvaise clé/m)
    assert.deepEqual(await digests(storage), before, 'a refused rekey rewrites nothing')

    const rekeyed = await cli(['rekey', '--key-file', 'old.key', '--new-key-file', 'new.key', '--json'])
    assert.equal(rekeyed.status, 0, rekeyed.stderr)
    const result = JSON.parse(rekeyed.stdout) as { rekeyed: string[]; unchanged: string[]; plain: string[]; newKeyId: string }
    assert.deepEqual([result.rekeyed.sort(), result.unchanged, result.plain], [[first, second].sort(), [], [plain]])
    assert.match(result.newKeyId, /^[0-9a-f]{16}$/)
    assert.ok(!rekeyed.stdout.includes(readFileSync(join(dir, 'new.key'), 'utf8').trim()), 'no key material printed')

    const after = await digests(storage)
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort())
    for (const [key, digest] of after) {
      // Only the encrypted backups' metadata changes; every archive (and the plain backup) is the same bytes.
      const changes = key.endsWith('.metadata.json') && (key.startsWith(first) || key.startsWith(second))
      assert.equal(digest !== before.get(key), changes, key)
    }

    const again = await cli(['rekey', '--key-file', 'new.key', '--new-key-file', 'new.key', '--json'])
    assert.equal(again.status, 0, again.stderr)
    assert.deepEqual((JSON.parse(again.stdout) as { unchanged: string[] }).unchanged.sort(), [first, second].sort(), 'already under the new key')

    const [old, verifiedFirst, restored] = await Promise.all([
      cli(['restore', first, '--to', 'old.db', '--yes', '--key-file', 'old.key']),
      cli(['verify', first, '--key-file', 'new.key']),
      cli(['restore', second, '--to', 'fresh.db', '--yes', '--key-file', 'new.key']),
    ])
    assert.equal(old.status, 1, old.stdout)
    assert.match(old.stderr, /mauvaise clé/)
    assert.equal(verifiedFirst.status, 0, verifiedFirst.stdout + verifiedFirst.stderr)
    assert.equal(restored.status, 0, restored.stderr)
    assert.equal(sqliteCount(join(dir, 'fresh.db'), 'Dossier'), dossiers)
  })
}
