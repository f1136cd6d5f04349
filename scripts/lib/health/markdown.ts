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
    '# Database test results — IA Poste Manager',
    '',
    'Written by `npx tsx scripts/test-all-databases.ts`; the same results as JSON are in the `.json` file beside this one.',
    '',
    '| | |',
    '| --- | --- |',
    `| Date | ${report.startedAt} |`,
    `| Duration | ${formatDuration(report.durationMs)} |`,
    `| Result | ${summary.ok ? `✓ no failure (${summary.passed} passed, ${summary.skipped} skipped)` : `✗ ${summary.failed} failed (${summary.passed} passed, ${summary.skipped} skipped)`} |`,
    `| Toolkit | ${cell(report.versions.tool)} |`,
    `| Node.js | ${cell(report.versions.node)} |`,
    `| Prisma | ${cell(report.versions.prisma)} |`,
  ]
  if (report.readOnly) lines.push('| Mode | read-only: the write and rollback checks were not run |')
  lines.push('', '## Summary', '', ...report.engines.map((engine) => `- ${summaryLine(engine)}`))

  lines.push('', '## Engines', '', '| Engine | Database | From | Server | Result |', '| --- | --- | --- | --- | --- |')
  for (const engine of report.engines) {
    const tally = tallyChecks(engine.checks)
    const result = engine.status === 'skipped' && tally.passed === 0 ? 'skipped' : `${SYMBOLS[engine.status]} ${tally.passed}/${tally.total}`
    lines.push(`| ${engine.label} | ${engine.target === undefined ? '—' : `\`${cell(engine.target)}\``} | ${cell(engine.source ?? '—')} | ${cell(engine.serverVersion ?? '—')} | ${result} |`)
  }

  lines.push('', '## Results', '', `| Check | ${report.engines.map((engine) => engine.label).join(' | ')} |`, `| --- |${' --- |'.repeat(report.engines.length)}`)
  for (const check of HEALTH_CHECKS) {
    const cells = report.engines.map((engine) => resultCell(engine.checks.find((result) => result.check === check)))
    lines.push(`| ${CHECK_LABELS[check]} | ${cells.join(' | ')} |`)
  }

  lines.push('', '## Details')
  for (const engine of report.engines) {
    lines.push('', `### ${engine.label}`, '')
    if (engine.reason !== undefined) lines.push(`Skipped: ${engine.reason}.`, ...(engine.hint ? ['', `Try: ${engine.hint}`] : []))
    else lines.push(...engine.checks.map(detailLine))
    for (const note of engine.notes) lines.push('', `Note: ${note}.`)
  }
  lines.push('')
  return lines.join('\n')
}

function resultCell(result: CheckResult | undefined): string {
  if (result === undefined || result.status === 'skipped') return 'skipped'
  return `${SYMBOLS[result.status]} ${formatDuration(result.ms)}`
}

function detailLine(result: CheckResult): string {
  const time = result.status === 'skipped' ? '' : ` (${formatDuration(result.ms)})`
  const text = result.status === 'failed' ? result.error : result.detail
  const line = `- ${SYMBOLS[result.status]} **${CHECK_LABELS[result.check]}**${time}${text ? `: ${inline(text)}` : ''}`
  return result.hint ? `${line}  \n  Try: ${inline(result.hint)}` : line
}

// Table cells cannot hold a pipe or a line break.
function cell(text: string): string {
  return inline(text).replaceAll('|', '\\|')
}

function inline(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}
