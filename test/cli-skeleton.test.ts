/**
 * What every tool gets from the one CLI skeleton (scripts/lib/cli.ts) and the environment module:
 * no password in any output or file, defaults that follow the project and not the current
 * directory, and `monitor` as one run of create + stats + check with every option applied.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import Database from 'better-sqlite3'
import { REPO_ROOT, runScriptAsync, type CliResult } from './helpers/cli.ts'
import { defer, tempDir } from './helpers/databases.ts'

const SECRET = 'S3cr3t-Pa55w0rd'

/** A small SQLite database the backup tools accept. */
function appDatabase(dir: string): string {
  const path = join(dir, 'app.db')
  const db = new Database(path)
  db.exec("CREATE TABLE dossier (id INTEGER PRIMARY KEY, titre TEXT); INSERT INTO dossier (titre) VALUES ('un'), ('deux')")
  db.close()
  return path
}

/** Every file below `dir`, with its text. */
function filesBelow(dir: string): { path: string; text: string }[] {
  const found: { path: string; text: string }[] = []
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name)
    if (statSync(path).isFile()) found.push({ path, text: readFileSync(path).toString('latin1') })
  }
  return found
}

test('no tool prints or writes a password: every URL option of every tool, a bad scheme and an unreachable server', async (t) => {
  const dir = tempDir(t, 'ipm-secrets-')
  appDatabase(dir)
  const urls = [`mysql://u:${SECRET}@h/x`, `postgresql://u:${SECRET}@127.0.0.1:1/x`, `postgresql://u@127.0.0.1:1/x?password=${SECRET}`]
  const runs: [string, string[]][] = []
  for (const url of urls) {
    runs.push(
      ['scripts/advanced-backup.ts', ['--dir', 'backups', '--database', url]],
      ['scripts/advanced-backup.ts', ['--dir', 'backups', '--database', url, 'monitor']],
      ['scripts/advanced-backup.ts', ['--dir', 'backups', '--database', 'file:./app.db', 'restore', 'backup-2026-01-01T00-00-00', '--to', url, '--yes']],
      ['scripts/migrate-postgres-to-sqlite.ts', ['--from', url, '--to', 'out.db', '--yes']],
      ['scripts/migrate-postgres-to-sqlite.ts', ['--from', url, '--to', 'out.db', '--dry-run', '--json']],
      ['scripts/test-all-databases.ts', ['--database', url, '--report', 'report.md']],
      ['scripts/test-all-databases.ts', ['--only', 'postgres', '--postgres', url, '--report', 'report.md']],
      ['scripts/test-all-databases.ts', ['--only', 'd1', '--d1', url, '--report', 'report.md']],
      ['scripts/database-performance-dashboard.ts', ['--database', url, '--output', 'metrics.json']],
      ['prisma/seed.ts', ['--database', url]],
      ['prisma/migrate.ts', ['--database', url]],
    )
  }
  const results: [string, string[], CliResult][] = []
  // Two at a time: 33 short runs on a 2-core machine.
  for (let i = 0; i < runs.length; i += 2) {
    const batch = runs.slice(i, i + 2)
    const done = await Promise.all(batch.map(([script, args]) => runScriptAsync(script, args, { cwd: dir, env: { DATABASE_URL: 'file:./app.db', POSTGRES_URL: '', D1_URL: '', ALERT_WEBHOOK_URL: '' } })))
    done.forEach((result, k) => results.push([batch[k]![0], batch[k]![1], result]))
  }
  for (const [script, args, result] of results) {
    const where = `${script} ${args.join(' ').replaceAll(SECRET, '<secret>')}`
    assert.notEqual(result.status, null, `${where} was killed`)
    assert.ok(!result.stdout.includes(SECRET), `${where}: password on stdout:\n${result.stdout.replaceAll(SECRET, '<SECRET>')}`)
    assert.ok(!result.stderr.includes(SECRET), `${where}: password on stderr:\n${result.stderr.replaceAll(SECRET, '<SECRET>')}`)
  }
  for (const file of filesBelow(dir)) assert.ok(!file.text.includes(SECRET), `password written into ${file.path}`)
})

