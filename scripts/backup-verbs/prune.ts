/** `prune` (alias 6): the rotation, now. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { renderPrune } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerPrune(program: Command, cli: BackupCli): void {
  program
    .command('prune')
    .alias('6')
    .description('appliquer la rotation maintenant (--keep N, défaut 10) ; --dry-run montre seulement ce qui partirait')
    .option('--dry-run', 'montrer ce qui serait supprimé, ne rien supprimer')
    .action((options: { dryRun?: boolean }) => {
      cli.choose(async (global) => {
        const result = await cli.system(global).prune({ dryRun: options.dryRun ?? false })
        print(result, () => renderPrune(result), global)
        return 0
      })
    })
}
