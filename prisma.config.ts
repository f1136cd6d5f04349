// Prisma 6.19 with the JavaScript schema engine: every CLI command runs offline (see README).
import { existsSync } from 'node:fs'
import { defineConfig } from 'prisma/config'
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3'

if (existsSync('.env')) process.loadEnvFile('.env')

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/sqlite/schema.prisma',
  migrations: { seed: 'tsx prisma/seed.ts' },
  adapter: async () => new PrismaBetterSQLite3({ url: process.env.DATABASE_URL || 'file:./prisma/dev.db' }),
})
