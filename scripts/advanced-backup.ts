/**
 * Backups of the app database: create (default), list, verify <id>, restore <id>, stats, prune,
 * check, monitor, drill [<id>], export --to <folder> (the exports alone, no backup) — or the spec's numbers 1…7. Declares the global options; each verb lives in
 * scripts/backup-verbs/<verb>.ts (parse its arguments, call scripts/lib/backup, print text or --json).
 */
import './lib/node-floor.ts'
import { Command, InvalidArgumentError } from 'commander'
import { runCommand, usageError, warn } from './lib/cli.ts'
import { describeError } from './lib/errors.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { AdvancedBackupSystem } from './lib/backup/backup-system.ts'
import { EXPORT_FORMATS, type ExportFormat } from './lib/backup/layout.ts'
import type { ProgressListener } from './lib/progress.ts'
import { compressionLevel, retentionCount, type BackupCli, type GlobalOptions, type Verb } from './backup-verbs/_cli.ts'
import { registerKeygen } from './backup-verbs/keygen.ts'
import { registerRekey } from './backup-verbs/rekey.ts'
import { stepSpans } from './lib/telemetry/step-spans.ts'
import { startTracing, tracingOptions, withSpan } from './lib/telemetry/tracing.ts'
import { registerCreate } from './backup-verbs/create.ts'
import { registerList } from './backup-verbs/list.ts'
import { registerVerify } from './backup-verbs/verify.ts'
import { registerRestore } from './backup-verbs/restore.ts'
import { registerStats } from './backup-verbs/stats.ts'
import { registerPrune } from './backup-verbs/prune.ts'
import { registerCheck } from './backup-verbs/check.ts'
import { registerMonitor } from './backup-verbs/monitor.ts'
import { registerDrill } from './backup-verbs/drill.ts'
import { registerReplicate } from './backup-verbs/replicate.ts'
import { registerPitr } from './backup-verbs/pitr.ts'
import { registerExport } from './backup-verbs/export.ts'

const keepCount = (value: string) => {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('un nombre entier ≥ 1 est attendu')
  return n
}

const formatList = (value: string) => {
  const formats = value.split(',').map((f) => f.trim().toLowerCase()).filter(Boolean)
  const unknown = formats.filter((f) => !EXPORT_FORMATS.includes(f as ExportFormat))
  if (formats.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`une liste parmi ${EXPORT_FORMATS.join(', ')} est attendue`)
  return [...new Set(formats)] as ExportFormat[]
}

const environment = resolveEnvironment()
let chosen: Verb | undefined

const program = new Command('advanced-backup')
  .description('Backups de la base IA Poste Manager : instantané cohérent, exports SQL/JSON/CSV, tar.gz, SHA-256, rotation')
  .option('--dir <path|url>', 'dossier des backups (défaut : backups/ du projet), ou s3://<bucket>/<préfixe>, azure://<conteneur>/<préfixe>')
  .option('--offsite <url>', 'copie hors site de chaque backup vérifié (s3://…, azure://… ou un dossier) ; défaut BACKUP_OFFSITE_URL')
  .option('--key-file <path>', 'fichier de clé de chiffrement (sinon BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE)')
  .option('--keep-last <n>', 'rétention : les N plus récents de chaque source', retentionCount)
  .option('--keep-daily <n>', 'rétention : le plus récent de chacun des N derniers jours ayant un backup, par source', retentionCount)
  .option('--keep-weekly <n>', 'rétention : le plus récent de chacune des N dernières semaines, par source', retentionCount)
  .option('--keep-monthly <n>', 'rétention : le plus récent de chacun des N derniers mois, par source', retentionCount)
  .option('--database <url>', 'URL de la base (défaut : DATABASE_URL, sinon file:./prisma/dev.db)')
  .option('--keep <n>', 'rotation : nombre de backups complets gardés (défaut 10)', keepCount)
  .option('--no-compress', 'garder un dossier backup-<ts>/ au lieu de backup-<ts>.tar.gz')
  .option('--compression-level <n>', 'niveau gzip de l’archive, de 1 (plus rapide) à 9 (plus petite) ; défaut 6', compressionLevel)
  .option('--formats <list>', `formats d’export, séparés par des virgules (défaut ${EXPORT_FORMATS.join(',')})`, formatList)
  .option('--json', 'écrire le résultat en JSON sur stdout')
  .option('--quiet', 'rien afficher en cas de succès (pour cron) ; les erreurs vont toujours sur stderr')
  .option('--otel', "envoyer les traces OpenTelemetry de l’exécution (étapes de create et restore ; OTLP/HTTP, aussi quand OTEL_EXPORTER_OTLP_ENDPOINT est défini)")
  .addHelpText('after', '\nAlias numériques (menu de la spécification) : 1 create, 2 list, 3 verify <id>, 4 restore <id>, 5 stats, 6 prune, 7 check\nChiffrement et copie hors site : docs/ADVANCED_FEATURES_DATABASES.md (keygen, create --encrypt --offsite, restore --dir <url>)\nCron (backup chaque nuit, contrôle chaque heure) : voir docs/cron.md\nCodes de sortie : 0 succès, 1 échec (ou backup qui échoue à la vérification), 2 erreur d’utilisation')

