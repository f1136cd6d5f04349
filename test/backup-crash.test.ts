/**
 * Crash safety: scripts/advanced-backup.ts killed by SIGKILL at every named step of `create`
 * (IPM_BACKUP_KILL_AT, kill-points.ts), compressed and not, and at random instants by a timer.
 * After each death: `list` shows only complete backups (each passes verify), the live database is
 * untouched and passes the sqlite3 CLI's integrity_check, and the next create succeeds and removes
 * every leftover. The same for `restore` at each of its steps and at random instants: the live
 * database is then the old one or the restored one, whole, and a new restore succeeds.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { backupSystem, run, sqliteDump, steppingClock } from './helpers/backup.ts'
import { CREATE_STEPS, RESTORE_STEPS } from '../scripts/lib/backup/kill-points.ts'
import { sha256Hex } from '../scripts/lib/backup/manifest.ts'
import { readHistory } from '../scripts/lib/backup/catalog/history.ts'
import { requireJudge } from './helpers/judges.ts'

interface Death {
  status: number | null
  signal: NodeJS.Signals | null
  stderr: string
  ms: number
}

/** Runs the CLI in `cwd`; `killAfterMs` races a SIGKILL against it. */
function cli(args: string[], cwd: string, options: { env?: NodeJS.ProcessEnv; killAfterMs?: number } = {}): Promise<Death> {
  return new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', 'backups', ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', DATABASE_URL: 'file:./app.db', IPM_BACKUP_KILL_AT: '', ...options.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stderr, ms: performance.now() - started })
    })
  })
}

let templateDir: Promise<string> | undefined

/** The ids `advanced-backup list --json` shows. */
function listCli(dir: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', 'backups', 'list', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.on('close', (status) => (status === 0 ? resolve((JSON.parse(stdout) as { backups: { id: string }[] }).backups.map((b) => b.id)) : reject(new Error(`list exited ${status}`))))
  })
}

/** A small WAL-mode database (three tables, a few hundred rows) and one earlier backup, in a template folder made once per file. */
function template(): Promise<string> {
  templateDir ??= makeTemplate()
  return templateDir
}

async function makeTemplate(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ipm-crash-template-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const db = new Database(join(dir, 'app.db'))
  db.pragma('journal_mode = WAL')
  db.exec(`
    CREATE TABLE cabinet (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE client (id INTEGER PRIMARY KEY, cabinet_id INTEGER NOT NULL REFERENCES cabinet(id), name TEXT, notes BLOB);
    CREATE TABLE dossier (id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES client(id), statut TEXT, due TEXT);
  `)
  const insert = db.transaction(() => {
    for (let c = 1; c <= 5; c++) db.prepare('INSERT INTO cabinet VALUES (?, ?)').run(c, `Cabinet ${c}`)
    for (let i = 1; i <= 200; i++) db.prepare('INSERT INTO client VALUES (?, ?, ?, ?)').run(i, (i % 5) + 1, `Client ${i} « é »`, Buffer.from([i % 256, 0]))
    for (let i = 1; i <= 400; i++) db.prepare('INSERT INTO dossier VALUES (?, ?, ?, ?)').run(i, (i % 200) + 1, ['ouvert', 'en cours', 'clos', 'archivé'][i % 4], '2026-01-21T15:30:00.000Z')
  })
  insert()
  db.close()
  const first = await cli(['--quiet', '--keep', '1'], dir)
  assert.equal(first.status, 0, first.stderr)
  return dir
}

/** A fresh copy of the template. */
function workspace(t: import('node:test').TestContext, from: string): string {
  const dir = tempDir(t, 'ipm-crash-')
  cpSync(from, dir, { recursive: true })
  return dir
}

/**
 * A copy of the template's database with an earlier backup of its own (dated 2026-01-21): rotation
 * is per source, so the backup must come from this folder's database for `--keep 1` to delete it.
 */
async function createWorkspace(t: import('node:test').TestContext, from: string): Promise<{ dir: string; before: { digest: string; ids: string[]; names: Set<string> } }> {
  const dir = tempDir(t, 'ipm-crash-')
  cpSync(join(from, 'app.db'), join(dir, 'app.db'))
  const earlier = await backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir: join(dir, 'backups'), maxBackups: 1, now: steppingClock() }).create()
  assert.ok(earlier.metadata.verified)
  return { dir, before: { digest: liveDigest(dir), ids: [earlier.metadata.id], names: new Set(readdirSync(join(dir, 'backups'))) } }
}

const liveDigest = (dir: string) => sha256Hex(readFileSync(join(dir, 'app.db')))

