/**
 * The index lab of PostgreSQL, on the live database through one dedicated connection:
 * - the what-if plan comes from hypopg (`postgresql-15-hypopg`), created inside a transaction that
 *   is rolled back, so the database keeps no trace of it;
 * - the timing builds the real index inside a transaction that is rolled back: `CREATE INDEX`
 *   takes a SHARE lock on the table while the transaction lasts (writes to it wait, reads do not),
 *   so the build gives up after `lock_timeout` rather than queue behind the app, and the
 *   measurement is kept short (a few EXPLAIN ANALYZE runs);
 * - times are the server's own execution times (`EXPLAIN (ANALYZE, TIMING OFF)`), which also count
 *   the rows each scan really read; an UPDATE or DELETE that filters runs inside a transaction (or
 *   a savepoint of the measuring one) that is rolled back at once, with the same `lock_timeout`:
 *   its row locks last one execution, and nothing it wrote is kept;
 * - column order uses pg_stats (n_distinct, null_frac, most_common_vals, histogram_bounds);
 * - a build that meets recently HOT-updated rows some other session may still see (its snapshot is
 *   older: a long app transaction, an autovacuum ANALYZE) is marked `pg_index.indcheckxmin`, and the
 *   transaction that built it cannot use it: its plans would say "not chosen" of a good index. The
 *   lab then rolls back, waits until those sessions have moved on (`snapshotWaitMs`, polling
 *   pg_stat_activity.backend_xmin) and builds again; past the wait, the candidate is reported as not
 *   measured (`UnmeasuredIndexError`), never as refused.
 * An applied recommendation is built with `CREATE INDEX CONCURRENTLY` (no write lock).
 */
import pg from 'pg'
import type { DatabaseHandle } from '../../db/connection.ts'
import { ToolkitError } from '../../errors.ts'
import { isReadStatement } from '../../db/fingerprint.ts'
import { duplicateIndexes, isFilteredWrite, redactPlanLine, UnmeasuredIndexError, type CandidateIndex, type ColumnStatistics, type IndexFinding, type IndexLab, type LabPlan, type PlanScan } from '../index-lab.ts'
import { postgresMetrics, type PostgresPlanNode } from './metrics.ts'
import { percentile } from '../../statistics.ts'

export const HYPOPG_INSTALL = 'apt-get install postgresql-15-hypopg'

const SCAN_NODES = new Set(['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan'])

export interface PostgresIndexLabOptions {
  /** How long building an index may wait for the table's lock. Default 2 s. */
  lockTimeoutMs?: number
  /** How long, in all, the lab may wait for sessions with older snapshots when a build is hidden from its own transaction (indcheckxmin). Default 15 s. */
  snapshotWaitMs?: number
  /** Told how many sessions of the database hold a snapshot, each time the lab starts waiting for them. */
  onSnapshotWait?: (sessions: number) => void
}

/** How often the lab looks whether the sessions it waits for have moved on. */
const SNAPSHOT_POLL_MS = 100

/**
 * @example const lab = await openPostgresIndexLab(db); try { await adviseIndexes(lab, statements) } finally { await lab.close() }
 */
