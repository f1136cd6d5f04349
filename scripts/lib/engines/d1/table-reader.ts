/**
 * Table reader over D1's SQL interface. D1 answers one request at a time and keeps no read
 * transaction between requests, so a multi-page read is not one snapshot: quiesce writers (or
 * use Cloudflare's export) when that matters. Pages are keyed on rowid, and integers travel as
 * text so values beyond 2^53 stay exact.
 */
import { quoteIdentifier, type SqlConnection } from '../../db/connection.ts'
import type { RowValue, TableInfo, TableReader } from '../../db/table-reader.ts'
import { sqliteValueCodec } from '../sqlite/values.ts'

interface ColumnRow {
  name: string
  type: string
  notnull: number
  pk: number
  hidden: number
}

interface ForeignKeyRow {
  id: number
  table: string
  from: string
  to: string | null
}

/** The name prefix of a restore's staging tables (`_ipm_restore_<pid>_<table>`, restore.ts): not part of the database. */
export const D1_STAGING_PREFIX = '_ipm_restore_'

export function d1TableReader(sql: SqlConnection): TableReader {
  return {
    engine: 'd1',
    valueCodec: sqliteValueCodec,
    async tables() {
      const names = await sql.query<{ name: string }>(
        // D1 keeps its own bookkeeping in _cf_* tables, which it does not let us read; a killed restore's staging tables are not the database's.
        `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE '${D1_STAGING_PREFIX.replaceAll('_', '\\_')}%' ESCAPE '\\' ORDER BY name`,
      )
      const tables: TableInfo[] = []
      for (const { name } of names) {
        const columns = (await sql.query<ColumnRow>(`PRAGMA table_xinfo(${quoteIdentifier(name)})`)).filter((c) => c.hidden === 0)
        const keys = await sql.query<ForeignKeyRow>(`PRAGMA foreign_key_list(${quoteIdentifier(name)})`)
        const groups = new Map<number, ForeignKeyRow[]>()
        for (const key of keys) groups.set(key.id, [...(groups.get(key.id) ?? []), key])
        tables.push({
          name,
          columns: columns.map((c) => ({ name: c.name, declaredType: c.type, nullable: c.notnull === 0 && c.pk === 0, primaryKeyPosition: c.pk })),
          foreignKeys: [...groups.values()].map((group) => ({
            columns: group.map((k) => k.from),
            referencedTable: group[0]!.table,
            referencedColumns: group.map((k) => k.to ?? ''),
          })),
        })
      }
      return tables
    },
    async *rows(table, options = {}) {
      const pageSize = options.batchSize ?? 1_000
      const selected = table.columns
        .map((c, i) => {
          const column = quoteIdentifier(c.name)
          return `typeof(${column}) AS t${i}, CASE typeof(${column}) WHEN 'integer' THEN CAST(${column} AS TEXT) ELSE ${column} END AS v${i}`
        })
        .join(', ')
      let after: string | null = null
      for (;;) {
        const page: Record<string, unknown>[] = await sql.query<Record<string, unknown>>(
          `SELECT CAST(rowid AS TEXT) AS __rowid, ${selected} FROM ${quoteIdentifier(table.name)} WHERE ? IS NULL OR rowid > CAST(? AS INTEGER) ORDER BY rowid LIMIT ${pageSize}`,
          [after, after],
        )
        for (const row of page) yield table.columns.map((_, i) => fromD1(row[`t${i}`] as string, row[`v${i}`]))
        if (page.length < pageSize) return
        after = page[page.length - 1]!.__rowid as string
      }
    },
    async count(table) {
      const [row] = await sql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${quoteIdentifier(table.name)}`)
      return Number(row?.n ?? 0)
    },
    async close() {},
  }
}

/** A value as D1's binding returns it (with its SQLite type) as a RowValue: integers exact, blobs as Buffer. */
export function fromD1(type: string, value: unknown): RowValue {
  switch (type) {
    case 'null':
      return null
    case 'integer':
      return BigInt(value as string)
    case 'blob':
      return Buffer.from(value instanceof ArrayBuffer ? new Uint8Array(value) : (value as number[]))
    default:
      return value as string | number
  }
}
