/**
 * Creating one backup. Invariant: a backup is complete iff its metadata exists, and the metadata
 * is written last (see catalog.ts). Everything is built in `<id>.tmp-<pid>-<random>/` inside the
 * backup folder (same file system, so renames are atomic), fsynced, then published:
 * - uncompressed: metadata.json is written into the staging folder, which is renamed to `<id>/`;
 * - compressed: the staging folder's files are packed into `<id>.tar.gz` while they are produced
 *   (metadata.json last), the archive is verified, linked into place, then `<id>.metadata.json`
 *   is written beside it, and the staging folder is removed.
 * A failure removes the staging folder; nothing is published, nothing else is touched.
 */
import { isDiskFull, mapFilesystemError } from '../../fs/errors.ts'
import { existsSync } from 'node:fs'
import { link, mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SqlHandle } from '../../db/connection.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { commitRename, fsyncPath, writeFileAtomic } from '../../fs/atomic.ts'
import type { ProgressListener } from '../../progress.ts'
import { ArchiveWriter, type ArchivedFile } from '../archive/archive.ts'
import type { DataJsonRun } from '../exporters/json.ts'
import type { TableInfo } from '../../db/table-reader.ts'
import { DEFAULT_TENANT_TABLE, tenantGraph } from '../../tenant-restore/graph.ts'
import { buildTenantIndex, groupingColumns, sealTenantIndex } from '../../tenant-restore/sections.ts'
import { prepareBackupDir } from '../catalog/catalog.ts'
import { writeExports } from './exports.ts'
import { GzipPool } from '../archive/gzip-blocks.ts'
import type { WrittenFile } from '../../fs/hashed-file.ts'
import { ARCHIVE_SUFFIX, CSV_DIR, ENCRYPTED_SUFFIX, JSON_EXPORT_FILE, METADATA_FILE, SIDECAR_SUFFIX, SQL_EXPORT_FILE, backupIdFor, backupPaths, idOfTemporaryName, stagingNameFor, type ExportFormat } from '../layout.ts'
import type { StepListener } from '../kill-points.ts'
import { hashFile, manifestHash, sortDigests, type FileDigest } from '../manifest.ts'
import { METADATA_FORMAT_VERSION, serializeMetadata, type BackupMetadata, type MetadataDraft, type TableContent } from '../metadata.ts'
import { startTableChecksums } from '../../tenant-restore/rows.ts'
import { engineNamed } from '../../engines/index.ts'
import { newestMigration } from '../../engines/snapshot.ts'
import { CHECK_STATUS_LABELS, checkArchive, checkDirectory, type FileCheck } from '../catalog/verify.ts'
import type { WrappedKeyRecord } from '../../encryption/keys.ts'
import { assertOpensTo, sealFile } from '../archive/sealed.ts'

export interface CreateBackupOptions {
  db: SqlHandle
  backupDir: string
  formats: readonly ExportFormat[]
  compress: boolean
  verify: boolean
  tool: { name: string; version: string }
  /** SHA-256 of the toolkit's Prisma schema for this engine, recorded for restore. */
  prismaSchemaSha256: string | null
  now?: () => Date
  onProgress?: ProgressListener
  /** Compression threads; defaults to one per core. */
  threads?: number
  /** gzip level of the archive, 1 (fastest) to 9 (smallest); default COMPRESSION_LEVEL (6, the spec's tar.gz). */
  compressionLevel?: number
  /** A SQLite snapshot of at least this size is exported by a helper thread (exports.ts: EXPORT_THREAD_FROM_BYTES by default). */
  exportThreadFromBytes?: number
  /** Called at each named step (kill-points.ts: CREATE_STEPS), for crash tests. */
  onStep?: StepListener
  /**
   * Seal the archive with this per-backup data key (compressed backups only): `<id>.tar.gz.enc` is
   * published instead of `<id>.tar.gz`, `record` goes into the metadata beside it.
   */
  encryption?: { dataKey: Buffer; record: WrappedKeyRecord }
}

export interface CreateBackupResult {
  metadata: BackupMetadata
  /** The backup folder or archive. */
  path: string
  /** Leftovers of killed runs removed before this backup. */
  cleaned: string[]
}

/**
 * Takes a snapshot of `db`, writes every export, hashes, (packs,) verifies and publishes a backup.
 * @example const { metadata } = await createBackup({ db, backupDir: 'backups', formats: ['sql', 'json', 'csv'], compress: true, verify: true, tool, prismaSchemaSha256: null })
 */
