/**
 * How each PostgreSQL column becomes a SQLite column, value by value, so that the SQLite Prisma
 * client reads what the PostgreSQL client read. Values arrive as PostgreSQL's exact text form
 * (session: DateStyle ISO, TimeZone UTC, bytea hex, extra_float_digits 3; see source.ts).
 *
 * | PostgreSQL                              | kind     | SQLite (declared) | stored as                                             |
 * |-----------------------------------------|----------|-------------------|-------------------------------------------------------|
 * | text, varchar, char, uuid, enum, name, interval, time, inet, xml, … (any other base type) | text | TEXT | the text form, unchanged |
 * | int2, int4 (int8: BIGINT)               | integer  | INTEGER / BIGINT  | INTEGER, exact (64-bit)                               |
 * | numeric                                 | decimal  | DECIMAL           | INTEGER when integral and within 64 bits, else REAL; a value a REAL cannot hold exactly is refused |
 * | float4, float8                          | real     | REAL              | REAL (NaN refused: SQLite stores it as NULL; -0 becomes 0) |
 * | bool                                    | boolean  | BOOLEAN           | 1 / 0                                                 |
 * | timestamp, timestamptz, date            | datetime | DATETIME          | `2026-01-21T15:30:00.123+00:00`, Prisma's form (UTC; microseconds kept when present, Prisma reads milliseconds on both engines); infinity, BC and years past 9999 refused |
 * | json, jsonb                             | json     | JSONB             | the JSON text, unchanged                              |
 * | bytea                                   | bytes    | BLOB              | the bytes                                             |
 * | arrays (any dimension) of base types    | array    | JSONB             | a JSON array (numbers and booleans as JSON, the rest as strings) |
 * | ranges, multiranges, composites, arrays of enums/domains/composites/ranges, pseudo-types | — | refused | |
 *
 * Verification compares a canonical form of each value computed from each side independently
 * (`canonicalFromPostgres` on the source text, `canonicalFromSqlite` on what the file holds): the
 * PostgreSQL text form itself for text, integers, booleans, dates and bytes (the SQLite side
 * rebuilds it from the stored value), the value for numbers and JSON, the JSON for arrays.
 */
import { ToolkitError } from '../errors.ts'

export type ValueKind = 'text' | 'integer' | 'decimal' | 'real' | 'boolean' | 'datetime' | 'json' | 'bytes' | 'array'

/** What the catalog says about a column's type, domains resolved. */
export interface PostgresType {
  /** `base`, `enum`, `array`, `range`, `multirange`, `composite`, `pseudo` (pg_type.typtype after resolving domains). */
  kind: 'base' | 'enum' | 'array' | 'range' | 'multirange' | 'composite' | 'pseudo'
  /** pg_type.typname of the resolved type: `int8`, `timestamptz`, `_text`, `DossierStatut`. */
  name: string
  /** The domain the column is declared with, when it is one. */
  domain?: string
  /** Arrays: the element type. */
  element?: PostgresType
  /** Arrays: pg_type.typdelim of the element (`,` for all but box). */
  delimiter?: string
}

export interface ColumnConversion {
  kind: ValueKind
  /** The SQLite type a derived schema declares, Prisma's own choice for the matching scalar. */
  sqliteType: string
}

export type ConversionChoice = ColumnConversion | { unsupported: string }

/** A SQLite value as better-sqlite3 binds it. */
export type SqliteValue = string | number | bigint | Buffer | null

const INTEGER_TYPES = new Set(['int2', 'int4', 'oid', 'xid', 'cid'])
const DATETIME_TYPES = new Set(['timestamp', 'timestamptz', 'date'])

/**
 * Chooses the conversion of a column, or says why there is none.
 * @example conversionFor({ kind: 'base', name: 'numeric' }) // { kind: 'decimal', sqliteType: 'DECIMAL' }
 */
