/**
 * Rotation, per source database (engine + the file path or redacted URL its metadata records): a
 * SQLite and a PostgreSQL database backed up into one folder are two series, each kept by the
 * policy on its own. The policy is restic's `forget`: `keepLast` newest, plus the newest backup of
 * each of the last `keepDaily` days, `keepWeekly` ISO weeks and `keepMonthly` months that have one
 * (UTC). On top of the policy, per source: the newest verified backup, and every backup a kept
 * incremental builds on. Backups whose metadata cannot be read form their own series (they cannot
 * be told apart), under the same policy. Unfinished work and files that are not backups are never
 * touched here (catalog.ts cleans killed runs' leftovers).
 */
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { TEMPORARY_MARKER, fsyncPath } from '../../fs/atomic.ts'
import { ToolkitError } from '../../errors.ts'
import type { BackupEntry } from './catalog.ts'

export interface RetentionPolicy {
  keepLast?: number
  keepDaily?: number
  keepWeekly?: number
  keepMonthly?: number
}

export interface RotationPlan {
  keep: BackupEntry[]
  remove: BackupEntry[]
  /** The newest verified backup of a source when only that rule keeps it (the first such, for compatibility). */
  keptBecauseVerified?: string
  /** Backups kept because a kept incremental backup needs them (its chain). */
  keptForChain?: string[]
  /** Why each kept backup is kept (French, one entry per rule that keeps it). */
  reasons: Record<string, string[]>
  /** The source series each backup belongs to. */
  sourceOf: Record<string, string>
}

/** The series a backup belongs to: engine and source as its metadata records them. */
export function sourceKey(entry: BackupEntry): string {
  const m = entry.metadata
  return m === undefined ? '(métadonnées illisibles)' : `${m.engine ?? '?'} ${m.databasePath ?? m.source ?? '?'}`
}

/** Whole numbers ≥ 0 per rule, at least one rule ≥ 1 (a policy that keeps nothing is refused). */
export function normalisePolicy(policy: number | RetentionPolicy): RetentionPolicy {
  const rules = typeof policy === 'number' ? { keepLast: policy } : policy
  for (const [name, value] of Object.entries(rules)) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw new ToolkitError(`${name} doit être un nombre entier ≥ 0, reçu ${value}`, { hint: 'par exemple --keep-daily 7', exitCode: 2 })
  }
  if (!Object.values(rules).some((value) => value !== undefined && value >= 1)) {
    throw new ToolkitError('le nombre de backups à garder doit être un entier ≥ 1 (la politique de rétention ne garderait rien)', { hint: '--keep 1 ou plus, ou --keep-daily/--keep-weekly/--keep-monthly.', exitCode: 2 })
  }
  return rules
}

const day = (date: Date) => date.toISOString().slice(0, 10)
const month = (date: Date) => date.toISOString().slice(0, 7)
function isoWeek(date: Date): string {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()))
  const weekday = d.getUTCDay() || 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday)
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1)
  return `${d.getUTCFullYear()}-W${String(Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7)).padStart(2, '0')}`
}

/** When a backup was taken: its metadata's timestamp, else the instant its id names. */
function takenAt(entry: BackupEntry): Date {
  const stamp = entry.metadata?.timestamp
  if (stamp !== undefined) return new Date(stamp)
  const match = /^backup-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})/.exec(entry.id)
  return match ? new Date(`${match[1]}T${match[2]}:${match[3]}:${match[4]}Z`) : new Date(0)
}

/**
 * Decides what rotation keeps; `policy` is a number (keep-last) or a RetentionPolicy.
 * @example planRotation(await listBackupEntries('backups'), { keepLast: 3, keepDaily: 7 }).remove.map((b) => b.id)
 */
export function planRotation(entries: readonly BackupEntry[], policy: number | RetentionPolicy): RotationPlan {
  const rules = normalisePolicy(policy)
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
  const reasons = new Map<string, string[]>()
  const keepFor = (entry: BackupEntry, why: string) => reasons.set(entry.id, [...(reasons.get(entry.id) ?? []), why])
  const series = new Map<string, BackupEntry[]>()
  const sourceOf: Record<string, string> = {}
  for (const entry of sorted) {
    const key = sourceKey(entry)
    sourceOf[entry.id] = key
    series.set(key, [...(series.get(key) ?? []), entry])
  }
  let keptBecauseVerified: string | undefined
  for (const backups of series.values()) {
    backups.forEach((entry, index) => {
      if (index < (rules.keepLast ?? 0)) keepFor(entry, `parmi les ${rules.keepLast} plus récents (--keep-last)`)
    })
    const buckets: [string, number | undefined, (date: Date) => string][] = [
      ['jour', rules.keepDaily, day],
      ['semaine', rules.keepWeekly, isoWeek],
      ['mois', rules.keepMonthly, month],
    ]
    for (const [label, count, bucketOf] of buckets) {
      if (!count) continue
      const seen = new Set<string>()
      for (const entry of backups) {
        const bucket = bucketOf(takenAt(entry))
        if (seen.has(bucket)) continue
        if (seen.size >= count) break
        seen.add(bucket)
        keepFor(entry, `le plus récent du ${label} ${bucket}`)
      }
    }
    const newestVerified = backups.find((entry) => entry.metadata?.verified === true && entry.sealValid)
    if (newestVerified !== undefined && !reasons.has(newestVerified.id)) {
      keepFor(newestVerified, 'le plus récent backup vérifié de cette source, jamais supprimé')
      keptBecauseVerified ??= newestVerified.id
    }
  }
  // A kept incremental is worthless without every backup it builds on: keep its whole chain.
  const byId = new Map(sorted.map((entry) => [entry.id, entry]))
  const keptForChain: string[] = []
  const queue = sorted.filter((entry) => reasons.has(entry.id))
  for (let i = 0; i < queue.length; i++) {
    const child = queue[i]!
    const parentId = child.metadata?.incremental ? child.metadata.parentId : null
    const parent = parentId ? byId.get(parentId) : undefined
    if (parent === undefined || reasons.has(parent.id)) continue
    keepFor(parent, `nécessaire à l’incrémental conservé ${child.id}`)
    keptForChain.push(parent.id)
    queue.push(parent)
  }
  const keep = sorted.filter((entry) => reasons.has(entry.id))
  const remove = sorted.filter((entry) => !reasons.has(entry.id))
  return {
    keep,
    remove,
    ...(keptBecauseVerified ? { keptBecauseVerified } : {}),
    ...(keptForChain.length > 0 ? { keptForChain } : {}),
    reasons: Object.fromEntries(reasons),
    sourceOf,
  }
}

/**
 * Deletes one backup so that it stops being complete first: the metadata beside an archive goes
 * before the archive; a folder is renamed to a temporary name before it is removed.
 */
export async function removeBackup(backupDir: string, entry: BackupEntry): Promise<void> {
  if (entry.form === 'archive') {
    await rm(entry.paths.sidecar, { force: true })
    fsyncPath(backupDir)
    await rm(entry.paths.archive, { force: true })
    return
  }
  const doomed = join(backupDir, `${entry.id}${TEMPORARY_MARKER}${process.pid}-delete`)
  await rename(entry.paths.directory, doomed)
  fsyncPath(backupDir)
  await rm(doomed, { recursive: true, force: true })
}
