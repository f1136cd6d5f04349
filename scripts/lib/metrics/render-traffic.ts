/** The terminal text (French) of the app's real traffic and of the index advice proved on it. */
import type { AppTrafficReport } from './app-traffic.ts'
import type { AppliedRecommendation } from './index-advice.ts'

const ms = (value: number) => `${value >= 100 ? Math.round(value) : value.toFixed(2)}ms`

/** @example process.stdout.write(renderAppTraffic(await analyzeAppTraffic(options))) */
export function renderAppTraffic(report: AppTrafficReport): string {
  const lines = [`REQUÊTES DE L'APPLICATION (source: ${report.source}, fenêtre de ${Math.round((report.window.endedAt - report.window.startedAt) / 1000)} s):`]
  if (report.notice !== undefined) lines.push(`  ${report.notice}`)
  else if (report.statements.length === 0) lines.push('  Aucune exécution dans cette fenêtre.')
  report.statements.slice(0, 10).forEach((s, i) => {
    lines.push(`  ${i + 1}. ${ms(s.totalMs)} au total - ${s.calls} exécution${s.calls > 1 ? 's' : ''}, moyenne ${ms(s.meanMs)}${s.rows === undefined ? '' : `, ${s.rows} lignes`}`)
    lines.push(`     ${s.display}`)
  })
  lines.push('', 'INDEX PROUVÉS PAR LA MESURE:')
  if (report.advice.recommendations.length === 0) lines.push('  Aucun: aucun index mesuré ne fait gagner assez sur les requêtes observées.')
  for (const r of report.advice.recommendations) {
    lines.push(`  [${r.id}] ${r.message}`)
    lines.push(`     plan avant: ${r.evidence.before.plan.map((l) => l.trim()).join(' / ')}`)
    lines.push(`     plan après: ${r.evidence.after.plan.map((l) => l.trim()).join(' / ')}`)
  }
  for (const finding of report.advice.findings) lines.push(`  ${finding.message}`)
  return `${lines.join('\n')}\n`
}

export function renderApplied(applied: AppliedRecommendation): string {
  return (
    `Index créé: ${applied.statement}\n` +
    `  mesuré sur la base: ${ms(applied.before.medianMs)} → ${ms(applied.after.medianMs)} (gain ${Math.round(applied.gain * 100)} %, prévu ${Math.round(applied.predictedGain * 100)} %)\n`
  )
}
