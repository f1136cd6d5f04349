/**
 * What SQLite and D1 share: the same catalog pragmas, EXPLAIN QUERY PLAN, and the index what-if,
 * which replays the schema (and its sqlite_stat1 statistics) into an in-memory SQLite, adds the
 * candidate there and asks the planner, so the real database is never written to.
 */
import Database from 'better-sqlite3'
import { quoteIdentifier, type SqlConnection, type SqlValue } from '../db/connection.ts'
import { toSqliteValue } from './sqlite/connection.ts'
import type { IndexDefinition, IndexTrial, ProposedIndex, QueryPlan, TenantStorage, TenantTable } from './metrics-engine.ts'
import { createIndexStatement } from './_index-sql.ts'

const INTERNAL_TABLE = /^(sqlite_|_cf_)/

export async function listSqliteTables(sql: SqlConnection): Promise<string[]> {
  const rows = await sql.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
  return rows.map((r) => r.name).filter((name) => !INTERNAL_TABLE.test(name))
}

export async function listSqliteColumns(sql: SqlConnection, table: string): Promise<string[]> {
  const rows = await sql.query<{ name: string }>(`PRAGMA table_info(${quoteIdentifier(table)})`)
  return rows.map((r) => r.name)
}

export async function listSqliteIndexes(sql: SqlConnection, table: string): Promise<IndexDefinition[]> {
  const list = await sql.query<{ name: string; unique: number }>(`PRAGMA index_list(${quoteIdentifier(table)})`)
  const indexes: IndexDefinition[] = []
  for (const index of list) {
    const info = await sql.query<{ seqno: number; name: string | null }>(`PRAGMA index_info(${quoteIdentifier(index.name)})`)
    indexes.push({
      name: index.name,
      columns: info.sort((a, b) => a.seqno - b.seqno).map((c) => c.name ?? '(expression)'),
      unique: Number(index.unique) === 1,
    })
  }
  return indexes
}

export async function explainSqlite(sql: SqlConnection, statement: string, params: unknown[]): Promise<QueryPlan> {
  const rows = await sql.query<PlanRow>(`EXPLAIN QUERY PLAN ${statement}`, params as SqlValue[])
  return planFromRows(rows, await listSqliteTables(sql))
}

interface PlanRow {
  id: number
  parent: number
  detail: string
}

function planFromRows(rows: PlanRow[], tables: readonly string[]): QueryPlan {
  const depth = new Map<number, number>([[0, -1]])
  const lines = rows.map((row) => {
    const level = (depth.get(row.parent) ?? -1) + 1
    depth.set(row.id, level)
    return `${'  '.repeat(level)}${row.detail}`
  })
  const known = new Set(tables)
  const fullScans = rows
    .map((row) => /^SCAN (?:\w+\.)?(\w+)(?: AS \w+)?$/.exec(row.detail)?.[1])
    .filter((table): table is string => table !== undefined && known.has(table))
  return { lines, fullScans: [...new Set(fullScans)] }
}

export async function trySqliteIndex(sql: SqlConnection, statement: string, params: unknown[], index: ProposedIndex): Promise<IndexTrial> {
  const schema = await sql.query<{ type: string; name: string; sql: string }>(
    `SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index', 'view') ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'view' THEN 1 ELSE 2 END`,
  )
  let stats: { tbl: string; idx: string | null; stat: string }[] = []
  if (schema.some((s) => s.name === 'sqlite_stat1')) stats = await sql.query<(typeof stats)[number]>(`SELECT tbl, idx, stat FROM sqlite_stat1`).catch(() => [])
  const scratch = new Database(':memory:')
  try {
    for (const object of schema) if (!INTERNAL_TABLE.test(object.name)) scratch.exec(object.sql)
    if (stats.length > 0) {
      scratch.exec('ANALYZE')
      const insert = scratch.prepare('INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)')
      for (const row of stats) insert.run(row.tbl, row.idx, row.stat)
      scratch.exec('ANALYZE sqlite_schema')
    }
    scratch.exec(createIndexStatement(index))
    const values = (params as SqlValue[]).map(toSqliteValue)
    const rows = scratch.prepare(`EXPLAIN QUERY PLAN ${statement}`).all(...values) as PlanRow[]
    const plan = planFromRows(rows, schema.filter((s) => s.type === 'table').map((s) => s.name))
    const used = plan.lines.some((line) => line.includes(`INDEX ${index.name}`))
    return used
      ? { verdict: 'used', detail: `avec l’index, le planificateur de SQLite le choisit (${stats.length > 0 ? 'avec' : 'sans'} statistiques sqlite_stat1)`, plan: plan.lines }
      : { verdict: 'not-used', detail: 'même avec l’index, le planificateur de SQLite ne le choisit pas', plan: plan.lines }
  } catch (error) {
    return { verdict: 'unverified', detail: `la copie hypothétique du schéma a échoué : ${(error as Error).message}` }
  } finally {
    scratch.close()
  }
}

export const SQLITE_STORAGE_METHOD =
  'somme, sur les lignes du cabinet (Tenant, User, Client, Dossier), de la taille stockée de chaque valeur : octets UTF-8 du texte, octets des blobs, 8 octets par nombre, 0 pour NULL ; hors surcoût des pages et des index'

export async function sqliteTenantStorage(sql: SqlConnection, tenantIds: readonly string[], tables: readonly TenantTable[]): Promise<TenantStorage> {
  const bytes = new Map<string, number>(tenantIds.map((id) => [id, 0]))
  if (tenantIds.length === 0) return { method: SQLITE_STORAGE_METHOD, bytes }
  for (const { table, tenantColumn, columns } of tables) {
    const size = columns
      .map((c) => {
        const q = quoteIdentifier(c)
        return `CASE typeof(${q}) WHEN 'text' THEN length(CAST(${q} AS BLOB)) WHEN 'blob' THEN length(${q}) WHEN 'integer' THEN 8 WHEN 'real' THEN 8 ELSE 0 END`
      })
      .join(' + ')
    const rows = await sql.query<{ tenant: string; bytes: number }>(
      `SELECT ${quoteIdentifier(tenantColumn)} AS tenant, SUM(${size}) AS bytes FROM ${quoteIdentifier(table)} WHERE ${quoteIdentifier(tenantColumn)} IN (${tenantIds.map(() => '?').join(', ')}) GROUP BY ${quoteIdentifier(tenantColumn)}`,
      [...tenantIds],
    )
    for (const row of rows) bytes.set(row.tenant, (bytes.get(row.tenant) ?? 0) + Number(row.bytes ?? 0))
  }
  return { method: SQLITE_STORAGE_METHOD, bytes }
}
