/**
 * verify recomputes every hash and reports each fault on its own line: a changed byte in any
 * file, a missing or extra file, a truncated or corrupted archive, edited metadata — for folders
 * and archives alike. Archives rebuilt by GNU tar (plain gzip) are read too.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENGINES, openTestDatabase, suiteCleanup, tempDir } from './helpers/databases.ts'
import { engineNamed } from '../scripts/lib/engines/index.ts'
import { backupSystem, gzipMemberStarts, run, steppingClock } from './helpers/backup.ts'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { serializeMetadata, type BackupMetadata } from '../scripts/lib/backup/metadata.ts'
import type { VerifyReport } from '../scripts/lib/backup/catalog/verify.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { requireJudge } from './helpers/judges.ts'
import { runScriptAsync } from './helpers/cli.ts'

const ID = 'backup-2026-01-21T15-30-00'

function flipByte(path: string, at: 'middle' | number = 'middle'): void {
  const data = readFileSync(path)
  const index = at === 'middle' ? Math.floor(data.length / 2) : at
  data[index] = data[index]! ^ 0x01
  writeFileSync(path, data)
}

/** The status of each check that is not ok, by path. */
function faults(report: VerifyReport): Record<string, string> {
  return Object.fromEntries(report.checks.filter((c) => c.status !== 'ok').map((c) => [c.path, c.status]))
}

function systemOver(backupDir: string): AdvancedBackupSystem {
  return new AdvancedBackupSystem({ backupDir, environment: resolveEnvironment({}) })
}

for (const engine of ENGINES) {
  test(`${engine}: an untouched backup of either form verifies, one ok line per file; a changed byte in its database artefact is reported on that file only`, async (t) => {
    const db = await openTestDatabase(t, engine)
    const artefact = engineNamed(engine).restoreArtefact
    for (const compress of [false, true]) {
      const dir = join(tempDir(t), 'backups')
      const { metadata } = await backupSystem(t, { databaseUrl: db.url, backupDir: dir, compressionEnabled: compress, now: steppingClock() }).create()
      const report = await systemOver(dir).verify(metadata.id)
      assert.equal(report.ok, true, JSON.stringify(faults(report)))
      for (const file of metadata.files) assert.ok(report.checks.some((c) => c.path === file.path && c.status === 'ok'), `${file.path} has its ok line`)
      if (compress) continue
      flipByte(join(dir, metadata.id, artefact))
      assert.deepEqual(faults(await systemOver(dir).verify(metadata.id)), { [artefact]: 'modified' })
    }
  })
}

