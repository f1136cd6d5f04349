/**
 * `--serve`: the live dashboard with real data. Every `intervalMs` the dashboard's analysis runs again
 * (the spec's six tests through the measured Prisma Client, or the `dashboard` the caller passes) —
 * or, with `traffic`, the application's real traffic of the window since the previous collection is
 * read (live-traffic.ts: the collector's sink, or pg_stat_statements) — and the backup folder is
 * judged as `advanced-backup check` judges it; web/server.ts serves the result (page,
 * /api/snapshot, /events, /metrics) until `signal` aborts.
 */
import type { ToolkitEnvironment } from '../environment.ts'
import { listBackupEntries } from '../backup/catalog/catalog.ts'
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_DRILL_AGE_MS, DEFAULT_MAX_SHRINK_PERCENT, evaluateBackups } from '../backup/catalog/check.ts'
import { readHistory } from '../backup/catalog/history.ts'
import { objectStore } from '../backup/catalog/store.ts'
import type { ObjectStorage } from '../storage/storage.ts'
import { openStorage } from '../storage/url.ts'
import type { ProgressListener } from '../progress.ts'
import { testSpans } from '../telemetry/step-spans.ts'
import { withSpan } from '../telemetry/tracing.ts'
import { DEFAULT_INTERVAL_MS, startDashboardServer, type DashboardServer } from '../web/server.ts'
import { openDatabase } from '../db/open.ts'
import { defaultSinkPath, type TrafficSource } from './app-traffic.ts'
import { openLiveTraffic, type LiveTraffic, type TrafficObservations } from './live-traffic.ts'
import type { PerformanceMetrics } from './performance-metrics.ts'
import { backupStatusFromCheck, type BackupStatus } from '../web/snapshot.ts'
import { DatabasePerformanceDashboard, type DashboardOptions } from './dashboard.ts'

export interface ServeDashboardOptions {
  database?: string
  tenant?: string
  thresholds: NonNullable<DashboardOptions['thresholds']>
  environment: ToolkitEnvironment
  /** Default 127.0.0.1; any other address needs `token`. */
  host?: string
  /** Default 4319; 0 picks a free port. */
  port?: number
  token?: string
  /** Between two analyses; default 5 s. */
  intervalMs?: number
  /** The backup folder whose status is shown (absolute); undefined: no backup status. */
  backupDir?: string
  /** Where the off-site copies are (default BACKUP_OFFSITE_URL); undefined: none configured. */
  offsiteUrl?: string
  /** Stops the server (Ctrl-C). */
  signal: AbortSignal
  onProgress?: ProgressListener
  /** The server listens (called once, with its URL, before waiting for `signal`). */
  onListening(server: DashboardServer): void
  /** One collection failed; the last good snapshot stays served. */
  onCollectError(error: unknown): void
  /** The app's real traffic instead of the six tests: `app` (the collector's sink, default `<SQLite file>.metrics.ndjson`) or `pg_stat_statements`. */
  traffic?: { source: TrafficSource; sink?: string }
  /** Test seam, or another source of metrics: the dashboard to analyse (default: one over `database`). */
  dashboard?: Pick<DatabasePerformanceDashboard, 'analyzePerformance' | 'close'>
  now?: () => Date
}

/**
 * @example await serveDashboard({ thresholds: {}, environment, signal, onListening: (s) => console.log(s.url), onCollectError: warn })
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<{ collections: number }> {
  if (options.traffic !== undefined) {
    const db = await openDatabase(options.database ?? options.environment.databaseUrl, { environment: options.environment })
    const now = options.now ?? (() => new Date())
    const reader = openLiveTraffic({
      database: db,
      source: options.traffic.source,
      sink: options.traffic.sink ?? defaultSinkPath(db),
      slowMs: options.thresholds.slowMs,
      firstWindowMs: options.intervalMs ?? DEFAULT_INTERVAL_MS,
      now: () => now().getTime(),
    })
    return serveWith(options, { close: () => db.close() }, async () => {
      const { traffic, observations } = await withSpan('dashboard.traffic', {}, () => reader.collect())
      return { traffic, observations }
    })
  }
  const dashboard =
    options.dashboard ??
    new DatabasePerformanceDashboard({ database: options.database, environment: options.environment, tenant: options.tenant, thresholds: options.thresholds, onProgress: testSpans(options.onProgress) })
  return serveWith(options, dashboard, async () => ({ metrics: await withSpan('dashboard.analyze', {}, () => dashboard.analyzePerformance()) }))
}

/** The server around one source of numbers; the backup status is added to each collection. */
async function serveWith(
  options: ServeDashboardOptions,
  resource: { close(): Promise<void> },
  collectSource: () => Promise<{ metrics: PerformanceMetrics } | { traffic: LiveTraffic; observations: TrafficObservations }>,
): Promise<{ collections: number }> {
  const now = options.now ?? (() => new Date())
  const env = options.environment
  const offsiteUrl = options.offsiteUrl ?? env.backupOffsiteUrl
  const offsite = offsiteUrl === undefined ? undefined : openStorage(offsiteUrl, { env: env.storage, cwd: env.cwd })
  let collections = 0
  try {
    const server = await startDashboardServer({
      host: options.host,
      port: options.port,
      token: options.token,
      intervalMs: options.intervalMs,
      now,
      onCollectError: options.onCollectError,
      collect: async () => {
        const measured = await collectSource()
        const backup = options.backupDir === undefined ? null : await backupStatus(options.backupDir, now(), { offsite })
        collections++
        return { collectedAt: now().toISOString(), ...measured, backup }
      },
    })
    try {
      options.onListening(server)
      await new Promise<void>((resolve) => {
        if (options.signal.aborted) resolve()
        else options.signal.addEventListener('abort', () => resolve(), { once: true })
      })
    } finally {
      await server.close()
    }
  } finally {
    await resource.close()
  }
  return { collections }
}

/**
 * The backup status of a folder, judged with `advanced-backup check`'s default thresholds: the
 * newest backup, whether the off-site storage holds a whole copy of it, and the last restore drill
 * (history.jsonl's newest `drill` line, success or failure).
 * @example await backupStatus('/var/backups/ipm', new Date(), { offsite: openStorage('s3://ipm/prod', { env }) })
 */
export async function backupStatus(backupDir: string, now: Date, options: { offsite?: ObjectStorage } = {}): Promise<BackupStatus> {
  const entries = await listBackupEntries(backupDir)
  const history = await readHistory(backupDir)
  const copies = options.offsite === undefined ? undefined : await objectStore(options.offsite).list()
  const check = evaluateBackups(entries, history.records, {
    backupDir,
    now,
    maxAgeMs: DEFAULT_MAX_AGE_MS,
    maxShrinkPercent: DEFAULT_MAX_SHRINK_PERCENT,
    maxDrillAgeMs: DEFAULT_MAX_DRILL_AGE_MS,
    warnings: history.warnings,
    ...(options.offsite !== undefined && copies !== undefined ? { offsite: { location: options.offsite.location, entries: copies } } : {}),
  })
  // A whole copy: its metadata sound and its archive present (as `check` counts them).
  const whole = new Set((copies ?? []).filter((entry) => entry.metadata !== undefined && entry.sealValid && entry.problem === undefined).map((entry) => entry.id))
  const drill = history.records.findLast((record) => record.operation === 'drill')
  return backupStatusFromCheck(check, entries, {
    offsite: (id) => (options.offsite !== undefined && whole.has(id) ? { target: options.offsite.location } : null),
    lastDrill: drill === undefined ? null : { at: drill.end, result: drill.result, ...(drill.error !== undefined ? { error: drill.error } : {}) },
  })
}
