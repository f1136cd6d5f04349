/**
 * Backups of the app database: create (default), list, verify <id>, restore <id>, stats, prune,
 * check, monitor — or the spec's numbers 1…7. Parses arguments, calls scripts/lib/backup, prints text or --json.
 */
import { Command, InvalidArgumentError } from 'commander'
import { print, runCommand, usageError } from './lib/cli.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { terminalProgress } from './lib/progress.ts'
import { AdvancedBackupSystem } from './lib/backup/backup-system.ts'
import { DEFAULT_MAX_SHRINK_PERCENT, parseMaxAge, renderCheck } from './lib/backup/catalog/check.ts'
import { EXPORT_FORMATS, type ExportFormat } from './lib/backup/layout.ts'
import { confirm } from '@inquirer/prompts'
import type { RestorePlan } from './lib/backup/restore/steps.ts'
import { confirmationQuestion, renderRestore } from './lib/backup/restore/render.ts'
import { renderCreate, renderList, renderPrune, renderStats, renderVerify } from './lib/backup/render.ts'

interface GlobalOptions {
  dir?: string
  database?: string
  keep?: number
  compress: boolean
  formats?: ExportFormat[]
  json?: boolean
  quiet?: boolean
}

const keepCount = (value: string) => {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1')
  return n
}

const maxAge = (value: string) => {
  const ms = parseMaxAge(value)
  if (ms === undefined) throw new InvalidArgumentError('expected a duration like 26h, 90m or 2d')
  return ms
}

const percent = (value: string) => {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('expected a percentage between 0 and 100')
  return n
}

const formatList = (value: string) => {
  const formats = value.split(',').map((f) => f.trim().toLowerCase()).filter(Boolean)
  const unknown = formats.filter((f) => !EXPORT_FORMATS.includes(f as ExportFormat))
  if (formats.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`expected a list of ${EXPORT_FORMATS.join(', ')}`)
  return [...new Set(formats)] as ExportFormat[]
}

type Verb = (options: GlobalOptions) => Promise<number>

const environment = resolveEnvironment()
/** The verb the arguments chose: set by its commander action, run by runCommand once parsing is done. */
const chosen: { verb?: Verb } = {}

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

program
  .command('create', { isDefault: true })
  .alias('1')
  .description('back the database up (the default)')
  .option('--incremental', 'SQLite: store only the rows changed since the newest backup (a full backup when there is none)')
  .action((command: { incremental?: boolean }) => {
    chosen.verb = async (options) => {
      const progress = terminalProgress({ enabled: !options.quiet && !options.json })
      try {
        const result = await system(options, progress.onProgress).create({ incremental: command.incremental ?? false })
        progress.stop()
        print(result, () => renderCreate(result, { cwd: environment.cwd }), options)
        return 0
      } finally {
        progress.stop()
      }
    }
  })

program
  .command('list')
  .alias('2')
  .description('list the complete backups, newest first')
  .action(() => {
    chosen.verb = async (options) => {
      const result = await system(options).list()
      print(result, () => renderList(result, { cwd: environment.cwd }), options)
      return 0
    }
  })

program
  .command('verify <id>')
  .alias('3')
  .description('recompute every hash of a backup; exit 1 on any fault')
  .action((id: string) => {
    chosen.verb = async (options) => {
      const progress = terminalProgress({ enabled: !options.quiet && !options.json })
      const report = await system(options, progress.onProgress).verify(id)
      progress.stop()
      print(report, () => renderVerify(report, { cwd: environment.cwd }), { ...options, failed: !report.ok })
      return report.ok ? 0 : 1
    }
  })

program
  .command('restore <id>')
  .alias('4')
  .description('restore a backup: verify, keep <db>.before-restore, replace atomically, check, report')
  .option('--to <path|url>', 'restore into this SQLite file or database URL instead of --database')
  .option('--dry-run', 'verify and test the restored database on a scratch copy; change nothing')
  .option('--yes', 'do not ask for confirmation (needed without a terminal)')
  .option('--force', 'accept another schema version; load into a non-empty PostgreSQL/D1 target after a safety export')
  .action((id: string, command: { to?: string; dryRun?: boolean; yes?: boolean; force?: boolean }) => {
    chosen.verb = async (options) => {
      const progress = terminalProgress({ enabled: !options.quiet && !options.json })
      try {
        const result = await system(options, progress.onProgress).restore(id, {
          ...command,
          // Asked on a terminal only; without one, --yes is required (restore.ts refuses).
          ...(process.stdin.isTTY && process.stdout.isTTY
            ? { confirm: async (plan: RestorePlan) => { progress.stop(); return confirm({ message: confirmationQuestion(plan), default: false }) } }
            : {}),
        })
        progress.stop()
        print(result, () => renderRestore(result), options)
        return 0
      } finally {
        progress.stop()
      }
    }
  })