export async function createBackup(options: CreateBackupOptions): Promise<CreateBackupResult> {
  if (options.encryption !== undefined && !options.compress) {
    throw new ToolkitError('une sauvegarde chiffrée doit être compressée', { hint: 'retirez --no-compress : le chiffrement scelle l’archive .tar.gz en un seul objet', exitCode: 2 })
  }
  const now = options.now ?? (() => new Date())
  const started = now()
  const startedAt = performance.now()
  const cleaned = await prepareBackupDir(options.backupDir)
  const id = await freeId(options.backupDir, started)
  const staging = join(options.backupDir, stagingNameFor(id))
  const paths = backupPaths(options.backupDir, id)
  const progress = options.onProgress ?? (() => {})
  const step = options.onStep ?? (() => {})
  let pool: GzipPool | undefined
  let archive: ArchiveWriter | undefined
  let linkedArchive = false
  let published = paths.archive
  try {
    await mkdir(staging)
    step('create:start')
    const snapshot = await engineNamed(options.db.engine).snapshot(options.db, { dir: staging, durable: !options.compress, onProgress: progress })
    step('create:after-snapshot')
    let open = true
    const closeSnapshot = async () => {
      if (open) await snapshot.close()
      open = false
    }
    try {
      const tables = await snapshot.reader.tables()
      const groupBy = tenantGrouping(tables)
      // The tenant index of an archive: where data.json starts in the tar stream, and its runs.
      const indexing = options.compress && groupBy.size > 0 && options.formats.includes('json')
      let dataJson: Promise<ArchivedFile> | undefined
      let runs: DataJsonRun[] = []
      const counts = new Map<string, number>()
      for (const table of tables) counts.set(table.name, await snapshot.count(table))
      // Content files by path (the CSV folder is marked with no digest once its archive entry is made).
      const files = new Map<string, Promise<WrittenFile> | undefined>()
      const mtime = new Date(Math.floor(started.getTime() / 1000) * 1000)

      if (options.compress) {
        pool = new GzipPool({ threads: options.threads, level: options.compressionLevel })
        archive = await ArchiveWriter.create(join(staging, `${id}${ARCHIVE_SUFFIX}`), {
          pool,
          onBytes: (done, total) => {
            progress({ label: 'archive', done, total, unit: 'bytes' })
            step('create:mid-pack')
          },
        })
        archive.addDirectory(id, mtime).catch(() => {})
      }
      // A file is handed to the archive as soon as it is complete; packing it overlaps the next export.
      // A file hashed as it was written is not hashed again when packed (verification reads the archive back).
      const publish = (name: string, written?: WrittenFile) => {
        const packed = archive?.addFile(`${id}/${name}`, join(staging, name), mtime, { hash: written === undefined, members: indexing && name === JSON_EXPORT_FILE })
        if (indexing && name === JSON_EXPORT_FILE) dataJson = packed
        let digest: Promise<WrittenFile>
        if (written) digest = packed ? packed.then((read) => ({ ...written, size: sizeMatches(name, read.size, written.size) })) : Promise.resolve(written)
        else digest = packed ? packed.then(({ size, sha256 }) => ({ size, sha256 })) : hashFile(join(staging, name))
        digest.catch(() => {})
        files.set(name, digest)
      }
      publish(snapshot.artefact.name, snapshot.artefact.digest)

      await writeExports(
        { engine: snapshot.engine, valueCodec: snapshot.reader.valueCodec, tables, rows: (table, rowOptions) => snapshot.rows(table, rowOptions), jsonRows: snapshot.jsonRows, csvChunks: snapshot.csvChunks, jsonChunks: snapshot.jsonChunks, ...(snapshot.sqliteFile ? { sqliteFile: snapshot.sqliteFile } : {}) },
        { formats: options.formats, dir: staging, engine: snapshot.engine, backupId: id, timestamp: started.toISOString(), durable: !options.compress, counts, groupBy },
        {
          onFile(name, written, fileRuns) {
            if (name === JSON_EXPORT_FILE) runs = fileRuns ?? []
            if (name.startsWith(`${CSV_DIR}/`) && !files.has(CSV_DIR)) {
              archive?.addDirectory(`${id}/${CSV_DIR}`, mtime).catch(() => {})
              files.set(CSV_DIR, undefined)
            }
            publish(name, written)
            if (name === SQL_EXPORT_FILE) step('create:after-sql-export')
            if (name.startsWith(`${CSV_DIR}/`)) step('create:mid-csv')
          },
          onProgress: progress,
        },
        { threadFromBytes: options.exportThreadFromBytes },
      )

      // Read once more from the same snapshot: what a restore drill must find again (metadata `contents`).
      const contents: TableContent[] = []
      const sums = await startTableChecksums({ engine: snapshot.engine, rows: (table) => snapshot.rows(table), startContentChecksums: snapshot.reader.startContentChecksums?.bind(snapshot.reader) }, tables).finish()
      for (const table of tables) {
        const sum = sums.get(table.name)!
        if (sum.rows !== counts.get(table.name)) throw new Error(`l’instantané a ${counts.get(table.name)} lignes dans "${table.name}" mais le calcul d’empreinte en a lu ${sum.rows}`)
        contents.push({ name: table.name, rows: sum.rows, checksum: sum.checksum })
      }
      const digests: FileDigest[] = []
      for (const [path, digest] of files) if (digest) digests.push({ path, ...(await digest) })
      const sorted = sortDigests(digests)
      const contentSize = sorted.reduce((sum, file) => sum + file.size, 0)
      const draft: MetadataDraft = {
        formatVersion: METADATA_FORMAT_VERSION,
        id,
        timestamp: started.toISOString(),
        // A file is named by its path, a server by its URL (password masked).
        databasePath: 'path' in options.db.location ? options.db.location.path : options.db.redactedUrl,
        size: contentSize,
        hash: manifestHash(sorted),
        compressed: options.compress,
        incremental: false,
        parentId: null,
        verified: options.verify,
        exportFormats: [...options.formats],
        engine: options.db.engine,
        source: options.db.redactedUrl,
        tool: options.tool,
        durationMs: 0,
        contentSize,
        tables: tables.map((table) => ({ name: table.name, rows: counts.get(table.name)! })),
        contents,
        schema: { prismaSchemaSha256: options.prismaSchemaSha256, newestMigration: await newestMigration(snapshot.reader, tables) },
        files: sorted,
        archive: null,
        warnings: snapshot.warnings,
      }
      await closeSnapshot()
      step('create:before-metadata')

      if (!options.compress) {
        step('create:before-verify')
        if (options.verify) assertVerified(await checkDirectory(staging, sorted, { onProgress: progress }))
        draft.durationMs = Math.round(performance.now() - startedAt)
        const text = serializeMetadata(draft)
        await writeFile(join(staging, METADATA_FILE), text, { flag: 'wx' })
        fsyncPath(join(staging, METADATA_FILE))
        if (options.formats.includes('csv')) fsyncPath(join(staging, CSV_DIR))
        fsyncPath(staging)
        if (existsSync(paths.directory)) throw new ToolkitError(`${paths.directory} est apparu pendant l’écriture du backup`)
        step('create:before-publish')
        commitRename(staging, paths.directory)
        step('create:after-publish')
        return { metadata: JSON.parse(text) as BackupMetadata, path: paths.directory, cleaned }
      }

      // Compressed: metadata.json goes into the archive last; its copy beside the archive adds the archive's own hash.
      draft.durationMs = Math.round(performance.now() - startedAt)
      const inner = serializeMetadata(draft)
      await writeFile(join(staging, METADATA_FILE), inner, { flag: 'wx' })
      archive!.addFile(`${id}/${METADATA_FILE}`, join(staging, METADATA_FILE), mtime).catch(() => {})
      const archiveFile = join(staging, `${id}${ARCHIVE_SUFFIX}`)
      const finished = archive!
      const written = await finished.finish()
      archive = undefined
      const outer: MetadataDraft = { ...draft, size: written.size, archive: { path: `${id}${ARCHIVE_SUFFIX}`, size: written.size, sha256: written.sha256 } }
      if (dataJson !== undefined) {
        const { offset, size } = await dataJson
        outer.tenantIndex = buildTenantIndex({ backupId: id, tables, groupBy, runs, offset, span: finished.membersOf(offset, offset + size) })
      }
      step('create:before-verify')
      if (options.verify) {
        const parsedOuter = JSON.parse(serializeMetadata(outer)) as BackupMetadata
        assertVerified((await checkArchive(archiveFile, id, parsedOuter, { pool, onProgress: progress })).checks)
      }
      let storedFile = archiveFile
      if (options.encryption !== undefined) {
        // Sealed after the plaintext archive verified, proven to open back to it, and the plaintext removed before anything is published.
        const sealedName = `${id}${ENCRYPTED_SUFFIX}`
        storedFile = join(staging, sealedName)
        const ciphertext = await sealFile(archiveFile, storedFile, options.encryption.dataKey)
        if (options.verify) await assertOpensTo(storedFile, options.encryption.dataKey, written)
        await rm(archiveFile, { force: true })
        outer.encryption = { key: options.encryption.record, ciphertext: { path: sealedName, ...ciphertext } }
        if (outer.tenantIndex !== undefined) outer.tenantIndex = sealTenantIndex(outer.tenantIndex, options.encryption.dataKey, id)
        outer.size = ciphertext.size
        published = join(options.backupDir, sealedName)
      }
      outer.durationMs = Math.round(performance.now() - startedAt)
      step('create:before-publish')
      await link(storedFile, published).catch((error: NodeJS.ErrnoException) => {
        throw error.code === 'EEXIST' ? new ToolkitError(`${published} est apparu pendant l’écriture du backup`) : error
      })
      linkedArchive = true
      fsyncPath(options.backupDir)
      step('create:after-link')
      const text = serializeMetadata(outer)
      writeFileAtomic(paths.sidecar, text)
      step('create:after-publish')
      await rm(staging, { recursive: true, force: true })
      return { metadata: JSON.parse(text) as BackupMetadata, path: published, cleaned }
    } finally {
      await closeSnapshot().catch(() => {})
    }
  } catch (error) {
    await archive?.abort()
    await rm(staging, { recursive: true, force: true }).catch(() => {})
    if (linkedArchive && !existsSync(paths.sidecar)) await rm(published, { force: true }).catch(() => {})
    throw explainFailure(error, options.backupDir)
  } finally {
    await pool?.close()
  }
}

