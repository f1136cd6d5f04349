/** `create` (alias 1, the default verb): one backup of the database. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import { renderCreate } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerCreate(program: Command, cli: BackupCli): void {
  program
    .command('create', { isDefault: true })
    .alias('1')
    .description('sauvegarder la base (la commande par défaut)')
    .option('--incremental', 'SQLite : ne stocker que les lignes modifiées depuis le dernier backup (un backup complet s’il n’y en a aucun)')
    .option('--encrypt', 'chiffrer le backup (AES-256-GCM) avec --key-file, BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE ; sans clé, rien n’est écrit')
    .action((command: { incremental?: boolean; encrypt?: boolean }) => {
      cli.choose(async (options) => {
        const progress = terminalProgress({ enabled: !options.quiet && !options.json })
        try {
          const result = await cli.system(options, progress.onProgress, { encrypt: command.encrypt ?? false }).create({ incremental: command.incremental ?? false })
          progress.stop()
          print(result, () => renderCreate(result, { cwd: cli.environment.cwd }), options)
          return 0
        } finally {
          progress.stop()
        }
      })
    })
}
