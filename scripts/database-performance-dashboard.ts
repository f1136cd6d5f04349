/**
 * Performance dashboard of IA Poste Manager: runs the spec's six tests through a measured Prisma
 * Client, prints what every query cost and why, and writes performance-metrics.json.
 * One run | --watch [seconds] | --export (adds a Prometheus file) | --json. Exit: 0 ok, 1 failure, 2 usage.
 */
import './lib/node-floor.ts'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { runCommand, usageError, frenchCommanderMessage } from './lib/cli.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { DatabasePerformanceDashboard } from './lib/metrics/dashboard.ts'
import { renderDashboard, renderTestResults } from './lib/metrics/render.ts'
import { runDashboard } from './lib/metrics/run-dashboard.ts'
import { terminalProgress } from './lib/progress.ts'

// The spec imports the class from this script: `import { DatabasePerformanceDashboard } from './scripts/database-performance-dashboard'`.
export { DatabasePerformanceDashboard }

const environment = resolveEnvironment()

export interface Options {
  database?: string
  output: string
  prometheusOutput?: string
  export?: boolean
  json?: boolean
  watch?: number | true
  iterations?: number
  fastMs?: number
  slowMs?: number
  alertSlow?: number
  alertP95?: number
  tenant?: string
}

const number = (kind: 'integer' | 'number', min: number) => (value: string) => {
  const n = Number(value.replaceAll('_', ''))
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (kind === 'integer' && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${kind === 'integer' ? 'un entier' : 'un nombre'} ≥ ${min} est attendu`)
  }
  return n
}

function program(): Command {
  return new Command('database-performance-dashboard')
    .description("Measure the database's queries: the spec's six tests, slow queries, tenants, cache, recommendations")
    .option('--database <url>', 'database URL (default: DATABASE_URL or file:./prisma/dev.db)')
    .option('--output <path>', 'where the metrics JSON is written, on every run', 'performance-metrics.json')
    .option('--export', 'also write the metrics in Prometheus text format (for external monitoring)')
    .option('--prometheus-output <path>', 'where --export writes the Prometheus file (default: the --output path with .prom)')
    .option('--json', 'print the metrics object as JSON on stdout (one line per run with --watch)')
    .addOption(new Option('--watch [seconds]', 're-run every N seconds (default 60) until interrupted').argParser(number('number', 0.01)))
    .option('--iterations <n>', 'with --watch: stop after N runs', number('integer', 1))
    .option('--fast-ms <ms>', 'operations faster than this are "fast" (default 50)', number('number', 0))
    .option('--slow-ms <ms>', 'operations slower than this are "slow" (default 100)', number('number', 0))
    .option('--alert-slow <n>', 'alert when more than N operations are slow (a single run then exits 1)', number('integer', 0))
    .option('--alert-p95 <ms>', 'alert when the p95 operation time exceeds this (a single run then exits 1)', number('number', 0))
    .option('--tenant <id-or-slug>', 'tenant of test 4 (default: the demo cabinet, else the first tenant)')
}

/** The command line as options, or 'help' when help was printed; a usage error (exit code 2) otherwise. */
export function parseOptions(argv: readonly string[]): Options | 'help' {
  const command = program().exitOverride().configureOutput({ writeErr: () => {} })
  try {
    command.parse(argv)
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 'help'
      throw usageError(frenchCommanderMessage(error), 'Lancez avec --help pour voir les options.')
    }
    throw error
  }
  return validated(command.opts<Options>(), command.args)
}

/** The checks commander cannot make: no stray argument, --iterations only with --watch, fast ≤ slow. */
function validated(options: Options, args: readonly string[]): Options {
  if (args.length > 0) throw usageError(`unexpected argument "${args[0]}"`, 'Run with --help to see the options.')
  if (options.iterations !== undefined && options.watch === undefined) throw usageError('--iterations needs --watch', 'Add --watch [seconds].')
  const fast = options.fastMs ?? 50
  const slow = options.slowMs ?? 100
  if (fast > slow) throw usageError(`--fast-ms (${fast}) is above --slow-ms (${slow})`, 'Give a fast threshold at or below the slow one.')
  return options
}

/** Arguments → one library call (runDashboard) → rendering. */
async function main(options: Options): Promise<number> {
  const progress = terminalProgress({ enabled: !options.json })
  const watching = options.watch !== undefined
  try {
    const { exitCode } = await runDashboard({
      database: options.database,
      tenant: options.tenant,
      thresholds: { ...(options.fastMs === undefined ? {} : { fastMs: options.fastMs }), ...(options.slowMs === undefined ? {} : { slowMs: options.slowMs }) },
      output: options.output,
      ...(options.export ? { prometheusOutput: options.prometheusOutput ?? options.output.replace(/(\.json)?$/i, '.prom') } : {}),
      ...(watching ? { watchIntervalMs: (options.watch === true ? 60 : options.watch!) * 1000 } : {}),
      iterations: options.iterations,
      rules: { slowQueries: options.alertSlow, p95Ms: options.alertP95 },
      environment,
      onProgress: progress.onProgress,
      onReport: (metrics, files) => {
        progress.stop()
        if (options.json) process.stdout.write(`${watching ? JSON.stringify(metrics) : JSON.stringify(metrics, null, 2)}\n`)
        else {
          process.stdout.write(`${renderTestResults(metrics.tests)}${renderDashboard(metrics)}`)
          process.stdout.write(`✅ Métriques exportées vers: ${files.output}\n`)
          if (files.prometheus !== undefined) process.stdout.write(`✅ Métriques Prometheus exportées vers: ${files.prometheus}\n`)
        }
      },
      onAlert: (text) => process.stderr.write(`ALERTE: ${text}\n`),
      onError: (message, iteration) => {
        progress.stop()
        process.stderr.write(`Error${iteration === undefined ? '' : ` (analyse ${iteration})`}: ${message}\n`)
      },
    })
    return exitCode
  } finally {
    progress.stop()
  }
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  const command = program()
  runCommand<Options>(command, (options) => main(validated(options, command.args)), { debug: environment.debug, usage: (error) => usageError(frenchCommanderMessage(error), 'Lancez avec --help pour voir les options.') })
}
