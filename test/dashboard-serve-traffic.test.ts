/**
 * `--serve --source app|pg_stat_statements`: the live dashboard serves the application's real
 * traffic, each collection being the window since the previous one.
 * - app: the server runs (its own process, as `npm run dashboard:web -- --source app` starts it)
 *   while another process, the app, writes through its instrumented Prisma Client into the sink; a
 *   query shape the server never saw appears in /api/snapshot and /metrics while the app runs, the
 *   windows pushed over /events add up to exactly what the app did, and /metrics counts the same.
 * - pg_stat_statements: a private cluster with the extension; the served window equals the diff of
 *   the view read by psql around a workload replayed by another process.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { REPO_ROOT } from './helpers/cli.ts'
import { defer, tempDir } from './helpers/databases.ts'
import { closedPort } from './helpers/http-recorder.ts'
import { privateClusterUnavailable, startStatementsCluster } from './helpers/pg-private-cluster.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { serveDashboard } from '../scripts/lib/metrics/serve-dashboard.ts'
import type { DashboardServer } from '../scripts/lib/web/server.ts'
import type { TrafficSnapshot } from '../scripts/lib/web/snapshot.ts'

const SCRIPT = 'scripts/database-performance-dashboard.ts'
const OPERATION = /^Dossier\.findMany \{where:\{tenantId:\?,priorite:\?\},select:\{id:true\},take:\?\}$/
const ROUNDS = 6

/** The value of one series of a Prometheus exposition (NaN when absent). */
function series(exposition: string, name: string): number {
  const line = exposition.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1))
}

/** Follows /events: every snapshot pushed, in order. */
function followEvents(t: Parameters<typeof defer>[0], url: string): { events: TrafficSnapshot[]; done: Promise<void> } {
  const controller = new AbortController()
  defer(t, () => controller.abort())
  const events: TrafficSnapshot[] = []
  const done = (async () => {
    const response = await fetch(`${url}events`, { signal: controller.signal })
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done: ended } = await reader.read()
      if (ended) return
      buffer += value
      let end: number
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = block.split('\n').find((line) => line.startsWith('data: '))
        if (data !== undefined) events.push(JSON.parse(data.slice(6)) as TrafficSnapshot)
      }
    }
  })().catch(() => undefined)
  return { events, done }
}

