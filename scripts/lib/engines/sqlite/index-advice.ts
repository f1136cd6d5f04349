/**
 * The index lab of SQLite and D1. Proposals are measured on a scratch copy of the database (the
 * backup's snapshot: `VACUUM INTO` for SQLite, rebuilt from D1), ANALYZEd so the planner sees the
 * statistics it would see after `ANALYZE` in production; the copy is deleted when the lab closes.
 * The same lab over the live connection (`scratch: false`) measures an applied index for real.
 * UPDATE and DELETE statements run on the scratch copy only, each run rolled back to a savepoint
 * (the copy keeps an in-memory journal for that); the live lab never runs them.
 * Column statistics: distinct values and NULL share over the first 200 000 rows of the copy.
 */
import { rmSync } from 'node:fs'
import { privateScratchDir } from '../../fs/leftovers.ts'
import Database from 'better-sqlite3'
import type { Snapshot, SnapshotOptions } from '../snapshot.ts'
import { quoteIdentifier, type DatabaseHandle, type SqlConnection, type SqlValue } from '../../db/connection.ts'
import { sqliteConnection } from './connection.ts'
import { listSqliteColumns, listSqliteIndexes, listSqliteTables } from '../_sqlite-metrics.ts'
import { ToolkitError } from '../../errors.ts'
import { isReadStatement } from '../../db/fingerprint.ts'
import { duplicateIndexes, isFilteredWrite, type ColumnStatistics, type IndexFinding, type IndexLab, type LabPlan, type PlanScan } from '../index-lab.ts'
import { tableShape } from '../statement-shape.ts'
import { percentile } from '../../statistics.ts'

const STATISTICS_SAMPLE = 200_000

export interface SqliteIndexLabOptions {
  /** Measure on a scratch copy (default) or on the live database (to measure an applied index). */
  scratch?: boolean
  /** Where the scratch copy goes; default the system's temp folder. */
  dir?: string
  /** Whether timing a statement on the live database measures it (false for D1: its round trips dwarf it). Default true. */
  timesLive?: boolean
  /** How the engine takes a consistent copy (SQLite's or D1's snapshot: both give a SQLite file). */
  snapshot: (db: DatabaseHandle, options: SnapshotOptions) => Promise<Snapshot>
}

/**
 * @example const lab = await openSqliteIndexLab(db, { snapshot: sqliteSnapshot }); try { await adviseIndexes(lab, statements) } finally { await lab.close() }
 */
