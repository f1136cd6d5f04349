/**
 * `/metrics` of the live dashboard: one prom-client Registry per server (never the global one).
 * Counters and the histogram grow from the operations of each new snapshot (`rawMetrics`, by id, so
 * a snapshot seen twice counts once); gauges are set from the latest snapshot.
 * Bounded series: fingerprints are labelled by their 12-hex id (never SQL text, never a tenant) and
 * only the first `maxFingerprints - 1` ids seen get a label of their own; the rest fold into
 * `fingerprint="other"`. With the defaults a database exposes at most 50 × 16 histogram series
 * plus a few dozen others (< 1,000). The id → SQL mapping is in `/api/snapshot`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { TrafficObservations } from '../metrics/live-traffic.ts'
import { isTrafficSnapshot, type DashboardSnapshot, type ServedSnapshot, type TrafficSnapshot } from './snapshot.ts'

/** Database time per SQL statement, in seconds: 0.5 ms … 5 s. */
export const QUERY_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
export const DEFAULT_MAX_FINGERPRINTS = 50
export const OTHER_FINGERPRINT = 'other'

export interface PrometheusExporter {
  registry: Registry
  /**
   * Folds a snapshot in: new operations into the counters, the rest into the gauges. A traffic
   * snapshot is one window: its calls and times are added, and `observations` (the window's times
   * per execution, from the collector's sink) feed the histogram.
   */
  update(snapshot: ServedSnapshot, observations?: TrafficObservations): void
  /** The text exposition format (`contentType`). */
  render(): Promise<string>
  contentType: string
}

