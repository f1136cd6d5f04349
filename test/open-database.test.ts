import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { PROJECT_ROOT, resolveEnvironment } from '../scripts/lib/environment.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { runScript } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'

const environment = resolveEnvironment({})

async function refusal(url: string, options: { create?: boolean } = {}): Promise<ToolkitError> {
  try {
    const db = await openDatabase(url, { environment, ...options })
    await db.close()
  } catch (error) {
    assert.ok(error instanceof ToolkitError, `${url}: ${error}`)
    return error
  }
  assert.fail(`${url} opened`)
}

test('the default database is the project\'s prisma/dev.db, wherever the command runs from', () => {
  assert.equal(resolveEnvironment({}, { cwd: '/elsewhere' }).databaseUrl, `file:${join(PROJECT_ROOT, 'prisma', 'dev.db')}`)
  assert.equal(resolveEnvironment({ DATABASE_URL: 'postgresql://db/app' }).databaseUrl, 'postgresql://db/app')
})

test('each engine refuses what it cannot open with a message naming the engine and the redacted URL', async (t) => {
  const dir = tempDir(t)
  let error = await refusal(`file:${join(dir, 'missing-dir', 'dev.db')}`, { create: true })
  assert.match(error.message, /^SQLite file:.*missing-dir\/dev\.db : le dossier .* n’existe pas$/)
  error = await refusal(`file:${join(dir, 'absent.db')}`)
  assert.match(error.message, /^SQLite .*absent\.db : fichier de base introuvable$/)
  writeFileSync(join(dir, 'text.db'), 'this is not a database, just some text that is long enough to fill a header.'.repeat(10))
  error = await refusal(`file:${join(dir, 'text.db')}`)
  assert.match(error.message, /^SQLite .*text\.db : ouverture impossible : ce fichier n’est pas une base SQLite$/)
  mkdirSync(join(dir, 'folder.db'))
  error = await refusal(`file:${join(dir, 'folder.db')}`)
  assert.match(error.message, /le chemin est un dossier/)

  error = await refusal('postgresql://postgres:hunter2@127.0.0.1:1/nowhere')
  assert.match(error.message, /^PostgreSQL postgresql:\/\/postgres:\*\*\*\*@127\.0\.0\.1:1\/nowhere : connexion impossible : .*ECONNREFUSED/)
  assert.doesNotMatch(error.message, /hunter2/)
  error = await refusal('postgresql://no_such_role_x@127.0.0.1:5432/postgres')
  assert.match(error.message, /connexion impossible : .*no_such_role_x/)

  error = await refusal('d1://account-1/database-1')
  assert.match(error.message, /^D1 d1:\/\/account-1\/database-1 : pas de jeton d’API pour le D1 distant$/)
  assert.match(error.hint ?? '', /CLOUDFLARE_D1_TOKEN/)
})

test('a script given a bad URL prints one clear line, no stack, and exits non-zero', (t) => {
  const dir = tempDir(t)
  for (const [url, expected] of [
    ['mysql://root:topsecret@localhost/app', /^Erreur : schéma d’URL inconnu « mysql: » : mysql:\/\/root:\*\*\*\*@localhost\/app$/],
    [`file:${join(dir, 'nope', 'x.db')}`, /^Erreur : SQLite .* : le dossier .* n’existe pas$/],
    ['postgresql://u:topsecret@127.0.0.1:1/db', /^Erreur : PostgreSQL postgresql:\/\/u:\*\*\*\*@127\.0\.0\.1:1\/db : connexion impossible/],
  ] as const) {
    const result = runScript('prisma/seed.ts', ['--database', url], { env: { DEBUG: '' } })
    assert.equal(result.status, 1, result.stderr)
    const lines = result.stderr.trim().split('\n')
    assert.match(lines[0]!, expected)
    assert.match(lines[1] ?? '', /^Essayez : /)
    assert.equal(lines.length, 2, result.stderr)
    assert.doesNotMatch(result.stderr + result.stdout, /topsecret|    at /)
  }
  const debug = runScript('prisma/seed.ts', ['--database', 'mysql://x/y'], { env: { DEBUG: '1' } })
  assert.match(debug.stderr, /    at /, 'DEBUG shows the stack')
})
