/**
 * What an alert source hands to the alert module, and the French text every channel renders from it.
 * A condition carries no data value and no secret: its title and details are written by the source
 * for people (paths, counts, ages, thresholds), never rows or passwords.
 */

export type AlertSeverity = 'critical' | 'warning'

/** A condition that is true now. The same problem must always carry the same `key`. */
export interface AlertCondition {
  /** Stable deduplication key, e.g. `backup:stale:/var/backups/ipm`. */
  key: string
  severity: AlertSeverity
  /** One French line: what is wrong. */
  title: string
  /** More French lines (thresholds, where to look). */
  details?: string[]
}

export type AlertStatus = 'firing' | 'resolved'

/** One message to send: a condition that started (or is still firing after a hold-down) or cleared. */
export interface AlertNotification {
  status: AlertStatus
  /** Which tool raised it, e.g. `advanced-backup check`. */
  source: string
  key: string
  severity: AlertSeverity
  title: string
  details: string[]
  /** When the condition started firing (ISO). */
  since: string
  /** When this message is sent (ISO). */
  at: string
}

const SEVERITY_LABELS: Record<AlertSeverity, string> = { critical: 'critique', warning: 'avertissement' }

/** The one-line French summary every channel uses (Slack's fallback text, the e-mail subject). */
export function notificationHeadline(notification: AlertNotification): string {
  return notification.status === 'firing'
    ? `🔴 Alerte ${SEVERITY_LABELS[notification.severity]} — ${notification.title}`
    : `✅ Résolu — ${notification.title}`
}

/** The French body lines shared by the e-mail and Slack renderings. */
export function notificationLines(notification: AlertNotification): string[] {
  const lines = [...notification.details]
  if (notification.status === 'resolved') lines.push(`Le problème est résolu (actif depuis ${notification.since}).`)
  else lines.push(`Actif depuis ${notification.since}.`)
  lines.push(`Source: ${notification.source} · clé: ${notification.key} · ${notification.at}`)
  return lines
}
