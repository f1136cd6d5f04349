/**
 * Creating backups: the spec's layout, metadata a stranger can check with sha256sum and tar alone,
 * a consistent snapshot while another process writes, atomic publication and leftover cleanup.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENGINES, defer, openTestDatabase, tempDir } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { backupSystem, checksumLines, python, run, sqliteCount, sqliteLoad, startWriter, steppingClock } from './helpers/backup.ts'
import { sha256Hex } from '../scripts/lib/backup/manifest.ts'
import { seedScale } from '../scripts/lib/seed/scale.ts'
import { requireJudge } from './helpers/judges.ts'

const TABLES = ['Client', 'Dossier', 'Plan', 'Tenant', 'User', '_prisma_migrations']

test('a compressed backup is backup-<ts>.tar.gz plus its metadata, and sha256sum and GNU tar check it from the metadata alone', { skip: requireJudge('sha256sum', 'sqlite3', 'tar') }, async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const backupDir = join(tempDir(t), 'backups')
  const { metadata, path } = await backupSystem(t, { databaseUrl: db.url, backupDir, now: steppingClock() }).create()
  const id = 'backup-2026-01-21T15-30-00'
  assert.equal(metadata.id, id)
  assert.equal(path, join(backupDir, `${id}.tar.gz`))
  assert.deepEqual(readdirSync(backupDir).sort(), [`${id}.metadata.json`, `${id}.tar.gz`, 'history.jsonl'])

  // The spec's fields, and ours.
  assert.equal(metadata.timestamp, '2026-01-21T15:30:00.000Z')
  assert.equal(metadata.databasePath, db.url.slice('file:'.length))
  assert.equal(metadata.compressed, true)
  assert.equal(metadata.incremental, false)
  assert.equal(metadata.parentId, null)
  assert.equal(metadata.verified, true)
  assert.deepEqual(metadata.exportFormats, ['sql', 'json', 'csv'])
  assert.equal(metadata.engine, 'sqlite')
  assert.equal(metadata.schema.newestMigration, '20260121153000_init')
  assert.match(metadata.schema.prismaSchemaSha256 ?? '', /^[0-9a-f]{64}$/)
  assert.match(metadata.tool.version, /^\d+\.\d+\.\d+/)
  assert.deepEqual(metadata.tables.map((t) => t.name), TABLES)
  assert.deepEqual(metadata.files.map((f) => f.path), ['data.json', 'database.db', 'export.sql', ...TABLES.map((t) => `exports/${t}.csv`)])

  // The archive: its own hash and size, and what GNU tar sees in it.
  const archive = readFileSync(path)
  assert.deepEqual(metadata.archive, { path: `${id}.tar.gz`, size: archive.length, sha256: sha256Hex(archive) })
  assert.equal(metadata.size, archive.length)
  assert.equal(run('sha256sum', ['-c'], { cwd: backupDir, input: `${metadata.archive!.sha256}  ${id}.tar.gz\n` }).trim(), `${id}.tar.gz: OK`)
  const listed = run('tar', ['-tzf', path]).trim().split('\n')
  // In the order the files were finished: data.json is written in the same pass as the CSV files.
  assert.deepEqual(listed, [`${id}/`, `${id}/database.db`, `${id}/export.sql`, `${id}/exports/`, ...TABLES.map((t) => `${id}/exports/${t}.csv`), `${id}/data.json`, `${id}/metadata.json`])

  // Unpacked: every file checks with sha256sum against the metadata alone, and `hash` is the SHA-256 of that list.
  const out = tempDir(t)
  run('tar', ['-xzf', path, '-C', out])
  const folder = join(out, id)
  const lines = checksumLines(metadata)
  assert.equal(run('sha256sum', ['-c', '--strict'], { cwd: folder, input: lines }).trim().split('\n').length, metadata.files.length)
  assert.equal(run('sha256sum', [], { input: lines }).split(' ')[0], metadata.hash)
  assert.equal(metadata.contentSize, metadata.files.reduce((sum, f) => sum + f.size, 0))

  // The seal over each metadata file, recomputed with sed and sha256sum.
  for (const file of [join(backupDir, `${id}.metadata.json`), join(folder, 'metadata.json')]) {
    const sealed = JSON.parse(readFileSync(file, 'utf8')).metadataSha256
    const unsealed = run('sed', ['s/"metadataSha256": "[0-9a-f]*"/"metadataSha256": ""/', file])
    assert.equal(run('sha256sum', [], { input: unsealed }).split(' ')[0], sealed)
  }
  // The metadata inside describes the same backup as the one beside the archive.
  // (the tenant index locates the archive's own members: only the copy beside it has one)
  const inside = JSON.parse(readFileSync(join(folder, 'metadata.json'), 'utf8'))
  assert.equal(inside.tenantIndex, undefined)
  assert.ok(metadata.tenantIndex)
  for (const key of ['archive', 'size', 'durationMs', 'metadataSha256']) delete inside[key]
  const beside: Record<string, unknown> = { ...metadata }
  for (const key of ['archive', 'size', 'durationMs', 'tenantIndex', 'metadataSha256']) delete beside[key]
  assert.deepEqual(inside, beside)

  // database.db is a sound SQLite file with the counted rows.
  assert.equal(run('sqlite3', [join(folder, 'database.db'), 'PRAGMA integrity_check']).trim(), 'ok')
  for (const table of metadata.tables) assert.equal(sqliteCount(join(folder, 'database.db'), table.name), table.rows, table.name)
  assert.equal(metadata.tables.find((t) => t.name === 'Dossier')!.rows, 9)
})

test('an uncompressed backup is the spec\'s folder: database.db, export.sql, data.json, metadata.json, exports/<table>.csv', { skip: requireJudge('sha256sum', 'sqlite3') }, async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const system = backupSystem(t, { databaseUrl: db.url, compressionEnabled: false, now: steppingClock() })
  const { metadata, path } = await system.create()
  assert.deepEqual(readdirSync(path).sort(), ['data.json', 'database.db', 'export.sql', 'exports', 'metadata.json'])
  assert.deepEqual(readdirSync(join(path, 'exports')).sort(), TABLES.map((t) => `${t}.csv`).sort())
  assert.equal(metadata.compressed, false)
  assert.equal(metadata.archive, null)
  assert.equal(metadata.size, metadata.contentSize)
  run('sha256sum', ['-c', '--strict', '--quiet'], { cwd: path, input: checksumLines(metadata) })
  assert.equal(run('sqlite3', [join(path, 'database.db'), 'PRAGMA integrity_check']).trim(), 'ok')
})

test('--formats json writes data.json only, next to the database; ids of the same second get a suffix', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const fixed = () => new Date('2026-01-21T15:30:00.400Z')
  const system = backupSystem(t, { databaseUrl: db.url, compressionEnabled: false, exportFormats: ['json'], now: fixed })
  const first = await system.create()
  const second = await system.create()
  assert.deepEqual(readdirSync(first.path).sort(), ['data.json', 'database.db', 'metadata.json'])
  assert.equal(first.metadata.id, 'backup-2026-01-21T15-30-00')
  assert.equal(second.metadata.id, 'backup-2026-01-21T15-30-00-2')
  assert.deepEqual((await system.list()).backups.map((b) => b.id), ['backup-2026-01-21T15-30-00-2', 'backup-2026-01-21T15-30-00'])
})

test('a backup taken while another process inserts in WAL mode is one instant: the same row counts everywhere', { skip: requireJudge('python3', 'sqlite3') }, async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  await db.sql.query('PRAGMA journal_mode = WAL')
  await seedScale(db.sql, { dossiers: 5_000 })
  const source = db.url.slice('file:'.length)
  const writer = startWriter(t, source, REPO_ROOT)
  // Let the writer get going, then back up while it writes.
  const before = sqliteCount(source, 'Client')
  for (let i = 0; i < 200 && sqliteCount(source, 'Client') < before + 50; i++) await new Promise((r) => setTimeout(r, 10))
  const { metadata, path } = await backupSystem(t, { databaseUrl: db.url, compressionEnabled: false }).create()
  const duringBackup = sqliteCount(source, 'Client')
  const inserted = await writer.stop()
  assert.ok(inserted > 0, 'the writer inserted rows')

  const rows = Object.fromEntries(metadata.tables.map((table) => [table.name, table.rows]))
  assert.ok(rows.Client! > before && rows.Client! < duringBackup + 1_000_000, `${before} < ${rows.Client} (backup) while the source went on to ${duringBackup}`)
  const loaded = join(tempDir(t), 'loaded.db')
  sqliteLoad(join(path, 'export.sql'), loaded)
  const json = python<Record<string, number>>(
    'import json, sys\nd = json.load(open(sys.argv[1], encoding="utf-8"))\nprint(json.dumps({k: len(v["rows"]) for k, v in d["tables"].items()}))',
    [join(path, 'data.json')],
  )
  for (const table of TABLES) {
    assert.equal(sqliteCount(join(path, 'database.db'), table), rows[table], `database.db ${table}`)
    assert.equal(sqliteCount(loaded, table), rows[table], `export.sql ${table}`)
    assert.equal(json[table], rows[table], `data.json ${table}`)
    const csv = python<number>('import csv, json, sys\nprint(json.dumps(sum(1 for _ in csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))) - 1))', [join(path, 'exports', `${table}.csv`)])
    assert.equal(csv, rows[table], `CSV ${table}`)
  }
  assert.equal(run('sqlite3', [join(path, 'database.db'), 'PRAGMA integrity_check']).trim(), 'ok')
})

for (const engine of ENGINES) test(`${engine}: create cleans up what dead runs left, never a live run's work nor files that are not its own`, async (t) => {
  const db = await openTestDatabase(t, engine)
  const backupDir = join(tempDir(t), 'backups')
  mkdirSync(backupDir)
  const deadPid = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['-e', '0'])
    child.on('exit', () => resolve(child.pid!))
  })
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
  defer(t, () => live.kill('SIGKILL'))
  const dead = `backup-2026-01-01T00-00-00.tmp-${deadPid}-abc`
  const alive = `backup-2026-01-02T00-00-00.tmp-${live.pid}-def`
  mkdirSync(join(backupDir, dead))
  writeFileSync(join(backupDir, dead, 'database.db'), 'partial')
  mkdirSync(join(backupDir, alive))
  writeFileSync(join(backupDir, 'backup-2026-01-03T00-00-00.tar.gz'), 'an archive whose metadata was never written')
  writeFileSync(join(backupDir, `backup-2026-01-04T00-00-00.metadata.json.tmp-${deadPid}-x`), '{')
  writeFileSync(join(backupDir, 'notes.txt'), 'mine')
  mkdirSync(join(backupDir, 'backup-2026-01-05T00-00-00'))

  const system = backupSystem(t, { databaseUrl: db.url, backupDir, now: steppingClock() })
  assert.deepEqual((await system.list()).backups, [], 'nothing partial is listed')
  const { cleaned } = await system.create()
  assert.deepEqual(cleaned.sort(), ['backup-2026-01-03T00-00-00.tar.gz', `backup-2026-01-04T00-00-00.metadata.json.tmp-${deadPid}-x`, dead].sort())
  assert.deepEqual(readdirSync(backupDir).sort(), [
    alive,
    'backup-2026-01-05T00-00-00',
    'backup-2026-01-21T15-30-00.metadata.json',
    'backup-2026-01-21T15-30-00.tar.gz',
    'history.jsonl',
    'notes.txt',
  ])
  assert.deepEqual((await system.list()).backups.map((b) => b.id), ['backup-2026-01-21T15-30-00'])
})

test('a create killed midway leaves nothing that list shows, and the next create removes its leftovers', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  await seedScale(db.sql, { dossiers: 20_000 })
  const backupDir = join(tempDir(t), 'backups')
  mkdirSync(backupDir)
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', backupDir, '--database', db.url, '--quiet'], {
    cwd: REPO_ROOT,
    stdio: 'ignore',
  })
  defer(t, () => child.kill('SIGKILL'))
  const exited = new Promise((resolve) => child.on('exit', resolve))
  let staged = false
  for (let i = 0; i < 1500 && !staged && child.exitCode === null; i++) {
    staged = readdirSync(backupDir).some((name) => name.includes('.tmp-') && existsSync(join(backupDir, name, 'database.db')))
    if (!staged) await new Promise((r) => setTimeout(r, 5))
  }
  assert.ok(staged, 'the run got as far as its snapshot')
  child.kill('SIGKILL')
  await exited
  assert.ok(readdirSync(backupDir).some((name) => name.includes('.tmp-')), 'the killed run left its staging folder')
  const system = backupSystem(t, { databaseUrl: db.url, backupDir })
  assert.deepEqual((await system.list()).backups, [])
  const { cleaned, metadata } = await system.create()
  assert.equal(cleaned.length, 1)
  assert.deepEqual(readdirSync(backupDir).sort(), [`${metadata.id}.metadata.json`, `${metadata.id}.tar.gz`, 'history.jsonl'])
  assert.equal((await system.verify(metadata.id)).ok, true)
})

test('the archive progress is over the input: every event has a total, never below what was read, and it ends at 100 % of the files handed over', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const backupDir = join(tempDir(t), 'backups')
  const events: { done: number; total?: number }[] = []
  const { metadata } = await backupSystem(t, { databaseUrl: db.url, backupDir, now: steppingClock(), onProgress: (event) => void (event.label === 'archive' && events.push(event)) }).create()
  assert.ok(events.length > 0)
  for (const event of events) {
    assert.ok(event.total !== undefined, 'a total, so the bar is not a constant 100 %')
    assert.ok(event.done <= event.total, JSON.stringify(event))
  }
  const last = events.at(-1)!
  assert.equal(last.done, last.total)
  // The input is every content file of the backup (and the metadata.json inside the archive).
  const content = metadata.files.reduce((sum, file) => sum + file.size, 0)
  assert.ok(last.total! > content, `${last.total} input bytes for ${content} bytes of content files plus metadata.json`)
})
