import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { startDashboardServer } from '../scripts/lib/web/server.ts'
import type { DashboardSnapshot } from '../scripts/lib/web/snapshot.ts'
import { defer, tempDir } from './helpers/databases.ts'
import { closedPort } from './helpers/http-recorder.ts'
import { requireJudge } from './helpers/judges.ts'
import { sampleSnapshot } from './helpers/web.ts'

interface VectorSample {
  metric: Record<string, string>
  value: [number, string]
}

describe('web dashboard scraped by a real Prometheus', () => {
  it('Prometheus scrapes /metrics (with the token) and its answers equal the JSON endpoint', { skip: requireJudge('prometheus') }, async (t) => {
    const prometheus = 'prometheus'
    const dir = tempDir(t, 'ipm-prometheus-')
    const server = await startDashboardServer({ port: 0, intervalMs: 60_000, token: 'jeton-scrape', collect: async () => sampleSnapshot() })
    defer(t, () => server.close())
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ipm\n    scrape_interval: 1s\n    authorization:\n      credentials: jeton-scrape\n    static_configs:\n      - targets: ['127.0.0.1:${server.port}']\n`,
    )
    const port = await closedPort()
    const child = spawn(prometheus, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] })
    let log = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-4_000)))
    defer(t, () => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM')))))

    const query = async (expr: string): Promise<VectorSample[]> => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = (await response.json()) as { status: string; data: { result: VectorSample[] } }
      assert.equal(body.status, 'success')
      return body.data.result
    }
    // Wait for a successful scrape (generous: the machine is shared).
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) assert.fail(`prometheus exited: ${log}`)
      const up = await query('up{job="ipm"}').catch(() => [])
      if (up[0]?.value[1] === '1' && (await query('ipm_backup_size_bytes')).length === 1) break
      if (attempt > 600) assert.fail(`no successful scrape: ${log}`)
      await delay(200)
    }

    const snapshot = (await (await fetch(`${server.url}api/snapshot`, { headers: { authorization: 'Bearer jeton-scrape' } })).json()) as DashboardSnapshot
    const scalar = async (expr: string) => Number((await query(expr))[0]?.value[1])
    assert.equal(await scalar('ipm_db_cache_hit_ratio'), snapshot.metrics.cache.hitRate)
    assert.equal(await scalar('ipm_backup_size_bytes'), snapshot.backup!.newest!.sizeBytes)
    assert.equal(await scalar('ipm_backup_age_seconds'), snapshot.backup!.newest!.ageSeconds)
    assert.equal(await scalar('ipm_backup_verified'), 1)
    const backup = snapshot.backup!
    assert.equal(await scalar('ipm_backup_verified_age_seconds'), backup.newestVerified!.ageSeconds)
    assert.equal(await scalar('ipm_backup_offsite'), backup.newest!.offsite === null ? 0 : 1)
    assert.equal(await scalar('ipm_backup_last_run_success'), backup.lastRun!.result === 'success' ? 1 : 0)
    assert.equal(await scalar('ipm_backup_last_run_timestamp_seconds'), Date.parse(backup.lastRun!.at) / 1000)
    assert.equal(await scalar('ipm_backup_last_drill_success'), backup.lastDrill!.result === 'success' ? 1 : 0)
    assert.equal(await scalar('ipm_backup_last_drill_timestamp_seconds'), Date.parse(backup.lastDrill!.at) / 1000)
    assert.equal(await scalar('ipm_backup_problems'), backup.problems.length)
    assert.equal(await scalar('ipm_db_cache_hit_ratio'), snapshot.metrics.cache.hitRate)
    assert.equal(await scalar('ipm_db_connections{state="active"}'), snapshot.metrics.system.activeConnections)
    assert.equal(await scalar('ipm_db_slow_threshold_seconds'), snapshot.metrics.thresholds.slowMs / 1000)
    assert.equal(await scalar('ipm_db_connections{state="open"}'), snapshot.metrics.system.openConnections)
    assert.equal(await scalar('sum(ipm_db_operations_total)'), snapshot.metrics.rawMetrics.length)
    assert.equal(await scalar('sum(ipm_db_slow_operations_total)'), snapshot.metrics.globalMetrics.slowQueriesCount)
    const counts = await query('ipm_db_query_duration_seconds_count')
    assert.deepEqual(
      Object.fromEntries(counts.map((s) => [s.metric.fingerprint, Number(s.value[1])])),
      Object.fromEntries(snapshot.metrics.fingerprints.map((f) => [f.id, f.count])),
    )
    for (const sample of counts) {
      assert.deepEqual(Object.keys(sample.metric).sort(), ['__name__', 'engine', 'fingerprint', 'instance', 'job'])
    }
  })
})
