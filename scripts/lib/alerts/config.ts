/**
 * The channels the environment asks for. The caller passes the values (the script's environment
 * resolver reads the variables, never this module).
 */
import { ToolkitError } from '../errors.ts'
import { createEmailChannel, createSlackChannel, createWebhookChannel, type AlertChannel, type HttpChannelOptions } from './channels.ts'

export interface AlertEnvironment {
  SLACK_WEBHOOK_URL?: string
  ALERT_WEBHOOK_URL?: string
  SMTP_URL?: string
  ALERT_EMAIL_TO?: string
  ALERT_EMAIL_FROM?: string
}

/**
 * Every configured channel (none configured: an empty list). SMTP_URL without ALERT_EMAIL_TO, or an
 * unreadable URL, is a ToolkitError naming the variable (the secret masked).
 * @example const channels = alertChannelsFromEnvironment({ SLACK_WEBHOOK_URL: env.SLACK_WEBHOOK_URL })
 */
export function alertChannelsFromEnvironment(env: AlertEnvironment, options: HttpChannelOptions = {}): AlertChannel[] {
  const channels: AlertChannel[] = []
  const slack = nonEmpty(env.SLACK_WEBHOOK_URL)
  const webhook = nonEmpty(env.ALERT_WEBHOOK_URL)
  const smtp = nonEmpty(env.SMTP_URL)
  const to = nonEmpty(env.ALERT_EMAIL_TO)
  if (slack !== undefined) channels.push(createSlackChannel(checkedUrl('SLACK_WEBHOOK_URL', slack, ['https:', 'http:']), options))
  if (webhook !== undefined) channels.push(createWebhookChannel(checkedUrl('ALERT_WEBHOOK_URL', webhook, ['https:', 'http:']), options))
  if (smtp !== undefined || to !== undefined) {
    if (smtp === undefined || to === undefined) {
      throw new ToolkitError(`alertes e-mail: ${smtp === undefined ? 'ALERT_EMAIL_TO est défini sans SMTP_URL' : 'SMTP_URL est défini sans ALERT_EMAIL_TO'}`, {
        hint: 'Définissez les deux: SMTP_URL=smtp://utilisateur:motdepasse@serveur:587 et ALERT_EMAIL_TO=astreinte@cabinet.fr',
      })
    }
    checkedUrl('SMTP_URL', smtp, ['smtp:', 'smtps:'])
    channels.push(createEmailChannel({ smtpUrl: smtp, to, from: nonEmpty(env.ALERT_EMAIL_FROM), sleep: options.sleep, retry: options.retry }))
  }
  return channels
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function checkedUrl(variable: string, value: string, protocols: string[]): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ToolkitError(`${variable} n'est pas une URL lisible`, { hint: `Exemple: ${variable}=${protocols[0]}//…` })
  }
  if (!protocols.includes(url.protocol)) {
    throw new ToolkitError(`${variable}: protocole ${url.protocol} non pris en charge (attendu: ${protocols.join(' ou ')})`, { hint: `Exemple: ${variable}=${protocols[0]}//…` })
  }
  return value
}
