/** The human form of a restore drill, in French, from the same result object `--json` prints. */
import { formatDuration } from '../../format.ts'
import type { DrillCommandResult } from '../backup-system.ts'

const MARKS = { ok: '✓', failed: '✗', skipped: '–', warning: '⚠' } as const

const LABELS: Record<DrillCommandResult['checks'][number]['name'], string> = {
  restore: 'Restauration',
  integrity: 'Intégrité',
  'foreign-keys': 'Clés étrangères',
  amcheck: 'Index (amcheck)',
  'row-counts': 'Nombre de lignes',
  checksums: 'Empreintes de contenu',
  migrations: 'Migrations',
  queries: 'Requêtes de lecture',
}

const WHY = { asked: '', 'newest-not-drilled': ' (le plus récent pas encore testé)', newest: ' (le plus récent ; tous ont déjà été testés)' } as const

/**
 * @example process.stdout.write(renderDrill(await backup.drill()))
 */
export function renderDrill(result: DrillCommandResult): string {
  const lines = [`🧪 Exercice de restauration de ${result.id}${WHY[result.chosenBecause]}`, `   Base de test : ${result.scratch} (supprimée)`, '']
  for (const cleaned of result.cleaned) lines.push(`   restes d'un exercice interrompu supprimés : ${cleaned}`)
  for (const check of result.checks) lines.push(`${MARKS[check.status]} ${LABELS[check.name]} : ${check.detail}`)
  lines.push('')
  const rto = result.rtoMs === null ? 'non mesuré' : formatDuration(result.rtoMs)
  lines.push(result.ok ? `✅ Le backup se restaure : RTO mesuré ${rto} (exercice ${formatDuration(result.durationMs)})` : `❌ Exercice échoué (RTO ${rto}) : ce backup ne se restaure pas correctement`)
  for (const warning of result.alert.warnings) lines.push(`   ⚠ alertes : ${warning}`)
  const sent = result.alert.deliveries.filter((d) => d.outcome === 'sent')
  if (sent.length > 0) lines.push(`   Alerte ${result.ok ? 'de résolution ' : ''}envoyée (${sent.map((d) => d.channel).join(', ')})`)
  for (const failed of result.alert.deliveries.filter((d) => d.outcome === 'failed')) lines.push(`   ✗ alerte non envoyée (${failed.channel}) : ${failed.error}`)
  return lines.join('\n') + '\n'
}
