/** `restore <id>` (alias 4): the five restore steps; with `--tenant`, one cabinet only. */
import type { Command } from 'commander'
import { print, usageError } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import type { RestorePlan } from '../lib/backup/restore/steps.ts'
import { confirmationQuestion, renderRestore } from '../lib/backup/restore/render.ts'
import type { TenantRestorePlan } from '../lib/tenant-restore/plan.ts'
import { renderTenantRestore, tenantConfirmationQuestion } from '../lib/tenant-restore/render.ts'
import type { BackupCli } from './_cli.ts'
import { addRestoreAtOptions, runRestoreAt, type RestoreAtOptions } from './restore-at.ts'

interface RestoreFlags {
  to?: string
  tenant?: string
  dryRun?: boolean
  yes?: boolean
  force?: boolean
}

export function registerRestore(program: Command, cli: BackupCli): void {
  addRestoreAtOptions(program
    .command('restore [id]')
    .alias('4')
    .description('restaurer un backup (ou l\'état à un instant avec --at) : vérifier, garder la base actuelle, remplacer atomiquement, contrôler, rendre compte')
    .option('--to <chemin|url>', 'restaurer dans ce fichier SQLite ou cette URL de base au lieu de --database (un autre moteur que celui du backup est accepté)')
    .option('--tenant <id|nom>', "ne restaurer qu'un cabinet (id, nom ou slug) : ses lignes seules sont remplacées, les autres cabinets ne sont pas touchés")
    .option('--dry-run', "vérifier et montrer ce qui serait fait (avec --tenant : par table, lignes à supprimer, à insérer, inchangées) ; ne rien changer")
    .option('--yes', 'ne pas demander de confirmation (obligatoire sans terminal)')
    .option('--force', "accepter une autre version du schéma ; charger dans une base PostgreSQL/D1 non vide après un export de sécurité"))
    .action((id: string | undefined, command: RestoreFlags & RestoreAtOptions) => {
      cli.choose(async (options) => {
        if (command.at !== undefined) return runRestoreAt(cli, options, command)
        if (id === undefined) throw usageError('restore : indiquez l’identifiant de la sauvegarde, ou --at <instant>.', 'Voir `advanced-backup list`, ou `advanced-backup restore --at 2026-03-01T14:05:00+01:00`.')
        if (command.tenant !== undefined && command.force) throw usageError('--force ne s\'applique pas à --tenant', 'La restauration d\'un cabinet refuse toujours un schéma différent sur ses tables ; retirez --force.')
        const progress = terminalProgress({ enabled: !options.quiet && !options.json })
        // Asked on a terminal only; without one, --yes is required (the library refuses).
        const tty = process.stdin.isTTY && process.stdout.isTTY
        const ask = async (question: string) => {
          progress.stop()
          // Loaded for the question only (~0.1 s of start-up otherwise).
          const { confirm } = await import('@inquirer/prompts')
          return confirm({ message: question, default: false })
        }
        try {
          if (command.tenant !== undefined) {
            const result = await cli.system(options, progress.onProgress).restoreTenant(id, {
              tenant: command.tenant,
              ...(command.to !== undefined ? { to: command.to } : {}),
              dryRun: command.dryRun ?? false,
              yes: command.yes ?? false,
              ...(tty ? { confirm: (plan: TenantRestorePlan) => ask(tenantConfirmationQuestion(plan)) } : {}),
            })
            progress.stop()
            print(result, () => renderTenantRestore(result), options)
            return 0
          }
          const result = await cli.system(options, progress.onProgress).restore(id, {
            ...command,
            ...(tty ? { confirm: (plan: RestorePlan) => ask(confirmationQuestion(plan)) } : {}),
          })
          progress.stop()
          print(result, () => renderRestore(result), options)
          return 0
        } finally {
          progress.stop()
        }
      })
    })
}
