/** `pitr setup [--apply]` and `pitr backup`: PostgreSQL's continuous archiving with pgBackRest. */
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import { redactUrl } from '../lib/db/url.ts'
import { engineForUrl } from '../lib/engines/index.ts'
import type { BackupCli, GlobalOptions } from './_cli.ts'
import { addPgBackRestOptions, pitrSettings, type PgBackRestOptions } from './restore-at.ts'

export function registerPitr(program: Command, cli: BackupCli): void {
  const pitr = program.command('pitr').description('restauration à un instant (PostgreSQL) : archivage continu avec pgBackRest')
  const run = (options: GlobalOptions, work: (engine: ReturnType<typeof engineForUrl>, url: string) => Promise<{ result: Record<string, unknown>; lines: string[] }>) => {
    const url = options.database ?? cli.environment.databaseUrl
    return work(engineForUrl(url), url).then((report) => {
      print(report.result, () => `${report.lines.join('\n')}\n`, options)
      return 0
    })
  }
  const location = (engine: ReturnType<typeof engineForUrl>, url: string) => engine.parseUrl(url, { cwd: cli.environment.cwd, d1PersistDir: cli.environment.d1PersistDir })
  addPgBackRestOptions(
    pitr.command('setup')
      .description('vérifie (ou, avec --apply, écrit) archive_mode, archive_command, wal_level et la stanza pgBackRest')
      .option('--apply', 'écrire la configuration (sur un serveur dont vous êtes propriétaire)')
      .option('--repo <dossier>', 'dépôt pgBackRest (défaut /var/lib/pgbackrest)'),
  ).action((command: PgBackRestOptions & { apply?: boolean; repo?: string }) => {
    cli.choose((options) => run(options, (engine, url) => engine.pitr.setup(location(engine, url), { ...pitrSettings(command, cli.environment), apply: command.apply === true, redactedUrl: redactUrl(url), ...(command.repo !== undefined ? { repoPath: command.repo } : {}) })))
  })
  addPgBackRestOptions(
    pitr.command('backup').description('sauvegarde pgBackRest : complète la première fois, incrémentale ensuite'),
  ).action((command: PgBackRestOptions) => {
    cli.choose((options) => run(options, (engine, url) => engine.pitr.backup(location(engine, url), { ...pitrSettings(command, cli.environment), signal: cli.interruptible() })))
  })
}
