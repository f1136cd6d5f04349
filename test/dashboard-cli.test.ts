import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { validatePerformanceMetrics } from '../scripts/lib/metrics/performance-metrics.ts'
import { parseOptions } from '../scripts/database-performance-dashboard.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { judge, requireJudge } from './helpers/judges.ts'

const SCRIPT = 'scripts/database-performance-dashboard.ts'

/**
 * Pins the text: durations (not the thresholds) and the database size become N; the two top-5
 * lists, whose order depends on timings, become placeholders; paths become <dir>.
 */
function normalise(text: string, dir: string): string {
  let ranked = false
  return text
    .replaceAll(dir, '<dir>')
    .split('\n')
    .map((line) => {
      if (/^(TOP 5|EMPREINTES SQL)/.test(line)) ranked = true
      else if (line === '') ranked = false
      if (ranked && /^  \d\. /.test(line)) return '  N. <entry>'
      if (ranked && /^     /.test(line)) return '     <sql>'
      if (/^  Requêtes (rapides|moyennes|lentes) /.test(line)) return line
      return line
        .replace(/^  Uptime: .*/, '  Uptime: N')
        .replace(/taille de la base .*/, 'taille de la base N')
        .replace(/\d+(\.\d+)?ms\b/g, 'Nms')
    })
    .join('\n')
}

