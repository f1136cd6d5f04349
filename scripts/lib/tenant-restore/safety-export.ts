/**
 * The safety export: the tenant's rows as the live database holds them just before a restore
 * replaces them, as one JSON file written atomically (temporary name, fsync, rename, fsync the
 * folder) beside the backups, with its SHA-256 in a `sha256sum -c` file beside it.
 *
 *   { "formatVersion": 1, "kind": "tenant-safety-export", "createdAt", "backupId", "target",
 *     "tenant": { "id", "name" }, "checksum": { …TenantChecksum },
 *     "tables": { "<table>": { "columns": [names], "kinds": [kinds], "rows": [[canonical values]] } } }
 *
 * Values are in canonical form (canonical.ts): the same text whatever the engine.
 */
import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { basename, join } from 'node:path'
import { writeFileAtomic } from '../fs/atomic.ts'
import type { CanonicalTable, TenantChecksum } from './rows.ts'

export const SAFETY_EXPORT_FORMAT_VERSION = 1

export interface SafetyExport {
  path: string
  sha256: string
  bytes: number
  rows: number
}

/** `tenant-tenant-demo-2026-01-21T15-30-00Z.before-restore.json` */
export function safetyExportName(tenantId: string, at: Date): string {
  const safeId = tenantId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80)
  return `tenant-${safeId}-${at.toISOString().slice(0, 19).replaceAll(':', '-')}Z.before-restore.json`
}

export function writeSafetyExport(options: {
  dir: string
  now: Date
  backupId: string
  target: string
  tenant: { id: string; name: string | null }
  tables: readonly CanonicalTable[]
  checksum: TenantChecksum
}): SafetyExport {
  mkdirSync(options.dir, { recursive: true })
  const path = join(options.dir, safetyExportName(options.tenant.id, options.now))
  const tables = Object.fromEntries(options.tables.map((t) => [t.name, { columns: t.columns, kinds: t.kinds, rows: [...t.rows.values()] }]))
  const text =
    JSON.stringify(
      { formatVersion: SAFETY_EXPORT_FORMAT_VERSION, kind: 'tenant-safety-export', createdAt: options.now.toISOString(), backupId: options.backupId, target: options.target, tenant: options.tenant, checksum: options.checksum, tables },
      null,
      1,
    ) + '\n'
  const bytes = Buffer.from(text, 'utf8')
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  writeFileAtomic(path, bytes)
  writeFileAtomic(`${path}.sha256`, `${sha256}  ${basename(path)}\n`)
  return { path, sha256, bytes: bytes.length, rows: options.tables.reduce((n, t) => n + t.rows.size, 0) }
}
