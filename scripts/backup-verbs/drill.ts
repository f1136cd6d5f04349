/** `drill [<id>]`: restore a backup into a scratch database and prove it restores (exit 1 when not). */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import { renderDrill } from '../lib/backup/drill/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerDrill(program: Command, cli: BackupCli): void {
  program
    .command('drill [id]')
    .description("exercice de restauration : restaurer un backup (par défaut le plus récent pas encore testé) dans une base jetable du même moteur, puis vérifier intégrité, lignes, empreintes, migrations et requêtes ; la base configurée n'est jamais touchée")
    .action((id: string | undefined) => {
      cli.choose(async (options) => {
        const progress = terminalProgress({ enabled: !options.quiet && !options.json })
        try {
          const result = await cli.system(options, progress.onProgress).drill(id !== undefined ? { id } : {})
          progress.stop()
          print(result, () => renderDrill(result), { ...options, failed: !result.ok })
          return result.ok ? 0 : 1
        } finally {
          progress.stop()
        }
      })
    })
}
