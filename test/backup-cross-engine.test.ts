/**
 * Cross-engine restore (`advanced-backup restore <id> --to <url of another engine>`): the demo
 * database backed up on one engine and restored into another through the CLI, judged by sqlite3
 * and psql (row counts, integrity) and by the canonical content checksum on both sides.
 */
import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createEmptyDatabaseUrl, createPostgresDatabase, openTestDatabase, tempDir } from './helpers/databases.ts'
import { BEYOND_2_53, backupSystem, run, steppingClock } from './helpers/backup.ts'
import { runScript, runScriptAsync } from './helpers/cli.ts'
import { requireJudge } from './helpers/judges.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import type { DatabaseHandle } from '../scripts/lib/db/connection.ts'
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

type Checksums = Record<string, { rows: number; checksum: string }>

async function checksumsOf(db: DatabaseHandle): Promise<Checksums> {
  const sums: Checksums = {}
  for (const table of TABLES) sums[table] = await tableContentChecksum({ db, table })
  return sums
}

async function checksums(url: string): Promise<Checksums> {
  const db = await openDatabase(url, { environment: resolveEnvironment({}), create: false })
  try {
    return await checksumsOf(db)
  } finally {
    await db.close()
  }
}

/** The five restore steps, each printed once, in order, with its mark (✓ done, – skipped in a simulation). */
function assertFiveSteps(stdout: string, marks = '✓✓✓✓✓'): void {
  const labels = ["Vérification d'intégrité \\(SHA-256\\)", 'Backup de sécurité', 'Restauration', 'Test de connexion', 'Confirmation']
  const printed = stdout.split('\n').filter((line) => /^\d\. /.test(line))
  assert.equal(printed.length, 5, stdout)
  labels.forEach((label, i) => assert.match(printed[i]!, new RegExp(`^${i + 1}\\. ${label} ${marks[i]} `), stdout))
}

/**
 * A local D1 holding the demo data plus awkward values (an integer beyond 2^53, unicode, an empty
 * string, a NULL), closed (a restore's process opens it through its own Miniflare).
 */
