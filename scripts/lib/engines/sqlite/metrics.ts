/**
 * SQLite (better-sqlite3). Its page-cache hit and miss counters exist per connection
 * (sqlite3_db_status) but better-sqlite3 does not expose them, so the hit rate is reported as
 * unavailable; the cache size and database size are measured. There is no server: connections of
 * other processes cannot be seen.
 */
import type { MetricsEngine } from '../metrics-engine.ts'
import { explainSqlite, listSqliteColumns, listSqliteIndexes, listSqliteTables, sqliteTenantStorage, trySqliteIndex } from '../_sqlite-metrics.ts'

export const sqliteMetrics: MetricsEngine = {
  listTables: listSqliteTables,
  listColumns: listSqliteColumns,
  listIndexes: listSqliteIndexes,
  explain: explainSqlite,
  tryIndex: trySqliteIndex,
  async cacheStatistics(sql) {
    const pragma = async (name: string) => Number(Object.values((await sql.query(`PRAGMA ${name}`))[0] ?? {})[0] ?? 0)
    const [cacheSize, pageSize, pageCount] = [await pragma('cache_size'), await pragma('page_size'), await pragma('page_count')]
    return {
      hitRate: null,
      source: 'n/a : SQLite compte les succès du cache de pages par connexion (sqlite3_db_status), que better-sqlite3 n’expose pas',
      measured: {
        // A negative cache_size is a size in KiB, a positive one a number of pages.
        pageCacheBytes: cacheSize < 0 ? -cacheSize * 1024 : cacheSize * pageSize,
        databaseBytes: pageSize * pageCount,
      },
    }
  },
  async connectionStatistics(_sql, facts) {
    return {
      active: null,
      open: null,
      poolSize: facts.poolSize ?? null,
      serverUptimeMs: null,
      note: 'SQLite n’a pas de serveur : les connexions des autres processus ne peuvent pas être comptées',
    }
  },
  tenantStorage: sqliteTenantStorage,
}
