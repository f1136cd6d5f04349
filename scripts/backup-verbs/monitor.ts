/** `monitor`: create, stats and check in one run (npm run backup:monitor). */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { terminalProgress } from '../lib/progress.ts'
import { DEFAULT_MAX_SHRINK_PERCENT, renderCheck } from '../lib/backup/catalog/check.ts'
import { renderCreate, renderStats } from '../lib/backup/render.ts'
import { maxAge, percent, type BackupCli } from './_cli.ts'

export function registerMonitor(program: Command, cli: BackupCli): void {
  program
    .command('monitor')
    .description('create, puis stats, puis check, en une seule exécution avec toutes les options (npm run backup:monitor)')
    .option('--incremental', 'SQLite : ne stocker que les lignes modifiées depuis le dernier backup')
    .option('--encrypt', 'chiffrer le backup (AES-256-GCM) avec --key-file, BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE')
    .option('--max-age <duration>', 'âge maximal du dernier backup vérifié (26h, 90m, 2d)', maxAge)
    .option('--max-shrink <percent>', `baisse de taille maximale admise par rapport au backup précédent, en % (défaut ${DEFAULT_MAX_SHRINK_PERCENT})`, percent)
    .action((options: { incremental?: boolean; encrypt?: boolean; maxAge?: number; maxShrink?: number }) => {
      cli.choose(async (global) => {
        const progress = terminalProgress({ enabled: !global.quiet && !global.json })
        const backups = cli.system(global, progress.onProgress, { encrypt: options.encrypt ?? false })
        let created
        try {
          created = await backups.create({ incremental: options.incremental ?? false })
        } finally {
          progress.stop()
        }
        const stats = await backups.stats()
        const check = await backups.check({
          ...(options.maxAge !== undefined ? { maxAgeMs: options.maxAge } : {}),
          ...(options.maxShrink !== undefined ? { maxShrinkPercent: options.maxShrink } : {}),
        })
        const ok = check.ok
        print(
          { create: created, stats, check },
          () => [renderCreate(created, { cwd: cli.environment.cwd }), renderStats(stats, { cwd: cli.environment.cwd }), renderCheck(check)].join('\n'),
          { ...global, failed: !ok },
        )
        return ok ? 0 : 1
      })
    })
}