export async function openPostgresIndexLab(db: DatabaseHandle, options: PostgresIndexLabOptions = {}): Promise<IndexLab> {
  if (db.location.engine !== 'postgres') throw new ToolkitError(`${db.redactedUrl}: le labo d'index PostgreSQL demande une base PostgreSQL`)
  const client = new pg.Client({ connectionString: db.location.connectionString })
  await client.connect()
  const lockTimeout = `${Math.max(1, Math.round(options.lockTimeoutMs ?? 2_000))}ms`
  const snapshotWaitMs = options.snapshotWaitMs ?? 15_000
  /** What is left of that wait: spent once per lab, so that many candidates do not each wait it in full. */
  let snapshotWaitLeftMs = snapshotWaitMs
  const q = (name: string) => `"${name.replace(/"/g, '""')}"`
  const query = async <Row extends object>(text: string, params: readonly unknown[] = []) => (await client.query(text, params as unknown[])).rows as Row[]
  const explainJson = async (options: string, statement: string, params: readonly unknown[]) => {
    const [row] = await query<{ 'QUERY PLAN': { Plan: PostgresPlanNode; 'Execution Time'?: number }[] }>(`EXPLAIN (${options}, FORMAT JSON) ${dollarPlaceholders(statement)}`, params)
    return row!['QUERY PLAN'][0]!
  }
  /** Whether a transaction is open (the measuring one of `withIndex`, or hypopg's). */
  let inTransaction = false
  /** EXPLAIN ANALYZE runs the statement: a write's effects are rolled back right after. */
  const analyzed = async (statement: string, params: readonly unknown[]) => {
    if (isReadStatement(statement)) return explainJson('ANALYZE, TIMING OFF', statement, params)
    if (!isFilteredWrite(statement)) throw new ToolkitError('seules les lectures, et les UPDATE/DELETE filtrés (annulés aussitôt), sont exécutés pour mesurer un index')
    await client.query(inTransaction ? 'SAVEPOINT ipm_index_lab' : 'BEGIN')
    try {
      await client.query(`SET LOCAL lock_timeout = '${lockTimeout}'`)
      return await explainJson('ANALYZE, TIMING OFF', statement, params)
    } finally {
      await client.query(inTransaction ? 'ROLLBACK TO SAVEPOINT ipm_index_lab' : 'ROLLBACK')
    }
  }
  /** The other sessions of this database that hold a snapshot: pid → its xmin. */
  const snapshotHolders = async () =>
    new Map(
      (
        await query<{ pid: number; xmin: string }>(
          `SELECT pid, backend_xmin::text AS xmin FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL`,
        )
      ).map((row) => [row.pid, row.xmin]),
    )
  /** Until every one of `holders` has ended or taken a newer snapshot, or the deadline. */
  const movedOn = async (holders: Map<number, string>, deadline: number) => {
    do {
      await new Promise((resolve) => setTimeout(resolve, SNAPSHOT_POLL_MS))
      const now = await snapshotHolders()
      if (![...holders].some(([pid, xmin]) => now.get(pid) === xmin)) return
    } while (Date.now() < deadline)
  }
  const stats = async (table: string, column: string) => {
    const [row] = await query<{ n_distinct: number; null_frac: number; reltuples: number; mcv: string[] | null; bounds: string[] | null }>(
      `SELECT s.n_distinct, s.null_frac, c.reltuples, s.most_common_vals::text::text[] AS mcv, s.histogram_bounds::text::text[] AS bounds
         FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
        WHERE s.schemaname = current_schema() AND s.tablename = $1 AND s.attname = $2`,
      [table, column],
    )
    return row
  }

  const lab: IndexLab = {
    noLimit: null,
    createIndexVerb: 'CREATE INDEX CONCURRENTLY',
    measuresWrites: true,
    timesStatements: true,
    tableColumns: (table) => postgresMetrics.listColumns(db.sql, table),
    tableIndexes: (table) => postgresMetrics.listIndexes(db.sql, table),
    async columnStatistics(table, columns) {
      const result = new Map<string, ColumnStatistics>()
      for (const column of columns) {
        const row = await stats(table, column)
        if (row !== undefined) {
          const distinct = row.n_distinct < 0 ? -row.n_distinct * Math.max(row.reltuples, 0) : row.n_distinct
          result.set(column, { distinct, nullFraction: row.null_frac })
          continue
        }
        const [sample] = await query<{ d: string; n: number | null }>(
          `SELECT COUNT(DISTINCT c) AS d, AVG((c IS NULL)::int) AS n FROM (SELECT ${q(column)} AS c FROM ${q(table)} LIMIT 200000) s`,
        )
        result.set(column, { distinct: Number(sample?.d ?? 0), nullFraction: Number(sample?.n ?? 0) })
      }
      return result
    },
    async commonValues(table, column, count) {
      const row = await stats(table, column)
      if (row?.mcv != null && row.mcv.length >= count) return row.mcv.slice(0, count)
      const rows = await query<{ v: unknown }>(`SELECT ${q(column)}::text AS v FROM ${q(table)} WHERE ${q(column)} IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT ${Number(count)}`)
      return rows.map((r) => r.v)
    },
    async medianValue(table, column) {
      const row = await stats(table, column)
      if (row?.bounds != null && row.bounds.length > 0) return row.bounds[Math.floor(row.bounds.length / 2)]
      const [value] = await query<{ v: unknown }>(`SELECT (percentile_disc(0.5) WITHIN GROUP (ORDER BY ${q(column)}))::text AS v FROM ${q(table)}`)
      return value?.v ?? null
    },
    async explain(statement, params) {
      return planOf((await analyzed(statement, params)).Plan)
    },
    async time(statement, params, runs) {
      await analyzed(statement, params)
      const samples: number[] = []
      for (let i = 0; i < runs; i++) samples.push((await analyzed(statement, params))['Execution Time'] ?? 0)
      return percentile(samples.sort((a, b) => a - b), 50)
    },
    async hypotheticalPlan(index, statement, params) {
      const [available] = await query(`SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'`)
      if (available === undefined) return { unavailable: `hypopg n'est pas installé sur le serveur (${HYPOPG_INSTALL})` }
      await client.query('BEGIN')
      inTransaction = true
      try {
        await client.query('CREATE EXTENSION IF NOT EXISTS hypopg')
        await client.query('SELECT * FROM hypopg_create_index($1)', [createIndex(index, q)])
        return planOf((await explainJson('COSTS true', statement, params)).Plan)
      } catch (error) {
        return { unavailable: `hypopg: ${(error as Error).message}` }
      } finally {
        inTransaction = false
        await client.query('ROLLBACK')
      }
    },
    async withIndex(index, measure) {
      const deadline = Date.now() + snapshotWaitLeftMs
      for (;;) {
        await client.query('BEGIN')
        inTransaction = true
        try {
          await client.query(`SET LOCAL lock_timeout = '${lockTimeout}'`)
          await client.query(createIndex(index, q))
          const [built] = await query<{ hidden: boolean; bytes: string }>(
            `SELECT indcheckxmin AS hidden, pg_relation_size(indexrelid) AS bytes FROM pg_index WHERE indexrelid = to_regclass($1)`,
            [q(index.name)],
          )
          if (!built!.hidden) {
            // As apply() does after its build: the planner then judges with the table's current statistics,
            // not whatever autovacuum last left (a table loaded recently may have none). Rolled back with the rest.
            await client.query(`ANALYZE ${q(index.table)}`)
            return { value: await measure(), bytes: Number(built!.bytes) }
          }
        } finally {
          inTransaction = false
          await client.query('ROLLBACK')
        }
        const holders = await snapshotHolders()
        // No session to wait for (a prepared transaction or a replication slot holds the rows back): building
        // again would only take the table's lock again, for nothing.
        if (holders.size === 0) {
          throw new UnmeasuredIndexError(
            `l'index construit pour la mesure est caché à la transaction qui le construit (pg_index.indcheckxmin): une transaction préparée ou un slot de réplication retient d'anciennes versions des lignes de ${q(index.table)} (pg_prepared_xacts, pg_replication_slots); relancez l'avis quand ils ne les retiendront plus`,
          )
        }
        if (Date.now() >= deadline) {
          snapshotWaitLeftMs = 0
          throw new UnmeasuredIndexError(
            `l'index construit pour la mesure est caché à la transaction qui le construit (pg_index.indcheckxmin): ${holders.size} session(s) de la base gardent un instantané plus ancien que les dernières mises à jour de ${q(index.table)} (pg_stat_activity.backend_xmin); attendu ${Math.round(snapshotWaitMs / 1000)} s en tout; relancez l'avis quand ces transactions seront finies`,
          )
        }
        options.onSnapshotWait?.(holders.size)
        await movedOn(holders, deadline)
        snapshotWaitLeftMs = Math.max(0, deadline - Date.now())
      }
    },
    async apply(statement, index) {
      await client.query(statement)
      await client.query(`ANALYZE ${q(index.table)}`)
    },
    async indexFindings() {
      const findings: IndexFinding[] = []
      for (const table of await postgresMetrics.listTables(db.sql)) findings.push(...duplicateIndexes(table, await postgresMetrics.listIndexes(db.sql, table)))
      const unused = await query<{ table: string; index: string; columns: string[]; bytes: string }>(
        `SELECT s.relname AS table, s.indexrelname AS index, pg_relation_size(s.indexrelid) AS bytes,
                array_agg(a.attname::text ORDER BY k.ord)::text[] AS columns
           FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
           CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE s.schemaname = current_schema() AND s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
          GROUP BY s.relname, s.indexrelname, s.indexrelid ORDER BY s.relname, s.indexrelname`,
      )
      const [reset] = await query<{ since: Date | null }>(`SELECT stats_reset AS since FROM pg_stat_database WHERE datname = current_database()`)
      const since = reset?.since == null ? 'la création de la base' : reset.since.toISOString()
      for (const row of unused) {
        findings.push({
          kind: 'unused-index',
          table: row.table,
          index: row.index,
          columns: row.columns,
          scans: 0,
          bytes: Number(row.bytes),
          message: `Index inutilisé: ${row.index}(${row.columns.join(', ')}) n'a servi à aucune lecture depuis ${since} (pg_stat_user_indexes.idx_scan = 0), ${row.bytes} octets; à vérifier sur une période représentative avant de le supprimer.`,
        })
      }
      return findings
    },
    async close() {
      await client.end()
    },
  }
  return lab
}

