/**
 * Restores that read their backup from an object storage (s3rver), when things go wrong on this
 * machine: the process SIGKILLed at each restore step (the live database is then the old one or the
 * restored one, whole; the next restore succeeds and nothing of the dead run stays in the temporary
 * folder or beside the database), and a disk that fills up while the backup comes down (one French
 * line, exit 1, nothing left on that disk).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { run, sqliteDump } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'
import { STORAGES } from './helpers/storage.ts'
import { RESTORE_STEPS } from '../scripts/lib/backup/kill-points.ts'

const s3 = STORAGES.find((entry) => entry.name === 's3')!

/**
 * A child process, asynchronously (s3rver answers from this very process, whose event loop must keep
 * running), with how it ended: its signal too, which runScriptAsync treats as a hang.
 */
function spawnAsync(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }))
  })
}
const ID = /backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:-\d+)?/

/** The demo database in `dir/app.db`, an encrypted backup of it on a fresh s3rver, then the database moved on. */
async function setUp(t: import('node:test').TestContext) {
  const storage = await s3.start(t)
  const source = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t, 'ipm-remote-faults-')
  copyFileSync(source.url.slice('file:'.length), join(dir, 'app.db'))
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  // TMPDIR is the process's temporary folder: whatever a run stages there is seen by the test.
  const env = { ...storage.env, DATABASE_URL: 'file:./app.db', BACKUP_HISTORY_DIR: join(dir, 'history'), TMPDIR: tmp, BACKUP_ENCRYPTION_KEY: '', BACKUP_PASSPHRASE: '', IPM_BACKUP_KILL_AT: '' }
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runScriptAsync('scripts/advanced-backup.ts', ['--dir', storage.url, ...args], { cwd: dir, env: { ...env, ...extra } })
  assert.equal((await cli(['keygen', '--key-file', 'backup.key'])).status, 0)
  const created = await cli(['create', '--encrypt', '--key-file', 'backup.key', '--formats', 'sql'])
  assert.equal(created.status, 0, created.stderr)
  const id = ID.exec(created.stdout)![0]
  const restoredDump = sqliteDump(join(dir, 'app.db'))
  const db = new Database(join(dir, 'app.db'))
  db.exec(`UPDATE "Dossier" SET "titre" = 'modifié après le backup'`)
  db.close()
  // The command line of `cli`, for runs that are killed or wrapped.
  const command = [process.execPath, '--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', storage.url]
  return { dir, tmp, env, cli, command, id, restoredDump, oldDump: sqliteDump(join(dir, 'app.db')) }
}

test('SIGKILL at each step of a restore from S3: the database is old or new and whole; the next restore succeeds and leaves no temporary file', { skip: requireJudge('sqlite3') }, async (t) => {
  const plan = await setUp(t)
  const restoreArgs = ['restore', plan.id, '--yes', '--quiet', '--key-file', 'backup.key']
  for (const step of RESTORE_STEPS) {
    const live = join(plan.dir, 'app.db')
    const [program, ...args] = [...plan.command, ...restoreArgs] as [string, ...string[]]
    const death = await spawnAsync(program, args, { cwd: plan.dir, env: { ...plan.env, IPM_BACKUP_KILL_AT: step } })
    assert.deepEqual([death.status, death.signal], [null, 'SIGKILL'], `${step}: ${death.stderr}`)
    assert.equal(run('sqlite3', [live, 'PRAGMA integrity_check']).trim(), 'ok', step)
    const dump = sqliteDump(live)
    const expected = step === 'restore:check' || step === 'restore:report' ? plan.restoredDump : plan.oldDump
    assert.equal(dump === expected, true, `${step}: the live database is the ${expected === plan.oldDump ? 'old' : 'restored'} one`)

    // The next restore cleans what the dead run left and succeeds.
    const again = await plan.cli(restoreArgs)
    assert.equal(again.status, 0, `${step}: ${again.stderr}`)
    assert.equal(sqliteDump(live), plan.restoredDump, step)
    // (tsx keeps its compile cache there: not ours.)
    assert.deepEqual(readdirSync(plan.tmp).filter((name) => !name.startsWith('tsx-')), [], `${step}: nothing of either run stays in TMPDIR`)
    assert.deepEqual(readdirSync(plan.dir).filter((name) => name.includes('.tmp-') || name.endsWith('.lock')), [], `${step}: nothing temporary beside the database`)
    // Back to the old content for the next step's run.
    const db = new Database(live)
    db.exec(`UPDATE "Dossier" SET "titre" = 'modifié après le backup'`)
    db.close()
    assert.equal(sqliteDump(live), plan.oldDump)
  }
})

test('a disk that fills up while a backup comes down from S3: one French line, exit 1, nothing left on that disk', async (t) => {
  const plan = await setUp(t)
  const small = tempDir(t, 'ipm-small-disk-')
  // A private mount namespace: the 32 KiB tmpfs holding the target and TMPDIR is gone with it.
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=32k tmpfs '${small}'`], { encoding: 'utf8' })
  if (probe.status !== 0) return t.skip('cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)')
  const restore = [...plan.command, 'restore', plan.id, '--yes', '--key-file', join(plan.dir, 'backup.key'), '--to', join(small, 'app.db')]
  const marker = '--- left on the small disk:'
  const result = await spawnAsync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=32k tmpfs '${small}' && mkdir '${small}/tmp' && "$@"; code=$?; echo '${marker}'; ls -A '${small}' '${small}/tmp'; exit $code`, 'sh', ...restore], {
    cwd: plan.dir,
    env: { ...plan.env, TMPDIR: join(small, 'tmp') },
  })
  assert.equal(result.status, 1, result.stdout + result.stderr)
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('Erreur :'))
  assert.equal(errors.length, 1, result.stderr)
  assert.match(errors[0]!, /plus de place|disque plein/)
  assert.doesNotMatch(result.stderr, /ENOSPC|at \w+ \(/, 'no raw error code, no stack')
  const left = result.stdout.split(`${marker}\n`)[1] ?? ''
  // (tsx-* is tsx's compile cache, not ours.)
  assert.deepEqual(left.split('\n').filter((line) => line !== '' && !line.endsWith(':') && !line.startsWith('tsx-')).sort(), ['tmp'], `only the empty tmp folder the test made: ${left}`)
})
