/**
 * Restores one tenant: its rows in the live database become exactly its rows in the backup, and
 * nothing else changes.
 *
 * Invariant: the live database holds the tenant's old rows or its new rows, never a mix — every
 * delete and insert runs in ONE transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL with the tenant's
 * root row locked, D1 one batch), committed only after the safety export of the rows it replaces is
 * durably on disk. Every refusal (conflicts, missing shared rows, schema) happens before it starts.
 */
import { quoteIdentifier, type SqlValue } from '../db/connection.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { ownershipCondition } from './graph.ts'
import { prepareTenantRestore, readTenantRows, tenantChecksumOf, type PlanTenantRestoreOptions, type TenantRestorePlan } from './plan.ts'
import type { TenantChecksum } from './rows.ts'
import { writeSafetyExport, type SafetyExport } from './safety-export.ts'
import { engineNamed } from '../engines/index.ts'

/** The steps restoreTenant announces through `onStep`, in order (crash tests kill the process at one of them). */
export const TENANT_RESTORE_STEPS = [
  /** Planned and checked; nothing written. */
  'tenant-restore:planned',
  /** The transaction is open (and the tenant locked); nothing written. */
  'tenant-restore:locked',
  /** The safety export is on disk; the database not yet changed. */
  'tenant-restore:after-safety-export',
  /** Inside the transaction: the tenant's rows deleted, the backup's not yet inserted. */
  'tenant-restore:after-delete',
  /** Inside the transaction: everything written, not yet committed. */
  'tenant-restore:before-commit',
  /** Committed; not yet checked. */
  'tenant-restore:after-commit',
] as const

export type TenantRestoreStep = (typeof TENANT_RESTORE_STEPS)[number]

export interface RestoreTenantOptions extends PlanTenantRestoreOptions {
  /** Return the plan (per table: rows to delete, to insert, unchanged) and write nothing. */
  dryRun?: boolean
  now?: () => Date
  /** Folder of the safety export. Default: the backup folder. */
  safetyDir?: string
  onStep?: (step: TenantRestoreStep) => void | Promise<void>
  /**
   * Asked once the plan is known and found conflict-free, before anything is written; `false`
   * cancels (nothing changed). Absent: no question (the caller already has the consent).
   */
  confirm?: (plan: TenantRestorePlan) => Promise<boolean>
}

export interface RestoreTenantResult {
  plan: TenantRestorePlan
  dryRun: boolean
  /** The tenant's rows as they were just before the restore (absent in a dry run). */
  safetyExport?: SafetyExport
  deleted: number
  inserted: number
  /** The tenant as the live database holds it after the restore: equal to `plan.backupChecksum`. */
  after?: TenantChecksum
}

/**
 * @example
 * const result = await restoreTenant({ backup: { backupDir: 'backups', id: 'backup-2026-01-21T15-30-00' }, target: db, tenant: 'Cabinet Demo' })
 * console.log(result.safetyExport?.path, result.plan.tables)
 */
