/**
 * What a statement asks of one table, read from its SQL text: the columns it filters by equality,
 * by range, and sorts by (the three parts of a composite index, in that order), and which column
 * each placeholder stands for (to replay a normalised statement with representative values).
 */
import { filteredColumns } from './_index-sql.ts'

export interface TableShape {
  table: string
  equality: string[]
  range: string[]
  orderBy: string[]
}

const strip = (sql: string) => sql.replace(/'(?:[^']|'')*'/g, '?').replace(/[`"]/g, '')

/** Tables a statement reads (FROM, JOIN, UPDATE, DELETE FROM), schema qualifiers removed. */
export function tablesRead(sql: string): string[] {
  return [...new Set([...strip(sql).matchAll(/\b(?:FROM|JOIN|UPDATE)\s+(?:\w+\.)?(\w+)/gi)].map((m) => m[1]!))]
}

/**
 * @example tableShape('SELECT … FROM "Dossier" WHERE "Dossier"."tenantId" = $1 AND "Dossier"."statut" = $2 ORDER BY "Dossier"."dateEcheance" ASC', 'Dossier', columns)
 * // { table: 'Dossier', equality: ['tenantId', 'statut'], range: [], orderBy: ['dateEcheance'] }
 */
export function tableShape(sql: string, table: string, tableColumns: readonly string[]): TableShape {
  const filters = filteredColumns(sql, table, tableColumns)
  const text = strip(sql)
  const known = new Set(tableColumns)
  const single = tablesRead(sql).every((name) => name === table)
  const orderBy: string[] = []
  // The outermost ORDER BY that sorts this table's rows (Prisma puts it after the WHERE of the same SELECT).
  for (const clause of text.matchAll(/\bORDER BY\s+([\s\S]*?)(?=\bLIMIT\b|\bOFFSET\b|\)|$)/gi)) {
    for (const item of clause[1]!.split(',')) {
      const match = /^\s*(?:(?:\w+\.)?(\w+)\.)?(\w+)\s*(?:ASC|DESC)?(?:\s+NULLS\s+(?:FIRST|LAST))?\s*$/i.exec(item)
      if (match === null) break
      const [, owner, column] = match
      if ((owner === table || (owner === undefined && single)) && known.has(column!) && !orderBy.includes(column!)) orderBy.push(column!)
      else break
    }
  }
  return {
    table,
    equality: filters.filter((f) => f.kind === 'equality').map((f) => f.column),
    range: filters.filter((f) => f.kind === 'range').map((f) => f.column),
    orderBy,
  }
}

export type PlaceholderRole =
  | { kind: 'equality'; table: string; column: string; position: number }
  | { kind: 'range'; table: string; column: string }
  | { kind: 'limit' }
  | { kind: 'offset' }
  | { kind: 'unknown' }

/**
 * What each placeholder of a statement stands for, in parameter order (`?` in order of appearance,
 * `$n` by its number). `position` counts the values of one IN list.
 */
export function placeholderRoles(sql: string, columnsOf: ReadonlyMap<string, readonly string[]>): PlaceholderRole[] {
  const text = strip(sql)
  const tables = tablesRead(sql)
  const roles: PlaceholderRole[] = []
  let sequential = 0
  for (const match of text.matchAll(/\?|\$(\d+)/g)) {
    const index = match[1] === undefined ? sequential++ : Number(match[1]) - 1
    const before = text.slice(Math.max(0, match.index - 240), match.index)
    let role: PlaceholderRole = { kind: 'unknown' }
    if (/\bLIMIT\s*$/i.test(before)) role = { kind: 'limit' }
    else if (/\bOFFSET\s*$/i.test(before)) role = { kind: 'offset' }
    else {
      const found = /(?:(\w+)\.)?(\w+)\s*(=|<>|!=|<=|>=|<|>|\bIN\b|\bLIKE\b|\bBETWEEN\b)\s*\(?\s*(?:CAST\s*\(\s*)?((?:[^(),]*?(?:\([^()]*\))?[^(),]*?,\s*(?:CAST\s*\(\s*)?)*)$/i.exec(before)
      if (found !== null) {
        const [, owner, column, operator, list] = found
        const table = owner !== undefined && columnsOf.get(owner)?.includes(column!) ? owner : tables.find((t) => columnsOf.get(t)?.includes(column!))
        if (table !== undefined) {
          role = /^(=|IN)$/i.test(operator!.trim())
            ? { kind: 'equality', table, column: column!, position: (list!.match(/,/g) ?? []).length }
            : { kind: 'range', table, column: column! }
        }
      }
    }
    if (roles[index] === undefined || roles[index]!.kind === 'unknown') roles[index] = role
  }
  return Array.from({ length: roles.length }, (_, i) => roles[i] ?? { kind: 'unknown' })
}
