/**
 * A tenant's sections of a compressed backup: what lets a tenant restore read only its own bytes.
 *
 * At create, data.json writes the rows of the tenant's tables grouped by tenant (the root by its
 * key, each table owned straight through the root by its key column to it), so each (table, tenant)
 * is one run of the file. The archive's gzip members each hold BLOCK_SIZE bytes of the tar stream,
 * so a run's bytes are in known members; the metadata beside the archive records, per tenant (keyed
 * by a hash of its id and the backup's id — never a name: that file is plaintext), per table, the
 * run's bytes in data.json, and per member of data.json its compressed length and SHA-256.
 *
 * At restore, only those members are read (a range of the stored archive), each checked against
 * its SHA-256 before it is inflated; the run's lines are then parsed as the full path parses them.
 */
import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import { ToolkitError } from '../errors.ts'
import type { MemberSpan } from '../backup/archive/archive.ts'
import { BLOCK_SIZE } from '../backup/archive/gzip-blocks.ts'
import type { DataJsonRun } from '../backup/exporters/json.ts'
import type { TableInfo } from '../db/table-reader.ts'
import type { TenantIndex } from '../backup/metadata.ts'
import type { TenantGraph } from './graph.ts'

/** The index's key of a tenant: 128 bits of SHA-256 over the backup's id and the tenant's id. */
export function tenantKey(backupId: string, tenantId: string): string {
  return createHash('sha256').update(`${backupId}\n${tenantId}`).digest('hex').slice(0, 32)
}

/**
 * The column each table's rows are grouped by in data.json: the root by its key, a table owned
 * straight through the root (one-column foreign key to the root's key) by that column. Tables owned
 * through another table are not grouped (a tenant restore that needs them reads the whole file).
 * @example groupingColumns(tenantGraph(tables)) // Map { Tenant → id, User → tenantId, Client → tenantId, Dossier → tenantId }
 */
export function groupingColumns(graph: TenantGraph): Map<string, string> {
  const columns = new Map<string, string>([[graph.root.table.name, graph.root.key[0]!]])
  for (const entry of graph.owned) {
    const fk = entry.owner
    if (fk?.referencedTable === graph.root.table.name && fk.columns.length === 1 && fk.referencedColumns[0] === graph.root.key[0]) columns.set(entry.table.name, fk.columns[0]!)
  }
  return columns
}

/**
 * The index of a backup whose data.json starts at `offset` of the tar stream, from the runs its
 * export recorded and the members that hold it.
 */
export function buildTenantIndex(input: { backupId: string; tables: readonly TableInfo[]; groupBy: ReadonlyMap<string, string>; runs: readonly DataJsonRun[]; offset: number; span: MemberSpan }): TenantIndex {
  const tenants: TenantIndex['tenants'] = {}
  for (const run of input.runs) {
    const key = tenantKey(input.backupId, run.owner)
    ;(tenants[key] ??= {})[run.table] = [run.start, run.end]
  }
  return {
    version: 1,
    offset: input.offset,
    blockSize: BLOCK_SIZE,
    first: input.span.first,
    memberOffset: input.span.offset,
    members: input.span.members,
    tables: input.tables.map((table) => ({
      name: table.name,
      columns: table.columns.map((c) => ({ name: c.name, type: c.declaredType })),
      ...(input.groupBy.has(table.name) ? { groupedBy: input.groupBy.get(table.name)! } : {}),
    })),
    tenants,
  }
}

/** Reads `length` bytes of the stored archive from `offset` (a ranged GET, a positioned read). */
export type ArchiveRangeReader = (offset: number, length: number) => Promise<Buffer>

/**
 * The row lines of `table`'s run of a tenant (`key`), read through `read`: only the members that
 * hold it, each refused unless its SHA-256 is the index's, before it is inflated. No run: no rows.
 * @example const lines = await readTenantRun(index, tenantKey(id, tenantId), 'Dossier', (o, n) => store.readArchiveRange(entry, o, n))
 */
export async function readTenantRun(index: TenantIndex, key: string, table: string, read: ArchiveRangeReader): Promise<string[]> {
  const run = index.tenants[key]?.[table]
  if (run === undefined || run[1] <= run[0]) return []
  const [from, to] = [index.offset + run[0], index.offset + run[1]]
  const firstMember = Math.floor(from / index.blockSize)
  const lastMember = Math.floor((to - 1) / index.blockSize)
  if (firstMember < index.first || lastMember - index.first >= index.members.length) throw damagedIndex(`la section ${table} sort des membres indexés`)
  let start = index.memberOffset
  for (let i = index.first; i < firstMember; i++) start += index.members[i - index.first]![0]
  const wanted = index.members.slice(firstMember - index.first, lastMember - index.first + 1)
  const length = wanted.reduce((sum, [size]) => sum + size, 0)
  const bytes = await read(start, length)
  if (bytes.length !== length) throw new ToolkitError(`l'archive est plus courte que son index (${bytes.length} octets lus sur ${length} à l'octet ${start}) : rien n'a été écrit`, { hint: 'Lancez `advanced-backup verify <id>` ; restaurez depuis une autre sauvegarde.' })
  const inflated: Buffer[] = []
  let at = 0
  for (const [i, [size, sha256]] of wanted.entries()) {
    const member = bytes.subarray(at, at + size)
    // Checked before one byte of it is used.
    if (createHash('sha256').update(member).digest('hex') !== sha256) {
      throw new ToolkitError(`le membre gzip n° ${firstMember + i + 1} de l'archive (à l'octet ${start + at}), qui contient des lignes ${table} du cabinet, a changé depuis la sauvegarde (SHA-256 différent de l'index) : rien n'a été écrit`, {
        hint: 'Lancez `advanced-backup verify <id>` ; restaurez depuis une autre sauvegarde.',
      })
    }
    inflated.push(gunzipSync(member))
    at += size
  }
  const text = Buffer.concat(inflated).subarray(from - firstMember * index.blockSize, to - firstMember * index.blockSize).toString('utf8')
  // A run is `,\n      {…}` per row: its lines are the rows (the first separator line aside).
  return text.split('\n').filter((line) => line.includes('{'))
}

function damagedIndex(detail: string): ToolkitError {
  return new ToolkitError(`l'index des cabinets de la sauvegarde est incohérent (${detail}) : rien n'a été écrit`, { hint: 'Lancez `advanced-backup verify <id>` ; restaurez depuis une autre sauvegarde.' })
}
