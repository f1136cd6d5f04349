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
 * | date-time (DATETIME/TIMESTAMP…)    | ISO 8601 string                 | ISO 8601            |
 * | blob / bytea                       | base64 string                   | base64              |
 * | text, enums, uuid, json…           | string                          | the text            |
 *
 * Date-times: Prisma's SQLite text (`2026-01-21T15:30:00.000+00:00`) is already ISO 8601 and kept
 * as is; SQLite's `CURRENT_TIMESTAMP` form (`2026-01-21 15:30:00`, UTC) becomes `2026-01-21T15:30:00Z`;
 * PostgreSQL `timestamp` (which holds UTC under Prisma) becomes `…T…Z` and `timestamptz` keeps its
 * offset as `+HH:MM`, microseconds kept. Integers stored in a date-time column are left as numbers.
 */
import type { RowValue, TableColumn } from '../../db/table-reader.ts'
import type { EngineName } from '../../db/url.ts'

export interface ValueCodec {
  /** The value as a JSON token. */
  json(value: RowValue): string
  /** The value as CSV field text, or null for SQL NULL. */
  text(value: RowValue): string | null
}

type Kind = 'integer' | 'real' | 'numeric' | 'boolean' | 'timestamp' | 'timestamptz' | 'datetime' | 'blob' | 'json' | 'text'

/** Picks the codec of a column once, so the per-value work is a switch on the runtime type. */
export function codecFor(column: TableColumn, engine: EngineName): ValueCodec {
  return engine === 'postgres' ? postgresCodec(postgresKind(column.declaredType)) : sqliteCodec(sqliteKind(column.declaredType))
}

function sqliteKind(declaredType: string): Kind {
  const type = declaredType.toUpperCase()
  if (/^BOOL(EAN)?\b/.test(type)) return 'boolean'
  if (/DATE|TIME/.test(type)) return 'datetime'
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

const SQLITE_DATETIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/

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
    if (typeof value === 'string') {
      if (kind === 'datetime') {
        const match = SQLITE_DATETIME.exec(value)
        if (match) return `${match[1]}T${match[2]}Z`
      }
      return value
    }
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

const PG_TIMESTAMP = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/
const PG_TIMESTAMPTZ = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/

function postgresText(kind: Kind, value: string): string {
  switch (kind) {
    case 'boolean':
      return value === 't' ? 'true' : value === 'f' ? 'false' : value
    case 'timestamp': {
      const match = PG_TIMESTAMP.exec(value)
      return match ? `${match[1]}T${match[2]}Z` : value
    }
    case 'timestamptz': {
      const match = PG_TIMESTAMPTZ.exec(value)
      if (!match) return value
      return `${match[1]}T${match[2]}${match[3]}:${match[4] ?? '00'}${match[5] ? `:${match[5]}` : ''}`
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
