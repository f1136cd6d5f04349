/**
 * The three ways an alert leaves the process, each an `AlertChannel`:
 * - `slack`: a Slack incoming webhook, in Slack's block format (header, details, context);
 * - `webhook`: the generic JSON webhook — a POST whose `text` field Slack, Mattermost or a Teams
 *   workflow shows as is, plus the structured fields;
 * - `email`: SMTP through nodemailer.
 * HTTP channels retry (429 with Retry-After, 5xx, network errors); SMTP retries transient failures.
 * Messages name where they point with the secret masked (webhook origin only, SMTP password hidden).
 */
import type { Transporter } from 'nodemailer'
import { redactUrl } from '../db/url.ts'
import { describeError } from '../errors.ts'
import { notificationHeadline, notificationLines, type AlertNotification } from './alert.ts'
import { abortableSleep, deadlineMessage, DEFAULT_RETRY_POLICY, postJsonWithRetry, realSleep, urlOrigin, type RetryPolicy, type Sleep } from './_http.ts'

export interface AlertChannel {
  /** The channel's name in the state file and in reports: `slack`, `webhook` or `email`. */
  name: string
  /** Where it sends, secrets masked. */
  target: string
  /**
   * Resolves once delivered; rejects (after its own retries) with a message free of secrets. When
   * `signal` aborts (the run's deadline) it stops at once: the attempt in flight is cut, no retry.
   */
  send(notification: AlertNotification, options?: { signal?: AbortSignal }): Promise<void>
}

export interface HttpChannelOptions {
  fetch?: typeof fetch
  sleep?: Sleep
  now?: () => Date
  retry?: Partial<RetryPolicy>
}

/** The Slack block payload of a notification (exported for tests and previews). */
export function slackPayload(notification: AlertNotification): Record<string, unknown> {
  const headline = notificationHeadline(notification)
  const lines = notificationLines(notification)
  const context = lines.pop()!
  return {
    text: headline,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: headline.slice(0, 150), emoji: true } },
      ...(lines.length > 0 ? [{ type: 'section', text: { type: 'mrkdwn', text: lines.map(escapeSlack).join('\n').slice(0, 3000) } }] : []),
      { type: 'context', elements: [{ type: 'mrkdwn', text: escapeSlack(context) }] },
    ],
  }
}

/**
 * A Slack incoming webhook (`SLACK_WEBHOOK_URL`).
 * @example const slack = createSlackChannel('https://hooks.slack.com/services/T/B/x')
 */
export function createSlackChannel(webhookUrl: string, options: HttpChannelOptions = {}): AlertChannel {
  return httpChannel('slack', webhookUrl, slackPayload, options)
}

/** The generic webhook's body: today's `{ text, source, details }` plus the alert's state. */
export function webhookPayload(notification: AlertNotification): Record<string, unknown> {
  return {
    text: `[${notification.source}] ${notificationHeadline(notification)}`,
    source: notification.source,
    status: notification.status,
    key: notification.key,
    severity: notification.severity,
    since: notification.since,
    at: notification.at,
    details: notification.details,
  }
}

/**
 * A generic JSON webhook (`ALERT_WEBHOOK_URL`).
 * @example const hook = createWebhookChannel('https://chat.example/hooks/abc')
 */
export function createWebhookChannel(webhookUrl: string, options: HttpChannelOptions = {}): AlertChannel {
  return httpChannel('webhook', webhookUrl, webhookPayload, options)
}

function httpChannel(name: string, url: string, payload: (n: AlertNotification) => unknown, options: HttpChannelOptions): AlertChannel {
  const target = urlOrigin(url)
  const post = {
    fetch: options.fetch ?? fetch,
    sleep: options.sleep ?? realSleep,
    now: options.now ?? (() => new Date()),
    retry: { ...DEFAULT_RETRY_POLICY, ...options.retry },
    label: `${name} ${target}`,
  }
  return { name, target, send: async (notification, sendOptions) => void (await postJsonWithRetry(url, payload(notification), { ...post, signal: sendOptions?.signal })) }
}

export interface EmailChannelOptions {
  /** `smtp://user:password@host:587` or `smtps://…`; never shown unmasked. */
  smtpUrl: string
  /** One address or several, comma-separated (`ALERT_EMAIL_TO`). */
  to: string
  /** Default `IA Poste Manager <alertes@localhost>` (`ALERT_EMAIL_FROM`). */
  from?: string
  sleep?: Sleep
  retry?: Partial<RetryPolicy>
}

/**
 * E-mail through SMTP (`SMTP_URL`, `ALERT_EMAIL_TO`). A 5xx SMTP reply is permanent and not retried.
 * @example const mail = createEmailChannel({ smtpUrl: 'smtp://alert:secret@mail:587', to: 'ops@cabinet.fr' })
 */
export function createEmailChannel(options: EmailChannelOptions): AlertChannel {
  const target = redactUrl(options.smtpUrl)
  const retry = { ...DEFAULT_RETRY_POLICY, ...options.retry }
  const sleep = options.sleep ?? realSleep
  // nodemailer (~0.1 s to load) is loaded by the first e-mail, not by every process that reads the alert configuration.
  let transport: Promise<Transporter> | undefined
  const connect = () =>
    (transport ??= import('nodemailer').then(({ default: nodemailer }) =>
      nodemailer.createTransport({ url: options.smtpUrl, connectionTimeout: retry.timeoutMs, greetingTimeout: retry.timeoutMs, socketTimeout: retry.timeoutMs }),
    ))
  return {
    name: 'email',
    target,
    async send(notification, sendOptions) {
      const signal = sendOptions?.signal
      const message = {
        from: options.from ?? 'IA Poste Manager <alertes@localhost>',
        to: options.to,
        subject: `[IA Poste Manager] ${notificationHeadline(notification)}`,
        text: `${notificationLines(notification).join('\n')}\n`,
        headers: { 'X-IPM-Alert-Key': notification.key, 'X-IPM-Alert-Status': notification.status },
        // nodemailer closes the SMTP connection in flight when it aborts.
        ...(signal === undefined ? {} : { signal }),
      }
      let lastFailure = ''
      for (let attempt = 1; attempt <= retry.attempts; attempt++) {
        if (signal?.aborted) {
          lastFailure = deadlineMessage(lastFailure)
          break
        }
        try {
          await (await connect()).sendMail(message)
          return
        } catch (error) {
          lastFailure = maskSecret(describeError(error), options.smtpUrl)
          const code = (error as { responseCode?: number }).responseCode
          if (code !== undefined && code >= 500) break
        }
        if (signal?.aborted) {
          lastFailure = deadlineMessage(lastFailure)
          break
        }
        if (attempt < retry.attempts) await abortableSleep(sleep, Math.min(retry.baseDelayMs * 2 ** (attempt - 1), retry.maxDelayMs), signal)
      }
      throw new Error(`email ${target}: ${lastFailure}`)
    },
  }
}

// nodemailer's errors may quote the URL or its credentials; take both out.
function maskSecret(text: string, smtpUrl: string): string {
  let masked = text.split(smtpUrl).join(redactUrl(smtpUrl))
  try {
    const password = decodeURIComponent(new URL(smtpUrl).password)
    if (password !== '') masked = masked.split(password).join('****')
  } catch {
    // an unparsable URL has no password to hide beyond the redaction above
  }
  return masked
}

function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
