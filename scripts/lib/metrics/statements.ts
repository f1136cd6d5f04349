/**
 * Statement statistics over a window, from cumulative server counters (PostgreSQL's
 * pg_stat_statements): two snapshots are diffed per entry, never reset, so other tools reading the
 * same view (PgHero, an operator's psql) keep their numbers. An entry that appears in the second
 * snapshot only, or whose call count went down (evicted then re-created, or reset by someone
 * else), counts from zero: its second-snapshot counters are the window's, never a negative number.
 */
import { displaySql, fingerprintId, fingerprintSql, isReadStatement } from '../db/fingerprint.ts'
import { roundMs } from '../statistics.ts'
import type { StatementCounters, StatementSnapshot } from '../engines/metrics-engine.ts'

/** What a normalised statement did during the window. */
export interface StatementStats {
  /** The fingerprint id (same as the dashboard's own fingerprints of the same SQL). */
  id: string
  /** The server's query ids merged into this statement (one per role that ran it, usually one). */
  queryids: string[]
  /** The statement with every literal as `?`. */
  fingerprint: string
  display: string
  read: boolean
  calls: number
  totalMs: number
  meanMs: number
  rows: number
  sharedBlksHit: number
  sharedBlksRead: number
  /** shared_blks_hit / (hit + read) over the window; null when no block was touched. */
  hitRate: number | null
}

export interface StatementWindow {
  startedAt: number
  endedAt: number
  /** Most total execution time first. */
  statements: StatementStats[]
  /** Entries counted from zero because they were new, evicted and re-created, or reset by someone else. */
  restartedEntries: number
  /** Entries of the first snapshot gone from the second (evicted or reset): their last calls are lost. */
  evictedEntries: number
}

const entryKey = (e: StatementCounters) => `${e.userid}/${e.dbid}/${e.queryid}`

/**
 * @example
 * const window = diffStatementSnapshots(before, after)
 * window.statements[0] // { display: 'SELECT … FROM Dossier WHERE tenantId = ?', calls: 120, meanMs: 3.2, … }
 */
export function diffStatementSnapshots(before: StatementSnapshot, after: StatementSnapshot): StatementWindow {
  const previous = new Map(before.entries.map((e) => [entryKey(e), e]))
  let restartedEntries = 0
  const byFingerprint = new Map<string, StatementStats>()
  for (const entry of after.entries) {
    const key = entryKey(entry)
    const old = previous.get(key)
    previous.delete(key)
    const restarted = old === undefined || entry.calls < old.calls
    if (restarted && old !== undefined) restartedEntries++
    const base = restarted ? undefined : old
    const calls = entry.calls - (base?.calls ?? 0)
    if (calls <= 0) continue
    if (old === undefined) restartedEntries++
    const fingerprint = fingerprintSql(entry.query)
    const id = fingerprintId(fingerprint)
    let stats = byFingerprint.get(id)
    if (stats === undefined) {
      stats = {
        id,
        queryids: [],
        fingerprint,
        display: displaySql(fingerprint),
        read: isReadStatement(fingerprint),
        calls: 0,
        totalMs: 0,
        meanMs: 0,
        rows: 0,
        sharedBlksHit: 0,
        sharedBlksRead: 0,
        hitRate: null,
      }
      byFingerprint.set(id, stats)
    }
    if (!stats.queryids.includes(entry.queryid)) stats.queryids.push(entry.queryid)
    stats.calls += calls
    stats.totalMs += Math.max(0, entry.totalExecTimeMs - (base?.totalExecTimeMs ?? 0))
    stats.rows += Math.max(0, entry.rows - (base?.rows ?? 0))
    stats.sharedBlksHit += Math.max(0, entry.sharedBlksHit - (base?.sharedBlksHit ?? 0))
    stats.sharedBlksRead += Math.max(0, entry.sharedBlksRead - (base?.sharedBlksRead ?? 0))
  }
  const statements = [...byFingerprint.values()].map((s) => {
    const blocks = s.sharedBlksHit + s.sharedBlksRead
    return { ...s, totalMs: roundMs(s.totalMs), meanMs: roundMs(s.totalMs / s.calls), hitRate: blocks === 0 ? null : Math.round((s.sharedBlksHit / blocks) * 10_000) / 10_000 }
  })
  statements.sort((a, b) => b.totalMs - a.totalMs || a.id.localeCompare(b.id))
  return { startedAt: before.takenAt, endedAt: after.takenAt, statements, restartedEntries, evictedEntries: previous.size }
}
