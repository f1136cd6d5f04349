/**
 * Health check of every configured database engine (SQLite, PostgreSQL, D1): the same six checks on
 * each, a table on the terminal, and the report RESULTATS_TESTS_DATABASES.md with its JSON twin.
 * Exit 0 when everything that ran passed, 1 on any failure, 2 on a bad command line. `--show-report` prints the last report.
 */
import './lib/node-floor.ts'
import { relative, resolve } from 'node:path'
import chalk, { Chalk } from 'chalk'
import { Command, InvalidArgumentError, Option } from 'commander'
import { runCommand, usageError, frenchCommanderMessage } from './lib/cli.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { terminalProgress } from './lib/progress.ts'
import type { EngineName } from './lib/db/url.ts'
import { engineLabel, parseDatabaseUrl } from './lib/engines/index.ts'
import { ALL_ENGINES, resolveHealthTargets } from './lib/health/targets.ts'
import { runHealthSuite } from './lib/health/suite.ts'
import { DEFAULT_REPORT_FILE, readHealthReport, reportJsonPath, writeHealthReport } from './lib/health/report.ts'
import { renderHealthText } from './lib/health/text.ts'

const ENGINE_ALIASES: Record<string, EngineName> = { sqlite: 'sqlite', postgres: 'postgres', postgresql: 'postgres', pg: 'postgres', d1: 'd1' }

const collectEngines = (value: string, previous: EngineName[]): EngineName[] => {
  const engines = value.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
  if (engines.length === 0) throw new InvalidArgumentError('sqlite, postgres ou d1 est attendu')
  for (const name of engines) {
    if (ENGINE_ALIASES[name] === undefined) throw new InvalidArgumentError(`sqlite, postgres ou d1 est attendu, reçu "${name}"`)
  }
  return [...previous, ...engines.map((name) => ENGINE_ALIASES[name]!)]
}

const environment = resolveEnvironment()

const urlOf = (engine: EngineName | undefined) => (value: string) => {
  try {
    const location = parseDatabaseUrl(value, { cwd: environment.cwd, d1PersistDir: '.' })
    if (engine !== undefined && location.engine !== engine) throw new InvalidArgumentError(`pas une URL ${engineLabel(engine)}`)
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error))
  }
  return value
}

const RUN_OPTIONS = ['only', 'database', 'postgres', 'd1', 'readOnly']

const program = new Command('test-all-databases')
  .description('Contrôler SQLite, PostgreSQL et D1 : connexion, migrations, lecture des plans, requête avec relations, écriture/lecture/suppression, rollback')
  .option('--only <engines>', 'ne contrôler que ces moteurs : sqlite, postgres, d1 (séparés par des virgules ou option répétée)', collectEngines, [])
  .option('--database <url>', 'la base de l’application (défaut : DATABASE_URL, sinon file:./prisma/dev.db)', urlOf(undefined))
  .option('--postgres <url>', 'la base PostgreSQL à contrôler (défaut : POSTGRES_URL)', urlOf('postgres'))
  .option('--d1 <url>', 'd1://local[/<dossier>] ou d1://<account-id>/<database-id> (défaut : D1_URL, sinon d1://local)', urlOf('d1'))
  .option('--read-only', 'ne pas lancer les contrôles qui écrivent (lignes temporaires)')
  .option('--report <path>', `où écrire le rapport Markdown, son jumeau .json à côté (défaut : ${DEFAULT_REPORT_FILE})`)
  .option('--no-report', 'ne pas écrire les fichiers du rapport')
  .addOption(new Option('--show-report', 'afficher le dernier rapport et quitter').conflicts(RUN_OPTIONS))
  .option('--json', 'écrire le rapport en JSON au lieu du tableau')

interface Options {
  only: EngineName[]
  database?: string
  postgres?: string
  d1?: string
  readOnly?: boolean
  report: string | false | undefined
  showReport?: boolean
  json?: boolean
}

runCommand<Options>(program, async (options) => {
  const cwd = environment.cwd
  const colors = environment.noColor ? new Chalk({ level: 0 }) : chalk
  // A path the user gives resolves where they stand; the default report lives in the project.
  const reportPath = typeof options.report === 'string' ? resolve(cwd, options.report) : resolve(environment.projectRoot, DEFAULT_REPORT_FILE)
  const shown = (path: string) => relative(cwd, path) || path

  if (options.showReport) {
    const report = readHealthReport(reportPath)
    if (options.json) console.log(JSON.stringify(report, null, 2))
    else process.stdout.write(`${renderHealthText(report, { chalk: colors })}\nRapport : ${shown(reportPath)} (${shown(reportJsonPath(reportPath))})\n`)
    return 0
  }

  const only = [...new Set(options.only)].sort((a, b) => ALL_ENGINES.indexOf(a) - ALL_ENGINES.indexOf(b))
  const targets = resolveHealthTargets({ environment, cwd, only, database: options.database, postgres: options.postgres, d1: options.d1 })
  const progress = terminalProgress({ enabled: !options.json })
  let report
  try {
    report = await runHealthSuite({ targets, environment, cwd, readOnly: options.readOnly ?? false, onProgress: progress.onProgress })
  } finally {
    progress.stop()
  }
  // Results first: a report that cannot be written must not hide them.
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderHealthText(report, { chalk: colors }))
  if (options.report !== false) {
    const written = writeHealthReport(report, reportPath)
    if (!options.json) process.stdout.write(`\nRapport : ${shown(written.markdownPath)} (${shown(written.jsonPath)})\n`)
  }
  return report.summary.ok ? 0 : 1
}, {
  debug: environment.debug,
  usage: (error) => usageError(frenchCommanderMessage(error), 'npx tsx scripts/test-all-databases.ts --help'),
})
