/**
 * The human form of a restore: the spec's five steps, numbered, in French, from the same result
 * object `--json` prints.
 */
import { formatDuration } from '../../format.ts'
import type { RestorePlan, RestoreResult } from './steps.ts'

const LABELS: Record<RestoreResult['steps'][number]['name'], string> = {
  verify: "Vérification d'intégrité (SHA-256)",
  'safety-copy': 'Backup de sécurité',
  replace: 'Restauration',
  check: 'Test de connexion',
  report: 'Confirmation',
}

const MARKS = { ok: '✓', skipped: '–', failed: '✗' } as const

/**
 * @example process.stdout.write(renderRestore(await backup.restore(id, { yes: true })))
 */
export function renderRestore(result: RestoreResult): string {
  const lines = [
    `${result.dryRun ? '🔎 Simulation de restauration' : '♻️  Restauration'} de ${result.id}${result.chain.length > 1 ? ` (chaîne: ${result.chain.join(' → ')})` : ''}`,
    `   Cible: ${result.target}`,
    '',
  ]
  for (const step of result.steps) {
    lines.push(`${step.step}. ${LABELS[step.name]} ${MARKS[step.status]} ${step.detail}${step.durationMs > 0 ? ` (${formatDuration(step.durationMs)})` : ''}`)
  }
  lines.push('')
  if (result.dryRun) lines.push(`✅ Simulation réussie: rien n'a été modifié (${formatDuration(result.durationMs)})`)
  else {
    lines.push(`✅ Base restaurée depuis ${result.id} (${formatDuration(result.durationMs)})`)
    if (result.safetyCopy) lines.push(`   Ancienne base conservée: ${result.safetyCopy}`)
  }
  for (const warning of result.warnings) lines.push(`   ⚠ ${warning}`)
  return `${lines.join('\n')}\n`
}

/** The question asked on a terminal before step 2. */
export function confirmationQuestion(plan: RestorePlan): string {
  const rows = plan.tables.reduce((n, t) => n + t.rows, 0)
  return `Remplacer ${plan.target} par ${plan.id} (${plan.timestamp}, ${plan.tables.length} tables, ${rows.toLocaleString('fr-FR')} lignes)${plan.safetyCopy ? `? L'actuelle sera gardée dans ${plan.safetyCopy}` : ''}?`
}
