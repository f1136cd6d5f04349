/**
 * Cross-engine restore: a backup of one engine (SQLite, PostgreSQL, D1) restored into another
 * through its logical export (data.json) and the target engine's committed migrations.
 *
 * The new database is built in a scratch place of the target's engine (`Engine.logicalLoad`: a
 * file in the restore's scratch folder, a temporary database on the target's PostgreSQL server):
 * migrations applied as `db migrate` applies them (db/migrations.ts), the backup's columns compared
 * with the migrated tables (refused when they differ), the rows inserted in foreign-key order,
 * each value read as the tenant restore reads it (data.json's exact text → canonical.ts → the
 * engine's bind value). The result is written as the target engine's own restore artefact
 * (database.db, database.sql), which the one restore flow then hands to the target's replace step
 * exactly as for a backup of the target's engine: same safety copy, same atomic replace, same checks.
 *
 * `_prisma_migrations` is not copied: its rows hold the checksums of the source dialect's
 * migration files; the target records its own committed migrations instead.
 */
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { DatabaseHandle, SqlValue } from '../../db/connection.ts'
import { MIGRATIONS_DIRS, applyMigrations, readMigrations } from '../../db/migrations.ts'
import { tablesInDependencyOrder, type TableInfo } from '../../db/table-reader.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import type { ToolkitEnvironment } from '../../environment.ts'
import { ToolkitError } from '../../errors.ts'
import { engineLabel, type Engine } from '../../engines/index.ts'
import type { LogicalLoad, RowCount } from '../../engines/engine.ts'
import type { ProgressListener } from '../../progress.ts'
import { canonicalValue, columnKind } from '../../tenant-restore/canonical.ts'
import { parseRowLine, scanDataJson, type DataJsonColumn } from '../../tenant-restore/data-json.ts'
import { tableChecksum } from '../../tenant-restore/rows.ts'
import { JSON_EXPORT_FILE } from '../layout.ts'
import type { BackupMetadata } from '../metadata.ts'

/** Prisma's bookkeeping table: recorded by the target's own migrations, never copied across engines. */
const MIGRATIONS_TABLE = '_prisma_migrations'
const INSERT_BATCH = 500
const SPOOL_FLUSH_CHARS = 1 << 20

export interface CrossEngineArtefact {
  /** The target engine's restore artefact, built in the scratch folder. */
  path: string
  /** The committed migrations the new database records (the row count step 4 expects in `_prisma_migrations`). */
  migrations: number
  rows: number
  /** Rows loaded per table (`_prisma_migrations` excluded). */
  tables: { name: string; rows: number }[]
  /** With `checkContents`: the converted database's content checksums compared with the backup's (the line step 4 prints). */
  contents?: string
  warnings: string[]
}

export interface BuildCrossEngineOptions {
  metadata: BackupMetadata
  /** The backup's data.json as step 1 verified it (its copy in the scratch folder), read instead of the backup. */
  dataJson: string
  /** The target's engine and location (a PostgreSQL target's server hosts the scratch database). */
  engine: Engine
  target: DatabaseLocation
  /** The restore's private folder (removed after it). */
  scratchDir: string
  environment: ToolkitEnvironment
  /** Compare the converted database's content checksums with the backup's before it is dropped (a dry run, whose target is never loaded). */
  checkContents?: boolean
  onProgress?: ProgressListener
}

/**
 * Refuses (one French line naming the formats needed) a backup that has no logical export a
 * restore into `target` can read.
 */
export function assertLogicalExport(metadata: BackupMetadata, target: Engine): void {
  if (!metadata.incremental && metadata.files.some((f) => f.path === JSON_EXPORT_FILE)) return
  const source = engineLabel(metadata.engine)
  const why = metadata.incremental ? 'c’est un backup incrémental, sans export logique' : `il n’a pas d’export ${JSON_EXPORT_FILE} (formats : ${metadata.exportFormats.join(', ') || 'aucun'})`
  throw new ToolkitError(`le backup ${metadata.id} vient de ${source} et ne peut pas être restauré dans une base ${target.label} : ${why} ; une restauration vers un autre moteur lit l’export json`, {
    hint: `Restaurez-le dans une base ${source}, ou faites un backup complet avec le format json (\`advanced-backup create --formats json\` ; le défaut sql,json,csv l’inclut).`,
  })
}

