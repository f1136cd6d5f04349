/** `prune` (alias 6): the rotation, now. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { renderPrune } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerPrune(program: Command, cli: BackupCli): void {
  program
    .command('prune')
    .alias('6')
    .description('apply the rotation now (--keep N, default 10); --dry-run only shows what would go')
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .action((options: { dryRun?: boolean }) => {
      cli.choose(async (global) => {
        const result = await cli.system(global).prune({ dryRun: options.dryRun ?? false })
        print(result, () => renderPrune(result), global)
        return 0
      })
    })
}
