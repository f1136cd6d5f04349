/**
 * Incremental backups: inserts, updates and deletes (awkward values included) captured against a
 * compressed parent; restoring any link of a chain gives a database whose `sqlite3 .dump` equals
 * the source's at that instant; verify fails a child whose parent is broken; rotation keeps chains.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { defer, tempDir } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { backupSystem, run, sqliteDump, steppingClock } from './helpers/backup.ts'
import { planRotation } from '../scripts/lib/backup/catalog/rotation.ts'
import { renderCreate, renderList } from '../scripts/lib/backup/render.ts'
import { listBackupEntries, type BackupEntry } from '../scripts/lib/backup/catalog/catalog.ts'
import type { BackupMetadata } from '../scripts/lib/backup/metadata.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { requireJudge } from './helpers/judges.ts'

/** A database with the shapes an incremental must get right. */
function awkwardDatabase(path: string): void {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec(`
    CREATE TABLE person (id TEXT PRIMARY KEY, name TEXT COLLATE NOCASE, score, photo BLOB, note TEXT);
    CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT);
    CREATE TABLE tag (tenant TEXT, name TEXT, weight REAL, PRIMARY KEY (tenant, name)) WITHOUT ROWID;
    CREATE TABLE log (line TEXT);
    CREATE INDEX person_name ON person(name);
    CREATE TRIGGER person_audit AFTER UPDATE ON person BEGIN INSERT INTO log VALUES ('updated ' || new.id); END;
  `)
  const person = db.prepare('INSERT INTO person VALUES (?, ?, ?, ?, ?)')
  for (let i = 0; i < 300; i++) person.run(`p${String(i).padStart(3, '0')}`, `Name ${i}`, i % 7 === 0 ? null : i, i % 5 === 0 ? Buffer.from([0, i % 256, 255]) : null, i % 3 === 0 ? '' : `note ${i}\n'quoted'`)
  for (let i = 0; i < 50; i++) db.prepare('INSERT INTO counter (label) VALUES (?)').run(`c${i}`)
  for (let i = 0; i < 40; i++) db.prepare('INSERT INTO tag VALUES (?, ?, ?)').run(`t${i % 4}`, `tag${i}`, i / 3)
  db.close()
}

