/**
 * How a migration's plan and result are shown: text for people, one versioned JSON shape for
 * scripts. Rendering returns strings; the script prints them.
 */
import { formatDuration } from '../format.ts'
import type { MigrationResult } from './migrate.ts'
import type { MigrationPlan, PlanProblem } from './plan.ts'

const number = (n: number) => n.toLocaleString('fr-FR')

/** The dry run as text: source, target, schema, tables with row counts, what is skipped, the problems. */
export function renderPlan(plan: MigrationPlan): string {
  const lines: string[] = []
  lines.push(`Source : ${plan.source.url} (PostgreSQL ${plan.source.serverVersion})`)
  const target = !plan.target.exists
    ? `${plan.target.path} (nouveau fichier)`
    : plan.target.previousKeptAs
      ? `${plan.target.path} (existe : remplacé, le fichier actuel gardé sous ${plan.target.previousKeptAs})`
      : `${plan.target.path} (existe)`
  lines.push(`Cible : ${target}`)
  lines.push(
    plan.schema.mode === 'app'
      ? `Schéma : les migrations SQLite de l’application (${plan.schema.migrations.join(', ')}) : ${plan.schema.reason}`
      : `Schéma : déduit du catalogue PostgreSQL : ${plan.schema.reason}`,
  )
  lines.push('')
  const width = Math.max(5, ...plan.tables.map((t) => t.name.length))
  const rowsWidth = Math.max(6, ...plan.tables.map((t) => number(t.rows).length), number(plan.totalRows).length)
  lines.push(`  ${'table'.padEnd(width)}  ${'lignes'.padStart(rowsWidth)}  schéma    pourquoi`)
  for (const table of plan.tables) {
    lines.push(`  ${table.name.padEnd(width)}  ${number(table.rows).padStart(rowsWidth)}  ${table.schema.padEnd(8)}  ${table.reason}`)
  }
  lines.push(`  ${'total'.padEnd(width)}  ${number(plan.totalRows).padStart(rowsWidth)}  dans ${plan.tables.length} table${plan.tables.length === 1 ? '' : 's'}`)
  for (const skipped of plan.skipped) lines.push(`  laissée de côté : ${skipped.name} : ${skipped.reason}`)
  const notCarried = plan.tables.filter((t) => t.notCarried.length > 0)
  if (notCarried.length > 0) {
    lines.push('', 'Non reporté dans SQLite (les données le sont ; ces règles PostgreSQL non) :')
    for (const table of notCarried) lines.push(`  ${table.name} : ${table.notCarried.join(', ')}`)
  }
  if (plan.problems.length > 0) {
    lines.push('', `Problèmes (${plan.problems.length}) : la migration ne peut pas se faire tant qu’ils ne sont pas corrigés`)
    for (const problem of plan.problems) {
      const where = problem.table ? `${problem.table}${problem.column ? `.${problem.column}` : ''} : ` : ''
      lines.push(`  ✗ ${where}${problem.message}`)
    }
  } else {
    lines.push('', 'Aucun problème : chaque colonne peut être convertie et chaque valeur conservée.')
  }
  return `${lines.join('\n')}\n`
}

/** The outcome of a run: the verification table (both sides' counts and checksums) and a summary line. */
export function renderResult(result: MigrationResult): string {
  if (result.status === 'planned' || result.status === 'refused') return renderPlan(result.plan)
  const lines: string[] = []
  const width = Math.max(5, ...result.tables.map((t) => t.table.length))
  const rowsWidth = Math.max(14, ...result.tables.map((t) => number(t.sourceRows).length))
  lines.push(`  ${'table'.padEnd(width)}  ${'lignes source'.padStart(rowsWidth)}  ${'lignes cible'.padStart(rowsWidth)}  empreinte (SHA-256 des lignes)        durée`)
  for (const table of result.tables) {
    const sum = (s: string) => s.replace(/^sha256:/, '').slice(0, 12)
    const checksum = table.ok ? `${sum(table.sourceChecksum)} = ${sum(table.targetChecksum)} ✓` : `${sum(table.sourceChecksum)} ≠ ${sum(table.targetChecksum)} ✗`
    lines.push(`  ${table.table.padEnd(width)}  ${number(table.sourceRows).padStart(rowsWidth)}  ${number(table.targetRows).padStart(rowsWidth)}  ${checksum.padEnd(36)}  ${formatDuration(table.ms)}`)
  }
  const rows = result.tables.reduce((sum, t) => sum + t.targetRows, 0)
  const identical = result.tables.filter((t) => t.ok).length
  lines.push('')
  if (result.status === 'mismatch') {
    const bad = result.tables.filter((t) => !t.ok).map((t) => t.table)
    lines.push(`Vérification échouée pour ${bad.join(', ')} : la copie diffère de la source. Rien n’a été écrit ; ${result.plan.target.path} est inchangé.`)
  } else {
    const seconds = result.durationMs / 1000
    lines.push(`${number(rows)} lignes de ${result.tables.length} tables migrées dans ${result.plan.target.path} en ${formatDuration(result.durationMs)} (${number(Math.round(rows / Math.max(seconds, 0.001)))} lignes/s).`)
    lines.push(`Vérification : ${identical}/${result.tables.length} tables identiques (nombres de lignes et empreintes).`)
    if (result.previous) lines.push(`Le fichier précédent est gardé sous ${result.previous}.`)
    if (result.plan.schema.mode === 'app') lines.push(`Pour l’utiliser : DATABASE_URL="file:${result.plan.target.path}" (npx prisma migrate status le confirme à jour).`)
  }
  for (const leftover of result.removedLeftovers) lines.push(`${leftover} supprimé, laissé par une exécution interrompue.`)
  return `${lines.join('\n')}\n`
}

/** The JSON printed by `--json`: the result with a format version. */
export interface MigrationReportJson extends MigrationResult {
  version: 1
}

export function migrationReportJson(result: MigrationResult): MigrationReportJson {
  return { version: 1, ...result, durationMs: Math.round(result.durationMs), tables: result.tables.map((t) => ({ ...t, ms: Math.round(t.ms) })) }
}

/** What to do about a refused plan, by what its problems are about. */
export function refusalHint(problems: readonly PlanProblem[]): string {
  const hints: string[] = []
  if (problems.some((p) => p.about === 'source')) hints.push('corrigez la source dans PostgreSQL, ou laissez des tables de côté avec --tables')
  if (problems.some((p) => p.about === 'target')) hints.push('choisissez un chemin --to inscriptible (--force remplace un fichier existant)')
  const text = `${hints.join(' ; ')}. --dry-run remontre le plan.`
  return text.charAt(0).toUpperCase() + text.slice(1)
}
