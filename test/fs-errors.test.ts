/**
 * Filesystem failures a user can act on come out as one French line naming the path and the fix
 * (scripts/lib/fs/errors.ts), never as a raw EROFS/ENOENT; the dashboard prints its report before
 * it writes its file, so an unwritable --output never loses the report.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { runDashboard } from '../scripts/lib/metrics/run-dashboard.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { defer, openTestDatabase, tempDir } from './helpers/databases.ts'

test('a read-only --dir: exit 1, one French line naming the folder and what to do, nothing written', async (t) => {
  const dir = tempDir(t, 'ipm-rofs-')
  const db = new Database(join(dir, 'app.db'))
  db.exec("CREATE TABLE dossier (id INTEGER PRIMARY KEY, titre TEXT); INSERT INTO dossier (titre) VALUES ('un')")
  db.close()
  const mountPoint = join(dir, 'read-only')
  mkdirSync(mountPoint)
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mountPoint])
  if (mounted.status !== 0) {
    t.skip('cannot mount a read-only tmpfs here (needs root; run the suite as root, as .ci/run does): the read-only path is untested')
    return
  }
  defer(t, () => spawnSync('umount', [mountPoint]))
  for (const backups of [mountPoint, join(mountPoint, 'sub', 'folder')]) {
    const result = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', backups, '--database', 'file:./app.db'], { cwd: dir, env: { ALERT_WEBHOOK_URL: '', IPM_BACKUP_KILL_AT: '' } })
    assert.equal(result.status, 1, result.stdout)
    assert.match(result.stderr, /^Erreur : impossible d’écrire (le backup|le dossier des backups): \S*read-only\S* est sur un système de fichiers en lecture seule\nEssayez : Choisissez un dossier inscriptible/)
    assert.doesNotMatch(result.stderr, /EROFS/)
  }
  assert.deepEqual(readdirSync(mountPoint), [])
})

test('dashboard: --output in a missing folder still prints the report first, then one French line and exit 1', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t, 'ipm-dash-output-')
  const output = join(dir, 'missing', 'metrics.json')
  const events: string[] = []
  const { exitCode, runs } = await runDashboard({
    database: db.url,
    output,
    thresholds: {},
    rules: {},
    environment: resolveEnvironment({}, { cwd: dir }),
    onReport: (metrics) => events.push(`report ${metrics.tests.length}`),
    onError: (message) => events.push(`error ${message}`),
    onAlert: (text) => events.push(`alert ${text}`),
  })
  assert.deepEqual([exitCode, runs], [1, 1])
  assert.equal(events[0], 'report 6')
  assert.deepEqual(events.slice(1), [`error impossible d’écrire le fichier des métriques: le dossier parent de ${output} n’existe pas`])
  assert.equal(existsSync(output), false)
})
