/**
 * `advanced-backup export --to <folder>`: the exports alone, read in place (SQLite) or from the
 * engine's snapshot, at one instant, published whole or not at all; files judged by `sha256sum -c`,
 * `sqlite3` and `psql`, and the same bytes as a backup's exports of the same data.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import Database from 'better-sqlite3'
import { ENGINES, createPostgresDatabase, openTestDatabase, tempDir } from './helpers/databases.ts'
import { backupSystem, createAwkwardDatabase, run, sqliteDump, sqliteLoad, startWriter } from './helpers/backup.ts'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import type { ExportManifest } from '../scripts/lib/backup/create/export-only.ts'
import { D1_SNAPSHOT_WARNING } from '../scripts/lib/engines/d1/snapshot.ts'

/** Every file of a folder, by path relative to it (`exports/Plan.csv`). */
function filesOf(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? filesOf(dir, join(prefix, entry.name)) : [join(prefix, entry.name)])).sort()
}

function manifestOf(dir: string): ExportManifest {
  return JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as ExportManifest
}

/** data.json without the two lines that name the backup or export it belongs to. */
function withoutIdentity(text: string): string {
  return text.replace(/\n {2}"backupId": .*\n {2}"timestamp": .*\n/, '\n')
}

/** What `sha256sum -c` says of the folder's SHA256SUMS, and that it lists every file but the two it describes them with. */
function assertChecksums(dir: string): void {
  const sums = readFileSync(join(dir, 'SHA256SUMS'), 'utf8')
  assert.match(run('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: dir }), /: OK\n$/)
  assert.deepEqual(sums.trim().split('\n').map((line) => line.slice(66)).sort(), filesOf(dir).filter((f) => f !== 'SHA256SUMS' && f !== 'export.json'))
  const manifest = manifestOf(dir)
  assert.equal(manifest.hash, createHash('sha256').update(sums).digest('hex'))
  assert.deepEqual(manifest.files.map((f) => f.path), filesOf(dir).filter((f) => f !== 'SHA256SUMS' && f !== 'export.json'))
}

test('a SQLite export holds the same bytes as a backup\'s exports, no database.db, and every file passes sha256sum -c; export.sql loads with sqlite3', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'awkward.db')
  createAwkwardDatabase(path)
  const system = backupSystem(t, { databaseUrl: `file:${path}`, backupDir: join(dir, 'backups'), compressionEnabled: false })
  const { path: backup } = await system.create()
  const { path: exported, manifest } = await system.exportTo(join(dir, 'export'))

  assert.equal(exported, join(dir, 'export'))
  assert.ok(!existsSync(join(exported, 'database.db')), 'an export carries no database artefact')
  assertChecksums(exported)
  assert.deepEqual(manifest.formats, ['sql', 'json', 'csv'])
  assert.equal(manifest.kind, 'export')
  for (const file of filesOf(exported).filter((f) => f.startsWith('exports/'))) {
    assert.ok(readFileSync(join(exported, file)).equals(readFileSync(join(backup, file))), `${file}: the backup's bytes`)
  }
  // export.sql is not compared with the backup's: that one reads a VACUUM INTO copy, whose schema lists the virtual table elsewhere.
  assert.equal(withoutIdentity(readFileSync(join(exported, 'data.json'), 'utf8')), withoutIdentity(readFileSync(join(backup, 'data.json'), 'utf8')))
  for (const table of manifest.tables) assert.equal(table.rows, Number(run('sqlite3', [path, `SELECT count(*) FROM "${table.name.replaceAll('"', '""')}"`]).trim()), table.name)
  const loaded = join(dir, 'loaded.db')
  sqliteLoad(join(exported, 'export.sql'), loaded)
  assert.equal(sqliteDump(loaded), sqliteDump(path))
  // Nothing else was left beside it.
  assert.deepEqual(readdirSync(dir).sort(), ['awkward.db', 'backups', 'export', 'loaded.db'])
})

test('--formats csv writes the CSV files alone; a folder that exists is refused and left as it was, a missing parent too; a killed export\'s work folder is removed by the next', async (t) => {
  const dir = tempDir(t)
  const db = await openTestDatabase(t, 'sqlite')
  const system = backupSystem(t, { databaseUrl: db.url, backupDir: join(dir, 'backups'), exportFormats: ['csv'] })
  const killed = join(dir, 'csv.tmp-999999-abcdef')
  mkdirSync(killed)
  writeFileSync(join(killed, 'half.csv'), 'id\r\n1')
  const { path, manifest, cleaned } = await system.exportTo(join(dir, 'csv'))
  assert.deepEqual(cleaned, ['csv.tmp-999999-abcdef'])
  assert.deepEqual(filesOf(path), ['SHA256SUMS', 'export.json', ...manifest.tables.map((table) => `exports/${table.name}.csv`)].sort())
  assertChecksums(path)

  const taken = join(dir, 'taken')
  mkdirSync(taken)
  writeFileSync(join(taken, 'mine.txt'), 'keep me')
  await assert.rejects(system.exportTo(taken), (error: unknown) => error instanceof ToolkitError && error.exitCode === 2 && /existe déjà : rien n’a été écrit/.test(error.message))
  assert.deepEqual(readdirSync(taken), ['mine.txt'])
  await assert.rejects(system.exportTo(join(dir, 'missing', 'export')), (error: unknown) => error instanceof ToolkitError && /n’existe pas/.test(error.message) && /mkdir -p/.test(error.hint ?? ''))
  assert.deepEqual(readdirSync(dir).sort(), ['csv', 'taken'])
})

