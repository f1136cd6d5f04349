/**
 * `advanced-backup check` (alias 7), as cron runs it: exit 0 and silence when backups are healthy;
 * exit 1 and every reason when the newest verified backup is too old (or there is none), the last
 * run failed, or the size dropped; one alert per problem through notifyAlerts to ALERT_WEBHOOK_URL
 * (a real node:http server on 127.0.0.1), deduplicated by the state file beside the backups; a
 * channel's own failure is reported beside the reasons, never instead of them, never in the exit code.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { defer, tempDir } from './helpers/databases.ts'
import { REPO_ROOT, runScriptAsync, type CliResult } from './helpers/cli.ts'
import { backupSystem, steppingClock } from './helpers/backup.ts'
import { parseMaxAge } from '../scripts/lib/backup/catalog/check.ts'

/** Runs the CLI in `cwd` (backups in `cwd`/backups) without blocking this process (the webhook server lives here). */
function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', ...args], {
    cwd,
    env: { TZ: 'UTC', DATABASE_URL: 'file:./app.db', ALERT_WEBHOOK_URL: '', SLACK_WEBHOOK_URL: '', SMTP_URL: '', ALERT_EMAIL_TO: '', ALERT_STATE_FILE: '', IPM_BACKUP_KILL_AT: '', ...env },
  })
}

/** A folder with app.db: `rows` dossiers of ~200 bytes each. */
function workspace(t: import('node:test').TestContext, rows = 300): string {
  const dir = tempDir(t, 'ipm-check-')
  const db = new Database(join(dir, 'app.db'))
  db.exec('CREATE TABLE dossier (id INTEGER PRIMARY KEY, titre TEXT, notes TEXT)')
  const insert = db.prepare('INSERT INTO dossier (titre, notes) VALUES (?, ?)')
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(`Dossier ${i}`, `notes ${i} `.repeat(20))
  })()
  db.close()
  return dir
}

interface Hook {
  url: string
  requests: { method: string; path: string; headers: IncomingHttpHeaders; body: string }[]
}

