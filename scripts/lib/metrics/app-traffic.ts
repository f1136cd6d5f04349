/**
 * The application's own statements over a window, and the index advice proved on them:
 * - `pg_stat_statements` (PostgreSQL): two snapshots `windowMs` apart, diffed;
 * - `app` (any engine): the collector's sink (see collector.ts), executions of the last `windowMs`.
 * Then every statement with enough executions goes through the index advice (index-advice.ts) on
 * the engine's lab, and `applyIndexRecommendation` builds one proven index and re-measures it.
 * `watchAppTraffic` keeps going: consecutive windows (the second snapshot of one is the first of
 * the next; the sink is read from where the previous window ended), each reported, then written.
 */
import { resolve } from 'node:path'
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { DatabaseHandle } from '../db/connection.ts'
import { writeFileAtomic } from '../fs/atomic.ts'
import { mapFilesystemError } from '../fs/errors.ts'
import { describeError, ToolkitError } from '../errors.ts'
import { engineNamed } from '../engines/index.ts'
import { readCollectorSink } from './collector.ts'
import { displaySql, fingerprintSql } from '../db/fingerprint.ts'
import { adviseIndexes, applyRecommendation, type AppliedRecommendation, type IndexAdvice, type IndexAdviceOptions, type ObservedStatement } from './index-advice.ts'
import { type IndexLab } from '../engines/index-lab.ts'
import { diffStatementSnapshots } from './statements.ts'
import { type StatementSnapshot } from '../engines/metrics-engine.ts'
import { roundMs, summarizeDurations } from '../statistics.ts'

export type TrafficSource = 'pg_stat_statements' | 'app'

/** What every source says of one fingerprint over a window. */
export interface StatementTotals {
  id: string
  /** `op`: a Prisma operation (wall time in the app); `sql`: a statement (database time). */
  kind: 'op' | 'sql'
  display: string
  calls: number
  totalMs: number
  meanMs: number
}

export interface TrafficStatement extends StatementTotals {
  p95Ms?: number
  rows?: number
  /** Executions per tenant (from the collector; `null` key: unattributed). */
  tenants?: Record<string, number>
}

export interface AppTrafficReport {
  source: TrafficSource
  window: { startedAt: number; endedAt: number }
  statements: TrafficStatement[]
  /** A French line when the source is unavailable (pg_stat_statements not enabled). */
  notice?: string
  advice: IndexAdvice
}

export interface AppTrafficOptions {
  database: DatabaseHandle
  source: TrafficSource
  /** The collector's sink (source `app`). */
  sink?: string
  /** The window: pg_stat_statements waits this long between its snapshots; the sink keeps executions this recent. Default 5 min. */
  windowMs?: number
  advice?: Partial<IndexAdviceOptions>
  now?: () => number
  sleep?: (ms: number) => Promise<void>
}

/**
 * @example const report = await analyzeAppTraffic({ database: db, source: 'app', sink: 'prisma/dev.db.metrics.ndjson', windowMs: 300_000 })
 */
export async function analyzeAppTraffic(options: AppTrafficOptions): Promise<AppTrafficReport> {
  return (await analyze(options, {})).report
}

/** Where the previous window ended: the next one starts there (nothing counted twice, nothing lost between windows). */
interface WindowCursor {
  /** pg_stat_statements: the previous window's second snapshot. */
  snapshot?: StatementSnapshot
  /** app: the previous window's end (epoch ms). */
  endedAt?: number
}

export interface WatchAppTrafficOptions extends AppTrafficOptions {
  /** Stop after this many windows; unset: until `signal` aborts. */
  iterations?: number
  signal?: AbortSignal
  /** Where each window's report is written (JSON, atomically, after `onReport`); relative to `cwd`. */
  output?: string
  cwd?: string
  onReport(report: AppTrafficReport, iteration: number): void
  /** A window that failed (database down, sink unreadable) or a file not written: reported, and the watch goes on. */
  onError(message: string, iteration: number): void
}

/**
 * One window (`iterations: 1`) or consecutive windows until `iterations` or the signal: the
 * pg_stat_statements windows each last `windowMs` (the first one too: the view has no history);
 * the sink keeps its history, so its first window is the last `windowMs` and the next ones follow
 * it, each `windowMs` later. Exit code 1 when a window or a write failed.
 * @example await watchAppTraffic({ database: db, source: 'app', sink, windowMs: 60_000, iterations: 3, output: 'app-traffic.json', onReport: print, onError: warn })
 */
export async function watchAppTraffic(options: WatchAppTrafficOptions): Promise<{ exitCode: 0 | 1; windows: number }> {
  const cursor: WindowCursor = {}
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS
  const sleep = options.sleep ?? ((ms: number) => sleepFor(ms, undefined, { signal: options.signal }))
  let windows = 0
  let failed = false
  while (!options.signal?.aborted && (options.iterations === undefined || windows < options.iterations)) {
    windows++
    try {
      // The sink already holds the last window; later windows wait for theirs to pass.
      if (options.source === 'app' && cursor.endedAt !== undefined) await sleep(windowMs)
      const { report } = await analyze({ ...options, sleep }, cursor)
      options.onReport(report, windows)
      if (options.output !== undefined) {
        const path = resolve(options.cwd ?? '.', options.output)
        try {
          writeFileAtomic(path, `${JSON.stringify(report, null, 2)}\n`)
        } catch (error) {
          failed = true
          options.onError(describeError(mapFilesystemError(error, 'le rapport des requêtes', path) ?? error), windows)
        }
      }
    } catch (error) {
      if (options.signal?.aborted) break
      failed = true
      options.onError(describeError(error), windows)
    }
  }
  return { exitCode: failed ? 1 : 0, windows }
}

const DEFAULT_WINDOW_MS = 300_000