/** The assertions after a death: nothing partial listed, live database sound and unchanged, next create cleans up (returns what it removed). */
async function assertRecovered(t: import('node:test').TestContext, dir: string, before: { digest: string; ids: string[] }, what: string): Promise<string[]> {
  const backupDir = join(dir, 'backups')
  const system = backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir, maxBackups: 1 })
  const listed = (await system.list()).backups
  assert.ok(listed.length >= 1, `${what}: the earlier backup is still listed`)
  for (const backup of listed) {
    assert.equal(backup.problem, undefined, `${what}: ${backup.id} is listed whole`)
    assert.ok(before.ids.includes(backup.id) || backup.id > before.ids[0]!, `${what}: ${backup.id}`)
    const report = await system.verify(backup.id)
    assert.ok(report.ok, `${what}: listed ${backup.id} passes verify: ${JSON.stringify(report.checks.filter((c) => c.status !== 'ok'))}`)
  }
  // create never writes the live database: it is the old one, byte for byte, and sound.
  assert.equal(liveDigest(dir), before.digest, `${what}: the live database is unchanged`)
  assert.equal(run('sqlite3', [join(dir, 'app.db'), 'PRAGMA integrity_check']).trim(), 'ok', what)

  const next = await system.create()
  assert.ok(next.metadata.verified, what)
  const names = readdirSync(backupDir)
  assert.deepEqual(names.filter((name) => name.includes('.tmp-')), [], `${what}: no temporary leftovers after the next create`)
  for (const name of names.filter((n) => n.endsWith('.tar.gz'))) {
    assert.ok(existsSync(join(backupDir, name.replace(/\.tar\.gz$/, '.metadata.json'))), `${what}: ${name} has its metadata`)
  }
  assert.deepEqual((await system.list()).backups.map((b) => b.id), [next.metadata.id], `${what}: rotation kept the new backup only`)
  const history = await readHistory(backupDir)
  assert.deepEqual(history.warnings, [], what)
  assert.equal(history.records.at(-1)?.result, 'success', what)
  return next.cleaned
}

test('create killed by SIGKILL at every named step: nothing partial listed, live database sound, the next create cleans up', { skip: requireJudge('sqlite3') }, async (t) => {
  const from = await template()
  // Every step compressed; uncompressed, the steps whose code differs (a folder renamed into place).
  const uncompressed = ['create:after-snapshot', 'create:before-metadata', 'create:before-verify', 'create:before-publish', 'create:after-publish']
  // The off-site steps run only with --offsite: backup-offsite.test.ts kills at them.
  const cases = [...CREATE_STEPS.filter((step) => step.startsWith('create:')).map((step) => ({ step, compress: true })), ...uncompressed.map((step) => ({ step, compress: false }))]
  assert.equal(cases.length, 17)
  // Two at a time: each run has its own folder.
  const deaths = new Map<string, { dir: string; before: Awaited<ReturnType<typeof createWorkspace>>['before']; death: Death }>()
  for (let i = 0; i < cases.length; i += 2) {
    await Promise.all(
      cases.slice(i, i + 2).map(async ({ step, compress }) => {
        const { dir, before } = await createWorkspace(t, from)
        const death = await cli(['--quiet', '--keep', '1', ...(compress ? [] : ['--no-compress'])], dir, { env: { IPM_BACKUP_KILL_AT: step } })
        deaths.set(`${step}${compress ? '' : ' --no-compress'}`, { dir, before, death })
      }),
    )
  }
  for (const [what, { dir, before, death }] of deaths) {
    assert.deepEqual([death.status, death.signal], [null, 'SIGKILL'], `${what} died by SIGKILL: ${death.stderr}`)
    // What the dead run left: its temporary names, and an archive whose metadata was never written.
    const backupDir = join(dir, 'backups')
    const left = readdirSync(backupDir).filter((name) => !before.names.has(name) && (name.includes('.tmp-') || (name.endsWith('.tar.gz') && !existsSync(join(backupDir, name.replace(/\.tar\.gz$/, '.metadata.json'))))))
    if (what === 'create:before-publish') assert.ok(left.some((name) => /^backup-[^.]*\.tmp-\d+-/.test(name)), `${what} left its staging folder: ${left}`)
    if (what === 'create:after-link') assert.ok(left.some((name) => /^backup-[^.]*\.tar\.gz$/.test(name)), `${what} left an archive without metadata: ${left}`)
    if (what === 'create:before-publish' || what === 'create:after-link') {
      // As the user sees it: `list` shows the earlier backup only.
      const listed = await listCli(dir)
      assert.deepEqual(listed, before.ids, `${what}: advanced-backup list`)
    }
    const cleaned = await assertRecovered(t, dir, before, what)
    assert.deepEqual(cleaned.sort(), left.sort(), `${what}: the next create removed exactly the dead run's leftovers`)
  }
})

test('create killed by a timer at random instants, 10 times: the same guarantees', { skip: requireJudge('sqlite3') }, async (t) => {
  const from = await template()
  const measure = await cli(['--quiet', '--keep', '1'], (await createWorkspace(t, from)).dir)
  assert.equal(measure.status, 0, measure.stderr)
  let killed = 0
  for (let i = 0; i < 10; i++) {
    // Spread over the run's length (80 % of it: a later run may be a little faster): each tenth, at a random point inside.
    const delay = Math.round(((i + Math.random()) / 10) * measure.ms * 0.8)
    const { dir, before } = await createWorkspace(t, from)
    const death = await cli(['--quiet', '--keep', '1'], dir, { killAfterMs: delay })
    const what = `killed after ${delay} ms of ~${Math.round(measure.ms)} ms`
    if (death.signal === 'SIGKILL') killed++
    else assert.equal(death.status, 0, `${what}: ${death.stderr}`)
    await assertRecovered(t, dir, before, what)
  }
  assert.ok(killed >= 3, `${killed} of 10 runs were killed`)
})