// --otel: one span per command, one child span per create/restore step (the kill-point events).
const steps = stepSpans()
let verbName = 'create'
program.hook('preAction', (_program, action) => void (verbName = action.name()))

let interruption: AbortController | undefined
const cli: BackupCli = { environment, choose: (verb) => (chosen = verb), system, interruptible: () => (interruption ??= new AbortController()).signal }
for (const register of [registerCreate, registerList, registerVerify, registerRestore, registerStats, registerPrune, registerCheck, registerMonitor, registerDrill, registerExport, registerReplicate, registerPitr, registerKeygen, registerRekey]) register(program, cli)

function system(options: GlobalOptions, onProgress?: ProgressListener, extra: { encrypt?: boolean } = {}): AdvancedBackupSystem {
  const retention = { keepLast: options.keepLast, keepDaily: options.keepDaily, keepWeekly: options.keepWeekly, keepMonthly: options.keepMonthly }
  return new AdvancedBackupSystem({
    ...(Object.values(retention).some((n) => n !== undefined) ? { retention } : {}),
    ...(options.offsite !== undefined ? { offsiteUrl: options.offsite } : {}),
    ...(options.keyFile !== undefined ? { keyFile: options.keyFile } : {}),
    ...(extra.encrypt ? { encrypt: true } : {}),
    databaseUrl: options.database ?? environment.databaseUrl,
    ...(options.dir !== undefined ? { backupDir: options.dir } : {}),
    ...(options.keep !== undefined ? { maxBackups: options.keep } : {}),
    compressionEnabled: options.compress,
    ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
    ...(options.formats ? { exportFormats: options.formats } : {}),
    environment,
    ...(onProgress ? { onProgress } : {}),
    onWarning: warn,
    onStep: (step) => steps.mark(step),
  })
}

async function traced(verb: Verb, options: GlobalOptions): Promise<number> {
  const tracing = await startTracing(tracingOptions(options.otel, environment.otel))
  try {
    return await withSpan(`advanced-backup ${verbName}`, { 'ipm.command': verbName }, async () => {
      try {
        return await verb(options)
      } finally {
        steps.end()
      }
    })
  } finally {
    // An unreachable collector never changes the outcome of a backup or a restore.
    await tracing.shutdown().catch((error: unknown) => process.stderr.write(`⚠ traces OpenTelemetry non envoyées: ${describeError(error)}\n`))
  }
}

runCommand<GlobalOptions>(program, (options) => (chosen === undefined ? Promise.resolve(0) : traced(chosen, options)), {
  debug: environment.debug,
  // Only a verb that asked for a signal (replicate, restore --at) stops cleanly; the others exit 130 at once.
  onInterrupt: () => (interruption === undefined ? false : (interruption.abort(), true)),
  usage: (error) => {
    // `create` is the default command, so an unknown verb reaches it as an extra argument.
    const stray = program.commands.find((command) => command.name() === 'create')?.args ?? []
    if (error.code !== 'commander.excessArguments' || stray.length === 0) return undefined
    const verbs = program.commands.map((command) => command.name()).filter((name) => name !== 'help')
    return usageError(`commande inconnue : "${stray[0]}"`, `Une de : ${verbs.join(', ')} (ou les numéros 1 à 7) ; voir \`advanced-backup --help\`.`)
  },
})
