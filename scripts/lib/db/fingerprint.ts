/**
 * SQL fingerprints: the statement with its literals replaced by `?`, so the executions of one query
 * shape aggregate together whatever their values (and whatever the length of their IN lists).
 */
import { createHash } from 'node:crypto'

/**
 * @example fingerprintSql(`SELECT * FROM "Dossier" WHERE "tenantId" = 'a' AND id IN ($1, $2, $3) LIMIT 20`)
 * // 'SELECT * FROM "Dossier" WHERE "tenantId" = ? AND id IN (?) LIMIT ?'
 */
export function fingerprintSql(sql: string): string {
  return redactLiterals(sql.replace(/--[^\n]*/g, ' ').replace(/\/\*[\s\S]*?\*\//g, ' '))
    .replace(/\$\d+/g, '?')
    .replace(/\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)/gi, 'IN (?)')
    .replace(/\(\s*\?(?:\s*,\s*\?)+\s*\)/g, '(?)')
    .replace(/\(\?\)(?:\s*,\s*\(\?\))+/g, '(?)')
    .replace(/\s+/g, ' ')
    .trim()
}

/**
 * Text that may quote SQL (a statement, a plan line, a message citing a plan condition) with every
 * string and number literal replaced by `?`: what leaves the process shows the query's shape,
 * never a value from the data. A number compared in a condition is masked whatever touches it
 * (`= 5"`), and so is every number standing alone (`LIMIT 20`, `IN (1, 2)`, `rows=3`, `1.5e3`).
 * @example redactLiterals(`(email = 'jean@example.fr'::text) AND (n > 42)`) // '(email = ?::text) AND (n > ?)'
 */
export function redactLiterals(text: string): string {
  return text
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/((?:=|<>|!=|<=|>=|<|>|\bLIKE|\bIN)\s*\(?\s*)-?\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, '$1?')
    .replace(/(?<![\w"`$.?])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w"`])/gi, '?')
}

/** A short stable id of a fingerprint, for labels and file names. */
export function fingerprintId(fingerprint: string): string {
  return createHash('sha256').update(fingerprint).digest('hex').slice(0, 12)
}

/**
 * The fingerprint as people read it: no schema or table qualifiers, no identifier quotes, a long
 * column list shown as `…`, cut to `maxLength`.
 * @example displaySql('SELECT `main`.`Plan`.`id`, `main`.`Plan`.`name` FROM `main`.`Plan` WHERE ?=?') // 'SELECT id, name FROM Plan'
 */
export function displaySql(fingerprint: string, maxLength = 110): string {
  let text = fingerprint
    .replace(/[`"]([\w$]+)[`"]/g, '$1')
    .replace(/\b(?:main|public)\.(?=\w)/g, '')
    .replace(/\b[A-Z]\w*\.(?=\w)/g, '')
    .replace(/^SELECT ((?:[^,]+,){3,}[^,]+?) FROM /i, 'SELECT … FROM ')
    // Prisma's always-true filler (`WHERE 1=1`), fingerprinted as `?=?`.
    .replace(/ WHERE \?=\?(?= LIMIT| ORDER| GROUP|\)|$)/g, '')
    .replace(/ AND \?=\?/g, '')
  if (text.length > maxLength) text = `${text.slice(0, maxLength - 1).trimEnd()}…`
  return text
}

/** Whether a statement only reads (the statements caching and N+1 detection are about). */
export function isReadStatement(sql: string): boolean {
  return /^\s*(?:\(\s*)*(?:SELECT|WITH)\b/i.test(sql) && !/\b(?:INSERT|UPDATE|DELETE)\b/i.test(sql.replace(/'(?:[^']|'')*'/g, ''))
}
