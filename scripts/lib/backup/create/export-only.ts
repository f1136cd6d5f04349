/**
 * An export that is not a backup (`advanced-backup export --to <folder>`): the requested files of
 * one instant of the database (export.sql — database.sql on PostgreSQL —, data.json, exports/<table>.csv),
 * each hashed as it is written, plus `SHA256SUMS` (what `sha256sum -c` reads) and `export.json`
 * (source, instant, rows per table, files). No database artefact, no archive, no rotation: a backup
 * is always restorable, an export is what someone asked to read elsewhere.
 *
 * Where the engine can (Engine.readInPlace, SQLite), the live database is read in place in one read
 * transaction; elsewhere its backup snapshot is taken into the work folder and the artefact removed
 * unless it is the SQL export itself (PostgreSQL's database.sql). Everything is written into
 * `<folder>.tmp-<pid>-<random>` beside the target, fsynced, then renamed to `<folder>`: a target
 * that exists is never touched, a failure or a kill leaves no half export (the next run removes a
 * killed run's work folder).
 */
import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { SqlHandle } from '../../db/connection.ts'
import type { EngineName } from '../../db/url.ts'
import { engineNamed } from '../../engines/index.ts'
import type { InPlaceRead, Snapshot } from '../../engines/snapshot.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { TEMPORARY_MARKER, commitRename, fsyncPath, writeFileAtomic } from '../../fs/atomic.ts'
import { isDiskFull, mapFilesystemError } from '../../fs/errors.ts'
import { ownerOfTemporaryName, removeDeadLeftovers } from '../../fs/leftovers.ts'
import type { ProgressListener } from '../../progress.ts'
import { CSV_DIR, EXPORT_MANIFEST_FILE, EXPORT_SUMS_FILE, stagingNameFor, type ExportFormat } from '../layout.ts'
import { hashFile, manifestHash, manifestText, sortDigests, type FileDigest } from '../manifest.ts'
import { writeExports } from './exports.ts'

export const EXPORT_MANIFEST_VERSION = 1

/** export.json: what an export holds and where it comes from. */
export interface ExportManifest {
  formatVersion: typeof EXPORT_MANIFEST_VERSION
  kind: 'export'
  engine: EngineName
  /** The source's URL with its password masked. */
  source: string
  /** When the read transaction (or the snapshot) began. */
  timestamp: string
  tool: { name: string; version: string }
  formats: ExportFormat[]
  tables: { name: string; rows: number }[]
  /** Every file but export.json and SHA256SUMS, sorted by path; `hash` is the SHA-256 of SHA256SUMS. */
  files: FileDigest[]
  hash: string
  /** What this export cannot guarantee (a D1 source is not read at one instant). */
  warnings: string[]
  durationMs: number
}

export interface StandaloneExportOptions {
  db: SqlHandle
  /** The folder to create; it must not exist, its parent must. */
  dest: string
  formats: readonly ExportFormat[]
  tool: { name: string; version: string }
  now?: () => Date
  onProgress?: ProgressListener
}

export interface StandaloneExportResult {
  /** The export folder (absolute). */
  path: string
  manifest: ExportManifest
  /** Work folders of killed exports removed before this one. */
  cleaned: string[]
}

/**
 * Writes the exports of `db` into the new folder `dest`.
 * @example const { manifest } = await writeStandaloneExport({ db, dest: 'exports-2026-12-01', formats: ['csv'], tool })
 */