/** Where the collector writes by default: beside a database file (`<file>.metrics.ndjson`); undefined for a server database. */
export function defaultSinkPath(db: Pick<DatabaseHandle, 'location'>): string | undefined {
  return 'path' in db.location ? `${db.location.path}.metrics.ndjson` : undefined
}

/**
 * Where a window's report goes beside the dashboard's `--output`: `performance-metrics.json` →
 * `performance-metrics.traffic.json` (that file keeps its own format for the tools that read it).
 */
export function trafficReportPath(output: string): string {
  return /\.json$/i.test(output) ? output.replace(/\.json$/i, '.traffic.json') : `${output}.traffic.json`
}

async function analyze(options: AppTrafficOptions, cursor: WindowCursor): Promise<{ report: AppTrafficReport; observed: ObservedStatement[] }> {
  const { observed, statements, window, notice } = await observe(options, cursor)
  if (notice !== undefined) return { observed, report: { source: options.source, window, statements, notice, advice: { recommendations: [], rejected: [], findings: [] } } }
  const lab = await openIndexLab(options.database, true)
  try {
    return { observed, report: { source: options.source, window, statements, advice: await adviseIndexes(lab, observed, options.advice) } }
  } finally {
    await lab.close()
  }
}

/**
 * Re-runs the advice, then builds the recommendation `id` on the database itself and measures it.
 * @example const applied = await applyIndexRecommendation({ database: db, source: 'app', sink, id: 'idx-3f2a…' })
 */
export async function applyIndexRecommendation(options: AppTrafficOptions & { id: string }): Promise<AppliedRecommendation> {
  const { report, observed } = await analyze(options, {})
  const recommendation = report.advice.recommendations.find((r) => r.id === options.id)
  if (recommendation === undefined) {
    throw new ToolkitError(`aucune recommandation prouvée "${options.id}" dans cette fenêtre`, {
      hint: `recommandations actuelles: ${report.advice.recommendations.map((r) => r.id).join(', ') || 'aucune'}; relancez le tableau de bord sans --apply pour les voir`,
    })
  }
  const statement = observed.find((s) => s.id === recommendation.fingerprintIds[0])!
  const live = await openIndexLab(options.database, false)
  try {
    return await applyRecommendation(live, recommendation, statement, { measureOn: () => openIndexLab(options.database, true) })
  } finally {
    await live.close()
  }
}

/** The engine's index lab: a scratch copy for SQLite and D1, rolled-back transactions for PostgreSQL; `live` measures on the database itself. */
function openIndexLab(db: DatabaseHandle, scratch: boolean): Promise<IndexLab> {
  return engineNamed(db.engine).openIndexLab(db, { scratch })
}

async function observe(options: AppTrafficOptions, cursor: WindowCursor): Promise<{ observed: ObservedStatement[]; statements: TrafficStatement[]; window: AppTrafficReport['window']; notice?: string }> {
  const now = options.now ?? Date.now
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS
  if (options.source === 'pg_stat_statements') {
    const snapshotStatements = engineNamed(options.database.engine).snapshotStatements
    if (snapshotStatements === undefined) throw new ToolkitError('--source pg_stat_statements demande une base PostgreSQL', { hint: 'utilisez --source app avec le collecteur' })
    let first = cursor.snapshot
    if (first === undefined) {
      const read = await snapshotStatements(options.database.sql, now)
      if (!read.available) return { observed: [], statements: [], window: { startedAt: now(), endedAt: now() }, notice: read.reason }
      first = read.snapshot
    }
    await (options.sleep ?? ((ms) => sleepFor(ms)))(windowMs)
    const second = await snapshotStatements(options.database.sql, now)
    if (!second.available) {
      cursor.snapshot = undefined
      return { observed: [], statements: [], window: { startedAt: first.takenAt, endedAt: now() }, notice: second.reason }
    }
    cursor.snapshot = second.snapshot
    const diff = diffStatementSnapshots(first, second.snapshot)
    return {
      observed: diff.statements.map((s) => ({ id: s.id, sql: s.fingerprint, calls: s.calls })),
      statements: diff.statements.map((s) => ({ id: s.id, kind: 'sql', display: s.display, calls: s.calls, totalMs: s.totalMs, meanMs: s.meanMs, rows: s.rows })),
      window: { startedAt: diff.startedAt, endedAt: diff.endedAt },
    }
  }
  if (options.sink === undefined) throw new ToolkitError('--source app demande le fichier du collecteur', { hint: '--sink <chemin> (par défaut <base>.metrics.ndjson à côté d\'une base SQLite)' })
  const endedAt = now()
  const startedAt = cursor.endedAt ?? endedAt - windowMs
  const sink = await readCollectorSink(options.sink, { since: startedAt, until: endedAt })
  cursor.endedAt = endedAt
  const statements = sink.fingerprints.map((f) => {
    const summary = summarizeDurations(f.durations)
    const tenants: Record<string, number> = {}
    for (const [tenant, perTenant] of f.tenants) tenants[tenant ?? 'null'] = perTenant.count
    return { id: f.id, kind: f.kind, display: f.kind === 'sql' ? displaySql(f.fingerprint) : f.fingerprint, calls: f.count, totalMs: summary.totalMs, meanMs: summary.meanMs, p95Ms: summary.p95Ms, rows: f.rows, tenants }
  })
  statements.sort((a, b) => b.totalMs - a.totalMs)
  return {
    observed: sink.fingerprints.filter((f) => f.kind === 'sql').map((f) => ({ id: f.id, sql: fingerprintSql(f.fingerprint), calls: f.count })),
    statements: statements.map((s) => ({ ...s, totalMs: roundMs(s.totalMs) })),
    window: { startedAt, endedAt },
  }
}
