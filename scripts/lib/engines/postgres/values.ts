/**
 * PostgreSQL values in the exports (the rules are in db/values.ts): every value arrives as the
 * server's own text (exact digits, ISO timestamps, `\x…` bytea), read by the column's declared type.
 */
import type { TableColumn, ValueCodec } from '../../db/table-reader.ts'

type Kind = 'integer' | 'real' | 'numeric' | 'boolean' | 'timestamp' | 'timestamptz' | 'blob' | 'json' | 'text'

/** @example postgresValueCodec({ name: 'cree', declaredType: 'timestamp(3) without time zone', nullable: false, primaryKeyPosition: 0 }).text('2026-01-21 15:30:00') // '2026-01-21T15:30:00Z' */
export function postgresValueCodec(column: TableColumn): ValueCodec {
  return postgresCodec(postgresKind(column.declaredType))
}

function postgresKind(declaredType: string): Kind {
  const type = declaredType.toLowerCase()
  if (type.endsWith('[]')) return 'text'
  if (/^(smallint|integer|bigint|int[248]?|oid)$/.test(type)) return 'integer'
  if (/^(real|double precision|float[48]?)$/.test(type)) return 'real'
  if (/^(numeric|decimal)\b/.test(type)) return 'numeric'
  if (type === 'boolean') return 'boolean'
  if (/^timestamp(\(\d\))? with time zone$/.test(type)) return 'timestamptz'
  if (/^timestamp(\(\d\))?( without time zone)?$/.test(type)) return 'timestamp'
  if (type === 'bytea') return 'blob'
  if (type === 'json' || type === 'jsonb') return 'json'
  return 'text'
}

interface PostgresTimestamp {
  date: string
  time: string
  /** `+HH:MM` (or `+HH:MM:SS` for historic offsets), absent for `timestamp`. */
  offset?: string
}

const pad2 = (n: number) => String(n).padStart(2, '0')
const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate()

/**
 * Reads PostgreSQL's ISO output of a timestamp (`2026-01-21 15:30:00.123456+01`), checking every
 * field; null for anything else (`infinity`, `… BC`), which is then kept as printed.
 */
export function parsePostgresTimestamp(text: string, withZone: boolean): PostgresTimestamp | null {
  const [date, clock, extra] = text.split(' ')
  if (date === undefined || clock === undefined || extra !== undefined) return null
  const [yearText, monthText, dayText, ...rest] = date.split('-')
  if (rest.length > 0 || !digits(yearText, 4, 7) || !digits(monthText, 2) || !digits(dayText, 2)) return null
  const [year, month, day] = [Number(yearText), Number(monthText), Number(dayText)]
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null
  const zoneAt = withZone ? Math.max(clock.lastIndexOf('+'), clock.lastIndexOf('-')) : -1
  if (withZone && zoneAt < 0) return null
  const time = withZone ? clock.slice(0, zoneAt) : clock
  const [whole, fraction, ...more] = time.split('.')
  if (more.length > 0 || (fraction !== undefined && !digits(fraction, 1, 6))) return null
  const [hours, minutes, seconds, ...tooMany] = (whole ?? '').split(':')
  if (tooMany.length > 0 || !digits(hours, 2) || !digits(minutes, 2) || !digits(seconds, 2)) return null
  if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds) > 59) return null
  const result: PostgresTimestamp = { date, time }
  if (withZone) {
    const [zoneHours, zoneMinutes = '00', zoneSeconds, ...zoneRest] = clock.slice(zoneAt + 1).split(':')
    if (zoneRest.length > 0 || !digits(zoneHours, 2) || !digits(zoneMinutes, 2) || (zoneSeconds !== undefined && !digits(zoneSeconds, 2))) return null
    if (Number(zoneHours) > 15 || Number(zoneMinutes) > 59 || Number(zoneSeconds ?? 0) > 59) return null
    result.offset = `${clock[zoneAt]}${pad2(Number(zoneHours))}:${zoneMinutes}${zoneSeconds === undefined ? '' : `:${zoneSeconds}`}`
  }
  return result
}

function digits(text: string | undefined, min: number, max = min): text is string {
  if (text === undefined || text.length < min || text.length > max) return false
  for (const c of text) if (c < '0' || c > '9') return false
  return true
}

function postgresText(kind: Kind, value: string): string {
  switch (kind) {
    case 'boolean':
      return value === 't' ? 'true' : value === 'f' ? 'false' : value
    case 'timestamp':
    case 'timestamptz': {
      const parsed = parsePostgresTimestamp(value, kind === 'timestamptz')
      if (parsed === null) return value
      return `${parsed.date}T${parsed.time}${parsed.offset ?? 'Z'}`
    }
    case 'blob':
      return value.startsWith('\\x') ? Buffer.from(value.slice(2), 'hex').toString('base64') : value
    default:
      return value
  }
}

function postgresCodec(kind: Kind): ValueCodec {
  const numeric = kind === 'integer' || kind === 'real' || kind === 'numeric'
  return {
    text: (value) => (value === null ? null : postgresText(kind, String(value))),
    json(value) {
      if (value === null) return 'null'
      const text = postgresText(kind, String(value))
      if (kind === 'boolean' && (text === 'true' || text === 'false')) return text
      // PostgreSQL's own text of a number is valid JSON, digits exact (NaN and infinities are not).
      if (numeric && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return text
      return JSON.stringify(text)
    },
  }
}
