/** `list` (alias 2): the complete backups, newest first. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { renderList } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerList(program: Command, cli: BackupCli): void {
  program
    .command('list')
    .alias('2')
    .description('lister les backups complets, du plus récent au plus ancien')
    .action(() => {
      cli.choose(async (options) => {
        const result = await cli.system(options).list()
        print(result, () => renderList(result, { cwd: cli.environment.cwd }), options)
        return 0
      })
    })
}
