/**
 * `check`: are the backups still working? Read from the backup folder and its history.jsonl, it
 * finds three kinds of problem —
 * - stale: no verified backup, or the newest verified one is older than `maxAgeMs`;
 * - last run failed: the newest line of history.jsonl records a failure;
 * - size drop: the newest full backup's content is more than `maxShrinkPercent` % smaller than the
 *   previous full backup's (incremental backups are small by design and not compared);
 * - no recent drill: no successful restore drill of a listed backup within `maxDrillAgeMs`.
 * A backup counts as verified when `create` verified it (metadata `verified`, seal intact) or a later
 * `verify` of it succeeded (history). Sizes compared are the uncompressed content sizes, so
 * switching compression on or off is not a drop.
 */
import type { AlertCondition } from '../../alerts/alert.ts'
import { renderDeliveries, type NotifyAlertsResult } from '../../alerts/notify.ts'
import { formatBytes, formatDuration } from '../../format.ts'
import type { BackupEntry } from './catalog.ts'
import type { HistoryRecord } from './history.ts'

export type CheckProblemKind = 'no-verified-backup' | 'stale' | 'last-run-failed' | 'size-drop' | 'offsite-missing' | 'offsite-stale' | 'no-recent-drill'

export interface CheckProblem {
  kind: CheckProblemKind
  /** One line, for people (and the alert). */
  message: string
}

export interface CheckThresholds {
  /** Default 26 h: a nightly backup plus slack. */
  maxAgeMs: number
  /** Default 50 (%). */
  maxShrinkPercent: number
  /**
   * Default 7 days: a successful restore drill of a listed backup at most this old. The clock starts
   * at the oldest listed backup, so a backup folder younger than this is not yet late. Undefined: not checked.
   */
  maxDrillAgeMs?: number
}

export const DEFAULT_MAX_AGE_MS = 26 * 3_600_000
export const DEFAULT_MAX_SHRINK_PERCENT = 50
export const DEFAULT_MAX_DRILL_AGE_MS = 7 * 86_400_000

export interface CheckResult extends CheckThresholds {
  ok: boolean
  backupDir: string
  checkedAt: string
  problems: CheckProblem[]
  newestVerified: { id: string; timestamp: string; ageMs: number } | null
  lastRun: HistoryRecord | null
  /** The newest full backup against the previous one (null with fewer than two). */
  sizeChange: { newest: { id: string; contentSize: number }; previous: { id: string; contentSize: number }; percent: number } | null
  /** The newest successful drill of a listed backup, with its measured time to restore. */
  lastDrill: { id: string; at: string; ageMs: number; rtoMs: number | null } | null
  /** Skipped history lines and unreadable backups: shown, never a failure by themselves. */
  warnings: string[]
  /** What the alert channels were told (notifyAlerts); absent when no channel is configured. Never changes `ok`. */
  alerts?: NotifyAlertsResult
  /** The newest complete off-site copy, when an off-site storage is configured (null: none). */
  offsite?: { location: string; newest: { id: string; timestamp: string; ageMs: number } | null }
}

/**
 * Parses `26h`, `90m`, `2d`, `45s` (or a bare number of hours) into milliseconds; undefined when unreadable.
 * @example parseMaxAge('26h') // 93_600_000
 */
export function parseMaxAge(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$/i.exec(text)
  if (!match) return undefined
  const unit = (match[2] ?? 'h').toLowerCase()
  const ms = Number(match[1]) * { s: 1_000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 's' | 'm' | 'min' | 'h' | 'd']
  return ms > 0 && Number.isFinite(ms) ? ms : undefined
}

/**
 * Judges the backups of a folder (entries newest first, history oldest first) at `now`.
 * @example evaluateBackups(await listBackupEntries(dir), (await readHistory(dir)).records, { backupDir: dir, now: new Date(), maxAgeMs: DEFAULT_MAX_AGE_MS, maxShrinkPercent: 50 })
 */
