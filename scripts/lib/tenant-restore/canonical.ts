/**
 * One canonical text per value, whatever engine stored it, so that a tenant's rows compare and hash
 * the same on SQLite, PostgreSQL and D1, and in a backup of any of them.
 *
 * Values reach this module as the logical exports write them (`backup/exporters/_values.ts`: the
 * text of a data.json token or of a CSV field): a live row is first turned into that text by the
 * very codec the exporters use, so both sides speak one language. Then, per value kind (the
 * migration assistant's kinds, `migration/conversion.ts`):
 *
 * | kind     | canonical form                                                      |
 * | -------- | ------------------------------------------------------------------- |
 * | text     | the text                                                            |
 * | integer  | its digits                                                          |
 * | decimal  | `canonicalDecimal` of conversion.ts: `19.9900` and `19.99` → `1999e-2` |
 * | real     | JavaScript's shortest round-trip text of the double                 |
 * | boolean  | `true` / `false`                                                    |
 * | datetime | UTC `YYYY-MM-DD HH:MM:SS[.fraction]`, trailing zeros of the fraction dropped (PostgreSQL's text form) |
 * | json     | the parsed value re-serialised with sorted keys (PostgreSQL's jsonb reorders keys and spaces) |
 * | bytes    | base64                                                              |
 */
import { canonicalDecimal, type ValueKind } from '../migration/conversion.ts'

/** The value kind of a column from its declared type, in SQLite's or PostgreSQL's spelling. */
export function columnKind(declaredType: string): ValueKind {
  const type = declaredType.toLowerCase().replace(/^"|"$/g, '').trim()
  if (type.endsWith('[]')) return 'array'
  if (/^(smallint|integer|bigint|int[248]?|oid|int|tinyint|mediumint|unsigned big int)$/.test(type) || /^integer unsigned$/.test(type)) return 'integer'
  if (/^(numeric|decimal)\b/.test(type)) return 'decimal'
  if (/^(real|double precision|double|float[48]?|float)$/.test(type)) return 'real'
  if (/^bool(ean)?$/.test(type)) return 'boolean'
  if (/^(datetime|date|timestamp(\(\d\))?( with(out)? time zone)?)$/.test(type)) return 'datetime'
  if (type === 'json' || type === 'jsonb') return 'json'
  if (type === 'blob' || type === 'bytea') return 'bytes'
  return 'text'
}

const DATE_TIME = /^(\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/

/** `2026-01-21T15:30:00.120+00:00`, `2026-01-21T15:30:00.12Z`, `2026-01-21 16:30:00.12+01` → `2026-01-21 15:30:00.12`. */
export function canonicalDateTime(text: string): string {
  const fast = canonicalUtcDateTime(text)
  if (fast !== undefined) return fast
  const match = DATE_TIME.exec(text)
  if (match === null) return text
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone] = match
  let date = `${year}-${month}-${day}`
  let time = `${hour}:${minute}:${second}`
  if (zone !== undefined && zone !== 'Z' && !/^[+-]00(:?00)?$/.test(zone)) {
    const sign = zone.startsWith('-') ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    const offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'))
    const utc = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute) - offsetMinutes, Number(second)))
    if (Number.isNaN(utc.getTime())) return text
    const iso = utc.toISOString()
    date = iso.slice(0, 10)
    time = iso.slice(11, 19)
  }
  const kept = fraction.replace(/0+$/, '')
  return `${date} ${time}${kept === '' ? '' : `.${kept}`}`
}

const isDigit = (code: number) => code >= 48 && code <= 57

/**
 * The common case without a regular expression (a drill checks millions): `YYYY-MM-DD[T ]HH:MM:SS`,
 * an optional `.fraction`, then nothing, `Z` or `+00:00` — what Prisma and PostgreSQL's UTC text
 * write. Anything else: undefined (the general path decides).
 */
function canonicalUtcDateTime(text: string): string | undefined {
  if (text.length < 19) return undefined
  for (const at of [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]) if (!isDigit(text.charCodeAt(at))) return undefined
  const t = text[10]
  if (text[4] !== '-' || text[7] !== '-' || (t !== 'T' && t !== ' ') || text[13] !== ':' || text[16] !== ':') return undefined
  let end = text.length
  if (text.endsWith('Z')) end -= 1
  else if (text.endsWith('+00:00')) end -= 6
  let fractionEnd = 19
  if (end > 19) {
    if (text[19] !== '.' || end === 20) return undefined
    for (let i = 20; i < end; i++) if (!isDigit(text.charCodeAt(i))) return undefined
    fractionEnd = end
    while (fractionEnd > 20 && text.charCodeAt(fractionEnd - 1) === 48) fractionEnd--
    if (fractionEnd === 20) fractionEnd = 19
  }
  return `${text.slice(0, 10)} ${text.slice(11, fractionEnd)}`
}

function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${sortedJson((value as Record<string, unknown>)[key])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * The canonical form of one exported value of `kind` (null stays null).
 * @example canonicalValue('decimal', '29.990') // '2999e-2'
 */
export function canonicalValue(kind: ValueKind, text: string | null): string | null {
  if (text === null) return null
  switch (kind) {
    case 'decimal':
      return canonicalDecimal(text)
    case 'real': {
      const number = Number(text)
      return Number.isNaN(number) && text !== 'NaN' ? text : String(number)
    }
    case 'datetime':
      return canonicalDateTime(text)
    case 'json':
    case 'array':
      try {
        return sortedJson(JSON.parse(text))
      } catch {
        return text
      }
    default:
      return text
  }
}

/** `1999e-2` → `19.99`, `5e3` → `5000`: the plain decimal text engines accept everywhere. */
export function plainDecimal(canonical: string): string {
  const match = /^(-?)(\d+)e(-?\d+)$/.exec(canonical)
  if (match === null) return canonical
  const [, sign, digits, exponentText] = match as unknown as [string, string, string, string]
  const exponent = Number(exponentText)
  if (exponent >= 0) return `${sign}${digits}${'0'.repeat(exponent)}`
  const point = digits.length + exponent
  return point > 0 ? `${sign}${digits.slice(0, point)}.${digits.slice(point)}` : `${sign}0.${'0'.repeat(-point)}${digits}`
}
