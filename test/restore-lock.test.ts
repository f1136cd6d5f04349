/**
 * Two restores of the same target started at once: one runs, the other refuses (the target's lock:
 * a file beside a SQLite database or a local D1's state folder, an advisory lock on a PostgreSQL server), and the target ends
 * whole, every time. Child processes load first, then start together on one signal, so their runs overlap.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { backupSystem, databaseContents, steppingClock } from './helpers/backup.ts'
import { openTestDatabase, suiteCleanup, tempDir } from './helpers/databases.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { lockRestoreTarget } from '../scripts/lib/backup/restore/target-lock.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const TRIALS = 10
const PG_TRIALS = 5
const D1_TRIALS = 3
const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

/** Epoch milliseconds at which a successful restore announced its first step and its report: both inside its lock. */
interface LockedSpan {
  locked: number
  report: number
}

/** Two restores of `id` (each from its own copy of the backups in `pristine`) into `url`, released at the same instant. */
async function raceTwoRestores(root: string, pristine: string, trial: number, url: string, id: string) {
  const dirs = [0, 1].map((n) => join(root, `trial-${trial}-${n}`))
  for (const dir of dirs) cpSync(pristine, dir, { recursive: true })
  const children = dirs.map((dir) => restoreChild(root, dir, url, id, { force: true }))
  await Promise.all(children.map((c) => c.ready))
  for (const c of children) c.go()
  const outcomes = await Promise.all(children.map((c) => c.done))
  return { outcomes, said: outcomes.map((o) => `${o.status} ${o.stderr.trim()}`).join(' | ') }
}

/** A restore in a child process that waits for "go" on stdin; resolves to its exit code and stderr. */
function restoreChild(root: string, backups: string, databaseUrl: string, id: string, options: { force?: boolean } = {}): { ready: Promise<void>; go(): void; done: Promise<{ status: number | null; stderr: string; ran?: LockedSpan }> } {
  const program = `
    import { AdvancedBackupSystem } from ${JSON.stringify(join(REPO_ROOT, 'scripts/lib/backup/backup-system.ts'))}
    import { resolveEnvironment } from ${JSON.stringify(join(REPO_ROOT, 'scripts/lib/environment.ts'))}
    const now = () => performance.timeOrigin + performance.now()
    // When this run announced its first step (the lock is held from before it) and its report (the lock is still held).
    const marks = {}
    const system = new AdvancedBackupSystem({ backupDir: ${JSON.stringify(backups)}, databaseUrl: ${JSON.stringify(databaseUrl)}, environment: resolveEnvironment({}), onStep: (step) => { marks[step] = now() } })
    process.stdout.write('ready\\n')
    process.stdin.once('data', async () => {
      try { await system.restore(${JSON.stringify(id)}, { yes: true, force: ${options.force === true} }); process.stdout.write(JSON.stringify({ locked: marks['restore:verify'], report: marks['restore:report'] }) + '\\n'); process.exit(0) }
      catch (error: any) { process.stderr.write(String(error.message) + '\\n'); process.exit(1) }
    })`
  // A file, not `-e`: the gzip worker threads need a module URL of their own.
  const file = join(root, `restore-child-${randomBytes(4).toString('hex')}.ts`)
  writeFileSync(file, program)
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
  return {
    ready,
    go: () => child.stdin.write('go\n'),
    done: new Promise((resolve) =>
      child.on('close', (status) => {
        const ran = stdout.split('\n').find((line) => line.startsWith('{'))
        resolve({ status, stderr, ...(ran === undefined ? {} : { ran: JSON.parse(ran) as LockedSpan }) })
      }),
    ),
  }
}

