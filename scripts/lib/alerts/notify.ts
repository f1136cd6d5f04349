/**
 * The one entry point of every alert source (backup check, dashboard thresholds, drill failures).
 * A source reports the conditions true *now* for its `source` name; compared with the state file:
 * - a new condition is sent to every channel once (deduplicated on its key, across runs);
 * - a condition of this source missing from the report has cleared: channels that were told it
 *   fired get a "résolu" message;
 * - hold-down: per alert and channel, at most `maxPerWindow` messages (default 2) per `windowMs`
 *   (default one hour); a message held back is sent later if the state still differs then;
 * - channels are sent to in parallel and each failure stays in its own channel (retried next run);
 * - deadline: the whole delivery of a run takes at most `deadlineMs` (default 15 s, all channels and
 *   retries together). A channel that accepts the connection but never answers is cut off then: its
 *   notification is reported failed, stays due in the state file, and the next run sends it.
 * Never throws for a channel or the state file: problems come back in `deliveries` and `warnings`.
 */
import { describeError } from '../errors.ts'
import type { AlertCondition, AlertNotification, AlertStatus } from './alert.ts'
import type { AlertChannel } from './channels.ts'
import { deadlineMessage } from './_http.ts'
import { emptyAlertState, readAlertState, withStateLock, writeAlertState, type AlertRecord, type AlertState, type ChannelState } from './state.ts'

export const DEFAULT_HOLD_DOWN = { maxPerWindow: 2, windowMs: 3_600_000 }
/** Without it, a webhook that never answers held a backup ~47 s (4 attempts × 10 s + 1 + 2 + 4 s of backoff). */
export const DEFAULT_ALERT_DEADLINE_MS = 15_000

export interface NotifyAlertsOptions {
  /** The reporting tool, e.g. `advanced-backup check`; only its own alerts can be resolved by this call. */
  source: string
  /** Every condition of this source that is true now (an empty list clears them all). */
  firing: readonly AlertCondition[]
  channels: readonly AlertChannel[]
  /** The JSON state file, e.g. `backups/.alert-state.json`. */
  statePath: string
  now?: () => Date
  maxPerWindow?: number
  windowMs?: number
  /** All deliveries of this call end within this many milliseconds. Default 15 000 (`DEFAULT_ALERT_DEADLINE_MS`). */
  deadlineMs?: number
}

export interface AlertDelivery {
  key: string
  channel: string
  status: AlertStatus
  outcome: 'sent' | 'failed' | 'held'
  /** Why it failed (secrets masked). */
  error?: string
}

export interface NotifyAlertsResult {
  /** Keys of this source's conditions firing now. */
  firing: string[]
  /** Keys of this source's conditions that cleared in this call. */
  resolved: string[]
  deliveries: AlertDelivery[]
  /** The state file could not be read (started afresh) or written. */
  warnings: string[]
}

/**
 * @example
 * const result = await notifyAlerts({
 *   source: 'advanced-backup check', statePath: 'backups/.alert-state.json', channels,
 *   firing: [{ key: 'backup:stale:backups', severity: 'critical', title: 'Backups en danger: dernier backup vérifié il y a 30 h' }],
 * })
 */
export async function notifyAlerts(options: NotifyAlertsOptions): Promise<NotifyAlertsResult> {
  const warnings: string[] = []
  try {
    return await withStateLock(options.statePath, () => notifyLocked(options, warnings))
  } catch (error) {
    warnings.push(`état des alertes ${options.statePath} inaccessible: ${describeError(error)}`)
    return { firing: options.firing.map((c) => c.key), resolved: [], deliveries: [], warnings }
  }
}