test('incrementals capture inserts, updates and deletes; restoring each link of the chain gives the source .dump of its instant', { skip: requireJudge('sqlite3') }, async (t) => {
  const dir = tempDir(t)
  const source = join(dir, 'app.db')
  awkwardDatabase(source)
  const backupDir = join(dir, 'backups')
  const clock = steppingClock()
  const system = (compress: boolean) => backupSystem(t, { databaseUrl: `file:${source}`, backupDir, compressionEnabled: compress, now: clock })
  const full = await system(true).create()

  const db = new Database(source)
  db.exec(`
    UPDATE person SET name = upper(name) WHERE id = 'p001';             -- same under NOCASE, different bytes
    UPDATE person SET score = 5.0 WHERE id = 'p005';                    -- integer 5 becomes real 5.0
    UPDATE person SET note = NULL WHERE id = 'p003';                    -- '' becomes NULL
    UPDATE person SET photo = x'00ff00' WHERE id = 'p010';
    DELETE FROM person WHERE id IN ('p020', 'p021', 'p299');
    INSERT INTO person VALUES ('p500', 'New', 1, NULL, 'x');
    DELETE FROM counter WHERE id = 50;
    INSERT INTO counter (label) VALUES ('after delete');
    UPDATE tag SET weight = -0.5 WHERE tenant = 't1' AND name = 'tag1';
    DELETE FROM tag WHERE name = 'tag2';
    INSERT INTO tag VALUES ('t9', 'late', NULL);
  `)
  const dumpAtFirst = sqliteDump(source)
  const first = await system(true).create({ incremental: true })
  db.exec(`
    DELETE FROM person WHERE id = 'p500';                               -- inserted then deleted
    INSERT INTO person VALUES ('p020', 'Back again', 20, NULL, NULL);    -- deleted then re-inserted (new rowid)
    UPDATE person SET score = score + 1 WHERE id BETWEEN 'p100' AND 'p130';
  `)
  db.close()
  const dumpAtSecond = sqliteDump(source)
  const second = await system(false).create({ incremental: true })

  const m1 = first.metadata
  const m2 = second.metadata
  assert.deepEqual([m1.incremental, m1.parentId, m1.compressed], [true, full.metadata.id, true])
  assert.deepEqual([m2.incremental, m2.parentId, m2.compressed], [true, m1.id, false])
  assert.deepEqual(m1.files.map((f) => f.path), ['changes.db'])
  assert.deepEqual(m2.exportFormats, [])
  assert.match(m2.warnings[0]!, /59 lignes insérées ou modifiées, 0 supprimées/, "27 person scores (4 stay NULL), rowid 300 reused by p020, 31 trigger rows in log")
  assert.ok(m1.size < full.metadata.size / 2, `${m1.size} vs ${full.metadata.size}`)
  const listed = renderList(await system(true).list(), { cwd: dir })
  assert.match(listed, new RegExp(`${m2.id} .* incrémental ← ${m1.id}\n.*${m1.id} .* incrémental ← ${full.metadata.id}\n.*${full.metadata.id} .* sql,json,csv\n`))
  // Row counts are the whole database's at the incremental's instant.
  assert.deepEqual(m1.tables.find((x) => x.name === 'person'), { name: 'person', rows: 298 })

  const restoreInto = async (id: string) => {
    const target = join(tempDir(t), 'restored.db')
    const result = await backupSystem(t, { databaseUrl: `file:${source}`, backupDir }).restore(id, { yes: true, to: target })
    return { target, result }
  }
  const atSecond = await restoreInto(m2.id)
  assert.deepEqual(atSecond.result.chain, [full.metadata.id, m1.id, m2.id])
  assert.equal(sqliteDump(atSecond.target), dumpAtSecond)
  assert.equal(sqliteDump((await restoreInto(m1.id)).target), dumpAtFirst)
  assert.equal(run('sqlite3', [atSecond.target, 'PRAGMA integrity_check']).trim(), 'ok')
  // Each backup of the chain is read once: all of them removed right after step 1, the chain still
  // restores, from the copies step 1 verified (a restore that extracts again in step 3 fails).
  const copy = join(tempDir(t), 'backups')
  cpSync(backupDir, copy, { recursive: true })
  const once = join(tempDir(t), 'restored.db')
  const removeChain = (step: string) => {
    if (step === 'confirm') for (const name of readdirSync(copy)) if (name.startsWith('backup-')) rmSync(join(copy, name), { recursive: true })
  }
  await backupSystem(t, { databaseUrl: `file:${source}`, backupDir: copy }).restore(m2.id, { yes: true, to: once, step: removeChain })
  assert.deepEqual(readdirSync(copy).filter((name) => name.startsWith('backup-')), [])
  assert.equal(sqliteDump(once), dumpAtSecond)

  // verify checks the chain: a broken full backup fails both incrementals.
  const ok = await backupSystem(t, { databaseUrl: `file:${source}`, backupDir }).verify(m2.id)
  assert.equal(ok.ok, true)
  assert.ok(ok.checks.some((c) => c.path === `parent ${m1.id}` && c.status === 'ok'))
  const archive = join(backupDir, `${full.metadata.id}.tar.gz`)
  const bytes = readFileSync(archive)
  bytes[Math.floor(bytes.length / 2)]! ^= 0x10
  writeFileSync(archive, bytes)
  const broken = await backupSystem(t, { databaseUrl: `file:${source}`, backupDir }).verify(m2.id)
  assert.equal(broken.ok, false)
  assert.deepEqual(broken.checks.filter((c) => c.status !== 'ok').map((c) => c.path), [`parent ${m1.id}`])
  await assert.rejects(restoreInto(m2.id), (error: unknown) => error instanceof ToolkitError && /le backup backup-.*, dont .* a besoin, échoue à la vérification/.test(error.message))
})

