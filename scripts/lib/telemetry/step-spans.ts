/**
 * Spans drawn from the events the libraries already emit, so the backup and dashboard code stays
 * free of tracing: a step event (the kill-point listener of create/restore, the dashboard's test
 * progress) ends the span of the previous step and opens the next one, as a child of the span active
 * where the event fires (the command's span). Without `startTracing` nothing is drawn.
 */
import type { Span } from '@opentelemetry/api'
import type { ProgressListener } from '../progress.ts'
import { TRACER_NAME, preciseNow, tracingApi } from './tracing.ts'

export interface StepSpans {
  /**
   * Ends the current step's span (if any) and opens `name`'s. A step already announced is ignored:
   * some fire once per chunk (`create:mid-pack` while the archive streams beside the exports), and a
   * step's span runs from its first announcement to the next new step.
   */
  mark(name: string): void
  /** Ends the current step's span and forgets the steps seen: the next `mark` opens a new sequence. */
  end(): void
}

/**
 * @example const steps = stepSpans(); new AdvancedBackupSystem({ onStep: (s) => steps.mark(s) }); … steps.end()
 */
export function stepSpans(): StepSpans {
  let current: Span | undefined
  const seen = new Set<string>()
  // One instant ends a step and starts the next (see preciseNow).
  const end = (at = preciseNow()) => {
    current?.end(at)
    current = undefined
  }
  return {
    mark(name) {
      const api = tracingApi()
      if (api === undefined || seen.has(name)) return
      seen.add(name)
      const at = preciseNow()
      end(at)
      // The parent is the span active where the event fires; the step span itself is never made
      // active (the event is a callback, not a scope), so work inside it nests under that parent.
      current = api.trace.getTracer(TRACER_NAME).startSpan(name, { attributes: { 'ipm.step': name }, startTime: at }, api.context.active())
    },
    end: () => {
      end()
      // The next run (a watch's next analysis) announces the same steps again.
      seen.clear()
    },
  }
}

/**
 * The dashboard's `tests` progress events as one span per test (`dashboard.test.<n>`).
 * @example new DatabasePerformanceDashboard({ onProgress: testSpans(progress.onProgress) })
 */
export function testSpans(next?: ProgressListener): ProgressListener {
  const steps = stepSpans()
  return (event) => {
    if (event.label === 'tests' && event.total !== undefined) {
      if (event.done < event.total) steps.mark(`dashboard.test.${event.done + 1}`)
      else steps.end()
    }
    next?.(event)
  }
}
