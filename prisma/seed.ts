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
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('un entier positif est attendu')
  return n
}

const program = new Command('seed')
  .description('Charger les données de démo d’IA Poste Manager')
  .option('--database <url>', 'URL de la base (défaut : DATABASE_URL, sinon file:./prisma/dev.db)')
  .option('--scale <dossiers>', 'ajouter aussi environ ce nombre de dossiers répartis sur de nombreux cabinets', positiveInteger)
  .option('--seed <n>', 'graine aléatoire du jeu de données de volume', positiveInteger)

const environment = resolveEnvironment()

runCommand<{ database?: string; scale?: number; seed?: number }>(program, async (options) => {
  const db = await openDatabase(options.database ?? environment.databaseUrl, { environment })
  try {
    const demo = await seedDemo(db.prisma)
    console.log(`Données de démo sur ${db.redactedUrl} : ${demo.plans} plans, ${demo.tenants} cabinets, ${demo.users} utilisateurs, ${demo.clients} clients, ${demo.dossiers} dossiers.`)
    if (options.scale !== undefined) {
      const started = performance.now()
      const scale = await seedScale(db.sql, {
        dossiers: options.scale,
        seed: options.seed,
        onProgress: ({ table, rows }) => {
          if (process.stderr.isTTY) process.stderr.write(`\r  ${table} : ${rows.toLocaleString('fr-FR')} lignes`.padEnd(40))
        },
      })
      if (process.stderr.isTTY) process.stderr.write('\n')
      const seconds = (performance.now() - started) / 1000
      console.log(`Données de volume : ${scale.tenants} cabinets, ${scale.users} utilisateurs, ${scale.clients} clients, ${scale.dossiers} dossiers en ${seconds.toFixed(1)} s.`)
    }
  } finally {
    await db.close()
  }
}, { debug: environment.debug })
