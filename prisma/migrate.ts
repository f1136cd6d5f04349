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
  .description('Apply the committed Prisma migrations (SQLite, PostgreSQL, D1)')
  .option('--database <url>', 'database URL (default: DATABASE_URL or file:./prisma/dev.db)')
  .option('--create', 'create the SQLite file if it does not exist')
  .option('--status', 'only report which migrations are applied or pending (exit 1 when not up to date)')

const environment = resolveEnvironment()

runCommand<{ database?: string; create?: boolean; status?: boolean }>(program, async (options) => {
  const db = await openDatabase(options.database ?? environment.databaseUrl, { create: options.create ?? false, environment })
  try {
    if (options.status) {
      const status = await migrationStatus(db.sql)
      console.log(`${db.redactedUrl}: ${status.applied.length} applied, ${status.pending.length} pending${status.pending.length ? ` (${status.pending.join(', ')})` : ''}`)
      for (const [label, names] of [['modified since applied', status.modified], ['not in prisma/ migrations', status.unknown], ['failed', status.failed]] as const) {
        if (names.length > 0) console.log(`  ${label}: ${names.join(', ')}`)
      }
      return status.upToDate ? 0 : 1
    }
    const { applied } = await applyMigrations(db.sql)
    console.log(applied.length === 0 ? `${db.redactedUrl}: already up to date.` : `${db.redactedUrl}: applied ${applied.join(', ')}.`)
  } finally {
    await db.close()
  }
}, { debug: environment.debug })
