/**
 * Content checksums that do not depend on row order or on the engine (drills and tests compare
 * them): one tenant's rows, or a whole table.
 */
import type { DatabaseHandle } from '../db/connection.ts'
import { ToolkitError } from '../errors.ts'
import { tenantGraph } from './graph.ts'
import { catalogTables, readTenantRows, tenantChecksumOf } from './plan.ts'
import { tableChecksum, type TableChecksum, type TenantChecksum } from './rows.ts'
import { engineNamed } from '../engines/index.ts'

/**
 * The content checksum of one tenant in a live database: per owned table, the order-independent
 * checksum of its rows after normalisation, and one checksum over all of them.
 * @example const { checksum } = await tenantChecksum({ db, tenantId: 'tenant-demo' })
 */
export async function tenantChecksum(options: { db: DatabaseHandle; tenantId: string; tenantTable?: string }): Promise<TenantChecksum> {
  const graph = tenantGraph(await catalogTables(options.db), options.tenantTable)
  const session = await engineNamed(options.db.engine).openTenantSession(options.db)
  try {
    const tables = []
    for (const entry of graph.owned) tables.push(await readTenantRows(session, options.db, graph, entry, options.tenantId))
    return tenantChecksumOf(options.tenantId, tables)
  } finally {
    await session.close()
  }
}

/**
 * The content checksum of a whole table (every row, streamed), e.g. the shared Plans.
 * @example const { rows, checksum } = await tableContentChecksum({ db, table: 'Plan' })
 */
export async function tableContentChecksum(options: { db: DatabaseHandle; table: string }): Promise<TableChecksum> {
  const reader = await options.db.openTableReader()
  try {
    const table = (await reader.tables()).find((t) => t.name === options.table)
    if (table === undefined) throw new ToolkitError(`la table ${options.table} n'existe pas dans ${options.db.redactedUrl}`)
    return await tableChecksum(reader, table)
  } finally {
    await reader.close()
  }
}
