/**
 * Applies the committed migrations to DATABASE_URL or --database, on any engine, recording them in
 * `_prisma_migrations` as Prisma does. For SQLite, `npx prisma migrate deploy` does the same.
 */
import '../scripts/lib/node-floor.ts'
import { Command } from 'commander'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { applyMigrations, migrationStatus } from '../scripts/lib/db/migrations.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { runCommand } from '../scripts/lib/cli.ts'

const program = new Command('migrate')
  .description('Appliquer les migrations Prisma du dépôt (SQLite, PostgreSQL, D1)')
  .option('--database <url>', 'URL de la base (défaut : DATABASE_URL, sinon file:./prisma/dev.db)')
  .option('--create', 'créer le fichier SQLite s’il n’existe pas')
  .option('--status', 'dire seulement quelles migrations sont appliquées ou en attente (sortie 1 si la base n’est pas à jour)')

const environment = resolveEnvironment()

runCommand<{ database?: string; create?: boolean; status?: boolean }>(program, async (options) => {
  const db = await openDatabase(options.database ?? environment.databaseUrl, { create: options.create ?? false, environment })
  try {
    if (options.status) {
      const status = await migrationStatus(db.sql)
      console.log(`${db.redactedUrl} : ${status.applied.length} appliquée(s), ${status.pending.length} en attente${status.pending.length ? ` (${status.pending.join(', ')})` : ''}`)
      for (const [label, names] of [['modifiées depuis leur application', status.modified], ['absentes des migrations de prisma/', status.unknown], ['en échec', status.failed]] as const) {
        if (names.length > 0) console.log(`  ${label} : ${names.join(', ')}`)
      }
      return status.upToDate ? 0 : 1
    }
    const { applied } = await applyMigrations(db.sql)
    console.log(applied.length === 0 ? `${db.redactedUrl} : déjà à jour.` : `${db.redactedUrl} : appliquée(s) : ${applied.join(', ')}.`)
  } finally {
    await db.close()
  }
}, { debug: environment.debug })
