/**
 * One dashboard run as the command line asks for it: analyse once (a check: an alert or a failed
 * test fails it) or watch (re-run, report, keep going). The caller renders each report through
 * `onReport`; the files are written AFTER it, so a report is never lost to an unwritable `--output`.
 * Alerts go to `onAlert` and, when a webhook is set, to the webhook.
 */
import { resolve } from 'node:path'
import { sendAlert } from '../alerts.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import { describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { mapFilesystemError } from '../fs/errors.ts'
import { DatabasePerformanceDashboard, type DashboardOptions } from './dashboard.ts'
import { writePerformanceMetrics, type PerformanceMetrics } from './performance-metrics.ts'
import { writePrometheusMetrics } from './prometheus.ts'
import { checkAlerts, watchPerformance, type AlertRules } from './watch.ts'

export interface RunDashboardOptions {
  database?: string
  tenant?: string
  thresholds: NonNullable<DashboardOptions['thresholds']>
  /** Where the metrics JSON is written (relative to the environment's working directory). */
  output: string
  /** Where the Prometheus file is written; undefined: none. */
  prometheusOutput?: string
  /** Re-run every this many ms; undefined: one run. */
  watchIntervalMs?: number
  iterations?: number
  rules: AlertRules
  environment: ToolkitEnvironment
  onProgress?: ProgressListener
  /** Renders one run; called before the files are written. */
  onReport(metrics: PerformanceMetrics, files: { output: string; prometheus?: string }): void
  /** A file could not be written, an alert could not be sent, one watch iteration failed. */
  onError(message: string, iteration?: number): void
  onAlert(text: string): void
  /** Test seam: the dashboard to run (default: one over `database`). */
  dashboard?: Pick<DatabasePerformanceDashboard, 'analyzePerformance' | 'close'>
  /** Test seam: how an alert reaches the webhook. */
  send?: typeof sendAlert
}

/** @example const { exitCode } = await runDashboard({ output: 'performance-metrics.json', rules: {}, thresholds: {}, environment, onReport, onError, onAlert }) */
export async function runDashboard(options: RunDashboardOptions): Promise<{ exitCode: 0 | 1; runs: number }> {
  const dashboard =
    options.dashboard ??
    new DatabasePerformanceDashboard({ database: options.database, environment: options.environment, tenant: options.tenant, thresholds: options.thresholds, onProgress: options.onProgress })
  const send = options.send ?? sendAlert
  const output = resolve(options.environment.cwd, options.output)
  const prometheus = options.prometheusOutput === undefined ? undefined : resolve(options.environment.cwd, options.prometheusOutput)
  let failed = false
  // A single run is a check (cron, CI): an alert fails it. A watch keeps going and only reports.
  let alerted = false
  let runs = 0

  const report = async (metrics: PerformanceMetrics) => {
    runs++
    options.onReport(metrics, { output: options.output, ...(options.prometheusOutput === undefined ? {} : { prometheus: options.prometheusOutput }) })
    const write = async (path: string, work: () => void | Promise<void>) => {
      try {
        await work()
      } catch (error) {
        failed = true
        options.onError(describeError(mapFilesystemError(error, 'le fichier des métriques', path) ?? error))
      }
    }
    await write(output, () => writePerformanceMetrics(output, metrics))
    if (prometheus !== undefined) await write(prometheus, () => writePrometheusMetrics(prometheus, metrics))
    if (metrics.tests.some((t) => t.status === 'failed')) failed = true
    for (const alert of checkAlerts(metrics, options.rules)) {
      alerted = true
      options.onAlert(alert.text)
      if (options.environment.alertWebhookUrl === undefined) continue
      try {
        await send(options.environment.alertWebhookUrl, alert)
      } catch (error) {
        failed = true
        options.onError(describeError(error))
      }
    }
  }

  try {
    if (options.watchIntervalMs === undefined) {
      await report(await dashboard.analyzePerformance())
      return { exitCode: failed || alerted ? 1 : 0, runs }
    }
    const result = await watchPerformance({
      analyze: () => dashboard.analyzePerformance(),
      intervalMs: options.watchIntervalMs,
      iterations: options.iterations,
      onReport: (metrics) => report(metrics),
      onError: (error, iteration) => options.onError(describeError(error), iteration),
    })
    return { exitCode: failed || result.failures > 0 ? 1 : 0, runs }
  } finally {
    await dashboard.close()
  }
}

