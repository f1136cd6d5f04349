/**
 * What every verb of advanced-backup.ts shares: the global options, the environment resolved once,
 * the backup system built from them, and the argument parsers used by more than one verb.
 * A verb file registers its command and hands the work to `choose`; runCommand runs it after parsing.
 */
import { InvalidArgumentError } from 'commander'
import type { ToolkitEnvironment } from '../lib/environment.ts'
import type { AdvancedBackupSystem } from '../lib/backup/backup-system.ts'
import { parseMaxAge } from '../lib/backup/catalog/check.ts'
import type { ExportFormat } from '../lib/backup/layout.ts'
import type { ProgressListener } from '../lib/progress.ts'

export interface GlobalOptions {
  dir?: string
  offsite?: string
  keyFile?: string
  keepLast?: number
  keepDaily?: number
  keepWeekly?: number
  keepMonthly?: number
  database?: string
  keep?: number
  compress: boolean
  compressionLevel?: number
  formats?: ExportFormat[]
  json?: boolean
  quiet?: boolean
  otel?: boolean
}

export type Verb = (options: GlobalOptions) => Promise<number>

export interface BackupCli {
  readonly environment: ToolkitEnvironment
  /** Records the verb the arguments chose; it runs once parsing succeeded. */
  choose(verb: Verb): void
  /** The backup system configured by the global options. */
  system(options: GlobalOptions, onProgress?: ProgressListener, extra?: { encrypt?: boolean }): AdvancedBackupSystem
  /** A signal the first Ctrl-C or SIGTERM aborts (the verb stops cleanly); verbs that never call it exit 130 at once. */
  interruptible(): AbortSignal
}

/** A duration like 24h, 90m, 7d or 30s (--snapshot-every, --retention). */
export const duration = (value: string): number => {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/i.exec(value.trim())
  const ms = match === null ? NaN : Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2]!.toLowerCase() as 's' | 'm' | 'h' | 'd']
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError('durée attendue, par exemple 30s, 90m, 24h ou 7d')
  return ms
}

export const maxAge = (value: string): number => {
  const ms = parseMaxAge(value)
  if (ms === undefined) throw new InvalidArgumentError('une durée comme 26h, 90m ou 2d est attendue')
  return ms
}

/** `--keep-daily 7` and its siblings: a whole number ≥ 0. */
export const retentionCount = (value: string): number => {
  const n = Number(value)
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('nombre entier ≥ 0 attendu')
  return n
}

/** `--compression-level`: gzip's levels, 1 (fastest) to 9 (smallest). */
export const compressionLevel = (value: string): number => {
  const n = Number(value)
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > 9) throw new InvalidArgumentError('un niveau de 1 (plus rapide) à 9 (plus petit) est attendu')
  return n
}

export const percent = (value: string): number => {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('un pourcentage entre 0 et 100 est attendu')
  return n
}