describe('restore lock', () => {
  const suite = suiteCleanup()

  test(`two restores of one file started at once: exactly one runs, the previous database stays on disk (${TRIALS} trials)`, async () => {
    const db = await openTestDatabase(suite, 'sqlite')
    const root = tempDir(suite, 'ipm-restore-lock-')
    const source = join(root, 'source.db')
    await db.sql.query('VACUUM INTO ?', [source])
    const pristine = join(root, 'backups')
    const { metadata } = await backupSystem(suite, { databaseUrl: `file:${source}`, backupDir: pristine, now: steppingClock() }).create()
    for (let trial = 0; trial < TRIALS; trial++) {
      const dir = join(root, `trial-${trial}`)
      cpSync(pristine, join(dir, 'backups'), { recursive: true })
      const live = join(dir, 'dev.db')
      copyFileSync(source, live)
      // The live database differs from the backup, so its safety copy is recognisable.
      const handle = new Database(live)
      handle.exec(`DELETE FROM "Dossier" WHERE rowid = (SELECT max(rowid) FROM "Dossier")`)
      handle.close()
      const before = sha256File(live)
      const children = [restoreChild(root, join(dir, 'backups'), `file:${live}`, metadata.id), restoreChild(root, join(dir, 'backups'), `file:${live}`, metadata.id)]
      await Promise.all(children.map((c) => c.ready))
      for (const c of children) c.go()
      const outcomes = await Promise.all(children.map((c) => c.done))
      const kept = readdirSync(dir).filter((name) => name.startsWith('dev.db.before-restore'))
      assert.ok(kept.some((name) => sha256File(join(dir, name)) === before), `trial ${trial}: the database as it was before is kept (${kept.join(', ') || 'no safety copy'}); ${outcomes.map((o) => o.stderr.trim()).join(' | ')}`)
      const succeeded = outcomes.filter((o) => o.status === 0)
      if (succeeded.length === 2) {
        // On a loaded machine the second restore may reach the lock only after the first released it: two
        // restores one after the other are right. The second must not have held the lock while the first
        // still did (from its first step to its report, at least).
        const [a, b] = succeeded.map((o) => o.ran!).sort((x, y) => x.locked - y.locked) as [LockedSpan, LockedSpan]
        assert.ok(b.locked >= a.report, `trial ${trial}: both restores held the lock at once (${a.locked}–${a.report}, ${b.locked}–${b.report})`)
      } else {
        assert.equal(succeeded.length, 1, `trial ${trial}: exactly one restore ran: ${outcomes.map((o) => `${o.status} ${o.stderr.trim()}`).join(' | ')}`)
      }
      assert.equal(existsSync(`${live}.restore-lock`), false, `trial ${trial}: the lock is released`)
    }
  })

  test(`two restores into one PostgreSQL database started at once: exactly one runs, the other is refused, the target ends whole (${PG_TRIALS} trials)`, async () => {
    const source = await openTestDatabase(suite, 'postgres')
    const root = tempDir(suite, 'ipm-restore-lock-pg-')
    const pristine = join(root, 'backups')
    const { metadata } = await backupSystem(suite, { databaseUrl: source.url, backupDir: pristine, now: steppingClock() }).create()
    for (let trial = 0; trial < PG_TRIALS; trial++) {
      // A non-empty target (so --force): without the lock, the second restore waits on the first's
      // locks, then drops and loads again, and both report success.
      const target = await openTestDatabase(suite, 'postgres')
      await target.sql.query(`DELETE FROM "Dossier" WHERE id = (SELECT max(id) FROM "Dossier")`)
      const { outcomes, said } = await raceTwoRestores(root, pristine, trial, target.url, metadata.id)
      assert.equal(outcomes.filter((o) => o.status === 0).length, 1, `trial ${trial}: exactly one restore ran: ${said}`)
      const refused = outcomes.find((o) => o.status !== 0)!
      assert.match(refused.stderr.trim(), new RegExp(`^une autre restauration de postgresql://[^ ]*/${new URL(target.url).pathname.slice(1)} est en cours : rien n’a été modifié$`), `trial ${trial}: ${said}`)
      const check = await openDatabase(target.url, { environment: resolveEnvironment() })
      try {
        for (const table of metadata.tables) {
          const [row] = await check.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${table.name}"`)
          assert.equal(Number(row!.n), table.rows, `trial ${trial}: table ${table.name} is whole`)
        }
      } finally {
        await check.close()
      }
    }
  })

  test(`two restores into one local D1 started at once: exactly one holds it at a time, through the lock file beside its state folder, and the target ends whole (${D1_TRIALS} trials)`, async () => {
    const source = await openTestDatabase(suite, 'd1')
    const root = tempDir(suite, 'ipm-restore-lock-d1-')
    const pristine = join(root, 'backups')
    const { metadata } = await backupSystem(suite, { databaseUrl: source.url, backupDir: pristine, now: steppingClock() }).create()
    await source.close()
    const expected = databaseContents(source.url)
    for (let trial = 0; trial < D1_TRIALS; trial++) {
      // A non-empty target (so --force): without the lock both restores stage, swap and report success, their runs overlapping.
      const target = await openTestDatabase(suite, 'd1')
      await target.sql.query(`DELETE FROM "Dossier" WHERE id = 'dossier-demo-1'`)
      await target.close()
      const { outcomes, said } = await raceTwoRestores(root, pristine, trial, target.url, metadata.id)
      const succeeded = outcomes.filter((o) => o.status === 0)
      if (succeeded.length === 2) {
        // Under load the second may reach the lock only once the first released it: one after the other is right.
        const [a, b] = succeeded.map((o) => o.ran!).sort((x, y) => x.locked - y.locked) as [LockedSpan, LockedSpan]
        assert.ok(b.locked >= a.report, `trial ${trial}: both restores held the D1 at once (${a.locked}–${a.report}, ${b.locked}–${b.report})`)
      } else {
        assert.equal(succeeded.length, 1, `trial ${trial}: exactly one restore ran: ${said}`)
        const persistDir = target.url.slice('d1://local/'.length)
        assert.match(outcomes.find((o) => o.status !== 0)!.stderr.trim(), new RegExp(`^une autre restauration de ${persistDir.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')} est en cours \\(pid \\d+\\) : rien n’a été modifié$`), `trial ${trial}: ${said}`)
      }
      assert.deepEqual(databaseContents(target.url), expected, `trial ${trial}: the target is the backup, whole`)
      assert.equal(existsSync(`${target.url.slice('d1://local/'.length)}.restore-lock`), false, `trial ${trial}: the lock is released`)
    }
  })

  test('a second restore never overwrites the first one’s <db>.before-restore: its copy is named per run and said', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t, 'ipm-restore-twice-')
    const live = join(dir, 'dev.db')
    await db.sql.query('VACUUM INTO ?', [live])
    const system = backupSystem(t, { databaseUrl: `file:${live}`, backupDir: join(dir, 'backups'), now: steppingClock() })
    const { metadata } = await system.create()
    const handle = new Database(live)
    handle.exec(`DELETE FROM "Dossier" WHERE rowid = (SELECT max(rowid) FROM "Dossier")`)
    handle.close()
    const original = sha256File(live)
    const first = await system.restore(metadata.id, { yes: true })
    assert.equal(first.safetyCopy, `${live}.before-restore`)
    const second = await system.restore(metadata.id, { yes: true })
    assert.match(second.safetyCopy ?? '', /dev\.db\.before-restore-\d{8}T\d{6}Z$/)
    assert.equal(sha256File(`${live}.before-restore`), original, 'the first run’s copy is still the database as it was')
    assert.equal(sha256File(second.safetyCopy!), sha256File(live), 'the second run kept what it replaced')
  })

  test('a live holder refuses a second lock with its pid; a dead holder’s lock is taken over', (t) => {
    const dir = tempDir(t)
    const target = join(dir, 'dev.db')
    const first = lockRestoreTarget(target)
    assert.throws(() => lockRestoreTarget(target, { pid: process.pid + 1 }), (error: unknown) => error instanceof ToolkitError && error.message.includes(`(pid ${process.pid})`))
    first.release()
    assert.equal(existsSync(`${target}.restore-lock`), false)
    writeFileSync(`${target}.restore-lock`, '999999\n')
    const second = lockRestoreTarget(target, { isAlive: () => false })
    assert.equal(readFileSync(`${target}.restore-lock`, 'utf8'), `${process.pid}\n`)
    second.release()
  })
})