/** data.json's grouping of the tenants' rows (none for a database without the tenant table). */
function tenantGrouping(tables: readonly TableInfo[]): Map<string, string> {
  if (!tables.some((table) => table.name === DEFAULT_TENANT_TABLE)) return new Map()
  try {
    return groupingColumns(tenantGraph(tables))
  } catch (error) {
    // A tenant table the graph cannot use (no one-column key…): data.json as before, no index.
    if (error instanceof ToolkitError) return new Map()
    throw error
  }
}

function sizeMatches(name: string, packed: number, written: number): number {
  if (packed !== written) throw new Error(`${name} a changé sur le disque entre l’écriture et l’archivage (${written} octets écrits, ${packed} archivés)`)
  return written
}

/** The first backup id free for this instant (`backup-…-2`, `-3`… when a backup of the same second exists). */
export async function freeId(backupDir: string, date: Date): Promise<string> {
  const names = new Set(await readdir(backupDir))
  const taken = new Set([...names].map((name) => idOfTemporaryName(name)).filter(Boolean))
  for (let sequence = 1; ; sequence++) {
    const id = backupIdFor(date, sequence)
    if (taken.has(id) || names.has(id) || names.has(`${id}${ARCHIVE_SUFFIX}`) || names.has(`${id}${ENCRYPTED_SUFFIX}`) || names.has(`${id}${SIDECAR_SUFFIX}`)) continue
    return id
  }
}

/** Throws unless every file of a freshly written backup read back with its recorded hash. */
export function assertVerified(checks: FileCheck[]): void {
  const bad = checks.filter((check) => check.status !== 'ok')
  if (bad.length > 0) {
    throw new ToolkitError(`le backup a échoué à sa propre vérification : ${bad.map((c) => `${c.path} ${CHECK_STATUS_LABELS[c.status]}${c.detail ? ` (${c.detail})` : ''}`).join(' ; ')}`, {
      hint: 'Rien n’a été gardé. Vérifiez le disque (dmesg, SMART) et relancez le backup.',
    })
  }
}

function explainFailure(error: unknown, backupDir: string): unknown {
  if (isDiskFull(error)) {
    return new ToolkitError(`plus de place dans ${backupDir} : backup abandonné, fichiers partiels supprimés`, {
      hint: 'Libérez de la place, supprimez d’anciens backups (`advanced-backup prune`) ou donnez à --dir un disque plus grand.',
      cause: error,
    })
  }
  if (error instanceof ToolkitError) return error
  return mapFilesystemError(error, 'le backup', backupDir) ?? new ToolkitError(`échec du backup : ${describeError(error)}`, { cause: error })
}
