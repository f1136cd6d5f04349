/** `restore <id>` (alias 4): the five restore steps. */
import type { Command } from 'commander'
import { confirm } from '@inquirer/prompts'
import { print, usageError } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import type { RestorePlan } from '../lib/backup/restore/steps.ts'
import { confirmationQuestion, renderRestore } from '../lib/backup/restore/render.ts'
import type { BackupCli } from './_cli.ts'
import { addRestoreAtOptions, runRestoreAt, type RestoreAtOptions } from './restore-at.ts'

export function registerRestore(program: Command, cli: BackupCli): void {
  addRestoreAtOptions(program
    .command('restore [id]')
    .alias('4')
    .description('restore a backup: verify, keep <db>.before-restore, replace atomically, check, report')
    .option('--to <path|url>', 'restore into this SQLite file or database URL instead of --database')
    .option('--dry-run', 'verify and test the restored database on a scratch copy; change nothing')
    .option('--yes', 'do not ask for confirmation (needed without a terminal)')
    .option('--force', 'accept another schema version; load into a non-empty PostgreSQL/D1 target after a safety export'))
    .action((id: string | undefined, command: { to?: string; dryRun?: boolean; yes?: boolean; force?: boolean } & RestoreAtOptions) => {
      cli.choose(async (options) => {
        if (command.at !== undefined) return runRestoreAt(cli, options, command)
        if (id === undefined) throw usageError('restore : indiquez l’identifiant de la sauvegarde, ou --at <instant>.', 'Voir `advanced-backup list`, ou `advanced-backup restore --at 2026-03-01T14:05:00+01:00`.')
        const progress = terminalProgress({ enabled: !options.quiet && !options.json })
        try {
          const result = await cli.system(options, progress.onProgress).restore(id, {
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
      })
    })
}