describe('database-performance-dashboard CLI', { concurrency: true }, () => {
  test('npm run dashboard:watch -- --iterations 1 passes the option to the dashboard: one run, then exit 0 (a chained npm run made it --watch 1, forever)', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t)
    const child = spawn('npm', ['run', '--silent', 'dashboard:watch', '--', '--iterations', '1', '--json', '--database', db.url, '--output', join(dir, 'm.json')], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    // A second run means the option was lost: stop there rather than wait for a watch that never ends.
    const ended = new Promise<number | null>((resolve) => child.on('close', resolve))
    const watcher = setInterval(() => { if (stdout.split('\n').filter(Boolean).length > 1) child.kill('SIGTERM') }, 100)
    t.after(() => { clearInterval(watcher); child.kill('SIGKILL') })
    const status = await ended
    clearInterval(watcher)
    const runs = stdout.split('\n').filter(Boolean)
    assert.equal(runs.length, 1, `one run, got ${runs.length}`)
    assert.equal(status, 0)
    assert.equal(validatePerformanceMetrics(JSON.parse(runs[0]!)).tests.length, 6)
  })

  test('one run prints the tests and the dashboard in the spec’s layout and writes the JSON file', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t)
    const output = join(dir, 'performance-metrics.json')
    // Thresholds far above any duration here: the classes and the recommendations do not depend on timings.
    const result = await runScriptAsync(SCRIPT, ['--database', db.url, '--output', output, '--fast-ms', '5000', '--slow-ms', '10000'])
    assert.equal(result.status, 0, result.stderr)
    assert.equal(result.stderr, '')
    assert.equal(normalise(result.stdout.replaceAll(db.url, '<url>'), dir), EXPECTED)
    validatePerformanceMetrics(JSON.parse(readFileSync(output, 'utf8')))
  })

  test('--json prints only the metrics object; --export adds a Prometheus file that promtool accepts', { skip: requireJudge('promtool') }, async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t)
    const output = join(dir, 'm.json')
    const result = await runScriptAsync(SCRIPT, ['--database', db.url, '--output', output, '--json', '--export', '--slow-ms', '150', '--fast-ms', '75'])
    assert.equal(result.status, 0, result.stderr)
    const metrics = validatePerformanceMetrics(JSON.parse(result.stdout))
    assert.deepEqual(metrics.thresholds, { fastMs: 75, slowMs: 150 })
    assert.equal(metrics.tests.length, 6)
    assert.deepEqual(JSON.parse(readFileSync(output, 'utf8')).timestamp, metrics.timestamp)
    const prom = join(dir, 'm.prom')
    assert.ok(existsSync(prom))
    const check = judge('promtool', ['check', 'metrics'], { input: readFileSync(prom) })
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`)
    assert.match(readFileSync(prom, 'utf8'), /^ipm_db_slow_threshold_seconds\{engine="sqlite"\} 0\.15$/m)
  })

  test('--watch re-runs, raises an alert on stderr at each run and to ALERT_WEBHOOK_URL once per rule (state file beside the metrics), and stops after --iterations', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t)
    const received: { text: string; source: string; key: string; status: string }[] = []
    const server = createServer(async (request: IncomingMessage, response) => {
      let body = ''
      for await (const chunk of request) body += chunk
      received.push(JSON.parse(body))
      response.writeHead(204).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise((resolve) => server.close(resolve)))
    const webhook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/secret-token`
    // Every operation is slow with --slow-ms 0, and p95 > 0 ms always holds: both rules fire on each run.
    const result = await runScriptAsync(
      SCRIPT,
      ['--database', db.url, '--output', join(dir, 'm.json'), '--json', '--watch', '0.2', '--iterations', '2', '--fast-ms', '0', '--slow-ms', '0', '--alert-slow', '0', '--alert-p95', '0'],
      { env: { ALERT_WEBHOOK_URL: webhook, SLACK_WEBHOOK_URL: '', SMTP_URL: '', ALERT_EMAIL_TO: '', ALERT_STATE_FILE: '' } },
    )
    assert.equal(result.status, 0, result.stderr)
    const runs = result.stdout.trim().split('\n').map((line) => validatePerformanceMetrics(JSON.parse(line)))
    assert.equal(runs.length, 2)
    assert.ok(Date.parse(runs[1]!.timestamp) - Date.parse(runs[0]!.timestamp) >= 200)
    const alerts = result.stderr.trim().split('\n')
    assert.equal(alerts.length, 4, result.stderr)
    assert.match(alerts[0]!, /^ALERTE: 10 requêtes lentes \(>0ms\) dépassent le seuil de 0 sur file:/)
    assert.match(alerts[1]!, /^ALERTE: p95 des requêtes \d+\.\dms dépasse le seuil de 0ms sur file:/)
    // Still firing at the second run: deduplicated on the key, not sent again.
    assert.deepEqual(received.map((r) => [r.source, r.status, r.key.split(':').slice(0, 2).join(':')]).sort(), [
      ['database-performance-dashboard', 'firing', 'dashboard:alert-p95'],
      ['database-performance-dashboard', 'firing', 'dashboard:alert-slow'],
    ])
    assert.match(received.find((r) => r.key.startsWith('dashboard:alert-slow'))!.text, /^\[database-performance-dashboard\] 🔴 Alerte avertissement — 10 requêtes lentes/)
    const state = JSON.parse(readFileSync(join(dir, '.alert-state.json'), 'utf8'))
    assert.equal(Object.keys(state.alerts).length, 2)
  })

  test('a single run fails (exit 1) when an alert threshold is crossed, and passes under it', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const dir = tempDir(t)
    const crossed = await runScriptAsync(SCRIPT, ['--database', db.url, '--output', join(dir, 'a.json'), '--slow-ms', '0', '--fast-ms', '0', '--alert-slow', '0'])
    assert.equal(crossed.status, 1, crossed.stderr)
    assert.match(crossed.stderr, /^ALERTE: \d+ requêtes lentes \(>0ms\) dépassent le seuil de 0 sur file:/m)
    const under = await runScriptAsync(SCRIPT, ['--database', db.url, '--output', join(dir, 'b.json'), '--alert-slow', '1000000'])
    assert.equal(under.status, 0, under.stderr)
    assert.doesNotMatch(under.stderr, /ALERTE/)
  })

  test('an unreachable database fails with one clear line and exit code 1, password masked', async () => {
    const result = await runScriptAsync(SCRIPT, ['--database', 'postgresql://postgres:s3cret@127.0.0.1:1/nowhere', '--output', '/nonexistent/m.json'])
    assert.equal(result.status, 1)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^Erreur : PostgreSQL postgresql:\/\/postgres:\*\*\*\*@127\.0\.0\.1:1\/nowhere : connexion impossible : .*ECONNREFUSED.*\nEssayez : /)
    assert.doesNotMatch(result.stderr, /s3cret/)
  })

  test('a missing SQLite file is a failure; an empty one and an unknown tenant are measured as far as they can be', async (t) => {
    const dir = tempDir(t)
    const empty = join(dir, 'empty.db')
    new Database(empty).close()
    const db = await openTestDatabase(t, 'sqlite')
    const [missing, emptyRun, unknownTenant] = await Promise.all([
      runScriptAsync(SCRIPT, ['--database', `file:${join(dir, 'nope.db')}`, '--output', join(dir, 'a.json')]),
      runScriptAsync(SCRIPT, ['--database', `file:${empty}`, '--output', join(dir, 'b.json')]),
      runScriptAsync(SCRIPT, ['--database', db.url, '--output', join(dir, 'c.json'), '--tenant', 'cabinet-inconnu']),
    ])
    assert.equal(missing.status, 1)
    assert.match(missing.stderr, /^Erreur : SQLite file:.*nope\.db : fichier de base introuvable\n/)
    assert.equal(emptyRun.status, 0, emptyRun.stderr)
    assert.match(emptyRun.stdout, /Test 1: Connexion simple\n  ✓ Durée: /)
    assert.equal(emptyRun.stdout.match(/– Ignoré: la base n'a pas les tables d'IA Poste Manager/g)?.length, 5)
    assert.match(emptyRun.stdout, /REMARQUES:\n  - tables absentes: Plan, Tenant, User, Client, Dossier/)
    assert.equal(unknownTenant.status, 0, unknownTenant.stderr)
    assert.match(unknownTenant.stdout, /Test 4: Requête complexe Dossiers\n  – Ignoré: tenant « cabinet-inconnu » introuvable \(ni id ni slug\)/)
    assert.match(unknownTenant.stdout, /Test 5: Agrégations\n  ✓ 4 groupes/)
  })

  test('usage errors exit with code 2 and say what to do', async () => {
    const result = await runScriptAsync(SCRIPT, ['--watch', 'soon'])
    assert.equal(result.status, 2)
    assert.equal(result.stdout, '')
    assert.equal(result.stderr, "Erreur : l’option --watch [seconds] refuse la valeur 'soon' : un nombre ≥ 0.01 est attendu\nEssayez : Lancez avec --help pour voir les options.\n")
    const usage = (...args: string[]) => {
      try {
        parseOptions(['node', SCRIPT, ...args])
        return 'accepted'
      } catch (error) {
        assert.ok(error instanceof ToolkitError)
        return `${error.exitCode} ${error.message}`
      }
    }
    assert.equal(usage('--iterations', '2'), '2 --iterations demande --watch')
    assert.equal(usage('--fast-ms', '200', '--slow-ms', '100'), '2 --fast-ms (200) dépasse --slow-ms (100)')
    assert.equal(usage('--alert-slow', '1.5'), "2 l’option --alert-slow <n> refuse la valeur '1.5' : un entier ≥ 0 est attendu")
    assert.equal(usage('extra'), '2 trop d’arguments : 0 attendu(s), 1 donné(s)')
    assert.equal(usage('--bogus'), "2 option inconnue : --bogus")
    assert.equal(usage('--watch', '--iterations', '3', '--export', '--json'), 'accepted')
    assert.deepEqual(parseOptions(['node', SCRIPT, '--watch']), { output: 'performance-metrics.json', watch: true })
  })
})