export function conversionFor(type: PostgresType): ConversionChoice {
  const label = type.domain ? `${type.domain} (un domaine sur ${type.name})` : type.name
  switch (type.kind) {
    case 'enum':
      return { kind: 'text', sqliteType: 'TEXT' }
    case 'range':
    case 'multirange':
      return { unsupported: `${label} est un ${type.kind} : SQLite n’a pas de type ${type.kind} ni Prisma de scalaire pour lui. Stockez d’abord ses bornes en deux colonnes (lower(…), upper(…)), ou laissez la table de côté avec --tables` }
    case 'composite':
      return { unsupported: `${label} est un type composite : SQLite n’a pas de type ligne. Éclatez-le d’abord en colonnes, ou laissez la table de côté avec --tables` }
    case 'pseudo':
      return { unsupported: `${label} est un pseudo-type sans valeur stockable` }
    case 'array': {
      const element = type.element
      if (element === undefined || element.kind !== 'base' || element.domain !== undefined) {
        const what = element === undefined ? 'type inconnu' : element.domain ? `domaine ${element.domain}` : `type ${element.kind} ${element.name}`
        return { unsupported: `${label} est un tableau de ${what} : SQLite n’a pas de tableaux, et une copie JSON perdrait le type des éléments (seuls les tableaux de types de base comme text[] ou int4[] deviennent du JSON)` }
      }
      if (type.delimiter !== undefined && type.delimiter !== ',') return { unsupported: `${label} : les tableaux de ${element.name} ne sont pas pris en charge` }
      return { kind: 'array', sqliteType: 'JSONB' }
    }
    case 'base':
      if (INTEGER_TYPES.has(type.name)) return { kind: 'integer', sqliteType: 'INTEGER' }
      if (type.name === 'int8') return { kind: 'integer', sqliteType: 'BIGINT' }
      if (type.name === 'numeric') return { kind: 'decimal', sqliteType: 'DECIMAL' }
      if (type.name === 'float4' || type.name === 'float8') return { kind: 'real', sqliteType: 'REAL' }
      if (type.name === 'bool') return { kind: 'boolean', sqliteType: 'BOOLEAN' }
      if (DATETIME_TYPES.has(type.name)) return { kind: 'datetime', sqliteType: 'DATETIME' }
      if (type.name === 'json' || type.name === 'jsonb') return { kind: 'json', sqliteType: 'JSONB' }
      if (type.name === 'bytea') return { kind: 'bytes', sqliteType: 'BLOB' }
      return { kind: 'text', sqliteType: 'TEXT' }
  }
}

/**
 * Whether a SQLite column of `declaredType` (an existing schema's, e.g. the app's migrations) can
 * hold values of `kind` so that they read back the same.
 */
