/** `check` (alias 7): exit 1 when backups stop working. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { DEFAULT_MAX_SHRINK_PERCENT, renderCheck } from '../lib/backup/catalog/check.ts'
import { maxAge, percent, type BackupCli } from './_cli.ts'

export function registerCheck(program: Command, cli: BackupCli): void {
  program
    .command('check')
    .alias('7')
    .description("sort 1 et dit pourquoi quand les backups ne marchent plus (aucun vérifié depuis --max-age, dernière opération échouée, taille en chute) ; alerte SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL, SMTP_URL")
    .option('--max-age <duration>', 'âge maximal du dernier backup vérifié (26h, 90m, 2d)', maxAge)
    .option('--max-shrink <percent>', `baisse de taille maximale admise par rapport au backup précédent, en % (défaut ${DEFAULT_MAX_SHRINK_PERCENT})`, percent)
    .option('--max-drill-age <durée>', 'dernier exercice de restauration réussi (advanced-backup drill) au plus aussi ancien (défaut 7d)', maxAge)
    .action((options: { maxAge?: number; maxShrink?: number; maxDrillAge?: number }) => {
      cli.choose(async (global) => {
        const result = await cli.system(global).check({
          ...(options.maxAge !== undefined ? { maxAgeMs: options.maxAge } : {}),
          ...(options.maxShrink !== undefined ? { maxShrinkPercent: options.maxShrink } : {}),
          ...(options.maxDrillAge !== undefined ? { maxDrillAgeMs: options.maxDrillAge } : {}),
        })
        const ok = result.ok
        print(result, () => renderCheck(result), { ...global, failed: !ok })
        return ok ? 0 : 1
      })
    })
}
