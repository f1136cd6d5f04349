/**
 * The application's real traffic for the live dashboard (`--serve --source app|pg_stat_statements`):
 * each `collect()` is the window since the previous one —
 * - `app`: the executions the collector appended to its sink since the last read (sink-tail.ts);
 * - `pg_stat_statements`: the diff of the view's counters between the previous snapshot and now
 *   (statements.ts), never reset.
 * It gives per-fingerprint calls, total and mean time, and p50/p95/p99 where the source has one
 * time per execution (the sink); pg_stat_statements has only sums, so its percentiles are `null`
 * and a note says so. Per-tenant numbers come from the sink only. Nothing holds a value: the
 * fingerprints carry `?`; the only identifiers are tenant ids (in the JSON, never as labels).
 */
import type { DatabaseHandle } from '../db/connection.ts'
import { displaySql } from '../db/fingerprint.ts'
import type { EngineName } from '../db/url.ts'
import { describeError } from '../errors.ts'
import { engineNamed } from '../engines/index.ts'
import type { StatementSnapshot } from '../engines/metrics-engine.ts'
import { roundMs, summarizeDurations } from '../statistics.ts'
import type { StatementTotals, TrafficSource } from './app-traffic.ts'
import { tailCollectorSink, type SinkTail } from './sink-tail.ts'
import { diffStatementSnapshots } from './statements.ts'

/** One fingerprint over the window. */
export interface LiveStatement extends StatementTotals {
  /** Null when the source has no time per execution (pg_stat_statements). */
  p50Ms: number | null
  p95Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** Rows returned or affected; null when the source does not count them. */
  rows: number | null
  /** Failed operations (sink); null for pg_stat_statements (it counts successful executions only). */
  failed: number | null
  /** pg_stat_statements: shared-buffer hit ratio over the window; null elsewhere or when no block was touched. */
  hitRate: number | null
  /** pg_stat_statements: the server's query ids of this fingerprint. */
  queryids?: string[]
}

/** One cabinet over the window (sink only). */
export interface LiveTenant {
  tenantId: string
  operations: number
  operationMs: number
  meanOperationMs: number
  p95OperationMs: number | null
  /** SQL statements sent on its behalf, and their database time. */
  statements: number
  databaseMs: number
}

export interface LiveTraffic {
  source: TrafficSource
  engine: EngineName
  /** The database URL, password masked. */
  database: string
  /** This collection's window: since the previous collection (ISO). */
  window: { startedAt: string; endedAt: string }
  /** What the source measures: percentiles need one time per execution; tenants need the collector. */
  measures: { percentiles: boolean; tenants: boolean }
  thresholds: { slowMs: number }
  totals: {
    /** Prisma operations (sink); null for pg_stat_statements. */
    operations: number | null
    failedOperations: number | null
    slowOperations: number | null
    statements: number
    databaseMs: number
    /** pg_stat_statements: shared-buffer hit ratio of the window. */
    hitRate: number | null
  }
  /** Every fingerprint of the window, most total time first (at most `MAX_STATEMENTS`). */
  statements: LiveStatement[]
  /** The SQL statements with the most database time, at most 10. */
  topDatabaseTime: LiveStatement[]
  /** Most time first (at most `MAX_TENANTS`); null when the source cannot attribute tenants. */
  tenants: LiveTenant[] | null
  /** French lines: what the source cannot give, what was lost, why the window is empty. */
  notes: string[]
}

/** Times of the window's executions per fingerprint, for the Prometheus histogram; not served as JSON. */
export interface TrafficObservations {
  sql: Map<string, number[]>
  operations: { ok: number; failed: number; slow: number }
}

export const MAX_STATEMENTS = 200
export const MAX_TENANTS = 100
const TOP = 10

export interface LiveTrafficOptions {
  database: DatabaseHandle
  source: TrafficSource
  /** The collector's sink (source `app`). */
  sink?: string
  /** Operations slower than this are slow (default 100 ms). */
  slowMs?: number
  /** The first window of the sink starts this long before the first collection (default 5 s). */
  firstWindowMs?: number
  now?: () => number
}

export interface LiveTrafficReader {
  collect(): Promise<{ traffic: LiveTraffic; observations: TrafficObservations }>
}

/**
 * @example const reader = openLiveTraffic({ database: db, source: 'app', sink: 'prisma/dev.db.metrics.ndjson' }); const { traffic } = await reader.collect()
 */
