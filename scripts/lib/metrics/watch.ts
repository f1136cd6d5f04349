/**
 * Watch mode: analyze, report, wait, again, until the iterations are done or the signal aborts; and
 * the alert rules (`--alert-slow N`, `--alert-p95 ms`) that each analysis is checked against.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Alert } from '../alerts.ts'
import type { PerformanceMetrics } from './performance-metrics.ts'

export interface AlertRules {
  /** Alert when more operations than this are slow. */
  slowQueries?: number
  /** Alert when the p95 wall time of the operations exceeds this many milliseconds. */
  p95Ms?: number
}

export const ALERT_SOURCE = 'database-performance-dashboard'

/**
 * The alerts an analysis raises; empty when every rule holds.
 * @example checkAlerts(metrics, { slowQueries: 10 }) // [{ source, text: '12 requêtes lentes (>100ms) dépassent le seuil de 10', details }]
 */
export function checkAlerts(metrics: PerformanceMetrics, rules: AlertRules): Alert[] {
  const alerts: Alert[] = []
  const g = metrics.globalMetrics
  const details = { database: metrics.database, timestamp: metrics.timestamp, slowQueriesCount: g.slowQueriesCount, p95Ms: g.p95Duration }
  if (rules.slowQueries !== undefined && g.slowQueriesCount > rules.slowQueries) {
    alerts.push({
      source: ALERT_SOURCE,
      text: `${g.slowQueriesCount} requêtes lentes (>${metrics.thresholds.slowMs}ms) dépassent le seuil de ${rules.slowQueries} sur ${metrics.database}`,
      details: { ...details, rule: 'alert-slow', threshold: rules.slowQueries },
    })
  }
  if (rules.p95Ms !== undefined && g.p95Duration > rules.p95Ms) {
    alerts.push({
      source: ALERT_SOURCE,
      text: `p95 des requêtes ${g.p95Duration.toFixed(1)}ms dépasse le seuil de ${rules.p95Ms}ms sur ${metrics.database}`,
      details: { ...details, rule: 'alert-p95', threshold: rules.p95Ms },
    })
  }
  return alerts
}

export interface WatchOptions {
  analyze: () => Promise<PerformanceMetrics>
  intervalMs: number
  /** Stop after this many analyses; unset runs until the signal aborts. */
  iterations?: number
  signal?: AbortSignal
  onReport: (metrics: PerformanceMetrics, iteration: number) => Promise<void>
  /** A failed analysis (database down…): reported, and the watch goes on. */
  onError: (error: unknown, iteration: number) => Promise<void> | void
}

/**
 * @example await watchPerformance({ analyze: () => dashboard.analyzePerformance(), intervalMs: 60_000, onReport: print, onError: warn })
 */
export async function watchPerformance(options: WatchOptions): Promise<{ runs: number; failures: number }> {
  let runs = 0
  let failures = 0
  while (!options.signal?.aborted && (options.iterations === undefined || runs < options.iterations)) {
    runs++
    try {
      await options.onReport(await options.analyze(), runs)
    } catch (error) {
      failures++
      await options.onError(error, runs)
    }
    if (options.iterations !== undefined && runs >= options.iterations) break
    try {
      await sleep(options.intervalMs, undefined, { signal: options.signal })
    } catch {
      break
    }
  }
  return { runs, failures }
}
