/**
 * The plan of a tenant restore, computed without writing anything: the backup verified, the tenant
 * found, its rows read from the backup's data.json and from the live database, compared per table,
 * and every reason to refuse listed (schema, missing shared rows, conflicts with other tenants).
 */
import { tmpdir } from 'node:os'
import { findBackupEntry } from '../backup/catalog/catalog.ts'
import { JSON_EXPORT_FILE } from '../backup/layout.ts'
import type { BackupMetadata, TenantIndex, TenantRuns } from '../backup/metadata.ts'
import { CHECK_STATUS_LABELS, verifyBackup } from '../backup/catalog/verify.ts'
import { quoteIdentifier, type DatabaseHandle, type SqlValue } from '../db/connection.ts'
import type { TableInfo } from '../db/table-reader.ts'
import { ToolkitError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { canonicalValue, columnKind } from './canonical.ts'
import { backupDataJson, parseRowLine, scanDataJson, type DataJsonColumn } from './data-json.ts'
import { DEFAULT_TENANT_TABLE, ownershipCondition, tenantGraph, type OwnedTable, type TenantGraph } from './graph.ts'
import { addRow, canonicalizer, checksumRows, combineChecksums, emptyCanonicalTable, reorder, type CanonicalRow, type CanonicalTable, type TenantChecksum } from './rows.ts'
import type { TenantSession } from './session.ts'
import { engineNamed } from '../engines/index.ts'
import { folderStore, type BackupStore } from '../backup/catalog/store.ts'
import { groupingColumns, readTenantRuns, tenantKey, tenantRunsOf, type ArchiveRangeReader } from './sections.ts'
import { decryptingRangeReader } from '../encryption/streams.ts'

export interface TenantRestoreBackup {
  /** The local backup folder (the full path verifies and reads the backup there). */
  backupDir: string
  id: string
  /** Where the tenant index's byte ranges are read: default, the folder store of `backupDir`. */
  store?: BackupStore
  /** An encrypted backup's data key (its sections are then decrypted chunk by chunk); without it, the full path. Wiped after use. */
  dataKey?: (metadata: BackupMetadata) => Promise<Buffer>
  /** For a store that is not `backupDir` (object storage) or an encrypted backup: a checked, decrypted local copy for the full path, and how to remove it. */
  stage?: () => Promise<{ backupDir: string; release(): Promise<void> }>
}

/** How the backup's rows were read: only the tenant's sections (and how many stored bytes), or data.json whole. */
export type BackupRead = { path: 'sections'; bytes: number } | { path: 'full'; reason: string }

export interface PlanTenantRestoreOptions {
  backup: TenantRestoreBackup
  /** The live database; it is only read. */
  target: DatabaseHandle
  /** The tenant's id, or its exact name (or slug) as the backup knows it. */
  tenant: string
  /** The table whose rows are the tenants (default `Tenant`). */
  tenantTable?: string
  /** Where a compressed backup's data.json is extracted (a temporary folder inside, removed after). Default: the system's. */
  workDir?: string
  onProgress?: ProgressListener
}

export interface TableChange {
  table: string
  /** The tenant's rows in the live database now. */
  current: number
  /** Its rows in the backup. */
  backup: number
  /** Same primary key and same content on both sides. */
  unchanged: number
  /** Rows of the live database that the restore removes or replaces. */
  toDelete: number
  /** Rows of the backup that the restore adds or puts back. */
  toInsert: number
}

export interface TenantConflict {
  kind: 'schema' | 'missing-reference' | 'unique' | 'referenced-by-other-tenant'
  table: string
  /** The French line that explains it. */
  message: string
}

export interface TenantRestorePlan {
  backupId: string
  backupEngine: string
  /** The live database, password masked. */
  target: string
  targetEngine: string
  tenant: { id: string; name: string | null; inTarget: boolean }
  /** The tenant's tables in insert order (the root first); deletes run in the reverse order. */
  ownedTables: string[]
  /** Tables the tenant's rows refer to and which the restore never touches. */
  sharedTables: string[]
  tables: TableChange[]
  /** Why the restore must not run (one French line each); empty when it may. */
  conflicts: TenantConflict[]
  warnings: string[]
  /** How the backup was read (sections.ts: the fast path, or why not). */
  backupRead: BackupRead
  /** The tenant as the backup holds it, and as the live database holds it now. */
  backupChecksum: TenantChecksum
  currentChecksum: TenantChecksum
}

/** What restoreTenant needs beyond the plan. */
export interface PreparedTenantRestore {
  plan: TenantRestorePlan
  graph: TenantGraph
  /** The backup's rows of the tenant, in the live database's column order. */
  backupRows: Map<string, CanonicalTable>
  metadata: BackupMetadata
}

const IN_LIST_MAX = 500

/** Target catalog tables, read in one snapshot. */
export async function catalogTables(db: DatabaseHandle): Promise<TableInfo[]> {
  const reader = await db.openTableReader()
  try {
    return await reader.tables()
  } finally {
    await reader.close()
  }
}

/** Rows of `entry.table` that belong to the tenant now, canonical. */
export async function readTenantRows(session: TenantSession, db: DatabaseHandle, graph: TenantGraph, entry: OwnedTable, tenantId: string): Promise<CanonicalTable> {
  const table = emptyCanonicalTable(entry.table.name, entry.table.columns, entry.key)
  const canonical = canonicalizer(entry.table.columns, db.engine)
  for (const row of await session.selectRows(entry.table, ownershipCondition(graph, entry), [tenantId])) addRow(table, canonical(row))
  return table
}

export function tenantChecksumOf(tenantId: string, tables: Iterable<CanonicalTable>): TenantChecksum {
  const sums: Record<string, ReturnType<typeof checksumRows>> = {}
  for (const table of tables) sums[table.name] = checksumRows(table.columns, table.rows.values())
  return combineChecksums(tenantId, sums)
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

function describeKey(values: readonly (string | null)[]): string {
  return values.map((v) => (v === null ? 'NULL' : JSON.stringify(v))).join(', ')
}

/** The verified backup's data.json on disk, and how to let go of it. */
async function openDataJson(backup: TenantRestoreBackup, workDir: string | undefined): Promise<{ metadata: BackupMetadata; path: string; sha256: string; release(): Promise<void> }> {
  if (backup.stage === undefined) return openLocalDataJson(backup.backupDir, backup.id, workDir)
  const staged = await backup.stage()
  try {
    const local = await openLocalDataJson(staged.backupDir, backup.id, workDir)
    return { ...local, release: async () => (await local.release(), await staged.release()) }
  } catch (error) {
    await staged.release()
    throw error
  }
}

async function openLocalDataJson(backupDir: string, id: string, workDir: string | undefined): Promise<{ metadata: BackupMetadata; path: string; sha256: string; release(): Promise<void> }> {
  const backup = { backupDir, id }
  const report = await verifyBackup(backupDir, id)
  if (!report.ok || report.metadata === undefined) {
    const bad = report.checks.filter((c) => c.status !== 'ok').map((c) => `${c.path} : ${CHECK_STATUS_LABELS[c.status]}${c.detail ? ` (${c.detail})` : ''}`)
    throw new ToolkitError(`la sauvegarde ${backup.id} ne passe pas la vérification : ${bad.join(' ; ')}`, { hint: `Lancez \`advanced-backup verify ${backup.id}\` ; restaurez depuis une autre sauvegarde.` })
  }
  const metadata = report.metadata
  if (metadata.incremental) throw new ToolkitError(`la sauvegarde ${backup.id} est incrémentale : la restauration d'un cabinet lit l'export data.json d'une sauvegarde complète`, { hint: 'Choisissez une sauvegarde complète (`advanced-backup list`).' })
  if (!metadata.files.some((f) => f.path === JSON_EXPORT_FILE)) {
    throw new ToolkitError(`la sauvegarde ${backup.id} n'a pas d'export data.json (formats : ${metadata.exportFormats.join(', ')})`, { hint: 'Choisissez une sauvegarde faite avec le format json (le format par défaut).' })
  }
  return { metadata, ...(await backupDataJson(await findBackupEntry(backup.backupDir, backup.id), metadata, workDir ?? tmpdir())) }
}

/** Finds the tenant among the backup's root rows: by id, else by exact name or slug, else case-insensitively. */
function resolveTenant(rootRows: CanonicalTable, wanted: string, backupId: string): { id: string; name: string | null } {
  const at = (name: string) => rootRows.columns.indexOf(name)
  const [idAt, nameAt, slugAt] = [rootRows.keyPositions[0]!, at('name'), at('slug')]
  // Listed by name: data.json's order of the root table (by id, see sections.ts) means nothing to a reader.
  const rows = [...rootRows.rows.values()].sort((a, b) => (nameAt >= 0 ? String(a[nameAt]).localeCompare(String(b[nameAt]), 'fr') : 0) || String(a[idAt]).localeCompare(String(b[idAt])))
  const label = (row: CanonicalRow) => (nameAt >= 0 ? `"${row[nameAt]}" (${row[idAt]})` : String(row[idAt]))
  const byId = rows.filter((row) => row[idAt] === wanted)
  const exact = rows.filter((row) => (nameAt >= 0 && row[nameAt] === wanted) || (slugAt >= 0 && row[slugAt] === wanted))
  const folded = wanted.toLocaleLowerCase('fr')
  const loose = rows.filter((row) => [nameAt, slugAt].some((i) => i >= 0 && row[i]?.toLocaleLowerCase('fr') === folded))
  const found = byId.length > 0 ? byId : exact.length > 0 ? exact : loose
  if (found.length === 1) return { id: found[0]![idAt]!, name: nameAt >= 0 ? found[0]![nameAt]! : null }
  if (found.length > 1) {
    throw new ToolkitError(`« ${wanted} » désigne ${found.length} cabinets dans la sauvegarde ${backupId} : ${found.map(label).join(', ')}`, { hint: 'Donnez l\'identifiant du cabinet (--tenant <id>).' })
  }
  const listed = rows.slice(0, 20).map(label).join(', ')
  throw new ToolkitError(`aucun cabinet « ${wanted} » dans la sauvegarde ${backupId} ; cabinets présents : ${listed}${rows.length > 20 ? ` et ${rows.length - 20} autres` : ''}`, {
    hint: 'Donnez l\'identifiant ou le nom exact d\'un de ces cabinets.',
  })
}

/** Differences between the backup's and the live database's columns for the tenant's and shared tables. */
function schemaDifferences(graph: TenantGraph, backupTables: Map<string, DataJsonColumn[]>, targetTables: readonly TableInfo[]): string[] {
  const lines: string[] = []
  const names = [...graph.owned.map((o) => o.table.name), ...graph.shared]
  for (const name of names) {
    const target = targetTables.find((t) => t.name === name)!
    const backup = backupTables.get(name)
    if (backup === undefined) {
      lines.push(`la table ${name} n'existe pas dans la sauvegarde`)
      continue
    }
    for (const column of target.columns) {
      const other = backup.find((c) => c.name === column.name)
      if (other === undefined) lines.push(`${name}.${column.name} n'existe pas dans la sauvegarde`)
      else if (columnKind(other.type) !== columnKind(column.declaredType)) lines.push(`${name}.${column.name} est ${other.type} dans la sauvegarde et ${column.declaredType} dans la base cible`)
    }
    for (const column of backup) if (!target.columns.some((c) => c.name === column.name)) lines.push(`${name}.${column.name} n'existe plus dans la base cible`)
  }
  return lines
}

/**
 * Everything a tenant restore will do, without doing it. Throws (French line + hint) when the
 * backup fails verification, the tenant is unknown or ambiguous, or the schemas differ on the
 * tenant's tables; conflicts with other tenants come back in `conflicts`.
 * @example const plan = await planTenantRestore({ backup: { backupDir: 'backups', id }, target: db, tenant: 'Cabinet Demo' })
 */
export async function planTenantRestore(options: PlanTenantRestoreOptions): Promise<TenantRestorePlan> {
  const session = await engineNamed(options.target.engine).openTenantSession(options.target)
  try {
    return (await prepareTenantRestore(options, session)).plan
  } finally {
    await session.close()
  }
}

export async function prepareTenantRestore(options: PlanTenantRestoreOptions, session: TenantSession): Promise<PreparedTenantRestore> {
  const progress = options.onProgress ?? (() => {})
  const step = (done: number) => progress({ label: 'restauration du cabinet : plan', done, total: 5, unit: 'steps' })
  const { target } = options
  const targetTables = await catalogTables(target)
  const graph = tenantGraph(targetTables, options.tenantTable ?? DEFAULT_TENANT_TABLE)
  const rootName = graph.root.table.name
  step(1)
  const sections = await readFromSections(options, session, graph)
  const source = typeof sections === 'string' ? await readWholeDataJson(options, graph, sections) : sections
  step(3)
  const { metadata, tenant, backupRows } = source
  try {
    const targetMigration = await session.newestMigration()
    const differences = schemaDifferences(graph, source.tables, targetTables)
    const warnings: string[] = []
    if (differences.length > 0) {
      throw new ToolkitError(
        `le schéma de la sauvegarde ${metadata.id} (migration ${metadata.schema.newestMigration ?? 'inconnue'}) diffère de celui de la base cible (migration ${targetMigration ?? 'inconnue'}) sur les tables du cabinet : ${differences.join(' ; ')}`,
        { hint: 'Restaurez une sauvegarde faite avec le même schéma, ou migrez la base cible vers le schéma de la sauvegarde.' },
      )
    }
    if (metadata.schema.newestMigration !== targetMigration) {
      warnings.push(`migrations différentes (sauvegarde : ${metadata.schema.newestMigration ?? 'aucune'}, base cible : ${targetMigration ?? 'aucune'}), sans effet sur les tables du cabinet`)
    }

    // Both sides in the live database's column order.
    const aligned = new Map<string, CanonicalTable>()
    const current = new Map<string, CanonicalTable>()
    for (const entry of graph.owned) {
      const name = entry.table.name
      const from = backupRows.get(name) ?? emptyCanonicalTable(name, entry.table.columns, entry.key)
      const table = emptyCanonicalTable(name, entry.table.columns, entry.key)
      for (const row of from.rows.values()) addRow(table, reorder(from, row, table.columns))
      aligned.set(name, table)
      current.set(name, await readTenantRows(session, target, graph, entry, tenant.id))
    }
    step(4)

    const tables: TableChange[] = graph.owned.map((entry) => {
      const now = current.get(entry.table.name)!
      const then = aligned.get(entry.table.name)!
      let unchanged = 0
      for (const [key, row] of then.rows) {
        const live = now.rows.get(key)
        if (live !== undefined && live.every((v, i) => v === row[i])) unchanged++
      }
      return { table: entry.table.name, current: now.rows.size, backup: then.rows.size, unchanged, toDelete: now.rows.size - unchanged, toInsert: then.rows.size - unchanged }
    })

    const conflicts = [
      ...(await missingReferences(session, target, graph, targetTables, aligned, tenant)),
      ...(await uniqueConflicts(session, target, graph, aligned, tenant.id)),
      ...(await referencedByOthers(session, target, graph, tenant.id)),
    ]
    step(5)
    const plan: TenantRestorePlan = {
      backupId: metadata.id,
      backupEngine: metadata.engine,
      target: target.redactedUrl,
      targetEngine: target.engine,
      tenant: { ...tenant, inTarget: current.get(rootName)!.rows.size > 0 },
      ownedTables: graph.owned.map((o) => o.table.name),
      sharedTables: graph.shared,
      tables,
      conflicts,
      warnings,
      backupRead: source.read,
      backupChecksum: tenantChecksumOf(tenant.id, aligned.values()),
      currentChecksum: tenantChecksumOf(tenant.id, current.values()),
    }
    return { plan, graph, backupRows: aligned, metadata }
  } finally {
    await source.release()
  }
}

/** The backup's side of a plan: its tables' columns, the tenant, and the tenant's rows per owned table (backup column order). */
interface BackupTenantRows {
  metadata: BackupMetadata
  tables: Map<string, DataJsonColumn[]>
  tenant: { id: string; name: string | null }
  backupRows: Map<string, CanonicalTable>
  read: BackupRead
  release(): Promise<void>
}

/**
 * The fast path (sections.ts): the tenant found in the live database, then only its runs read from
 * the archive, every member checked against the sealed metadata's index. Returns why not (a French
 * reason, for the plan) when the backup or the tenant does not allow it.
 */
async function readFromSections(options: PlanTenantRestoreOptions, session: TenantSession, graph: TenantGraph): Promise<BackupTenantRows | string> {
  const store = options.backup.store ?? folderStore(options.backup.backupDir)
  const entry = await store.find(options.backup.id)
  const metadata = entry.metadata
  const index = metadata?.tenantIndex
  if (metadata === undefined || entry.problem !== undefined) return 'sauvegarde illisible ou incomplète'
  if (index === undefined) return 'sauvegarde sans index des cabinets'
  // The index is only as good as the metadata that holds it: an edited file is not used.
  if (!entry.sealValid) return 'métadonnées modifiées après leur écriture'
  const grouped = new Map(index.tables.filter((t) => t.groupedBy !== undefined).map((t) => [t.name, t]))
  const grouping = groupingColumns(graph)
  const uncovered = graph.owned.filter((o) => grouped.get(o.table.name)?.groupedBy !== grouping.get(o.table.name) || !grouping.has(o.table.name))
  if (uncovered.length > 0) return `tables du cabinet hors de l'index : ${uncovered.map((o) => o.table.name).join(', ')}`
  const tenant = await liveTenant(session, graph, options.tenant)
  if (tenant === undefined) return `cabinet « ${options.tenant} » introuvable (ou ambigu) dans la base cible`
  let bytes = 0
  const stored = async (offset: number, length: number) => {
    bytes += length
    return store.readArchiveRange(entry, offset, length)
  }
  let read: ArchiveRangeReader = stored
  let dataKey: Buffer | undefined
  if (metadata.encryption !== undefined) {
    if (options.backup.dataKey === undefined) return 'sauvegarde chiffrée, sans clé'
    dataKey = await options.backup.dataKey(metadata)
    // The index's offsets are the plaintext archive's (`archive`); each chunk's tag is checked, then each member's SHA-256.
    read = decryptingRangeReader(stored, dataKey, metadata.archive!.size)
  }
  try {
    const runs = tenantRunsOf(index, metadata.id, dataKey)?.[tenantKey(metadata.id, tenant.id)]
    if (runs === undefined) return `cabinet ${tenant.id} absent de l'index de la sauvegarde`
    return await readSections(metadata, index, graph, grouping, tenant, runs, read, () => bytes)
  } finally {
    dataKey?.fill(0)
  }
}

/** The tenant's rows of every owned table, from its runs (all grouped by their direct key to the root, `grouping`: checked by the caller). */
async function readSections(metadata: BackupMetadata, index: TenantIndex, graph: TenantGraph, grouping: ReadonlyMap<string, string>, tenant: { id: string }, tenantRuns: TenantRuns[string], read: ArchiveRangeReader, bytes: () => number): Promise<BackupTenantRows | string> {
  const tables = new Map(index.tables.map((t) => [t.name, t.columns]))
  const backupRows = new Map<string, CanonicalTable>()
  const runs = await readTenantRuns(index, tenantRuns, graph.owned.map((o) => o.table.name), read)
  for (const entry of graph.owned) {
    const name = entry.table.name
    const columns = tables.get(name)!
    const rows = emptyCanonicalTable(name, columns.map((c) => ({ name: c.name, declaredType: c.type })), entry.key)
    const owner = rows.columns.indexOf(grouping.get(name)!)
    for (const line of runs.get(name)!) {
      const row = parseRowLine(line).map((v, i) => canonicalValue(rows.kinds[i]!, v))
      // The checked bytes say so already; a run of another tenant would be a wrong index, not data.
      if (row[owner] !== tenant.id) throw new ToolkitError(`l'index de la sauvegarde ${metadata.id} désigne pour ${name} des lignes d'un autre cabinet : rien n'a été écrit`, { hint: `Lancez \`advanced-backup verify ${metadata.id}\` ; restaurez depuis une autre sauvegarde.` })
      addRow(rows, row)
    }
    backupRows.set(name, rows)
  }
  const root = backupRows.get(graph.root.table.name)!
  if (root.rows.size !== 1) return `cabinet ${tenant.id} absent de la table ${graph.root.table.name} de la sauvegarde`
  const nameAt = root.columns.indexOf('name')
  const backupName = nameAt >= 0 ? ([...root.rows.values()][0]![nameAt] ?? null) : null
  return { metadata, tables, tenant: { id: tenant.id, name: backupName }, backupRows, read: { path: 'sections', bytes: bytes() }, release: async () => {} }
}

/** The tenant named by `wanted` in the live database: by id, else by exact name or slug; undefined when none or several. */
async function liveTenant(session: TenantSession, graph: TenantGraph, wanted: string): Promise<{ id: string } | undefined> {
  const root = graph.root.table
  const key = root.columns.find((c) => c.name === graph.root.key[0])!
  const keyAt = root.columns.indexOf(key)
  const find = async (column: string) => {
    const info = root.columns.find((c) => c.name === column)
    if (info === undefined) return []
    return session.selectRows(root, `${quoteIdentifier(root.name)}.${quoteIdentifier(column)} = ?`, [session.bindValue(columnKind(info.declaredType), wanted, info.declaredType)])
  }
  for (const columns of [[key.name], ['name', 'slug']]) {
    const found = new Set<string>()
    for (const column of columns) for (const row of await find(column)) found.add(String(row[keyAt]))
    if (found.size === 1) return { id: [...found][0]! }
    if (found.size > 1) return undefined
  }
  return undefined
}

/** The full path: the whole backup verified, data.json read through (pass 1: columns and tenants; then level by level). */
async function readWholeDataJson(options: PlanTenantRestoreOptions, graph: TenantGraph, reason: string): Promise<BackupTenantRows> {
  const source = await openDataJson(options.backup, options.workDir)
  try {
    const { metadata } = source
    const rootName = graph.root.table.name
    let rootRows: CanonicalTable | undefined
    const first = await scanDataJson(source.path, source.sha256, (table, columns) => {
      if (table !== rootName) return undefined
      const rows = (rootRows = emptyCanonicalTable(table, columns.map((c) => ({ name: c.name, declaredType: c.type })), graph.root.key))
      return (line) => addRow(rows, parseRowLine(line).map((v, i) => canonicalValue(rows.kinds[i]!, v)))
    })
    if (rootRows === undefined) throw new ToolkitError(`la sauvegarde ${metadata.id} n'a pas de table ${rootName} dans data.json`)
    const tenant = resolveTenant(rootRows, options.tenant, metadata.id)

    // Pass 2 and on: the tenant's rows, level by level (a level's parents are known after the previous pass).
    const backupRows = new Map<string, CanonicalTable>([[rootName, keepOnly(rootRows, tenant.id)]])
    const levels = Math.max(...graph.owned.map((o) => o.depth))
    for (let depth = 1; depth <= levels; depth++) {
      const wanted = new Map(graph.owned.filter((o) => o.depth === depth).map((o) => [o.table.name, o]))
      await scanDataJson(source.path, source.sha256, (name, columns) => {
        const entry = wanted.get(name)
        if (entry === undefined) return undefined
        const rows = emptyCanonicalTable(name, columns.map((c) => ({ name: c.name, declaredType: c.type })), entry.key)
        backupRows.set(name, rows)
        const fk = entry.owner!
        const parent = backupRows.get(fk.referencedTable)!
        const positions = fk.columns.map((c) => rows.columns.indexOf(c))
        const parentPositions = fk.referencedColumns.map((c) => parent.columns.indexOf(c))
        const owners = new Set([...parent.rows.values()].map((row) => parentPositions.map((i) => row[i]).join('\u0000')))
        // Rows owned through the root carry the tenant's id in their text: skip the others unparsed.
        const needle = fk.referencedTable === rootName ? JSON.stringify(tenant.id).slice(1, -1) : undefined
        return (line) => {
          if (needle !== undefined && !line.includes(needle)) return
          const row = parseRowLine(line).map((v, i) => canonicalValue(rows.kinds[i]!, v))
          if (owners.has(positions.map((i) => row[i]).join('\u0000'))) addRow(rows, row)
        }
      })
    }
    return { metadata, tables: first.tables, tenant, backupRows, read: { path: 'full', reason }, release: () => source.release() }
  } catch (error) {
    await source.release()
    throw error
  }
}

function keepOnly(rootRows: CanonicalTable, id: string): CanonicalTable {
  const kept = { ...rootRows, rows: new Map<string, CanonicalRow>() }
  for (const [key, row] of rootRows.rows) if (row[rootRows.keyPositions[0]!] === id) kept.rows.set(key, row)
  return kept
}

/** Shared rows (Plans) the backup's rows refer to that the live database no longer has. */
async function missingReferences(session: TenantSession, db: DatabaseHandle, graph: TenantGraph, targetTables: readonly TableInfo[], rows: Map<string, CanonicalTable>, tenant: { id: string; name: string | null }): Promise<TenantConflict[]> {
  const conflicts: TenantConflict[] = []
  for (const entry of graph.owned) {
    const table = rows.get(entry.table.name)!
    for (const fk of entry.table.foreignKeys) {
      if (!graph.shared.includes(fk.referencedTable)) continue
      const parent = targetTables.find((t) => t.name === fk.referencedTable)!
      const positions = fk.columns.map((c) => table.columns.indexOf(c))
      const wanted = new Map<string, (string | null)[]>()
      for (const row of table.rows.values()) {
        const values = positions.map((i) => row[i] ?? null)
        if (values.every((v) => v !== null)) wanted.set(values.join('\u0000'), values)
      }
      if (wanted.size === 0) continue
      const refColumns = fk.referencedColumns.map((name) => parent.columns.find((c) => c.name === name)!)
      const canonical = canonicalizer(refColumns, db.engine)
      const found = new Set<string>()
      for (const batch of chunks([...wanted.values()], Math.min(IN_LIST_MAX, Math.floor(session.maxParameters / refColumns.length)))) {
        const where = batch.map(() => `(${refColumns.map((c) => `${quoteIdentifier(c.name)} = ?`).join(' AND ')})`).join(' OR ')
        const params = batch.flatMap((values) => values.map((v, i) => session.bindValue(columnKind(refColumns[i]!.declaredType), v!, refColumns[i]!.declaredType)))
        const keyTable: TableInfo = { name: parent.name, columns: refColumns, foreignKeys: [] }
        for (const row of await session.selectRows(keyTable, where, params)) found.add(canonical(row).join('\u0000'))
      }
      for (const [key, values] of wanted) {
        if (found.has(key)) continue
        conflicts.push({
          kind: 'missing-reference',
          table: entry.table.name,
          message: `${fk.referencedTable} ${fk.referencedColumns.join(', ')} = ${describeKey(values)}, dont dépendent les lignes ${entry.table.name} du cabinet « ${tenant.name ?? tenant.id} » dans la sauvegarde, n'existe plus dans la base cible`,
        })
      }
    }
  }
  return conflicts
}

/** Rows of other tenants that hold a value the backup's rows need in a unique index (an e-mail, a primary key). */
async function uniqueConflicts(session: TenantSession, db: DatabaseHandle, graph: TenantGraph, rows: Map<string, CanonicalTable>, tenantId: string): Promise<TenantConflict[]> {
  const conflicts: TenantConflict[] = []
  for (const entry of graph.owned) {
    const table = rows.get(entry.table.name)!
    if (table.rows.size === 0) continue
    const canonical = canonicalizer(entry.table.columns, db.engine)
    const notOwned = `NOT (${ownershipCondition(graph, entry)})`
    for (const index of await session.uniqueIndexes(entry.table.name)) {
      const positions = index.columns.map((c) => table.columns.indexOf(c))
      if (positions.some((p) => p < 0)) continue
      const wanted = new Map<string, CanonicalRow>()
      for (const row of table.rows.values()) {
        const values = positions.map((i) => row[i] ?? null)
        // NULLs never collide in a unique index.
        if (values.every((v) => v !== null)) wanted.set(values.join('\u0000'), values)
      }
      const leading = entry.table.columns[positions[0]!]!
      const kind = columnKind(leading.declaredType)
      const firstValues = [...new Set([...wanted.values()].map((v) => v[0]!))]
      for (const batch of chunks(firstValues, Math.min(IN_LIST_MAX, session.maxParameters - 1))) {
        const where = `${quoteIdentifier(entry.table.name)}.${quoteIdentifier(leading.name)} IN (${batch.map(() => '?').join(', ')}) AND ${notOwned}`
        const params: SqlValue[] = [...batch.map((v) => session.bindValue(kind, v, leading.declaredType)), tenantId]
        for (const found of await session.selectRows(entry.table, where, params)) {
          const row = canonical(found)
          const values = positions.map((i) => row[i] ?? null)
          if (!wanted.has(values.join('\u0000'))) continue
          const owner = entry.owner !== undefined && entry.owner.referencedTable === graph.root.table.name ? ` (cabinet ${row[entry.table.columns.findIndex((c) => c.name === entry.owner!.columns[0])]})` : ''
          conflicts.push({
            kind: 'unique',
            table: entry.table.name,
            message: `${entry.table.name} ${index.columns.join(', ')} = ${describeKey(values)} : la sauvegarde le donne au cabinet restauré, mais la ligne ${entry.table.name} ${describeKey(entry.key.map((k) => row[table.columns.indexOf(k)] ?? null))} d'un autre cabinet${owner} l'utilise déjà (index unique ${index.name})`,
          })
        }
      }
    }
  }
  return conflicts
}

/** Rows of other tenants that point at this tenant's rows: deleting those would delete (cascade) or block them. */
async function referencedByOthers(session: TenantSession, db: DatabaseHandle, graph: TenantGraph, tenantId: string): Promise<TenantConflict[]> {
  const conflicts: TenantConflict[] = []
  for (const child of graph.owned) {
    for (const fk of child.table.foreignKeys) {
      const parent = graph.owned.find((o) => o.table.name === fk.referencedTable)
      if (parent === undefined || fk === child.owner) continue
      const childName = quoteIdentifier(child.table.name)
      const pointsIn =
        fk.columns.length === 1
          ? `${childName}.${quoteIdentifier(fk.columns[0]!)} IN (SELECT q.${quoteIdentifier(fk.referencedColumns[0]!)} FROM ${quoteIdentifier(parent.table.name)} AS q WHERE ${ownershipCondition(graph, parent, 'q', 1)})`
          : `EXISTS (SELECT 1 FROM ${quoteIdentifier(parent.table.name)} AS q WHERE ${fk.columns.map((c, i) => `q.${quoteIdentifier(fk.referencedColumns[i]!)} = ${childName}.${quoteIdentifier(c)}`).join(' AND ')} AND ${ownershipCondition(graph, parent, 'q', 1)})`
      const found = await session.selectRows(child.table, `${pointsIn} AND NOT (${ownershipCondition(graph, child)})`, [tenantId, tenantId])
      const canonical = canonicalizer(child.table.columns, db.engine)
      for (const raw of found) {
        const row = canonical(raw)
        const key = child.key.map((k) => row[child.table.columns.findIndex((c) => c.name === k)] ?? null)
        conflicts.push({
          kind: 'referenced-by-other-tenant',
          table: child.table.name,
          message: `la ligne ${child.table.name} ${describeKey(key)} d'un autre cabinet référence (${fk.columns.join(', ')}) une ligne ${parent.table.name} du cabinet restauré : la remplacer la supprimerait ou échouerait`,
        })
      }
    }
  }
  return conflicts
}