/** Differences between the backup's tables and columns and the target's migrated ones (value kinds compared, as the tenant restore does). */
function schemaDifferences(backup: ReadonlyMap<string, DataJsonColumn[]>, target: readonly TableInfo[]): string[] {
  const lines: string[] = []
  for (const table of target) {
    if (table.name === MIGRATIONS_TABLE) continue
    const columns = backup.get(table.name)
    if (columns === undefined) {
      lines.push(`la table ${table.name} n’existe pas dans le backup`)
      continue
    }
    for (const column of table.columns) {
      const other = columns.find((c) => c.name === column.name)
      if (other === undefined) lines.push(`${table.name}.${column.name} n’existe pas dans le backup`)
      else if (columnKind(other.type) !== columnKind(column.declaredType)) lines.push(`${table.name}.${column.name} est ${other.type} dans le backup et ${column.declaredType} dans les migrations de la cible`)
    }
    for (const column of columns) if (!table.columns.some((c) => c.name === column.name)) lines.push(`${table.name}.${column.name} n’existe pas dans les migrations de la cible`)
  }
  for (const name of backup.keys()) if (name !== MIGRATIONS_TABLE && !target.some((t) => t.name === name)) lines.push(`la table ${name} n’existe pas dans les migrations de la cible`)
  return lines
}

/** Appends each table's row lines to its own file, so the tables can be loaded in foreign-key order after one pass over data.json. */
class TableSpool {
  private readonly files = new Map<string, { path: string; fd: number; pending: string }>()

  constructor(private readonly dir: string) {}

  writer(table: string): (line: string) => void {
    const file = { path: join(this.dir, `${this.files.size}.rows`), fd: -1, pending: '' }
    file.fd = openSync(file.path, 'wx')
    this.files.set(table, file)
    return (line) => {
      file.pending += `${line}\n`
      if (file.pending.length > SPOOL_FLUSH_CHARS) this.flush(file)
    }
  }

  private flush(file: { fd: number; pending: string }): void {
    if (file.pending !== '') writeSync(file.fd, file.pending)
    file.pending = ''
  }

  finish(): void {
    for (const file of this.files.values()) {
      this.flush(file)
      closeSync(file.fd)
    }
  }

