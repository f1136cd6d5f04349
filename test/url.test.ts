import { test } from 'node:test'
import assert from 'node:assert/strict'
import { redactUrl } from '../scripts/lib/db/url.ts'
import { parseDatabaseUrl } from '../scripts/lib/engines/index.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'

const context = { cwd: '/srv/app', d1PersistDir: '.wrangler/state/d1' }

test('parseDatabaseUrl names the engine and resolves paths', () => {
  const cases: [string, unknown][] = [
    ['file:./prisma/dev.db', { engine: 'sqlite', path: '/srv/app/prisma/dev.db' }],
    ['file:/var/data/app.db?mode=rw', { engine: 'sqlite', path: '/var/data/app.db' }],
    ['file:///var/data/app.db', { engine: 'sqlite', path: '/var/data/app.db' }],
    ['postgresql://u:p@db:5432/app', { engine: 'postgres', connectionString: 'postgresql://u:p@db:5432/app' }],
    ['postgres://db/app', { engine: 'postgres', connectionString: 'postgres://db/app' }],
    ['d1://local', { engine: 'd1', mode: 'local', persistDir: '/srv/app/.wrangler/state/d1' }],
    ['d1://local/state/d1', { engine: 'd1', mode: 'local', persistDir: '/srv/app/state/d1' }],
    ['d1://local//tmp/d1', { engine: 'd1', mode: 'local', persistDir: '/tmp/d1' }],
    ['d1://acc123/db456', { engine: 'd1', mode: 'remote', accountId: 'acc123', databaseId: 'db456' }],
  ]
  for (const [url, expected] of cases) assert.deepEqual(parseDatabaseUrl(url, context), expected, url)
})

test('redactUrl masks passwords and password-like parameters, and nothing else', () => {
  assert.equal(redactUrl('postgresql://admin:s3cr%40t@db.example:5432/app'), 'postgresql://admin:****@db.example:5432/app')
  assert.equal(redactUrl('postgres://db/app?sslmode=require&password=hunter2'), 'postgres://db/app?sslmode=require&password=****')
  assert.equal(redactUrl('postgresql://admin@db/app'), 'postgresql://admin@db/app')
  assert.equal(redactUrl('file:./prisma/dev.db'), 'file:./prisma/dev.db')
})

test('bad URLs are refused with the engine forms to use, never with the password', () => {
  for (const url of ['mysql://root:topsecret@localhost/app', 'dev.db', 'file:', 'd1://acc', 'd1://acc/db/extra', 'postgresql://u:topsecret@[bad/x']) {
    assert.throws(
      () => parseDatabaseUrl(url, context),
      (error: unknown) => {
        assert.ok(error instanceof ToolkitError, url)
        assert.doesNotMatch(error.message, /topsecret/)
        assert.match(error.hint ?? '', /file:<chemin>.*postgresql:\/\/.*d1:\/\/local/)
        return true
      },
    )
  }
  assert.throws(() => parseDatabaseUrl('mysql://x/y', context), /schéma d’URL inconnu « mysql: »/)
})
