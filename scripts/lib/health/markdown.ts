/** RESULTATS_TESTS_DATABASES.md: the test report as readable Markdown, rendered from the report object. */
import { formatDuration } from '../format.ts'
import { CHECK_LABELS, HEALTH_CHECKS, summaryLine, tallyChecks, type CheckResult } from './results.ts'
import type { HealthReport } from './results.ts'

const SYMBOLS = { passed: '✓', failed: '✗', skipped: '–' } as const

/**
 * @example writeFileAtomic('RESULTATS_TESTS_DATABASES.md', renderHealthMarkdown(report))
 */
export function renderHealthMarkdown(report: HealthReport): string {
  const { summary } = report
  const lines: string[] = [
    '# Résultats des tests des bases — IA Poste Manager',
    '',
    'Écrit par `npx tsx scripts/test-all-databases.ts` ; les mêmes résultats en JSON sont dans le fichier `.json` à côté de celui-ci.',
    '',
    '| | |',
    '| --- | --- |',
    `| Date | ${report.startedAt} |`,
    `| Durée | ${formatDuration(report.durationMs)} |`,
    `| Résultat | ${summary.ok ? `✓ aucun échec (${summary.passed} réussi(s), ${summary.skipped} non lancé(s))` : `✗ ${summary.failed} échec(s) (${summary.passed} réussi(s), ${summary.skipped} non lancé(s))`} |`,
    `| Outil | ${cell(report.versions.tool)} |`,
    `| Node.js | ${cell(report.versions.node)} |`,
    `| Prisma | ${cell(report.versions.prisma)} |`,
  ]
  if (report.readOnly) lines.push('| Mode | lecture seule : les contrôles d’écriture et d’annulation n’ont pas été lancés |')
  lines.push('', '## Résumé', '', ...report.engines.map((engine) => `- ${summaryLine(engine)}`))

  lines.push('', '## Moteurs', '', '| Moteur | Base | Origine | Serveur | Résultat |', '| --- | --- | --- | --- | --- |')
  for (const engine of report.engines) {
    const tally = tallyChecks(engine.checks)
    const result = engine.status === 'skipped' && tally.passed === 0 ? 'non lancé' : `${SYMBOLS[engine.status]} ${tally.passed}/${tally.total}`
    lines.push(`| ${engine.label} | ${engine.target === undefined ? '—' : `\`${cell(engine.target)}\``} | ${cell(engine.source ?? '—')} | ${cell(engine.serverVersion ?? '—')} | ${result} |`)
  }

  lines.push('', '## Résultats', '', `| Contrôle | ${report.engines.map((engine) => engine.label).join(' | ')} |`, `| --- |${' --- |'.repeat(report.engines.length)}`)
  for (const check of HEALTH_CHECKS) {
    const cells = report.engines.map((engine) => resultCell(engine.checks.find((result) => result.check === check)))
    lines.push(`| ${CHECK_LABELS[check]} | ${cells.join(' | ')} |`)
  }

  lines.push('', '## Détails')
  for (const engine of report.engines) {
    lines.push('', `### ${engine.label}`, '')
    if (engine.reason !== undefined) lines.push(`Non lancé : ${engine.reason}.`, ...(engine.hint ? ['', `Essayez : ${engine.hint}`] : []))
    else lines.push(...engine.checks.map(detailLine))
    for (const note of engine.notes) lines.push('', `Note : ${note}.`)
  }
  lines.push('')
  return lines.join('\n')
}

function resultCell(result: CheckResult | undefined): string {
  if (result === undefined || result.status === 'skipped') return 'non lancé'
  return `${SYMBOLS[result.status]} ${formatDuration(result.ms)}`
}

function detailLine(result: CheckResult): string {
  const time = result.status === 'skipped' ? '' : ` (${formatDuration(result.ms)})`
  const text = result.status === 'failed' ? result.error : result.detail
  const line = `- ${SYMBOLS[result.status]} **${CHECK_LABELS[result.check]}**${time}${text ? ` : ${inline(text)}` : ''}`
  return result.hint ? `${line}  \n  Essayez : ${inline(result.hint)}` : line
}

// Table cells cannot hold a pipe or a line break.
function cell(text: string): string {
  return inline(text).replaceAll('|', '\\|')
}

function inline(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}
