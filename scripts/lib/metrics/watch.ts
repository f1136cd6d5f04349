/**
 * Watch mode: analyze, report, wait, again, until the iterations are done or the signal aborts; and
 * the alert rules (`--alert-slow N`, `--alert-p95 ms`) that each analysis is checked against.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { AlertCondition } from '../alerts/alert.ts'
import type { PerformanceMetrics } from './performance-metrics.ts'

export interface AlertRules {
  /** Alert when more operations than this are slow. */
  slowQueries?: number
  /** Alert when the p95 wall time of the operations exceeds this many milliseconds. */
  p95Ms?: number
}

export const ALERT_SOURCE = 'database-performance-dashboard'

/**
 * The alert conditions an analysis raises; empty when every rule holds. Keys are stable per rule and
 * database, so notifyAlerts deduplicates a threshold that stays crossed and resolves it when it clears.
 * @example checkAlerts(metrics, { slowQueries: 10 }) // [{ key: 'dashboard:alert-slow:file:…', severity: 'warning', title: '12 requêtes lentes (>100ms) dépassent le seuil de 10 sur file:…' }]
 */
export function checkAlerts(metrics: PerformanceMetrics, rules: AlertRules): AlertCondition[] {
  const alerts: AlertCondition[] = []
  const g = metrics.globalMetrics
  const where = [`Base: ${metrics.database}`, `Analyse du ${metrics.timestamp}`]
  if (rules.slowQueries !== undefined && g.slowQueriesCount > rules.slowQueries) {
    alerts.push({
      key: `dashboard:alert-slow:${metrics.database}`,
      severity: 'warning',
      title: `${g.slowQueriesCount} requêtes lentes (>${metrics.thresholds.slowMs}ms) dépassent le seuil de ${rules.slowQueries} sur ${metrics.database}`,
      details: [...where, `Règle: --alert-slow ${rules.slowQueries}`],
    })
  }
  if (rules.p95Ms !== undefined && g.p95Duration > rules.p95Ms) {
    alerts.push({
      key: `dashboard:alert-p95:${metrics.database}`,
      severity: 'warning',
      title: `p95 des requêtes ${g.p95Duration.toFixed(1)}ms dépasse le seuil de ${rules.p95Ms}ms sur ${metrics.database}`,
      details: [...where, `Règle: --alert-p95 ${rules.p95Ms}`],
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
