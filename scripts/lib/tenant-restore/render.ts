/**
 * The human form of a tenant restore (`advanced-backup restore <id> --tenant …`), in French, from
 * the same result object `--json` prints; and the question asked before it writes.
 */
import type { TenantRestorePlan } from './plan.ts'
import type { RestoreTenantResult } from './restore.ts'

const count = (n: number) => n.toLocaleString('fr-FR')

function tenantLabel(plan: TenantRestorePlan): string {
  return `« ${plan.tenant.name ?? plan.tenant.id} » (${plan.tenant.id})`
}

/** Per table: rows to delete, to insert, unchanged (what a dry run shows, and the confirmation). */
export function renderTenantPlanTable(plan: TenantRestorePlan): string[] {
  const width = Math.max(5, ...plan.tables.map((t) => t.table.length))
  const lines = [`   ${'table'.padEnd(width)}  à supprimer  à insérer  inchangées`]
  for (const t of plan.tables) {
    lines.push(`   ${t.table.padEnd(width)}  ${count(t.toDelete).padStart(11)}  ${count(t.toInsert).padStart(9)}  ${count(t.unchanged).padStart(10)}`)
  }
  return lines
}

/**
 * @example process.stdout.write(renderTenantRestore(await backup.restoreTenant(id, { tenant: 'Cabinet Demo', dryRun: true })))
 */
export function renderTenantRestore(result: RestoreTenantResult): string {
  const plan = result.plan
  const lines = [
    `${result.dryRun ? '🔎 Simulation de restauration du cabinet' : '♻️  Restauration du cabinet'} ${tenantLabel(plan)} depuis ${plan.backupId}`,
    `   Cible : ${plan.target}`,
    `   Tables du cabinet : ${plan.ownedTables.join(', ')} ; tables partagées, non touchées : ${plan.sharedTables.join(', ') || 'aucune'}`,
    plan.backupRead.path === 'sections'
      ? `   Lu dans la sauvegarde : les seules sections du cabinet (${count(plan.backupRead.bytes)} octets, chacune vérifiée par son SHA-256)`
      : `   Lu dans la sauvegarde : data.json entier, après vérification de toute la sauvegarde (${plan.backupRead.reason})`,
    '',
    ...renderTenantPlanTable(plan),
  ]
  for (const warning of plan.warnings) lines.push(`   ⚠ ${warning}`)
  if (plan.conflicts.length > 0) {
    lines.push('', `❌ ${plan.conflicts.length} conflit${plan.conflicts.length > 1 ? 's' : ''} : la restauration serait refusée avant toute écriture`)
    for (const conflict of plan.conflicts) lines.push(`   ✗ ${conflict.message}`)
  }
  lines.push('')
  if (result.dryRun) {
    lines.push(plan.conflicts.length === 0 ? '✅ Simulation terminée : rien n\'a été écrit ; la restauration réussirait.' : 'Simulation terminée : rien n\'a été écrit.')
  } else {
    lines.push(`✅ Cabinet restauré : ${count(result.deleted)} ligne(s) supprimée(s), ${count(result.inserted)} insérée(s) ; les autres cabinets n'ont pas été touchés.`)
    if (result.safetyExport) {
      lines.push(`   Export de sécurité (lignes d'avant la restauration) : ${result.safetyExport.path}`)
      lines.push(`   SHA-256 ${result.safetyExport.sha256}, ${count(result.safetyExport.rows)} ligne(s)`)
    }
    if (result.after) lines.push(`   Empreinte du cabinet restauré : ${result.after.checksum.slice(0, 23)}… = celle de la sauvegarde`)
  }
  return lines.join('\n') + '\n'
}

/** The question asked on a terminal before a tenant restore writes. */
export function tenantConfirmationQuestion(plan: TenantRestorePlan): string {
  const deletes = plan.tables.reduce((n, t) => n + t.toDelete, 0)
  const inserts = plan.tables.reduce((n, t) => n + t.toInsert, 0)
  return [
    `Remplacer les lignes du cabinet ${tenantLabel(plan)} dans ${plan.target} par celles de ${plan.backupId} ?`,
    ...renderTenantPlanTable(plan),
    `   (${count(deletes)} ligne(s) supprimée(s), ${count(inserts)} insérée(s) ; un export de sécurité est écrit avant)`,
  ].join('\n')
}
