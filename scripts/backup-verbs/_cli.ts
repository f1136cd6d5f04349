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
  database?: string
  keep?: number
  compress: boolean
  formats?: ExportFormat[]
  json?: boolean
  quiet?: boolean
}

export type Verb = (options: GlobalOptions) => Promise<number>

export interface BackupCli {
  readonly environment: ToolkitEnvironment
  /** Records the verb the arguments chose; it runs once parsing succeeded. */
  choose(verb: Verb): void
  /** The backup system configured by the global options. */
  system(options: GlobalOptions, onProgress?: ProgressListener): AdvancedBackupSystem
}

export const maxAge = (value: string): number => {
  const ms = parseMaxAge(value)
  if (ms === undefined) throw new InvalidArgumentError('une durée comme 26h, 90m ou 2d est attendue')
  return ms
}

export const percent = (value: string): number => {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('un pourcentage entre 0 et 100 est attendu')
  return n
}
