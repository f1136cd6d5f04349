/**
 * POST with retries: a network error, HTTP 429 or 5xx is retried with exponential backoff; a 429's
 * `Retry-After` (seconds or an HTTP date) replaces the backoff, capped. The sleep is injected so tests
 * and cron runs never wait for real when they do not have to.
 */
import { setTimeout as sleepFor } from 'node:timers/promises'
import { describeError } from '../errors.ts'

export interface RetryPolicy {
  /** Total attempts, the first included. Default 4. */
  attempts: number
  /** First backoff; doubled at each retry. Default 1 s. */
  baseDelayMs: number
  /** Longest wait honoured (Retry-After included). Default 60 s. */
  maxDelayMs: number
  /** Per attempt. Default 10 s. */
  timeoutMs: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 4, baseDelayMs: 1_000, maxDelayMs: 60_000, timeoutMs: 10_000 }

/** Waits `ms`; a sleep given `signal` may end early when it aborts (its timer must not outlive it). */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

export const realSleep: Sleep = (ms, signal) => sleepFor(ms, undefined, { signal }).catch(() => undefined)

export interface PostOptions {
  fetch: typeof fetch
  sleep: Sleep
  now: () => Date
  retry: RetryPolicy
  /** Where the URL points, for messages (webhook URLs carry their secret in the path). */
  label: string
  /** The run's deadline (notifyAlerts): aborts the attempt in flight and stops the retries. */
  signal?: AbortSignal
}

/** POSTs a JSON body until a 2xx or the attempts run out; throws an Error naming the last failure. */
export async function postJsonWithRetry(url: string, body: unknown, options: PostOptions): Promise<{ attempts: number }> {
  const payload = JSON.stringify(body)
  let lastFailure = ''
  for (let attempt = 1; attempt <= options.retry.attempts; attempt++) {
    if (options.signal?.aborted) {
      lastFailure = deadlineMessage(lastFailure)
      break
    }
    let waitMs: number | undefined
    const timeout = AbortSignal.timeout(options.retry.timeoutMs)
    try {
      const response = await options.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]),
      })
      await response.body?.cancel()
      if (response.ok) return { attempts: attempt }
      lastFailure = `HTTP ${response.status}`
      if (response.status !== 429 && response.status < 500) break
      if (response.status === 429) waitMs = retryAfterMs(response.headers.get('retry-after'), options.now())
    } catch (error) {
      lastFailure = describeError(error)
    }
    if (options.signal?.aborted) {
      lastFailure = deadlineMessage(lastFailure)
      break
    }
    if (attempt === options.retry.attempts) break
    await abortableSleep(options.sleep, Math.min(waitMs ?? options.retry.baseDelayMs * 2 ** (attempt - 1), options.retry.maxDelayMs), options.signal)
  }
  throw new Error(`${options.label}: ${lastFailure}`)
}

/** The failure line once the run's deadline cut the retries short. */
export function deadlineMessage(lastFailure: string): string {
  return `délai des alertes dépassé, nouvel essai au prochain lancement${lastFailure === '' ? '' : ` (${lastFailure})`}`
}

/** `sleep(ms)`, cut short when `signal` aborts. */
export async function abortableSleep(sleep: Sleep, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return sleep(ms)
  if (signal.aborted) return
  let onAbort!: () => void
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([sleep(ms, signal), aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Milliseconds a `Retry-After` header asks for; undefined when absent or unreadable.
 * @example retryAfterMs('3', new Date()) // 3000
 */
export function retryAfterMs(header: string | null, now: Date): number | undefined {
  if (header === null || header.trim() === '') return undefined
  if (/^\s*\d+\s*$/.test(header)) return Number(header) * 1_000
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now.getTime())
}

/** The origin of a URL only: Slack and most webhooks keep their secret in the path. */
export function urlOrigin(url: string): string {
  try {
    return `${new URL(url).origin}/…`
  } catch {
    return '(URL illisible)'
  }
}
