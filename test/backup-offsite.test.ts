/**
 * Off-site and encrypted backups through scripts/advanced-backup.ts, over every storage of
 * STORAGES (a folder, s3rver, Azurite: one list, so a fourth storage is one entry): every verb on
 * `--dir <url>`, `create --offsite --encrypt`, a restore into a fresh database from the URL and the
 * key file alone, refusals (no key, wrong key, tampered or truncated objects, a metadata without its
 * archive and the reverse), SIGKILL during an upload, and no secret anywhere.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { runScriptAsync, type CliResult } from './helpers/cli.ts'
import { run, sqliteCount } from './helpers/backup.ts'
import { STORAGES, blobDatabase, type StorageUnderTest } from './helpers/storage.ts'
import { openStorage } from '../scripts/lib/storage/url.ts'
import { LEASE_PREFIX } from '../scripts/lib/storage/upload-leases.ts'

const ID = /backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:-\d+)?/

function cli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return runScriptAsync('scripts/advanced-backup.ts', args, { cwd: options.cwd, env: { TZ: 'UTC', DATABASE_URL: 'file:./app.db', BACKUP_HISTORY_DIR: join(options.cwd, 'history'), ...options.env } })
}

/** A work folder holding a copy of the seeded demo database (app.db) and a key made by keygen. */
async function workspace(t: import('node:test').TestContext) {
  const db = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t, 'ipm-offsite-')
  copyFileSync(db.url.slice('file:'.length), join(dir, 'app.db'))
  const keygen = await cli(['keygen', '--key-file', 'backup.key'], { cwd: dir })
  assert.equal(keygen.status, 0, keygen.stderr)
  assert.equal(statSync(join(dir, 'backup.key')).mode & 0o777, 0o600)
  return { dir, dossiers: sqliteCount(join(dir, 'app.db'), 'Dossier') }
}

async function objectKeys(storage: StorageUnderTest): Promise<string[]> {
  const keys: string[] = []
  for await (const object of openStorage(storage.url, { env: storage.env }).list('')) keys.push(object.key)
  return keys.sort()
}

