/**
 * The crontab lines as documented in docs/cron.md, run for real: the exact command of each documented line, with only
 * the project path, the backup directory and the log path replaced by test ones, in a shell as bare as
 * cron's (`env -i`, HOME, a minimal PATH, DATABASE_URL; stdin from /dev/null, no terminal).
 */
import { test } from 'node:test'
import { randomBytes } from 'node:crypto'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { REPO_ROOT } from './helpers/cli.ts'
import { openTestDatabase, tempDir } from './helpers/databases.ts'

const npmScripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts

/** The one place the crontab is documented: the crontab blocks of docs/cron.md. */
function documentedCrontab(): { file: string; lines: string[] } {
  const file = join(REPO_ROOT, 'docs', 'cron.md')
  const text = readFileSync(file, 'utf8')
  const blocks = [...text.matchAll(/^```crontab\s*\n([\s\S]*?)^```/gm)].map((match) => match[1]!)
  const lines = blocks.flatMap((block) => block.split('\n')).map((line) => line.trim())
  return { file, lines }
}

const CRON_FIELDS = /^((?:[\d*/,-]+|@\w+)\s+){5}/

/** The command part of the documented job line that runs `npm run … <script>`. */
function jobCommand(lines: string[], script: string): string {
  const jobs = lines.filter((line) => !line.startsWith('#') && CRON_FIELDS.test(line))
  const pattern = new RegExp(`\\bnpm run(?:\\s+(?:--silent|-s))?\\s+${script.replace(':', '\\:')}(\\s|$)`)
  const matching = jobs.filter((line) => pattern.test(line))
  assert.equal(matching.length, 1, `exactly one documented crontab line runs npm run ${script}`)
  return matching[0]!.replace(CRON_FIELDS, '')
}

interface Placed {
  command: string
  log: string
  backupDir: string
}

/** Replaces the documented project path, backup directory and log path with test ones. */
function place(command: string, root: string): Placed {
  const project = /\bcd\s+(\S+)\s*&&/.exec(command)?.[1]
  const log = /\s>>\s*(\S+)/.exec(command)?.[1]
  const backupDir = /\s--dir[\s=](\S+)/.exec(command)?.[1]
  assert.ok(project, 'the line cds into the project (npm run needs package.json, the tools read .env there)')
  assert.ok(log, 'the line appends to a log file (>> <path>)')
  assert.ok(backupDir, 'the line names its backup directory (--dir), outside the code checkout')
  assert.match(command, /2>&1/, 'errors go to the log too')
  assert.match(command, /--quiet/)
  const placed = { command, log: join(root, 'log', 'backup.log'), backupDir: join(root, 'backups') }
  mkdirSync(dirname(placed.log), { recursive: true })
  placed.command = command.replaceAll(log, placed.log).replaceAll(backupDir, placed.backupDir).replaceAll(project, REPO_ROOT)
  return placed
}

