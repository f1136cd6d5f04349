/**
 * Which tables belong to a tenant, found by following the foreign keys of the database's own catalog
 * (never a list of models): the root table (Tenant), every table with a foreign key to the root, and
 * every table with a foreign key to a table already found, transitively. A table reached only the
 * other way (the root, or an owned table, points to it: Plan) is shared and never touched.
 */
import { quoteIdentifier } from '../db/connection.ts'
import { tablesInDependencyOrder, type ForeignKey, type TableInfo } from '../db/table-reader.ts'
import { ToolkitError } from '../errors.ts'

export const DEFAULT_TENANT_TABLE = 'Tenant'

export interface OwnedTable {
  table: TableInfo
  /** The foreign key through which rows belong to the tenant (undefined for the root). */
  owner?: ForeignKey
  /** Distance from the root along `owner` (0 for the root). */
  depth: number
  /** Primary-key columns, in key order. */
  key: string[]
}

export interface TenantGraph {
  root: OwnedTable
  /** The root and every owned table, parents before children (the insert order). */
  owned: OwnedTable[]
  /** Tables the owned rows point to that do not belong to any tenant (Plan), by name. */
  shared: string[]
}

function keyOf(table: TableInfo): string[] {
  return table.columns.filter((c) => c.primaryKeyPosition > 0).sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition).map((c) => c.name)
}

/**
 * @example const graph = tenantGraph(await reader.tables()) // root Tenant; owned User, Client, Dossier; shared Plan
 */
export function tenantGraph(tables: readonly TableInfo[], rootName = DEFAULT_TENANT_TABLE): TenantGraph {
  const rootTable = tables.find((t) => t.name === rootName)
  if (rootTable === undefined) {
    throw new ToolkitError(`la base n'a pas de table "${rootName}" : impossible de savoir ce qui appartient à un cabinet`, { hint: 'Appliquez les migrations Prisma à la base cible.' })
  }
  const rootKey = keyOf(rootTable)
  if (rootKey.length !== 1) throw new ToolkitError(`la table "${rootName}" doit avoir une clé primaire d'une seule colonne (elle en a ${rootKey.length})`)
  const found = new Map<string, OwnedTable>([[rootName, { table: rootTable, depth: 0, key: rootKey }]])
  // Breadth first: each table belongs through its shortest path, its direct key to the root first.
  for (let depth = 1; ; depth++) {
    const added: OwnedTable[] = []
    for (const table of tables) {
      if (found.has(table.name)) continue
      const owner = table.foreignKeys.find((fk) => found.get(fk.referencedTable)?.depth === depth - 1 && fk.referencedTable !== table.name)
      if (owner === undefined) continue
      const key = keyOf(table)
      if (key.length === 0) throw new ToolkitError(`la table "${table.name}" appartient aux cabinets mais n'a pas de clé primaire : ses lignes ne peuvent pas être comparées`)
      added.push({ table, owner, depth, key })
    }
    if (added.length === 0) break
    for (const entry of added) found.set(entry.table.name, entry)
  }
  const order = tablesInDependencyOrder([...found.values()].map((o) => o.table))
  const owned = order.map((t) => found.get(t.name)!)
  const shared = new Set<string>()
  for (const entry of owned) for (const fk of entry.table.foreignKeys) if (!found.has(fk.referencedTable)) shared.add(fk.referencedTable)
  return { root: found.get(rootName)!, owned, shared: [...shared].sort() }
}

/**
 * The SQL condition "this row of `entry.table` belongs to the tenant" (one `?`: the tenant's id), for
 * a table written `alias` (default: its own name).
 */
export function ownershipCondition(graph: TenantGraph, entry: OwnedTable, alias = quoteIdentifier(entry.table.name), level = 0): string {
  if (entry.owner === undefined) return `${alias}.${quoteIdentifier(entry.key[0]!)} = ?`
  const parent = graph.owned.find((o) => o.table.name === entry.owner!.referencedTable)!
  const fk = entry.owner
  if (parent.owner === undefined && fk.columns.length === 1 && fk.referencedColumns[0] === parent.key[0]) {
    return `${alias}.${quoteIdentifier(fk.columns[0]!)} = ?`
  }
  const parentAlias = `p${level}`
  const joins = fk.columns.map((column, i) => `${parentAlias}.${quoteIdentifier(fk.referencedColumns[i]!)} = ${alias}.${quoteIdentifier(column)}`).join(' AND ')
  return `EXISTS (SELECT 1 FROM ${quoteIdentifier(parent.table.name)} AS ${parentAlias} WHERE ${joins} AND ${ownershipCondition(graph, parent, parentAlias, level + 1)})`
}

