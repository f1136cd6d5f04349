/** Instants typed by a person: an ISO 8601 date-time with an explicit offset, never a guessed time zone. */
import { ToolkitError } from '../errors.ts'

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/**
 * Parses `2026-03-01T10:15:00+01:00` or `…Z`; refuses text without an offset (whose meaning would
 * depend on the machine's time zone) and impossible dates.
 * @example parseInstant('2026-03-01T10:15:00+01:00') // → Date 09:15:00Z
 */
export function parseInstant(text: string): Date {
  const trimmed = text.trim()
  if (!ISO_WITH_OFFSET.test(trimmed)) {
    throw new ToolkitError(`instant invalide ou sans fuseau: "${text}"`, { hint: 'Écrivez l’instant en ISO 8601 avec son décalage, par exemple 2026-03-01T10:15:00+01:00 ou 2026-03-01T09:15:00Z.', exitCode: 2 })
  }
  const date = new Date(trimmed)
  if (Number.isNaN(date.getTime())) throw new ToolkitError(`date impossible: "${text}"`, { hint: 'Vérifiez le jour, le mois et l’heure.', exitCode: 2 })
  return date
}
