/**
 * What the dashboard asks of a database engine beyond Prisma: its catalog, query plans, cache and
 * connection counters, storage. Each engine folder has its `metrics.ts` (engines/<engine>/metrics.ts);
 * callers take it from the engine (`engineNamed(db.engine).metrics`) and never test which engine they hold.
 */
import type { SqlConnection } from '../db/connection.ts'

export interface IndexDefinition {
  name: string
  /** Indexed columns in order; `(expression)` for an expression. */
  columns: string[]
  unique: boolean
}

export interface QueryPlan {
  /** The plan as the engine prints it, one node per line, indented by depth. */
  lines: string[]
  /** Tables the plan reads in full (SQLite `SCAN t`, PostgreSQL `Seq Scan on t`). */
  fullScans: string[]
}

export interface ProposedIndex {
  name: string
  table: string
  columns: string[]
}

export interface IndexTrial {
  /** `used`: the planner picks the index for the statement; `not-used`: it does not; `unverified`: the engine cannot tell without building it. */
  verdict: 'used' | 'not-used' | 'unverified'
  detail: string
  plan?: string[]
}

export interface CacheStatistics {
  /** Share of page/block reads served from the engine's cache, 0..1; null when the engine does not expose it. */
  hitRate: number | null
  /** Where the number comes from, or why there is none. */
  source: string
  blocksHit?: number
  blocksRead?: number
  /** The same ratio over the app's tables only (PostgreSQL's pg_statio_user_tables). */
  tables?: { hitRate: number | null; blocksHit: number; blocksRead: number }
  /** Related facts that are measured (cache size, database size…). */
  measured?: Record<string, number>
}

export interface ConnectionStatistics {
  /** Connections running a statement now, as the server sees them; null when there is no server to ask. */
  active: number | null
  /** Connections open to this database. */
  open: number | null
  /** Connections Prisma's adapter may hold in this process. */
  poolSize: number | null
  serverUptimeMs: number | null
  /** Why some of these are null. */
  note?: string
}

export interface TenantTable {
  table: string
  /** The column holding the tenant's id (`id` for the Tenant table itself). */
  tenantColumn: string
  columns: string[]
}

export interface TenantStorage {
  /** How the bytes were counted, for the report. */
  method: string
  bytes: Map<string, number>
}

export interface MetricsEngine {
  listTables(sql: SqlConnection): Promise<string[]>
  listColumns(sql: SqlConnection, table: string): Promise<string[]>
  listIndexes(sql: SqlConnection, table: string): Promise<IndexDefinition[]>
  /** The engine's plan for a statement as Prisma sent it (its own placeholders and values); never executes it. */
  explain(sql: SqlConnection, statement: string, params: unknown[]): Promise<QueryPlan>
  /** Whether the planner would use an index that does not exist yet, without building it on the database. */
  tryIndex(sql: SqlConnection, statement: string, params: unknown[], index: ProposedIndex): Promise<IndexTrial>
  cacheStatistics(sql: SqlConnection): Promise<CacheStatistics>
  connectionStatistics(sql: SqlConnection, facts: { poolSize?: number }): Promise<ConnectionStatistics>
  tenantStorage(sql: SqlConnection, tenantIds: readonly string[], tables: readonly TenantTable[]): Promise<TenantStorage>
}

/** One entry of the server's cumulative counters. */
export interface StatementCounters {
  userid: string
  dbid: string
  queryid: string
  /** The statement as the server normalised it (`$1` for each constant). */
  query: string
  calls: number
  totalExecTimeMs: number
  rows: number
  sharedBlksHit: number
  sharedBlksRead: number
}

export interface StatementSnapshot {
  /** Epoch milliseconds when the view was read. */
  takenAt: number
  entries: StatementCounters[]
}
