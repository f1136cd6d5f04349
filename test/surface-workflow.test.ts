import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { validateWorkflow } from '@action-validator/core'
import { REPO_ROOT, runScript } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'

const WORKFLOW_PATH = join(REPO_ROOT, '.github', 'workflows', 'database-health.yml')
const source = readFileSync(WORKFLOW_PATH, 'utf8')
const npmScripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts

interface Step {
  name?: string
  uses?: string
  run?: string
  if?: string
  with?: Record<string, unknown>
  'continue-on-error'?: unknown
}
interface Workflow {
  on: { schedule?: { cron: string }[]; workflow_dispatch?: unknown }
  jobs: Record<string, { 'runs-on': string; services?: Record<string, { image: string; options?: string }>; env?: Record<string, string>; steps: Step[] }>
}

const workflow = parse(source) as Workflow
const job = workflow.jobs.health!
const runSteps = job.steps.filter((step) => step.run !== undefined)

/** `npm run <name>` (with optional -s/--silent) wherever it appears in a run script. */
function npmRunNames(script: string): string[] {
  return [...script.matchAll(/\bnpm run(?:\s+(?:--silent|-s))?\s+([a-z][\w:.-]*)/g)].map((match) => match[1]!)
}

test('the workflow passes action-validator with no error', () => {
  assert.deepEqual(validateWorkflow(source).errors, [])
})

test('action-validator fails a broken copy of the workflow', () => {
  const broken = source.replace('runs-on: ubuntu-latest', 'runs-onn: ubuntu-latest')
  const badCron = source.replace("cron: '0 */6 * * *'", "cron: 'every six hours'")
  assert.notEqual(broken, source)
  assert.notEqual(badCron, source)
  assert.ok(validateWorkflow(broken).errors.length > 0)
  assert.ok(validateWorkflow(badCron).errors.length > 0)
})