program
  .command('stats')
  .alias('5')
  .description('count, sizes, ages, durations, compression, last verification')
  .action(() => {
    chosen.verb = async (options) => {
      const result = await system(options).stats()
      print(result, () => renderStats(result, { cwd: environment.cwd }), options)
      return 0
    }
  })

program
  .command('prune')
  .alias('6')
  .description('apply the rotation now (--keep N, default 10); --dry-run only shows what would go')
  .option('--dry-run', 'show what would be deleted, delete nothing')
  .action((options: { dryRun?: boolean }) => {
    chosen.verb = async (global) => {
      const result = await system(global).prune({ dryRun: options.dryRun ?? false })
      print(result, () => renderPrune(result), global)
      return 0
    }
  })

program
  .command('check')
  .alias('7')
  .description('exit 1 and say why when backups stop working: none verified within --max-age, last run failed, size dropped; alerts ALERT_WEBHOOK_URL')
  .option('--max-age <duration>', 'newest verified backup at most this old (26h, 90m, 2d)', maxAge)
  .option('--max-shrink <percent>', `largest allowed size drop vs the previous backup (default ${DEFAULT_MAX_SHRINK_PERCENT})`, percent)
  .action((options: { maxAge?: number; maxShrink?: number }) => {
    chosen.verb = async (global) => {
      const result = await system(global).check({
        ...(options.maxAge !== undefined ? { maxAgeMs: options.maxAge } : {}),
        ...(options.maxShrink !== undefined ? { maxShrinkPercent: options.maxShrink } : {}),
      })
      const ok = result.ok && result.alert?.error === undefined
      print(result, () => renderCheck(result), { ...global, failed: !ok })
      return ok ? 0 : 1
    }
  })

program
  .command('monitor')
  .description('create, then stats, then check, in one run with every option applied (npm run backup:monitor)')
  .option('--incremental', 'SQLite: store only the rows changed since the newest backup')
  .option('--max-age <duration>', 'newest verified backup at most this old (26h, 90m, 2d)', maxAge)
  .option('--max-shrink <percent>', `largest allowed size drop vs the previous backup (default ${DEFAULT_MAX_SHRINK_PERCENT})`, percent)
  .action((options: { incremental?: boolean; maxAge?: number; maxShrink?: number }) => {
    chosen.verb = async (global) => {
      const progress = terminalProgress({ enabled: !global.quiet && !global.json })
      const backups = system(global, progress.onProgress)
      let created
      try {
        created = await backups.create({ incremental: options.incremental ?? false })
      } finally {
        progress.stop()
      }
      const stats = await backups.stats()
      const check = await backups.check({
        ...(options.maxAge !== undefined ? { maxAgeMs: options.maxAge } : {}),
        ...(options.maxShrink !== undefined ? { maxShrinkPercent: options.maxShrink } : {}),
      })
      const ok = check.ok && check.alert?.error === undefined
      print(
        { create: created, stats, check },
        () => [renderCreate(created, { cwd: environment.cwd }), renderStats(stats, { cwd: environment.cwd }), renderCheck(check)].join('\n'),
        { ...global, failed: !ok },
      )
      return ok ? 0 : 1
    }
  })

function system(options: GlobalOptions, onProgress?: (event: Parameters<NonNullable<ConstructorParameters<typeof AdvancedBackupSystem>[0]>['onProgress'] & {}>[0]) => void) {
  return new AdvancedBackupSystem({
    databaseUrl: options.database ?? environment.databaseUrl,
    ...(options.dir !== undefined ? { backupDir: options.dir } : {}),
    ...(options.keep !== undefined ? { maxBackups: options.keep } : {}),
    compressionEnabled: options.compress,
    ...(options.formats ? { exportFormats: options.formats } : {}),
    environment,
    ...(onProgress ? { onProgress } : {}),
  })
}

runCommand<GlobalOptions>(program, (options) => (chosen.verb === undefined ? Promise.resolve(0) : chosen.verb(options)), {
  debug: environment.debug,
  usage: (error) => {
    // `create` is the default command, so an unknown verb reaches it as an extra argument.
    const stray = program.commands.find((command) => command.name() === 'create')?.args ?? []
    if (error.code !== 'commander.excessArguments' || stray.length === 0) return undefined
    const verbs = program.commands.map((command) => command.name()).filter((name) => name !== 'help')
    return usageError(`unknown command "${stray[0]}"`, `Use one of: ${verbs.join(', ')} (or the numbers 1 to 7); see \`advanced-backup --help\`.`)
  },
})
