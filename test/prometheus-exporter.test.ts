import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fingerprintId } from '../scripts/lib/db/fingerprint.ts'
import { createPrometheusExporter, OTHER_FINGERPRINT } from '../scripts/lib/web/prometheus.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { requireJudge } from './helpers/judges.ts'
import { BASE_QUERIES, sampleSnapshot } from './helpers/web.ts'
import type { LiveStatement, TrafficObservations } from '../scripts/lib/metrics/live-traffic.ts'
import type { TrafficSnapshot } from '../scripts/lib/web/snapshot.ts'

/** `name{labels}` → value, from the text exposition format. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const cut = line.lastIndexOf(' ')
    map.set(line.slice(0, cut), Number(line.slice(cut + 1)))
  }
  return map
}

const slowId = fingerprintId(BASE_QUERIES[1]!.fingerprint)

describe('Prometheus exporter', () => {
  it('exposes histograms in seconds, _total counters and backup gauges, with exact values', async () => {
    const exporter = createPrometheusExporter()
    exporter.update(sampleSnapshot())
    const text = await exporter.render()
    const m = samples(text)
    assert.equal(m.get(`ipm_db_query_duration_seconds_count{engine="postgres",fingerprint="${slowId}"}`), 5)
    assert.equal(m.get(`ipm_db_query_duration_seconds_sum{engine="postgres",fingerprint="${slowId}"}`), BASE_QUERIES[1]!.durationsMs.reduce((sum, ms) => sum + ms / 1000, 0))
    assert.equal(m.get(`ipm_db_query_duration_seconds_bucket{le="0.1",engine="postgres",fingerprint="${slowId}"}`), 3)
    assert.equal(m.get(`ipm_db_query_duration_seconds_bucket{le="0.25",engine="postgres",fingerprint="${slowId}"}`), 4)
    assert.equal(m.get(`ipm_db_query_duration_seconds_bucket{le="+Inf",engine="postgres",fingerprint="${slowId}"}`), 5)
    assert.equal(m.get('ipm_db_operations_total{engine="postgres",outcome="ok"}'), 11)
    assert.equal(m.get('ipm_db_operations_total{engine="postgres",outcome="failed"}'), 0)
    assert.equal(m.get('ipm_db_slow_operations_total{engine="postgres"}'), 2)
    assert.equal(m.get('ipm_db_slow_threshold_seconds{engine="postgres"}'), 0.1)
    assert.equal(m.get('ipm_db_cache_hit_ratio{engine="postgres"}'), 0.9731)
    assert.equal(m.get('ipm_db_connections{engine="postgres",state="active"}'), 2)
    assert.equal(m.get('ipm_db_connections{engine="postgres",state="open"}'), 5)
    assert.equal(m.get('ipm_db_connections{engine="postgres",state="pool"}'), 10)
    assert.equal(m.get('ipm_backup_age_seconds'), 25_200)
    assert.equal(m.get('ipm_backup_verified_age_seconds'), 25_200)
    assert.equal(m.get('ipm_backup_size_bytes'), 1_048_576)
    assert.equal(m.get('ipm_backup_verified'), 1)
    assert.equal(m.get('ipm_backup_offsite'), 1)
    assert.equal(m.get('ipm_backup_last_run_success'), 1)
    assert.equal(m.get('ipm_backup_last_drill_success'), 1)
    assert.equal(m.get('ipm_backup_last_drill_timestamp_seconds'), Date.parse('2025-02-28T04:00:00Z') / 1000)
    assert.equal(m.get('ipm_dashboard_snapshot_timestamp_seconds'), Date.parse('2025-03-01T10:00:00Z') / 1000)
    // No SQL text, no tenant, no value as a label.
    assert.ok(!/tenant|SELECT|Dossier|Cabinet/.test(text), text)
  })

  it('counts each operation once when the same snapshot is seen again, and the new ones of the next', async () => {
    const exporter = createPrometheusExporter()
    exporter.update(sampleSnapshot())
    exporter.update(sampleSnapshot())
    assert.equal(samples(await exporter.render()).get('ipm_db_operations_total{engine="postgres",outcome="ok"}'), 11)
    exporter.update(sampleSnapshot({ firstId: 12, collectedAt: '2025-03-01T10:00:05.000Z' }))
    const m = samples(await exporter.render())
    assert.equal(m.get('ipm_db_operations_total{engine="postgres",outcome="ok"}'), 22)
    assert.equal(m.get(`ipm_db_query_duration_seconds_count{engine="postgres",fingerprint="${slowId}"}`), 10)
  })

  it('unknown values are absent series, not zeros', async () => {
    const exporter = createPrometheusExporter()
    const snapshot = sampleSnapshot({ backup: null })
    snapshot.metrics.cache.hitRate = null
    exporter.update(snapshot)
    const text = await exporter.render()
    assert.ok(!/^ipm_backup_\w+(\{[^}]*\})? /m.test(text), 'no backup sample without a backup folder')
    assert.ok(!/^ipm_db_cache_hit_ratio\{/m.test(text))
  })

  it('5,000 fingerprints stay under 1,000 series: the rest fold into fingerprint="other"', async () => {
    const exporter = createPrometheusExporter()
    const queries = Array.from({ length: 5_000 }, (_, i) => ({ fingerprint: `SELECT * FROM "T${i}" WHERE id = ?`, display: `SELECT * FROM T${i}`, durationsMs: [1], model: 'T', action: 'findFirst' }))
    exporter.update(sampleSnapshot({ queries: [...BASE_QUERIES.slice(0, 2), ...queries] }))
    const text = await exporter.render()
    const series = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
    assert.ok(series.length <= 1_000, `${series.length} series`)
    const m = samples(text)
    assert.equal(m.get(`ipm_db_query_duration_seconds_count{engine="postgres",fingerprint="${OTHER_FINGERPRINT}"}`), 5_002 - 49)
    assert.equal(m.get('ipm_db_fingerprints_folded{engine="postgres"}'), 5_002 - 49)
    const labels = new Set([...text.matchAll(/fingerprint="([^"]+)"/g)].map((match) => match[1]))
    assert.equal(labels.size, 50)
  })

  it('the series do not depend on the tenant count: 5,000 tenants expose exactly the series of one', async () => {
    const render = async (tenants: number) => {
      const snapshot = sampleSnapshot()
      snapshot.metrics.rawMetrics.forEach((operation, i) => (operation.tenantId = `tenant-${i % tenants}`))
      snapshot.metrics.tenantMetrics = Array.from({ length: tenants }, (_, i) => ({ ...snapshot.metrics.tenantMetrics[0]!, tenantId: `tenant-${i}`, tenantName: `Cabinet ${i}` }))
      const exporter = createPrometheusExporter()
      exporter.update(snapshot)
      return exporter.render()
    }
    const [one, many] = [await render(1), await render(5_000)]
    assert.equal(many, one)
    assert.ok(!/tenant|Cabinet/.test(many))
  })

  it('real traffic (--serve --source app): 5,000 fingerprints and 5,000 tenants stay under 1,000 series, no tenant anywhere; the counters add up the windows; promtool accepts it', { skip: requireJudge('promtool') }, async () => {
    const exporter = createPrometheusExporter()
    const windows = [trafficSnapshot(5_000, 5_000, '2025-03-01T10:00:00.000Z'), trafficSnapshot(5_000, 5_000, '2025-03-01T10:00:05.000Z')]
    for (const { snapshot, observations } of windows) exporter.update(snapshot, observations)
    const text = await exporter.render()
    const series = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
    assert.ok(series.length <= 1_000, `${series.length} series`)
    assert.ok(!/tenant/.test(text), 'no tenant id')
    const m = samples(text)
    const first = windows[0]!.snapshot.traffic.statements[0]!
    // Each window adds its calls: two windows, twice the calls of one.
    assert.equal(m.get(`ipm_db_statement_calls_total{engine="sqlite",fingerprint="${first.id}"}`), 2 * first.calls)
    assert.equal(m.get(`ipm_db_query_duration_seconds_count{engine="sqlite",fingerprint="${first.id}"}`), 2 * first.calls)
    assert.equal(m.get('ipm_db_operations_total{engine="sqlite",outcome="ok"}'), 2 * 5_000)
    // The JSON lists 200 fingerprints; the 4,800 others still count (under "other", past the label cap of 50).
    assert.equal(m.get(`ipm_db_statement_calls_total{engine="sqlite",fingerprint="${OTHER_FINGERPRINT}"}`), 2 * (5_000 - 49) * 2)
    assert.equal(m.get(`ipm_db_query_duration_seconds_count{engine="sqlite",fingerprint="${OTHER_FINGERPRINT}"}`), 2 * (5_000 - 49) * 2)
    const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
    assert.equal(result.status, 0, result.stdout + result.stderr)
    assert.equal(result.stdout + result.stderr, '')
  })

  it('promtool check metrics accepts the exposition', { skip: requireJudge('promtool') }, async () => {
    const promtool = 'promtool'
    const exporter = createPrometheusExporter()
    exporter.update(sampleSnapshot())
    const result = spawnSync(promtool, ['check', 'metrics'], { input: await exporter.render(), encoding: 'utf8' })
    assert.equal(result.status, 0, result.stdout + result.stderr)
    assert.equal(result.stdout + result.stderr, '')
  })

  it('the shipped alert rules pass promtool check rules and their unit tests', { skip: requireJudge('promtool') }, () => {
    const promtool = 'promtool'
    const dir = join(REPO_ROOT, 'docs', 'prometheus')
    const check = spawnSync(promtool, ['check', 'rules', 'alerts.yml'], { cwd: dir, encoding: 'utf8' })
    assert.equal(check.status, 0, check.stdout + check.stderr)
    assert.match(check.stdout, /SUCCESS: 5 rules found/)
    const test = spawnSync(promtool, ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' })
    assert.equal(test.status, 0, test.stdout + test.stderr)
  })

  it('the Grafana dashboard queries only metric names the exporter exposes', async () => {
    const exporter = createPrometheusExporter()
    exporter.update(sampleSnapshot())
    const exposed = new Set([...(await exporter.render()).matchAll(/^# TYPE (\w+) (\w+)/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!])))
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'docs', 'grafana', 'ia-poste-manager.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] }
    const used = dashboard.panels.flatMap((p) => p.targets ?? []).flatMap((target) => [...target.expr.matchAll(/\bipm_\w+/g)].map((match) => match[0]))
    assert.ok(used.length >= 8)
    for (const name of used) assert.ok(exposed.has(name), `${name} is not exposed`)
  })
})

/** A window of real traffic as live-traffic.ts builds it: `fingerprints` SQL statements of 2 calls each, one operation per tenant. */
function trafficSnapshot(fingerprints: number, tenants: number, collectedAt: string): { snapshot: TrafficSnapshot; observations: TrafficObservations } {
  const statements: LiveStatement[] = Array.from({ length: fingerprints }, (_, i) => ({
    id: fingerprintId(`SELECT * FROM "T${i}" WHERE id = ?`), kind: 'sql', display: `SELECT * FROM T${i} WHERE id = ?`,
    calls: 2, totalMs: 3, meanMs: 1.5, p50Ms: 1, p95Ms: 2, p99Ms: 2, maxMs: 2, rows: 2, failed: null, hitRate: null,
  }))
  const observations: TrafficObservations = { sql: new Map(statements.map((s) => [s.id, [1, 2]])), operations: { ok: tenants, failed: 0, slow: 0 } }
  return {
    observations,
    snapshot: {
      collectedAt,
      backup: null,
      traffic: {
        source: 'app', engine: 'sqlite', database: 'file:/srv/app.db',
        window: { startedAt: collectedAt, endedAt: collectedAt },
        measures: { percentiles: true, tenants: true },
        thresholds: { slowMs: 100 },
        totals: { operations: tenants, failedOperations: 0, slowOperations: 0, statements: 2 * fingerprints, databaseMs: 3 * fingerprints, hitRate: null },
        statements: statements.slice(0, 200),
        topDatabaseTime: statements.slice(0, 10),
        tenants: Array.from({ length: 100 }, (_, i) => ({ tenantId: `tenant-${i}`, operations: 1, operationMs: 1, meanOperationMs: 1, p95OperationMs: 1, statements: 0, databaseMs: 0 })),
        notes: [],
      },
    },
  }
}
