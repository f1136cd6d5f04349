/**
 * PostgreSQL: the catalog, `EXPLAIN (FORMAT JSON)` (its conditions with literals redacted: PostgreSQL 15
 * has no GENERIC_PLAN, so a plan shows the values it was made for), the buffer cache counters of pg_stat_database
 * and pg_statio_user_tables (blocks found in shared buffers vs read from the OS), connections
 * from pg_stat_activity, and row sizes from pg_column_size.
 */
import { quoteIdentifier, type SqlConnection, type SqlValue } from '../../db/connection.ts'
import type { MetricsEngine, QueryPlan } from '../metrics-engine.ts'
import { redactLiterals } from '../../db/fingerprint.ts'

/** One node of `EXPLAIN (FORMAT JSON)`: the fields the metrics and the index lab read. */
export interface PostgresPlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  Filter?: string
  'Index Cond'?: string
  'Recheck Cond'?: string
  'Hash Cond'?: string
  'Join Filter'?: string
  'Sort Key'?: string[]
  'Plan Rows'?: number
  'Actual Rows'?: number
  'Actual Loops'?: number
  'Rows Removed by Filter'?: number
  'Rows Removed by Index Recheck'?: number
  Plans?: PostgresPlanNode[]
}

const STORAGE_METHOD =
  'somme de pg_column_size(row) sur les lignes du cabinet (Tenant, User, Client, Dossier) : les données de chaque ligne telles que stockées, valeurs compressées à leur taille compressée ; hors surcoût des pages et des index'

const ratio = (hit: number, read: number) => (hit + read === 0 ? null : hit / (hit + read))

export const postgresMetrics: MetricsEngine = {
  async listTables(sql) {
    const rows = await sql.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`,
    )
    return rows.map((r) => r.name)
  },
  async listColumns(sql, table) {
    const rows = await sql.query<{ name: string }>(
      `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`,
      [table],
    )
    return rows.map((r) => r.name)
  },
  async listIndexes(sql, table) {
    const rows = await sql.query<{ name: string; unique: boolean; columns: string[] }>(
      `SELECT i.relname AS name, ix.indisunique AS "unique",
              array_agg(COALESCE(a.attname::text, '(expression)') ORDER BY k.ord)::text[] AS columns
         FROM pg_index ix
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0
        WHERE t.relname = ? AND n.nspname = current_schema()
        GROUP BY i.relname, ix.indisunique
        ORDER BY i.relname`,
      [table],
    )
    return rows.map((r) => ({ name: r.name, unique: r.unique, columns: r.columns }))
  },
  async explain(sql, statement, params) {
    return explainPostgres(sql, statement, params)
  },
  async tryIndex() {
    return {
      verdict: 'unverified',
      detail: 'PostgreSQL ne planifie pas avec un index non construit (il faut l’extension hypopg) ; la preuve est le parcours séquentiel',
    }
  },
  async cacheStatistics(sql) {
    const [database] = await sql.query<{ hit: string; read: string }>(
      `SELECT blks_hit AS hit, blks_read AS read FROM pg_stat_database WHERE datname = current_database()`,
    )
    const [tables] = await sql.query<{ hit: string; read: string }>(
      `SELECT COALESCE(SUM(COALESCE(heap_blks_hit, 0) + COALESCE(idx_blks_hit, 0)), 0) AS hit,
              COALESCE(SUM(COALESCE(heap_blks_read, 0) + COALESCE(idx_blks_read, 0)), 0) AS read
         FROM pg_statio_user_tables`,
    )
    const hit = Number(database?.hit ?? 0)
    const read = Number(database?.read ?? 0)
    const tableHit = Number(tables?.hit ?? 0)
    const tableRead = Number(tables?.read ?? 0)
    const hitRate = ratio(hit, read)
    return {
      hitRate,
      source:
        hitRate === null
          ? 'n/a : pg_stat_database n’a encore compté aucune lecture de bloc pour cette base'
          : 'pg_stat_database : blks_hit / (blks_hit + blks_read) depuis la dernière remise à zéro des statistiques',
      blocksHit: hit,
      blocksRead: read,
      tables: { hitRate: ratio(tableHit, tableRead), blocksHit: tableHit, blocksRead: tableRead },
    }
  },
  async connectionStatistics(sql, facts) {
    const [row] = await sql.query<{ open: string; active: string; uptime: string }>(
      `SELECT COUNT(*) AS open, COUNT(*) FILTER (WHERE state = 'active') AS active,
              (SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time()) * 1000) AS uptime
         FROM pg_stat_activity WHERE datname = current_database()`,
    )
    return {
      active: Number(row?.active ?? 0),
      open: Number(row?.open ?? 0),
      poolSize: facts.poolSize ?? null,
      serverUptimeMs: Math.round(Number(row?.uptime ?? 0)),
    }
  },
  async tenantStorage(sql, tenantIds, tables) {
    const bytes = new Map<string, number>(tenantIds.map((id) => [id, 0]))
    if (tenantIds.length === 0) return { method: STORAGE_METHOD, bytes }
    for (const { table, tenantColumn } of tables) {
      const rows = await sql.query<{ tenant: string; bytes: string }>(
        `SELECT r.${quoteIdentifier(tenantColumn)} AS tenant, SUM(pg_column_size(r.*)) AS bytes FROM ${quoteIdentifier(table)} r
          WHERE r.${quoteIdentifier(tenantColumn)} IN (${tenantIds.map(() => '?').join(', ')}) GROUP BY r.${quoteIdentifier(tenantColumn)}`,
        [...tenantIds],
      )
      for (const row of rows) bytes.set(row.tenant, (bytes.get(row.tenant) ?? 0) + Number(row.bytes ?? 0))
    }
    return { method: STORAGE_METHOD, bytes }
  },
}

async function explainPostgres(sql: SqlConnection, statement: string, params: unknown[]): Promise<QueryPlan> {
  const rows = await sql.query<{ 'QUERY PLAN': { Plan: PostgresPlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${statement}`, params as SqlValue[])
  const root = rows[0]?.['QUERY PLAN']?.[0]?.Plan
  const lines: string[] = []
  const fullScans = new Set<string>()
  const walk = (node: PostgresPlanNode, depth: number) => {
    let line = node['Node Type']
    if (node['Index Name'] !== undefined) line += ` using ${node['Index Name']}`
    if (node['Relation Name'] !== undefined) line += ` on ${node['Relation Name']}`
    for (const key of ['Index Cond', 'Hash Cond', 'Join Filter', 'Filter'] as const) {
      // EXPLAIN prints the values it planned for (ours are bound, the statement's own are inline): never let them out.
      if (node[key] !== undefined) line += ` (${key}: ${redactLiterals(node[key])})`
    }
    lines.push(`${'  '.repeat(depth)}${line}`)
    if (node['Node Type'] === 'Seq Scan' && node['Relation Name'] !== undefined) fullScans.add(node['Relation Name'])
    for (const child of node.Plans ?? []) walk(child, depth + 1)
  }
  if (root !== undefined) walk(root, 0)
  return { lines, fullScans: [...fullScans] }
}