describe('verify', () => {
  let pristine: { folder: string; archive: string }
  const suite = suiteCleanup()
  before(async () => {
    // One backup of each form, copied afresh for every case.
    const t = suite
    const db = await openTestDatabase(t, 'sqlite')
    const root = tempDir(t, 'ipm-verify-')
    pristine = { folder: join(root, 'folder'), archive: join(root, 'archive') }
    await backupSystem(t, { databaseUrl: db.url, backupDir: pristine.folder, compressionEnabled: false, now: steppingClock() }).create()
    await backupSystem(t, { databaseUrl: db.url, backupDir: pristine.archive, now: steppingClock() }).create()
  })
  const copy = (t: import('node:test').TestContext, form: 'folder' | 'archive') => {
    const dir = join(tempDir(t), form)
    cpSync(pristine[form], dir, { recursive: true })
    return dir
  }

  for (const file of ['database.db', 'export.sql', 'data.json', 'exports/Dossier.csv', 'exports/_prisma_migrations.csv']) {
    test(`a changed byte in ${file} of a folder backup is reported on that file only`, async (t) => {
      const dir = copy(t, 'folder')
      flipByte(join(dir, ID, file))
      const report = await systemOver(dir).verify(ID)
      assert.equal(report.ok, false)
      assert.deepEqual(faults(report), { [file]: 'modified' })
    })
  }

  test('a missing file, an extra file and a symbolic link in a folder backup are each reported', async (t) => {
    const dir = copy(t, 'folder')
    rmSync(join(dir, ID, 'export.sql'))
    writeFileSync(join(dir, ID, 'exports', 'Intrus.csv'), 'a,b\r\n')
    symlinkSync('/etc/passwd', join(dir, ID, 'passwd'))
    mkdirSync(join(dir, ID, 'more'))
    const report = await systemOver(dir).verify(ID)
    assert.deepEqual(faults(report), { 'export.sql': 'missing', 'exports/Intrus.csv': 'extra', passwd: 'extra', more: 'extra' })
  })

  test('an edited metadata.json is reported, even when the edit keeps it valid', { skip: requireJudge('sha256sum') }, async (t) => {
    const dir = copy(t, 'folder')
    const path = join(dir, ID, 'metadata.json')
    writeFileSync(path, readFileSync(path, 'utf8').replace('"rows": 9', '"rows": 10'))
    assert.deepEqual(faults(await systemOver(dir).verify(ID)), { 'metadata.json': 'modified' })
    // A file's hash edited to match a tampered file: the seal still gives it away.
    flipByte(join(dir, ID, 'data.json'))
    const metadata = JSON.parse(readFileSync(path, 'utf8')) as BackupMetadata
    const sha = run('sha256sum', [join(dir, ID, 'data.json')]).split(' ')[0]!
    writeFileSync(path, readFileSync(path, 'utf8').replace(metadata.files.find((f) => f.path === 'data.json')!.sha256, sha))
    assert.deepEqual(faults(await systemOver(dir).verify(ID)), { 'metadata.json': 'modified' })
  })

  test('a metadata.json that is not JSON anymore is reported, not thrown', async (t) => {
    const dir = copy(t, 'folder')
    writeFileSync(join(dir, ID, 'metadata.json'), '{"id": ')
    const report = await systemOver(dir).verify(ID)
    assert.equal(report.ok, false)
    assert.equal(report.checks[0]!.status, 'invalid')
  })

  test('a changed byte anywhere in the archive is reported, and so is what it breaks inside', async (t) => {
    for (const at of [100, 'middle', -30] as const) {
      const dir = copy(t, 'archive')
      const archive = join(dir, `${ID}.tar.gz`)
      flipByte(archive, at === -30 ? readFileSync(archive).length - 30 : at)
      const report = await systemOver(dir).verify(ID)
      assert.equal(report.ok, false)
      assert.equal(faults(report)[`${ID}.tar.gz`], 'modified', `byte at ${at}`)
    }
  })

  test('a truncated archive is reported as truncated where it stops, and nothing is said of its files', async (t) => {
    for (const keep of [0.5, 0.99]) {
      const dir = copy(t, 'archive')
      const archive = join(dir, `${ID}.tar.gz`)
      truncateSync(archive, Math.floor(readFileSync(archive).length * keep))
      const report = await systemOver(dir).verify(ID)
      const check = report.checks.find((c) => c.path === `${ID}.tar.gz`)!
      assert.equal(check.status, 'modified')
      assert.match(check.detail ?? '', /archive tronquée/)
      assert.ok(check.damage !== undefined, 'the damage is located')
      assert.deepEqual(report.checks.map((c) => c.path), ['backup-2026-01-21T15-30-00.metadata.json', `${ID}.tar.gz`])
    }
  })

  test('a corrupt gzip member: verify says the archive is damaged, which member at which byte, and stops there (no file listed missing, no "Hash vérifié")', async (t) => {
    const dir = copy(t, 'archive')
    const archive = join(dir, `${ID}.tar.gz`)
    const bytes = readFileSync(archive)
    // The members of the archive: damage the middle of the last one.
    const starts = gzipMemberStarts(archive)
    const member = starts.length
    const start = starts.at(-1)!
    flipByte(archive, Math.floor((start + 40 + bytes.length - 8) / 2))
    const report = await systemOver(dir).verify(ID)
    const check = report.checks.find((c) => c.path === `${ID}.tar.gz`)!
    assert.deepEqual(check.damage, { offset: start, member })
    assert.match(check.detail ?? '', new RegExp(`archive endommagée : le membre gzip n° ${member} \\(à l’octet ${start}\\) ne se décompresse pas`))
    // The reason in French, whichever library inflated the member: zlib's or libdeflate's words, translated (archive.ts).
    assert.match(check.detail ?? '', /ne se décompresse pas \([^)]+\)$/)
    assert.doesNotMatch(check.detail ?? '', /erreur zlib|libdeflate/)
    const result = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', dir, 'verify', ID])
    assert.equal(result.status, 1, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.equal(lines[0], `❌ Archive endommagée: ${ID}.tar.gz (membre gzip n° ${member}, octet ${start}); ses fichiers ne sont pas lisibles au-delà`)
    assert.equal(lines.length, 2, result.stdout)
    assert.doesNotMatch(result.stdout, /Hash vérifié|manquant/)
  })

  test('an archive rebuilt by GNU tar with a changed, a missing and an extra file is read and each fault reported', { skip: requireJudge('tar') }, async (t) => {
    const dir = copy(t, 'archive')
    const work = tempDir(t)
    run('tar', ['-xzf', join(dir, `${ID}.tar.gz`), '-C', work])
    flipByte(join(work, ID, 'data.json'))
    rmSync(join(work, ID, 'export.sql'))
    writeFileSync(join(work, ID, 'exports', 'Intrus.csv'), 'x\r\n')
    run('tar', ['-czf', join(dir, `${ID}.tar.gz`), '-C', work, ID])
    const report = await systemOver(dir).verify(ID)
    assert.deepEqual(faults(report), {
      [`${ID}.tar.gz`]: 'modified',
      'data.json': 'modified',
      'export.sql': 'missing',
      [`${ID}/exports/Intrus.csv`]: 'extra',
    })
  })

  test('edited metadata beside the archive is reported, even re-sealed, because the copy inside disagrees', async (t) => {
    const dir = copy(t, 'archive')
    const sidecar = join(dir, `${ID}.metadata.json`)
    writeFileSync(sidecar, readFileSync(sidecar, 'utf8').replace('"rows": 9', '"rows": 10'))
    assert.deepEqual(faults(await systemOver(dir).verify(ID)), { [`${ID}.metadata.json`]: 'modified', 'metadata.json (dans l’archive)': 'modified' })
    const { metadataSha256: _, ...edited } = JSON.parse(readFileSync(sidecar, 'utf8')) as BackupMetadata
    writeFileSync(sidecar, serializeMetadata(edited))
    assert.deepEqual(faults(await systemOver(dir).verify(ID)), { 'metadata.json (dans l’archive)': 'modified' })
  })

  test('a FIFO named like the archive or its metadata is refused at once by verify and restore, with one line, never opened', async (t) => {
    for (const [form, name] of [['archive', `${ID}.tar.gz`], ['archive', `${ID}.metadata.json`], ['folder', `${ID}/metadata.json`]] as const) {
      const dir = copy(t, form)
      rmSync(join(dir, name))
      run('mkfifo', [join(dir, name)])
      const target = join(tempDir(t), 'dev.db')
      for (const args of [['verify', ID], ['restore', ID, '--to', target, '--yes']]) {
        // A reader of the FIFO would block forever: the child is killed (and the test fails) after 2 minutes.
        const result = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', dir, ...args], { timeoutMs: 120_000 })
        assert.equal(result.status, 1, `${args[0]} of ${name}: ${result.stderr}`)
        const errorLines = result.stderr.split('\n').filter((line) => line.includes(name.split('/').at(-1)!))
        assert.equal(errorLines.length, 1, result.stderr)
        assert.match(errorLines[0]!, /est un tube nommé \(FIFO\), pas un fichier ordinaire : la sauvegarde backup-2026-01-21T15-30-00 est refusée sans être ouverte/)
      }
    }
  })

  test('a missing archive is reported; a missing metadata file makes the backup unknown', async (t) => {
    const dir = copy(t, 'archive')
    rmSync(join(dir, `${ID}.tar.gz`))
    assert.deepEqual(faults(await systemOver(dir).verify(ID)), { [`${ID}.tar.gz`]: 'missing' })
    rmSync(join(dir, `${ID}.metadata.json`))
    await assert.rejects(systemOver(dir).verify(ID), /aucun backup « backup-2026-01-21T15-30-00 »/)
  })
})
