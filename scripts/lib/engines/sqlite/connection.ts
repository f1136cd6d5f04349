/**
 * SQLite through better-sqlite3: one raw connection for scripts and Prisma's adapter for the app.
 * Both use a busy timeout so a backup or seed waits for a writer instead of failing. The adapter and
 * the generated client are imported by `openSqlite` only: a backup opens the raw side alone.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { ToolkitError, describeError } from '../../errors.ts'
import { sqliteTableReader } from './table-reader.ts'
import { prismaClients, quoteIdentifier, toSqliteTimestamp, type DatabaseHandle, type SqlConnection, type SqlHandle, type SqlValue } from '../../db/connection.ts'

export const SQLITE_BUSY_TIMEOUT_MS = 10_000

/** The user's tables and views of a SQLite-family database (D1 keeps its own `_cf_*` tables). */
export async function listSqliteUserTables(sql: Pick<SqlConnection, 'query'>): Promise<string[]> {
  const rows = await sql.query<{ name: string }>(
    `SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name`,
  )
  return rows.map((r) => r.name)
}

export interface OpenSqliteOptions {
  path: string
  redactedUrl: string
  /** Create the file when it does not exist (its directory must exist). */
  create: boolean
}

/** The raw side only: a better-sqlite3 connection and its table readers. */
export async function openSqliteSql({ path, redactedUrl, create }: OpenSqliteOptions): Promise<SqlHandle> {
  const fail = (message: string, hint?: string, cause?: unknown) =>
    new ToolkitError(`SQLite ${redactedUrl} : ${message}`, { hint, cause })
  if (!existsSync(dirname(path))) throw fail(`le dossier ${dirname(path)} n’existe pas`, 'Créez le dossier ou corrigez DATABASE_URL / --database.')
  if (existsSync(path) && statSync(path).isDirectory()) throw fail('le chemin est un dossier, pas un fichier de base')
  if (!create && !existsSync(path)) throw fail('fichier de base introuvable', 'Lancez `npm ci` (crée prisma/dev.db) ou vérifiez DATABASE_URL / --database.')

  let db: Database.Database
  try {
    db = new Database(path, { timeout: SQLITE_BUSY_TIMEOUT_MS })
    // Reading the header makes a non-SQLite file fail here rather than in the middle of a command.
    db.pragma('schema_version')
  } catch (error) {
    throw fail(`ouverture impossible : ${describeError(error)}`, 'Est-ce bien un fichier de base SQLite ?', error)
  }
  return {
    engine: 'sqlite',
    location: { engine: 'sqlite', path },
    redactedUrl,
    sql: sqliteConnection(db),
    async openTableReader(options = {}) {
      return sqliteTableReader(openReadTransaction(path), options)
    },
    async close() {
      db.close()
    },
  }
}

/**
 * A read-only connection to the file with its read transaction begun: in WAL mode it sees one
 * snapshot while others write (the snapshot is taken at the transaction's first read).
 */
export function openReadTransaction(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: SQLITE_BUSY_TIMEOUT_MS })
  try {
    db.exec('BEGIN')
    db.pragma('schema_version')
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** The raw side and Prisma's better-sqlite3 adapter beside it. */
export async function openSqlite(options: OpenSqliteOptions): Promise<DatabaseHandle> {
  const raw = await openSqliteSql(options)
  const [{ PrismaBetterSQLite3 }, { PrismaClient }] = await Promise.all([import('@prisma/adapter-better-sqlite3'), import('../../../../generated/sqlite/client.ts')])
  const clients = prismaClients(
    new PrismaBetterSQLite3({ url: `file:${options.path}`, timeout: SQLITE_BUSY_TIMEOUT_MS }),
    (clientOptions) => new PrismaClient(clientOptions),
  )
  return {
    ...raw,
    prisma: clients.prisma,
    createQueryEventClient: clients.createQueryEventClient,
    // Prisma's better-sqlite3 adapter holds one connection.
    poolSize: 1,
    async close() {
      await clients.disconnect()
      await raw.close()
    },
  }
}

/** The raw connection of an open better-sqlite3 database. */
export function sqliteConnection(db: Database.Database): SqlConnection {
  return {
    dialect: 'sqlite',
    listTables() {
      return listSqliteUserTables(this)
    },
    async executeScript(script) {
      db.transaction(() => db.exec(script))()
    },
    async query<Row extends object>(sql: string, params: readonly SqlValue[] = []) {
      const statement = db.prepare(sql)
      const values = params.map(toSqliteValue)
      if (statement.reader) return statement.all(...values) as Row[]
      statement.run(...values)
      return []
    },
    async insertRows(table, columns, rows) {
      const placeholders = columns.map(() => '?').join(', ')
      const statement = db.prepare(
        `INSERT INTO ${quoteIdentifier(table)} (${columns.map(quoteIdentifier).join(', ')}) VALUES (${placeholders})`,
      )
      db.transaction(() => {
        for (const row of rows) statement.run(...row.map(toSqliteValue))
      })()
    },
  }
}

/** Stores values the way Prisma's SQLite adapter does, so Prisma reads back what was written. */
export function toSqliteValue(value: SqlValue): string | number | bigint | Buffer | null {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return value
  if (typeof value === 'boolean') return value ? 1 : 0
  if (value instanceof Date) return toSqliteTimestamp(value)
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  return JSON.stringify(value)
}
