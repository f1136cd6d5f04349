/**
 * How a migration's plan and result are shown: text for people, one versioned JSON shape for
 * scripts. Rendering returns strings; the script prints them.
 */
import { formatDuration } from '../format.ts'
import type { MigrationResult } from './migrate.ts'
import type { MigrationPlan, PlanProblem } from './plan.ts'

const number = (n: number) => n.toLocaleString('en')

/** The dry run as text: source, target, schema, tables with row counts, what is skipped, the problems. */
export function renderPlan(plan: MigrationPlan): string {
  const lines: string[] = []
  lines.push(`Source: ${plan.source.url} (PostgreSQL ${plan.source.serverVersion})`)
  const target = !plan.target.exists
    ? `${plan.target.path} (new file)`
    : plan.target.previousKeptAs
      ? `${plan.target.path} (exists: replaced, the current file kept as ${plan.target.previousKeptAs})`
      : `${plan.target.path} (exists)`
  lines.push(`Target: ${target}`)
  lines.push(
    plan.schema.mode === 'app'
      ? `Schema: the app's SQLite migrations (${plan.schema.migrations.join(', ')}): ${plan.schema.reason}`
      : `Schema: derived from the PostgreSQL catalog: ${plan.schema.reason}`,
  )
  lines.push('')
  const width = Math.max(5, ...plan.tables.map((t) => t.name.length))
  const rowsWidth = Math.max(4, ...plan.tables.map((t) => number(t.rows).length), number(plan.totalRows).length)
  lines.push(`  ${'table'.padEnd(width)}  ${'rows'.padStart(rowsWidth)}  schema    why`)
  for (const table of plan.tables) {
    lines.push(`  ${table.name.padEnd(width)}  ${number(table.rows).padStart(rowsWidth)}  ${table.schema.padEnd(8)}  ${table.reason}`)
  }
  lines.push(`  ${'total'.padEnd(width)}  ${number(plan.totalRows).padStart(rowsWidth)}  in ${plan.tables.length} table${plan.tables.length === 1 ? '' : 's'}`)
  for (const skipped of plan.skipped) lines.push(`  skipped: ${skipped.name}: ${skipped.reason}`)
  const notCarried = plan.tables.filter((t) => t.notCarried.length > 0)
  if (notCarried.length > 0) {
    lines.push('', 'Not carried to SQLite (the data is; these PostgreSQL rules are not):')
    for (const table of notCarried) lines.push(`  ${table.name}: ${table.notCarried.join(', ')}`)
  }
  if (plan.problems.length > 0) {
    lines.push('', `Problems (${plan.problems.length}): the migration cannot run until they are fixed`)
    for (const problem of plan.problems) {
      const where = problem.table ? `${problem.table}${problem.column ? `.${problem.column}` : ''}: ` : ''
      lines.push(`  ✗ ${where}${problem.message}`)
    }
  } else {
    lines.push('', 'No problems: every column can be converted and every value held.')
  }
  return `${lines.join('\n')}\n`
}

/** The outcome of a run: the verification table (both sides' counts and checksums) and a summary line. */
export function renderResult(result: MigrationResult): string {
  if (result.status === 'planned' || result.status === 'refused') return renderPlan(result.plan)
  const lines: string[] = []
  const width = Math.max(5, ...result.tables.map((t) => t.table.length))
  const rowsWidth = Math.max(11, ...result.tables.map((t) => number(t.sourceRows).length))
  lines.push(`  ${'table'.padEnd(width)}  ${'source rows'.padStart(rowsWidth)}  ${'target rows'.padStart(rowsWidth)}  checksum (SHA-256 of canonical rows)   time`)
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
    lines.push(`Verification failed for ${bad.join(', ')}: the copy differs from the source. Nothing was written; ${result.plan.target.path} is unchanged.`)
  } else {
    const seconds = result.durationMs / 1000
    lines.push(`Migrated ${number(rows)} rows in ${result.tables.length} tables into ${result.plan.target.path} in ${formatDuration(result.durationMs)} (${number(Math.round(rows / Math.max(seconds, 0.001)))} rows/s).`)
    lines.push(`Verification: ${identical}/${result.tables.length} tables identical (row counts and checksums).`)
    if (result.previous) lines.push(`The previous file is kept as ${result.previous}.`)
    if (result.plan.schema.mode === 'app') lines.push(`Use it: DATABASE_URL="file:${result.plan.target.path}" (npx prisma migrate status agrees it is up to date).`)
  }
  for (const leftover of result.removedLeftovers) lines.push(`Removed ${leftover}, left by an interrupted run.`)
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
  if (problems.some((p) => p.about === 'source')) hints.push('fix the source in PostgreSQL, or leave tables out with --tables')
  if (problems.some((p) => p.about === 'target')) hints.push('choose a writable --to path (--force replaces an existing file)')
  const text = `${hints.join('; ')}. --dry-run shows the plan again.`
  return text.charAt(0).toUpperCase() + text.slice(1)
}