export async function openSqliteIndexLab(db: DatabaseHandle, options: SqliteIndexLabOptions): Promise<IndexLab> {
  if (options.scratch === false) return sqliteIndexLab(db.sql, false, options.timesLive ?? true, async () => {})
  // Named after this process: a lab killed before close() is swept by the next one.
  const dir = await privateScratchDir('ipm-index-lab-', options.dir)
  try {
    const snapshot = await options.snapshot(db, { dir, durable: false })
    const file = snapshot.sqliteFile!
    await snapshot.close()
    const scratch = new Database(file)
    // An in-memory journal: no journal file, but a write measured on the copy can still be rolled back.
    scratch.pragma('journal_mode = MEMORY')
    // Sampled statistics (about 1 000 rows per index), as `PRAGMA optimize` gathers them: a full ANALYZE of a 1M-row copy takes minutes.
    scratch.pragma('analysis_limit = 1000')
    scratch.exec('ANALYZE')
    return sqliteIndexLab(sqliteConnection(scratch), true, true, async () => {
      scratch.close()
      rmSync(dir, { recursive: true, force: true })
    })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

function sqliteIndexLab(sql: SqlConnection, scratch: boolean, timesStatements: boolean, dispose: () => Promise<void>): IndexLab {
  const rowCounts = new Map<string, number>()
  const tableRows = async (table: string) => {
    let rows = rowCounts.get(table)
    if (rows === undefined) {
      const [row] = await sql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${quoteIdentifier(table)}`)
      rowCounts.set(table, (rows = Number(row?.n ?? 0)))
    }
    return rows
  }
  const lab: IndexLab = {
    noLimit: -1,
    createIndexVerb: 'CREATE INDEX',
    measuresWrites: scratch,
    timesStatements,
    tableColumns: (table) => listSqliteColumns(sql, table),
    tableIndexes: (table) => listSqliteIndexes(sql, table),
    async columnStatistics(table, columns) {
      const stats = new Map<string, ColumnStatistics>()
      for (const column of columns) {
        const q = quoteIdentifier(column)
        const [row] = await sql.query<{ d: number; n: number | null }>(
          `SELECT COUNT(DISTINCT ${q}) AS d, AVG(${q} IS NULL) AS n FROM (SELECT ${q} FROM ${quoteIdentifier(table)} LIMIT ${STATISTICS_SAMPLE})`,
        )
        stats.set(column, { distinct: Number(row?.d ?? 0), nullFraction: Number(row?.n ?? 0) })
      }
      return stats
    },
    async commonValues(table, column, count) {
      const q = quoteIdentifier(column)
      const rows = await sql.query<{ v: unknown }>(`SELECT ${q} AS v FROM ${quoteIdentifier(table)} WHERE ${q} IS NOT NULL GROUP BY ${q} ORDER BY COUNT(*) DESC, ${q} LIMIT ${Number(count)}`)
      return rows.map((r) => r.v)
    },
    async medianValue(table, column) {
      const q = quoteIdentifier(column)
      const t = quoteIdentifier(table)
      const [row] = await sql.query<{ v: unknown }>(`SELECT ${q} AS v FROM ${t} WHERE ${q} IS NOT NULL ORDER BY ${q} LIMIT 1 OFFSET (SELECT COUNT(${q}) / 2 FROM ${t})`)
      return row?.v ?? null
    },
    async explain(statement, params) {
      const rows = await sql.query<{ id: number; parent: number; detail: string }>(`EXPLAIN QUERY PLAN ${statement}`, params as SqlValue[])
      const depth = new Map<number, number>([[0, -1]])
      const lines: string[] = []
      const scans: PlanScan[] = []
      const tables = new Set(await listSqliteTables(sql))
      for (const row of rows) {
        const level = (depth.get(row.parent) ?? -1) + 1
        depth.set(row.id, level)
        lines.push(`${'  '.repeat(level)}${row.detail}`)
        const match = /^(SCAN|SEARCH) (?:\w+\.)?(\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+)(?: \((.*)\))?| USING (?:INTEGER )?PRIMARY KEY.*)?$/.exec(row.detail)
        if (match === null || !tables.has(match[2]!)) continue
        const [, verb, table, index, condition] = match as unknown as [string, string, string, string | undefined, string | undefined]
        const total = await tableRows(table)
        if (verb === 'SCAN' && index === undefined) {
          scans.push({ table, kind: 'full', rows: total })
          continue
        }
        if (index === undefined) {
          scans.push({ table, kind: 'index', rows: 1 })
          continue
        }
        const shape = tableShape(statement, table, await listSqliteColumns(sql, table))
        const served = new Set([...(condition ?? '').matchAll(/(\w+)\s*(?:=|>|<|>=|<=)/g)].map((m) => m[1]!))
        const unserved = [...shape.equality, ...shape.range].some((column) => !served.has(column))
        const rowsRead = verb === 'SCAN' ? total : await rowsPerKey(sql, index, served.size, total)
        scans.push({ table, kind: unserved ? 'index-filter' : 'index', index, rows: rowsRead })
      }
      return { lines, scans, sorts: rows.some((row) => /^USE TEMP B-TREE FOR (?:ORDER BY|RIGHT PART OF ORDER BY|LAST TERM OF ORDER BY)/.test(row.detail)) } satisfies LabPlan
    },
    async time(statement, params, runs) {
      const write = !isReadStatement(statement)
      if (write && !(scratch && isFilteredWrite(statement))) throw new ToolkitError('seules les lectures sont mesurées sur la base elle-même; UPDATE et DELETE le sont sur sa copie')
      // A write runs between a savepoint and its rollback: every run finds the same rows, and the copy keeps none of it.
      const run = async () => {
        if (write) await sql.query('SAVEPOINT ipm_index_lab')
        const started = performance.now()
        try {
          await sql.query(statement, params as SqlValue[])
          return performance.now() - started
        } finally {
          if (write) {
            await sql.query('ROLLBACK TO ipm_index_lab')
            await sql.query('RELEASE ipm_index_lab')
          }
        }
      }
      await run()
      const samples: number[] = []
      for (let i = 0; i < runs; i++) samples.push(await run())
      return percentile(samples.sort((a, b) => a - b), 50)
    },
    async hypotheticalPlan() {
      return { unavailable: 'SQLite: l\'index est construit et mesuré sur une copie de la base' }
    },
    async withIndex(index, measure) {
      const name = quoteIdentifier(index.name)
      await sql.query(`CREATE INDEX ${name} ON ${quoteIdentifier(index.table)}(${index.columns.map(quoteIdentifier).join(', ')})`)
      try {
        await sql.query(`ANALYZE ${name}`)
        const [size] = await sql.query<{ bytes: number | null }>(`SELECT SUM(pgsize) AS bytes FROM dbstat WHERE name = ?`, [index.name])
        return { value: await measure(), bytes: Number(size?.bytes ?? 0) }
      } finally {
        await sql.query(`DROP INDEX ${name}`)
      }
    },
    async apply(statement, index) {
      await sql.query(statement)
      await sql.query(`ANALYZE ${quoteIdentifier(index.name)}`)
    },
    async indexFindings() {
      const findings: IndexFinding[] = []
      for (const table of await listSqliteTables(sql)) findings.push(...duplicateIndexes(table, await listSqliteIndexes(sql, table)))
      return findings
    },
    close: dispose,
  }
  return lab
}

/** Rows one key of the index's first `columns` columns selects, from sqlite_stat1 (`N a b c…`); the table's rows when unknown. */
async function rowsPerKey(sql: SqlConnection, index: string, columns: number, fallback: number): Promise<number> {
  const [row] = await sql.query<{ stat: string }>(`SELECT stat FROM sqlite_stat1 WHERE idx = ?`, [index]).catch(() => [])
  const parts = row?.stat.split(' ').map(Number) ?? []
  return parts[columns] ?? parts[0] ?? fallback
}
