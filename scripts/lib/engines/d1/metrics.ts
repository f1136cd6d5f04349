/**
 * Cloudflare D1 (SQLite behind a binding or Cloudflare's HTTP API). D1 runs EXPLAIN QUERY PLAN and
 * the catalog pragmas like SQLite, but refuses the pragmas that would describe its cache
 * (cache_size, page_count: SQLITE_AUTH), has no connections to count and no client-side pool.
 */
import type { MetricsEngine } from '../metrics-engine.ts'
import { explainSqlite, listSqliteColumns, listSqliteIndexes, listSqliteTables, sqliteTenantStorage, trySqliteIndex } from '../_sqlite-metrics.ts'

export const d1Metrics: MetricsEngine = {
  listTables: listSqliteTables,
  listColumns: listSqliteColumns,
  listIndexes: listSqliteIndexes,
  explain: explainSqlite,
  tryIndex: trySqliteIndex,
  async cacheStatistics() {
    return { hitRate: null, source: 'n/a : D1 n’expose pas de compteurs de cache (PRAGMA cache_size et page_count ne sont pas autorisés)' }
  },
  async connectionStatistics() {
    return {
      active: null,
      open: null,
      poolSize: null,
      serverUptimeMs: null,
      note: 'D1 est atteint par un binding : pas de connexions ni de pool à compter',
    }
  },
  tenantStorage: sqliteTenantStorage,
}
