/**
 * Tenant restore on D1, through the handle's SQL connection. D1 has no interactive transaction:
 * the deletes and inserts are collected and sent as ONE batch at commit, which D1 runs as one
 * transaction (all of it or none of it). D1 cannot hold a lock across requests either, so a row
 * another client adds to this tenant between the safety export and the batch is replaced without
 * being in the export: quiesce the tenant's writers on D1 (the README says so).
 */
import { quoteIdentifier, type DatabaseHandle, type SqlValue } from '../../db/connection.ts'
import { toSqliteValue } from '../sqlite/connection.ts'
import { fromD1 } from './table-reader.ts'
import { ToolkitError } from '../../errors.ts'
import type { TenantSession, UniqueIndex } from '../../tenant-restore/session.ts'
import { NEWEST_MIGRATION_SQL, sqliteBindValue } from '../sqlite/tenant-restore.ts'

// D1 binds at most 100 parameters per statement.
const MAX_PARAMETERS = 100

/** A value as a SQLite literal (the batch is sent as a script). */
function literal(value: SqlValue): string {
  const stored = toSqliteValue(value)
  if (stored === null) return 'NULL'
  if (typeof stored === 'bigint') return stored.toString()
  if (typeof stored === 'number') {
    if (Number.isNaN(stored)) return 'NULL'
    if (!Number.isFinite(stored)) return stored > 0 ? '9e999' : '-9e999'
    const text = String(stored)
    return /^-?\d+$/.test(text) ? `${text}.0` : text
  }
  if (Buffer.isBuffer(stored)) return `X'${stored.toString('hex')}'`
  // A NUL would end the statement's text early: such text travels as bytes.
  if (stored.includes('\u0000')) return `CAST(X'${Buffer.from(stored, 'utf8').toString('hex')}' AS TEXT)`
  return `'${stored.replaceAll("'", "''")}'`
}

/** Replaces each `?` outside quotes with its value's literal. */
function inlineParameters(sql: string, params: readonly SqlValue[]): string {
  let index = 0
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (match) => (match === '?' ? literal(params[index++] ?? null) : match))
}

export async function openTenantSession(db: DatabaseHandle): Promise<TenantSession> {
  if (db.engine !== 'd1') throw new ToolkitError(`la restauration D1 d'un cabinet a reçu une base ${db.engine}`)
  const sql = db.sql
  let batch: string[] | undefined
  return {
    maxParameters: MAX_PARAMETERS,
    async selectRows(table, where, params) {
      // Integers travel as text (exact beyond 2^53), with each value's storage class beside it.
      const selected = table.columns
        .map((c, i) => {
          const column = `${quoteIdentifier(table.name)}.${quoteIdentifier(c.name)}`
          return `typeof(${column}) AS t${i}, CASE typeof(${column}) WHEN 'integer' THEN CAST(${column} AS TEXT) ELSE ${column} END AS v${i}`
        })
        .join(', ')
      const rows = await sql.query<Record<string, unknown>>(`SELECT ${selected} FROM ${quoteIdentifier(table.name)} WHERE ${where}`, params)
      return rows.map((row) => table.columns.map((_, i) => fromD1(row[`t${i}`] as string, row[`v${i}`])))
    },
    async uniqueIndexes(table) {
      const indexes = await sql.query<{ name: string; unique: number; partial: number }>(`PRAGMA index_list(${quoteIdentifier(table)})`)
      const found: UniqueIndex[] = []
      for (const index of indexes) {
        if (Number(index.unique) !== 1 || Number(index.partial) === 1) continue
        const columns = await sql.query<{ seqno: number; name: string | null }>(`PRAGMA index_info(${quoteIdentifier(index.name)})`)
        if (columns.some((c) => c.name === null)) continue
        found.push({ name: index.name, columns: columns.sort((a, b) => Number(a.seqno) - Number(b.seqno)).map((c) => c.name!) })
      }
      const key = (await sql.query<{ name: string; pk: number }>(`PRAGMA table_info(${quoteIdentifier(table)})`)).filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name)
      if (key.length > 0 && !found.some((index) => index.columns.join('\u0000') === key.join('\u0000'))) found.unshift({ name: `${table}_pkey`, columns: key })
      return found
    },
    async newestMigration() {
      const exists = await sql.query(`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`)
      if (exists.length === 0) return null
      const rows = await sql.query<{ migration_name: string }>(NEWEST_MIGRATION_SQL)
      return rows[0]?.migration_name ?? null
    },
    bindValue: (kind, canonical) => sqliteBindValue(kind, canonical),
    async begin() {
      batch = []
    },
    async execute(statement, params) {
      if (batch === undefined) throw new Error('execute() outside a transaction')
      batch.push(inlineParameters(statement, params))
    },
    async commit() {
      const statements = batch ?? []
      batch = undefined
      // One batch: D1 runs it as one transaction.
      if (statements.length > 0) await sql.executeScript(statements.join(';\n'))
    },
    async rollback() {
      batch = undefined
    },
    async close() {
      batch = undefined
    },
  }
}