/** The template's database moved on after its backup (old ≠ backup), and the dumps of both. */
async function restoreTemplate(t: import('node:test').TestContext): Promise<{ from: string; id: string; oldDump: string; newDump: string }> {
  const from = workspace(t, await template())
  const id = readdirSync(join(from, 'backups')).find((n) => n.endsWith('.metadata.json'))!.replace('.metadata.json', '')
  const newDump = sqliteDump(join(from, 'app.db'))
  const db = new Database(join(from, 'app.db'))
  db.exec(`INSERT INTO cabinet VALUES (6, 'Cabinet ouvert après le backup'); UPDATE dossier SET statut = 'clos' WHERE id <= 100`)
  db.close()
  const oldDump = sqliteDump(join(from, 'app.db'))
  assert.notEqual(oldDump, newDump)
  return { from, id, oldDump, newDump }
}

/** After a restore died: the live database (and any safety copy) is whole, old or new; backups intact; create and restore work again. */
async function assertRestoreRecovered(t: import('node:test').TestContext, dir: string, plan: { id: string; oldDump: string; newDump: string }, what: string): Promise<'old' | 'new'> {
  const live = join(dir, 'app.db')
  assert.equal(run('sqlite3', [live, 'PRAGMA integrity_check']).trim(), 'ok', what)
  const dump = sqliteDump(live)
  assert.ok(dump === plan.oldDump || dump === plan.newDump, `${what}: the live database is the old one or the restored one`)
  if (existsSync(`${live}.before-restore`)) {
    assert.equal(sqliteDump(`${live}.before-restore`), plan.oldDump, `${what}: the safety copy is the old database, whole`)
  }
  const system = backupSystem(t, { databaseUrl: `file:${live}`, backupDir: join(dir, 'backups'), maxBackups: 5 })
  const listed = (await system.list()).backups
  assert.deepEqual(listed.map((b) => b.id), [plan.id], `${what}: the backups are untouched`)
  assert.ok((await system.verify(plan.id)).ok, what)
  const next = await system.create()
  assert.ok(next.metadata.verified, what)
  assert.deepEqual(readdirSync(join(dir, 'backups')).filter((n) => n.includes('.tmp-')), [], `${what}: no leftovers in the backup folder`)
  const again = await system.restore(plan.id, { yes: true })
  assert.equal(again.restored, true, what)
  assert.equal(sqliteDump(live), plan.newDump, `${what}: a new restore gives the backup's database`)
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), [], `${what}: nothing temporary left beside the database after the new restore`)
  return dump === plan.newDump ? 'new' : 'old'
}

test('restore killed by SIGKILL at each of its steps: the live database is the old one before the rename, the restored one after, whole either way', { skip: requireJudge('sqlite3') }, async (t) => {
  const plan = await restoreTemplate(t)
  assert.deepEqual(RESTORE_STEPS, ['restore:verify', 'restore:confirm', 'restore:safety-copy', 'restore:replace', 'restore:check', 'restore:report'])
  const runs = await Promise.all(
    RESTORE_STEPS.map(async (step) => {
      const dir = workspace(t, plan.from)
      return { step, dir, death: await cli(['restore', plan.id, '--yes', '--quiet'], dir, { env: { IPM_BACKUP_KILL_AT: step } }) }
    }),
  )
  for (const { step, dir, death } of runs) {
    assert.deepEqual([death.status, death.signal], [null, 'SIGKILL'], `${step} died by SIGKILL: ${death.stderr}`)
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), [], `${step}: no temporary database left beside the live one`)
    const expected = step === 'restore:check' || step === 'restore:report' ? 'new' : 'old'
    assert.equal(await assertRestoreRecovered(t, dir, plan, step), expected, step)
  }
})

test('restore killed by a timer at random instants, 4 times: the live database is whole, old or new, and a new restore succeeds', { skip: requireJudge('sqlite3') }, async (t) => {
  const plan = await restoreTemplate(t)
  const measure = await cli(['restore', plan.id, '--yes', '--quiet'], workspace(t, plan.from))
  assert.equal(measure.status, 0, measure.stderr)
  let killed = 0
  for (let i = 0; i < 4; i++) {
    const delay = Math.round(((i + Math.random()) / 4) * measure.ms * 0.8)
    const dir = workspace(t, plan.from)
    const death = await cli(['restore', plan.id, '--yes', '--quiet'], dir, { killAfterMs: delay })
    const what = `restore killed after ${delay} ms of ~${Math.round(measure.ms)} ms`
    if (death.signal === 'SIGKILL') killed++
    else assert.equal(death.status, 0, `${what}: ${death.stderr}`)
    await assertRestoreRecovered(t, dir, plan, what)
  }
  assert.ok(killed >= 2, `${killed} of 4 runs were killed`)
})
