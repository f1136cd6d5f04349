/**
 * Backups of the app database: create (default), list, verify <id>, restore <id>, stats, prune —
 * check — or the spec's numbers 1…7. Parses arguments, calls scripts/lib/backup, prints text or --json.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { runMain, usageError } from './lib/cli.ts'
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
  dir: string
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

let run: ((options: GlobalOptions) => Promise<number>) | undefined

const program = new Command('advanced-backup')
  .description('Backups of the IA Poste Manager database: consistent snapshot, SQL/JSON/CSV exports, tar.gz, SHA-256, rotation')
  .option('--dir <path>', 'backup directory', './backups')
  .option('--database <url>', 'database URL (default: DATABASE_URL or file:./prisma/dev.db)')
  .option('--keep <n>', 'rotation: complete backups to keep (default 10)', keepCount)
  .option('--no-compress', 'keep a backup-<ts>/ folder instead of backup-<ts>.tar.gz')
  .option('--formats <list>', `export formats, comma-separated (default ${EXPORT_FORMATS.join(',')})`, formatList)
  .option('--json', 'print the result as JSON on stdout')
  .option('--quiet', 'print nothing on success (for cron); errors still go to stderr')
  .addHelpText('after', '\nNumeric aliases (the spec\'s menu): 1 create, 2 list, 3 verify <id>, 4 restore <id>, 5 stats, 6 prune, 7 check\nCron (nightly backup, hourly check): see docs/cron.md\nExit codes: 0 success, 1 failure (or a backup that fails verification), 2 usage error')
  .configureOutput({ writeErr: () => {} })
  .exitOverride()

program
  .command('create', { isDefault: true })
  .alias('1')
  .description('back the database up (the default)')
  .option('--incremental', 'SQLite: store only the rows changed since the newest backup (a full backup when there is none)')
  .action((command: { incremental?: boolean }) => {
    run = async (options) => {
      const progress = terminalProgress({ enabled: !options.quiet && !options.json })
      try {
        const result = await system(options, progress.onProgress).create({ incremental: command.incremental ?? false })
        progress.stop()
        print(options, result, () => renderCreate(result, { cwd: process.cwd() }))
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
    run = async (options) => {
      const result = await system(options).list()
      print(options, result, () => renderList(result, { cwd: process.cwd() }))
      return 0
    }
  })

program
  .command('verify <id>')
  .alias('3')
  .description('recompute every hash of a backup; exit 1 on any fault')
  .action((id: string) => {
    run = async (options) => {
      const progress = terminalProgress({ enabled: !options.quiet && !options.json })
      const report = await system(options, progress.onProgress).verify(id)
      progress.stop()
      if (report.ok) print(options, report, () => renderVerify(report, { cwd: process.cwd() }))
      else if (options.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
      else (options.quiet ? process.stderr : process.stdout).write(renderVerify(report, { cwd: process.cwd() }))
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
    run = async (options) => {
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
        print(options, result, () => renderRestore(result))
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
    run = async (options) => {
      const result = await system(options).stats()
      print(options, result, () => renderStats(result, { cwd: process.cwd() }))
      return 0
    }
  })

program
  .command('prune')
  .alias('6')
  .description('apply the rotation now (--keep N, default 10); --dry-run only shows what would go')
  .option('--dry-run', 'show what would be deleted, delete nothing')
  .action((options: { dryRun?: boolean }) => {
    run = async (global) => {
      const result = await system(global).prune({ dryRun: options.dryRun ?? false })
      print(global, result, () => renderPrune(result))
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
    run = async (global) => {
      const result = await system(global).check({
        ...(options.maxAge !== undefined ? { maxAgeMs: options.maxAge } : {}),
        ...(options.maxShrink !== undefined ? { maxShrinkPercent: options.maxShrink } : {}),
      })
      const ok = result.ok && result.alert?.error === undefined
      if (global.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n')
      else if (!ok) (global.quiet ? process.stderr : process.stdout).write(renderCheck(result))
      else if (!global.quiet) process.stdout.write(renderCheck(result))
      return ok ? 0 : 1
    }
  })

function system(options: GlobalOptions, onProgress?: (event: Parameters<NonNullable<ConstructorParameters<typeof AdvancedBackupSystem>[0]>['onProgress'] & {}>[0]) => void) {
  const environment = resolveEnvironment()
  return new AdvancedBackupSystem({
    databaseUrl: options.database ?? environment.databaseUrl,
    backupDir: options.dir,
    ...(options.keep !== undefined ? { maxBackups: options.keep } : {}),
    compressionEnabled: options.compress,
    ...(options.formats ? { exportFormats: options.formats } : {}),
    environment,
    ...(onProgress ? { onProgress } : {}),
  })
}

function print(options: GlobalOptions, result: unknown, text: () => string): void {
  if (options.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  else if (!options.quiet) process.stdout.write(text())
}

runMain(async () => {
  try {
    await program.parseAsync()
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0
      // `create` is the default command, so an unknown verb reaches it as an extra argument.
      const stray = program.commands.find((command) => command.name() === 'create')?.args ?? []
      if (error.code === 'commander.excessArguments' && stray.length > 0) {
        const verbs = program.commands.map((command) => command.name()).filter((name) => name !== 'help')
        throw usageError(`unknown command "${stray[0]}"`, `Use one of: ${verbs.join(', ')} (or the numbers 1 to 7); see \`advanced-backup --help\`.`)
      }
      throw usageError(error.message.replace(/^error: /, ''), 'See `advanced-backup --help`.')
    }
    throw error
  }
  if (run === undefined) return 0
  return run(program.opts<GlobalOptions>())
})