export async function writeStandaloneExport(options: StandaloneExportOptions): Promise<StandaloneExportResult> {
  if (options.formats.length === 0) throw new ToolkitError('aucun format d’export demandé', { hint: '--formats csv, json et/ou sql', exitCode: 2 })
  const dest = resolve(options.dest)
  const parent = dirname(dest)
  const name = basename(dest)
  if (existsSync(dest)) throw new ToolkitError(`le dossier d’export ${dest} existe déjà : rien n’a été écrit`, { hint: 'nommez un dossier qui n’existe pas (--to) : un export ne remplace ni ne complète jamais un dossier', exitCode: 2 })
  if (!existsSync(parent)) throw new ToolkitError(`le dossier ${parent} n’existe pas : rien n’a été écrit`, { hint: `créez-le d’abord (mkdir -p ${parent}), ou choisissez un autre --to`, exitCode: 2 })
  const cleaned = removeDeadLeftovers(parent, (entry) => (entry.startsWith(`${name}${TEMPORARY_MARKER}`) ? ownerOfTemporaryName(entry) : undefined))
  const now = options.now ?? (() => new Date())
  const started = now()
  const startedAt = performance.now()
  const staging = join(parent, stagingNameFor(name))
  const engine = engineNamed(options.db.engine)
  try {
    await mkdir(staging)
    const source: InPlaceRead | Snapshot = engine.readInPlace ? await engine.readInPlace(options.db) : await engine.snapshot(options.db, { dir: staging, durable: false, onProgress: options.onProgress })
    const digests: FileDigest[] = []
    const tables: { name: string; rows: number }[] = []
    try {
      const tableInfos = await source.reader.tables()
      const counts = new Map<string, number>()
      for (const table of tableInfos) counts.set(table.name, await source.count(table))
      for (const [table, rows] of counts) tables.push({ name: table, rows })
      await writeExports(
        {
          engine: source.engine,
          valueCodec: source.reader.valueCodec,
          tables: tableInfos,
          rows: (table, rowOptions) => source.rows(table, rowOptions),
          jsonRows: source.jsonRows,
          csvChunks: source.csvChunks,
          jsonChunks: source.jsonChunks,
          ...('sqliteFile' in source && source.sqliteFile ? { sqliteFile: source.sqliteFile } : {}),
          ...('sqliteConnection' in source && source.sqliteConnection ? { sqliteConnection: source.sqliteConnection } : {}),
        },
        { formats: options.formats, dir: staging, engine: source.engine, backupId: name, timestamp: started.toISOString(), durable: true, counts },
        { onFile: (path, digest) => digests.push({ path, ...digest }), onProgress: options.onProgress },
      )
      if ('artefact' in source) {
        // The snapshot's artefact stays only when it is the SQL export itself (no SQLite file to write export.sql from).
        const artefact = join(staging, source.artefact.name)
        if (options.formats.includes('sql') && source.sqliteFile === undefined) {
          fsyncPath(artefact)
          digests.push({ path: source.artefact.name, ...(source.artefact.digest ?? (await hashFile(artefact))) })
        } else {
          await rm(artefact, { force: true })
        }
      }
    } finally {
      await source.close()
    }
    if (options.formats.includes('csv')) fsyncPath(join(staging, CSV_DIR))
    const files = sortDigests(digests)
    writeFileAtomic(join(staging, EXPORT_SUMS_FILE), manifestText(files))
    const manifest: ExportManifest = {
      formatVersion: EXPORT_MANIFEST_VERSION,
      kind: 'export',
      engine: options.db.engine,
      source: options.db.redactedUrl,
      timestamp: started.toISOString(),
      tool: options.tool,
      formats: [...options.formats],
      tables,
      files,
      hash: manifestHash(files),
      warnings: [...source.warnings],
      durationMs: Math.round(performance.now() - startedAt),
    }
    writeFileAtomic(join(staging, EXPORT_MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
    fsyncPath(staging)
    if (existsSync(dest)) throw new ToolkitError(`le dossier d’export ${dest} est apparu pendant l’export : rien n’a été remplacé`, { hint: 'relancez avec un autre --to', exitCode: 2 })
    commitRename(staging, dest)
    return { path: dest, manifest, cleaned }
  } catch (error) {
    await rm(staging, { recursive: true, force: true })
    throw explainFailure(error, parent)
  }
}

function explainFailure(error: unknown, parent: string): unknown {
  if (isDiskFull(error)) return new ToolkitError(`plus de place dans ${parent} : export abandonné, fichiers partiels supprimés`, { hint: 'libérez de la place ou donnez à --to un disque plus grand', cause: error })
  if (error instanceof ToolkitError) return error
  return mapFilesystemError(error, 'l’export', parent) ?? new ToolkitError(`échec de l’export : ${describeError(error)}`, { cause: error })
}
