/** `verify <id>` (alias 3): recompute every hash of one backup. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import { renderVerify } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerVerify(program: Command, cli: BackupCli): void {
  program
    .command('verify <id>')
    .alias('3')
    .description('recalculer chaque empreinte d’un backup ; sortie 1 au moindre défaut')
    .action((id: string) => {
      cli.choose(async (options) => {
        const progress = terminalProgress({ enabled: !options.quiet && !options.json })
        const report = await cli.system(options, progress.onProgress).verify(id)
        progress.stop()
        print(report, () => renderVerify(report, { cwd: cli.environment.cwd }), { ...options, failed: !report.ok })
        return report.ok ? 0 : 1
      })
    })
}
