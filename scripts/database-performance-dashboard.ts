/**
 * Performance dashboard of IA Poste Manager: runs the spec's six tests through a measured Prisma
 * Client, prints what every query cost and why, and writes performance-metrics.json.
 * One run | --watch [seconds] | --export (adds a Prometheus file) | --json | --source app|pg_stat_statements (the
 * app's real statements and proven index advice) | --apply <id> | --serve (live web page and /metrics until Ctrl-C,
 * which stops it cleanly with exit 0; with --source app|pg_stat_statements it serves the app's real traffic). --otel traces the runs. Exit: 0 ok, 1 failure, 2 usage.
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
import { startTracing, tracingOptions } from './lib/telemetry/tracing.ts'
import { describeError } from './lib/errors.ts'
import { join, resolve } from 'node:path'
import { terminalProgress } from './lib/progress.ts'
import { openDatabase } from './lib/db/open.ts'
import { applyIndexRecommendation, defaultSinkPath, trafficReportPath, watchAppTraffic, type TrafficSource } from './lib/metrics/app-traffic.ts'
import { renderApplied, renderAppTraffic } from './lib/metrics/render-traffic.ts'

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
  source?: 'tests' | TrafficSource
  sink?: string
  window?: number
  apply?: string
  yes?: boolean
  serve?: boolean
  port?: number
  host?: string
  token?: string
  interval?: number
  backupDir?: string
  otel?: boolean
}

/** `5m`, `30s`, `1h`, `250ms` → milliseconds. */
const duration = (value: string) => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim())
  if (match === null) throw new InvalidArgumentError('durée attendue: 30s, 5m, 1h')
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h']
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
    .description("Mesurer les requêtes de la base : les six tests de la spécification, requêtes lentes, cabinets, cache, recommandations")
    .option('--database <url>', 'URL de la base (défaut : DATABASE_URL, sinon file:./prisma/dev.db)')
    .option('--output <path>', 'où écrire le JSON des métriques, à chaque analyse', 'performance-metrics.json')
    .option('--export', 'écrire aussi les métriques au format texte Prometheus (supervision externe)')
    .option('--prometheus-output <path>', 'où --export écrit le fichier Prometheus (défaut : le chemin de --output avec .prom)')
    .option('--json', 'écrire les métriques en JSON sur stdout (une ligne par analyse avec --watch)')
    .addOption(new Option('--watch [seconds]', 'relancer toutes les N secondes (défaut 60) jusqu’à interruption').argParser(number('number', 0.01)))
    .option('--iterations <n>', 'avec --watch : s’arrêter après N analyses', number('integer', 1))
    .option('--fast-ms <ms>', 'opérations plus rapides que ce seuil : « rapides » (défaut 50)', number('number', 0))
    .option('--slow-ms <ms>', 'opérations plus lentes que ce seuil : « lentes » (défaut 100)', number('number', 0))
    .option('--alert-slow <n>', 'alerter quand plus de N opérations sont lentes (une analyse unique sort alors avec 1)', number('integer', 0))
    .option('--alert-p95 <ms>', 'alerter quand le p95 des opérations dépasse ce temps (une analyse unique sort alors avec 1)', number('number', 0))
    .option('--tenant <id-or-slug>', 'cabinet du test 4 (défaut : le cabinet de démo, sinon le premier cabinet)')
    .addOption(new Option('--source <source>', "les requêtes mesurées : les six tests, celles de l'app (collecteur) ou pg_stat_statements").choices(['tests', 'app', 'pg_stat_statements']))
    .option('--sink <path>', "avec --source app : le fichier du collecteur (défaut : <base SQLite>.metrics.ndjson)")
    .option('--window <duration>', 'avec --source : la fenêtre observée (30s, 5m, 1h ; défaut 5m, ou N s avec --watch N) ; chaque fenêtre est écrite dans <--output>.traffic.json', duration)
    .option('--apply <id>', "crée l'index prouvé de cette recommandation, puis mesure le gain réel")
    .option('--yes', "avec --apply : sans demander de confirmation (scripts)")
    .option('--serve', 'servir le dashboard en direct (page web, /api/snapshot, /metrics) jusqu\'à Ctrl-C (npm run dashboard:web) ; avec --source app|pg_stat_statements : le trafic réel de l\'app')
    .option('--port <port>', 'avec --serve : port d\'écoute (défaut DASHBOARD_PORT, sinon 4319 ; 0 : un port libre)', number('integer', 0))
    .option('--host <adresse>', 'avec --serve : adresse d\'écoute (défaut 127.0.0.1 ; toute autre exige --token)')
    .option('--token <jeton>', 'avec --serve : jeton exigé à chaque requête (défaut : DASHBOARD_TOKEN)')
    .option('--interval <secondes>', 'avec --serve : secondes entre deux analyses (défaut 5)', number('number', 0.1))
    .option('--backup-dir <dossier>', 'avec --serve : dossier des backups dont l\'état est affiché (défaut : backups/ du projet)')
    .option('--otel', 'envoyer les traces OpenTelemetry de l\'analyse (OTLP/HTTP ; aussi quand OTEL_EXPORTER_OTLP_ENDPOINT est défini)')
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
  if (args.length > 0) throw usageError(`argument inattendu "${args[0]}"`, 'Lancez avec --help pour voir les options.')
  if (options.iterations !== undefined && options.watch === undefined) throw usageError('--iterations demande --watch', 'Ajoutez --watch [secondes].')
  const fast = options.fastMs ?? 50
  const slow = options.slowMs ?? 100
  if (fast > slow) throw usageError(`--fast-ms (${fast}) dépasse --slow-ms (${slow})`, 'Donnez un seuil rapide inférieur ou égal au seuil lent.')
  if ((options.sink !== undefined || options.window !== undefined || options.apply !== undefined) && (options.source === undefined || options.source === 'tests')) {
    throw usageError('--sink, --window et --apply portent sur les requêtes de l\'app', 'Ajoutez --source app ou --source pg_stat_statements.')
  }
  const serveOnly = (['port', 'host', 'token', 'interval', 'backupDir'] as const).find((key) => options[key] !== undefined)
  if (!options.serve && serveOnly !== undefined) throw usageError(`--${serveOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ne s'emploie qu'avec --serve`, 'Ajoutez --serve.')
  const notWithServe = (['watch', 'export', 'json', 'alertSlow', 'alertP95'] as const).find((key) => options[key] !== undefined)
  if (options.serve && (options.window !== undefined || options.apply !== undefined)) {
    throw usageError(`--serve ne se combine pas avec --${options.window !== undefined ? 'window' : 'apply'}`, "En direct, chaque collecte lit ce qui est arrivé depuis la précédente (--interval); lancez --source … sans --serve pour une fenêtre ou --apply.")
  }
  if (options.serve && notWithServe !== undefined) throw usageError(`--serve ne se combine pas avec --${notWithServe.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, 'Le serveur analyse en continu (--interval) et sert /metrics; lancez l\'autre mode séparément.')
  if (options.apply !== undefined && options.watch !== undefined) throw usageError('--apply crée un index une fois: il ne se combine pas avec --watch', 'Retirez --watch.')
  return options
}

/** Ctrl-C (or SIGTERM) while serving: the server stops cleanly (a second one exits 130). */
const stopServing = new AbortController()

/** Tracing around the whole run (`--otel` or OTEL_EXPORTER_OTLP_ENDPOINT); spans are flushed before exit. */
async function main(options: Options): Promise<number> {
  const tracing = await startTracing(tracingOptions(options.otel, environment.otel))
  try {
    if (options.serve) return await serve(options)
    if (options.source !== undefined && options.source !== 'tests') return await appTraffic(options, options.source, environment.databaseUrl)
    return await runOnce(options)
  } finally {
    // An unreachable collector never changes the outcome of the analysis.
    await tracing.shutdown().catch((error: unknown) => process.stderr.write(`⚠ traces OpenTelemetry non envoyées: ${describeError(error)}\n`))
  }
}

/** --serve: arguments → serveDashboard → the URL on stdout; returns once stopped. */
async function serve(options: Options): Promise<number> {
  // The web server (hono, prom-client) is loaded by --serve only.
  const { serveDashboard } = await import('./lib/metrics/serve-dashboard.ts')
  await serveDashboard({
    database: options.database,
    tenant: options.tenant,
    thresholds: { ...(options.fastMs === undefined ? {} : { fastMs: options.fastMs }), ...(options.slowMs === undefined ? {} : { slowMs: options.slowMs }) },
    environment,
    host: options.host,
    port: options.port ?? portFromEnvironment(environment.dashboardPort),
    token: options.token ?? environment.dashboardToken,
    intervalMs: (options.interval ?? 5) * 1000,
    backupDir: options.backupDir === undefined ? join(environment.projectRoot, 'backups') : resolve(environment.cwd, options.backupDir),
    ...(options.source !== undefined && options.source !== 'tests' ? { traffic: { source: options.source, ...(options.sink === undefined ? {} : { sink: resolve(environment.cwd, options.sink) }) } } : {}),
    signal: stopServing.signal,
    onListening: (server) => process.stdout.write(`✅ Dashboard en direct: ${server.url}\n   Prometheus: ${server.url}metrics · Ctrl-C pour arrêter\n`),
    onCollectError: (error) => process.stderr.write(`Erreur (collecte) : ${describeError(error)}\n`),
  })
  process.stdout.write('Dashboard arrêté.\n')
  return 0
}

/** DASHBOARD_PORT, checked as --port is; undefined keeps the default port. */
function portFromEnvironment(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw usageError(`DASHBOARD_PORT doit être un port (un entier de 0 à 65535), pas '${value}'`, 'Corrigez DASHBOARD_PORT ou passez --port <port>.')
  return Number(value)
}

/** Arguments → one library call (runDashboard) → rendering. */
async function runOnce(options: Options): Promise<number> {
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
        process.stderr.write(`Erreur${iteration === undefined ? '' : ` (analyse ${iteration})`} : ${message}\n`)
      },
    })
    return exitCode
  } finally {
    progress.stop()
  }
}

/** --source app|pg_stat_statements [--apply <id>]: the app's statements, the proven indexes, and building one. */
async function appTraffic(options: Options, source: TrafficSource, defaultUrl: string): Promise<number> {
  const db = await openDatabase(options.database ?? defaultUrl, { environment: environment })
  try {
    const sink = options.sink ?? defaultSinkPath(db)
    const traffic = { database: db, source, sink, windowMs: options.window }
    if (options.apply !== undefined) {
      if (!options.yes) {
        if (!process.stdin.isTTY) throw usageError(`--apply ${options.apply} crée un index sur la base`, 'Ajoutez --yes pour confirmer sans terminal interactif.')
        // Loaded for the question only (~0.1 s of start-up otherwise).
        const { confirm } = await import('@inquirer/prompts')
        if (!(await confirm({ message: `Créer l'index de la recommandation ${options.apply} sur ${db.redactedUrl} ?`, default: false }))) return 1
      }
      const applied = await applyIndexRecommendation({ ...traffic, id: options.apply })
      process.stdout.write(options.json ? `${JSON.stringify(applied, null, 2)}\n` : renderApplied(applied))
      return 0
    }
    const watching = options.watch !== undefined
    const { exitCode } = await watchAppTraffic({
      ...traffic,
      // --watch N without --window: windows of N seconds.
      windowMs: options.window ?? (typeof options.watch === 'number' ? options.watch * 1000 : undefined),
      iterations: watching ? options.iterations : 1,
      output: trafficReportPath(options.output),
      cwd: environment.cwd,
      onReport: (report) => process.stdout.write(options.json ? `${watching ? JSON.stringify(report) : JSON.stringify(report, null, 2)}\n` : renderAppTraffic(report)),
      onError: (message, window) => process.stderr.write(`Erreur (fenêtre ${window}) : ${message}\n`),
    })
    return exitCode
  } finally {
    await db.close()
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
  runCommand<Options>(command, (options) => main(validated(options, command.args)), {
    debug: environment.debug,
    usage: (error) => usageError(frenchCommanderMessage(error), 'Lancez avec --help pour voir les options.'),
    // Only a server waits for Ctrl-C to end; every other mode keeps the default (exit 130 at once).
    ...(process.argv.includes('--serve') ? { onInterrupt: () => stopServing.abort() } : {}),
  })
}
