/** The health report as terminal text: a check × engine table, then one summary line per engine with what failed and why. */
import { Chalk, type ChalkInstance } from 'chalk'
import { formatDuration } from '../format.ts'
import { CHECK_LABELS, HEALTH_CHECKS, summaryLine, type CheckResult, type CheckStatus, type EngineResult } from './results.ts'
import type { HealthReport } from './results.ts'

export interface RenderHealthTextOptions {
  /** Colours; none by default. */
  chalk?: ChalkInstance
}

const SYMBOLS: Record<CheckStatus, string> = { passed: '✓', failed: '✗', skipped: '–' }

/**
 * @example console.log(renderHealthText(report, { chalk }))
 */
export function renderHealthText(report: HealthReport, options: RenderHealthTextOptions = {}): string {
  const chalk = options.chalk ?? new Chalk({ level: 0 })
  const paint: Record<CheckStatus, (text: string) => string> = { passed: chalk.green, failed: chalk.red, skipped: chalk.yellow }
  const lines: string[] = [chalk.bold(`Database health — ${report.startedAt}${report.readOnly ? ' (read-only)' : ''}`), '']

  const cells = report.engines.map((engine) => HEALTH_CHECKS.map((check) => cellFor(engine.checks.find((result) => result.check === check))))
  const firstWidth = Math.max(5, ...HEALTH_CHECKS.map((check) => CHECK_LABELS[check].length)) + 2
  const widths = report.engines.map((engine, i) => Math.max(engine.label.length, ...cells[i]!.map((c) => c.text.length)) + 3)
  if (report.engines.length > 0) {
    lines.push(chalk.dim('check'.padEnd(firstWidth)) + report.engines.map((engine, i) => chalk.bold(engine.label.padEnd(widths[i]!))).join('').trimEnd())
    HEALTH_CHECKS.forEach((check, row) => {
      const line = CHECK_LABELS[check].padEnd(firstWidth) + report.engines.map((_, i) => {
        const c = cells[i]![row]!
        return paint[c.status](c.text) + ' '.repeat(widths[i]! - c.text.length)
      }).join('')
      lines.push(line.trimEnd())
    })
    lines.push('')
  } else {
    lines.push('No engine selected.', '')
  }

  for (const engine of report.engines) {
    lines.push(paint[engine.status](`${SYMBOLS[engine.status]} ${summaryLine(engine)}`))
    lines.push(...explain(engine, chalk))
  }
  return `${lines.join('\n')}\n`
}

function cellFor(result: CheckResult | undefined): { status: CheckStatus; text: string } {
  if (result === undefined || result.status === 'skipped') return { status: 'skipped', text: `${SYMBOLS.skipped} skipped` }
  return { status: result.status, text: `${SYMBOLS[result.status]} ${formatDuration(result.ms)}` }
}

/** The indented lines under an engine's summary: failures with their hint, skips grouped by reason, notes. */
function explain(engine: EngineResult, chalk: ChalkInstance): string[] {
  const lines: string[] = []
  const indent = '    '
  if (engine.reason !== undefined) {
    if (engine.hint) lines.push(`${indent}${chalk.dim('Try:')} ${engine.hint}`)
    return lines
  }
  for (const result of engine.checks.filter((check) => check.status === 'failed')) {
    lines.push(`${indent}${CHECK_LABELS[result.check]}: ${result.error ?? 'failed'}`)
    if (result.hint) lines.push(`${indent}${chalk.dim('Try:')} ${result.hint}`)
  }
  const skippedByReason = new Map<string, string[]>()
  for (const result of engine.checks.filter((check) => check.status === 'skipped')) {
    const reason = result.detail ?? 'not run'
    skippedByReason.set(reason, [...(skippedByReason.get(reason) ?? []), CHECK_LABELS[result.check]])
  }
  for (const [reason, checks] of skippedByReason) lines.push(`${indent}skipped ${checks.join(', ')}: ${reason}`)
  for (const note of engine.notes) lines.push(`${indent}${chalk.dim('Note:')} ${note}`)
  return lines
}
