/** Statistics over the backups of a folder: what `advanced-backup stats` shows. */
import type { BackupEntry } from './catalog.ts'

export interface BackupStats {
  count: number
  /** Bytes on disk (archives, or folders' files). */
  totalSize: number
  oldest: { id: string; timestamp: string } | null
  newest: { id: string; timestamp: string } | null
  /** Milliseconds since the newest backup's snapshot. */
  newestAgeMs: number | null
  averageDurationMs: number | null
  /** Uncompressed bytes per stored byte over the compressed backups (4 means 4×), or null. */
  compressionRatio: number | null
  /** The newest backup: was it verified when it was created? */
  lastVerification: { id: string; timestamp: string; verified: boolean } | null
  /** The newest backup verified at creation (what rotation never deletes). */
  newestVerified: { id: string; timestamp: string } | null
  /** Backups whose metadata is unreadable or edited. */
  damaged: string[]
}

/** @example backupStats(await listBackupEntries('backups'), new Date()) */
export function backupStats(entries: readonly BackupEntry[], now: Date): BackupStats {
  const readable = entries.filter((entry) => entry.metadata !== undefined).map((entry) => entry.metadata!)
  const byTime = [...readable].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const oldest = byTime[0]
  const newest = byTime.at(-1)
  const compressed = readable.filter((m) => m.compressed && m.size > 0)
  const verified = [...byTime].reverse().find((m) => m.verified)
  return {
    count: entries.length,
    totalSize: readable.reduce((sum, m) => sum + m.size, 0),
    oldest: oldest ? { id: oldest.id, timestamp: oldest.timestamp } : null,
    newest: newest ? { id: newest.id, timestamp: newest.timestamp } : null,
    newestAgeMs: newest ? Math.max(0, now.getTime() - Date.parse(newest.timestamp)) : null,
    averageDurationMs: readable.length > 0 ? Math.round(readable.reduce((sum, m) => sum + m.durationMs, 0) / readable.length) : null,
    compressionRatio: compressed.length > 0 ? compressed.reduce((s, m) => s + m.contentSize, 0) / compressed.reduce((s, m) => s + m.size, 0) : null,
    lastVerification: newest ? { id: newest.id, timestamp: newest.timestamp, verified: newest.verified } : null,
    newestVerified: verified ? { id: verified.id, timestamp: verified.timestamp } : null,
    damaged: entries.filter((entry) => entry.metadata === undefined || !entry.sealValid).map((entry) => entry.id),
  }
}
