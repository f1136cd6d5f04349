/**
 * How one stored value becomes text in the logical exports (data.json and the CSV files), the same
 * rules for every engine:
 *
 * | stored value                       | JSON                            | CSV                 |
 * | ---------------------------------- | ------------------------------- | ------------------- |
 * | NULL                               | null                            | empty, unquoted     |
 * | integer (any size, exact)          | number, all its digits          | its digits          |
 * | real                               | number (`3.0` for 3), or "NaN" / "Infinity" / "-Infinity" strings | same text |
 * | PostgreSQL numeric                 | number with its exact digits    | its digits          |
 * | boolean (BOOLEAN column)           | true / false                    | true / false        |
 * | PostgreSQL timestamp/timestamptz   | ISO 8601 string                 | ISO 8601            |
 * | blob / bytea                       | base64 string                   | base64              |
 * | text, enums, uuid, json…           | string                          | the text            |
 *
 * An export carries the stored value exactly. SQLite has no date type: whatever a DATE or DATETIME
 * column holds (Prisma's `2026-01-21T15:30:00.000+00:00`, `CURRENT_TIMESTAMP`'s `2026-01-21 15:30:00`,
 * `2021-13-45 99:99:99`) is text or a number and is written unchanged. Only PostgreSQL's own
 * `timestamp` and `timestamptz` values are normalised, by parsing the server's ISO output (the
 * snapshot sets DateStyle ISO and TimeZone UTC): `timestamp` (UTC under Prisma) becomes `…T…Z`,
 * `timestamptz` keeps its offset as `+HH:MM`, microseconds kept; what does not parse as a date
 * (`infinity`, BC dates) is written as the server printed it.
 */
import type { RowValue, TableColumn } from '../../db/table-reader.ts'
import type { EngineName } from '../../db/url.ts'

export interface ValueCodec {
  /** The value as a JSON token. */
  json(value: RowValue): string
  /** The value as CSV field text, or null for SQL NULL. */
  text(value: RowValue): string | null
}

type Kind = 'integer' | 'real' | 'numeric' | 'boolean' | 'timestamp' | 'timestamptz' | 'blob' | 'json' | 'text'

/** Picks the codec of a column once, so the per-value work is a switch on the runtime type. */
export function codecFor(column: TableColumn, engine: EngineName): ValueCodec {
  return engine === 'postgres' ? postgresCodec(postgresKind(column.declaredType)) : sqliteCodec(sqliteKind(column.declaredType))
}

function sqliteKind(declaredType: string): Kind {
  const type = declaredType.toUpperCase()
  if (/^BOOL(EAN)?\b/.test(type)) return 'boolean'
  return 'text'
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

/** Real numbers: shortest text that reads back to the same double, never mistaken for an integer. */
export function realText(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return 'Infinity'
  if (value === -Infinity) return '-Infinity'
  if (Object.is(value, -0)) return '-0.0'
  const text = String(value)
  return /^-?\d+$/.test(text) ? `${text}.0` : text
}

function realJson(value: number): string {
  return Number.isFinite(value) ? realText(value) : JSON.stringify(realText(value))
}

function sqliteCodec(kind: Kind): ValueCodec {
  const text = (value: RowValue): string | null => {
    if (value === null) return null
    if (typeof value === 'bigint') {
      if (kind === 'boolean' && (value === 0n || value === 1n)) return value === 1n ? 'true' : 'false'
      return value.toString()
    }
    if (typeof value === 'number') return realText(value)
    if (typeof value === 'string') return value
    return value.toString('base64')
  }
  return {
    text,
    json(value) {
      if (value === null) return 'null'
      if (typeof value === 'bigint') {
        if (kind === 'boolean' && (value === 0n || value === 1n)) return value === 1n ? 'true' : 'false'
        return value.toString()
      }
      if (typeof value === 'number') return realJson(value)
      return JSON.stringify(text(value))
    },
  }
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