/** @example const exporter = createPrometheusExporter(); exporter.update(snapshot); await exporter.render() */
export function createPrometheusExporter(options: { maxFingerprints?: number } = {}): PrometheusExporter {
  const maxFingerprints = Math.max(1, options.maxFingerprints ?? DEFAULT_MAX_FINGERPRINTS)
  const registry = new Registry()
  const registers = [registry]

  const queryDuration = new Histogram({
    name: 'ipm_db_query_duration_seconds',
    help: 'Database time of each SQL statement, by fingerprint id (see /api/snapshot for the SQL).',
    labelNames: ['engine', 'fingerprint'],
    buckets: QUERY_DURATION_BUCKETS,
    registers,
  })
  const operations = new Counter({ name: 'ipm_db_operations_total', help: 'Prisma operations observed, by outcome.', labelNames: ['engine', 'outcome'], registers })
  const slowOperations = new Counter({ name: 'ipm_db_slow_operations_total', help: 'Prisma operations slower than the slow threshold.', labelNames: ['engine'], registers })
  const slowThreshold = new Gauge({ name: 'ipm_db_slow_threshold_seconds', help: 'The slow threshold of the dashboard.', labelNames: ['engine'], registers })
  const cacheHitRatio = new Gauge({ name: 'ipm_db_cache_hit_ratio', help: "Share of block reads served from the engine's cache (0..1).", labelNames: ['engine'], registers })
  const connections = new Gauge({ name: 'ipm_db_connections', help: 'Connections: active (running a statement), open (to the server), pool (the adapter may hold).', labelNames: ['engine', 'state'], registers })
  const snapshotTime = new Gauge({ name: 'ipm_dashboard_snapshot_timestamp_seconds', help: 'When the latest snapshot was collected (Unix time).', registers })
  const statementCalls = new Counter({ name: 'ipm_db_statement_calls_total', help: "Executions of the app's SQL statements (real traffic: --source app or pg_stat_statements), by fingerprint id.", labelNames: ['engine', 'fingerprint'], registers })
  const statementTime = new Counter({ name: 'ipm_db_statement_time_seconds_total', help: "Database time of the app's SQL statements (real traffic), by fingerprint id.", labelNames: ['engine', 'fingerprint'], registers })
  const foldedFingerprints = new Gauge({ name: 'ipm_db_fingerprints_folded', help: `Fingerprints counted under fingerprint="${OTHER_FINGERPRINT}" (label cap reached).`, labelNames: ['engine'], registers })

  const backupAge = new Gauge({ name: 'ipm_backup_age_seconds', help: 'Age of the newest backup.', registers })
  const backupVerifiedAge = new Gauge({ name: 'ipm_backup_verified_age_seconds', help: 'Age of the newest verified backup.', registers })
  const backupSize = new Gauge({ name: 'ipm_backup_size_bytes', help: 'Size on disk of the newest backup.', registers })
  const backupVerified = new Gauge({ name: 'ipm_backup_verified', help: '1 when the newest backup is verified.', registers })
  const backupOffsite = new Gauge({ name: 'ipm_backup_offsite', help: '1 when the newest backup has an off-site copy.', registers })
  const backupCount = new Gauge({ name: 'ipm_backup_present', help: '1 when the backup folder holds at least one complete backup.', registers })
  const lastRunSuccess = new Gauge({ name: 'ipm_backup_last_run_success', help: '1 when the last backup operation (history.jsonl) succeeded, 0 when it failed.', registers })
  const lastRunTime = new Gauge({ name: 'ipm_backup_last_run_timestamp_seconds', help: 'When the last backup operation ended (Unix time).', registers })
  const drillSuccess = new Gauge({ name: 'ipm_backup_last_drill_success', help: '1 when the last restore drill succeeded.', registers })
  const drillTime = new Gauge({ name: 'ipm_backup_last_drill_timestamp_seconds', help: 'When the last restore drill ran (Unix time).', registers })
  const backupProblems = new Gauge({ name: 'ipm_backup_problems', help: 'Problems found by advanced-backup check.', registers })

  const labelled = new Set<string>()
  const folded = new Set<string>()
  let seen = { windowStartedAt: '', lastId: -1 }

  const fingerprintLabel = (id: string): string => {
    if (labelled.has(id)) return id
    if (labelled.size < maxFingerprints - 1) {
      labelled.add(id)
      return id
    }
    folded.add(id)
    return OTHER_FINGERPRINT
  }

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      return registry.metrics()
    },
    update(served, observations) {
      if (isTrafficSnapshot(served)) {
        updateTraffic(served, observations)
        updateBackup(served)
        return
      }
      const snapshot = served
      const m = snapshot.metrics
      const engine = m.engine
      // A new window (a restarted dashboard) numbers its operations from the start again.
      if (m.window.startedAt !== seen.windowStartedAt) seen = { windowStartedAt: m.window.startedAt, lastId: -1 }
      let lastId = seen.lastId
      for (const operation of m.rawMetrics) {
        if (operation.id <= seen.lastId) continue
        lastId = Math.max(lastId, operation.id)
        operations.inc({ engine, outcome: operation.error === undefined ? 'ok' : 'failed' })
        if (operation.durationMs > m.thresholds.slowMs) slowOperations.inc({ engine })
        for (const statement of operation.sql) queryDuration.observe({ engine, fingerprint: fingerprintLabel(statement.fingerprintId) }, statement.durationMs / 1000)
      }
      seen.lastId = lastId
      // Zero-valued children make every series exist from the first scrape (rate() needs two points).
      operations.inc({ engine, outcome: 'ok' }, 0)
      operations.inc({ engine, outcome: 'failed' }, 0)
      slowOperations.inc({ engine }, 0)
      foldedFingerprints.set({ engine }, folded.size)
      slowThreshold.set({ engine }, m.thresholds.slowMs / 1000)
      setOrRemove(cacheHitRatio, { engine }, m.cache.hitRate)
      setOrRemove(connections, { engine, state: 'active' }, m.system.activeConnections)
      setOrRemove(connections, { engine, state: 'open' }, m.system.openConnections)
      setOrRemove(connections, { engine, state: 'pool' }, m.system.poolSize)
      snapshotTime.set(Date.parse(snapshot.collectedAt) / 1000)
      updateBackup(snapshot)
    },
  }

  function updateTraffic(snapshot: TrafficSnapshot, observations: TrafficObservations | undefined): void {
    const t = snapshot.traffic
    const engine = t.engine
    for (const statement of t.statements) {
      if (statement.kind !== 'sql') continue
      const fingerprint = fingerprintLabel(statement.id)
      statementCalls.inc({ engine, fingerprint }, statement.calls)
      statementTime.inc({ engine, fingerprint }, statement.totalMs / 1000)
    }
    // Every time of the window, also those of fingerprints past the JSON's list (folded or not, none is lost).
    const listed = new Set(t.statements.map((s) => s.id))
    for (const [id, times] of observations?.sql ?? []) {
      const fingerprint = fingerprintLabel(id)
      for (const ms of times) queryDuration.observe({ engine, fingerprint }, ms / 1000)
      if (listed.has(id)) continue
      statementCalls.inc({ engine, fingerprint }, times.length)
      statementTime.inc({ engine, fingerprint }, times.reduce((sum, ms) => sum + ms, 0) / 1000)
    }
    if (t.totals.operations !== null) {
      operations.inc({ engine, outcome: 'ok' }, observations?.operations.ok ?? t.totals.operations - (t.totals.failedOperations ?? 0))
      operations.inc({ engine, outcome: 'failed' }, observations?.operations.failed ?? t.totals.failedOperations ?? 0)
      slowOperations.inc({ engine }, observations?.operations.slow ?? t.totals.slowOperations ?? 0)
    }
    foldedFingerprints.set({ engine }, folded.size)
    slowThreshold.set({ engine }, t.thresholds.slowMs / 1000)
    setOrRemove(cacheHitRatio, { engine }, t.totals.hitRate)
    snapshotTime.set(Date.parse(snapshot.collectedAt) / 1000)
  }

  function updateBackup(snapshot: ServedSnapshot): void {
    const b = snapshot.backup
    const newest = b?.newest ?? null
    setOrRemove(backupCount, {}, b === null ? null : newest === null ? 0 : 1)
    setOrRemove(backupAge, {}, newest?.ageSeconds ?? null)
    setOrRemove(backupSize, {}, newest?.sizeBytes ?? null)
    setOrRemove(backupVerified, {}, newest === null ? null : newest.verified ? 1 : 0)
    setOrRemove(backupOffsite, {}, newest === null ? null : newest.offsite === null ? 0 : 1)
    setOrRemove(backupVerifiedAge, {}, b?.newestVerified?.ageSeconds ?? null)
    setOrRemove(lastRunSuccess, {}, b?.lastRun == null ? null : b.lastRun.result === 'success' ? 1 : 0)
    setOrRemove(lastRunTime, {}, b?.lastRun == null ? null : Date.parse(b.lastRun.at) / 1000)
    setOrRemove(drillSuccess, {}, b?.lastDrill == null ? null : b.lastDrill.result === 'success' ? 1 : 0)
    setOrRemove(drillTime, {}, b?.lastDrill == null ? null : Date.parse(b.lastDrill.at) / 1000)
    setOrRemove(backupProblems, {}, b === null ? null : b.problems.length)
  }
}

// An unknown value is an absent series, never a 0 that would read as a measurement.
function setOrRemove<L extends string>(gauge: Gauge<L>, labels: Partial<Record<L, string>>, value: number | null): void {
  if (value === null) gauge.remove(labels)
  else gauge.set(labels, value)
}

/**
 * The exposition of one analysis, as `--export` writes it beside performance-metrics.json: the
 * live server's metric names, from one snapshot (no backup gauges). Pass the same exporter again
 * (a watch) and its counters keep growing.
 * @example writeFileAtomic('performance-metrics.prom', await renderMetricsExposition(metrics))
 */
export async function renderMetricsExposition(metrics: DashboardSnapshot['metrics'], exporter: PrometheusExporter = createPrometheusExporter()): Promise<string> {
  exporter.update({ collectedAt: metrics.timestamp, metrics, backup: null })
  return exporter.render()
}