test('the workflow runs every 6 hours and on demand, on ubuntu-latest with a PostgreSQL 15 service that has a health check', () => {
  assert.deepEqual(workflow.on.schedule, [{ cron: '0 */6 * * *' }])
  assert.ok('workflow_dispatch' in workflow.on)
  assert.equal(job['runs-on'], 'ubuntu-latest')
  const postgres = Object.values(job.services ?? {}).find((service) => service.image.startsWith('postgres:'))
  assert.ok(postgres, 'a postgres service container')
  assert.equal(postgres.image, 'postgres:15')
  assert.match(postgres.options ?? '', /--health-cmd "?pg_isready/)
  assert.match(job.env?.ALERT_WEBHOOK_URL ?? '', /^\$\{\{ secrets\.ALERT_WEBHOOK_URL \}\}$/)
  const node = job.steps.find((step) => step.uses?.startsWith('actions/setup-node@'))
  assert.equal(node?.with?.['node-version'], 20)
  assert.equal(node?.with?.cache, 'npm')
})

test('every step calls npm scripts that exist, in the order: npm ci, prepare PostgreSQL, test:db, dashboard, backup, verify, check, drill, restore rehearsal', () => {
  const names = runSteps.flatMap((step) => npmRunNames(step.run!))
  assert.ok(names.length >= 6)
  for (const name of names) assert.ok(npmScripts[name] !== undefined, `npm run ${name}: no such script in package.json`)
  for (const step of runSteps) assert.doesNotMatch(step.run!, /\bnpx tsx\b|\btsx scripts\//, `"${step.name}" calls a script directly, not through npm`)
  const all = runSteps.map((step) => step.run!).join('\n')
  const order = ['npm ci', 'npm run db:migrate -- --database "$POSTGRES_URL"', 'npm run db:seed -- --database "$POSTGRES_URL"', 'npm run test:db', 'npm run dashboard -- ', 'npm run backup -- --quiet', 'npm run backup:verify -- ', 'npm run backup:check -- ', 'npm run backup:drill -- ', 'npm run backup:restore -- ']
  let at = -1
  for (const fragment of order) {
    const next = all.indexOf(fragment, at + 1)
    assert.ok(next > at, `"${fragment}" comes after the previous step`)
    at = next
  }
  assert.match(all, /npm run dashboard -- .*--alert-slow \d+/)
  assert.match(all, /npm run backup:restore -- .*--dry-run/, 'the restore in CI is a rehearsal')
  assert.match(all, /npm run backup:drill -- --dir backups\/sqlite\n/, 'CI drills the SQLite backup it made')
  assert.match(all, /npm run backup:drill -- --dir backups\/postgres --database "\$POSTGRES_URL"/, 'CI drills the PostgreSQL backup it made, on its server')
})

test('no check can fail silently: no continue-on-error, and every run script is valid bash', () => {
  for (const step of job.steps) assert.equal(step['continue-on-error'], undefined, `"${step.name}" has continue-on-error`)
  assert.doesNotMatch(source, /continue-on-error|\|\|\s*true\b/)
  for (const step of runSteps) {
    // GitHub runs `run` with `bash -e {0}`; -n checks the syntax without running anything.
    const check = spawnSync('bash', ['-n'], { input: step.run!, encoding: 'utf8' })
    assert.equal(check.status, 0, `"${step.name}": ${check.stderr}`)
  }
})

test('the report, the metrics and the backups are uploaded even when a step failed', () => {
  const upload = job.steps.find((step) => step.uses?.startsWith('actions/upload-artifact@'))
  assert.ok(upload, 'an upload-artifact step')
  assert.equal(upload.if, 'always()')
  const paths = String(upload.with?.path).split('\n').map((line) => line.trim()).filter(Boolean)
  for (const expected of ['RESULTATS_TESTS_DATABASES.md', 'RESULTATS_TESTS_DATABASES.json', 'performance-metrics*.json', 'performance-metrics*.prom', 'backups/']) {
    assert.ok(paths.includes(expected), `uploads ${expected}`)
  }
})

test('the verify step reads the id where backup:list --json puts it', (t) => {
  const dir = tempDir(t, 'ipm-surface-')
  const result = runScript('scripts/advanced-backup.ts', ['list', '--json', '--dir', dir])
  assert.equal(result.status, 0, result.stderr)
  const listing = JSON.parse(result.stdout) as { backups?: { id: string }[] }
  assert.ok(Array.isArray(listing.backups))
  assert.match(source, /jq -r '\.backups\[0\]\.id'/)
})

test('a windows-latest job runs npm ci, the SQLite tests, a backup + verify + dry-run restore, and the PowerShell menu with scripted input, failing on a non-zero exit', () => {
  const windows = workflow.jobs.windows!
  assert.equal(windows['runs-on'], 'windows-latest')
  const steps = windows.steps.filter((step) => step.run !== undefined).map((step) => step.run!)
  const all = steps.join('\n')
  let at = -1
  for (const fragment of ['npm ci', 'npm run test:db:sqlite', 'npm run backup -- ', 'npm run backup:verify -- ', 'npm run backup:restore -- ', 'pwsh -NoProfile -File ./demo-databases.ps1']) {
    const next = all.indexOf(fragment, at + 1)
    assert.ok(next > at, `"${fragment}" comes after the previous step`)
    at = next
  }
  assert.match(all, /npm run backup:restore -- .*--dry-run/)
  assert.match(all, /"1`n0`n" \| pwsh -NoProfile -File \.\/demo-databases\.ps1/, 'option 1, then 0')
  for (const name of steps.flatMap(npmRunNames)) assert.ok(npmScripts[name] !== undefined, `npm run ${name}: no such script`)
  // Every native command's exit code is checked: pwsh does not stop on one by itself.
  for (const script of steps.filter((s) => s.includes('\n'))) {
    const commands = script.split('\n').filter((line) => /^\s*(npm run (?!--silent)|"1`n0`n" \| pwsh)/.test(line)).length
    const checks = script.split('\n').filter((line) => line.includes('if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }')).length
    assert.equal(checks, commands, script)
  }
  assert.ok('workflow_dispatch' in workflow.on)
})