export function evaluateBackups(
  entries: readonly BackupEntry[],
  history: readonly HistoryRecord[],
  options: CheckThresholds & { backupDir: string; now: Date; warnings?: string[]; offsite?: { location: string; entries: readonly BackupEntry[] } },
): CheckResult {
  const problems: CheckProblem[] = []
  const warnings = [...(options.warnings ?? [])]
  const now = options.now.getTime()
  for (const entry of entries) {
    if (entry.metadata === undefined) warnings.push(`${entry.id}: ${entry.problem ?? 'unreadable metadata'}`)
    else if (!entry.sealValid) warnings.push(`${entry.id} : ses métadonnées ont été modifiées après leur écriture`)
  }
  const sound = entries.filter((entry) => entry.metadata !== undefined && entry.sealValid).map((entry) => entry.metadata!)
  const sorted = [...sound].sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0))

  // Verified: at creation, or by a verify whose latest outcome for that backup is a success.
  const lastVerify = new Map<string, HistoryRecord>()
  for (const record of history) if (record.operation === 'verify' && record.id !== undefined) lastVerify.set(record.id, record)
  const verified = sorted.find((m) => lastVerify.get(m.id)?.result === 'success' || (m.verified && lastVerify.get(m.id)?.result !== 'failure'))
  let newestVerified: CheckResult['newestVerified'] = null
  if (verified === undefined) {
    problems.push({
      kind: 'no-verified-backup',
      message: sorted.length === 0 ? `aucun backup dans ${options.backupDir}` : `aucun backup vérifié parmi les ${sorted.length} de ${options.backupDir}`,
    })
  } else {
    const ageMs = Math.max(0, now - Date.parse(verified.timestamp))
    newestVerified = { id: verified.id, timestamp: verified.timestamp, ageMs }
    if (ageMs > options.maxAgeMs) {
      problems.push({ kind: 'stale', message: `le dernier backup vérifié (${verified.id}) date de ${formatDuration(ageMs)}, plus que --max-age ${formatDuration(options.maxAgeMs)}` })
    }
  }

  const lastRun = history.at(-1) ?? null
  if (lastRun?.result === 'failure') {
    problems.push({
      kind: 'last-run-failed',
      message: `la dernière opération a échoué: ${lastRun.operation}${lastRun.id ? ` ${lastRun.id}` : ''} du ${lastRun.start}: ${lastRun.error ?? 'erreur inconnue'}`,
    })
  }

  const full = sorted.filter((m) => !m.incremental)
  let sizeChange: CheckResult['sizeChange'] = null
  if (full.length >= 2) {
    const [newest, previous] = [full[0]!, full[1]!]
    const percent = previous.contentSize === 0 ? 0 : ((newest.contentSize - previous.contentSize) / previous.contentSize) * 100
    sizeChange = { newest: { id: newest.id, contentSize: newest.contentSize }, previous: { id: previous.id, contentSize: previous.contentSize }, percent: Math.round(percent * 10) / 10 }
    if (-percent > options.maxShrinkPercent) {
      problems.push({
        kind: 'size-drop',
        message: `le backup ${newest.id} (${formatBytes(newest.contentSize)}) est ${Math.round(-percent)} % plus petit que le précédent ${previous.id} (${formatBytes(previous.contentSize)}), plus que --max-shrink ${options.maxShrinkPercent} %`,
      })
    }
  }

  // Off-site configured: its newest whole copy (metadata sound, archive present) must be fresh too.
  let offsite: CheckResult['offsite']
  if (options.offsite !== undefined) {
    const copies = options.offsite.entries.filter((entry) => entry.metadata !== undefined && entry.sealValid && entry.problem === undefined).map((entry) => entry.metadata!)
    const newestCopy = copies.sort((a, b) => (a.timestamp < b.timestamp ? 1 : -1))[0]
    if (newestCopy === undefined) {
      offsite = { location: options.offsite.location, newest: null }
      problems.push({ kind: 'offsite-missing', message: `aucune copie hors site complète sur ${options.offsite.location}` })
    } else {
      const ageMs = Math.max(0, now - Date.parse(newestCopy.timestamp))
      offsite = { location: options.offsite.location, newest: { id: newestCopy.id, timestamp: newestCopy.timestamp, ageMs } }
      if (ageMs > options.maxAgeMs) problems.push({ kind: 'offsite-stale', message: `la dernière copie hors site (${newestCopy.id} sur ${options.offsite.location}) date de ${formatDuration(ageMs)}, plus que --max-age ${formatDuration(options.maxAgeMs)}` })
    }
  }

  const listed = new Set(sorted.map((m) => m.id))
  const drill = [...history].reverse().find((r) => r.operation === 'drill' && r.result === 'success' && r.id !== undefined && listed.has(r.id))
  const lastDrill = drill === undefined ? null : { id: drill.id!, at: drill.end, ageMs: Math.max(0, now - Date.parse(drill.end)), rtoMs: drill.rtoMs ?? null }
  if (options.maxDrillAgeMs !== undefined && sorted.length > 0 && (lastDrill === null || lastDrill.ageMs > options.maxDrillAgeMs)) {
    const oldest = Date.parse(sorted.at(-1)!.timestamp)
    if (now - oldest > options.maxDrillAgeMs) {
      problems.push({
        kind: 'no-recent-drill',
        message: lastDrill === null
          ? `aucun exercice de restauration réussi depuis plus de --max-drill-age ${formatDuration(options.maxDrillAgeMs)} (advanced-backup drill)`
          : `le dernier exercice de restauration réussi (${lastDrill.id}, RTO ${lastDrill.rtoMs === null ? 'inconnu' : formatDuration(lastDrill.rtoMs)}) date de ${formatDuration(lastDrill.ageMs)}, plus que --max-drill-age ${formatDuration(options.maxDrillAgeMs)}`,
      })
    }
  }

  return {
    ok: problems.length === 0,
    ...(offsite !== undefined ? { offsite } : {}),
    backupDir: options.backupDir,
    checkedAt: options.now.toISOString(),
    maxAgeMs: options.maxAgeMs,
    maxShrinkPercent: options.maxShrinkPercent,
    ...(options.maxDrillAgeMs !== undefined ? { maxDrillAgeMs: options.maxDrillAgeMs } : {}),
    lastDrill,
    problems,
    newestVerified,
    lastRun,
    sizeChange,
    warnings,
  }
}