async function notifyLocked(options: NotifyAlertsOptions, warnings: string[]): Promise<NotifyAlertsResult> {
  const now = (options.now ?? (() => new Date()))()
  const at = now.toISOString()
  const maxPerWindow = options.maxPerWindow ?? DEFAULT_HOLD_DOWN.maxPerWindow
  const windowMs = options.windowMs ?? DEFAULT_HOLD_DOWN.windowMs

  let state: AlertState
  try {
    state = readAlertState(options.statePath)
  } catch (error) {
    warnings.push(`état des alertes ${options.statePath} illisible, repris à zéro: ${describeError(error)}`)
    state = emptyAlertState()
  }

  const firingKeys = new Set<string>()
  for (const condition of options.firing) {
    firingKeys.add(condition.key)
    const previous = state.alerts[condition.key]
    const startsNow = previous === undefined || previous.status !== 'firing'
    state.alerts[condition.key] = {
      source: options.source,
      severity: condition.severity,
      title: condition.title,
      details: condition.details ?? [],
      status: 'firing',
      since: startsNow ? at : previous.since,
      channels: previous?.channels ?? {},
    }
  }
  const resolved: string[] = []
  for (const [key, record] of Object.entries(state.alerts)) {
    if (record.source === options.source && record.status === 'firing' && !firingKeys.has(key)) {
      record.status = 'resolved'
      record.resolvedAt = at
      resolved.push(key)
    }
  }

  // What each channel must be told, in key order so its messages arrive in a stable order.
  const plan = new Map<AlertChannel, { key: string; record: AlertRecord; channel: ChannelState }[]>()
  const deliveries: AlertDelivery[] = []
  for (const [key, record] of Object.entries(state.alerts).sort(([a], [b]) => a.localeCompare(b))) {
    if (record.source !== options.source) continue
    for (const channel of options.channels) {
      const channelState = (record.channels[channel.name] ??= { notified: null, sentAt: [] })
      channelState.sentAt = channelState.sentAt.filter((sent) => now.getTime() - Date.parse(sent) < windowMs)
      const due = record.status === 'firing' ? channelState.notified !== 'firing' : channelState.notified === 'firing'
      if (!due) continue
      if (channelState.sentAt.length >= maxPerWindow) {
        deliveries.push({ key, channel: channel.name, status: record.status, outcome: 'held' })
        continue
      }
      plan.set(channel, [...(plan.get(channel) ?? []), { key, record, channel: channelState }])
    }
  }

  const deadline = new AbortController()
  const deadlineMs = options.deadlineMs ?? DEFAULT_ALERT_DEADLINE_MS
  const timer = setTimeout(() => deadline.abort(), deadlineMs)
  const sending = Promise.all(
    [...plan].map(async ([channel, items]) => {
      for (const item of items) {
        if (deadline.signal.aborted) {
          deliveries.push({ key: item.key, channel: channel.name, status: item.record.status, outcome: 'failed', error: `${channel.name} ${channel.target}: ${deadlineMessage('')}` })
          continue
        }
        const notification: AlertNotification = {
          status: item.record.status,
          source: item.record.source,
          key: item.key,
          severity: item.record.severity,
          title: item.record.title,
          details: item.record.details,
          since: item.record.since,
          at,
        }
        try {
          await channel.send(notification, { signal: deadline.signal })
          item.channel.notified = item.record.status
          item.channel.sentAt.push(at)
          delete item.channel.lastError
          deliveries.push({ key: item.key, channel: channel.name, status: item.record.status, outcome: 'sent' })
        } catch (error) {
          item.channel.lastError = describeError(error)
          deliveries.push({ key: item.key, channel: channel.name, status: item.record.status, outcome: 'failed', error: item.channel.lastError })
        }
      }
    }),
  )
  // A channel that ignores the signal is not waited for past the deadline (its late answer changes nothing: the state is written below).
  const late = new Promise<void>((resolve) => deadline.signal.addEventListener('abort', () => setTimeout(resolve, 100).unref(), { once: true }))
  try {
    await Promise.race([sending, late])
  } finally {
    clearTimeout(timer)
  }
  for (const [channel, items] of plan) {
    for (const item of items) {
      if (!deliveries.some((d) => d.key === item.key && d.channel === channel.name)) {
        deliveries.push({ key: item.key, channel: channel.name, status: item.record.status, outcome: 'failed', error: `${channel.name} ${channel.target}: ${deadlineMessage('')}` })
      }
    }
  }

  // A cleared alert is forgotten once no channel still believes it fires and its hold-down has passed.
  for (const [key, record] of Object.entries(state.alerts)) {
    const settled = Object.values(record.channels).every((c) => c.notified !== 'firing' && c.sentAt.every((sent) => now.getTime() - Date.parse(sent) >= windowMs))
    if (record.status === 'resolved' && settled) delete state.alerts[key]
  }

  try {
    writeAlertState(options.statePath, state)
  } catch (error) {
    warnings.push(`état des alertes ${options.statePath} non écrit: ${describeError(error)}`)
  }
  return { firing: [...firingKeys], resolved, deliveries, warnings }
}

const STATUS_WORDS: Record<AlertStatus, string> = { firing: 'alerte', resolved: 'résolution' }

/**
 * The French lines a script prints about a notifyAlerts call: one per delivery sent, held back or
 * failed (secrets already masked), then the warnings.
 * @example renderDeliveries(result) // ['Alerte envoyée (slack): backup:stale:/var/backups/ipm', '✗ alerte non envoyée (webhook): webhook http://…/…: HTTP 500']
 */
export function renderDeliveries(result: NotifyAlertsResult): string[] {
  const lines = result.deliveries.map((d) => {
    const what = STATUS_WORDS[d.status]
    if (d.outcome === 'sent') return `${what[0]!.toUpperCase()}${what.slice(1)} envoyée (${d.channel}): ${d.key}`
    if (d.outcome === 'held') return `${what[0]!.toUpperCase()}${what.slice(1)} retenue par l'anti-rebond (${d.channel}): ${d.key}`
    return `✗ ${what} non envoyée (${d.channel}): ${d.error}`
  })
  return [...lines, ...result.warnings.map((w) => `⚠ ${w}`)]
}