export function sqliteTypeAccepts(declaredType: string, kind: ValueKind): boolean {
  const type = declaredType.toUpperCase().replace(/\(.*$/, '').trim()
  switch (kind) {
    case 'text':
      return /CHAR|CLOB|TEXT/.test(type)
    case 'integer':
      return /INT/.test(type)
    case 'decimal':
      return type === 'DECIMAL' || type === 'NUMERIC'
    case 'real':
      return /REAL|FLOA|DOUB/.test(type)
    case 'boolean':
      return type === 'BOOLEAN'
    case 'datetime':
      return type === 'DATETIME' || type === 'TIMESTAMP' || type === 'DATE'
    case 'json':
    case 'array':
      return type === 'JSONB' || type === 'JSON'
    case 'bytes':
      return type === 'BLOB'
  }
}

/** A value that cannot be stored so that it reads back the same; carries where it was found. */
export class UnconvertibleValueError extends ToolkitError {
  constructor(message: string, hint = 'Corrigez la valeur dans PostgreSQL, ou laissez la table de côté avec --tables ; `--dry-run` liste toutes ces valeurs.') {
    super(message, { hint })
    this.name = 'UnconvertibleValueError'
  }
}

/** The conversion of one value kind: PostgreSQL text → SQLite value, and the canonical form of each side. */
export interface Converter {
  /** Throws `UnconvertibleValueError` (without location; the caller adds it) when the value cannot be held. */
  toSqlite(text: string): SqliteValue
  /** True when `canonicalFromPostgres` is the identity: the source's raw COPY text can be checksummed as it is. */
  identity: boolean
  canonicalFromPostgres(text: string): string
  canonicalFromSqlite(value: Exclude<SqliteValue, null>): string
  /** The letter of this `toSqlite` in the SQLite extension's copy_text_insert (extension.c), when it has one. */
  toSqliteInC?: string
  /** The letter of this `canonicalFromSqlite` in the extension's copy_text_line, when it has one. */
  canonicalFromSqliteInC?: string
}

/** Replacements of `toSqlite` per kind (the canonical forms, which the verification relies on, are not replaceable). */
export type ConversionOverrides = Partial<Record<ValueKind, (text: string) => SqliteValue>>

/** Marks a stored value of an unexpected SQLite type: it holds a NUL, which PostgreSQL text never does, so it never matches. */
const unexpected = (value: Exclude<SqliteValue, null>) =>
  `\u0000${typeof value === 'object' ? 'blob' : typeof value}:${Buffer.isBuffer(value) ? value.toString('hex') : String(value)}`

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const same = (text: string) => text

const CONVERTERS: Record<Exclude<ValueKind, 'datetime' | 'array'>, Converter> = {
  text: {
    toSqliteInC: 't',
    canonicalFromSqliteInC: 't',
    toSqlite: same,
    identity: true,
    canonicalFromPostgres: same,
    canonicalFromSqlite: (value) => (typeof value === 'string' ? value : unexpected(value)),
  },
  integer: {
    toSqliteInC: 'i',
    canonicalFromSqliteInC: 'i',
    // SQLite's INTEGER affinity turns the decimal text into a 64-bit integer exactly (PostgreSQL
    // prints no sign, spaces or leading zeros); verification reads it back as a bigint to be sure.
    toSqlite: same,
    identity: true,
    canonicalFromPostgres: same,
    canonicalFromSqlite: (value) => (typeof value === 'bigint' ? value.toString() : unexpected(value)),
  },
  decimal: {
    toSqlite(text) {
      const parts = decimalParts(text)
      if (parts === undefined) throw new UnconvertibleValueError(`numeric ${text} n’a pas d’équivalent SQLite (SQLite stocke NaN comme NULL et Prisma ne lit aucun Decimal infini)`)
      if (parts.digits === '0') return 0
      if (parts.exponent >= 0 && parts.digits.length + parts.exponent <= 19) {
        const integer = BigInt(`${parts.negative ? '-' : ''}${parts.digits}${'0'.repeat(parts.exponent)}`)
        if (integer >= INT64_MIN && integer <= INT64_MAX) return integer
      }
      const number = Number(text)
      if (canonicalDecimal(String(number)) !== canonicalDecimal(text)) {
        throw new UnconvertibleValueError(
          `numeric ${text} ne peut pas être conservé exactement : le DECIMAL de SQLite est un flottant 64 bits (environ 15 chiffres significatifs), relu comme ${String(number)}`,
          'Arrondissez la valeur dans PostgreSQL (par exemple à 15 chiffres significatifs) si c’est acceptable, ou gardez cette base sur PostgreSQL ; `--dry-run` liste toutes ces valeurs.',
        )
      }
      return number
    },
    identity: false,
    canonicalFromPostgres: (text) => canonicalDecimal(text),
    canonicalFromSqlite: (value) => (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'string' ? canonicalDecimal(String(value)) : unexpected(value)),
  },
  real: {
    toSqlite(text) {
      const number = Number(text)
      if (Number.isNaN(number)) throw new UnconvertibleValueError(`le flottant NaN n’a pas d’équivalent SQLite (SQLite stocke NaN comme NULL)`)
      return number
    },
    identity: false,
    canonicalFromPostgres: (text) => String(Number(text)),
    canonicalFromSqlite: (value) => (typeof value === 'number' ? String(value) : typeof value === 'bigint' ? String(Number(value)) : unexpected(value)),
  },
  boolean: {
    toSqliteInC: 'b',
    canonicalFromSqliteInC: 'b',
    toSqlite: (text) => (text === 't' ? 1 : 0),
    identity: true,
    canonicalFromPostgres: same,
    canonicalFromSqlite: (value) => (value === 1n ? 't' : value === 0n ? 'f' : unexpected(value)),
  },
  json: {
    toSqlite: same,
    identity: false,
    canonicalFromPostgres: (text) => canonicalJson(text),
    canonicalFromSqlite: (value) =>
      typeof value === 'string' ? canonicalJson(value) : typeof value === 'number' || typeof value === 'bigint' ? canonicalJson(String(value)) : unexpected(value),
  },
  bytes: {
    toSqliteInC: 'x',
    canonicalFromSqliteInC: 'x',
    toSqlite(text) {
      if (!text.startsWith('\\x')) throw new UnconvertibleValueError('bytea reçu au format escape ; hex attendu')
      return Buffer.from(text.slice(2), 'hex')
    },
    identity: true,
    canonicalFromPostgres: same,
    canonicalFromSqlite: (value) => (Buffer.isBuffer(value) ? `\\x${value.toString('hex')}` : unexpected(value)),
  },
}

/**
 * Dates and times: stored as Prisma stores DateTime; the canonical form is PostgreSQL's own text
 * for the column's type (`timestamp`, `timestamptz` with `+00`, `date`), rebuilt on the SQLite side.
 */
function datetimeConverter(type: 'timestamp' | 'timestamptz' | 'date'): Converter {
  return {
    toSqliteInC: 'd',
    canonicalFromSqliteInC: type === 'timestamptz' ? 'z' : type === 'date' ? 'D' : 'd',
    toSqlite(text) {
      const parsed = parsePostgresDateTime(text)
      if (typeof parsed === 'string') throw new UnconvertibleValueError(parsed)
      let fraction = parsed.fraction
      while (fraction.endsWith('0')) fraction = fraction.slice(0, -1)
      return `${parsed.date}T${parsed.time}.${fraction.length <= 3 ? fraction.padEnd(3, '0') : fraction.padEnd(6, '0')}+00:00`
    },
    identity: true,
    canonicalFromPostgres: same,
    canonicalFromSqlite(value) {
      if (typeof value !== 'string') return unexpected(value)
      const parsed = parseSqliteDateTime(value)
      if (parsed === undefined) return unexpected(value)
      let fraction = parsed.fraction
      while (fraction.endsWith('0')) fraction = fraction.slice(0, -1)
      if (type === 'date') return parsed.time === '00:00:00' && fraction === '' ? parsed.date : unexpected(value)
      return `${parsed.date} ${parsed.time}${fraction === '' ? '' : `.${fraction}`}${type === 'timestamptz' ? '+00' : ''}`
    },
  }
}

/**
 * The converter of a column of `kind`; `type` tells arrays their element and dates their PostgreSQL
 * type (default `timestamp`); `overrides` replace its `toSqlite`.
 * @example converterFor('datetime').toSqlite('2026-01-21 15:30:00.12') // '2026-01-21T15:30:00.120+00:00'
 */
export function converterFor(kind: ValueKind, type?: PostgresType, overrides: ConversionOverrides = {}): Converter {
  const base =
    kind === 'array'
      ? arrayConverter(type?.element ?? { kind: 'base', name: 'text' })
      : kind === 'datetime'
        ? datetimeConverter(type?.name === 'timestamptz' || type?.name === 'date' ? type.name : 'timestamp')
        : CONVERTERS[kind]
  const override = overrides[kind]
  if (override === undefined) return base
  const { toSqliteInC: _replaced, ...kept } = base
  return { ...kept, toSqlite: override }
}

/**
 * The converter of an array column: the array literal becomes a JSON array; the canonical form of
 * both sides is that JSON, re-serialised from a parse of each side.
 */
function arrayConverter(element: PostgresType): Converter {
  const elementKind = element.name
  const numeric = INTEGER_TYPES.has(elementKind) || ['int8', 'numeric', 'float4', 'float8'].includes(elementKind)
  const encode = (value: string | null): string => {
    if (value === null) return 'null'
    if (numeric) {
      if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(value)) throw new UnconvertibleValueError(`l’élément de tableau ${value} n’est pas un nombre fini, ce que JSON ne peut pas contenir`)
      return value
    }
    if (elementKind === 'bool') return value === 't' ? 'true' : 'false'
    if (elementKind === 'json' || elementKind === 'jsonb') return value
    return JSON.stringify(value)
  }
  const toJson = (text: string) => {
    const parsed = parsePostgresArray(text)
    if (typeof parsed === 'string') throw new UnconvertibleValueError(parsed)
    const render = (node: ArrayNode): string => (Array.isArray(node) ? `[${node.map(render).join(',')}]` : encode(node))
    return render(parsed)
  }
  return {
    toSqlite: toJson,
    identity: false,
    canonicalFromPostgres(text) {
      try {
        return JSON.stringify(JSON.parse(toJson(text)))
      } catch {
        return `\u0000${text}`
      }
    },
    canonicalFromSqlite(value) {
      if (typeof value !== 'string') return unexpected(value)
      try {
        return JSON.stringify(JSON.parse(value))
      } catch {
        return unexpected(value)
      }
    },
  }
}