export async function restoreTenant(options: RestoreTenantOptions): Promise<RestoreTenantResult> {
  const now = options.now ?? (() => new Date())
  const step = options.onStep ?? (() => {})
  const session = await engineNamed(options.target.engine).openTenantSession(options.target)
  try {
    const { plan, graph, backupRows } = await prepareTenantRestore(options, session)
    if (options.dryRun) return { plan, dryRun: true, deleted: 0, inserted: 0 }
    const label = `« ${plan.tenant.name ?? plan.tenant.id} »`
    if (plan.conflicts.length > 0) {
      throw new ToolkitError(`restauration du cabinet ${label} refusée avant toute écriture (${plan.conflicts.length} problème${plan.conflicts.length > 1 ? 's' : ''}) :\n${plan.conflicts.map((c) => `  - ${c.message}`).join('\n')}`, {
        hint: 'Réglez ces conflits dans la base cible (ou recréez les lignes partagées manquantes), puis relancez ; --dry-run les liste sans rien écrire.',
      })
    }
    if (options.confirm !== undefined && !(await options.confirm(plan))) {
      throw new ToolkitError(`restauration du cabinet ${label} annulée : rien n'a changé`)
    }
    await step('tenant-restore:planned')
    const tenantId = plan.tenant.id
    const root = graph.root
    let safetyExport: SafetyExport
    let deleted = 0
    let inserted = 0
    await session.begin({ table: root.table.name, where: ownershipCondition(graph, root), params: [tenantId] })
    try {
      await step('tenant-restore:locked')
      // Read again under the lock: the export holds exactly what the deletes below remove.
      const current = []
      for (const entry of graph.owned) current.push(await readTenantRows(session, options.target, graph, entry, tenantId))
      safetyExport = writeSafetyExport({
        dir: options.safetyDir ?? options.backup.backupDir,
        now: now(),
        backupId: plan.backupId,
        target: plan.target,
        tenant: plan.tenant,
        tables: current,
        checksum: tenantChecksumOf(tenantId, current),
      })
      await step('tenant-restore:after-safety-export')
      for (const entry of [...graph.owned].reverse()) {
        await session.execute(`DELETE FROM ${quoteIdentifier(entry.table.name)} WHERE ${ownershipCondition(graph, entry)}`, [tenantId])
      }
      deleted = current.reduce((n, t) => n + t.rows.size, 0)
      await step('tenant-restore:after-delete')
      for (const entry of graph.owned) {
        const table = backupRows.get(entry.table.name)!
        const columns = entry.table.columns
        const head = `INSERT INTO ${quoteIdentifier(entry.table.name)} (${columns.map((c) => quoteIdentifier(c.name)).join(', ')}) VALUES `
        const tuple = `(${columns.map(() => '?').join(', ')})`
        const perStatement = Math.max(1, Math.floor(session.maxParameters / columns.length))
        const rows = [...table.rows.values()]
        for (let start = 0; start < rows.length; start += perStatement) {
          const batch = rows.slice(start, start + perStatement)
          const params: SqlValue[] = []
          for (const row of batch) {
            row.forEach((value, i) => params.push(value === null ? null : session.bindValue(table.kinds[i]!, value, columns[i]!.declaredType)))
          }
          await session.execute(head + batch.map(() => tuple).join(', '), params)
        }
        inserted += rows.length
        options.onProgress?.({ label: `restauration du cabinet : ${entry.table.name}`, done: rows.length, total: rows.length, unit: 'rows' })
      }
      await step('tenant-restore:before-commit')
      await session.commit()
    } catch (error) {
      await session.rollback().catch(() => {})
      if (error instanceof ToolkitError) throw error
      throw new ToolkitError(`restauration du cabinet ${label} annulée, la base n'a pas changé : ${describeError(error)}`, {
        cause: error,
        hint: 'Relancez avec --dry-run pour voir le plan et les conflits ; une autre écriture a pu arriver entre le plan et la transaction.',
      })
    }
    await step('tenant-restore:after-commit')
    const afterTables = []
    for (const entry of graph.owned) afterTables.push(await readTenantRows(session, options.target, graph, entry, tenantId))
    const after = tenantChecksumOf(tenantId, afterTables)
    if (after.checksum !== plan.backupChecksum.checksum) {
      const differing = Object.keys(after.tables).filter((t) => after.tables[t]!.checksum !== plan.backupChecksum.tables[t]?.checksum)
      throw new ToolkitError(`le cabinet ${label} restauré ne correspond pas à la sauvegarde (tables : ${differing.join(', ')})`, {
        hint: `Les lignes d'avant la restauration sont dans ${safetyExport.path}.`,
      })
    }
    return { plan, dryRun: false, safetyExport, deleted, inserted, after }
  } finally {
    await session.close()
  }
}
