/** `stats` (alias 5): counts, sizes, ages. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { renderStats } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerStats(program: Command, cli: BackupCli): void {
  program
    .command('stats')
    .alias('5')
    .description('nombre, tailles, âges, durées, compression, dernière vérification')
    .action(() => {
      cli.choose(async (options) => {
        const result = await cli.system(options).stats()
        print(result, () => renderStats(result, { cwd: cli.environment.cwd }), options)
        return 0
      })
    })
}
