/**
 * Backups of the app database: create (default), list, verify <id>, restore <id>, stats, prune,
 * check, monitor — or the spec's numbers 1…7. Declares the global options; each verb lives in
 * scripts/backup-verbs/<verb>.ts (parse its arguments, call scripts/lib/backup, print text or --json).
 */
import './lib/node-floor.ts'
import { Command, InvalidArgumentError } from 'commander'
import { runCommand, usageError, warn } from './lib/cli.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { AdvancedBackupSystem } from './lib/backup/backup-system.ts'
import { EXPORT_FORMATS, type ExportFormat } from './lib/backup/layout.ts'
import type { ProgressListener } from './lib/progress.ts'
import type { BackupCli, GlobalOptions, Verb } from './backup-verbs/_cli.ts'
import { registerCreate } from './backup-verbs/create.ts'
import { registerList } from './backup-verbs/list.ts'
import { registerVerify } from './backup-verbs/verify.ts'
import { registerRestore } from './backup-verbs/restore.ts'
import { registerStats } from './backup-verbs/stats.ts'
import { registerPrune } from './backup-verbs/prune.ts'
import { registerCheck } from './backup-verbs/check.ts'
import { registerMonitor } from './backup-verbs/monitor.ts'

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
  .description('Backups of the IA Poste Manager database: consistent snapshot, SQL/JSON/CSV exports, tar.gz, SHA-256, rotation')
  .option('--dir <path>', 'backup directory (default: backups/ in the project)')
  .option('--database <url>', 'database URL (default: DATABASE_URL or file:./prisma/dev.db)')
  .option('--keep <n>', 'rotation: complete backups to keep (default 10)', keepCount)
  .option('--no-compress', 'keep a backup-<ts>/ folder instead of backup-<ts>.tar.gz')
  .option('--formats <list>', `export formats, comma-separated (default ${EXPORT_FORMATS.join(',')})`, formatList)
  .option('--json', 'print the result as JSON on stdout')
  .option('--quiet', 'print nothing on success (for cron); errors still go to stderr')
  .addHelpText('after', '\nNumeric aliases (the spec\'s menu): 1 create, 2 list, 3 verify <id>, 4 restore <id>, 5 stats, 6 prune, 7 check\nCron (nightly backup, hourly check): see docs/cron.md\nExit codes: 0 success, 1 failure (or a backup that fails verification), 2 usage error')

const cli: BackupCli = { environment, choose: (verb) => (chosen = verb), system }
for (const register of [registerCreate, registerList, registerVerify, registerRestore, registerStats, registerPrune, registerCheck, registerMonitor]) register(program, cli)

function system(options: GlobalOptions, onProgress?: ProgressListener): AdvancedBackupSystem {
  return new AdvancedBackupSystem({
    databaseUrl: options.database ?? environment.databaseUrl,
    ...(options.dir !== undefined ? { backupDir: options.dir } : {}),
    ...(options.keep !== undefined ? { maxBackups: options.keep } : {}),
    compressionEnabled: options.compress,
    ...(options.formats ? { exportFormats: options.formats } : {}),
    environment,
    ...(onProgress ? { onProgress } : {}),
    onWarning: warn,
  })
}

runCommand<GlobalOptions>(program, (options) => (chosen === undefined ? Promise.resolve(0) : chosen(options)), {
  debug: environment.debug,
  usage: (error) => {
    // `create` is the default command, so an unknown verb reaches it as an extra argument.
    const stray = program.commands.find((command) => command.name() === 'create')?.args ?? []
    if (error.code !== 'commander.excessArguments' || stray.length === 0) return undefined
    const verbs = program.commands.map((command) => command.name()).filter((name) => name !== 'help')
    return usageError(`commande inconnue : "${stray[0]}"`, `Une de : ${verbs.join(', ')} (ou les numéros 1 à 7) ; voir \`advanced-backup --help\`.`)
  },
})
