/** `export --to <folder>`: the export formats of the database, without a backup. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import { renderExport } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerExport(program: Command, cli: BackupCli): void {
  program
    .command('export')
    .description('écrire les exports (--formats) dans un nouveau dossier, sans backup : lus sur place, à un seul instant')
    .requiredOption('--to <dossier>', 'le dossier à créer (il ne doit pas exister)')
    .action((command: { to: string }) => {
      cli.choose(async (options) => {
        const progress = terminalProgress({ enabled: !options.quiet && !options.json })
        try {
          const result = await cli.system(options, progress.onProgress).exportTo(command.to)
          progress.stop()
          print(result, () => renderExport(result, { cwd: cli.environment.cwd }), options)
          return 0
        } finally {
          progress.stop()
        }
      })
    })
}