  lines(table: string): AsyncIterable<string> | undefined {
    const file = this.files.get(table)
    return file === undefined ? undefined : createInterface({ input: createReadStream(file.path, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
  }
}

/** Inserts one table's spooled rows, values converted from the backup's column kinds to the target's columns. */
async function loadTable(db: DatabaseHandle, load: LogicalLoad, table: TableInfo, backupColumns: readonly DataJsonColumn[], lines: AsyncIterable<string>): Promise<number> {
  const backupKinds = backupColumns.map((c) => columnKind(c.type))
  const positions = table.columns.map((c) => backupColumns.findIndex((b) => b.name === c.name))
  const targetKinds = table.columns.map((c) => columnKind(c.declaredType))
  const names = table.columns.map((c) => c.name)
  let batch: SqlValue[][] = []
  let rows = 0
  for await (const line of lines) {
    if (line === '') continue
    const values = parseRowLine(line)
    batch.push(
      positions.map((at, i) => {
        const canonical = canonicalValue(backupKinds[at]!, values[at] ?? null)
        return canonical === null ? null : load.bindValue(targetKinds[i]!, canonical, table.columns[i]!.declaredType)
      }),
    )
    if (batch.length === INSERT_BATCH) {
      await db.sql.insertRows(table.name, names, batch)
      rows += batch.length
      batch = []
    }
  }
  if (batch.length > 0) await db.sql.insertRows(table.name, names, batch)
  return rows + batch.length
}

/**
 * Builds the target engine's restore artefact from the backup's data.json, in `scratchDir`.
 * Throws (French line + hint, before anything of the target is touched) when the backup's tables
 * differ from the ones the target's committed migrations create.
 * @example const built = await buildCrossEngineArtefact({ metadata, dataJson, engine: postgresEngine, target, scratchDir, environment })
 */
export async function buildCrossEngineArtefact(options: BuildCrossEngineOptions): Promise<CrossEngineArtefact> {
  const { metadata, engine } = options
  assertLogicalExport(metadata, engine)
  const progress = options.onProgress ?? (() => {})
  const digest = metadata.files.find((f) => f.path === JSON_EXPORT_FILE)!
  const work = await mkdtemp(join(options.scratchDir, 'cross-engine-'))
  try {
    const load = await engine.logicalLoad()
    const scratch = await load.openScratch({ target: options.target, scratchDir: work, environment: options.environment })
    try {
      const migrationsDir = MIGRATIONS_DIRS[engine.dialect]
      const { applied } = await applyMigrations(scratch.db.sql, { dir: migrationsDir })
      const reader = await scratch.db.openTableReader()
      let targetTables: TableInfo[]
      try {
        targetTables = await reader.tables()
      } finally {
        await reader.close()
      }
      const spool = new TableSpool(work)
      let scan
      try {
        scan = await scanDataJson(options.dataJson, digest.sha256, (table) => (table === MIGRATIONS_TABLE ? undefined : spool.writer(table)))
      } finally {
        spool.finish()
      }
      const targetMigration = readMigrations(migrationsDir).at(-1)?.name ?? null
      const migrations = `migration ${metadata.schema.newestMigration ?? 'inconnue'} dans le backup, ${targetMigration ?? 'aucune'} dans les migrations ${engine.label} de cet outil`
      const differences = schemaDifferences(scan.tables, targetTables)
      if (differences.length > 0) {
        throw new ToolkitError(`le schéma du backup ${metadata.id} diffère de celui que les migrations ${engine.label} créent (${migrations}) : ${differences.slice(0, 5).join(' ; ')}${differences.length > 5 ? ` ; et ${differences.length - 5} autre(s)` : ''}`, {
          hint: 'Restaurez un backup fait avec la même version du schéma, ou restaurez-le d’abord dans une base du même moteur et migrez-la (`db migrate`).',
        })
      }
      const warnings = metadata.schema.newestMigration === targetMigration ? [] : [`migrations différentes (${migrations}), sans effet sur les tables`]
      const tables: { name: string; rows: number }[] = []
      const ordered = tablesInDependencyOrder(targetTables).filter((t) => t.name !== MIGRATIONS_TABLE)
      for (const [index, table] of ordered.entries()) {
        tables.push({ name: table.name, rows: await loadTable(scratch.db, load, table, scan.tables.get(table.name)!, spool.lines(table.name)!) })
        progress({ label: `conversion vers ${engine.label}`, done: index + 1, total: ordered.length, unit: 'steps' })
      }
      const contents = options.checkContents ? await checkRestoredContents(scratch.db, metadata, { quiescent: true }) : undefined
      const path = join(options.scratchDir, `cross-engine-${engine.restoreArtefact}`)
      await scratch.writeArtefact(path)
      return { path, migrations: applied.length, rows: tables.reduce((n, t) => n + t.rows, 0), tables, contents, warnings }
    } finally {
      await scratch.drop()
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * Step 4's extra check of a cross-engine restore: every table's content checksum in the restored
 * database equals the one recorded when the backup was made (metadata `contents`, the same
 * canonical form on every engine); `_prisma_migrations` is the target's own. Throws on a difference.
 * `quiescent`: nobody writes `db` meanwhile (a scratch database): SQLite may read it with several threads.
 */
export async function checkRestoredContents(db: DatabaseHandle, metadata: BackupMetadata, options: { quiescent?: boolean } = {}): Promise<string> {
  if (metadata.contents === undefined) return 'empreintes de contenu non enregistrées dans ce backup (métadonnées version 1)'
  const expected = metadata.contents.filter((t) => t.name !== MIGRATIONS_TABLE)
  const reader = await db.openTableReader(options)
  const differing: string[] = []
  try {
    const present = new Map((await reader.tables()).map((t) => [t.name, t]))
    for (const table of expected) {
      const info = present.get(table.name)
      const sum = info === undefined ? undefined : await tableChecksum(reader, info)
      if (sum === undefined || sum.rows !== table.rows || sum.checksum !== table.checksum) differing.push(table.name)
    }
  } finally {
    await reader.close()
  }
  if (differing.length > 0) throw new ToolkitError(`contenu restauré différent du backup (empreintes) : ${differing.join(', ')}`)
  return `empreintes de contenu = backup (${expected.length} tables)`
}

/**
 * Step 4 of a cross-engine dry run into a target that is never loaded (a server): the converted
 * database's row counts per table, as loaded in its scratch place, against the metadata (whose
 * `_prisma_migrations` count is the target engine's migrations), and its content checksums' line.
 * Throws on a difference.
 */
export function rehearsedCheck(built: CrossEngineArtefact, tables: readonly { name: string; rows: number }[]): { counts: RowCount[]; detail: string } {
  const counts = tables.map((t) => ({ name: t.name, expected: t.rows, actual: t.name === MIGRATIONS_TABLE ? built.migrations : (built.tables.find((b) => b.name === t.name)?.rows ?? null) }))
  const wrong = counts.filter((c) => c.actual !== c.expected)
  if (wrong.length > 0) throw new ToolkitError(`les nombres de lignes converties diffèrent des métadonnées : ${wrong.map((c) => `${c.name} ${c.actual ?? 'absente'} au lieu de ${c.expected}`).join(', ')}`)
  const rows = counts.reduce((n, c) => n + c.expected, 0)
  return { counts, detail: `base convertie contrôlée avant d’être supprimée : ${counts.length} tables / ${rows.toLocaleString('fr-FR')} lignes = métadonnées, ${built.contents ?? 'empreintes de contenu non comparées'}` }
}