test('run from /, the defaults are the project\'s: the backup folder, the report and .env; a path the user gives is taken from /', async (t) => {
  const dir = tempDir(t, 'ipm-from-root-')
  const database = appDatabase(dir)
  const env = { DATABASE_URL: `file:${database}`, ALERT_WEBHOOK_URL: '', IPM_BACKUP_KILL_AT: '' }
  const created = await runScriptAsync('scripts/advanced-backup.ts', ['--json'], { cwd: '/', env })
  assert.equal(created.status, 0, created.stderr)
  const { metadata, path } = JSON.parse(created.stdout) as { metadata: { id: string }; path: string }
  defer(t, () => {
    rmSync(path, { recursive: true, force: true })
    rmSync(path.replace(/\.tar\.gz$/, '.metadata.json'), { force: true })
  })
  assert.equal(path.startsWith(join(REPO_ROOT, 'backups') + '/'), true, path)
  assert.equal(existsSync('/backups'), false, 'nothing was written under /')
  const listed = await runScriptAsync('scripts/advanced-backup.ts', ['list', '--json'], { cwd: '/', env })
  assert.equal(listed.status, 0, listed.stderr)
  assert.ok((JSON.parse(listed.stdout) as { backups: { id: string }[] }).backups.some((b) => b.id === metadata.id))
  // A folder the user names is taken from where they stand.
  const named = await runScriptAsync('scripts/advanced-backup.ts', ['list', '--dir', 'backups'], { cwd: dir, env })
  assert.equal(named.status, 0, named.stderr)
  assert.match(named.stdout, /Aucun backup|No backup|aucun backup/i)
  // The health report: --show-report reads the project's report, whatever the current directory.
  const [fromRoot, fromProject] = await Promise.all([
    runScriptAsync('scripts/test-all-databases.ts', ['--show-report', '--json'], { cwd: '/' }),
    runScriptAsync('scripts/test-all-databases.ts', ['--show-report', '--json'], { cwd: REPO_ROOT }),
  ])
  assert.deepEqual(fromRoot, fromProject)
  assert.ok(!fromRoot.stderr.includes(' /RESULTATS_TESTS_DATABASES'), fromRoot.stderr)
})

test('npm run backup:monitor -- --dir X: create, stats and check all use X, in one run', async (t) => {
  const dir = tempDir(t, 'ipm-monitor-')
  const database = appDatabase(dir)
  const backups = join(dir, 'X')
  const before = readdirSync(join(REPO_ROOT, 'backups')).sort()
  const result = await new Promise<CliResult>((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'backup:monitor', '--', '--dir', backups, '--database', `file:${database}`, '--json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ALERT_WEBHOOK_URL: '', IPM_BACKUP_KILL_AT: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('close', (status, signal) => resolve({ status: status ?? -1, stdout, stderr: stderr + (signal ? `\nkilled by ${signal}` : '') }))
  })
  assert.equal(result.status, 0, result.stderr)
  const report = JSON.parse(result.stdout) as { create: { path: string; metadata: { id: string } }; stats: { count: number; newest: { id: string } }; check: { ok: boolean; backupDir: string } }
  assert.equal(report.create.path.startsWith(backups + '/'), true, report.create.path)
  assert.deepEqual([report.stats.count, report.stats.newest.id], [1, report.create.metadata.id])
  assert.deepEqual([report.check.ok, report.check.backupDir], [true, backups])
  assert.match(readFileSync(join(backups, 'history.jsonl'), 'utf8'), /"operation":"create"/)
  assert.deepEqual(readdirSync(join(REPO_ROOT, 'backups')).sort(), before, 'the default folder is untouched')
})
