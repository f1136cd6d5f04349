/**
 * Run by `npm ci` / `npm install`: creates prisma/dev.db (migrations + demo seed) when it is missing.
 * An existing database is never touched.
 */
import { resolve } from 'node:path'
import { ensureDevDatabase } from './lib/seed/dev-database.ts'
import { runMain } from './lib/cli.ts'

runMain(async () => {
  const { path, created } = await ensureDevDatabase({ path: resolve('prisma/dev.db') })
  console.log(created ? `Created ${path} with the demo data.` : `${path} exists: left as it is.`)
})
