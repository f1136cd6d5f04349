/**
 * What the live dashboard shows: the performance metrics of the dashboard (`PerformanceMetrics`)
 * plus the state of the backups. One type for `/api/snapshot`, the SSE events, the page and
 * `/metrics`. `sanitizeSnapshot` is applied to every snapshot before it leaves the process: plan
 * lines and recommendation texts may quote the values a query ran with (PostgreSQL's EXPLAIN prints
 * `Filter: ("tenantId" = 'c1'::text)`), and no value may reach the page.
 */
import type { CheckResult } from '../backup/catalog/check.ts'
import type { BackupEntry } from '../backup/catalog/catalog.ts'
import { redactLiterals } from '../db/fingerprint.ts'
import type { LiveTraffic } from '../metrics/live-traffic.ts'
import type { PerformanceMetrics } from '../metrics/performance-metrics.ts'

export interface OffsiteCopy {
  /** The off-site storage holding a whole copy (archive and metadata), credentials masked (`s3://bucket/prefix`). */
  target: string
}

export interface RestoreDrill {
  /** When the drill ran (ISO). */
  at: string
  result: 'success' | 'failure'
  /** One French line on failure (written by the drill from its checks: counts and names, no data value). */
  error?: string
}

export interface BackupStatus {
  backupDir: string
  /** When the backups were examined (ISO). */
  checkedAt: string
  /** The newest complete backup, verified or not; null when there is none. */
  newest: {
    id: string
    timestamp: string
    ageSeconds: number
    /** Bytes on disk. */
    sizeBytes: number
    verified: boolean
    /** Null when it has no off-site copy (or none is configured). */
    offsite: OffsiteCopy | null
  } | null
  /** The newest verified backup (the one `advanced-backup check` judges). */
  newestVerified: { id: string; timestamp: string; ageSeconds: number } | null
  /** The last operation recorded in history.jsonl. */
  lastRun: { operation: string; at: string; result: 'success' | 'failure' } | null
  lastDrill: RestoreDrill | null
  /** `advanced-backup check`'s problems, one French line each; empty when healthy. */
  problems: string[]
}

export interface DashboardSnapshot {
  /** When `collect` returned it (ISO). */
  collectedAt: string
  metrics: PerformanceMetrics
  /** Null when the server was started without a backup folder. */
  backup: BackupStatus | null
}

/** `--serve --source app|pg_stat_statements`: the application's real traffic of the last window instead of the six tests. */
export interface TrafficSnapshot {
  collectedAt: string
  traffic: LiveTraffic
  backup: BackupStatus | null
}

/** What /api/snapshot and /events carry: the six tests' analysis, or the app's real traffic. */
export type ServedSnapshot = DashboardSnapshot | TrafficSnapshot

export function isTrafficSnapshot(snapshot: ServedSnapshot): snapshot is TrafficSnapshot {
  return 'traffic' in snapshot
}

/**
 * The backup status from `advanced-backup check`'s result and the catalog; off-site copies and
 * drills come from their own modules.
 * @example backupStatusFromCheck(evaluateBackups(entries, history, options), entries, { lastDrill: null })
 */
export function backupStatusFromCheck(
  check: CheckResult,
  entries: readonly BackupEntry[],
  extras: { offsite?: (backupId: string) => OffsiteCopy | null; lastDrill?: RestoreDrill | null } = {},
): BackupStatus {
  const checkedAt = Date.parse(check.checkedAt)
  const newest = entries.find((entry) => entry.metadata !== undefined && entry.sealValid)?.metadata
  return {
    backupDir: check.backupDir,
    checkedAt: check.checkedAt,
    newest:
      newest === undefined
        ? null
        : {
            id: newest.id,
            timestamp: newest.timestamp,
            ageSeconds: Math.max(0, Math.round((checkedAt - Date.parse(newest.timestamp)) / 1000)),
            sizeBytes: newest.size,
            verified: newest.verified || check.newestVerified?.id === newest.id,
            offsite: extras.offsite?.(newest.id) ?? null,
          },
    newestVerified: check.newestVerified === null ? null : { id: check.newestVerified.id, timestamp: check.newestVerified.timestamp, ageSeconds: Math.round(check.newestVerified.ageMs / 1000) },
    lastRun: check.lastRun === null ? null : { operation: check.lastRun.operation, at: check.lastRun.end, result: check.lastRun.result },
    lastDrill: extras.lastDrill ?? null,
    problems: check.problems.map((p) => p.message),
  }
}

/** The snapshot with every plan line (as the engines' EXPLAIN output already is), every message and every statement through `redactLiterals`. */
export function sanitizeSnapshot<S extends ServedSnapshot>(snapshot: S): S
export function sanitizeSnapshot(snapshot: ServedSnapshot): ServedSnapshot {
  if (isTrafficSnapshot(snapshot)) {
    const t = snapshot.traffic
    const mask = (s: LiveTraffic['statements'][number]) => ({ ...s, display: redactLiterals(s.display) })
    return { ...snapshot, traffic: { ...t, statements: t.statements.map(mask), topDatabaseTime: t.topDatabaseTime.map(mask) } }
  }
  const metrics = snapshot.metrics
  return {
    ...snapshot,
    metrics: {
      ...metrics,
      recommendations: metrics.recommendations.map((r) => {
        const masked = { ...r, message: redactLiterals(r.message) }
        if ('plan' in masked.evidence) masked.evidence = { ...masked.evidence, plan: masked.evidence.plan.map(redactLiterals) }
        return masked as typeof r
      }),
    },
  }
}