describe('--serve --source app: the app\'s real traffic, live', () => {
  test('a new query shape written by the app\'s process appears in /api/snapshot and /metrics while it runs; the windows pushed over /events add up to what the app did, as /metrics counts it; no value anywhere', async (t) => {
    const dir = tempDir(t, 'ipm-serve-app-')
    copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), join(dir, 'dev.db'))
    mkdirSync(join(dir, 'backups'))
    const sink = join(dir, 'app.metrics.ndjson')
    const port = await closedPort()
    const server = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, SCRIPT), '--serve', '--source', 'app', '--sink', sink, '--port', String(port), '--interval', '0.5', '--backup-dir', join(dir, 'backups')], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', DATABASE_URL: `file:${join(dir, 'dev.db')}`, DASHBOARD_TOKEN: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    defer(t, () => void server.kill('SIGKILL'))
    let stdout = ''
    let stderr = ''
    server.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    server.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => server.on('close', (code) => resolve(code)))
    const startBy = Date.now() + 120_000
    while (!stdout.includes('Ctrl-C') && server.exitCode === null && Date.now() < startBy) await sleep(100)
    const url = `http://127.0.0.1:${port}/`
    assert.equal(stdout, `✅ Dashboard en direct: ${url}\n   Prometheus: ${url}metrics · Ctrl-C pour arrêter\n`, stderr)

    const before = (await (await fetch(`${url}api/snapshot`)).json()) as TrafficSnapshot
    assert.equal(before.traffic.source, 'app')
    assert.deepEqual(before.traffic.statements, [])
    assert.match(before.traffic.notes.join('\n'), /Aucun fichier de mesures .*app\.metrics\.ndjson pour l'instant/)
    const sse = followEvents(t, url)

    // The app: its own process, writing through the instrumented client while the server collects.
    const app = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'test/fixtures/instrumented-app-child.ts'), `file:${join(dir, 'dev.db')}`, sink, String(ROUNDS), '300'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let appOut = ''
    let appErr = ''
    app.stdout.setEncoding('utf8').on('data', (chunk: string) => (appOut += chunk))
    app.stderr.setEncoding('utf8').on('data', (chunk: string) => (appErr += chunk))
    const appDone = new Promise<number | null>((resolve) => app.on('close', (code) => resolve(code)))
    const started = Date.now()

    // While the app runs, the new shape shows up in the JSON and in /metrics (bounded wait: the test fails, it never hangs).
    let seen: { operation: string; sql: string; afterMs: number } | undefined
    let sinkWrittenAt: number | undefined
    while (seen === undefined && Date.now() - started < 20_000) {
      sinkWrittenAt ??= existsSync(sink) ? Date.now() : undefined
      const snapshot = (await (await fetch(`${url}api/snapshot`)).json()) as TrafficSnapshot
      const operation = snapshot.traffic.statements.find((s) => s.kind === 'op' && OPERATION.test(s.display))
      const sql = snapshot.traffic.statements.find((s) => s.kind === 'sql' && /priorite/.test(s.display))
      if (operation !== undefined && sql !== undefined) {
        const exposition = await (await fetch(`${url}metrics`)).text()
        if (series(exposition, `ipm_db_statement_calls_total{engine="sqlite",fingerprint="${sql.id}"}`) > 0) seen = { operation: operation.id, sql: sql.id, afterMs: Date.now() - (sinkWrittenAt ?? started) }
      }
      if (seen === undefined) await sleep(100)
    }
    assert.ok(seen !== undefined, `the new query never appeared; server: ${stderr}; app: ${appErr}`)
    t.diagnostic(`nouvelle requête visible dans /api/snapshot et /metrics ${seen.afterMs} ms après la première écriture de l'app dans le fichier de mesures (${Date.now() - started} ms après son lancement)`)
    assert.equal(await appDone, 0, appErr)
    assert.deepEqual(JSON.parse(appOut), { operations: ROUNDS * 2 })

    // Two more windows after the app's last flush: everything it wrote has been collected.
    const settledAt = sse.events.length
    while (sse.events.length < settledAt + 2) await sleep(100)
    const events = [...new Map(sse.events.map((e) => [e.collectedAt, e])).values()]
    const sum = (pick: (e: TrafficSnapshot) => number) => events.reduce((n, e) => n + pick(e), 0)
    const callsOf = (id: string) => (e: TrafficSnapshot) => e.traffic.statements.find((s) => s.id === id)?.calls ?? 0
    assert.equal(sum(callsOf(seen.operation)), ROUNDS * 2, 'each execution in exactly one window')
    assert.equal(sum(callsOf(seen.sql)), ROUNDS * 2)
    const tenantOps = (id: string) => sum((e) => e.traffic.tenants?.find((r) => r.tenantId === id)?.operations ?? 0)
    assert.deepEqual([tenantOps('tenant-demo'), tenantOps('tenant-martin')], [ROUNDS, ROUNDS], 'per-tenant numbers, both cabinets')
    for (const e of events) {
      const s = e.traffic.statements.find((x) => x.id === seen!.sql)
      if (s === undefined) continue
      assert.ok(s.p50Ms !== null && s.p95Ms !== null && s.p99Ms !== null && s.p50Ms <= s.p95Ms && s.p95Ms <= s.p99Ms && s.p99Ms <= s.maxMs!, 'the sink gives percentiles')
      assert.deepEqual(e.traffic.topDatabaseTime.map((x) => x.kind), e.traffic.topDatabaseTime.map(() => 'sql'))
    }

    const exposition = await (await fetch(`${url}metrics`)).text()
    const label = `engine="sqlite",fingerprint="${seen.sql}"`
    assert.equal(series(exposition, `ipm_db_statement_calls_total{${label}}`), ROUNDS * 2)
    assert.equal(series(exposition, `ipm_db_query_duration_seconds_count{${label}}`), ROUNDS * 2, 'the histogram holds every execution')
    const servedSeconds = sum((e) => e.traffic.statements.find((s) => s.id === seen!.sql)?.totalMs ?? 0) / 1000
    assert.ok(Math.abs(series(exposition, `ipm_db_statement_time_seconds_total{${label}}`) - servedSeconds) < 1e-6)
    assert.equal(series(exposition, 'ipm_db_operations_total{engine="sqlite",outcome="ok"}'), sum((e) => e.traffic.totals.operations! - e.traffic.totals.failedOperations!))

    // No value of the query (the priority, the page size) anywhere; tenant ids only in the JSON's tenant rows, never in /metrics.
    const served = JSON.stringify(events) + exposition + (await (await fetch(`${url}api/history`)).text())
    assert.ok(!/HAUTE|LIMIT 7\b/.test(served), 'a value of the query was served')
    assert.doesNotMatch(exposition, /tenant-/)

    server.kill('SIGINT')
    assert.equal(await exited, 0, stderr)
    assert.match(stdout, /Dashboard arrêté\.\n$/)
  })
})

const unavailable = privateClusterUnavailable()

