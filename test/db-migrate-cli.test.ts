import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createEmptyDatabaseUrl, ENGINES } from './helpers/databases.ts'

// The CLI is one code path for every engine (applyMigrations is tested per engine in engines.test.ts);
// D1 is left out here because each spawn starts its own Miniflare.
import { runScript } from './helpers/cli.ts'

for (const engine of ENGINES.filter((name) => name !== 'd1')) {
  test(`db:migrate applies the migrations once on ${engine}, and --status tells pending from up to date`, async (t) => {
    const url = await createEmptyDatabaseUrl(t, engine)
    const create = engine === 'sqlite' ? ['--create'] : []
    const before = runScript('prisma/migrate.ts', ['--database', url, '--status', ...create])
    assert.equal(before.status, 1, before.stderr)
    assert.match(before.stdout, /0 appliquée\(s\), 1 en attente \(20260121153000_init\)/)
    const first = runScript('prisma/migrate.ts', ['--database', url, ...create])
    assert.equal(first.status, 0, first.stderr)
    assert.match(first.stdout, /appliquée\(s\) : 20260121153000_init\.$/m)
    const second = runScript('prisma/migrate.ts', ['--database', url])
    assert.match(second.stdout, /déjà à jour\.$/m)
    const after = runScript('prisma/migrate.ts', ['--database', url, '--status'])
    assert.equal(after.status, 0)
    assert.match(after.stdout, /1 appliquée\(s\), 0 en attente$/m)
  })
}
