/**
 * PostgreSQL's own statement statistics: the pg_stat_statements view, restricted to the connected
 * database, read and never reset (see metrics/statements.ts for the diff). The view needs the
 * library preloaded by the server and the extension created in the database; without either, the
 * caller gets one French line saying how to enable it, and the rest of the dashboard goes on.
 */
import type { SqlConnection } from '../../db/connection.ts'
import type { StatementSnapshot } from '../metrics-engine.ts'

export type StatementSnapshotResult = { available: true; snapshot: StatementSnapshot } | { available: false; reason: string }

export const PG_STAT_STATEMENTS_HOWTO =
  "pg_stat_statements indisponible: ajoutez shared_preload_libraries = 'pg_stat_statements' dans postgresql.conf, redémarrez PostgreSQL, puis CREATE EXTENSION pg_stat_statements; dans la base"

/**
 * Reads the counters of the connected database. The dashboard's own reads of the view are left out
 * (they would otherwise show up as the monitored app's traffic).
 * @example const result = await snapshotStatements(db.sql); if (result.available) diffStatementSnapshots(first, result.snapshot)
 */
export async function snapshotStatements(sql: SqlConnection, now: () => number = Date.now): Promise<StatementSnapshotResult> {
  const [installed] = await sql.query<{ schema: string }>(
    // The comment keeps the name in the normalised text (the literal becomes $1), so the read below leaves this statement out too.
    `/* ipm-dashboard: pg_stat_statements */ SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`,
  )
  if (installed === undefined) return { available: false, reason: PG_STAT_STATEMENTS_HOWTO }
  const view = `"${installed.schema.replace(/"/g, '""')}".pg_stat_statements`
  let rows: { userid: string; dbid: string; queryid: string; query: string; calls: string; total_exec_time: number; rows: string; shared_blks_hit: string; shared_blks_read: string }[]
  try {
    rows = await sql.query(
      `SELECT userid::text AS userid, dbid::text AS dbid, queryid::text AS queryid, query, calls::text AS calls, total_exec_time,
              rows::text AS rows, shared_blks_hit::text AS shared_blks_hit, shared_blks_read::text AS shared_blks_read
         FROM ${view}(true)
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL
          AND query NOT LIKE '%pg_stat_statements%'`,
    )
  } catch (error) {
    // "pg_stat_statements must be loaded via shared_preload_libraries" (55000).
    if ((error as { code?: unknown })?.code === '55000' || /shared_preload_libraries/.test(String((error as Error)?.message))) {
      return { available: false, reason: PG_STAT_STATEMENTS_HOWTO }
    }
    throw error
  }
  return {
    available: true,
    snapshot: {
      takenAt: now(),
      entries: rows.map((r) => ({
        userid: r.userid,
        dbid: r.dbid,
        queryid: r.queryid,
        query: r.query,
        calls: Number(r.calls),
        totalExecTimeMs: Number(r.total_exec_time),
        rows: Number(r.rows),
        sharedBlksHit: Number(r.shared_blks_hit),
        sharedBlksRead: Number(r.shared_blks_read),
      })),
    },
  }
}
