/** `keygen --key-file <path>`: a new random encryption key, mode 0600, never replacing a file. */
import type { Command } from 'commander'
import { resolve } from 'node:path'
import { print, usageError } from '../lib/cli.ts'
import { generateKeyFile } from '../lib/encryption/keys.ts'
import { renderKeygen } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerKeygen(program: Command, cli: BackupCli): void {
  program
    .command('keygen')
    .description('créer une clé de chiffrement (32 octets aléatoires, base64) dans un fichier de mode 0600 ; refuse d’écraser un fichier')
    .addHelpText('after', '\n--key-file <chemin> (option globale) dit où écrire la clé ; gardez-en une copie hors de la machine : sans elle, les backups chiffrés sont perdus.')
    .action(() => {
      cli.choose(async (options) => {
        if (options.keyFile === undefined) throw usageError('keygen demande --key-file <chemin>', 'par exemple : advanced-backup keygen --key-file /etc/ipm/backup.key')
        const result = generateKeyFile(resolve(cli.environment.cwd, options.keyFile))
        print(result, () => renderKeygen(result), options)
        return 0
      })
    })
}
