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
  const lines: string[] = [chalk.bold(`Santé des bases — ${report.startedAt}${report.readOnly ? ' (lecture seule)' : ''}`), '']

  const cells = report.engines.map((engine) => HEALTH_CHECKS.map((check) => cellFor(engine.checks.find((result) => result.check === check))))
  const firstWidth = Math.max(5, ...HEALTH_CHECKS.map((check) => CHECK_LABELS[check].length)) + 2
  const widths = report.engines.map((engine, i) => Math.max(engine.label.length, ...cells[i]!.map((c) => c.text.length)) + 3)
  if (report.engines.length > 0) {
    lines.push(chalk.dim('contrôle'.padEnd(firstWidth)) + report.engines.map((engine, i) => chalk.bold(engine.label.padEnd(widths[i]!))).join('').trimEnd())
    HEALTH_CHECKS.forEach((check, row) => {
      const line = CHECK_LABELS[check].padEnd(firstWidth) + report.engines.map((_, i) => {
        const c = cells[i]![row]!
        return paint[c.status](c.text) + ' '.repeat(widths[i]! - c.text.length)
      }).join('')
      lines.push(line.trimEnd())
    })
    lines.push('')
  } else {
    lines.push('Aucun moteur choisi.', '')
  }

  for (const engine of report.engines) {
    lines.push(paint[engine.status](`${SYMBOLS[engine.status]} ${summaryLine(engine)}`))
    lines.push(...explain(engine, chalk))
  }
  return `${lines.join('\n')}\n`
}

function cellFor(result: CheckResult | undefined): { status: CheckStatus; text: string } {
  if (result === undefined || result.status === 'skipped') return { status: 'skipped', text: `${SYMBOLS.skipped} non lancé` }
  return { status: result.status, text: `${SYMBOLS[result.status]} ${formatDuration(result.ms)}` }
}

/** The indented lines under an engine's summary: failures with their hint, skips grouped by reason, notes. */
function explain(engine: EngineResult, chalk: ChalkInstance): string[] {
  const lines: string[] = []
  const indent = '    '
  if (engine.reason !== undefined) {
    if (engine.hint) lines.push(`${indent}${chalk.dim('Essayez :')} ${engine.hint}`)
    return lines
  }
  for (const result of engine.checks.filter((check) => check.status === 'failed')) {
    lines.push(`${indent}${CHECK_LABELS[result.check]} : ${result.error ?? 'échec'}`)
    if (result.hint) lines.push(`${indent}${chalk.dim('Essayez :')} ${result.hint}`)
  }
  const skippedByReason = new Map<string, string[]>()
  for (const result of engine.checks.filter((check) => check.status === 'skipped')) {
    const reason = result.detail ?? 'non lancé'
    skippedByReason.set(reason, [...(skippedByReason.get(reason) ?? []), CHECK_LABELS[result.check]])
  }
  for (const [reason, checks] of skippedByReason) lines.push(`${indent}${checks.join(', ')} : ${reason}`)
  for (const note of engine.notes) lines.push(`${indent}${chalk.dim('Note :')} ${note}`)
  return lines
}
