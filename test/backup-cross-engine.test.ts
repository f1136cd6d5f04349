/**
 * Cross-engine restore (`advanced-backup restore <id> --to <url of another engine>`): the demo
 * database backed up on one engine and restored into another through the CLI, judged by sqlite3
 * and psql (row counts, integrity) and by the canonical content checksum on both sides.
 */
import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createPostgresDatabase, openTestDatabase, tempDir } from './helpers/databases.ts'
import { backupSystem, run, steppingClock } from './helpers/backup.ts'
import { runScript } from './helpers/cli.ts'
import { requireJudge } from './helpers/judges.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { applyMigrations } from '../scripts/lib/db/migrations.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { tableContentChecksum } from '../scripts/lib/tenant-restore/checksum.ts'

const SCRIPT = 'scripts/advanced-backup.ts'
/** The app's tables; `_prisma_migrations` is each engine's own (its checksums are the dialect's migration files). */
const TABLES = ['Client', 'Dossier', 'Plan', 'Tenant', 'User']

function sqliteCount(path: string, table: string): number {
  return Number(run('sqlite3', [path, `SELECT count(*) FROM "${table}"`]).trim())
}

function psqlCount(url: string, table: string): number {
  return Number(run('psql', [url, '-tAc', `SELECT count(*) FROM "${table}"`]).trim())
}

async function checksums(url: string): Promise<Record<string, { rows: number; checksum: string }>> {
  const db = await openDatabase(url, { environment: resolveEnvironment({}), create: false })
  try {
    const sums: Record<string, { rows: number; checksum: string }> = {}
    for (const table of TABLES) sums[table] = await tableContentChecksum({ db, table })
    return sums
  } finally {
    await db.close()
  }
}

/** A migrated SQLite file holding the demo data, closed (a restore refuses a file another process holds). */
async function seededSqliteFile(t: TestContext): Promise<string> {
  const path = join(tempDir(t), 'app.db')
  const db = await openDatabase(`file:${path}`, { environment: resolveEnvironment({}), create: true })
  try {
    await applyMigrations(db.sql)
    await seedDemo(db.prisma)
  } finally {
    await db.close()
  }
  return path
}

function restore(backupDir: string, id: string, to: string, extra: string[] = []) {
  return runScript(SCRIPT, ['restore', id, '--dir', backupDir, '--to', to, '--yes', ...extra])
}

describe('cross-engine restore', () => {
  test('a SQLite backup restores into a non-empty PostgreSQL database with the same rows, the old one kept', { skip: requireJudge('sqlite3', 'psql') }, async (t) => {
    const sourcePath = await seededSqliteFile(t)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, now: steppingClock() }).create()
    const target = await openTestDatabase(t, 'postgres', { seed: false })
    await target.sql.query(`INSERT INTO "Plan" (id, name, "displayName", "priceMonthly", "maxUsers", "maxDossiers", "maxStorageBytes") VALUES ('old', 'old', 'Ancien', 1, 1, 1, 1)`)

    const result = restore(backupDir, metadata.id, target.url, ['--force'])
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /converti de SQLite vers PostgreSQL depuis data\.json/)
    const kept = /Ancienne base conservée: (.+)$/m.exec(result.stdout)?.[1]
    assert.ok(kept !== undefined && existsSync(join(backupDir, kept.split('/').at(-1)!)), `safety copy named and present: ${result.stdout}`)

    for (const table of TABLES) assert.equal(psqlCount(target.url, table), sqliteCount(sourcePath, table), table)
    assert.equal(Number(run('psql', [target.url, '-tAc', `SELECT count(*) FROM "Plan" WHERE id = 'old'`]).trim()), 0)
    assert.deepEqual(await checksums(target.url), await checksums(`file:${sourcePath}`))
    assert.equal(run('psql', [target.url, '-tAc', `SELECT string_agg(migration_name, ',') FROM "_prisma_migrations" WHERE finished_at IS NOT NULL`]).trim(), metadata.schema.newestMigration)
  })

  test('a PostgreSQL backup restores into an existing SQLite file: integrity and foreign keys sound, same rows, the old file kept', { skip: requireJudge('sqlite3', 'psql') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const targetPath = await seededSqliteFile(t)
    run('sqlite3', [targetPath, `DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" ORDER BY id LIMIT 3)`])
    const before = sqliteCount(targetPath, 'Dossier')

    const result = restore(backupDir, metadata.id, targetPath)
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /converti de PostgreSQL vers SQLite/)
    assert.match(result.stdout, new RegExp(`Ancienne base conservée: ${targetPath.replaceAll('.', '\\.')}\\.before-restore$`, 'm'))
    assert.equal(sqliteCount(`${targetPath}.before-restore`, 'Dossier'), before)

    assert.equal(run('sqlite3', [targetPath, 'PRAGMA integrity_check']).trim(), 'ok')
    assert.equal(run('sqlite3', [targetPath, 'PRAGMA foreign_key_check']).trim(), '')
    for (const table of TABLES) assert.equal(sqliteCount(targetPath, table), psqlCount(source.url, table), table)
    assert.deepEqual(await checksums(`file:${targetPath}`), await checksums(source.url))
  })

  test('a PostgreSQL backup restores into an empty local D1 with the same rows', { skip: requireJudge('psql') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const target = `d1://local/${join(tempDir(t), 'd1')}`

    const result = restore(backupDir, metadata.id, target)
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /converti de PostgreSQL vers D1/)
    const restored = await checksums(target)
    for (const table of TABLES) assert.equal(restored[table]!.rows, psqlCount(source.url, table), table)
    assert.deepEqual(restored, await checksums(source.url))
  })

  test('a backup without data.json is refused in one French line naming the format needed, the target untouched', { skip: requireJudge('psql') }, async (t) => {
    const sourcePath = await seededSqliteFile(t)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, exportFormats: ['sql'], now: steppingClock() }).create()
    const target = await createPostgresDatabase(t)
    const result = restore(backupDir, metadata.id, target)
    assert.equal(result.status, 1, result.stdout)
    const [error, hint] = result.stderr.trim().split('\n')
    assert.match(error!, /^Erreur : le backup backup-\S+ vient de SQLite et ne peut pas être restauré dans une base PostgreSQL : il n’a pas d’export data\.json \(formats : sql\) ; une restauration vers un autre moteur lit l’export json$/)
    assert.match(hint!, /^Essayez : .*--formats json/)
    assert.equal(run('psql', [target, '-tAc', `SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace`]).trim(), '0')
  })
})

