/**
 * Instants typed by a person for point-in-time recovery, shared by every engine (the one parser): a
 * restore target is an absolute instant, so text without a UTC offset (whose meaning would depend on
 * the machine's time zone) is refused, as are impossible dates.
 */
import { ToolkitError } from '../errors.ts'

const ISO_WITH_OFFSET = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)$/i

/**
 * Parses an ISO 8601 instant that states its offset (`Z` or `±HH:MM`); milliseconds are kept, finer digits dropped.
 * @example parseInstant('2026-03-01T14:05:00+01:00') // 2026-03-01T13:05:00.000Z
 */
export function parseInstant(text: string): Date {
  const trimmed = text.trim()
  const match = ISO_WITH_OFFSET.exec(trimmed)
  if (match === null) {
    const noOffset = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(trimmed)
    throw new ToolkitError(
      noOffset ? `Instant sans fuseau horaire refusé : "${trimmed}".` : `Instant illisible : "${trimmed}".`,
      { hint: 'Donnez une date ISO 8601 avec son décalage, par exemple 2026-03-01T14:05:00+01:00 ou 2026-03-01T13:05:00Z.', exitCode: 2 },
    )
  }
  const [, year, month, day, hour, minute, second = '00', fraction = '', offset = 'Z'] = match
  const milliseconds = fraction.padEnd(3, '0').slice(0, 3)
  const normalisedOffset = offset.toUpperCase() === 'Z' ? 'Z' : offset.length === 3 ? `${offset}:00` : offset.includes(':') ? offset : `${offset.slice(0, 3)}:${offset.slice(3)}`
  const instant = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}.${milliseconds}${normalisedOffset}`)
  const calendarChecked = new Date(`${year}-${month}-${day}T00:00:00Z`)
  if (Number.isNaN(instant.getTime()) || calendarChecked.getUTCDate() !== Number(day) || Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) {
    throw new ToolkitError(`Instant impossible : "${trimmed}".`, { hint: 'Vérifiez le jour, l\'heure et les minutes (par exemple 2026-03-01T14:05:00+01:00).', exitCode: 2 })
  }
  return instant
}

/** An instant as ISO 8601 in UTC with milliseconds, the form every report and error uses. */
export function formatInstant(instant: Date): string {
  return instant.toISOString()
}

/** "du <a> au <b>": the reachable range as printed in refusals. */
export function formatRange(earliest: Date, latest: Date): string {
  return `du ${formatInstant(earliest)} au ${formatInstant(latest)}`
}