describe('--serve --source pg_stat_statements (a private cluster with the extension preloaded)', { skip: unavailable }, () => {
  test('the served window equals pg_stat_statements read by psql around a workload replayed by another process; no percentile is invented', async (t) => {
    const { cluster } = await startStatementsCluster(t)
    const stop = new AbortController()
    let server: DashboardServer | undefined
    const listening = new Promise<DashboardServer>((resolve) => {
      const serving = serveDashboard({
        database: cluster.urlOf('app'),
        traffic: { source: 'pg_stat_statements' },
        thresholds: {},
        environment: resolveEnvironment(),
        port: 0,
        // Collections only when the test asks (refresh), so the window's edges are known.
        intervalMs: 3_600_000,
        signal: stop.signal,
        onListening: (s) => resolve((server = s)),
        onCollectError: (error) => assert.fail(String(error)),
      })
      defer(t, async () => {
        stop.abort()
        await serving
      })
    })
    const live = await listening
    const first = live.latest() as TrafficSnapshot
    assert.deepEqual(first.traffic.statements, [])
    assert.match(first.traffic.notes.join('\n'), /Première lecture de pg_stat_statements/)

    // The judge: psql's reading of the view's cumulative counters, before and after, per query id.
    const read = () =>
      new Map(
        cluster
          .psql('app', `SELECT queryid, calls, total_exec_time FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'app') AND queryid IS NOT NULL AND query NOT LIKE '%pg_stat_statements%'`, ['-A', '-t', '-F', ' '])
          .trim()
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => {
            const [queryid, calls, total] = line.split(' ')
            return [queryid!, { calls: Number(calls), totalMs: Number(total) }] as const
          }),
      )
    const p0 = read()
    const replay = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test/helpers/replay-workload.ts'), cluster.urlOf('app'), '5'], { cwd: REPO_ROOT, encoding: 'utf8' })
    assert.equal(replay.status, 0, replay.stderr)
    const p1 = read()
    await live.refresh()
    const window = (live.latest() as TrafficSnapshot).traffic

    assert.equal(window.source, 'pg_stat_statements')
    assert.deepEqual(window.measures, { percentiles: false, tenants: false })
    assert.equal(window.tenants, null)
    assert.match(window.notes[0]!, /^pg_stat_statements ne garde que des sommes : appels, temps total et moyen par requête ; pas de p50\/p95\/p99/)
    const judged = [...p1].map(([queryid, after]) => ({ queryid, calls: after.calls - (p0.get(queryid)?.calls ?? 0), totalMs: after.totalMs - (p0.get(queryid)?.totalMs ?? 0) })).filter((q) => q.calls > 0)
    assert.ok(judged.length >= 5, `the replay's statements: ${judged.length}`)
    const servedQueryids = window.statements.flatMap((s) => s.queryids ?? [])
    assert.deepEqual([...servedQueryids].sort(), judged.map((q) => q.queryid).sort(), 'the same statements as psql sees')
    for (const s of window.statements) {
      const mine = judged.filter((q) => s.queryids!.includes(q.queryid))
      const calls = mine.reduce((n, q) => n + q.calls, 0)
      const totalMs = mine.reduce((n, q) => n + q.totalMs, 0)
      assert.equal(s.calls, calls, s.display)
      assert.ok(Math.abs(s.totalMs - totalMs) <= 0.0011, `${s.display}: ${s.totalMs} vs psql ${totalMs}`)
      assert.ok(Math.abs(s.meanMs - totalMs / calls) <= 0.0011)
      assert.deepEqual([s.p50Ms, s.p95Ms, s.p99Ms, s.maxMs], [null, null, null, null], 'no invented percentile')
    }
    assert.equal(window.statements.filter((s) => /^INSERT INTO Client/.test(s.display)).reduce((n, s) => n + s.calls, 0), 5, "the replay's 5 inserts")

    const exposition = await (await fetch(`${live.url}metrics`)).text()
    for (const s of window.statements) {
      const label = `engine="postgres",fingerprint="${s.id}"`
      assert.equal(series(exposition, `ipm_db_statement_calls_total{${label}}`), s.calls)
      assert.ok(Math.abs(series(exposition, `ipm_db_statement_time_seconds_total{${label}}`) - s.totalMs / 1000) < 1e-9)
    }
    assert.doesNotMatch(exposition, /ipm_db_query_duration_seconds_count/, 'no histogram without one time per execution')
    assert.doesNotMatch(JSON.stringify(window) + exposition, /tenant-demo|Rejeu|(?<![\d.])0100000000(?!\d)/)
    assert.ok(server !== undefined)
  })
})
