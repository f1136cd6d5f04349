import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureDevDatabase } from '../scripts/lib/seed/dev-database.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { requireJudge } from './helpers/judges.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

test('ensureDevDatabase creates a migrated demo database that the Prisma CLI and sqlite3 accept', { skip: requireJudge('sqlite3') }, async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'dev.db')
  assert.deepEqual(await ensureDevDatabase({ environment: resolveEnvironment(), path }), { path, created: true })
  assert.deepEqual(readdirSync(dir), ['dev.db'], 'no temporary or -wal file is left behind')
  assert.equal(execFileSync('sqlite3', [path, 'select count(*) from Dossier'], { encoding: 'utf8' }), '9\n')
  assert.equal(execFileSync('sqlite3', [path, 'pragma integrity_check'], { encoding: 'utf8' }), 'ok\n')
  const status = execFileSync(join(REPO_ROOT, 'node_modules/.bin/prisma'), ['migrate', 'status'], {
    cwd: REPO_ROOT,
    env: { ...process.env, DATABASE_URL: `file:${path}` },
    encoding: 'utf8',
  })
  assert.match(status, /Database schema is up to date/)
})

test('ensureDevDatabase never touches an existing database', async (t) => {
  const path = join(tempDir(t), 'dev.db')
  writeFileSync(path, 'not even a database')
  const before = statSync(path)
  assert.deepEqual(await ensureDevDatabase({ environment: resolveEnvironment(), path }), { path, created: false })
  assert.equal(statSync(path).mtimeMs, before.mtimeMs)
})
