/**
 * Seeds the demo data (idempotent) into DATABASE_URL or --database; `--scale N` adds about N
 * dossiers of realistic data for benchmarks. Works on SQLite, PostgreSQL and D1.
 */
import '../scripts/lib/node-floor.ts'
import { Command, InvalidArgumentError } from 'commander'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { runCommand } from '../scripts/lib/cli.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { seedScale } from '../scripts/lib/seed/scale.ts'

const positiveInteger = (value: string) => {
  const n = Number(value.replaceAll('_', ''))
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer')
  return n
}

const program = new Command('seed')
  .description('Seed the IA Poste Manager demo data set')
  .option('--database <url>', 'database URL (default: DATABASE_URL or file:./prisma/dev.db)')
  .option('--scale <dossiers>', 'also add about this many dossiers over many cabinets', positiveInteger)
  .option('--seed <n>', 'random seed of the scale data set', positiveInteger)

const environment = resolveEnvironment()

runCommand<{ database?: string; scale?: number; seed?: number }>(program, async (options) => {
  const db = await openDatabase(options.database ?? environment.databaseUrl, { environment })
  try {
    const demo = await seedDemo(db.prisma)
    console.log(`Demo data on ${db.redactedUrl}: ${demo.plans} plans, ${demo.tenants} tenants, ${demo.users} users, ${demo.clients} clients, ${demo.dossiers} dossiers.`)
    if (options.scale !== undefined) {
      const started = performance.now()
      const scale = await seedScale(db.sql, {
        dossiers: options.scale,
        seed: options.seed,
        onProgress: ({ table, rows }) => {
          if (process.stderr.isTTY) process.stderr.write(`\r  ${table}: ${rows.toLocaleString('en')} rows`.padEnd(40))
        },
      })
      if (process.stderr.isTTY) process.stderr.write('\n')
      const seconds = (performance.now() - started) / 1000
      console.log(`Scale data: ${scale.tenants} tenants, ${scale.users} users, ${scale.clients} clients, ${scale.dossiers} dossiers in ${seconds.toFixed(1)} s.`)
    }
  } finally {
    await db.close()
  }
}, { debug: environment.debug })