/** A number's decimal parts: sign, significant digits (no leading or trailing zeros), power of ten. Undefined for NaN and infinities. */
export function decimalParts(text: string): { negative: boolean; digits: string; exponent: number } | undefined {
  const match = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text)
  if (match === null || (match[2] === '' && (match[3] ?? '') === '')) return undefined
  const whole = match[2] ?? ''
  const fraction = match[3] ?? ''
  let digits = (whole + fraction).replace(/^0+/, '')
  let exponent = Number(match[4] ?? 0) - fraction.length
  const trailing = digits.length - digits.replace(/0+$/, '').length
  digits = digits.slice(0, digits.length - trailing)
  exponent += trailing
  if (digits === '') return { negative: false, digits: '0', exponent: 0 }
  return { negative: match[1] === '-', digits, exponent }
}

/** `19.9900` → `1999e-2`, `-0.0` → `0`, `1e+21` → `1e21`: equal for equal numbers whatever their spelling. */
export function canonicalDecimal(text: string): string {
  const parts = decimalParts(text)
  if (parts === undefined) return `\u0000${text}`
  return parts.digits === '0' ? '0' : `${parts.negative ? '-' : ''}${parts.digits}e${parts.exponent}`
}

/**
 * JSON as the app reads it: Prisma parses JSON text on both engines, and SQLite's JSONB column has
 * numeric affinity (a bare number is stored as a number). Bare numbers are compared as parsed;
 * anything else by its exact text.
 */