/** Runs a command the way cron does: /bin/sh -c, an empty environment but what is given, no terminal. */
function runLikeCron(command: string, env: { HOME: string; DATABASE_URL: string } & Record<string, string>) {
  const path = `${dirname(process.execPath)}:/usr/bin:/bin`
  const result = spawnSync('env', ['-i', `PATH=${path}`, ...Object.entries(env).map(([name, value]) => `${name}=${value}`), '/bin/sh', '-c', command], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** The .env of an installation holds the key and the off-site URL (docs/cron.md); here, a key and a folder as off-site storage. */
function installationSecrets(root: string) {
  return { BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64'), BACKUP_OFFSITE_URL: join(root, 'offsite') }
}

const backupsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((name) => /^backup-[\dT-]+(\.tar\.gz(\.enc)?)?$/.test(name)) : [])

test('the crontab is documented in one place (docs/cron.md), with a PATH line that cron needs for node', () => {
  const { lines } = documentedCrontab()
  assert.ok(lines.some((line) => /^PATH=\S*\/usr\/bin/.test(line)), 'a PATH= line')
  const backupLine = jobCommand(lines, 'backup')
  if (npmScripts['backup:check'] !== undefined) jobCommand(lines, 'backup:check')
  // The other docs link to it instead of repeating it (the README's example is checked equal in surface-docs).
  for (const doc of ['docs/ADVANCED_FEATURES_DATABASES.md', 'docs/SYNTHESE_GESTION_DATABASES.md', 'docs/MIGRATION_DATABASES_GUIDE.md']) {
    const text = readFileSync(join(REPO_ROOT, doc), 'utf8')
    assert.ok(!text.includes(backupLine), `${doc} repeats the crontab line instead of linking docs/cron.md`)
    if (!doc.includes('MIGRATION')) assert.match(text, /\]\((?:\.\/)?cron\.md(?:#[\w-]*)?\)/, `${doc} links cron.md`)
  }
})

test('the documented nightly backup line succeeds silently in a bare cron-like shell, and a failure leaves one Error line in the log', async (t) => {
  const root = tempDir(t, 'ipm-cron-')
  const db = await openTestDatabase(t, 'sqlite')
  const home = join(root, 'home')
  mkdirSync(home)
  const placed = place(jobCommand(documentedCrontab().lines, 'backup'), root)

  const secrets = installationSecrets(root)
  const offsite = secrets.BACKUP_OFFSITE_URL
  const ok = runLikeCron(placed.command, { HOME: home, DATABASE_URL: db.url, ...secrets })
  assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}${existsSync(placed.log) ? readFileSync(placed.log, 'utf8') : ''}`)
  assert.equal(ok.stdout, '', 'nothing on stdout: cron sends no mail')
  assert.equal(ok.stderr, '', 'nothing on stderr: cron sends no mail')
  assert.ok(existsSync(placed.log), 'the log file exists')
  assert.equal(readFileSync(placed.log, 'utf8'), '', 'nothing logged on success')
  assert.equal(backupsIn(placed.backupDir).filter((name) => name.endsWith('.tar.gz.enc')).length, 1, 'an encrypted backup appeared in the backup directory')
  assert.equal(backupsIn(placed.backupDir).filter((name) => name.endsWith('.tar.gz')).length, 0, 'no plaintext archive')
  assert.equal(backupsIn(offsite).filter((name) => name.endsWith('.tar.gz.enc')).length, 1, 'and its copy off-site')

  const failed = runLikeCron(placed.command, { HOME: home, DATABASE_URL: `file:${join(root, 'missing.db')}`, ...secrets })
  assert.notEqual(failed.status, 0)
  assert.equal(failed.stdout + failed.stderr, '')
  const log = readFileSync(placed.log, 'utf8')
  const errors = log.split('\n').filter((line) => line.startsWith('Erreur : '))
  assert.equal(errors.length, 1, log)
  assert.match(errors[0]!, /missing\.db/)
  assert.equal(backupsIn(placed.backupDir).filter((name) => name.endsWith('.tar.gz.enc')).length, 1, 'no new backup')
})

/**
 * The documented nightly backup line, then the documented line of `job`, both as cron runs them in a
 * fresh installation: the job must succeed silently (nothing on stdout/stderr, nothing in its log).
 */
async function afterNightlyBackup(t: import('node:test').TestContext, job: string) {
  const root = tempDir(t, 'ipm-cron-job-')
  const db = await openTestDatabase(t, 'sqlite')
  const home = join(root, 'home')
  mkdirSync(home)
  const { lines } = documentedCrontab()
  const backup = place(jobCommand(lines, 'backup'), root)
  const placed = place(jobCommand(lines, job), root)
  const env = { HOME: home, DATABASE_URL: db.url, ...installationSecrets(root) }
  assert.equal(runLikeCron(backup.command, env).status, 0, readFileSync(backup.log, 'utf8'))
  const result = runLikeCron(placed.command, env)
  assert.equal(result.status, 0, readFileSync(placed.log, 'utf8'))
  assert.equal(result.stdout + result.stderr, '')
  assert.equal(readFileSync(placed.log, 'utf8'), '')
  return { lines, placed }
}

test('the documented freshness check line passes silently after the nightly backup', { skip: npmScripts['backup:check'] === undefined && 'backup:check is not an npm script yet' }, async (t) => {
  await afterNightlyBackup(t, 'backup:check')
})

test('the documented weekly drill line restores the nightly backup into a scratch database, silently', { skip: npmScripts['backup:drill'] === undefined && 'backup:drill is not an npm script yet' }, async (t) => {
  const { lines, placed: drill } = await afterNightlyBackup(t, 'backup:drill')
  assert.match(lines.find((line) => line.includes('backup:drill'))!, /^\S+\s+\S+\s+\*\s+\*\s+0\s/, 'weekly (on Sundays)')
  const history = readFileSync(join(drill.backupDir, 'history.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { operation: string; result: string; rtoMs?: number })
  const last = history.at(-1)!
  assert.equal(last.operation, 'drill')
  assert.equal(last.result, 'success')
  assert.equal(typeof last.rtoMs, 'number')
})