test('an export read in place while another process writes shows one instant: every format holds the same rows of the written table', async (t) => {
  const dir = tempDir(t)
  const db = await openTestDatabase(t, 'sqlite', { seed: true })
  const path = db.url.slice('file:'.length)
  await db.close()
  // Counted with a busy timeout: the writer takes the file's lock to switch it to WAL mode.
  const clients = () => {
    const reader = new Database(path, { readonly: true, timeout: 10_000 })
    try {
      return Number(reader.prepare('SELECT count(*) FROM "Client"').pluck().get())
    } finally {
      reader.close()
    }
  }
  const before = clients()
  const writer = startWriter(t, path, REPO_ROOT)
  for (const started = Date.now(); clients() < before + 50; ) {
    assert.ok(Date.now() - started < 20_000, 'the writer did not start')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const system = backupSystem(t, { databaseUrl: `file:${path}`, backupDir: join(dir, 'backups') })
  const seen = new Set<number>()
  // Several exports while the writer commits every millisecond or so.
  for (let i = 0; i < 4; i++) {
    const { path: exported, manifest } = await system.exportTo(join(dir, `export-${i}`))
    const clients = manifest.tables.find((table) => table.name === 'Client')!.rows
    const csvRecords = readFileSync(join(exported, 'exports', 'Client.csv'), 'utf8').split('\r\n').filter(Boolean).length - 1
    const jsonRows = (JSON.parse(readFileSync(join(exported, 'data.json'), 'utf8')) as { tables: Record<string, { rowCount: number }> }).tables.Client!.rowCount
    const inserts = readFileSync(join(exported, 'export.sql'), 'utf8').split('\n').filter((line) => line.startsWith('INSERT INTO "Client"')).length
    assert.deepEqual({ csvRecords, jsonRows, inserts }, { csvRecords: clients, jsonRows: clients, inserts: clients }, `export ${i}`)
    seen.add(clients)
  }
  await writer.stop()
  assert.ok(seen.size > 1, `the writer committed between the exports (Client rows seen: ${[...seen].join(', ')})`)
})

test('the export verb of the built tool: --json prints the manifest, a usage error is one French line with exit 2', async (t) => {
  const dir = tempDir(t)
  const db = await openTestDatabase(t, 'sqlite')
  const ok = await runScriptAsync('dist/advanced-backup.mjs', ['--database', db.url, '--formats', 'json', 'export', '--to', 'out', '--json'], { cwd: dir })
  assert.equal(ok.status, 0, ok.stderr)
  const printed = JSON.parse(ok.stdout) as { path: string; manifest: ExportManifest }
  assert.deepEqual(printed.manifest.files.map((f) => f.path), ['data.json'])
  assert.equal(printed.path, join(dir, 'out'))
  const again = await runScriptAsync('dist/advanced-backup.mjs', ['--database', db.url, 'export', '--to', 'out'], { cwd: dir })
  assert.equal(again.status, 2)
  assert.match(again.stderr, /existe déjà/)
  const missing = await runScriptAsync('dist/advanced-backup.mjs', ['--database', db.url, 'export'], { cwd: dir })
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, /--to/)
})

for (const engine of ENGINES.filter((e) => e !== 'sqlite')) {
  test(`a ${engine} export: the same CSV and data.json rows as its backup, ${engine === 'postgres' ? 'database.sql only with --formats sql, restored by psql' : 'no database.db, and D1\'s warning'}`, async (t) => {
    const dir = tempDir(t)
    const db = await openTestDatabase(t, engine, { seed: true })
    const system = backupSystem(t, { databaseUrl: db.url, backupDir: join(dir, 'backups'), compressionEnabled: false, exportFormats: ['json', 'csv'] })
    const { path: backup, metadata } = await system.create()
    const { path: exported, manifest } = await system.exportTo(join(dir, 'export'))
    assertChecksums(exported)
    assert.deepEqual(manifest.tables, metadata.tables.map(({ name, rows }) => ({ name, rows })))
    assert.ok(!existsSync(join(exported, 'database.sql')) && !existsSync(join(exported, 'database.db')), 'no artefact when sql is not asked for')
    // The same rows, compared whatever their order: a backup groups the cabinets' rows (its cabinet
    // restore reads them so), an export keeps the engine's order; and D1 is read page by page into a new file each time.
    const lines = (file: string) => readFileSync(file, 'utf8').split('\r\n').sort()
    for (const file of filesOf(exported).filter((f) => f.startsWith('exports/'))) assert.deepEqual(lines(join(exported, file)), lines(join(backup, file)), file)
    const rowsOf = (dir: string) => Object.entries((JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8')) as { tables: Record<string, { rows: unknown[] }> }).tables).map(([name, table]) => [name, table.rows.map((row) => JSON.stringify(row)).sort()])
    assert.deepEqual(rowsOf(exported), rowsOf(backup))
    if (engine === 'd1') {
      assert.deepEqual(manifest.warnings, [D1_SNAPSHOT_WARNING])
      return
    }
    const withSql = backupSystem(t, { databaseUrl: db.url, backupDir: join(dir, 'backups'), exportFormats: ['sql'] })
    const { path: sqlExport } = await withSql.exportTo(join(dir, 'sql'))
    assert.deepEqual(filesOf(sqlExport), ['SHA256SUMS', 'database.sql', 'export.json'])
    assertChecksums(sqlExport)
    const target = await createPostgresDatabase(t)
    run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', target, '-f', join(sqlExport, 'database.sql')])
    for (const table of manifest.tables) assert.equal(Number(run('psql', ['-X', '-At', '-d', target, '-c', `SELECT count(*) FROM "${table.name}"`]).trim()), table.rows, table.name)
  })
}
