import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { converterFor } from '../scripts/lib/migration/conversion.ts'
import { migratePostgresToSqlite } from '../scripts/lib/migration/migrate.ts'
import { defer, tempDir } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { appSourceWithEdgeValues, filesIn } from './helpers/migration.ts'
import { requireJudge } from './helpers/judges.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const MODELS = ['plan', 'tenant', 'user', 'client', 'dossier'] as const

test('app schema: the SQLite Prisma client reads every row exactly as the PostgreSQL client does, and prisma migrate status accepts the file', { skip: requireJudge('sqlite3') }, async (t) => {
  const source = await appSourceWithEdgeValues(t)
  const dir = tempDir(t)
  const path = join(dir, 'app.db')
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: source.url, to: path })
  assert.equal(result.status, 'migrated', JSON.stringify(result.plan.problems))
  assert.equal(result.plan.schema.mode, 'app')
  assert.deepEqual(result.tables.map((table) => [table.table, table.sourceRows, table.targetRows, table.ok]), [
    ['Plan', 10, 10, true],
    ['Tenant', 7, 7, true],
    ['Client', 5, 5, true],
    ['Dossier', 10, 10, true],
    ['User', 9, 9, true],
  ])
  assert.deepEqual(filesIn(dir), ['app.db'])

  const target = await openDatabase(`file:${path}`, { environment: resolveEnvironment() })
  defer(t, () => target.close())
  for (const model of MODELS) {
    const delegate = (client: typeof target.prisma) => client[model] as unknown as { findMany(args: object): Promise<unknown[]> }
    const expected = await delegate(source.prisma).findMany({ orderBy: { id: 'asc' } })
    const actual = await delegate(target.prisma).findMany({ orderBy: { id: 'asc' } })
    assert.ok(expected.length > 0)
    assert.deepStrictEqual(actual, expected, `${model} rows differ`)
  }
  // The edge values are really there (a deep-equal of two empty reads would prove nothing).
  const edge = await target.prisma.plan.findUniqueOrThrow({ where: { id: 'plan-edge-1' } })
  assert.equal(edge.maxStorageBytes, 9_223_372_036_854_775_807n)
  assert.equal(edge.priceMonthly.toString(), '123456789012.345')
  assert.equal(edge.createdAt.toISOString(), '2026-01-21T15:30:00.123Z')
  const dossier = await target.prisma.dossier.findUniqueOrThrow({ where: { id: 'dossier-edge' } })
  assert.equal(dossier.description, 'ligne 1\r\nligne 2\n\n\tindentée — ✓ 😀 \b\f\v\u0001\u001f\u007f')

  // Independent judges: Prisma's own CLI and the sqlite3 tool.
  const status = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/prisma/build/index.js'), 'migrate', 'status'], {
    cwd: REPO_ROOT,
    env: { ...process.env, DATABASE_URL: `file:${path}` },
    encoding: 'utf8',
  })
  assert.equal(status.status, 0, status.stdout + status.stderr)
  assert.match(status.stdout, /Database schema is up to date/)
  const checks = spawnSync('sqlite3', [path, 'PRAGMA integrity_check; PRAGMA foreign_key_check; PRAGMA journal_mode;'], { encoding: 'utf8' })
  assert.equal(checks.stdout, 'ok\ndelete\n')
})

test('--tables copies the selection plus the tables its foreign keys point to, and nothing else', async (t) => {
  const source = await appSourceWithEdgeValues(t)
  const path = join(tempDir(t), 'subset.db')
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: source.url, to: path, tables: ['Dossier'] })
  assert.equal(result.status, 'migrated')
  assert.deepEqual(result.plan.tables.map((table) => [table.name, table.reason]), [
    ['Plan', 'référencée par Tenant'],
    ['Tenant', 'référencée par Client'],
    ['Client', 'référencée par Dossier'],
    ['Dossier', 'choisie'],
  ])
  const target = await openDatabase(`file:${path}`, { environment: resolveEnvironment() })
  defer(t, () => target.close())
  assert.equal(await target.prisma.dossier.count(), 10)
  assert.equal(await target.prisma.user.count(), 0)
  await assert.rejects(migratePostgresToSqlite({ environment: resolveEnvironment(), from: source.url, to: path, tables: ['dossier'], dryRun: true }), (error: Error & { exitCode?: number }) => {
    assert.match(error.message, /pas de table "dossier"/)
    assert.equal(error.exitCode, 2)
    return true
  })
})

test('the copy reads one snapshot: rows the app commits during the copy are not copied', { skip: requireJudge('psql') }, async (t) => {
  const source = await appSourceWithEdgeValues(t)
  const path = join(tempDir(t), 'snapshot.db')
  let written = false
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(),
    from: source.url,
    to: path,
    onProgress: () => {
      if (written) return
      written = true
      // When the first table starts, the app adds a client and a dossier; psql blocks until they are committed.
      const sql = `WITH c AS (INSERT INTO "Client" (id, "tenantId", "firstName", "lastName") VALUES ('client-late', 'tenant-demo', 'Late', 'Writer') RETURNING id)
        INSERT INTO "Dossier" (id, "tenantId", "clientId", numero, titre, "updatedAt") SELECT 'dossier-late', 'tenant-demo', id, 'LATE-1', 'Late', now() FROM c`
      execFileSync('psql', [source.url, '-v', 'ON_ERROR_STOP=1', '-qc', sql])
    },
  })
  assert.equal(result.status, 'migrated')
  assert.equal(await source.prisma.dossier.count(), 11)
  assert.deepEqual(result.tables.filter((t) => ['Client', 'Dossier'].includes(t.table)).map((t) => [t.table, t.targetRows, t.ok]), [['Client', 5, true], ['Dossier', 10, true]])
})

test('the verification catches a conversion that drops milliseconds, and nothing is written', async (t) => {
  const source = await appSourceWithEdgeValues(t)
  const dir = tempDir(t)
  const correct = converterFor('datetime')
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(),
    from: source.url,
    to: join(dir, 'broken.db'),
    // A classic bug: timestamps cut to the second.
    conversions: { datetime: (text) => (correct.toSqlite(text) as string).replace(/\.\d+\+/, '.000+') },
  })
  assert.equal(result.status, 'mismatch')
  assert.deepEqual(result.tables.map((table) => [table.table, table.sourceRows === table.targetRows, table.ok]), [
    ['Plan', true, false],
    ['Tenant', true, false],
    ['Client', true, false],
    ['Dossier', true, false],
    ['User', true, false],
  ])
  assert.deepEqual(filesIn(dir), [])
})

test("a source whose migration history differs from the committed migrations is refused in the app's schema", async (t) => {
  const source = await appSourceWithEdgeValues(t)
  await source.sql.query(`UPDATE "_prisma_migrations" SET migration_name = '20250101000000_older'`)
  const dir = tempDir(t)
  const refused = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: source.url, to: join(dir, 'x.db') })
  assert.equal(refused.status, 'refused')
  assert.match(refused.plan.problems[0]!.message, /migrations appliquées de la source \[20250101000000_older\] diffèrent de prisma\/sqlite\/migrations \[20260121153000_init\].*--schema derive/)
  assert.equal(existsSync(join(dir, 'x.db')), false)
  const derived = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: source.url, to: join(dir, 'x.db'), schema: 'derive' })
  assert.equal(derived.status, 'migrated')
  assert.equal(derived.tables.length, 6)
})