const EXPECTED = `🚀 Exécution des tests de performance...

Test 1: Connexion simple
  ✓ Durée: Nms

Test 2: Count Plans
  ✓ 6 plans - Durée: Nms

Test 3: FindMany Tenants (avec relations)
  ✓ 6 tenants - Durée: Nms

Test 4: Requête complexe Dossiers
  ✓ 6 dossiers - Durée: Nms

Test 5: Agrégations
  ✓ 4 groupes - Durée: Nms

Test 6: Requêtes parallèles
  ✓ 5 requêtes parallèles - Durée: Nms

======================================================================
DASHBOARD DE PERFORMANCE - IA Poste Manager
======================================================================
Base: <url> (sqlite)

MÉTRIQUES GLOBALES:
  Total requêtes: 10 (14 instructions SQL)
  Durée moyenne: Nms (temps base de données: Nms)
  p50 / p95 / p99 / max: Nms / Nms / Nms / Nms
  Requêtes rapides (<5000ms): 10 (100%)
  Requêtes moyennes (5000-10000ms): 0 (0%)
  Requêtes lentes (>10000ms): 0 (0%)
  Par temps base: rapides 10 (100%), moyennes 0 (0%), lentes 0 (0%)

TOP 5 REQUÊTES LENTES:
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>

TOP 5 PAR TEMPS BASE DE DONNÉES:
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>

EMPREINTES SQL (top 5 par temps total):
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>
  N. <entry>
     <sql>

MÉTRIQUES PAR TENANT:
  Cabinet Demo:
    - Requêtes: 1
    - Durée moyenne: Nms (base Nms)
    - Dossiers: 9
    - Clients: 3
    - Stockage: 2.44 KB
  Stockage calculé: somme, sur les lignes du cabinet (Tenant, User, Client, Dossier), de la taille
    stockée de chaque valeur : octets UTF-8 du texte, octets des blobs, 8 octets par nombre, 0 pour
    NULL ; hors surcoût des pages et des index

STATISTIQUES DE CACHE:
  Taux de succès du cache: n/a : SQLite compte les succès du cache de pages par connexion
    (sqlite3_db_status), que better-sqlite3 n’expose pas
    Mesuré: cache de pages 15.63 MB, taille de la base N
  Lectures identiques répétées: 1 sur 14 (7.1%)

RECOMMANDATIONS D'OPTIMISATION:
  ✓ Aucune: rien dans les mesures de cette fenêtre ne demande une action.

STATISTIQUES SYSTÈME:
  Uptime: N
  Connexions actives: n/a (SQLite n’a pas de serveur : les connexions des autres processus ne peuvent pas être comptées)
  Pool size: 1

======================================================================
✅ Métriques exportées vers: <dir>/performance-metrics.json
`
