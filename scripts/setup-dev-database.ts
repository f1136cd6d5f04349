/**
 * Run by `npm ci` / `npm install`: creates prisma/dev.db (migrations + demo seed) when it is missing.
 * An existing database is never touched.
 */
import './lib/node-floor.ts'
import { join } from 'node:path'
import { Command } from 'commander'
import { ensureDevDatabase } from './lib/seed/dev-database.ts'
import { runCommand } from './lib/cli.ts'
import { resolveEnvironment } from './lib/environment.ts'

const environment = resolveEnvironment()

runCommand(new Command('setup-dev-database').description('Créer prisma/dev.db (migrations + données de démo) s’il manque'), async () => {
  const { path, created } = await ensureDevDatabase({ environment, path: join(environment.projectRoot, 'prisma', 'dev.db') })
  console.log(created ? `${path} créé avec les données de démo.` : `${path} existe : laissé tel quel.`)
})
