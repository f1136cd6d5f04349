/**
 * restore: the spec's five steps on real SQLite files (judged by the sqlite3 CLI and sha256 of the
 * live file), every bad input leaving the live database byte-for-byte unchanged, and PostgreSQL /
 * D1 restores into real servers.
 */
import { before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, cpSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createPostgresDatabase, openTestDatabase, suiteCleanup, tempDir, defer } from './helpers/databases.ts'
import { backupSystem, databaseContents, gzipMemberStarts, run, sqliteDump, steppingClock } from './helpers/backup.ts'
import { REPO_ROOT, runScript } from './helpers/cli.ts'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { serializeMetadata, type BackupMetadata } from '../scripts/lib/backup/metadata.ts'
import { manifestHash } from '../scripts/lib/backup/manifest.ts'
import type { RestoreStepName } from '../scripts/lib/backup/restore/steps.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { findBackupEntry } from '../scripts/lib/backup/catalog/catalog.ts'
import { extractBackupFile } from '../scripts/lib/backup/archive/extract.ts'
import { verifyBackup } from '../scripts/lib/backup/catalog/verify.ts'
import { ArchiveWriter } from '../scripts/lib/backup/archive/archive.ts'
import { BLOCK_SIZE, GzipPool } from '../scripts/lib/backup/archive/gzip-blocks.ts'
import { moveFile } from '../scripts/lib/fs/atomic.ts'
import { requireJudge } from './helpers/judges.ts'

const FIRST = 'backup-2026-01-21T15-30-00'

const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

function systemOver(backupDir: string, databaseUrl = 'file:/nonexistent/never-used.db'): AdvancedBackupSystem {
  return new AdvancedBackupSystem({ backupDir, databaseUrl, environment: resolveEnvironment({}) })
}

/** Re-seals metadata after a test changed it (as an attacker who recomputes every hash would). */
function reseal(path: string, change: (m: BackupMetadata) => void): void {
  const { metadataSha256: _, ...m } = JSON.parse(readFileSync(path, 'utf8')) as BackupMetadata
  change(m as BackupMetadata)
  writeFileSync(path, serializeMetadata(m))
}

/** Points the metadata beside an archive at the archive's current bytes. */
function resealArchive(dir: string, id: string): void {
  const archive = join(dir, `${id}.tar.gz`)
  reseal(join(dir, `${id}.metadata.json`), (m) => {
    m.archive = { path: `${id}.tar.gz`, size: statSync(archive).size, sha256: sha256File(archive) }
    m.size = m.archive.size
  })
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<ToolkitError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof ToolkitError, `not a ToolkitError: ${String(error)}`)
    assert.match(error.message, pattern)
    return error
  }
  assert.fail(`expected a rejection matching ${pattern}`)
}

/** A SQLite copy of the test database, `fill` run on it, in a folder removed after the suite. */
async function sourceDatabase(t: Pick<TestContext, 'after'>, prefix: string, fill?: (db: Database.Database) => void): Promise<{ root: string; source: string }> {
  const db = await openTestDatabase(t, 'sqlite')
  const root = tempDir(t, prefix)
  const source = join(root, 'source.db')
  await db.sql.query('VACUUM INTO ?', [source])
  if (fill) {
    const copy = new Database(source)
    fill(copy)
    copy.close()
  }
  return { root, source }
}

/** A copy of the backup folder `pristine`, and a live database copied from `source` that has moved on since the backup (`change`). */
function restoreScene(t: TestContext, pristine: string, source: string, change: (db: Database.Database) => void) {
  const dir = tempDir(t)
  const backups = join(dir, 'backups')
  cpSync(pristine, backups, { recursive: true })
  const live = join(dir, 'dev.db')
  copyFileSync(source, live)
  const db = new Database(live)
  change(db)
  db.close()
  return { dir, backups, live, liveSha: sha256File(live), system: systemOver(backups, `file:${live}`) }
}