for (const entry of STORAGES) {
  test(`${entry.name}: every verb on --dir <storage>, encrypted; restore needs the key and refuses a wrong one`, async (t) => {
    const storage = await entry.start(t)
    const { dir, dossiers } = await workspace(t)
    const env = { ...storage.env }
    const on = (args: string[], extra: NodeJS.ProcessEnv = {}) => cli(['--dir', storage.url, ...args], { cwd: dir, env: { ...env, ...extra } })

    const created = await on(['create', '--encrypt', '--key-file', 'backup.key', '--formats', 'sql'])
    assert.equal(created.status, 0, created.stderr)
    assert.match(created.stdout, /Chiffré: oui \(AES-256-GCM, clé [0-9a-f]{16}\)/)
    const id = ID.exec(created.stdout)![0]
    const second = await on(['create', '--encrypt', '--key-file', 'backup.key', '--formats', 'sql'])
    assert.equal(second.status, 0, second.stderr)
    const keys = await objectKeys(storage)
    assert.ok(keys.includes(`${id}.tar.gz.enc`) && keys.includes(`${id}.metadata.json`), keys.join(','))
    assert.ok(!keys.some((key) => key.endsWith('.tar.gz')), 'no plaintext archive on the storage')

    const list = await on(['list'])
    assert.equal(list.status, 0, list.stderr)
    assert.match(list.stdout, /2 backup\(s\)/)
    assert.match(list.stdout, /SQLite/)
    const listed = JSON.parse((await on(['list', '--json'])).stdout) as { backups: { id: string; encrypted: boolean; metadata: { engine: string } }[] }
    assert.deepEqual(listed.backups.map((b) => [b.encrypted, b.metadata.engine]), [[true, 'sqlite'], [true, 'sqlite']])

    const keyless = await on(['verify', id])
    assert.equal(keyless.status, 0, keyless.stderr + keyless.stdout)
    assert.match(keyless.stdout, /Contenu non déchiffré \(pas de clé\)/)
    const full = await on(['verify', id, '--key-file', 'backup.key'])
    assert.equal(full.status, 0, full.stderr + full.stdout)
    assert.match(full.stdout, /✓ database\.db/)
    assert.match(full.stdout, /✓ metadata\.json \(dans l’archive\)/)

    const noKey = await on(['restore', id, '--to', 'fresh-nokey.db', '--yes'])
    assert.equal(noKey.status, 1)
    assert.deepEqual(noKey.stderr.split('\n').filter((line) => line.startsWith('Erreur :')), [`Erreur : la sauvegarde ${id} est chiffrée et aucune clé n’est fournie`])
    assert.equal(existsSync(join(dir, 'fresh-nokey.db')), false)
    await cli(['keygen', '--key-file', 'other.key'], { cwd: dir })
    const wrong = await on(['restore', id, '--to', 'fresh-wrong.db', '--yes', '--key-file', 'other.key'])
    assert.equal(wrong.status, 1)
    assert.match(wrong.stderr, /mauvaise clé/)
    assert.equal(existsSync(join(dir, 'fresh-wrong.db')), false)

    const restored = await on(['restore', id, '--to', 'fresh.db', '--yes', '--key-file', 'backup.key'])
    assert.equal(restored.status, 0, restored.stderr + restored.stdout)
    assert.equal(sqliteCount(join(dir, 'fresh.db'), 'Dossier'), dossiers)
    assert.equal(run('sqlite3', [join(dir, 'fresh.db'), 'PRAGMA integrity_check']).trim(), 'ok')

    const stats = await on(['stats'])
    assert.match(stats.stdout, /Nombre: 2/)
    const check = await on(['check', '--max-age', '26h'])
    assert.equal(check.status, 0, check.stdout + check.stderr)
    const dry = await on(['prune', '--keep', '1', '--dry-run'])
    assert.equal(dry.status, 0, dry.stderr)
    assert.match(dry.stdout, new RegExp(`- ${id} \\(sqlite .*app\\.db\\) : hors de la politique de rétention`))
    assert.match(dry.stdout, /\+ backup-\S+ \(sqlite .*\) : parmi les 1 plus récents \(--keep-last\)/)
    const pruned = await on(['prune', '--keep', '1'])
    assert.equal(pruned.status, 0, pruned.stderr)
    assert.ok(!(await objectKeys(storage)).some((key) => key.startsWith(`${id}.`)), 'the pruned backup is gone, metadata and archive (a backup of the same second is `${id}-1`)')
    assert.deepEqual(await storage.incompleteUploads(), [])
  })

  test(`${entry.name}: create --offsite --encrypt, then restore into a fresh database from the URL and the key file alone`, async (t) => {
    const storage = await entry.start(t)
    const { dir, dossiers } = await workspace(t)
    const created = await cli(['--dir', 'backups', 'create', '--offsite', storage.url, '--encrypt', '--key-file', 'backup.key', '--formats', 'sql,csv'], { cwd: dir, env: { ...storage.env } })
    assert.equal(created.status, 0, created.stderr)
    assert.match(created.stdout, /Copie hors site: .*\.tar\.gz\.enc .*SHA-256 confirmé/)
    const id = ID.exec(created.stdout)![0]
    const local = readdirSync(join(dir, 'backups')).sort()
    assert.deepEqual(local.filter((name) => name.startsWith('backup-')), [`${id}.metadata.json`, `${id}.tar.gz.enc`])
    const list = await cli(['--dir', 'backups', '--offsite', storage.url, 'list'], { cwd: dir, env: { ...storage.env } })
    assert.match(list.stdout, /les deux/)
    const check = await cli(['--dir', 'backups', '--offsite', storage.url, 'check'], { cwd: dir, env: { ...storage.env } })
    assert.equal(check.status, 0, check.stdout)

    // A fresh machine: no backup folder, only the URL and the key file.
    const fresh = tempDir(t, 'ipm-fresh-')
    copyFileSync(join(dir, 'backup.key'), join(fresh, 'backup.key'))
    const restored = await cli(['--dir', storage.url, 'restore', id, '--to', 'app.db', '--yes', '--key-file', 'backup.key'], { cwd: fresh, env: { ...storage.env } })
    assert.equal(restored.status, 0, restored.stderr + restored.stdout)
    assert.equal(sqliteCount(join(fresh, 'app.db'), 'Dossier'), dossiers)

    // The off-site copy is the one that is missing: check fails.
    const empty = tempDir(t, 'ipm-empty-offsite-')
    const missing = await cli(['--dir', 'backups', '--offsite', join(empty, 'none'), 'check'], { cwd: dir, env: { ...storage.env } })
    assert.equal(missing.status, 1)
    assert.match(missing.stdout + missing.stderr, /aucune copie hors site complète/)
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const stale = await cli(['--dir', 'backups', '--offsite', storage.url, 'check', '--max-age', '1s'], { cwd: dir, env: { ...storage.env } })
    assert.equal(stale.status, 1)
    assert.match(stale.stdout + stale.stderr, /la dernière copie hors site/)
  })

  test(`${entry.name}: tampered, truncated and half-present objects are refused before any byte reaches a database`, async (t) => {
    const storage = await entry.start(t)
    const { dir } = await workspace(t)
    const on = (args: string[]) => cli(['--dir', storage.url, ...args], { cwd: dir, env: { ...storage.env } })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const created = await on(['create', '--encrypt', '--key-file', 'backup.key', '--formats', 'sql'])
      assert.equal(created.status, 0, created.stderr)
      ids.push(ID.exec(created.stdout)![0])
    }
    const [flipped, truncated, halved] = ids as [string, string, string]
    const original = await readObject(storage, `${flipped}.tar.gz.enc`)
    const flip = Buffer.from(original)
    flip[Math.floor(flip.length / 2)]! ^= 0x01
    await storage.overwriteRaw(`${flipped}.tar.gz.enc`, flip)
    await storage.overwriteRaw(`${truncated}.tar.gz.enc`, (await readObject(storage, `${truncated}.tar.gz.enc`)).subarray(0, 4_000))
    for (const id of [flipped, truncated]) {
      const keyless = await on(['verify', id])
      assert.equal(keyless.status, 1, `${id} (${id === flipped ? 'flipped' : 'truncated'}): ${keyless.stdout}`)
      const restore = await on(['restore', id, '--to', `${id}.db`, '--yes', '--key-file', 'backup.key'])
      assert.equal(restore.status, 1, restore.stdout)
      assert.equal(existsSync(join(dir, `${id}.db`)), false, 'nothing written')
    }
    // A metadata object without its archive: listed with its problem, verify fails.
    const storageClient = openStorage(storage.url, { env: storage.env })
    await storageClient.delete(`${halved}.tar.gz.enc`)
    const list = await on(['list'])
    assert.match(list.stdout, new RegExp(`${halved}.*archive ${halved}\\.tar\\.gz\\.enc absente`))
    assert.equal((await on(['verify', halved, '--key-file', 'backup.key'])).status, 1)
    // An archive without its metadata is invisible, and the next create removes it.
    await storageClient.delete(`${flipped}.metadata.json`)
    // (A backup of the same second is `<id>-1`: the id is matched as a whole word.)
    assert.doesNotMatch((await on(['list'])).stdout, new RegExp(`${flipped}(?![\\w-])`))
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const next = await on(['create', '--encrypt', '--key-file', 'backup.key', '--formats', 'sql'])
    assert.equal(next.status, 0, next.stderr)
    assert.ok(!(await objectKeys(storage)).includes(`${flipped}.tar.gz.enc`))
  })
}

