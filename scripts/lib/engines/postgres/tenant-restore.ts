/**
 * Tenant restore on PostgreSQL: one client of its own. Reads return every value as PostgreSQL's
 * text form (as the table reader does); the write transaction locks the tenant's root row
 * (`FOR UPDATE`): every insert or update referencing it takes a key-share lock on it, so nobody
 * adds rows to this tenant until commit, while other tenants keep writing.
 */
import pg from 'pg'
import { quoteIdentifier, type DatabaseHandle, type SqlValue } from '../../db/connection.ts'
import { numberPlaceholders } from './connection.ts'
import type { RowValue } from '../../db/table-reader.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import type { ValueKind } from '../../migration/conversion.ts'
import { plainDecimal } from '../../tenant-restore/canonical.ts'
import type { TenantSession } from '../../tenant-restore/session.ts'

const TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig
const MAX_PARAMETERS = 65_535

const UNIQUE_INDEXES_SQL = `
SELECT i.relname AS name,
       ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num ORDER BY ord)::text[] AS columns
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE x.indisunique AND x.indpred IS NULL AND x.indexprs IS NULL AND n.nspname = current_schema() AND t.relname = $1
ORDER BY x.indisprimary DESC, i.relname`

/** The value to send for a canonical value (canonical.ts); PostgreSQL casts the text to the column's type. */
export function postgresBindValue(kind: ValueKind, canonical: string): SqlValue {
  switch (kind) {
    case 'decimal':
      return plainDecimal(canonical)
    case 'datetime':
      // Canonical date-times are UTC; `Z` is ignored by `timestamp` and read as UTC by `timestamptz`.
      return /^\d{4,}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/.test(canonical) ? `${canonical}Z` : canonical
    case 'bytes':
      return Buffer.from(canonical, 'base64')
    default:
      return canonical
  }
}

function toPostgres(value: SqlValue): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (value !== null && typeof value === 'object') return JSON.stringify(value)
  return value
}

export async function openTenantSession(db: DatabaseHandle): Promise<TenantSession> {
  if (db.location.engine !== 'postgres') throw new ToolkitError(`la restauration PostgreSQL d'un cabinet a reçu une base ${db.engine}`)
  const client = new pg.Client({ connectionString: db.location.connectionString })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new ToolkitError(`PostgreSQL ${db.redactedUrl} : connexion impossible : ${describeError(error)}`, { cause: error })
  }
  let open = false
  const values = (params: readonly SqlValue[]) => params.map(toPostgres)
  return {
    maxParameters: MAX_PARAMETERS,
    async selectRows(table, where, params) {
      const columns = table.columns.map((c) => quoteIdentifier(c.name)).join(', ')
      const text = numberPlaceholders(`SELECT ${columns} FROM ${quoteIdentifier(table.name)} WHERE ${where}`)
      const result = await client.query({ text, values: values(params), rowMode: 'array', types: TEXT_TYPES })
      return result.rows as RowValue[][]
    },
    async uniqueIndexes(table) {
      const result = await client.query<{ name: string; columns: string[] }>(UNIQUE_INDEXES_SQL, [table])
      return result.rows.map((row) => ({ name: row.name, columns: row.columns }))
    },
    async newestMigration() {
      const exists = await client.query(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS found`)
      if (exists.rows[0]?.found !== true) return null
      const result = await client.query<{ migration_name: string }>(
        `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name DESC, started_at DESC LIMIT 1`,
      )
      return result.rows[0]?.migration_name ?? null
    },
    bindValue: (kind, canonical) => postgresBindValue(kind, canonical),
    async begin(lock) {
      await client.query('BEGIN')
      open = true
      await client.query(numberPlaceholders(`SELECT 1 FROM ${quoteIdentifier(lock.table)} WHERE ${lock.where} FOR UPDATE`), values(lock.params))
    },
    async execute(sql, params) {
      await client.query(numberPlaceholders(sql), values(params))
    },
    async commit() {
      await client.query('COMMIT')
      open = false
    },
    async rollback() {
      if (open) await client.query('ROLLBACK')
      open = false
    },
    async close() {
      if (open) await client.query('ROLLBACK').catch(() => {})
      await client.end().catch(() => {})
    },
  }
}
