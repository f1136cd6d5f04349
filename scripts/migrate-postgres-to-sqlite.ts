/**
 * Guided copy of a PostgreSQL database into a new SQLite file, verified table by table before it is
 * put in place. With no arguments on a terminal: an assistant. Otherwise flags (see --help).
 * Exit 0 when migrated (or a dry run found no problem), 1 when refused, failed, mismatched or
 * interrupted (Ctrl-C: the temporary file is removed first; a second Ctrl-C exits 130 at once),
 * 2 on a bad command line or when it would have to prompt without a terminal.
 */
import './lib/node-floor.ts'
import { Command, InvalidArgumentError, Option } from 'commander'
import { runCommand, usageError, frenchCommanderMessage } from './lib/cli.ts'
import { ToolkitError } from './lib/errors.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { terminalProgress } from './lib/progress.ts'
import type { MigrateOptions } from './lib/migration/migrate.ts'
import { migrationReportJson, refusalHint, renderPlan, renderResult } from './lib/migration/report.ts'
import type { PlanProblem, SchemaChoice } from './lib/migration/plan.ts'

const DEFAULT_TARGET = 'prisma/from-postgres.db'

const tableList = (value: string, previous: string[]): string[] => {
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '')
  if (names.length === 0) throw new InvalidArgumentError('des noms de tables séparés par des virgules sont attendus')
  return [...previous, ...names]
}

const postgresUrl = (value: string) => {
  if (!/^postgres(ql)?:\/\/\S+$/i.test(value.trim())) throw new InvalidArgumentError('une URL PostgreSQL est attendue : postgresql://utilisateur[:mot-de-passe]@hôte[:port]/base')
  return value.trim()
}

const program = new Command('migrate-postgres-to-sqlite')
  .description('Copy a PostgreSQL database into a new SQLite file: dry run, copy in foreign-key order, verification, atomic replace')
  .option('--from <url>', 'the PostgreSQL source (default: POSTGRES_URL)', postgresUrl)
  .option('--to <path>', 'the SQLite file to create', DEFAULT_TARGET)
  .addOption(new Option('--tables <names>', 'copy only these tables (comma-separated or repeated); the tables their foreign keys point to are added').argParser(tableList).default([], 'all'))
  .addOption(new Option('--schema <mode>', "target schema: the app's migrations, derived from the PostgreSQL catalog, or auto").choices(['auto', 'app', 'derive']).default('auto'))
  .option('--dry-run', 'connect, list tables with row counts, check every column and value, write nothing')
  .option('--yes', 'do not ask for confirmation (needed without a terminal)')
  .option('--force', 'replace an existing target, keeping it as <target>.before-migration')
  .option('--json', 'print the plan or result as JSON')
  .addHelpText(
    'after',
    `
With no arguments on a terminal, an assistant asks for the source and the target, shows the dry run and asks before copying.
Exit codes: 0 migrated (or a dry run without problems); 1 refused, failed, verification mismatch or interrupted (Ctrl-C),
nothing written in every case; 2 bad command line, or a confirmation needed without a terminal (pass --yes).`,
  )

type Options = { from?: string; to: string; tables: string[]; schema: SchemaChoice; dryRun?: boolean; yes?: boolean; force?: boolean; json?: boolean }
const noArguments = process.argv.length <= 2
const environment = resolveEnvironment()
// Ctrl-C or SIGTERM: the migration first stops and removes its temporary file (exit 1); a second one exits 130 at once.
const interrupt = new AbortController()

runCommand<Options>(program, async (options) => {
  // Loaded when the command runs, not by --help: the migration loads both drivers and Prisma (the prompts, @inquirer, when asked).
  const { migratePostgresToSqlite } = await import('./lib/migration/migrate.ts')
  const cwd = environment.cwd
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY)

  let run: Pick<MigrateOptions, 'from' | 'to' | 'force' | 'tables' | 'schema' | 'dryRun'>
  if (noArguments) {
    if (!interactive) {
      throw usageError(
        'no arguments and no terminal to ask on',
        'Pass --from <postgresql-url> --to <file.db> --yes (add --force to replace an existing file), or --dry-run to only check.',
      )
    }
    const { runAssistant } = await import('./lib/migration/assistant.ts')
    const answers = await runAssistant({
      defaultSource: environment.postgresUrl,
      defaultTarget: DEFAULT_TARGET,
      cwd,
      preview: async ({ from, to, force }) => {
        const { plan } = await migratePostgresToSqlite({ from, to, force, cwd, environment, dryRun: true, signal: interrupt.signal })
        return { text: renderPlan(plan), problems: plan.problems, rows: plan.totalRows, tables: plan.tables.length }
      },
    })
    run = { ...answers, tables: [], schema: 'auto' }
  } else {
    const from = options.from ?? environment.postgresUrl
    if (from === undefined) throw usageError('no source database', 'Pass --from postgresql://user@host:5432/db or set POSTGRES_URL.')
    run = { from, to: options.to, force: options.force ?? false, tables: options.tables, schema: options.schema, dryRun: options.dryRun ?? false }
    if (!run.dryRun && !options.yes) {
      if (!interactive || options.json) {
        throw usageError(`the migration needs a confirmation and ${options.json ? '--json leaves no room for a question' : 'there is no terminal to ask on'}`, 'Pass --yes (and --force to replace an existing file).')
      }
      const { plan } = await migratePostgresToSqlite({ ...run, cwd, environment, dryRun: true, signal: interrupt.signal })
      process.stdout.write(`${renderPlan(plan)}\n`)
      if (plan.problems.length > 0) throw refused(plan.problems)
      const { confirm } = await import('@inquirer/prompts')
      const go = await confirm({ message: `Copy ${plan.totalRows.toLocaleString('en')} rows into ${plan.target.path}?`, default: !plan.target.exists }).catch(() => false)
      if (!go) throw new ToolkitError('cancelled: nothing was written')
    }
  }

  const progress = terminalProgress({ enabled: !options.json })
  let result
  try {
    result = await migratePostgresToSqlite({ ...run, cwd, environment, onProgress: progress.onProgress, signal: interrupt.signal })
  } finally {
    progress.stop()
  }
  process.stdout.write(options.json ? `${JSON.stringify(migrationReportJson(result), null, 2)}\n` : renderResult(result))
  if (result.status === 'refused' || (result.status === 'planned' && result.plan.problems.length > 0)) throw refused(result.plan.problems)
  if (result.status === 'mismatch') {
    throw new ToolkitError(`the verification found differences between the source and the copy (tables marked ✗ above); nothing was written`, {
      hint: 'This is a bug in the conversion of one of their columns: please report it with the --dry-run output of those tables.',
    })
  }
}, {
  debug: environment.debug,
  usage: (error) => usageError(frenchCommanderMessage(error), 'npx tsx scripts/migrate-postgres-to-sqlite.ts --help'),
  onInterrupt: () => {
    process.stderr.write('\nInterrupted: stopping and removing the temporary file… (Ctrl-C again to quit at once)\n')
    interrupt.abort()
  },
})


function refused(problems: readonly PlanProblem[]): ToolkitError {
  return new ToolkitError(`the migration cannot run: ${problems.length} problem${problems.length === 1 ? '' : 's'} (listed above); nothing was written`, {
    hint: refusalHint(problems),
  })
}