async function seededD1(t: TestContext): Promise<{ url: string; checksums: Checksums }> {
  const url = await createEmptyDatabaseUrl(t, 'd1')
  const db = await openDatabase(url, { environment: resolveEnvironment({}), create: true })
  try {
    await applyMigrations(db.sql)
    await seedDemo(db.prisma)
    await db.sql.query('UPDATE "Plan" SET "maxStorageBytes" = ? WHERE id = ?', [BEYOND_2_53, 'plan-solo'])
    await db.sql.query('UPDATE "Client" SET "lastName" = ?, email = ?, phone = NULL WHERE id = (SELECT min(id) FROM "Client")', ['Élodie 日本語 😀 O\'Brien', ''])
    return { url, checksums: await checksumsOf(db) }
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

/** The same restore without blocking this process (a D1 source or target runs Miniflare in it). */
function restoreAsync(backupDir: string, id: string, to: string, extra: string[] = []) {
  return runScriptAsync(SCRIPT, ['restore', id, '--dir', backupDir, '--to', to, '--yes', ...extra])
}

/** The safety export a server target's restore names (`Ancienne base conservée: <archive>`), which must exist in the backup folder. */
function assertSafetyExport(stdout: string, backupDir: string): string {
  const kept = /^ {3}Ancienne base conservée: (.+)$/m.exec(stdout)?.[1]
  assert.ok(kept !== undefined && kept.startsWith(backupDir) && existsSync(kept), `safety export named and present: ${stdout}`)
  assert.match(stdout, /^2\. Backup de sécurité ✓ export de sécurité de la cible: backup-\S+/m)
  return kept
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

  test('a D1 backup restores into an existing SQLite file: five steps, the old file kept, integrity sound, same rows and values', { skip: requireJudge('sqlite3') }, async (t) => {
    const source = await seededD1(t)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    assert.equal(metadata.engine, 'd1')
    const targetPath = await seededSqliteFile(t)
    run('sqlite3', [targetPath, `DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" ORDER BY id LIMIT 2)`])
    const before = sqliteCount(targetPath, 'Dossier')

    const result = await restoreAsync(backupDir, metadata.id, targetPath)
    assert.equal(result.status, 0, result.stderr)
    assertFiveSteps(result.stdout)
    assert.match(result.stdout, /converti de D1 vers SQLite depuis data\.json/)
    assert.match(result.stdout, new RegExp(`Ancienne base conservée: ${targetPath.replaceAll('.', '\\.')}\\.before-restore$`, 'm'))
    assert.equal(sqliteCount(`${targetPath}.before-restore`, 'Dossier'), before)

    assert.equal(run('sqlite3', [targetPath, 'PRAGMA integrity_check']).trim(), 'ok')
    assert.equal(run('sqlite3', [targetPath, 'PRAGMA foreign_key_check']).trim(), '')
    for (const table of TABLES) assert.equal(sqliteCount(targetPath, table), source.checksums[table]!.rows, table)
    assert.equal(run('sqlite3', [targetPath, `SELECT "maxStorageBytes" FROM "Plan" WHERE id = 'plan-solo'`]).trim(), String(BEYOND_2_53))
    assert.deepEqual(await checksums(`file:${targetPath}`), source.checksums)
  })

  test('a D1 backup restores into a non-empty PostgreSQL database with --force: five steps, a safety export named, same rows and values', { skip: requireJudge('psql', 'tar') }, async (t) => {
    const source = await seededD1(t)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const target = await openTestDatabase(t, 'postgres')
    await target.sql.query(`DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" ORDER BY id LIMIT 2)`)
    const targetBefore = await checksumsOf(target)

    const result = await restoreAsync(backupDir, metadata.id, target.url, ['--force'])
    assert.equal(result.status, 0, result.stderr)
    assertFiveSteps(result.stdout)
    assert.match(result.stdout, /converti de D1 vers PostgreSQL depuis data\.json/)
    const kept = assertSafetyExport(result.stdout, backupDir)
    assert.equal(run('tar', ['-xOzf', kept, '--wildcards', '*/metadata.json']).includes('"engine": "postgres"'), true)
    assert.equal(run('tar', ['-xOzf', kept, '--wildcards', '*/data.json']).includes('"Dossier"'), true)

    for (const table of TABLES) assert.equal(psqlCount(target.url, table), source.checksums[table]!.rows, table)
    assert.equal(run('psql', [target.url, '-tAc', `SELECT "maxStorageBytes" FROM "Plan" WHERE id = 'plan-solo'`]).trim(), String(BEYOND_2_53))
    assert.deepEqual(await checksums(target.url), source.checksums)
    assert.notDeepEqual(source.checksums, targetBefore)
  })

  test('a SQLite backup restores into a non-empty local D1 with --force: five steps, a safety export named, same rows', { skip: requireJudge('sqlite3', 'tar') }, async (t) => {
    const sourcePath = await seededSqliteFile(t)
    run('sqlite3', [sourcePath, `UPDATE "Plan" SET "maxStorageBytes" = ${BEYOND_2_53} WHERE id = 'plan-solo'`])
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, now: steppingClock() }).create()
    const target = await seededD1(t)

    const result = await restoreAsync(backupDir, metadata.id, target.url, ['--force'])
    assert.equal(result.status, 0, result.stderr)
    assertFiveSteps(result.stdout)
    assert.match(result.stdout, /converti de SQLite vers D1 depuis data\.json/)
    const kept = assertSafetyExport(result.stdout, backupDir)
    assert.equal(run('tar', ['-xOzf', kept, '--wildcards', '*/metadata.json']).includes('"engine": "d1"'), true)

    const restored = await checksums(target.url)
    for (const table of TABLES) assert.equal(restored[table]!.rows, sqliteCount(sourcePath, table), table)
    assert.deepEqual(restored, await checksums(`file:${sourcePath}`))
    assert.notDeepEqual(restored, target.checksums)
  })

  test('--dry-run into a non-empty PostgreSQL database says what would happen, checks the converted rows and changes nothing', { skip: requireJudge('psql') }, async (t) => {
    const sourcePath = await seededSqliteFile(t)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, now: steppingClock() }).create()
    const target = await openTestDatabase(t, 'postgres')
    await target.sql.query(`DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" ORDER BY id LIMIT 2)`)
    const before = await checksumsOf(target)
    const backupsBefore = readdirSync(backupDir).sort()

    const refused = await restoreAsync(backupDir, metadata.id, target.url, ['--dry-run'])
    assert.equal(refused.status, 1, refused.stdout)
    assert.match(refused.stderr, /^Erreur : la cible \S+ n’est pas vide/)

    const result = await restoreAsync(backupDir, metadata.id, target.url, ['--dry-run', '--force'])
    assert.equal(result.status, 0, result.stderr)
    assertFiveSteps(result.stdout, '✓––✓✓')
    assert.match(result.stdout, /^1\. .* converti de SQLite vers PostgreSQL depuis data\.json \(32 lignes, 1 migration\(s\) PostgreSQL\)/m)
    assert.match(result.stdout, /^2\. Backup de sécurité – simulation: un export de sécurité complet de la cible \(\d+ objets\) serait fait dans le dossier des backups$/m)
    assert.match(result.stdout, /^3\. Restauration – simulation: database\.sql extrait et vérifié, serait chargé dans la cible à la place de ses \d+ objets ; cible intacte$/m)
    assert.match(result.stdout, /^4\. Test de connexion ✓ base convertie contrôlée avant d’être supprimée : 6 tables \/ 33 lignes = métadonnées, empreintes de contenu = backup \(5 tables\)/m)
    assert.match(result.stdout, /Simulation réussie: rien n'a été modifié/)
    assert.doesNotMatch(result.stdout, /Ancienne base conservée/)
    assert.deepEqual(await checksumsOf(target), before)
    assert.deepEqual(readdirSync(backupDir).sort(), backupsBefore, 'no safety export')
  })

  test('--dry-run into an existing SQLite file checks the rebuilt file, content checksums included, and leaves the target as it was', { skip: requireJudge('psql', 'sha256sum') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const targetPath = await seededSqliteFile(t)
    const before = run('sha256sum', [targetPath]).split(' ')[0]

    const result = await restoreAsync(backupDir, metadata.id, targetPath, ['--dry-run', '--json'])
    assert.equal(result.status, 0, result.stderr)
    const json = JSON.parse(result.stdout) as { dryRun: boolean; restored: boolean; safetyCopy: string; steps: { step: number; status: string; detail: string }[]; counts: { name: string; expected: number; actual: number }[] }
    assert.deepEqual([json.dryRun, json.restored, json.safetyCopy], [true, false, `${targetPath}.before-restore`])
    assert.deepEqual(json.steps.map((s) => s.status), ['ok', 'skipped', 'skipped', 'ok', 'ok'])
    assert.equal(json.steps[1]!.detail, 'simulation: app.db serait copié dans app.db.before-restore, rien n’est copié')
    assert.match(json.steps[3]!.detail, /integrity_check ok, 0 clé étrangère orpheline, .*, empreintes de contenu = backup \(5 tables\)$/)
    for (const count of json.counts) assert.equal(count.actual, count.expected, count.name)
    assert.equal(run('sha256sum', [targetPath]).split(' ')[0], before)
    assert.deepEqual(readdirSync(dirname(targetPath)).sort(), ['app.db'])
  })

  test('--dry-run into a non-empty local D1 changes nothing in it', { skip: requireJudge('psql') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const target = await seededD1(t)
    const result = await restoreAsync(backupDir, metadata.id, target.url, ['--dry-run', '--force'])
    assert.equal(result.status, 0, result.stderr)
    assertFiveSteps(result.stdout, '✓––✓✓')
    assert.match(result.stdout, /^4\. Test de connexion ✓ base convertie contrôlée avant d’être supprimée : .* empreintes de contenu = backup \(5 tables\)/m)
    assert.deepEqual(await checksums(target.url), target.checksums)
  })

  test('a backup with a column the target engine’s migrations do not create is refused in one French line before anything is touched', { skip: requireJudge('sqlite3', 'psql') }, async (t) => {
    const sourcePath = await seededSqliteFile(t)
    run('sqlite3', [sourcePath, `ALTER TABLE "Dossier" ADD COLUMN "juridiction" TEXT; UPDATE "Dossier" SET "juridiction" = 'TJ Paris'`])
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, now: steppingClock() }).create()
    const target = await openTestDatabase(t, 'postgres')
    const before = await checksumsOf(target)
    const backupsBefore = readdirSync(backupDir).sort()

    // --force: past the non-empty target's refusal, to the schema comparison.
    const result = await restoreAsync(backupDir, metadata.id, target.url, ['--force'])
    assert.equal(result.status, 1, result.stdout)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.length, 2, result.stderr)
    assert.match(lines[0]!, new RegExp(`^Erreur : le schéma du backup ${metadata.id} diffère de celui que les migrations PostgreSQL créent \\(migration 20260121153000_init dans le backup, 20260121153000_init dans les migrations PostgreSQL de cet outil\\) : Dossier\\.juridiction n’existe pas dans les migrations de la cible$`))
    assert.match(lines[1]!, /^Essayez : .*db migrate/)
    assert.deepEqual(await checksumsOf(target), before)
    assert.deepEqual(readdirSync(backupDir).sort(), backupsBefore, 'no safety export: nothing was touched')
  })

  test('a backup with a table the target engine’s migrations do not create is refused, the SQLite target file unchanged and not copied', { skip: requireJudge('sqlite3', 'psql', 'sha256sum') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    await source.sql.query(`CREATE TABLE "Audience" (id TEXT PRIMARY KEY, "dossierId" TEXT NOT NULL REFERENCES "Dossier"(id), "date" TIMESTAMP(3) NOT NULL)`)
    await source.sql.query(`INSERT INTO "Audience" SELECT 'a-' || id, id, now() FROM "Dossier"`)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const targetPath = await seededSqliteFile(t)
    const hash = () => run('sha256sum', [targetPath]).split(' ')[0]
    const before = hash()

    const result = await restoreAsync(backupDir, metadata.id, targetPath)
    assert.equal(result.status, 1, result.stdout)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.length, 2, result.stderr)
    assert.match(lines[0]!, /^Erreur : le schéma du backup \S+ diffère de celui que les migrations SQLite créent \(.*\) : la table Audience n’existe pas dans les migrations de la cible$/)
    assert.equal(hash(), before)
    assert.deepEqual(readdirSync(dirname(targetPath)).sort(), ['app.db'])
  })

  test('a target migrated beyond the backup’s migration is refused without --force, unchanged', { skip: requireJudge('sqlite3', 'psql', 'sha256sum') }, async (t) => {
    const source = await openTestDatabase(t, 'postgres')
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: source.url, backupDir, now: steppingClock() }).create()
    const targetPath = await seededSqliteFile(t)
    run('sqlite3', [targetPath, `ALTER TABLE "Dossier" ADD COLUMN "juridiction" TEXT; INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count) VALUES ('later', 'x', '20270101000000_juridiction', '2027-01-01', 1)`])
    const before = run('sha256sum', [targetPath]).split(' ')[0]

    const result = await restoreAsync(backupDir, metadata.id, targetPath)
    assert.equal(result.status, 1, result.stdout)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.length, 2, result.stderr)
    assert.match(lines[0]!, /^Erreur : le backup \S+ a été fait avec un autre schéma que celui de la cible : dernière migration 20260121153000_init dans le backup, 20270101000000_juridiction dans app\.db$/)
    assert.match(lines[1]!, /^Essayez : .*--force/)
    assert.equal(run('sha256sum', [targetPath]).split(' ')[0], before)
    assert.deepEqual(readdirSync(dirname(targetPath)).sort(), ['app.db'])
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

  test('a CSV-only backup is refused in one French line whose hint names --formats json, the D1 target untouched', async (t) => {
    const sourcePath = await seededSqliteFile(t)
    const backupDir = join(tempDir(t), 'backups')
    const { metadata } = await backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, exportFormats: ['csv'], now: steppingClock() }).create()
    const target = await seededD1(t)
    const backupsBefore = readdirSync(backupDir).sort()
    const result = await restoreAsync(backupDir, metadata.id, target.url, ['--force'])
    assert.equal(result.status, 1, result.stdout)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.length, 2, result.stderr)
    assert.match(lines[0]!, new RegExp(`^Erreur : le backup ${metadata.id} vient de SQLite et ne peut pas être restauré dans une base D1 : il n’a pas d’export data\\.json \\(formats : csv\\) ; une restauration vers un autre moteur lit l’export json$`))
    assert.match(lines[1]!, /^Essayez : .*`advanced-backup create --formats json`/)
    assert.deepEqual(await checksums(target.url), target.checksums)
    assert.deepEqual(readdirSync(backupDir).sort(), backupsBefore, 'no safety export')
  })

  test('an incremental backup is refused across engines in one French line, the PostgreSQL target untouched', { skip: requireJudge('psql') }, async (t) => {
    const sourcePath = await seededSqliteFile(t)
    const backupDir = join(tempDir(t), 'backups')
    const system = backupSystem(t, { databaseUrl: `file:${sourcePath}`, backupDir, now: steppingClock() })
    await system.create()
    run('sqlite3', [sourcePath, `DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" ORDER BY id LIMIT 1)`])
    const { metadata } = await system.create({ incremental: true })
    const target = await createPostgresDatabase(t)
    const result = await restoreAsync(backupDir, metadata.id, target)
    assert.equal(result.status, 1, result.stdout)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.length, 2, result.stderr)
    assert.match(lines[0]!, new RegExp(`^Erreur : le backup ${metadata.id} vient de SQLite et ne peut pas être restauré dans une base PostgreSQL : c’est un backup incrémental, sans export logique ; une restauration vers un autre moteur lit l’export json$`))
    assert.equal(run('psql', [target, '-tAc', `SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace`]).trim(), '0')
  })
})