function canonicalJson(text: string): string {
  return /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(text) ? JSON.stringify(JSON.parse(text)) : text
}

interface ParsedDateTime {
  date: string
  time: string
  /** Fraction of a second, as printed (0 to 6 digits). */
  fraction: string
}

/** Parses timestamp, timestamptz (+00, the session being UTC) and date text; returns a reason when unsupported. */
export function parsePostgresDateTime(text: string): ParsedDateTime | string {
  // `2026-01-21`, `2026-01-21 15:30:00`, `… 15:30:00.123456`, each optionally followed by `+00`.
  let end = text.length
  if (text.endsWith('+00')) end -= 3
  else if (text.endsWith('+00:00')) end -= 6
  if (isDate(text) && (end === 10 || (text.charCodeAt(10) === 0x20 && isTime(text, 11) && (end === 19 || (text.charCodeAt(19) === 0x2e && end > 20 && end <= 26 && isDigits(text, 20, end)))))) {
    return { date: text.slice(0, 10), time: end === 10 ? '00:00:00' : text.slice(11, 19), fraction: end > 20 ? text.slice(20, end) : '' }
  }
  if (text === 'infinity' || text === '-infinity') return `le timestamp ${text} n’a pas d’équivalent dans le DateTime de Prisma`
  if (text.endsWith(' BC')) return `le timestamp ${text} est avant l’an 1, hors de portée du DateTime de Prisma`
  if (/^\d{5,}-/.test(text)) return `le timestamp ${text} est après l’an 9999, hors de portée du DateTime de Prisma`
  return `le timestamp ${text} n’est pas dans la forme ISO attendue`
}

