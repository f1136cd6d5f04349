/** `rekey --new-key-file <path>`: re-wrap every backup's data key under a new key; archives untouched. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { renderRekey } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerRekey(program: Command, cli: BackupCli): void {
  program
    .command('rekey')
    .description('re-chiffrer la clé de données de chaque backup de --dir sous une nouvelle clé (clé actuelle : --key-file, BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE) ; seules les métadonnées sont réécrites')
    .requiredOption('--new-key-file <path>', 'la nouvelle clé (créée par « keygen »)')
    .action((command: { newKeyFile: string }) => {
      cli.choose(async (options) => {
        const result = await cli.system(options).rekey({ newKeyFile: command.newKeyFile })
        print(result, () => renderRekey(result), options)
        return 0
      })
    })
}
