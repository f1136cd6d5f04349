/**
 * Alerts leave the process as one JSON POST to ALERT_WEBHOOK_URL. The body carries a `text` field,
 * so a Slack (or Mattermost, Teams-workflow) incoming webhook shows it as is, plus the structured details.
 */
import { ToolkitError, describeError } from './errors.ts'

export interface Alert {
  /** Which tool raised it, e.g. "advanced-backup check". */
  source: string
  /** One human line: what is wrong. */
  text: string
  details?: Record<string, unknown>
}

/**
 * POSTs an alert; fails with a ToolkitError when the webhook does not answer 2xx within the timeout.
 * @example await sendAlert('https://hooks.slack.com/services/…', { source: 'dashboard', text: '12 slow queries' })
 */
export async function sendAlert(webhookUrl: string, alert: Alert, options: { timeoutMs?: number; fetch?: typeof fetch } = {}): Promise<void> {
  const body = JSON.stringify({ text: `[${alert.source}] ${alert.text}`, source: alert.source, details: alert.details ?? {} })
  try {
    const response = await (options.fetch ?? fetch)(webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    })
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`)
  } catch (error) {
    throw new ToolkitError(`alert webhook ${webhookOrigin(webhookUrl)} failed: ${describeError(error)}`, {
      hint: 'Check ALERT_WEBHOOK_URL.',
      cause: error,
    })
  }
}

// Webhook URLs carry their secret in the path (Slack's do): show only where it points.
function webhookOrigin(url: string): string {
  try {
    return `${new URL(url).origin}/…`
  } catch {
    return '(unparsable URL)'
  }
}
