/** Duration statistics, exact (sorted samples, nearest-rank percentiles), rounded to the microsecond. */

export interface DurationSummary {
  count: number
  meanMs: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
  totalMs: number
}

/**
 * The nearest-rank percentile of ascending samples: the smallest sample with at least p % of the samples at or below it.
 * @example percentile([1, 2, 3, 4], 50) // 2
 */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) return 0
  const rank = Math.max(1, Math.ceil((p / 100) * sortedAscending.length))
  return sortedAscending[Math.min(rank, sortedAscending.length) - 1]!
}

/** @example summarizeDurations([3, 1, 2]) // { count: 3, meanMs: 2, p50Ms: 2, p95Ms: 3, p99Ms: 3, maxMs: 3, totalMs: 6 } */
export function summarizeDurations(durations: readonly number[]): DurationSummary {
  const sorted = [...durations].sort((a, b) => a - b)
  const total = sorted.reduce((sum, d) => sum + d, 0)
  return {
    count: sorted.length,
    meanMs: roundMs(sorted.length === 0 ? 0 : total / sorted.length),
    p50Ms: roundMs(percentile(sorted, 50)),
    p95Ms: roundMs(percentile(sorted, 95)),
    p99Ms: roundMs(percentile(sorted, 99)),
    maxMs: roundMs(sorted[sorted.length - 1] ?? 0),
    totalMs: roundMs(total),
  }
}

/** Milliseconds kept to the microsecond. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
