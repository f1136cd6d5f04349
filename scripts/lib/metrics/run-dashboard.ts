/**
 * One dashboard run as the command line asks for it: analyse once (a check: an alert or a failed
 * test fails it) or watch (re-run, report, keep going). The caller renders each report through
 * `onReport`; the files are written AFTER it, so a report is never lost to an unwritable `--output`.
 * Alerts go to `onAlert` and, when channels are configured, through notifyAlerts (deduplicated across
 * runs by the state file; a failed channel is reported, it never fails the run by itself).
 * `--export` writes the live server's exporter (web/prometheus.ts) to a file: same metric names, no
 * tenant id or SQL text as a label; its counters grow across the runs of a watch.
 */
import { dirname, join, resolve } from 'node:path'
import { alertChannelsFromEnvironment } from '../alerts/config.ts'
import type { AlertChannel } from '../alerts/channels.ts'
import { notifyAlerts, renderDeliveries } from '../alerts/notify.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import { describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { testSpans } from '../telemetry/step-spans.ts'
import { withSpan } from '../telemetry/tracing.ts'
import { writeFileAtomic } from '../fs/atomic.ts'
import { mapFilesystemError } from '../fs/errors.ts'
import { DatabasePerformanceDashboard, type DashboardOptions } from './dashboard.ts'
import { writePerformanceMetrics, type PerformanceMetrics } from './performance-metrics.ts'
import { ALERT_SOURCE, checkAlerts, watchPerformance, type AlertRules } from './watch.ts'

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
  /** Where alerts go; default the channels the environment configures. */
  alertChannels?: AlertChannel[]
  /** The alert state file; default ALERT_STATE_FILE, else `.alert-state.json` beside `output`. */
  alertStatePath?: string
}

/** @example const { exitCode } = await runDashboard({ output: 'performance-metrics.json', rules: {}, thresholds: {}, environment, onReport, onError, onAlert }) */
export async function runDashboard(options: RunDashboardOptions): Promise<{ exitCode: 0 | 1; runs: number }> {
  const dashboard =
    options.dashboard ??
    new DatabasePerformanceDashboard({ database: options.database, environment: options.environment, tenant: options.tenant, thresholds: options.thresholds, onProgress: testSpans(options.onProgress) })
  // One span per analysis (tests and Prisma queries beneath it) when tracing is on.
  const analyze = () => withSpan('dashboard.analyze', {}, () => dashboard.analyzePerformance())
  const environment = options.environment
  const output = resolve(environment.cwd, options.output)
  const prometheus = options.prometheusOutput === undefined ? undefined : resolve(environment.cwd, options.prometheusOutput)
  // prom-client is loaded by --export only.
  const exposeMetrics =
    prometheus === undefined
      ? undefined
      : await import('../web/prometheus.ts').then(({ createPrometheusExporter, renderMetricsExposition }) => {
          const exporter = createPrometheusExporter()
          return (metrics: PerformanceMetrics) => renderMetricsExposition(metrics, exporter)
        })
  const rulesSet = options.rules.slowQueries !== undefined || options.rules.p95Ms !== undefined
  // Only read when a rule is set: a dashboard without thresholds never needs the alert configuration.
  const channels = rulesSet ? (options.alertChannels ?? alertChannelsFromEnvironment(environment.alerts)) : []
  const statePath =
    options.alertStatePath ?? (environment.alertStateFile !== undefined ? resolve(environment.cwd, environment.alertStateFile) : join(dirname(output), '.alert-state.json'))
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
    if (prometheus !== undefined && exposeMetrics !== undefined) {
      const exposition = await exposeMetrics(metrics)
      await write(prometheus, () => writeFileAtomic(prometheus, exposition))
    }
    if (metrics.tests.some((t) => t.status === 'failed')) failed = true
    const firing = checkAlerts(metrics, options.rules)
    for (const alert of firing) {
      alerted = true
      options.onAlert(alert.title)
    }
    if (channels.length > 0) {
      const told = await notifyAlerts({ source: ALERT_SOURCE, firing, channels, statePath })
      for (const line of renderDeliveries(told)) if (line.startsWith('✗') || line.startsWith('⚠')) options.onError(line.replace(/^[✗⚠] /, ''))
    }
  }

  try {
    if (options.watchIntervalMs === undefined) {
      await report(await analyze())
      return { exitCode: failed || alerted ? 1 : 0, runs }
    }
    const result = await watchPerformance({
      analyze,
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

