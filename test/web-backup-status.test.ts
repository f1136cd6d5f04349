/**
 * The backup status the live dashboard serves (`--serve`), from a real backup folder: the newest
 * backup, its off-site copy (BACKUP_OFFSITE_URL, a folder storage here) and the last restore drill,
 * success or failure, as history.jsonl records it; /api/snapshot and /metrics say the same.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { serveDashboard } from '../scripts/lib/metrics/serve-dashboard.ts'
import type { DashboardServer } from '../scripts/lib/web/server.ts'
import type { DashboardSnapshot } from '../scripts/lib/web/snapshot.ts'
import { backupSystem } from './helpers/backup.ts'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { judge, requireJudge } from './helpers/judges.ts'
import { sampleSnapshot } from './helpers/web.ts'

/** Serves the dashboard over `backupDir` with the given environment; returns what /api/snapshot and /metrics say. */
async function served(backupDir: string, env: Record<string, string>): Promise<{ snapshot: DashboardSnapshot; exposition: string }> {
  const stop = new AbortController()
  let server: DashboardServer | undefined
  const running = serveDashboard({
    thresholds: {},
    environment: resolveEnvironment(env),
    port: 0,
    intervalMs: 60_000,
    backupDir,
    signal: stop.signal,
    dashboard: { analyzePerformance: async () => sampleSnapshot().metrics, close: async () => {} },
    onListening: (s) => void (server = s),
    onCollectError: (error) => assert.fail(String(error)),
  })
  while (server === undefined) await new Promise((resolve) => setTimeout(resolve, 20))
  try {
    const snapshot = (await (await fetch(`${server.url}api/snapshot`)).json()) as DashboardSnapshot
    const exposition = await (await fetch(`${server.url}metrics`)).text()
    return { snapshot, exposition }
  } finally {
    stop.abort()
    await running
  }
}

function gauge(exposition: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(exposition)
  return match === null ? undefined : Number(match[1])
}

function lastHistoryLine(backupDir: string): { operation: string; end: string; result: string; error?: string } {
  return JSON.parse(readFileSync(join(backupDir, 'history.jsonl'), 'utf8').trim().split('\n').at(-1)!)
}

test('--serve shows the off-site copy of the newest backup and the last drill, succeeded then failed, in the JSON and in /metrics', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const work = tempDir(t, 'ipm-web-backup-')
  const backupDir = join(work, 'backups')
  const offsiteDir = join(work, 'offsite')
  const system = () => backupSystem(t, { databaseUrl: db.url, backupDir, offsiteUrl: offsiteDir })
  const created = await system().create()
  assert.ok(created.offsite, 'the backup was copied off-site')

  // Never drilled, off-site storage not configured for the dashboard: no copy claimed, no drill.
  const before = await served(backupDir, {})
  assert.equal(before.snapshot.backup!.newest!.id, created.metadata.id)
  assert.equal(before.snapshot.backup!.newest!.offsite, null)
  assert.equal(before.snapshot.backup!.lastDrill, null)
  assert.equal(gauge(before.exposition, 'ipm_backup_offsite'), 0)
  assert.equal(gauge(before.exposition, 'ipm_backup_last_drill_success'), undefined, 'no drill: an absent series, not a 0')

  const drill = await system().drill({ scratchRoot: tempDir(t) })
  assert.equal(drill.ok, true)
  const drilled = lastHistoryLine(backupDir)
  assert.deepEqual([drilled.operation, drilled.result], ['drill', 'success'])
  const ok = await served(backupDir, { BACKUP_OFFSITE_URL: offsiteDir })
  assert.deepEqual(ok.snapshot.backup!.newest!.offsite, { target: offsiteDir })
  assert.deepEqual(ok.snapshot.backup!.lastDrill, { at: drilled.end, result: 'success' })
  assert.equal(gauge(ok.exposition, 'ipm_backup_offsite'), 1)
  assert.equal(gauge(ok.exposition, 'ipm_backup_last_drill_success'), 1)
  assert.equal(gauge(ok.exposition, 'ipm_backup_last_drill_timestamp_seconds'), Date.parse(drilled.end) / 1000)

  // One byte of the archive changed: the next drill of it fails, and the page says so.
  const archive = join(backupDir, `${created.metadata.id}.tar.gz`)
  const bytes = readFileSync(archive)
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff
  writeFileSync(archive, bytes)
  const failed = await system().drill({ id: created.metadata.id, scratchRoot: tempDir(t) })
  assert.equal(failed.ok, false)
  const failure = lastHistoryLine(backupDir)
  assert.deepEqual([failure.operation, failure.result], ['drill', 'failure'])
  const bad = await served(backupDir, { BACKUP_OFFSITE_URL: offsiteDir })
  assert.deepEqual(bad.snapshot.backup!.lastDrill, { at: failure.end, result: 'failure', error: failure.error })
  assert.equal(gauge(bad.exposition, 'ipm_backup_last_drill_success'), 0)
  // The exposition of the served status (every backup gauge present) is valid for Prometheus' own checker.
  const promtool = requireJudge('promtool')
  if (promtool === false) {
    const checked = judge('promtool', ['check', 'metrics'], { input: bad.exposition })
    assert.equal(checked.status, 0, checked.stdout + checked.stderr)
    assert.equal(checked.stdout + checked.stderr, '')
  } else t.diagnostic(promtool)
})
