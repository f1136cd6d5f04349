/**
 * Applies the committed Prisma migrations through our own connection and records them in
 * `_prisma_migrations` exactly as `prisma migrate deploy` does (same table, same checksums), so the
 * real CLI agrees with what we did. We do this ourselves because migrating PostgreSQL through the
 * WebAssembly schema engine fails (prisma/prisma#27403), and because it is fast enough for tests
 * that create many databases.
 */
import { createHash, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ToolkitError } from '../errors.ts'
import { PROJECT_ROOT } from '../environment.ts'
import type { SqlConnection, SqlDialect } from './connection.ts'

const prismaDir = join(PROJECT_ROOT, 'prisma')

/** The committed migrations of each dialect (D1 uses SQLite's). */
export const MIGRATIONS_DIRS: Record<SqlDialect, string> = {
  sqlite: join(prismaDir, 'sqlite', 'migrations'),
  postgres: join(prismaDir, 'postgres', 'migrations'),
}

// Prisma's own DDL for its bookkeeping table, per dialect.
const MIGRATIONS_TABLE_DDL: Record<SqlDialect, string> = {
  sqlite: `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);`,
  postgres: `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);`,
}

export interface MigrationFile {
  name: string
  sql: string
  /** SHA-256 of migration.sql, as Prisma computes it. */
  checksum: string
}

export interface MigrationStatus {
  applied: string[]
  pending: string[]
  /** Applied, but the file on disk no longer has the checksum that was applied. */
  modified: string[]
  /** Recorded as applied but absent from the migrations folder. */
  unknown: string[]
  /** Started and never finished (a crashed migration). */
  failed: string[]
  upToDate: boolean
}

/** The migrations of a folder, oldest first. */
export function readMigrations(dir: string): MigrationFile[] {
  if (!existsSync(dir)) throw new ToolkitError(`dossier des migrations introuvable : ${dir}`)
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8')
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    })
}

interface AppliedRow {
  migration_name: string
  checksum: string
  finished_at: unknown
  rolled_back_at: unknown
}

async function appliedRows(sql: SqlConnection): Promise<AppliedRow[]> {
  if (!(await sql.listTables()).includes('_prisma_migrations')) return []
  return sql.query<AppliedRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
  )
}

/** Compares the database's migration history with the migrations folder. */
export async function migrationStatus(sql: SqlConnection, dir = MIGRATIONS_DIRS[sql.dialect]): Promise<MigrationStatus> {
  const files = readMigrations(dir)
  const rows = (await appliedRows(sql)).filter((row) => row.rolled_back_at === null)
  const done = rows.filter((row) => row.finished_at !== null)
  const byName = new Map(done.map((row) => [row.migration_name, row]))
  const fileNames = new Set(files.map((file) => file.name))
  const status: MigrationStatus = {
    applied: done.map((row) => row.migration_name),
    pending: files.filter((file) => !byName.has(file.name)).map((file) => file.name),
    modified: files.filter((file) => byName.has(file.name) && byName.get(file.name)!.checksum !== file.checksum).map((f) => f.name),
    unknown: done.filter((row) => !fileNames.has(row.migration_name)).map((row) => row.migration_name),
    failed: rows.filter((row) => row.finished_at === null).map((row) => row.migration_name),
    upToDate: false,
  }
  status.upToDate = [status.pending, status.modified, status.unknown, status.failed].every((list) => list.length === 0)
  return status
}

/**
 * Applies every pending migration, each in its own transaction together with its bookkeeping row.
 * Refuses to run over a failed or modified migration, as `prisma migrate deploy` does.
 * @example await applyMigrations(db.sql, { now: () => new Date() })
 */
export async function applyMigrations(
  sql: SqlConnection,
  options: { dir?: string; now?: () => Date } = {},
): Promise<{ applied: string[] }> {
  const dir = options.dir ?? MIGRATIONS_DIRS[sql.dialect]
  const now = options.now ?? (() => new Date())
  await sql.executeScript(MIGRATIONS_TABLE_DDL[sql.dialect])
  const status = await migrationStatus(sql, dir)
  if (status.failed.length > 0 || status.modified.length > 0) {
    throw new ToolkitError(`l’historique des migrations demande votre attention : en échec [${status.failed.join(', ')}], modifiées [${status.modified.join(', ')}]`, {
      hint: 'Réglez-le avec `npx prisma migrate resolve` avant d’appliquer de nouvelles migrations.',
    })
  }
  const applied: string[] = []
  for (const migration of readMigrations(dir).filter((file) => status.pending.includes(file.name))) {
    const startedAt = now().toISOString()
    const record = `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
VALUES ('${randomUUID()}', '${migration.checksum}', '${now().toISOString()}', '${migration.name.replaceAll("'", "''")}', NULL, NULL, '${startedAt}', 1);`
    await sql.executeScript(`${migration.sql}\n;\n${record}`)
    applied.push(migration.name)
  }
  return { applied }
}
