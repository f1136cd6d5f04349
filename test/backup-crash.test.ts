/**
 * Crash safety, on every engine of ENGINES (SQLite, PostgreSQL, local D1): scripts/advanced-backup.ts
 * killed by SIGKILL at every named step of `create` (IPM_BACKUP_KILL_AT, kill-points.ts). After each
 * death: `list` shows only complete backups (each passes verify), the live database is untouched
 * (judged by psql / the sqlite3 shell: per-table counts and content checksums; a SQLite file also
 * byte for byte), and the next create succeeds and removes every leftover. The same for `restore`
 * at each of its steps: the live database is then the old one or the restored one, whole (never a
 * mix, never empty, never a table missing), and a new restore succeeds and leaves no scratch
 * database, folder or process behind. On SQLite, also killed by a timer at random instants.
 */
import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { ENGINES, POSTGRES_SERVER_URL, copyTestDatabase, openTestDatabase, suiteCleanup, tempDir } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { backupSystem, databaseContents, steppingClock, type DatabaseContents } from './helpers/backup.ts'
import { CREATE_STEPS, RESTORE_STEPS } from '../scripts/lib/backup/kill-points.ts'
import { sha256Hex } from '../scripts/lib/backup/manifest.ts'
import { readHistory } from '../scripts/lib/backup/catalog/history.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import type { EngineName } from '../scripts/lib/db/url.ts'
import { engineNamed } from '../scripts/lib/engines/index.ts'
import { DATABASE_SQL_FILE } from '../scripts/lib/engines/snapshot.ts'
import { requireJudge } from './helpers/judges.ts'

interface Death {
  pid: number
  status: number | null
  signal: NodeJS.Signals | null
  stderr: string
  ms: number
}

/** Runs the CLI in `cwd` against `url`, its temporary folders in `<cwd>/tmp`; `killAfterMs` races a SIGKILL against it. */
function cli(args: string[], cwd: string, url: string, options: { env?: NodeJS.ProcessEnv; killAfterMs?: number } = {}): Promise<Death> {
  mkdirSync(join(cwd, 'tmp'), { recursive: true })
  return new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', 'backups', ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', DATABASE_URL: url, TMPDIR: join(cwd, 'tmp'), IPM_BACKUP_KILL_AT: '', ...options.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ pid: child.pid!, status, signal, stderr, ms: performance.now() - started })
    })
  })
}

/** The ids `advanced-backup list --json` shows. */
function listCli(dir: string, url: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', 'backups', 'list', '--json'], {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.on('close', (status) => (status === 0 ? resolve((JSON.parse(stdout) as { backups: { id: string }[] }).backups.map((b) => b.id)) : reject(new Error(`list exited ${status}`))))
  })
}

/** The judges each engine needs. */
const JUDGE = { sqlite: requireJudge('sqlite3'), postgres: requireJudge('psql'), d1: requireJudge('sqlite3') } satisfies Record<EngineName, false | string>

/** The live database as a judge sees it: contents, and for a SQLite file its bytes. */
interface LiveState {
  contents: DatabaseContents
  digest: string | null
}

function liveState(engine: EngineName, url: string): LiveState {
  return { contents: databaseContents(url), digest: engine === 'sqlite' ? sha256Hex(readFileSync(url.replace(/^file:/, ''))) : null }
}

/**
 * The databases of the PostgreSQL server whose names the toolkit made for one of these processes
 * (scratch databases carry their process id: `ipm_<kind>_<pid>_<random>`). Other tests share the
 * server, so only these processes' names count.
 */
