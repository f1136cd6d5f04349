/**
 * Progress of long work. The library reports `ProgressEvent`s through an `onProgress` option and
 * never draws; scripts turn them into bars on a terminal with `terminalProgress`, and into nothing
 * when stderr is not a TTY or the user asked for quiet.
 */
import { createRequire } from 'node:module'
import type { MultiBar, SingleBar } from 'cli-progress'
import { formatBytes } from './format.ts'

export interface ProgressEvent {
  /** What is progressing: a table name, a file, a test. */
  label: string
  done: number
  /** Unknown when the end cannot be known in advance. */
  total?: number
  unit: 'rows' | 'bytes' | 'steps'
}

export type ProgressListener = (event: ProgressEvent) => void

export interface TerminalProgress {
  onProgress: ProgressListener
  /** Removes the bars; call before printing the result. */
  stop(): void
}

/** One bar per label on a TTY; a no-op elsewhere. */
export function terminalProgress(options: { stream?: NodeJS.WriteStream; enabled?: boolean } = {}): TerminalProgress {
  const stream = options.stream ?? process.stderr
  if (!(options.enabled ?? true) || !stream.isTTY) return { onProgress: () => {}, stop: () => {} }
  // Loaded for a terminal only: its CommonJS files cost every start (pipes, --json, cron) otherwise.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress')
  const bars: MultiBar = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: true,
      hideCursor: true,
      format: ' {label} |{bar}| {amount}',
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  )
  const byLabel = new Map<string, SingleBar>()
  return {
    onProgress(event) {
      const total = event.total ?? Math.max(event.done, 1)
      const payload = { label: event.label.padEnd(14).slice(0, 14), amount: formatAmount(event) }
      let bar = byLabel.get(event.label)
      if (bar === undefined) {
        bar = bars.create(total, event.done, payload)
        byLabel.set(event.label, bar)
      } else {
        bar.setTotal(total)
        bar.update(event.done, payload)
      }
    },
    stop: () => bars.stop(),
  }
}

/** "12.00 MB / 40.00 MB" for bytes (the size says its unit), "1,200 / 5,000 rows" otherwise. */
export function formatAmount({ done, total, unit }: ProgressEvent): string {
  const format = unit === 'bytes' ? formatBytes : (n: number) => n.toLocaleString('en')
  const suffix = unit === 'bytes' ? '' : ` ${unit}`
  return total === undefined ? `${format(done)}${suffix}` : `${format(done)} / ${format(total)}${suffix}`
}
