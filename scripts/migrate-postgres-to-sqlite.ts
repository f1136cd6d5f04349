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
  .description('Copier une base PostgreSQL dans un nouveau fichier SQLite : simulation, copie dans l’ordre des clés étrangères, vérification, remplacement atomique')
  .option('--from <url>', 'la source PostgreSQL (défaut : POSTGRES_URL)', postgresUrl)
  .option('--to <path>', 'le fichier SQLite à créer', DEFAULT_TARGET)
  .addOption(new Option('--tables <names>', 'ne copier que ces tables (séparées par des virgules ou option répétée) ; les tables visées par leurs clés étrangères sont ajoutées').argParser(tableList).default([], 'toutes'))
  .addOption(new Option('--schema <mode>', "schéma cible : les migrations de l’application (app), déduit du catalogue PostgreSQL (derive), ou auto").choices(['auto', 'app', 'derive']).default('auto'))
  .option('--dry-run', 'se connecter, lister les tables et leurs lignes, vérifier chaque colonne et valeur, ne rien écrire')
  .option('--yes', 'ne pas demander de confirmation (obligatoire sans terminal)')
  .option('--force', 'remplacer une cible existante, gardée sous <cible>.before-migration')
  .option('--json', 'écrire le plan ou le résultat en JSON')
  .addHelpText(
    'after',
    `
Sans argument, dans un terminal, un assistant demande la source et la cible, montre la simulation et demande avant de copier.
Codes de sortie : 0 migré (ou simulation sans problème) ; 1 refus, échec, écart à la vérification ou interruption (Ctrl-C),
rien d’écrit dans tous les cas ; 2 ligne de commande erronée, ou confirmation nécessaire sans terminal (passez --yes).`,
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
        'aucun argument et aucun terminal pour poser les questions',
        'Passez --from <url-postgresql> --to <fichier.db> --yes (et --force pour remplacer un fichier existant), ou --dry-run pour seulement vérifier.',
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
    if (from === undefined) throw usageError('aucune base source', 'Passez --from postgresql://user@host:5432/db ou définissez POSTGRES_URL.')
    run = { from, to: options.to, force: options.force ?? false, tables: options.tables, schema: options.schema, dryRun: options.dryRun ?? false }
    if (!run.dryRun && !options.yes) {
      if (!interactive || options.json) {
        throw usageError(`la migration demande une confirmation et ${options.json ? '--json ne laisse pas de place à une question' : 'aucun terminal ne permet de la demander'}`, 'Passez --yes (et --force pour remplacer un fichier existant).')
      }
      const { plan } = await migratePostgresToSqlite({ ...run, cwd, environment, dryRun: true, signal: interrupt.signal })
      process.stdout.write(`${renderPlan(plan)}\n`)
      if (plan.problems.length > 0) throw refused(plan.problems)
      const { confirm } = await import('@inquirer/prompts')
      const go = await confirm({ message: `Copier ${plan.totalRows.toLocaleString('fr-FR')} lignes dans ${plan.target.path} ?`, default: !plan.target.exists }).catch(() => false)
      if (!go) throw new ToolkitError('annulé : rien n’a été écrit')
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
    throw new ToolkitError(`la vérification a trouvé des différences entre la source et la copie (tables marquées ✗ ci-dessus) ; rien n’a été écrit`, {
      hint: 'C’est un défaut de conversion d’une de leurs colonnes : signalez-le avec la sortie --dry-run de ces tables.',
    })
  }
}, {
  debug: environment.debug,
  usage: (error) => usageError(frenchCommanderMessage(error), 'npx tsx scripts/migrate-postgres-to-sqlite.ts --help'),
  onInterrupt: () => {
    process.stderr.write('\nInterrompu : arrêt et suppression du fichier temporaire… (Ctrl-C encore pour quitter tout de suite)\n')
    interrupt.abort()
  },
})


function refused(problems: readonly PlanProblem[]): ToolkitError {
  return new ToolkitError(`la migration ne peut pas se faire : ${problems.length} problème${problems.length === 1 ? '' : 's'} (listés ci-dessus) ; rien n’a été écrit`, {
    hint: refusalHint(problems),
  })
}
