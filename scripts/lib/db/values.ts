/**
 * How one stored value becomes text in the logical exports (data.json and the CSV files), the same
 * rules for every engine; each engine's `ValueCodec` (engines/<engine>/values.ts, handed out by its
 * table reader) applies them to the values that reader delivers:
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
/** Real numbers: shortest text that reads back to the same double, never mistaken for an integer. */
export function realText(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return 'Infinity'
  if (value === -Infinity) return '-Infinity'
  if (Object.is(value, -0)) return '-0.0'
  const text = String(value)
  return /^-?\d+$/.test(text) ? `${text}.0` : text
}

/** A real as a JSON token: a number, or a string for NaN and the infinities (JSON has no such numbers). */
export function realJson(value: number): string {
  return Number.isFinite(value) ? realText(value) : JSON.stringify(realText(value))
}