export const BACKUP_ALERT_SOURCE = 'advanced-backup check'

/**
 * One alert condition per problem, keyed on its kind and the folder (stable across runs: the
 * state file deduplicates it, and sends "résolu" when it clears).
 * @example backupAlertConditions(result) // [{ key: 'backup:stale:/var/backups/ipm', severity: 'critical', title: 'Backups en danger: …' }]
 */
export function backupAlertConditions(result: CheckResult): AlertCondition[] {
  return result.problems.map((problem) => ({
    key: `backup:${problem.kind}:${result.backupDir}`,
    severity: problem.kind === 'size-drop' ? 'warning' : 'critical',
    title: `Backups en danger: ${problem.message}`,
    details: [`Dossier des backups: ${result.backupDir}`, 'Vérifier: npm run backup:check -- --dir <dossier>'],
  }))
}

/** The human form of a check: one line when healthy, one line per problem otherwise. */
export function renderCheck(result: CheckResult): string {
  const lines: string[] = []
  if (result.ok) {
    const verified = result.newestVerified!
    const last = result.lastRun ? `, dernière opération: ${result.lastRun.operation} réussie` : ''
    lines.push(`✅ Backups en bonne santé: dernier backup vérifié ${verified.id}, il y a ${formatDuration(verified.ageMs)}${last}`)
  } else {
    lines.push(`❌ Backups en danger (${result.problems.length} problème${result.problems.length > 1 ? 's' : ''})`)
    for (const problem of result.problems) lines.push(`   ✗ ${problem.message}`)
  }
  if (result.lastDrill !== null) {
    lines.push(`   Dernier exercice de restauration réussi: ${result.lastDrill.id}, il y a ${formatDuration(result.lastDrill.ageMs)}, RTO mesuré ${result.lastDrill.rtoMs === null ? 'inconnu' : formatDuration(result.lastDrill.rtoMs)}`)
  }
  for (const warning of result.warnings) lines.push(`   ⚠ ${warning}`)
  if (result.alerts !== undefined) for (const line of renderDeliveries(result.alerts)) lines.push(`   ${line}`)
  return lines.join('\n') + '\n'
}