/** A fingerprint's `?` placeholders as PostgreSQL's `$1, $2…` (a statement that already has `$n` is left alone). */
function dollarPlaceholders(sql: string): string {
  if (/\$\d/.test(sql)) return sql
  let index = 0
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (match) => (match === '?' ? `$${++index}` : match))
}

function createIndex(index: CandidateIndex, q: (name: string) => string): string {
  return `CREATE INDEX ${q(index.name)} ON ${q(index.table)}(${index.columns.map(q).join(', ')})`
}

/** The plan as lines (values redacted), its scans with the rows each really read, and whether it sorts. */
function planOf(root: PostgresPlanNode): LabPlan {
  const lines: string[] = []
  const scans: PlanScan[] = []
  let sorts = false
  const walk = (node: PostgresPlanNode, depth: number) => {
    let line = node['Node Type']
    const index = node['Index Name'] ?? (node['Node Type'] === 'Bitmap Heap Scan' ? node.Plans?.find((p) => p['Index Name'] !== undefined)?.['Index Name'] : undefined)
    if (node['Index Name'] !== undefined) line += ` using ${node['Index Name']}`
    if (node['Relation Name'] !== undefined) line += ` on ${node['Relation Name']}`
    for (const key of ['Index Cond', 'Recheck Cond', 'Hash Cond', 'Join Filter', 'Filter'] as const) if (node[key] !== undefined) line += ` (${key}: ${node[key]})`
    if (node['Sort Key'] !== undefined) line += ` (Sort Key: ${node['Sort Key'].join(', ')})`
    lines.push(redactPlanLine(`${'  '.repeat(depth)}${line}`))
    if (node['Node Type'] === 'Sort' || node['Node Type'] === 'Incremental Sort') sorts = true
    if (SCAN_NODES.has(node['Node Type']) && node['Relation Name'] !== undefined) {
      const loops = node['Actual Loops'] ?? 1
      const read = ((node['Actual Rows'] ?? node['Plan Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * loops
      const kind: PlanScan['kind'] = node['Node Type'] === 'Seq Scan' ? 'full' : node.Filter !== undefined ? 'index-filter' : 'index'
      scans.push({ table: node['Relation Name'], kind, ...(index === undefined ? {} : { index }), rows: Math.round(read) })
    }
    for (const child of node.Plans ?? []) walk(child, depth + 1)
  }
  walk(root, 0)
  return { lines, scans, sorts }
}
