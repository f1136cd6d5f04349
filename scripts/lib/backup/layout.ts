/**
 * Where a backup lives and what its files are called: the spec's layout, in one place.
 *
 *   <backupDir>/backup-2026-01-21T15-30-00/            uncompressed backup
 *       database.db | database.sql, export.sql, data.json, exports/<table>.csv, metadata.json
 *   <backupDir>/backup-2026-01-21T15-30-00.tar.gz      compressed backup: the same folder, packed
 *   <backupDir>/backup-2026-01-21T15-30-00.metadata.json   its metadata, outside the archive too
 *
 * Anything whose name contains TEMPORARY_MARKER is work in progress (or a killed run's leftover).
 * The database artefact's names (database.db, database.sql) are the engines' (engines/snapshot.ts).
 */
import { join } from 'node:path'
import { TEMPORARY_MARKER } from '../fs/atomic.ts'
import { ToolkitError, USAGE_EXIT_CODE } from '../errors.ts'

export type ExportFormat = 'sql' | 'json' | 'csv'
export const EXPORT_FORMATS: readonly ExportFormat[] = ['sql', 'json', 'csv']

export const METADATA_FILE = 'metadata.json'
export const SQL_EXPORT_FILE = 'export.sql'
export const JSON_EXPORT_FILE = 'data.json'
export const CSV_DIR = 'exports'
/** An export's checksums (`sha256sum -c SHA256SUMS`) and its description (export-only.ts). */
export const EXPORT_SUMS_FILE = 'SHA256SUMS'
export const EXPORT_MANIFEST_FILE = 'export.json'
export const ARCHIVE_SUFFIX = '.tar.gz'
export const SIDECAR_SUFFIX = '.metadata.json'
/** An encrypted backup: the `.tar.gz` sealed in the chunked format of docs/ENCRYPTION_FORMAT.md. */
export const ENCRYPTED_SUFFIX = '.tar.gz.enc'

const ID_PATTERN = /^backup-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})(?:-(\d{1,4}))?$/

/** `backup-2026-01-21T15-30-00` for 2026-01-21T15:30:00Z (UTC, second precision, as the spec shows). */
export function backupIdFor(date: Date, sequence = 1): string {
  const stamp = date.toISOString().slice(0, 19).replaceAll(':', '-')
  return sequence > 1 ? `backup-${stamp}-${sequence}` : `backup-${stamp}`
}

export function isBackupId(id: string): boolean {
  return ID_PATTERN.test(id)
}

/**
 * Rejects anything that is not a backup id before it comes near a path (`../../etc`, `/`, `a/b`).
 * @example assertBackupId('backup-2026-01-21T15-30-00')
 */
export function assertBackupId(id: string): string {
  if (!isBackupId(id)) {
    throw new ToolkitError(`"${id}" n’est pas un identifiant de backup`, {
      hint: 'Un identifiant ressemble à backup-2026-01-21T15-30-00 ; `advanced-backup list` les affiche.',
      exitCode: USAGE_EXIT_CODE,
    })
  }
  return id
}

/** The CSV file of a table; table names that are not plain file names are percent-encoded. */
export function csvFileFor(table: string): string {
  return `${CSV_DIR}/${encodeURIComponent(table).replaceAll('.', '%2E').replaceAll('*', '%2A')}.csv`
}

export interface BackupPaths {
  id: string
  directory: string
  archive: string
  sidecar: string
}

export function backupPaths(backupDir: string, id: string): BackupPaths {
  return {
    id,
    directory: join(backupDir, id),
    archive: join(backupDir, `${id}${ARCHIVE_SUFFIX}`),
    sidecar: join(backupDir, `${id}${SIDECAR_SUFFIX}`),
  }
}

/** The work-in-progress name of a backup: `<id>.tmp-<pid>-<random>`. */
export function stagingNameFor(id: string, pid = process.pid): string {
  return `${id}${TEMPORARY_MARKER}${pid}-${Math.random().toString(36).slice(2, 8)}`
}

/** The backup id a temporary name belongs to (`backup-….tmp-1-x`, `backup-….metadata.json.tmp-1-x`). */
export function idOfTemporaryName(name: string): string | undefined {
  const id = name.slice(0, name.indexOf(TEMPORARY_MARKER)).replace(/(\.tar\.gz\.enc|\.tar\.gz|\.metadata\.json)$/, '')
  return isBackupId(id) ? id : undefined
}
