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
import { isTenantRuns, type TenantIndex, type TenantRuns } from '../backup/metadata.ts'
import { openSealedValue, sealValue } from '../encryption/sealed-value.ts'
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

/** The sealed-value purpose of an encrypted backup's `sealedTenants`. */
const SEAL_PURPOSE = 'tenant-index'

/**
 * The index as an encrypted backup keeps it: `tenants` (each cabinet's runs, hence its size) sealed
 * with the backup's data key, the rest (members and their hashes, tables) as it is.
 */
export function sealTenantIndex(index: TenantIndex, dataKey: Buffer, backupId: string): TenantIndex {
  const { tenants, ...rest } = index
  return { ...rest, sealedTenants: sealValue(tenants ?? {}, dataKey, SEAL_PURPOSE, backupId) }
}

/**
 * Every tenant's runs of `index`: as stored, or unsealed with the data key of an encrypted backup
 * (undefined when it is sealed and no key is given).
 */
export function tenantRunsOf(index: TenantIndex, backupId: string, dataKey: Buffer | undefined): TenantRuns | undefined {
  if (index.sealedTenants === undefined) return index.tenants
  if (dataKey === undefined) return undefined
  const runs = openSealedValue(index.sealedTenants, dataKey, SEAL_PURPOSE, backupId, `l'index des cabinets du backup ${backupId}`)
  if (!isTenantRuns(runs)) throw damagedIndex('son contenu déchiffré n’est pas un index des cabinets')
  return runs
}

/** What to do when the tenant's bytes or the index disagree with the backup: verify the whole of it. */
const VERIFY_HINT = 'Lancez `advanced-backup verify <id>` ; restaurez depuis une autre sauvegarde.'

/** Reads `length` bytes of the stored archive from `offset` (a ranged GET, a positioned read). */
export type ArchiveRangeReader = (offset: number, length: number) => Promise<Buffer>

/**
 * The row lines of each of `tables`' runs of one tenant (`runs`: its entry of `tenantRunsOf(index, …)`),
 * read through `read`: only the members that hold them, each read once (neighbouring members in one
 * read), each refused unless its SHA-256 is the index's, before it is inflated. A table without a run
 * has no rows of the tenant.
 * @example const lines = await readTenantRuns(index, tenantRunsOf(index, id, dataKey)![tenantKey(id, tenantId)]!, ['Tenant', 'Dossier'], (o, n) => store.readArchiveRange(entry, o, n))
 */
export async function readTenantRuns(index: TenantIndex, runs: TenantRuns[string], tables: readonly string[], read: ArchiveRangeReader): Promise<Map<string, string[]>> {
  const wanted = new Map<string, [from: number, to: number, first: number, last: number]>()
  for (const table of tables) {
    const run = runs[table]
    if (run === undefined || run[1] <= run[0]) continue
    const [from, to] = [index.offset + run[0], index.offset + run[1]]
    const [first, last] = [Math.floor(from / index.blockSize), Math.floor((to - 1) / index.blockSize)]
    if (first < index.first || last - index.first >= index.members.length) throw damagedIndex(`la section ${table} sort des membres indexés`)
    wanted.set(table, [from, to, first, last])
  }
  const members = new Set<number>()
  for (const [, , first, last] of wanted.values()) for (let m = first; m <= last; m++) members.add(m)
  const starts = [index.memberOffset]
  for (const [length] of index.members) starts.push(starts.at(-1)! + length)
  const inflated = new Map<number, Buffer>()
  const sorted = [...members].sort((a, b) => a - b)
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    const [first, last] = [sorted[i]!, sorted[j]!]
    const [start, end] = [starts[first - index.first]!, starts[last - index.first + 1]!]
    const bytes = await read(start, end - start)
    if (bytes.length !== end - start) throw new ToolkitError(`l'archive est plus courte que son index (${bytes.length} octets lus sur ${end - start} à l'octet ${start}) : rien n'a été écrit`, { hint: VERIFY_HINT })
    for (let m = first; m <= last; m++) {
      const [size, sha256] = index.members[m - index.first]!
      const member = bytes.subarray(starts[m - index.first]! - start, starts[m - index.first]! - start + size)
      // Checked before one byte of it is used.
      if (createHash('sha256').update(member).digest('hex') !== sha256) {
        throw new ToolkitError(`le membre gzip n° ${m + 1} de l'archive (à l'octet ${starts[m - index.first]}), qui contient des lignes du cabinet, a changé depuis la sauvegarde (SHA-256 différent de l'index) : rien n'a été écrit`, {
          hint: VERIFY_HINT,
        })
      }
      inflated.set(m, gunzipSync(member))
    }
    i = j + 1
  }
  const lines = new Map<string, string[]>(tables.map((table) => [table, []]))
  for (const [table, [from, to, first, last]] of wanted) {
    const parts: Buffer[] = []
    for (let m = first; m <= last; m++) parts.push(inflated.get(m)!)
    const text = Buffer.concat(parts).subarray(from - first * index.blockSize, to - first * index.blockSize).toString('utf8')
    // A run is `,\n      {…}` per row: its lines are the rows (the first separator line aside).
    lines.set(table, text.split('\n').filter((line) => line.includes('{')))
  }
  return lines
}

function damagedIndex(detail: string): ToolkitError {
  return new ToolkitError(`l'index des cabinets de la sauvegarde est incohérent (${detail}) : rien n'a été écrit`, { hint: VERIFY_HINT })
}