/** Parses what the copy writes in a DATETIME column, and nothing else: `2026-01-21T15:30:00.123+00:00` (3 or 6 fraction digits). */
function parseSqliteDateTime(text: string): ParsedDateTime | undefined {
  const end = text.length - 6
  if ((end !== 23 && end !== 26) || !text.endsWith('+00:00') || !isDate(text) || text.charCodeAt(10) !== 0x54 || !isTime(text, 11)) return undefined
  if (text.charCodeAt(19) !== 0x2e || !isDigits(text, 20, end)) return undefined
  return { date: text.slice(0, 10), time: text.slice(11, 19), fraction: text.slice(20, end) }
}

function isDigits(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** `YYYY-MM-DD` at the start. */
function isDate(text: string): boolean {
  return text.length >= 10 && isDigits(text, 0, 4) && text.charCodeAt(4) === 0x2d && isDigits(text, 5, 7) && text.charCodeAt(7) === 0x2d && isDigits(text, 8, 10)
}

/** `HH:MM:SS` at `at`. */
function isTime(text: string, at: number): boolean {
  return text.length >= at + 8 && isDigits(text, at, at + 2) && text.charCodeAt(at + 2) === 0x3a && isDigits(text, at + 3, at + 5) && text.charCodeAt(at + 5) === 0x3a && isDigits(text, at + 6, at + 8)
}

type ArrayNode = string | null | ArrayNode[]

/** Parses a PostgreSQL array literal (`{a,"b c",NULL,{1,2}}`); returns a reason when unsupported. */
export function parsePostgresArray(text: string): ArrayNode[] | string {
  if (text.startsWith('[')) return `le tableau ${text.slice(0, 40)} a des bornes explicites (ne commençant pas à 1), que JSON ne peut pas contenir`
  let position = 0
  const fail = () => `le littéral de tableau ${text.slice(0, 40)} est illisible`
  const parseList = (): ArrayNode[] | string => {
    if (text[position] !== '{') return fail()
    position++
    const items: ArrayNode[] = []
    if (text[position] === '}') {
      position++
      return items
    }
    for (;;) {
      const char = text[position]
      if (char === '{') {
        const nested = parseList()
        if (typeof nested === 'string') return nested
        items.push(nested)
      } else if (char === '"') {
        position++
        let value = ''
        for (;;) {
          const c = text[position++]
          if (c === undefined) return fail()
          if (c === '\\') value += text[position++] ?? ''
          else if (c === '"') break
          else value += c
        }
        items.push(value)
      } else {
        let end = position
        while (end < text.length && text[end] !== ',' && text[end] !== '}') end++
        const raw = text.slice(position, end)
        position = end
        items.push(raw === 'NULL' ? null : raw)
      }
      const separator = text[position++]
      if (separator === '}') return items
      if (separator !== ',') return fail()
    }
  }
  const result = parseList()
  return typeof result !== 'string' && position !== text.length ? fail() : result
}
