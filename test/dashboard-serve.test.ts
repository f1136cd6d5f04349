/**
 * `npm run dashboard:web` (`--serve`), as a person starts it: the real dashboard analysis of a copy of
 * the dev database and the status of a real backup folder, served on 127.0.0.1; /api/snapshot and
 * /metrics agree; Ctrl-C (SIGINT to the process group, as a terminal sends it) stops it cleanly: the
 * script exits 0 ("Dashboard arrêté."), and `npm run`, which received the SIGINT too, re-raises it on
 * itself, so a shell reports 130 for `npm run dashboard:web` (and `npm run dev`).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { backupSystem } from './helpers/backup.ts'
import { tempDir } from './helpers/databases.ts'
import { closedPort } from './helpers/http-recorder.ts'

const SCRIPT = 'scripts/database-performance-dashboard.ts'
// The machine may be loaded: the first analysis (six tests) can take tens of seconds.
const START_MS = 240_000

test('npm run dashboard:web serves the analysis and the backup status; /metrics equals /api/snapshot; SIGINT stops it cleanly', async (t) => {
  const dir = tempDir(t, 'ipm-serve-')
  copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), join(dir, 'dev.db'))
  const backups = join(dir, 'backups')
  const { metadata } = await backupSystem(t, { databaseUrl: `file:${join(dir, 'dev.db')}`, backupDir: backups }).create()

  const port = await closedPort()
  const child = spawn('npm', ['run', '--silent', 'dashboard:web', '--', '--port', String(port), '--interval', '600', '--backup-dir', backups], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', DATABASE_URL: `file:${join(dir, 'dev.db')}`, DASHBOARD_TOKEN: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
  })

  const deadline = Date.now() + START_MS
  while (!stdout.includes('Ctrl-C') && Date.now() < deadline && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 200))
  const url = `http://127.0.0.1:${port}/`
  assert.equal(stdout, `✅ Dashboard en direct: ${url}\n   Prometheus: ${url}metrics · Ctrl-C pour arrêter\n`, stderr)

  const snapshot = (await (await fetch(`${url}api/snapshot`)).json()) as {
    metrics: { engine: string; tests: { status: string }[]; rawMetrics: { error?: unknown }[]; slowQueriesCount: number; thresholds: { slowMs: number } }
    backup: { backupDir: string; newest: { id: string; sizeBytes: number; verified: boolean }; problems: string[] }
  }
  assert.equal(snapshot.metrics.engine, 'sqlite')
  assert.deepEqual(snapshot.metrics.tests.map((r) => r.status), ['passed', 'passed', 'passed', 'passed', 'passed', 'passed'])
  assert.equal(snapshot.backup.backupDir, backups)
  assert.equal(snapshot.backup.newest.id, metadata.id)
  assert.equal(snapshot.backup.newest.sizeBytes, metadata.size)
  assert.equal(snapshot.backup.newest.verified, true)
  assert.deepEqual(snapshot.backup.problems, [])

  const response = await fetch(`${url}metrics`)
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const exposition = await response.text()
  const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm').exec(exposition)?.[1])
  assert.equal(value('ipm_db_operations_total{engine="sqlite",outcome="ok"}'), snapshot.metrics.rawMetrics.filter((o) => o.error === undefined).length)
  assert.equal(value('ipm_db_slow_threshold_seconds{engine="sqlite"}'), snapshot.metrics.thresholds.slowMs / 1000)
  assert.equal(value('ipm_backup_present'), 1)
  assert.equal(value('ipm_backup_verified'), 1)
  assert.equal(value('ipm_backup_size_bytes'), metadata.size)
  assert.equal(value('ipm_backup_problems'), 0)
  assert.doesNotMatch(exposition, /tenant/i, 'no tenant label')

  process.kill(-child.pid!, 'SIGINT')
  const { code, signal } = await exited
  assert.match(stdout, /Dashboard arrêté\.\n$/, stderr)
  assert.deepEqual({ code, signal }, { code: null, signal: 'SIGINT' }, 'npm re-raises the SIGINT it received (a shell shows 130)')
  await assert.rejects(fetch(`${url}api/snapshot`), 'the port is closed')
})

test('--serve refuses a non-loopback address without a token (exit 2, before any analysis), accepts it with DASHBOARD_TOKEN, and --port alone is a usage error', async () => {
  const [open, portAlone, withToken, traffic] = await Promise.all([
    runScriptAsync(SCRIPT, ['--serve', '--host', '0.0.0.0', '--port', '0', '--database', 'file:./nowhere.db'], { env: { DASHBOARD_TOKEN: '' } }),
    runScriptAsync(SCRIPT, ['--port', '4319']),
    // DASHBOARD_TOKEN stands for --token: the bind is allowed, and the start goes on to the first analysis (which fails here: no database).
    runScriptAsync(SCRIPT, ['--serve', '--host', '0.0.0.0', '--port', '0', '--database', 'file:./nowhere.db'], { env: { DASHBOARD_TOKEN: 'jeton-env' } }),
    // --serve --source app serves the live traffic (dashboard-serve-traffic.test.ts); a fixed --window has no meaning there.
    runScriptAsync(SCRIPT, ['--serve', '--source', 'app', '--window', '5m', '--port', '0', '--database', 'file:./nowhere.db']),
  ])
  assert.equal(traffic.status, 2, traffic.stderr)
  assert.equal(traffic.stderr, "Erreur : --serve ne se combine pas avec --window\nEssayez : En direct, chaque collecte lit ce qui est arrivé depuis la précédente (--interval); lancez --source … sans --serve pour une fenêtre ou --apply.\n")
  assert.equal(withToken.status, 1, withToken.stderr)
  assert.match(withToken.stderr, /première collecte des métriques impossible: .*fichier de base introuvable/)
  assert.doesNotMatch(withToken.stderr, /refus d'écouter/)
  assert.equal(open.status, 2, open.stderr)
  assert.match(open.stderr, /refus d'écouter sur 0\.0\.0\.0 sans jeton/)
  assert.match(open.stderr, /--token <jeton> \(ou DASHBOARD_TOKEN\)/)
  assert.equal(portAlone.status, 2)
  assert.match(portAlone.stderr, /--port ne s'emploie qu'avec --serve/)
})
