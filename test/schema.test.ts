import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { composeSchema, schemaPaths, type SchemaProvider } from '../prisma/compose-schemas.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { applyMigrations } from '../scripts/lib/db/migrations.ts'
import { REPO_ROOT, runScript } from './helpers/cli.ts'
import { createPostgresDatabase, tempDir } from './helpers/databases.ts'
import { requireJudge } from './helpers/judges.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

/** What the models in the schema file say the database should be, as Prisma would create it. */
function schemaScript(provider: SchemaProvider): string {
  return execFileSync(join(REPO_ROOT, 'node_modules/.bin/prisma'), ['migrate', 'diff', '--from-empty', '--to-schema-datamodel', schemaPaths[provider], '--script'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).replace(/^Loaded Prisma config.*$/m, '')
}

test('both engine schemas are exactly what prisma/models.prisma composes', () => {
  for (const provider of ['sqlite', 'postgresql'] as const) {
    assert.equal(readFileSync(schemaPaths[provider], 'utf8'), composeSchema(provider), `${schemaPaths[provider]} drifted: run npm run schema:compose`)
  }
})

test('the committed SQLite migrations build the schema the models describe', { skip: requireJudge('sqlite3') }, async (t) => {
  const dir = tempDir(t)
  const fromMigrations = await openDatabase(`file:${join(dir, 'migrated.db')}`, { environment: resolveEnvironment(), create: true })
  await applyMigrations(fromMigrations.sql)
  await fromMigrations.close()
  const fromModels = await openDatabase(`file:${join(dir, 'models.db')}`, { environment: resolveEnvironment(), create: true })
  await fromModels.sql.executeScript(schemaScript('sqlite'))
  await fromModels.close()
  const schemaOf = (file: string) =>
    execFileSync('sqlite3', [join(dir, file), `SELECT sql FROM sqlite_master WHERE name NOT LIKE '_prisma%' AND sql IS NOT NULL ORDER BY name`], { encoding: 'utf8' })
  assert.ok(schemaOf('models.db').includes('CREATE TABLE "Dossier"'))
  assert.equal(schemaOf('migrated.db'), schemaOf('models.db'))
})

test('the committed PostgreSQL migrations build the schema the models describe', { skip: requireJudge('pg_dump') }, async (t) => {
  const migratedUrl = await createPostgresDatabase(t)
  const modelsUrl = await createPostgresDatabase(t)
  const migrated = await openDatabase(migratedUrl, { environment: resolveEnvironment() })
  await applyMigrations(migrated.sql)
  await migrated.close()
  const models = await openDatabase(modelsUrl, { environment: resolveEnvironment() })
  await models.sql.executeScript(schemaScript('postgresql'))
  await models.close()
  const schemaOf = (url: string) =>
    execFileSync('pg_dump', ['--schema-only', '--no-owner', '--exclude-table=_prisma_migrations', url], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => !line.startsWith('--') && !/^\\(un)?restrict /.test(line))
      .join('\n')
  assert.match(schemaOf(modelsUrl), /CREATE TYPE public."DossierStatut" AS ENUM/)
  assert.equal(schemaOf(migratedUrl), schemaOf(modelsUrl))
})

test('schema:compose --help prints its help and writes nothing; an unknown option is a usage error', () => {
  const mtimes = () => Object.values(schemaPaths).map((path) => statSync(path).mtimeMs)
  const before = mtimes()
  const help = runScript('prisma/compose-schemas.ts', ['--help'])
  assert.equal(help.status, 0, help.stderr)
  assert.match(help.stdout, /^Utilisation : compose-schemas \[options\]\n/)
  assert.match(help.stdout, /--check {5}ne rien écrire/)
  const unknown = runScript('prisma/compose-schemas.ts', ['--chek'])
  assert.equal(unknown.status, 2)
  assert.equal(unknown.stderr, 'Erreur : option inconnue : --chek (vouliez-vous dire --check ?)\nEssayez : npx tsx prisma/compose-schemas.ts --help\n')
  assert.deepEqual(mtimes(), before, 'no schema rewritten')
})