async function readObject(storage: StorageUnderTest, key: string): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of await openStorage(storage.url, { env: storage.env }).get(key)) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}


test('no key, passphrase or data key in any output, metadata, history or stored object; --encrypt without a key writes nothing', async (t) => {
  const { dir } = await workspace(t)
  const key = readFileSync(join(dir, 'backup.key'), 'utf8').trim()
  const passphrase = 'phrase-secrète-du-cabinet-Ωmega-42'
  const offsite = join(dir, 'offsite')
  const outputs: CliResult[] = []
  const go = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const result = await cli(['--dir', 'backups', '--offsite', offsite, ...args], { cwd: dir, env })
    outputs.push(result)
    return result
  }
  const refused = await go(['create', '--encrypt'])
  assert.equal(refused.status, 2)
  assert.equal(existsSync(join(dir, 'backups')), false, 'nothing written locally')
  assert.equal(existsSync(offsite), false, 'nothing written off-site')
  assert.equal((await go(['create', '--encrypt'], { BACKUP_PASSPHRASE: passphrase })).status, 0)
  assert.equal((await go(['create', '--encrypt'], { BACKUP_ENCRYPTION_KEY: key })).status, 0)
  assert.equal((await go(['create', '--encrypt', '--key-file', 'backup.key', '--json'])).status, 0)
  await go(['list', '--json'], { BACKUP_ENCRYPTION_KEY: key })
  const wrong = await go(['verify', JSON.parse(outputs.at(-2)!.stdout).metadata.id, '--json'], { BACKUP_PASSPHRASE: passphrase })
  assert.equal(wrong.status, 1, 'a passphrase does not open a key-encrypted backup')
  await go(['check', '--json'], { BACKUP_PASSPHRASE: passphrase })
  const files = (root: string): string[] => readdirSync(root, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(root, e.name)) : [join(root, e.name)]))
  const everything = [...outputs.flatMap((o) => [o.stdout, o.stderr]), ...[join(dir, 'backups'), offsite, join(dir, 'history')].filter(existsSync).flatMap(files).map((path) => readFileSync(path).toString('latin1'))]
  const base64url = Buffer.from(key, 'base64').toString('hex')
  for (const secret of [key, passphrase, base64url, Buffer.from(passphrase).toString('latin1')]) {
    assert.equal(everything.filter((text) => text.includes(secret)).length, 0, 'a secret leaked')
  }
})