test('an incremental taken while another process writes is one instant of the database', async (t) => {
  const dir = tempDir(t)
  const source = join(dir, 'app.db')
  awkwardDatabase(source)
  const backupDir = join(dir, 'backups')
  const system = backupSystem(t, { databaseUrl: `file:${source}`, backupDir, now: steppingClock(), exportFormats: ['sql'] })
  await system.create()
  // Another process inserts numbered lines, one transaction each, as fast as it can.
  const writer = spawn(process.execPath, ['-e', `
    const db = new (require('better-sqlite3'))(process.argv[1], { timeout: 10000 })
    const insert = db.prepare('INSERT INTO log (line) VALUES (?)')
    let n = 0
    const tick = () => { for (let i = 0; i < 20; i++) insert.run('line ' + (++n)); setImmediate(tick) }
    tick()
  `, source], { cwd: REPO_ROOT, stdio: 'ignore' })
  defer(t, () => writer.kill('SIGKILL'))
  const lines = () => {
    const db = new Database(source, { readonly: true })
    try {
      return (db.prepare('SELECT count(*) AS n FROM log').get() as { n: number }).n
    } finally {
      db.close()
    }
  }
  const deadline = Date.now() + 20_000
  while (lines() < 200) {
    assert.ok(Date.now() < deadline, 'the writer process did not start writing')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const before = lines()
  const inc = await system.create({ incremental: true })
  const after = lines()
  assert.match(renderCreate(inc, { cwd: dir }), new RegExp(`\n   Incrémental: changements depuis ${inc.metadata.parentId} \\(pas d'exports\\)\n`))
  writer.kill('SIGKILL')
  await new Promise((resolve) => writer.once('exit', resolve))
  const target = join(dir, 'restored.db')
  // The restore's own step 4 compares every table's rows with the counts taken in the same transaction.
  await system.restore(inc.metadata.id, { yes: true, to: target })
  const restored = new Database(target, { readonly: true })
  const count = (restored.prepare('SELECT count(*) AS n FROM log').get() as { n: number }).n
  const text = (db: Database.Database) => (db.prepare('SELECT group_concat(line) AS t FROM (SELECT line FROM log WHERE rowid <= ? ORDER BY rowid)').get(count) as { t: string }).t
  const live = new Database(source, { readonly: true })
  try {
    assert.ok(count >= before && count <= after, `${count} lines restored, ${before}…${after} while the backup ran`)
    assert.equal(inc.metadata.tables.find((x) => x.name === 'log')!.rows, count)
    assert.equal(text(restored), text(live), 'the restored lines are exactly the first lines written')
  } finally {
    restored.close()
    live.close()
  }
})

test('no parent: --incremental takes a full backup; a schema change refuses the incremental', async (t) => {
  const dir = tempDir(t)
  const source = join(dir, 'app.db')
  awkwardDatabase(source)
  const system = backupSystem(t, { databaseUrl: `file:${source}`, backupDir: join(dir, 'backups'), now: steppingClock(), exportFormats: ['sql'] })
  const first = await system.create({ incremental: true })
  assert.equal(first.metadata.incremental, false)
  assert.ok(first.metadata.files.some((f) => f.path === 'database.db'))
  const db = new Database(source)
  db.exec('ALTER TABLE person ADD COLUMN email TEXT')
  db.close()
  await assert.rejects(system.create({ incremental: true }), /schéma de la base a changé depuis le backup parent/)
  assert.equal((await system.list()).backups.length, 1)
})

test('rotation never deletes a backup that a kept incremental needs', () => {
  const entry = (id: string, parentId: string | null): BackupEntry =>
    ({ id, form: 'archive', sealValid: true, paths: {} as never, metadata: { id, incremental: parentId !== null, parentId, verified: true } as BackupMetadata }) as BackupEntry
  // full-1 ← inc-2 ← inc-3, full-4 ← inc-5 (newest first, as the catalog lists them)
  const ids = ['backup-2026-01-01T00-00-05', 'backup-2026-01-01T00-00-04', 'backup-2026-01-01T00-00-03', 'backup-2026-01-01T00-00-02', 'backup-2026-01-01T00-00-01']
  const entries = [entry(ids[0]!, ids[1]!), entry(ids[1]!, null), entry(ids[2]!, ids[3]!), entry(ids[3]!, ids[4]!), entry(ids[4]!, null)]
  const keepOne = planRotation(entries, 1)
  assert.deepEqual(keepOne.keep.map((e) => e.id).sort(), [ids[0], ids[1]].sort())
  assert.deepEqual(keepOne.keptForChain, [ids[1]])
  const keepThree = planRotation(entries, 3)
  assert.deepEqual(keepThree.keep.map((e) => e.id).sort(), ids.slice().sort(), 'inc-3 is kept, so are inc-2 and full-1')
  assert.deepEqual(keepThree.remove, [])
})

test('prune on a real chain keeps the full backup and incrementals of the newest one', async (t) => {
  const dir = tempDir(t)
  const source = join(dir, 'app.db')
  awkwardDatabase(source)
  const backupDir = join(dir, 'backups')
  const system = backupSystem(t, { databaseUrl: `file:${source}`, backupDir, now: steppingClock(), exportFormats: ['sql'], maxBackups: 1 })
  const full = await system.create()
  const inc = await system.create({ incremental: true })
  assert.deepEqual(inc.rotation.removed, [])
  assert.deepEqual(inc.rotation.keptForChain, [full.metadata.id])
  assert.deepEqual((await listBackupEntries(backupDir)).map((e) => e.id), [inc.metadata.id, full.metadata.id])
})
