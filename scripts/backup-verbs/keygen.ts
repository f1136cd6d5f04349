/** `keygen --key-file <path>`: a new random encryption key, mode 0600, never replacing a file. */
import type { Command } from 'commander'
import { resolve } from 'node:path'
import { print } from '../lib/cli.ts'
import { generateKeyFile } from '../lib/encryption/keys.ts'
import { renderKeygen } from '../lib/backup/render.ts'
import type { BackupCli } from './_cli.ts'

export function registerKeygen(program: Command, cli: BackupCli): void {
  program
    .command('keygen')
    .description('créer une clé de chiffrement (32 octets aléatoires, base64) dans un fichier de mode 0600 ; refuse d’écraser un fichier')
    .requiredOption('--key-file <path>', 'où écrire la clé (gardez-en une copie hors de la machine : sans elle, les backups chiffrés sont perdus)')
    .action((command: { keyFile: string }) => {
      cli.choose(async (options) => {
        const result = generateKeyFile(resolve(cli.environment.cwd, command.keyFile))
        print(result, () => renderKeygen(result), options)
        return 0
      })
    })
}