describe('restore (SQLite)', { skip: requireJudge('sqlite3') }, () => {
  let source: string
  let pristine: { archive: string; folder: string }
  let sourceDump: string
  const suite = suiteCleanup()
  before(async () => {
    const t = suite
    const { root, source: copy } = await sourceDatabase(t, 'ipm-restore-')
    source = copy
    pristine = { archive: join(root, 'archive'), folder: join(root, 'folder') }
    await backupSystem(t, { databaseUrl: `file:${source}`, backupDir: pristine.archive, now: steppingClock() }).create()
    await backupSystem(t, { databaseUrl: `file:${source}`, backupDir: pristine.folder, compressionEnabled: false, exportFormats: ['sql'], now: steppingClock() }).create()
    sourceDump = sqliteDump(source)
  })

  /** A backup folder copy and a live database that has moved on since the backup (one more plan, one row less). */
  const scene = (t: TestContext, form: 'archive' | 'folder' = 'archive') =>
    restoreScene(t, pristine[form], source, (db) => {
      db.pragma('journal_mode = WAL')
      db.exec(`DELETE FROM "Dossier" WHERE rowid = (SELECT max(rowid) FROM "Dossier")`)
    })

  test('restore runs the five steps, keeps <db>.before-restore, replaces the file, and the result dumps like the source', { skip: requireJudge('sqlite3') }, async (t) => {
    for (const form of ['archive', 'folder'] as const) {
      const s = scene(t, form)
      writeFileSync(`${s.live}-shm`, Buffer.alloc(32768))
      // What a restore killed midway leaves (its pid is gone): removed by the next one.
      writeFileSync(`${s.live}.tmp-999999-dead`, 'half a database')
      writeFileSync(`${s.live}.before-restore.tmp-999999-dead`, 'half a copy')
      chmodSync(s.live, 0o640)
      const seen: RestoreStepName[] = []
      const result = await s.system.restore(FIRST, { yes: true, step: (name) => void seen.push(name) })
      assert.deepEqual(seen, ['verify', 'confirm', 'safety-copy', 'replace', 'mid-replace', 'check', 'report'])
      assert.deepEqual(result.steps.map((step) => [step.step, step.name, step.status]), [
        [1, 'verify', 'ok'], [2, 'safety-copy', 'ok'], [3, 'replace', 'ok'], [4, 'check', 'ok'], [5, 'report', 'ok'],
      ])
      assert.equal(sqliteDump(s.live), sourceDump, form)
      assert.equal(sha256File(`${s.live}.before-restore`), s.liveSha, 'the safety copy is the previous database')
      assert.equal(run('sqlite3', [s.live, 'PRAGMA integrity_check']).trim(), 'ok')
      assert.equal(existsSync(`${s.live}-shm`), false, 'the stale -shm is gone')
      assert.equal(statSync(s.live).mode & 0o777, 0o640, 'the restored file keeps the previous one\'s permissions')
      assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db', 'dev.db.before-restore'])
      assert.equal(result.integrity, 'ok')
      assert.ok(result.counts.every((c) => c.actual === c.expected && c.expected > 0))
      // Step 4's integrity_check, foreign_key_check and counts ran on step 1's verified copy, the very file step 3 renamed.
      assert.match(result.steps[3]!.detail ?? '', /integrity_check ok.*dès sa copie vérifiée/, form)
    }
  })

  test('--dry-run checks a scratch copy and changes nothing', async (t) => {
    const s = scene(t)
    const result = await s.system.restore(FIRST, { dryRun: true })
    assert.equal(result.dryRun, true)
    assert.equal(result.restored, false)
    assert.deepEqual(result.steps.map((step) => step.status), ['ok', 'skipped', 'skipped', 'ok', 'ok'])
    assert.equal(sha256File(s.live), s.liveSha)
    assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'])
  })

  test('without --yes and without a terminal restore refuses; a "no" at the prompt changes nothing', async (t) => {
    const s = scene(t)
    const refused = await rejects(s.system.restore(FIRST), /demande une confirmation/)
    assert.match(refused.hint ?? '', /--yes/)
    await rejects(s.system.restore(FIRST, { confirm: async () => false }), /restauration annulée : rien n’a été modifié/)
    assert.equal(sha256File(s.live), s.liveSha)
    assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'])
  })

  test('bad input: a clear error, and the live database unchanged', async (t) => {
    const cases: [string, (s: ReturnType<typeof scene>) => Promise<unknown>, RegExp][] = [
      ['unknown id', (s) => s.system.restore('backup-2020-01-01T00-00-00', { yes: true }), /aucun backup « backup-2020-01-01T00-00-00 »/],
      ['unsafe id', (s) => s.system.restore('../../etc', { yes: true }), /n’est pas un identifiant de backup/],
      ['corrupted archive', async (s) => {
        const archive = join(s.backups, `${FIRST}.tar.gz`)
        const data = readFileSync(archive)
        data[Math.floor(data.length / 2)]! ^= 0xff
        writeFileSync(archive, data)
        return s.system.restore(FIRST, { yes: true })
      }, /échoue à la vérification ; rien n’a été écrit/],
      ['truncated archive', async (s) => {
        const archive = join(s.backups, `${FIRST}.tar.gz`)
        writeFileSync(archive, readFileSync(archive).subarray(0, 5000))
        return s.system.restore(FIRST, { yes: true })
      }, /échoue à la vérification/],
      ['target in a missing directory', (s) => s.system.restore(FIRST, { yes: true, to: join(s.dir, 'missing', 'dev.db') }), /le dossier .*missing n’existe pas/],
      ['schema of another version', async (s) => {
        const db = new Database(s.live)
        db.exec(`UPDATE "_prisma_migrations" SET migration_name = '20990101000000_future'`)
        db.close()
        s.liveSha = sha256File(s.live)
        return s.system.restore(FIRST, { yes: true })
      }, /autre schéma que celui de la cible : dernière migration 20260121153000_init dans le backup, 20990101000000_future dans dev\.db/],
    ]
    for (const [name, act, message] of cases) {
      const s = scene(t)
      await rejects(act(s), message)
      assert.equal(sha256File(s.live), s.liveSha, name)
      assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'], name)
    }
  })

  test('a target another process holds open is refused; --force accepts another schema', { skip: requireJudge('sqlite3') }, async (t) => {
    const s = scene(t)
    // A sqlite3 shell in the middle of a write transaction.
    const writer = spawn('sqlite3', [s.live], { stdio: ['pipe', 'ignore', 'ignore'] })
    defer(t, () => writer.kill('SIGKILL'))
    writer.stdin.write(`BEGIN IMMEDIATE; INSERT INTO "Plan" (id, name, "displayName", "priceMonthly", "maxUsers", "maxDossiers", "maxStorageBytes") VALUES ('p', 'p', 'p', 1, 1, 1, 1);\n`)
    for (let i = 0; i < 500 && !existsSync(`${s.live}-wal`); i++) await new Promise((r) => setTimeout(r, 20))
    assert.ok(existsSync(`${s.live}-wal`), 'the sqlite3 shell started writing')
    await rejects(s.system.restore(FIRST, { yes: true }), /est ouvert par un autre processus \(pid \d+ sqlite3/)
    // …also when the path given goes through a symbolic link.
    symlinkSync(s.dir, join(s.dir, 'via-link'))
    await rejects(s.system.restore(FIRST, { yes: true, to: join(s.dir, 'via-link', 'dev.db') }), /est ouvert par un autre processus/)
    rmSync(join(s.dir, 'via-link'))
    writer.stdin.end('ROLLBACK;\n')
    await new Promise((resolve) => writer.once('exit', resolve))
    assert.equal(sha256File(s.live), s.liveSha)

    const db = new Database(s.live)
    db.exec(`UPDATE "_prisma_migrations" SET migration_name = '20990101000000_future'`)
    db.close()
    const result = await s.system.restore(FIRST, { yes: true, force: true })
    assert.equal(result.restored, true)
    assert.equal(sqliteDump(s.live), sourceDump)
  })

  test('no space beside the database: a clear error, the live database unchanged, nothing left behind', async (t) => {
    const s = scene(t)
    const mountPoint = join(s.dir, 'small-disk')
    mkdirSync(mountPoint)
    const size = statSync(s.live).size
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((size * 1.5) / 4096) * 4096}`, 'tmpfs', mountPoint]).status !== 0) {
      t.skip('cannot mount a tmpfs here (needs root): the no-space path is untested')
      return
    }
    defer(t, () => spawnSync('umount', [mountPoint]))
    const live = join(mountPoint, 'dev.db')
    copyFileSync(s.live, live)
    // Room for the database only: step 1's verified copy of the backup's database, written beside it, does not fit.
    await rejects(s.system.restore(FIRST, { yes: true, to: live }), /^plus de place dans .*small-disk pour la copie vérifiée de backup-2026-01-21T15-30-00\/database\.db : rien n’a été remplacé$/)
    assert.equal(sha256File(live), s.liveSha)
    assert.deepEqual(readdirSync(mountPoint), ['dev.db'])
    // Room for the database and the verified copy, not for the safety copy.
    spawnSync('mount', ['-o', `remount,size=${Math.ceil((size * 2.5) / 4096) * 4096}`, mountPoint])
    await rejects(s.system.restore(FIRST, { yes: true, to: live }), /^plus de place dans .*small-disk pour la copie de sécurité \(.*\) : rien n’a été remplacé$/)
    assert.equal(sha256File(live), s.liveSha)
    assert.deepEqual(readdirSync(mountPoint), ['dev.db'])
  })

  test('the backup is read once: removed right after step 1, the restore completes from the bytes step 1 verified', async (t) => {
    for (const form of ['archive', 'folder'] as const) {
      const s = scene(t, form)
      const result = await s.system.restore(FIRST, {
        yes: true,
        step: (name) => {
          // A restore that reads the backup again in step 3 (verify, then extract) fails from here on.
          if (name === 'confirm') for (const name of readdirSync(s.backups)) rmSync(join(s.backups, name), { recursive: true })
        },
      })
      assert.equal(result.restored, true, form)
      assert.deepEqual(readdirSync(s.backups).filter((name) => name.startsWith(FIRST)), [], form)
      assert.equal(sqliteDump(s.live), sourceDump, form)
      assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db', 'dev.db.before-restore'], form)
    }
  })

  test('a damaged last entry fails step 1 after the database was copied: the target untouched, the copy gone', { skip: requireJudge('tar') }, async (t) => {
    const s = scene(t)
    const work = tempDir(t)
    const archive = join(s.backups, `${FIRST}.tar.gz`)
    const order = run('tar', ['-tzf', archive]).split('\n').filter((line) => line !== '')
    run('tar', ['-xzf', archive, '-C', work])
    // One byte of export.sql changed (same size), and export.sql put last, after database.db and metadata.json.
    const damaged = `${FIRST}/export.sql`
    const bytes = readFileSync(join(work, damaged))
    bytes[bytes.length - 2]! ^= 0x01
    writeFileSync(join(work, damaged), bytes)
    assert.ok(order.indexOf(`${FIRST}/database.db`) < order.indexOf(damaged))
    rmSync(archive)
    run('tar', ['-czf', archive, '-C', work, '--no-recursion', ...order.filter((path) => path !== damaged), damaged])
    resealArchive(s.backups, FIRST)
    const scratch = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`ipm-restore-${process.pid}-`))
    const before = scratch()
    await rejects(s.system.restore(FIRST, { yes: true }), /échoue à la vérification ; rien n’a été écrit : export\.sql : modifié \(SHA-256 différent\)/)
    assert.equal(sha256File(s.live), s.liveSha)
    assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'])
    assert.deepEqual(scratch(), before, 'the scratch folder, with its unverified copy of database.db, is removed')
  })

  test('a target on another filesystem than the temporary folder: step 1 writes its verified copy beside the target, which step 3 renames', async (t) => {
    const s = scene(t)
    const mountPoint = join(s.dir, 'other-disk')
    mkdirSync(mountPoint)
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mountPoint]).status !== 0) {
      t.skip('cannot mount a tmpfs here (needs root): restoring onto another filesystem is untested')
      return
    }
    defer(t, () => spawnSync('umount', [mountPoint]))
    const live = join(mountPoint, 'dev.db')
    copyFileSync(s.live, live)
    const database = (await findBackupEntry(s.backups, FIRST)).metadata!.files.find((f) => f.path === 'database.db')!
    let staged: { name: string; size: number; inode: number }[] = []
    const result = await s.system.restore(FIRST, {
      yes: true,
      to: live,
      step: (name) => {
        if (name !== 'confirm') return
        staged = readdirSync(mountPoint).filter((n) => n.endsWith('-verified')).map((n) => ({ name: n, size: statSync(join(mountPoint, n)).size, inode: statSync(join(mountPoint, n)).ino }))
      },
    })
    assert.equal(result.restored, true)
    assert.equal(staged.length, 1, 'one verified copy beside the target after step 1')
    assert.match(staged[0]!.name, /^dev\.db\.tmp-\d+-[a-z0-9]+-verified$/)
    assert.equal(staged[0]!.size, database.size)
    assert.equal(statSync(live).ino, staged[0]!.inode, 'the verified copy is the restored file (renamed, not copied)')
    assert.equal(sqliteDump(live), sourceDump)
    assert.deepEqual(readdirSync(mountPoint).sort(), ['dev.db', 'dev.db.before-restore'])

    // moveFile (a cross-engine artefact built in the temporary folder): a copy across filesystems, then the source removed.
    const built = join(tempDir(t), 'built.db')
    copyFileSync(source, built)
    await moveFile(built, join(mountPoint, 'moved.db'))
    assert.equal(existsSync(built), false)
    assert.equal(sha256File(join(mountPoint, 'moved.db')), sha256File(source))
    await assert.rejects(moveFile(join(mountPoint, 'moved.db'), live), /EEXIST/)
  })

  test('when the restored database fails its check, the previous one is put back and restore fails', { skip: requireJudge('sqlite3') }, async (t) => {
    // A backup whose files all match a re-sealed metadata, but whose database lost a row the metadata counts.
    const s = scene(t, 'folder')
    const folder = join(s.backups, FIRST)
    const db = new Database(join(folder, 'database.db'))
    db.exec(`DELETE FROM "Dossier" WHERE rowid = (SELECT max(rowid) FROM "Dossier")`)
    db.close()
    reseal(join(folder, 'metadata.json'), (m) => {
      m.files = m.files.map((f) => (f.path === 'database.db' ? { ...f, size: statSync(join(folder, f.path)).size, sha256: sha256File(join(folder, f.path)) } : f))
      m.hash = manifestHash(m.files)
    })
    assert.equal((await s.system.verify(FIRST)).ok, true)
    const error = await rejects(s.system.restore(FIRST, { yes: true }), /a échoué au contrôle \(les nombres de lignes diffèrent des métadonnées : Dossier (\d+) au lieu de (\d+)\) ; la base précédente a été remise en place/)
    assert.equal(error.exitCode, 1)
    assert.equal(sha256File(s.live), s.liveSha)
    assert.equal(run('sqlite3', [s.live, 'PRAGMA integrity_check']).trim(), 'ok')
  })

  test('a database whose index disagrees with its table (hashes re-sealed): refused by the early integrity_check, the previous one put back', { skip: requireJudge('sqlite3') }, async (t) => {
    const s = scene(t, 'folder')
    const folder = join(s.backups, FIRST)
    const file = join(folder, 'database.db')
    // The classic way to make an index lie: its definition rewritten to another column, its entries left as they were.
    run('sqlite3', [file, `CREATE INDEX "Plan_probe" ON "Plan"("name"); PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = 'CREATE INDEX "Plan_probe" ON "Plan"("id")' WHERE name = 'Plan_probe';`])
    assert.notEqual(run('sqlite3', [file, 'PRAGMA integrity_check']).trim(), 'ok')
    reseal(join(folder, 'metadata.json'), (m) => {
      m.files = m.files.map((f) => (f.path === 'database.db' ? { ...f, size: statSync(file).size, sha256: sha256File(file) } : f))
      m.hash = manifestHash(m.files)
    })
    await rejects(s.system.restore(FIRST, { yes: true }), /a échoué au contrôle \(PRAGMA integrity_check: .*Plan_probe.*\) ; la base précédente a été remise en place/)
    assert.equal(sha256File(s.live), s.liveSha)
    assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db', 'dev.db.before-restore'], 'no link of the staged copy is left')
  })

  test('a backup whose database is in WAL mode is checked in place after the rename (a read-only early check would write -wal/-shm beside its copy)', { skip: requireJudge('sqlite3') }, async (t) => {
    const s = scene(t, 'folder')
    const folder = join(s.backups, FIRST)
    const file = join(folder, 'database.db')
    assert.equal(run('sqlite3', [file, 'PRAGMA journal_mode = WAL']).trim(), 'wal')
    reseal(join(folder, 'metadata.json'), (m) => {
      m.files = m.files.map((f) => (f.path === 'database.db' ? { ...f, size: statSync(file).size, sha256: sha256File(file) } : f))
      m.hash = manifestHash(m.files)
    })
    const result = await s.system.restore(FIRST, { yes: true })
    assert.equal(result.integrity, 'ok')
    assert.match(result.steps[3]!.detail ?? '', /integrity_check ok/)
    assert.doesNotMatch(result.steps[3]!.detail ?? '', /dès sa copie vérifiée/)
    assert.equal(sqliteDump(s.live), sourceDump)
    assert.deepEqual(readdirSync(s.dir).filter((name) => name.includes('.tmp-')), [])
  })

  test('an unsafe archive is refused before anything is written', { skip: requireJudge('tar') }, async (t) => {
    const attacks: [string, (work: string) => string[], RegExp][] = [
      ['a .. path', (work) => {
        writeFileSync(join(work, 'evil'), 'x')
        return ['-P', '--transform', `s,^evil,${FIRST}/../../evil,`, 'evil']
      }, /"backup-2026-01-21T15-30-00\/\.\.\/\.\.\/evil": un chemin qui sort du backup/],
      ['an absolute path', (work) => {
        writeFileSync(join(work, 'evil'), 'x')
        return ['-P', '--transform', `s,^evil,/tmp/ipm-evil-${process.pid},`, 'evil']
      }, /"\/tmp\/ipm-evil-\d+": un chemin absolu/],
      ['a symbolic link', (work) => {
        run('ln', ['-s', '/etc/passwd', join(work, FIRST, 'link')])
        return []
      }, /link": un lien symbolique \(SymbolicLink → \/etc\/passwd\)/],
      ['a hard link', (work) => {
        run('ln', [join(work, FIRST, 'database.db'), join(work, FIRST, 'hard.db')])
        return []
      }, /: un lien physique/],
      ['a FIFO', (work) => {
        run('mkfifo', [join(work, FIRST, 'fifo')])
        return []
      }, /fifo": un périphérique, une FIFO ou un autre fichier spécial/],
      ['a file the metadata does not list', (work) => {
        writeFileSync(join(work, FIRST, 'exports', 'extra.csv'), 'a\n')
        return []
      }, /exports\/extra\.csv": un fichier que les métadonnées ne listent pas/],
    ]
    for (const [name, attack, message] of attacks) {
      const s = scene(t)
      const work = tempDir(t)
      run('tar', ['-xzf', join(s.backups, `${FIRST}.tar.gz`), '-C', work])
      const extra = attack(work)
      const archive = join(s.backups, `${FIRST}.tar.gz`)
      rmSync(archive)
      run('tar', ['-czf', archive, '-C', work, FIRST, ...extra])
      resealArchive(s.backups, FIRST)
      await rejects(s.system.restore(FIRST, { yes: true }), message)
      assert.equal(sha256File(s.live), s.liveSha, name)
      assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'], name)
      assert.equal(existsSync(join(s.dir, 'evil')) || existsSync(`/tmp/ipm-evil-${process.pid}`), false, name)
    }
    // A listed file whose size differs (GNU tar, resealed archive): refused too.
    const s = scene(t)
    const work = tempDir(t)
    run('tar', ['-xzf', join(s.backups, `${FIRST}.tar.gz`), '-C', work])
    writeFileSync(join(work, FIRST, 'export.sql'), 'DROP TABLE "Plan";\n')
    rmSync(join(s.backups, `${FIRST}.tar.gz`))
    run('tar', ['-czf', join(s.backups, `${FIRST}.tar.gz`), '-C', work, FIRST])
    resealArchive(s.backups, FIRST)
    await rejects(s.system.restore(FIRST, { yes: true }), /export\.sql : modifié \(taille \d+ au lieu de \d+\)/)
    assert.equal(sha256File(s.live), s.liveSha)
  })

  test('extraction itself refuses an entry the metadata does not list, even when called without verify', { skip: requireJudge('tar') }, async (t) => {
    const s = scene(t)
    const work = tempDir(t)
    run('tar', ['-xzf', join(s.backups, `${FIRST}.tar.gz`), '-C', work])
    run('ln', ['-s', '/etc/passwd', join(work, FIRST, 'link')])
    const archive = join(s.backups, `${FIRST}.tar.gz`)
    rmSync(archive)
    run('tar', ['-czf', archive, '-C', work, '--no-recursion', `${FIRST}/`, `${FIRST}/link`, `${FIRST}/database.db`])
    const entry = await findBackupEntry(s.backups, FIRST)
    const dest = join(s.dir, 'out.db')
    await rejects(extractBackupFile(entry, entry.metadata!, 'database.db', dest), /unsafe or unlisted archive entry "backup-2026-01-21T15-30-00\/link" \(SymbolicLink\)/)
    assert.equal(existsSync(dest), false)
  })

  test('the CLI asks for --yes without a terminal, prints the five steps and the --json result', { skip: requireJudge('sqlite3') }, async (t) => {
    const s = scene(t)
    const base = ['--dir', s.backups, '--database', `file:${s.live}`]
    const refused = runScript('scripts/advanced-backup.ts', [...base, 'restore', FIRST])
    assert.equal(refused.status, 2)
    assert.match(refused.stderr, /^Erreur : restore remplace .*dev\.db et demande une confirmation, mais aucun terminal ne permet de la demander\nEssayez : --yes/)
    assert.equal(sha256File(s.live), s.liveSha)
    const done = runScript('scripts/advanced-backup.ts', [...base, '4', FIRST, '--yes'])
    assert.equal(done.status, 0, done.stderr)
    const lines = done.stdout.split('\n')
    assert.match(lines[0]!, /^♻️ {2}Restauration de backup-2026-01-21T15-30-00$/)
    assert.deepEqual(lines.filter((l) => /^\d\. /.test(l)).map((l) => l.replace(/ [✓–✗] .*/, '')), [
      "1. Vérification d'intégrité (SHA-256)", '2. Backup de sécurité', '3. Restauration', '4. Test de connexion', '5. Confirmation',
    ])
    assert.match(done.stdout, /2\. Backup de sécurité ✓ dev\.db -> dev\.db\.before-restore/)
    assert.equal(sqliteDump(s.live), sourceDump)
    const dry = runScript('scripts/advanced-backup.ts', [...base, 'restore', FIRST, '--dry-run', '--json', '--to', join(s.dir, 'other.db')])
    assert.equal(dry.status, 0, dry.stderr)
    const json = JSON.parse(dry.stdout) as { dryRun: boolean; counts: { expected: number; actual: number }[] }
    assert.equal(json.dryRun, true)
    assert.ok(json.counts.length >= 5 && json.counts.every((c) => c.actual === c.expected))
    assert.equal(existsSync(join(s.dir, 'other.db')), false)
  })
})

/**
 * Makes a folder backup's database lose its first Dossier row, every hash re-sealed: verify passes,
 * the restore loads it, and its check (row counts against the metadata) fails for real.
 */
function loseOneDossier(backups: string, id: string, artefact: 'database.sql' | 'database.db'): void {
  const folder = join(backups, id)
  const path = join(folder, artefact)
  if (artefact === 'database.sql') {
    const lines = readFileSync(path, 'utf8').split('\n')
    const copy = lines.findIndex((line) => /^COPY (\S+\.)?"Dossier" .* FROM stdin;$/.test(line))
    assert.ok(copy >= 0 && lines[copy + 1] !== '\\.', 'database.sql has Dossier rows')
    lines.splice(copy + 1, 1)
    writeFileSync(path, lines.join('\n'))
  } else {
    const db = new Database(path)
    db.exec(`DELETE FROM "Dossier" WHERE rowid = (SELECT max(rowid) FROM "Dossier")`)
    db.close()
  }
  reseal(join(folder, 'metadata.json'), (m) => {
    m.files = m.files.map((f) => (f.path === artefact ? { ...f, size: statSync(path).size, sha256: sha256File(path) } : f))
    m.hash = manifestHash(m.files)
  })
}

const FAILED_CHECK = 'a échoué au contrôle \\(les nombres de lignes diffèrent des métadonnées : Dossier \\d+ au lieu de \\d+\\) ; '

/** Makes gzip member `index` (0-based) of one of our archives fail to inflate: a byte of its deflate data flipped. */
function breakMember(archive: string, index: number): void {
  const bytes = readFileSync(archive)
  const starts = gzipMemberStarts(archive)
  const end = starts[index + 1] ?? bytes.length
  const at = Math.floor((starts[index]! + 40 + end - 8) / 2)
  bytes[at]! ^= 0xff
  writeFileSync(archive, bytes)
}

describe('restore reads an archive no further than it restores', { skip: requireJudge('sqlite3') }, () => {
  let pristine: { verified: string; unverified: string }
  let source: string
  let sourceDump: string
  const suite = suiteCleanup()
  before(async () => {
    const t = suite
    // 3 MiB of hex text: database.db fills a few gzip members, the four exports after it many more.
    const { root, source: copy } = await sourceDatabase(t, 'ipm-restore-short-', (db) => {
      db.exec('CREATE TABLE "Bulk" (id INTEGER PRIMARY KEY, body TEXT NOT NULL)')
      const insert = db.prepare('INSERT INTO "Bulk" (body) VALUES (?)')
      db.transaction(() => {
        for (let i = 0; i < 1500; i++) insert.run(randomBytes(1024).toString('hex'))
      })()
    })
    source = copy
    pristine = { verified: join(root, 'verified'), unverified: join(root, 'unverified') }
    await backupSystem(t, { databaseUrl: `file:${source}`, backupDir: pristine.verified, now: steppingClock() }).create()
    await backupSystem(t, { databaseUrl: `file:${source}`, backupDir: pristine.unverified, verifyIntegrity: false, now: steppingClock() }).create()
    sourceDump = sqliteDump(source)
  })

  const scene = (t: TestContext, which: keyof typeof pristine) => {
    const scene = restoreScene(t, pristine[which], source, (db) => db.exec('DELETE FROM "Bulk" WHERE id > 1000'))
    return { ...scene, archive: join(scene.backups, `${FIRST}.tar.gz`) }
  }

  test('the archive is many members long, database.db only its first ones', async (t) => {
    const s = scene(t, 'verified')
    const metadata = JSON.parse(readFileSync(join(s.backups, `${FIRST}.metadata.json`), 'utf8')) as BackupMetadata
    const database = metadata.files.find((file) => file.path === 'database.db')!
    assert.equal(metadata.verified, true)
    assert.ok(gzipMemberStarts(s.archive).length >= 12, `${gzipMemberStarts(s.archive).length} members`)
    const tarMembers = Math.ceil(metadata.contentSize / BLOCK_SIZE)
    assert.ok(database.size / BLOCK_SIZE + 6 < tarMembers, `database.db: ${database.size} of ${metadata.contentSize} bytes`)
    assert.equal(run('tar', ['-tzf', s.archive]).split('\n')[1], `${FIRST}/database.db`, 'database.db comes first')
  })

  test('a member after database.db that does not inflate, resealed: verify finds it, restore never inflates it and restores the database', async (t) => {
    const s = scene(t, 'verified')
    const last = gzipMemberStarts(s.archive).length - 1
    breakMember(s.archive, last)
    resealArchive(s.backups, FIRST)
    const report = await s.system.verify(FIRST)
    assert.equal(report.ok, false)
    assert.match(report.checks.find((check) => check.path === `${FIRST}.tar.gz`)?.detail ?? '', new RegExp(`le membre gzip n° ${last + 1} .* ne se décompresse pas`))
    const result = await s.system.restore(FIRST, { yes: true })
    assert.equal(result.restored, true)
    assert.match(result.steps[0]!.detail ?? '', /\d+ fichier\(s\) vérifié\(s\) \(dont \d+ par le SHA-256 de leur archive, vérifiée en entier à sa création\)/)
    assert.equal(sqliteDump(s.live), sourceDump)
  })

  test('onlyExtract without a file to extract (the parents of an incremental verify passes none) reads everything', async (t) => {
    const s = scene(t, 'verified')
    breakMember(s.archive, gzipMemberStarts(s.archive).length - 1)
    resealArchive(s.backups, FIRST)
    const report = await verifyBackup(s.backups, FIRST, { onlyExtract: true })
    assert.equal(report.ok, false)
    assert.equal(report.unread, undefined)
  })

  test('the same damage without the reseal: the archive’s SHA-256 differs, the archive is read through and the damaged member named; the target untouched', async (t) => {
    const s = scene(t, 'verified')
    const last = gzipMemberStarts(s.archive).length - 1
    breakMember(s.archive, last)
    await rejects(s.system.restore(FIRST, { yes: true }), new RegExp(`échoue à la vérification ; rien n’a été écrit : ${FIRST}\\.tar\\.gz : .*le membre gzip n° ${last + 1} .*ne se décompresse pas`))
    assert.equal(sha256File(s.live), s.liveSha)
    assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'])
  })

  test('a backup create did not read back (verifyIntegrity: false) is read through: the same resealed damage refuses the restore', async (t) => {
    const s = scene(t, 'unverified')
    const metadata = JSON.parse(readFileSync(join(s.backups, `${FIRST}.metadata.json`), 'utf8')) as BackupMetadata
    assert.equal(metadata.verified, false)
    breakMember(s.archive, gzipMemberStarts(s.archive).length - 1)
    resealArchive(s.backups, FIRST)
    await rejects(s.system.restore(FIRST, { yes: true }), /échoue à la vérification ; rien n’a été écrit : .*ne se décompresse pas/)
    assert.equal(sha256File(s.live), s.liveSha)
  })

  test('our own archive with an unlisted file before database.db, resealed: refused before anything is written', async (t) => {
    const s = scene(t, 'verified')
    const work = tempDir(t)
    const order = run('tar', ['-tzf', s.archive]).split('\n').filter((line) => line !== '')
    run('tar', ['-xzf', s.archive, '-C', work])
    writeFileSync(join(work, 'evil.txt'), 'x')
    rmSync(s.archive)
    const pool = new GzipPool()
    const archive = await ArchiveWriter.create(s.archive, { pool })
    const mtime = new Date(0)
    for (const path of order) {
      if (path.endsWith('/')) await archive.addDirectory(path, mtime)
      else await archive.addFile(path, join(work, path), mtime)
      if (path === `${FIRST}/`) await archive.addFile(`${FIRST}/evil.txt`, join(work, 'evil.txt'), mtime)
    }
    await archive.finish()
    await pool.close()
    resealArchive(s.backups, FIRST)
    await rejects(s.system.restore(FIRST, { yes: true }), /archive dangereuse ; rien n’a été écrit : "backup-2026-01-21T15-30-00\/evil\.txt": un fichier que les métadonnées ne listent pas/)
    assert.equal(sha256File(s.live), s.liveSha)
    assert.deepEqual(readdirSync(s.dir).sort(), ['backups', 'dev.db'])
  })
})

describe('restore (PostgreSQL, D1)', () => {
  test('a PostgreSQL backup loads into an empty database; a non-empty one needs --force and gets a safety export first', async (t) => {
    const db = await openTestDatabase(t, 'postgres')
    const backups = join(tempDir(t), 'backups')
    const created = await backupSystem(t, { databaseUrl: db.url, backupDir: backups, exportFormats: ['sql'], now: steppingClock() }).create()
    const id = created.metadata.id
    const snapshot = async (url: string) => {
      const handle = await openDatabase(url, { environment: resolveEnvironment() })
      try {
        return JSON.stringify(await handle.sql.query(`SELECT d.*, c."lastName" FROM "Dossier" d JOIN "Client" c ON c.id = d."clientId" ORDER BY d.id`))
      } finally {
        await handle.close()
      }
    }
    const expected = await snapshot(db.url)

    const empty = await createPostgresDatabase(t)
    const result = await systemOver(backups, empty).restore(id, { yes: true })
    assert.equal(result.restored, true)
    assert.deepEqual(result.counts.map((c) => c.actual), result.counts.map((c) => c.expected))
    assert.equal(await snapshot(empty), expected)

    // Non-empty target: refused without --force, unchanged.
    const target = await openTestDatabase(t, 'postgres')
    await target.sql.query(`DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" ORDER BY id LIMIT 2)`)
    const before = await snapshot(target.url)
    await rejects(systemOver(backups, target.url).restore(id, { yes: true }), /n’est pas vide \(/)
    assert.equal(await snapshot(target.url), before)
    // A SQLite backup without data.json is refused by a PostgreSQL target (it is loaded through its logical export).
    const sqliteDb = await openTestDatabase(t, 'sqlite')
    const sqliteBackups = join(tempDir(t), 'backups')
    const sqliteBackup = await backupSystem(t, { databaseUrl: sqliteDb.url, backupDir: sqliteBackups, exportFormats: ['sql'], now: steppingClock() }).create()
    await rejects(systemOver(sqliteBackups, target.url).restore(sqliteBackup.metadata.id, { yes: true, force: true }), /vient de SQLite et ne peut pas être restauré dans une base PostgreSQL : il n’a pas d’export data\.json \(formats : sql\)/)
    assert.equal(await snapshot(target.url), before)

    // …and so is this PostgreSQL backup (sql only) by a SQLite target (with data.json it would load: backup-cross-engine.test.ts).
    const sqliteTarget = join(tempDir(t), 'dev.db')
    await rejects(systemOver(backups, `file:${sqliteTarget}`).restore(id, { yes: true }), /vient de PostgreSQL et ne peut pas être restauré dans une base SQLite : il n’a pas d’export data\.json \(formats : sql\)/)
    assert.equal(existsSync(sqliteTarget), false)

    const forced = await systemOver(backups, target.url).restore(id, { yes: true, force: true })
    assert.equal(forced.restored, true)
    assert.equal(await snapshot(target.url), expected)
    const list = await systemOver(backups).list()
    assert.equal(list.backups.length, 2, 'the safety export of the target is a backup of its own')
    assert.match(forced.safetyCopy ?? '', /backup-.*\.tar\.gz$/)
  })

  test('a D1 backup loads into an empty D1 database with the same rows', async (t) => {
    const db = await openTestDatabase(t, 'd1')
    const backups = join(tempDir(t), 'backups')
    const created = await backupSystem(t, { databaseUrl: db.url, backupDir: backups, exportFormats: ['sql'], now: steppingClock() }).create()
    const targetUrl = `d1://local/${join(tempDir(t), 'd1')}`
    const result = await systemOver(backups, targetUrl).restore(created.metadata.id, { yes: true })
    assert.equal(result.restored, true)
    const rows = async (handle: { sql: { query: (sql: string) => Promise<unknown[]> } }) => JSON.stringify(await handle.sql.query(`SELECT * FROM "Dossier" ORDER BY id`))
    const target = await openDatabase(targetUrl, { environment: resolveEnvironment() })
    defer(t, () => target.close())
    assert.equal(await rows(target), await rows(db))
    assert.ok(result.counts.every((c) => c.actual === c.expected))
    // Into the same (now non-empty) D1 again: refused without --force.
    await rejects(systemOver(backups, targetUrl).restore(created.metadata.id, { yes: true }), /n’est pas vide/)
    await target.sql.query(`DELETE FROM "Dossier" WHERE id = 'dossier-demo-1'`)
    const forced = await systemOver(backups, targetUrl).restore(created.metadata.id, { yes: true, force: true })
    assert.equal(forced.restored, true)
    assert.equal(await rows(target), await rows(db))
    assert.equal((await systemOver(backups).list()).backups.length, 2, 'a safety export of the D1 target was taken first')
  })

  test('PostgreSQL: a restored database that fails its check is undone — a non-empty target gets its safety export back, an empty one is emptied again (judged by psql)', { skip: requireJudge('psql') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backups = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir: backups, compressionEnabled: false, exportFormats: ['sql'], now: steppingClock() }).create()
    loseOneDossier(backups, metadata.id, 'database.sql')
    assert.equal((await systemOver(backups).verify(metadata.id)).ok, true, 'verify does not see it')

    const target = await openTestDatabase(t, 'postgres')
    await target.sql.query(`DELETE FROM "Dossier" WHERE id = (SELECT max(id) FROM "Dossier")`)
    await target.close()
    const before = databaseContents(target.url)
    const error = await rejects(
      systemOver(backups, target.url).restore(metadata.id, { yes: true, force: true }),
      new RegExp(`${FAILED_CHECK}l’export de sécurité (backup-\\S+) a été rechargé : postgresql://\\S+ est revenue à son état d’avant la restauration$`),
    )
    assert.equal(error.exitCode, 1)
    assert.deepEqual(databaseContents(target.url), before)
    const safety = /l’export de sécurité (backup-\S+) a été rechargé/.exec(error.message)![1]
    assert.ok((await systemOver(backups).list()).backups.some((b) => b.id === safety), 'the safety export it names is in the backup folder')

    const empty = await createPostgresDatabase(t)
    await rejects(systemOver(backups, empty).restore(metadata.id, { yes: true }), new RegExp(`${FAILED_CHECK}postgresql://\\S+ a été vidée à nouveau : ce que la restauration y avait créé est supprimé, elle était vide avant$`))
    assert.deepEqual(databaseContents(empty), { tables: {}, toolkitTables: [] })
    assert.equal(run('psql', ['-X', '-At', '-d', empty, '-c', `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`]).trim(), '0', 'no sequence or index left either')
  })

  test('PostgreSQL: when loading the safety export back fails too, the line gives the exact command, and that command puts the target back', { skip: requireJudge('psql') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backups = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir: backups, compressionEnabled: false, exportFormats: ['sql'], now: steppingClock() }).create()
    loseOneDossier(backups, metadata.id, 'database.sql')
    const target = await openTestDatabase(t, 'postgres')
    await target.sql.query(`DELETE FROM "Dossier" WHERE id = (SELECT max(id) FROM "Dossier")`)
    await target.close()
    const before = databaseContents(target.url)
    // Once the safety export is made (step 4 about to run), it is taken out of the backup folder: loading it back fails.
    const aside = tempDir(t)
    const safetyFiles = () => readdirSync(backups).filter((name) => !name.startsWith(metadata.id))
    const system = new AdvancedBackupSystem({
      backupDir: backups,
      databaseUrl: target.url,
      environment: resolveEnvironment({}),
      onStep: (step) => {
        if (step === 'restore:check') for (const name of safetyFiles()) renameSync(join(backups, name), join(aside, name))
      },
    })
    const error = await rejects(system.restore(metadata.id, { yes: true, force: true }), new RegExp(`${FAILED_CHECK}le rechargement de l’export de sécurité backup-\\S+ a ÉCHOUÉ \\(.+\\) : rechargez-le à la main : npx tsx scripts/advanced-backup\\.ts --dir \\S+ restore backup-\\S+ --to \\S+ --force --yes$`))
    assert.notDeepEqual(databaseContents(target.url), before, 'the failed restore is still there')
    for (const name of readdirSync(aside)) renameSync(join(aside, name), join(backups, name))
    const command = /rechargez-le à la main : (.*)$/.exec(error.message)![1]!
    const byHand = spawnSync('sh', ['-c', command], { cwd: REPO_ROOT, encoding: 'utf8' })
    assert.equal(byHand.status, 0, byHand.stderr)
    assert.deepEqual(databaseContents(target.url), before)
  })

  test('D1: a restored database that fails its check is undone — a non-empty target gets its safety export back, an empty one is emptied again (judged by sqlite3)', { skip: requireJudge('sqlite3') }, async (t) => {
    const source = await openTestDatabase(t, 'd1')
    const backups = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir: backups, compressionEnabled: false, exportFormats: ['sql'], now: steppingClock() }).create()
    await source.close()
    loseOneDossier(backups, metadata.id, 'database.db')
    assert.equal((await systemOver(backups).verify(metadata.id)).ok, true, 'verify does not see it')

    const target = await openTestDatabase(t, 'd1')
    await target.sql.query(`DELETE FROM "Dossier" WHERE id = 'dossier-demo-1'`)
    await target.close()
    const before = databaseContents(target.url)
    await rejects(
      systemOver(backups, target.url).restore(metadata.id, { yes: true, force: true }),
      new RegExp(`${FAILED_CHECK}l’export de sécurité backup-\\S+ a été rechargé : d1://local/\\S+ est revenue à son état d’avant la restauration$`),
    )
    assert.deepEqual(databaseContents(target.url), before)

    const empty = `d1://local/${join(tempDir(t), 'd1')}`
    await rejects(systemOver(backups, empty).restore(metadata.id, { yes: true }), new RegExp(`${FAILED_CHECK}d1://local/\\S+ a été vidée à nouveau : ce que la restauration y avait créé est supprimé, elle était vide avant$`))
    assert.deepEqual(databaseContents(empty), { tables: {}, toolkitTables: [] })
  })
})