test('SIGKILL during an off-site upload: the next create leaves no incomplete upload on any storage', async (t) => {
  for (const entry of STORAGES.filter((e) => e.name !== 'folder')) {
    const storage = await entry.start(t)
    const dir = tempDir(t, 'ipm-kill-')
    // 24 MiB of random blobs: the archive is larger than one part (8 MiB), so the upload is multipart.
    blobDatabase(join(dir, 'app.db'), 24)
    const args = ['--dir', 'backups', '--offsite', storage.url, 'create', '--formats', 'sql']
    const killed = await runScriptAsync('scripts/advanced-backup.ts', args, { cwd: dir, env: { ...storage.env, DATABASE_URL: 'file:./app.db', IPM_BACKUP_KILL_AT: 'offsite:mid-upload' } }).catch((error: Error) => error)
    assert.ok(killed instanceof Error && /SIGKILL/.test(killed.message), `${entry.name}: killed mid-upload`)
    assert.equal((await objectKeys(storage)).filter((key) => key.endsWith('.metadata.json')).length, 0, `${entry.name}: no complete backup visible`)
    assert.equal((await objectKeys(storage)).filter((key) => key.startsWith(LEASE_PREFIX)).length, 1, `${entry.name}: the killed create's upload lease stays`)
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const next = await runScriptAsync('scripts/advanced-backup.ts', args, { cwd: dir, env: { ...storage.env, DATABASE_URL: 'file:./app.db' } })
    assert.equal(next.status, 0, next.stderr)
    assert.deepEqual(await storage.incompleteUploads(), [], `${entry.name}: the killed upload was swept`)
    assert.deepEqual((await objectKeys(storage)).filter((key) => key.startsWith(LEASE_PREFIX)), [], `${entry.name}: its lease (a dead pid of this host) too`)
    assert.equal((await objectKeys(storage)).filter((key) => key.endsWith('.metadata.json')).length, 1)
  }
})