export function openLiveTraffic(options: LiveTrafficOptions): LiveTrafficReader {
  const now = options.now ?? Date.now
  const slowMs = options.slowMs ?? 100
  let previousEnd = now() - (options.firstWindowMs ?? 5_000)
  const base = (startedAt: number, endedAt: number) => ({
    source: options.source,
    engine: options.database.engine,
    database: options.database.redactedUrl,
    window: { startedAt: new Date(startedAt).toISOString(), endedAt: new Date(endedAt).toISOString() },
    thresholds: { slowMs },
  })

  if (options.source === 'pg_stat_statements') {
    const snapshotStatements = engineNamed(options.database.engine).snapshotStatements
    let previous: StatementSnapshot | undefined
    return {
      async collect() {
        const observations: TrafficObservations = { sql: new Map(), operations: { ok: 0, failed: 0, slow: 0 } }
        const empty = (startedAt: number, endedAt: number, notes: string[]): LiveTraffic => ({
          ...base(startedAt, endedAt),
          measures: { percentiles: false, tenants: false },
          totals: { operations: null, failedOperations: null, slowOperations: null, statements: 0, databaseMs: 0, hitRate: null },
          statements: [],
          topDatabaseTime: [],
          tenants: null,
          notes,
        })
        if (snapshotStatements === undefined) return { traffic: empty(now(), now(), ['pg_stat_statements demande une base PostgreSQL : utilisez --source app avec le collecteur.']), observations }
        const read = await snapshotStatements(options.database.sql, now)
        if (!read.available) {
          previous = undefined
          return { traffic: empty(now(), now(), [read.reason]), observations }
        }
        if (previous === undefined) {
          previous = read.snapshot
          return { traffic: empty(read.snapshot.takenAt, read.snapshot.takenAt, [PG_NO_PERCENTILES, 'Première lecture de pg_stat_statements : la fenêtre commence maintenant, les chiffres viennent à la prochaine collecte.']), observations }
        }
        const diff = diffStatementSnapshots(previous, read.snapshot)
        previous = read.snapshot
        const statements: LiveStatement[] = diff.statements.map((s) => ({
          id: s.id,
          kind: 'sql',
          display: s.display,
          calls: s.calls,
          totalMs: s.totalMs,
          meanMs: s.meanMs,
          p50Ms: null,
          p95Ms: null,
          p99Ms: null,
          maxMs: null,
          rows: s.rows,
          failed: null,
          hitRate: s.hitRate,
          queryids: s.queryids,
        }))
        const hit = diff.statements.reduce((n, s) => n + s.sharedBlksHit, 0)
        const blocks = hit + diff.statements.reduce((n, s) => n + s.sharedBlksRead, 0)
        const notes = [PG_NO_PERCENTILES]
        if (diff.evictedEntries > 0) notes.push(`${diff.evictedEntries} entrée(s) de pg_stat_statements évincée(s) pendant la fenêtre : leurs derniers appels manquent (augmentez pg_stat_statements.max).`)
        return {
          traffic: {
            ...base(diff.startedAt, diff.endedAt),
            measures: { percentiles: false, tenants: false },
            totals: {
              operations: null,
              failedOperations: null,
              slowOperations: null,
              statements: statements.reduce((n, s) => n + s.calls, 0),
              databaseMs: roundMs(statements.reduce((n, s) => n + s.totalMs, 0)),
              hitRate: blocks === 0 ? null : Math.round((hit / blocks) * 10_000) / 10_000,
            },
            statements: statements.slice(0, MAX_STATEMENTS),
            topDatabaseTime: statements.slice(0, TOP),
            tenants: null,
            notes,
          },
          observations,
        }
      },
    }
  }

  let tail: SinkTail | undefined
  return {
    async collect() {
      const sink = options.sink
      const endedAt = now()
      const startedAt = previousEnd
      const observations: TrafficObservations = { sql: new Map(), operations: { ok: 0, failed: 0, slow: 0 } }
      const notes: string[] = []
      const byId = new Map<string, { kind: 'op' | 'sql'; fingerprint: string; durations: number[]; rows: number; failed: number }>()
      const tenants = new Map<string, { operations: number[]; statements: number; databaseMs: number }>()
      if (sink === undefined) {
        notes.push("--source app demande le fichier du collecteur : --sink <chemin> (par défaut <base>.metrics.ndjson à côté d'une base SQLite).")
      } else {
        tail ??= tailCollectorSink(sink, { since: startedAt })
        try {
          const read = await tail.read((e) => {
            let entry = byId.get(e.id)
            if (entry === undefined) byId.set(e.id, (entry = { kind: e.kind, fingerprint: e.fingerprint, durations: [], rows: 0, failed: 0 }))
            entry.durations.push(e.ms)
            entry.rows += e.rows
            if (e.failed) entry.failed++
            const tenant = e.tenant === null ? undefined : (tenants.get(e.tenant) ?? tenants.set(e.tenant, { operations: [], statements: 0, databaseMs: 0 }).get(e.tenant)!)
            if (e.kind === 'op') {
              if (e.failed) observations.operations.failed++
              else observations.operations.ok++
              if (e.ms > slowMs) observations.operations.slow++
              tenant?.operations.push(e.ms)
            } else {
              const times = observations.sql.get(e.id) ?? observations.sql.set(e.id, []).get(e.id)!
              times.push(e.ms)
              if (tenant !== undefined) {
                tenant.statements++
                tenant.databaseMs += e.ms
              }
            }
          })
          if (!read.found) notes.push(`Aucun fichier de mesures ${sink} pour l'instant : installez le collecteur dans l'app (prisma = instrument(prisma, { sink }), voir le README).`)
          if (read.droppedEvents > 0) notes.push(`${read.droppedEvents} exécution(s) abandonnée(s) par le collecteur de l'app (tampon plein).`)
          if (read.missedFiles > 0) notes.push('Le fichier de mesures a tourné plus d\'une fois depuis la collecte précédente : des exécutions manquent (raccourcissez --interval).')
          if (read.backlogBytes > 0) notes.push(`${read.backlogBytes} octets du fichier de mesures restent à lire : ils seront comptés à la prochaine collecte.`)
        } catch (error) {
          // The position did not move: what was visited is read again next time, so it is not counted now.
          byId.clear()
          tenants.clear()
          observations.sql.clear()
          observations.operations = { ok: 0, failed: 0, slow: 0 }
          notes.push(`Lecture du fichier de mesures ${sink} impossible : ${describeError(error)}`)
        }
      }
      previousEnd = endedAt
      const statements: LiveStatement[] = [...byId].map(([id, f]) => {
        const summary = summarizeDurations(f.durations)
        return {
          id,
          kind: f.kind,
          display: f.kind === 'sql' ? displaySql(f.fingerprint) : f.fingerprint,
          calls: summary.count,
          totalMs: roundMs(summary.totalMs),
          meanMs: summary.meanMs,
          p50Ms: summary.p50Ms,
          p95Ms: summary.p95Ms,
          p99Ms: summary.p99Ms,
          maxMs: summary.maxMs,
          rows: f.rows,
          failed: f.kind === 'op' ? f.failed : null,
          hitRate: null,
        }
      })
      statements.sort((a, b) => b.totalMs - a.totalMs || a.id.localeCompare(b.id))
      const sql = statements.filter((s) => s.kind === 'sql')
      const operations = observations.operations.ok + observations.operations.failed
      if (operations > 0 && sql.length === 0) notes.push("Aucun temps base : le client de l'app n'émet pas les événements de requête (log: [{ emit: 'event', level: 'query' }]) ; seul le temps des opérations est mesuré.")
      const tenantRows: LiveTenant[] = [...tenants].map(([tenantId, t]) => {
        const summary = summarizeDurations(t.operations)
        return { tenantId, operations: summary.count, operationMs: roundMs(summary.totalMs), meanOperationMs: summary.meanMs, p95OperationMs: summary.count === 0 ? null : summary.p95Ms, statements: t.statements, databaseMs: roundMs(t.databaseMs) }
      })
      tenantRows.sort((a, b) => b.operationMs + b.databaseMs - (a.operationMs + a.databaseMs) || a.tenantId.localeCompare(b.tenantId))
      if (tenantRows.length > MAX_TENANTS) notes.push(`${tenantRows.length} cabinets actifs : les ${MAX_TENANTS} qui ont pris le plus de temps sont affichés.`)
      if (statements.length > MAX_STATEMENTS) notes.push(`${statements.length} empreintes : les ${MAX_STATEMENTS} qui ont pris le plus de temps sont affichées.`)
      return {
        traffic: {
          ...base(startedAt, endedAt),
          measures: { percentiles: true, tenants: true },
          totals: {
            operations,
            failedOperations: observations.operations.failed,
            slowOperations: observations.operations.slow,
            statements: sql.reduce((n, s) => n + s.calls, 0),
            databaseMs: roundMs(sql.reduce((n, s) => n + s.totalMs, 0)),
            hitRate: null,
          },
          statements: statements.slice(0, MAX_STATEMENTS),
          topDatabaseTime: sql.slice(0, TOP),
          tenants: tenantRows.slice(0, MAX_TENANTS),
          notes,
        },
        observations,
      }
    },
  }
}

const PG_NO_PERCENTILES = 'pg_stat_statements ne garde que des sommes : appels, temps total et moyen par requête ; pas de p50/p95/p99 ni de cabinet (installez le collecteur de l\'app et --source app pour les avoir).'
