/** `replicate --database file:… --dir <dossier|s3://…|azure://…>`: continuous replication until Ctrl-C or SIGTERM. */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { engineForUrl } from '../lib/engines/index.ts'
import { privateScratchDir } from '../lib/fs/leftovers.ts'
import { openReplicaStore } from '../lib/replication/object-store.ts'
import { duration, type BackupCli } from './_cli.ts'

export function registerReplicate(program: Command, cli: BackupCli): void {
  program
    .command('replicate')
    .description('réplication continue (SQLite, WAL) vers --dir (dossier, s3://…, azure://…) jusqu’à Ctrl-C ou SIGTERM')
    .option('--snapshot-every <durée>', 'un snapshot complet à cet intervalle (défaut 24h)', duration)
    .option('--retention <durée>', 'garder de quoi restaurer tout instant de cette période (défaut 7d)', duration)
    .action((command: { snapshotEvery?: number; retention?: number }) => {
      cli.choose(async (options) => {
        const { environment } = cli
        const url = options.database ?? environment.databaseUrl
        const engine = engineForUrl(url)
        const location = engine.parseUrl(url, { cwd: environment.cwd, d1PersistDir: environment.d1PersistDir })
        const replicaUrl = options.dir ?? join(environment.projectRoot, 'backups', 'replica')
        // Snapshots bound for object storage are staged in a folder of this process (named after its
        // pid, so the next run removes what a killed one left), never in the project's folder.
        const stagingDir = await privateScratchDir('ipm-replica-staging-')
        try {
          const replica = openReplicaStore(replicaUrl, { env: environment.storage, cwd: environment.cwd, stagingDir })
          const signal = cli.interruptible()
          const say = (line: string) => { if (!options.quiet && !options.json) process.stdout.write(`${line}\n`) }
          say(`Réplication de ${url.replace(/^file:/, '')} vers ${replica.label} (Ctrl-C ou SIGTERM pour arrêter proprement)`)
          const report = await engine.pitr.replicate(location, {
            environment, replica, signal, onEvent: say,
            ...(command.snapshotEvery !== undefined ? { snapshotEveryMs: command.snapshotEvery } : {}),
            ...(command.retention !== undefined ? { retentionMs: command.retention } : {}),
          })
          print(report.result, () => `${report.lines.join('\n')}\n`, options)
          return 0
        } finally {
          await rm(stagingDir, { recursive: true, force: true })
        }
      })
    })
}