/** A webhook on 127.0.0.1 (ephemeral port) answering `status`, recording every request. */
async function webhook(t: import('node:test').TestContext, status = 200): Promise<Hook> {
  const requests: Hook['requests'] = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => (body += chunk))
    request.on('end', () => {
      requests.push({ method: request.method!, path: request.url!, headers: request.headers, body })
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(t, () => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/secret-token`, requests }
}

test('healthy backups: check and 7 exit 0, --quiet prints nothing, --json prints the result object; the webhook is not called', async (t) => {
  const dir = workspace(t)
  const hook = await webhook(t)
  const created = await cli(['--quiet'], dir)
  assert.deepEqual([created.status, created.stderr], [0, ''])
  const [text, seven, quiet, json] = await Promise.all([
    cli(['check'], dir, { ALERT_WEBHOOK_URL: hook.url }),
    cli(['7'], dir),
    cli(['check', '--quiet'], dir, { ALERT_WEBHOOK_URL: hook.url }),
    cli(['check', '--json'], dir),
  ])
  assert.equal(text.status, 0, text.stderr)
  assert.match(text.stdout, /^✅ Backups en bonne santé: dernier backup vérifié backup-\S+, il y a (\d+h\d+m|(\d+m)?[\d.]+(ms|s)), dernière opération: create réussie\n$/)
  assert.equal(seven.status, 0)
  assert.match(seven.stdout, /^✅ Backups en bonne santé: /)
  assert.deepEqual([quiet.status, quiet.stdout, quiet.stderr], [0, '', ''])
  const result = JSON.parse(json.stdout)
  assert.equal(json.status, 0)
  assert.equal(result.ok, true)
  assert.deepEqual(result.problems, [])
  assert.equal(result.maxAgeMs, 26 * 3_600_000)
  assert.equal(result.maxShrinkPercent, 50)
  assert.equal(result.lastRun.operation, 'create')
  assert.equal(result.lastRun.result, 'success')
  assert.equal(hook.requests.length, 0)
})

test('no backup, or only old ones: exit 1 with the reason; --max-age accepts 26h, 90m, 2d', async (t) => {
  const dir = workspace(t)
  const [none, quiet, bad] = await Promise.all([cli(['check'], dir), cli(['check', '--quiet'], dir), cli(['check', '--max-age', 'soon'], dir)])
  assert.equal(none.status, 1)
  assert.match(none.stdout, /^❌ Backups en danger \(1 problème\)\n {3}✗ aucun backup dans .*backups\n$/)
  assert.deepEqual([quiet.status, quiet.stdout, quiet.stderr], [1, '', none.stdout])

  // A backup taken on 2026-01-21 (the clock of the library), checked today.
  const system = backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir: join(dir, 'backups'), now: steppingClock() })
  await system.create()
  const days = Math.ceil((Date.now() - Date.parse('2026-01-21T15:30:00Z')) / 86_400_000)
  // A folder that old also needs a recent restore drill: allowed as old here.
  const [old, enough] = await Promise.all([cli(['check'], dir), cli(['check', '--max-age', `${days}d`, '--max-drill-age', `${days}d`], dir)])
  assert.equal(old.status, 1)
  assert.match(old.stdout, /✗ le dernier backup vérifié \(backup-2026-01-21T15-30-00\) date de \d+h\d\dm, plus que --max-age 26h00m\n/)
  assert.equal(enough.status, 0, enough.stdout)
  // The library's clock has moved on a minute per call: the backup is a few minutes old for it.
  assert.equal((await system.check({ maxAgeMs: parseMaxAge('90m') })).ok, true)
  assert.deepEqual((await system.check({ maxAgeMs: parseMaxAge('1m') })).problems.map((p) => p.kind), ['stale'])
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /^Erreur : l’option --max-age <duration> refuse la valeur 'soon' : une durée comme 26h, 90m ou 2d est attendue\n/)

  assert.equal(parseMaxAge('26h'), 93_600_000)
  assert.equal(parseMaxAge('90m'), 5_400_000)
  assert.equal(parseMaxAge('2d'), 172_800_000)
  assert.equal(parseMaxAge('1.5h'), 5_400_000)
  for (const wrong of ['', 'h', '0h', '-1h', '26 hours', '1e9999d']) assert.equal(parseMaxAge(wrong), undefined, wrong)
})

test('a backup counts as verified when create verified it or a later verify succeeded, not after a failed verify', async (t) => {
  const dir = workspace(t)
  const backupDir = join(dir, 'backups')
  const clock = steppingClock()
  const system = (verifyIntegrity: boolean) => backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir, verifyIntegrity, compressionEnabled: false, now: clock })
  const { metadata } = await system(false).create()
  let result = await system(false).check()
  assert.deepEqual(result.problems.map((p) => p.kind), ['no-verified-backup'])
  assert.equal(result.problems[0]!.message, `aucun backup vérifié parmi les 1 de ${backupDir}`)
  assert.ok((await system(false).verify(metadata.id)).ok)
  result = await system(false).check()
  assert.deepEqual([result.ok, result.newestVerified?.id], [true, metadata.id])
  // Damaged since: the failed verify makes it unverified, and is the last run.
  const csv = join(backupDir, metadata.id, 'exports', 'dossier.csv')
  writeFileSync(csv, readFileSync(csv, 'utf8').replace('Dossier 1', 'Dossier 7'))
  assert.equal((await system(true).verify(metadata.id)).ok, false)
  result = await system(false).check()
  assert.deepEqual(result.problems.map((p) => p.kind), ['no-verified-backup', 'last-run-failed'])
  assert.match(result.problems[1]!.message, new RegExp(`^la dernière opération a échoué: verify ${metadata.id} du .*: vérification échouée : exports/dossier\\.csv modifié$`))

  // Verified at creation, damaged since: a failed verify takes precedence over the creation's verification.
  const other = join(dir, 'other-backups')
  const verifiedAtCreation = backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir: other, compressionEnabled: false, now: clock })
  const created = await verifiedAtCreation.create()
  assert.equal(created.metadata.verified, true)
  assert.equal((await verifiedAtCreation.check()).ok, true)
  const data = join(other, created.metadata.id, 'data.json')
  writeFileSync(data, readFileSync(data, 'utf8').replace('Dossier 1', 'Dossier 9'))
  assert.equal((await verifiedAtCreation.verify(created.metadata.id)).ok, false)
  assert.deepEqual((await verifiedAtCreation.check()).problems.map((p) => p.kind), ['no-verified-backup', 'last-run-failed'])
})

test('the last run failed: exit 1 with its error, until a run succeeds', async (t) => {
  const dir = workspace(t)
  const system = (db: string) => backupSystem(t, { databaseUrl: `file:${join(dir, db)}`, backupDir: join(dir, 'backups') })
  await system('app.db').create()
  await assert.rejects(system('missing.db').create())
  const check = await cli(['check', '--quiet'], dir)
  assert.equal(check.status, 1)
  assert.equal(check.stdout, '')
  assert.match(check.stderr, /^❌ Backups en danger \(1 problème\)\n {3}✗ la dernière opération a échoué: create du \d{4}-\d\d-\d\dT[\d:.]+Z: SQLite file:\/.*\/missing\.db : fichier de base introuvable\n$/)
  await system('app.db').create()
  assert.equal((await cli(['check', '--quiet'], dir)).status, 0)
})

test('the newest backup much smaller than the previous one: exit 1 beyond --max-shrink, compressed or not', async (t) => {
  const dir = workspace(t, 2000)
  const clock = steppingClock(new Date(Date.now() - 3_600_000).toISOString())
  const system = (compressionEnabled: boolean) => backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir: join(dir, 'backups'), compressionEnabled, now: clock })
  await system(false).create()
  const db = new Database(join(dir, 'app.db'))
  db.exec('DELETE FROM dossier WHERE id > 200; VACUUM')
  db.close()
  // Compressed this time: content sizes are compared, not the archive's.
  await system(true).create()
  const [check, json, allowed, wrong] = await Promise.all([cli(['check'], dir), cli(['check', '--json'], dir), cli(['check', '--max-shrink', '99'], dir), cli(['check', '--max-shrink', '150'], dir)])
  assert.equal(check.status, 1)
  assert.match(check.stdout, /^❌ Backups en danger \(1 problème\)\n {3}✗ le backup backup-\S+ \([\d.]+ KB\) est (8\d|9\d) % plus petit que le précédent backup-\S+ \([\d.]+ (KB|MB)\), plus que --max-shrink 50 %\n$/)
  const result = JSON.parse(json.stdout)
  assert.ok(result.sizeChange.percent < -80 && result.sizeChange.percent > -100, String(result.sizeChange.percent))
  assert.equal(allowed.status, 0, allowed.stdout)
  assert.equal(wrong.status, 2)
  // Growing back is never a problem.
  const db2 = new Database(join(dir, 'app.db'))
  db2.exec("INSERT INTO dossier (titre, notes) SELECT titre, notes FROM dossier")
  db2.close()
  await system(false).create()
  assert.equal((await system(false).check()).ok, true)
})

test('ALERT_WEBHOOK_URL receives one JSON alert per reason, with a Slack-compatible text, once: a second check sends nothing new', async (t) => {
  const dir = workspace(t)
  await backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir: join(dir, 'backups'), now: steppingClock() }).create()
  assert.equal((await cli(['--quiet', '--database', 'file:./missing.db'], dir)).status, 1)
  const hook = await webhook(t)
  const result = await cli(['check'], dir, { ALERT_WEBHOOK_URL: hook.url })
  assert.equal(result.status, 1, result.stderr)
  // The backup dates from January and was never drilled: the drill age is a third reason.
  assert.match(result.stdout, /\(3 problèmes\)\n {3}✗ le dernier backup vérifié .*\n {3}✗ la dernière opération a échoué: .*\n {3}✗ aucun exercice de restauration réussi depuis plus de --max-drill-age .*\n {3}Alerte envoyée \(webhook\): backup:last-run-failed:.*backups\n {3}Alerte envoyée \(webhook\): backup:no-recent-drill:.*backups\n {3}Alerte envoyée \(webhook\): backup:stale:.*backups\n$/)
  assert.equal(hook.requests.length, 3)
  for (const request of hook.requests) {
    assert.equal(request.method, 'POST')
    assert.equal(request.path, '/services/T000/B000/secret-token')
    assert.equal(request.headers['content-type'], 'application/json')
  }
  const bodies = hook.requests.map((r) => JSON.parse(r.body)).sort((a, b) => a.key.localeCompare(b.key))
  assert.deepEqual(bodies.map((b) => [b.source, b.status, b.severity, b.key]), [
    ['advanced-backup check', 'firing', 'critical', `backup:last-run-failed:${join(dir, 'backups')}`],
    ['advanced-backup check', 'firing', 'critical', `backup:no-recent-drill:${join(dir, 'backups')}`],
    ['advanced-backup check', 'firing', 'critical', `backup:stale:${join(dir, 'backups')}`],
  ])
  assert.match(bodies[0].text, /^\[advanced-backup check\] 🔴 Alerte critique — Backups en danger: la dernière opération a échoué: create .*fichier de base introuvable$/)
  assert.match(bodies[1].text, /^\[advanced-backup check\] 🔴 Alerte critique — Backups en danger: aucun exercice de restauration réussi /)
  assert.match(bodies[2].text, /^\[advanced-backup check\] 🔴 Alerte critique — Backups en danger: le dernier backup vérifié \(backup-2026-01-21T15-30-00\) /)
  const state = JSON.parse(readFileSync(join(dir, 'backups', '.alert-state.json'), 'utf8'))
  assert.deepEqual(Object.keys(state.alerts).sort(), bodies.map((b) => b.key))
  const again = await cli(['check'], dir, { ALERT_WEBHOOK_URL: hook.url })
  assert.equal(again.status, 1)
  assert.doesNotMatch(again.stdout, /Alerte envoyée/)
  assert.equal(hook.requests.length, 3, 'still firing: deduplicated on its key')
})

test('a webhook that fails (HTTP 500, nobody listening) is reported beside the reasons, never in the exit code, its secret path not shown', async (t) => {
  const dir = workspace(t)
  const failing = await webhook(t, 500)
  const cases = [
    [failing.url, /HTTP 500/],
    // Port 9 (discard): nobody listens on it here.
    ['http://127.0.0.1:9/services/T000/B000/secret-token', /fetch failed|ECONNREFUSED/],
  ] as const
  // Each run retries (1 s, 2 s, 4 s backoff): the four runs go in parallel.
  const runs = await Promise.all(cases.flatMap(([url]) => [cli(['check'], dir, { ALERT_WEBHOOK_URL: url }), cli(['check', '--json'], dir, { ALERT_WEBHOOK_URL: url })]))
  for (const [index, [, why]] of cases.entries()) {
    const [text, json] = [runs[2 * index]!, runs[2 * index + 1]!]
    assert.equal(text.status, 1, 'the problem fails the check, as without a webhook')
    assert.match(text.stdout, /^❌ Backups en danger \(1 problème\)\n {3}✗ aucun backup dans .*\n {3}✗ alerte non envoyée \(webhook\): webhook http:\/\/127\.0\.0\.1:\d+\/…: /)
    assert.match(text.stdout, why)
    assert.doesNotMatch(text.stdout + text.stderr, /secret-token/)
    const result = JSON.parse(json.stdout)
    assert.equal(json.status, 1)
    assert.equal(result.problems.length, 1)
    assert.equal(result.alerts.deliveries[0].outcome, 'failed')
    assert.match(result.alerts.deliveries[0].error, why)
  }
  assert.equal(failing.requests.length, 8, 'the failing webhook was tried 4 times per run')
})

test('a failing channel never changes the exit code of a healthy check, and a cleared problem is sent as "résolu"', async (t) => {
  const dir = workspace(t)
  const hook = await webhook(t)
  assert.equal((await cli(['check'], dir, { ALERT_WEBHOOK_URL: hook.url })).status, 1, 'no backup yet')
  assert.equal(hook.requests.length, 1)
  assert.equal((await cli(['create', '--quiet'], dir)).status, 0)
  const healthy = await cli(['check'], dir, { ALERT_WEBHOOK_URL: hook.url })
  assert.equal(healthy.status, 0, healthy.stdout)
  assert.match(healthy.stdout, /Résolution envoyée \(webhook\): backup:no-verified-backup:/)
  assert.equal(JSON.parse(hook.requests[1]!.body).status, 'resolved')
  // SMTP_URL without ALERT_EMAIL_TO: a misconfigured channel is a warning, the healthy check stays 0.
  const misconfigured = await cli(['check'], dir, { SMTP_URL: 'smtp://alert:secret@127.0.0.1:9' })
  assert.equal(misconfigured.status, 0, misconfigured.stdout)
  assert.match(misconfigured.stdout, /⚠ alertes e-mail: SMTP_URL est défini sans ALERT_EMAIL_TO/)
  assert.doesNotMatch(misconfigured.stdout, /secret/)
})

test('the hourly crontab line of docs/cron.md, run as cron runs it (env -i, minimal PATH): silent and 0 when healthy, 1 and the reason in the log otherwise', async (t) => {
  const crontab = /```crontab\n([\s\S]*?)```/.exec(readFileSync(join(REPO_ROOT, 'docs', 'cron.md'), 'utf8'))![1]!
  const hourly = crontab.split('\n').find((line) => line.startsWith('15 * * * * '))!.slice('15 * * * * '.length)
  assert.match(hourly, /npm run --silent backup:check -- --quiet --dir \/var\/backups\/ia-poste-manager >> \/var\/log\/ia-poste-manager\/backup-check\.log 2>&1$/)
  const root = tempDir(t, 'ipm-cron-')
  const command = hourly.replaceAll('/srv/ia-poste-manager', REPO_ROOT).replaceAll('/var/backups/ia-poste-manager', join(root, 'backups')).replaceAll('/var/log/ia-poste-manager', root)
  const path = `${dirname(process.execPath)}:/usr/bin:/bin`
  const cron = () =>
    new Promise<number | null>((resolve) => {
      spawn('env', ['-i', `PATH=${path}`, `HOME=${root}`, 'sh', '-c', command], { stdio: 'ignore' }).on('close', resolve)
    })
  const log = join(root, 'backup-check.log')
  assert.equal(await cron(), 1)
  assert.match(readFileSync(log, 'utf8'), /^❌ Backups en danger \(1 problème\)\n {3}✗ aucun backup dans .*backups\n$/)
  writeFileSync(log, '')
  const dir = workspace(t)
  await backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir: join(root, 'backups') }).create()
  assert.equal(await cron(), 0)
  assert.equal(readFileSync(log, 'utf8'), '')
})

test('a history line torn by a crash never breaks check: it is skipped with a warning, and the check still judges', async (t) => {
  const dir = workspace(t)
  const backupDir = join(dir, 'backups')
  await backupSystem(t, { databaseUrl: `file:${join(dir, 'app.db')}`, backupDir }).create()
  // A run killed in the middle of its line (or a power cut): no newline, half a JSON object.
  appendFileSync(join(backupDir, 'history.jsonl'), '{"version":1,"operation":"create","start":"2026-')
  const [text, quiet] = await Promise.all([cli(['check'], dir), cli(['check', '--quiet'], dir)])
  assert.equal(text.status, 0, text.stdout + text.stderr)
  assert.match(text.stdout, /^✅ Backups en bonne santé: .*\n {3}⚠ history\.jsonl : dernière ligne incomplète \(une exécution a été coupée en l’écrivant\) ; ignorée\n$/)
  assert.deepEqual([quiet.status, quiet.stdout, quiet.stderr], [0, '', ''])
  // The next run's line starts on a fresh line, and it is what check reads as the last run.
  await assert.rejects(backupSystem(t, { databaseUrl: `file:${join(dir, 'missing.db')}`, backupDir }).create())
  const after = await cli(['check', '--json'], dir)
  const result = JSON.parse(after.stdout)
  assert.equal(after.status, 1)
  assert.deepEqual(result.problems.map((p: { kind: string }) => p.kind), ['last-run-failed'])
  assert.deepEqual(result.warnings, ['history.jsonl ligne 2 : pas du JSON (coupée par un arrêt brutal ?) ; ignorée'])
})