async function toolkitDatabases(pids: number[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: POSTGRES_SERVER_URL })
  await client.connect()
  try {
    const { rows } = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname ~ '^ipm_[a-z]+_[0-9]+_' ORDER BY 1`)
    return rows.map((r) => r.datname).filter((name) => pids.includes(Number(/^ipm_[a-z]+_(\d+)_/.exec(name)?.[1])))
  } finally {
    await client.end()
  }
}

/** Kept for the whole file: a template outlives the test that made it first. */
const fileCleanup = suiteCleanup()

/**
 * The processes (other than this one) holding a file or folder under `dir` open, as `<pid> <name>`,
 * read from /proc: a killed run must not leave one behind (e.g. a local D1's workerd).
 */
function processesHolding(...dirs: string[]): string[] {
  const held: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    const holds = fds.some((fd) => {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
        return dirs.some((dir) => target === dir || target.startsWith(`${dir}/`))
      } catch {
        return false
      }
    })
    if (holds) held.push(`${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`)
  }
  return held
}

/** The folder a file database (SQLite file, local D1's state) lives in. */
function localFolder(url: string): string[] {
  if (url.startsWith('file:')) return [dirname(url.slice('file:'.length))]
  if (url.startsWith('d1://local/')) return [url.slice('d1://local/'.length)]
  return []
}

/** A migrated database of `engine` with the demo data, closed, to be copied for each run. */
const templates = new Map<EngineName, Promise<string>>()
function template(engine: EngineName): Promise<string> {
  let url = templates.get(engine)
  if (url === undefined) {
    url = (async () => {
      const db = await openTestDatabase(fileCleanup, engine)
      await db.close()
      return db.url
    })()
    templates.set(engine, url)
  }
  return url
}

/**
 * A copy of the template with an earlier backup of its own (dated 2026-01-21): rotation is per
 * source, so the backup must come from this copy for `--keep 1` to delete it.
 */
async function createWorkspace(t: TestContext, engine: EngineName): Promise<{ dir: string; url: string; before: { state: LiveState; ids: string[]; names: Set<string> } }> {
  const dir = tempDir(t, 'ipm-crash-')
  const url = await copyTestDatabase(t, engine, await template(engine))
  const earlier = await backupSystem(t, { databaseUrl: url, backupDir: join(dir, 'backups'), maxBackups: 1, now: steppingClock() }).create()
  assert.ok(earlier.metadata.verified)
  return { dir, url, before: { state: liveState(engine, url), ids: [earlier.metadata.id], names: new Set(readdirSync(join(dir, 'backups'))) } }
}

/** The assertions after a death: nothing partial listed, live database sound and unchanged, next create cleans up (returns what it removed). */
async function assertRecovered(t: TestContext, engine: EngineName, dir: string, url: string, before: { state: LiveState; ids: string[] }, what: string): Promise<string[]> {
  const backupDir = join(dir, 'backups')
  const system = backupSystem(t, { databaseUrl: url, backupDir, maxBackups: 1 })
  const listed = (await system.list()).backups
  assert.ok(listed.length >= 1, `${what}: the earlier backup is still listed`)
  for (const backup of listed) {
    assert.equal(backup.problem, undefined, `${what}: ${backup.id} is listed whole`)
    assert.ok(before.ids.includes(backup.id) || backup.id > before.ids[0]!, `${what}: ${backup.id}`)
    const report = await system.verify(backup.id)
    assert.ok(report.ok, `${what}: listed ${backup.id} passes verify: ${JSON.stringify(report.checks.filter((c) => c.status !== 'ok'))}`)
  }
  // create never writes the live database: the same contents (a SQLite file: byte for byte), and sound.
  assert.deepEqual(liveState(engine, url), before.state, `${what}: the live database is unchanged`)

  const next = await system.create()
  assert.ok(next.metadata.verified, what)
  const names = readdirSync(backupDir)
  assert.deepEqual(names.filter((name) => name.includes('.tmp-')), [], `${what}: no temporary leftovers after the next create`)
  for (const name of names.filter((n) => n.endsWith('.tar.gz'))) {
    assert.ok(existsSync(join(backupDir, name.replace(/\.tar\.gz$/, '.metadata.json'))), `${what}: ${name} has its metadata`)
  }
  assert.deepEqual((await system.list()).backups.map((b) => b.id), [next.metadata.id], `${what}: rotation kept the new backup only`)
  assert.deepEqual(processesHolding(dir, ...localFolder(url)), [], `${what}: no process left holding the workspace's files`)
  const history = await readHistory(backupDir)
  assert.deepEqual(history.warnings, [], what)
  assert.equal(history.records.at(-1)?.result, 'success', what)
  return next.cleaned
}

/** The template moved on after its backup (old ≠ backup): the folder of backups, the backup's id, the moved-on database. */
async function restorePlan(t: TestContext, engine: EngineName): Promise<{ from: string; url: string; id: string }> {
  const from = tempDir(t, 'ipm-crash-plan-')
  const url = await copyTestDatabase(t, engine, await template(engine))
  const created = await backupSystem(t, { databaseUrl: url, backupDir: join(from, 'backups'), maxBackups: 5, now: steppingClock() }).create()
  const db = await openDatabase(url, { environment: resolveEnvironment({}) })
  try {
    await db.sql.query(`UPDATE "Client" SET "firstName" = 'Modifié après le backup'`)
    await db.sql.query(`DELETE FROM "Dossier" WHERE "id" = (SELECT min("id") FROM "Dossier")`)
  } finally {
    await db.close()
  }
  return { from, url, id: created.metadata.id }
}

/** A copy of the plan's backups and of its moved-on database. */
async function restoreWorkspace(t: TestContext, engine: EngineName, plan: { from: string; url: string }): Promise<{ dir: string; url: string }> {
  const dir = tempDir(t, 'ipm-crash-')
  cpSync(join(plan.from, 'backups'), join(dir, 'backups'), { recursive: true })
  return { dir, url: await copyTestDatabase(t, engine, plan.url) }
}

/** After a restore died: the live database is whole, old or new; every listed backup verifies; create and restore work again and leave nothing behind. */
async function assertRestoreRecovered(
  t: TestContext,
  engine: EngineName,
  { dir, url }: { dir: string; url: string },
  plan: { id: string; old: DatabaseContents['tables']; restored: DatabaseContents['tables'] },
  deadPid: number,
  what: string,
): Promise<'old' | 'new'> {
  // A killed run's own tables (D1's staging tables) aside: the next restore removes them, checked below.
  const contents = databaseContents(url).tables
  const seen = JSON.stringify(contents) === JSON.stringify(plan.old) ? 'old' : JSON.stringify(contents) === JSON.stringify(plan.restored) ? 'new' : undefined
  assert.ok(seen !== undefined, `${what}: the live database is the old one or the restored one, whole: ${JSON.stringify(contents)}`)
  if (engine === 'sqlite') {
    const live = url.replace(/^file:/, '')
    if (existsSync(`${live}.before-restore`)) assert.deepEqual(databaseContents(`file:${live}.before-restore`).tables, plan.old, `${what}: the safety copy is the old database, whole`)
  }
  const system = backupSystem(t, { databaseUrl: url, backupDir: join(dir, 'backups'), maxBackups: 5 })
  const listed = (await system.list()).backups
  assert.ok(listed.some((b) => b.id === plan.id), `${what}: the backup is still listed`)
  // Besides it, at most the safety export of a server target, complete.
  for (const backup of listed) assert.ok((await system.verify(backup.id)).ok, `${what}: ${backup.id} passes verify`)
  const next = await system.create()
  assert.ok(next.metadata.verified, what)
  assert.deepEqual(readdirSync(join(dir, 'backups')).filter((n) => n.includes('.tmp-')), [], `${what}: no leftovers in the backup folder`)
  const again = await cli(['restore', plan.id, '--yes', '--force', '--quiet'], dir, url)
  assert.equal(again.status, 0, `${what}: a new restore succeeds: ${again.stderr}`)
  assert.deepEqual(databaseContents(url), { tables: plan.restored, toolkitTables: [] }, `${what}: a new restore gives the backup's database, and nothing of the toolkit's is left in it`)
  assert.deepEqual(readdirSync(join(dir, 'tmp')).filter((n) => n.startsWith('ipm-')), [], `${what}: the new restore swept the dead one's scratch folder and removed its own`)
  if (engine === 'sqlite') {
    const live = url.replace(/^file:/, '')
    assert.deepEqual(readdirSync(join(live, '..')).filter((n) => n.includes('.tmp-')), [], `${what}: nothing temporary left beside the database after the new restore`)
  }
  if (engine === 'postgres') assert.deepEqual(await toolkitDatabases([deadPid, again.pid]), [], `${what}: no scratch database left on the server`)
  assert.deepEqual(processesHolding(dir, ...localFolder(url)), [], `${what}: no process left holding the workspace's files`)
  return seen
}

for (const engine of ENGINES) {
  describe(`${engine}: crash safety`, { skip: JUDGE[engine] }, () => {
    test(`${engine}: create killed by SIGKILL at ${engine === ENGINES[0] ? 'every named step' : 'each step of its snapshot and exports'}: nothing partial listed, live database unchanged, the next create cleans up`, async (t) => {
      // Every step compressed; uncompressed, the steps whose code differs (a folder renamed into place) —
      // on the first engine of the list only: publishing a folder is the same whatever the engine.
      const uncompressed = engine !== ENGINES[0] ? [] : ['create:after-snapshot', 'create:before-metadata', 'create:before-verify', 'create:before-publish', 'create:after-publish']
      // The off-site steps run only with --offsite: backup-offsite.test.ts kills at them. After the
      // exports, create runs the same code whatever the engine (archive, verify, publish, rotation,
      // history): the other engines are killed only where their own code runs or has just run.
      const engineSteps = ['create:start', 'create:after-snapshot', 'create:after-sql-export', 'create:mid-csv', 'create:before-metadata']
      const steps = CREATE_STEPS.filter((step) => step.startsWith('create:') && (engine === ENGINES[0] || engineSteps.includes(step)))
      const cases = [...steps.map((step) => ({ step, compress: true })), ...uncompressed.map((step) => ({ step, compress: false }))]
      assert.equal(cases.length, (engine === ENGINES[0] ? 12 : engineSteps.length) + uncompressed.length)
      // An engine whose snapshot is its SQL export (PostgreSQL's database.sql) writes no export.sql.
      const unreached = engineNamed(engine).restoreArtefact === DATABASE_SQL_FILE ? ['create:after-sql-export'] : []
      // Two at a time: each run has its own folder and database.
      const deaths = new Map<string, Awaited<ReturnType<typeof createWorkspace>> & { death: Death }>()
      for (let i = 0; i < cases.length; i += 2) {
        await Promise.all(
          cases.slice(i, i + 2).map(async ({ step, compress }) => {
            const workspace = await createWorkspace(t, engine)
            const death = await cli(['--quiet', '--keep', '1', ...(compress ? [] : ['--no-compress'])], workspace.dir, workspace.url, { env: { IPM_BACKUP_KILL_AT: step } })
            deaths.set(`${step}${compress ? '' : ' --no-compress'}`, { ...workspace, death })
          }),
        )
      }
      for (const [what, { dir, url, before, death }] of deaths) {
        if (unreached.includes(what)) {
          assert.equal(death.status, 0, `${what} is not a step of a ${engine} backup: the run ends normally: ${death.stderr}`)
          continue
        }
        assert.deepEqual([death.status, death.signal], [null, 'SIGKILL'], `${what} died by SIGKILL: ${death.stderr}`)
        // What the dead run left: its temporary names, and an archive whose metadata was never written.
        const backupDir = join(dir, 'backups')
        const left = readdirSync(backupDir).filter((name) => !before.names.has(name) && (name.includes('.tmp-') || (name.endsWith('.tar.gz') && !existsSync(join(backupDir, name.replace(/\.tar\.gz$/, '.metadata.json'))))))
        if (what === 'create:before-publish') assert.ok(left.some((name) => /^backup-[^.]*\.tmp-\d+-/.test(name)), `${what} left its staging folder: ${left}`)
        if (what === 'create:after-link') assert.ok(left.some((name) => /^backup-[^.]*\.tar\.gz$/.test(name)), `${what} left an archive without metadata: ${left}`)
        if (what === 'create:before-publish' || what === 'create:after-link') {
          // As the user sees it: `list` shows the earlier backup only.
          assert.deepEqual(await listCli(dir, url), before.ids, `${what}: advanced-backup list`)
        }
        const cleaned = await assertRecovered(t, engine, dir, url, before, what)
        assert.deepEqual(cleaned.sort(), left.sort(), `${what}: the next create removed exactly the dead run's leftovers`)
      }
    })

    test(`${engine}: restore killed by SIGKILL at each of its steps: the live database is the old one before the replace, the restored one after, whole either way`, async (t) => {
      assert.deepEqual(RESTORE_STEPS, ['restore:verify', 'restore:confirm', 'restore:safety-copy', 'restore:replace', 'restore:mid-replace', 'restore:check', 'restore:report'])
      const plan = await restorePlan(t, engine)
      const old = databaseContents(plan.url).tables
      // The restored database, as a restore that is not killed leaves it.
      const reference = await restoreWorkspace(t, engine, plan)
      const done = await cli(['restore', plan.id, '--yes', '--force', '--quiet'], reference.dir, reference.url)
      assert.equal(done.status, 0, done.stderr)
      const restored = databaseContents(reference.url).tables
      assert.notDeepEqual(restored, old)
      assert.deepEqual(Object.keys(restored), Object.keys(old))

      const runs = []
      for (let i = 0; i < RESTORE_STEPS.length; i += 2) {
        runs.push(
          ...(await Promise.all(
            RESTORE_STEPS.slice(i, i + 2).map(async (step) => {
              const workspace = await restoreWorkspace(t, engine, plan)
              return { step, workspace, death: await cli(['restore', plan.id, '--yes', '--force', '--quiet'], workspace.dir, workspace.url, { env: { IPM_BACKUP_KILL_AT: step } }) }
            }),
          )),
        )
      }
      for (const { step, workspace, death } of runs) {
        assert.deepEqual([death.status, death.signal], [null, 'SIGKILL'], `${step} died by SIGKILL: ${death.stderr}`)
        const expected = step === 'restore:check' || step === 'restore:report' ? 'new' : 'old'
        assert.equal(await assertRestoreRecovered(t, engine, workspace, { id: plan.id, old, restored }, death.pid, step), expected, step)
      }
    })
  })
}

describe('sqlite: crash safety at random instants', { skip: ENGINES.includes('sqlite') ? JUDGE.sqlite : 'TEST_ENGINES leaves SQLite out' }, () => {
  test('create killed by a timer at random instants, 10 times: the same guarantees', async (t) => {
    const measured = await createWorkspace(t, 'sqlite')
    const measure = await cli(['--quiet', '--keep', '1'], measured.dir, measured.url)
    assert.equal(measure.status, 0, measure.stderr)
    let killed = 0
    for (let i = 0; i < 10; i++) {
      // Spread over the run's length (80 % of it: a later run may be a little faster): each tenth, at a random point inside.
      const delay = Math.round(((i + Math.random()) / 10) * measure.ms * 0.8)
      const { dir, url, before } = await createWorkspace(t, 'sqlite')
      const death = await cli(['--quiet', '--keep', '1'], dir, url, { killAfterMs: delay })
      const what = `killed after ${delay} ms of ~${Math.round(measure.ms)} ms`
      if (death.signal === 'SIGKILL') killed++
      else assert.equal(death.status, 0, `${what}: ${death.stderr}`)
      await assertRecovered(t, 'sqlite', dir, url, before, what)
    }
    assert.ok(killed >= 3, `${killed} of 10 runs were killed`)
  })

  test('restore killed by a timer at random instants, 4 times: the live database is whole, old or new, and a new restore succeeds', async (t) => {
    const plan = await restorePlan(t, 'sqlite')
    const old = databaseContents(plan.url).tables
    const measured = await restoreWorkspace(t, 'sqlite', plan)
    const measure = await cli(['restore', plan.id, '--yes', '--force', '--quiet'], measured.dir, measured.url)
    assert.equal(measure.status, 0, measure.stderr)
    const restored = databaseContents(measured.url).tables
    let killed = 0
    for (let i = 0; i < 4; i++) {
      const delay = Math.round(((i + Math.random()) / 4) * measure.ms * 0.8)
      const workspace = await restoreWorkspace(t, 'sqlite', plan)
      const death = await cli(['restore', plan.id, '--yes', '--force', '--quiet'], workspace.dir, workspace.url, { killAfterMs: delay })
      const what = `restore killed after ${delay} ms of ~${Math.round(measure.ms)} ms`
      if (death.signal === 'SIGKILL') killed++
      else assert.equal(death.status, 0, `${what}: ${death.stderr}`)
      await assertRestoreRecovered(t, 'sqlite', workspace, { id: plan.id, old, restored }, death.pid, what)
    }
    assert.ok(killed >= 2, `${killed} of 4 runs were killed`)
  })
})
