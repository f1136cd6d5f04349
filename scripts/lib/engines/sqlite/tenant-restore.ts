/**
 * Tenant restore on SQLite: a connection of its own on the database file. The write transaction is
 * `BEGIN IMMEDIATE` (the database's write lock: other writers wait on their busy timeout, readers
 * go on), with foreign keys enforced, so the database itself refuses what the plan missed.
 */
import Database from 'better-sqlite3'
import { quoteIdentifier, type DatabaseHandle, type SqlValue } from '../../db/connection.ts'
import { SQLITE_BUSY_TIMEOUT_MS, toSqliteValue } from './connection.ts'
import type { RowValue } from '../../db/table-reader.ts'
import { converterFor, type ValueKind } from '../../migration/conversion.ts'
import { ToolkitError } from '../../errors.ts'
import type { TenantSession, UniqueIndex } from '../../tenant-restore/session.ts'

// SQLite's default SQLITE_MAX_VARIABLE_NUMBER (32766 since 3.32), with room to spare.
const MAX_PARAMETERS = 30_000

/** The value to store for a canonical value (canonical.ts), as Prisma's SQLite adapter stores it. */
export function sqliteBindValue(kind: ValueKind, canonical: string): SqlValue {
  switch (kind) {
    case 'integer':
      return /^-?\d+$/.test(canonical) ? BigInt(canonical) : canonical
    case 'decimal':
      return converterFor('decimal').toSqlite(canonical)
    case 'real':
      return Number(canonical)
    case 'boolean':
      return canonical === 'true' ? 1 : canonical === 'false' ? 0 : canonical
    case 'datetime':
      return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(canonical) ? converterFor('datetime').toSqlite(canonical) : canonical
    case 'bytes':
      return Buffer.from(canonical, 'base64')
    default:
      return canonical
  }
}

export const NEWEST_MIGRATION_SQL = `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name DESC, started_at DESC LIMIT 1`

export async function openTenantSession(db: DatabaseHandle): Promise<TenantSession> {
  if (db.location.engine !== 'sqlite') throw new ToolkitError(`la restauration SQLite d'un cabinet a reçu une base ${db.engine}`)
  const connection = new Database(db.location.path, { fileMustExist: true, timeout: SQLITE_BUSY_TIMEOUT_MS })
  connection.pragma('foreign_keys = ON')
  const bind = (params: readonly SqlValue[]) => params.map(toSqliteValue)
  return {
    maxParameters: MAX_PARAMETERS,
    async selectRows(table, where, params) {
      const columns = table.columns.map((c) => quoteIdentifier(c.name)).join(', ')
      const statement = connection.prepare(`SELECT ${columns} FROM ${quoteIdentifier(table.name)} WHERE ${where}`)
      return statement.raw(true).safeIntegers(true).all(...bind(params)) as RowValue[][]
    },
    async uniqueIndexes(table) {
      const indexes = connection.prepare(`PRAGMA index_list(${quoteIdentifier(table)})`).all() as { name: string; unique: number; partial: number }[]
      const found: UniqueIndex[] = []
      for (const index of indexes) {
        if (index.unique !== 1 || index.partial === 1) continue
        const columns = connection.prepare(`PRAGMA index_info(${quoteIdentifier(index.name)})`).all() as { seqno: number; name: string | null }[]
        // An expression index has a NULL column name: its values cannot be compared column by column.
        if (columns.some((c) => c.name === null)) continue
        found.push({ name: index.name, columns: columns.sort((a, b) => a.seqno - b.seqno).map((c) => c.name!) })
      }
      // An INTEGER PRIMARY KEY is the rowid, not an index.
      const key = (connection.prepare(`PRAGMA table_info(${quoteIdentifier(table)})`).all() as { name: string; pk: number }[]).filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
      if (key.length > 0 && !found.some((index) => index.columns.join('\u0000') === key.join('\u0000'))) found.unshift({ name: `${table}_pkey`, columns: key })
      return found
    },
    async newestMigration() {
      const exists = connection.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`).get()
      if (exists === undefined) return null
      return (connection.prepare(NEWEST_MIGRATION_SQL).pluck().get() as string | undefined) ?? null
    },
    bindValue: (kind, canonical) => sqliteBindValue(kind, canonical),
    async begin() {
      connection.exec('BEGIN IMMEDIATE')
    },
    async execute(sql, params) {
      connection.prepare(sql).run(...bind(params))
    },
    async commit() {
      connection.exec('COMMIT')
    },
    async rollback() {
      if (connection.inTransaction) connection.exec('ROLLBACK')
    },
    async close() {
      if (connection.inTransaction) connection.exec('ROLLBACK')
      connection.close()
    },
  }
}
