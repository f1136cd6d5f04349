/**
 * Incremental backups (SQLite sources): a backup that stores only the rows that changed since its
 * parent, and how a chain of them becomes a database again.
 *
 * Mechanism: row-level, keyed by rowid (by primary key for WITHOUT ROWID tables), compared by value.
 * Why not a page-level diff of database.db: the snapshot is made with VACUUM INTO, which packs
 * pages anew, so one row that grows shifts every page after it and the "diff" becomes the whole
 * file; and 1 % of rows spread over a table touch far more than 1 % of its pages (plus index
 * pages). Rows, on the other hand, are exactly what changed: the change set of 1 % of the rows is
 * about 1 % of the data. Keying by rowid (not only by the Prisma id) keeps the rows' order, so the
 * rebuilt database's `.dump` is byte-for-byte the source's at the incremental's instant.
 *
 * How: the parent chain is rebuilt into a temporary SQLite file (its hashes checked on the way),
 * the live source is ATTACHed, and inside ONE read transaction on the source (so the change set is
 * one instant, even while the app writes in WAL mode) SQLite itself computes, per table:
 *   upserts = source rows with no identical row (same key, same values and types, binary compare) in the parent
 *   deletes = parent keys that are no longer in the source
 * and writes them into `changes.db` (a SQLite file: per table `t<n>` = `__op`, `__rowid`, the
 * columns; `__tables` maps each table to its `t<n>`; `__schema` = the source's sqlite_master). No row passes through
 * JavaScript. A schema change since the parent (a migration) refuses the incremental: take a full
 * backup then.
 *
 * Applying a change set (restore, and the next incremental): delete every key of the change set,
 * insert the upserts with their rowids, foreign keys off and triggers dropped meanwhile.
 *
 * The backup itself follows create.ts's invariant (complete iff its metadata exists, written
 * last); it holds `changes.db` and metadata.json, `incremental: true`, `parentId`, and row counts
 * of the whole database at its instant (what restore checks against).
 */
import { existsSync } from 'node:fs'
import { link, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { quoteIdentifier, type SqlHandle } from '../../db/connection.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { TEMPORARY_MARKER, commitRename, fsyncPath, writeFileAtomic } from '../../fs/atomic.ts'
import type { ProgressListener } from '../../progress.ts'
import { ArchiveWriter } from '../archive/archive.ts'
import { findBackupEntry, listBackupEntries, prepareBackupDir, type BackupEntry } from '../catalog/catalog.ts'
import { assertVerified, freeId, type CreateBackupResult } from './create.ts'
import { extractBackupFile } from '../archive/extract.ts'
import { GzipPool } from '../archive/gzip-blocks.ts'
import { ARCHIVE_SUFFIX, METADATA_FILE, backupPaths, stagingNameFor } from '../layout.ts'
import { DATABASE_FILE } from '../../engines/snapshot.ts'
import { hashFile, manifestHash } from '../manifest.ts'
import { serializeMetadata, type BackupMetadata, type MetadataDraft } from '../metadata.ts'
import { checkArchive, checkDirectory } from '../catalog/verify.ts'

/** The change set inside an incremental backup. */
export const CHANGES_FILE = 'changes.db'

export interface IncrementalOptions {
  db: SqlHandle
  backupDir: string
  compress: boolean
  verify: boolean
  tool: { name: string; version: string }
  prismaSchemaSha256: string | null
  /** The backup to build on; default the newest complete backup of the same database. */
  parentId?: string
  now?: () => Date
  onProgress?: ProgressListener
  threads?: number
  /** gzip level of the archive (see createBackup). */
  compressionLevel?: number
}

/** Thrown when there is no backup of this database to build on (the caller may take a full one). */
export class NoParentError extends ToolkitError {}

/** The newest complete backup of the same database that can be a parent (SQLite content, sealed metadata). */
export async function findParent(backupDir: string, db: SqlHandle): Promise<BackupEntry> {
  for (const entry of await listBackupEntries(backupDir)) {
    const m = entry.metadata
    if (m === undefined || !entry.sealValid || m.engine !== 'sqlite' || m.source !== db.redactedUrl) continue
    if (m.incremental || m.files.some((file) => file.path === DATABASE_FILE)) return entry
  }
  throw new NoParentError(`aucun backup de ${db.redactedUrl} dans ${backupDir} sur lequel bâtir un backup incrémental`, {
    hint: 'Faites d’abord un backup complet : `advanced-backup create`.',
  })
}

/**
 * The backups `id` needs, oldest (the full backup) first, ending with `id` itself.
 * @example (await backupChain('backups', 'backup-2026-01-22T03-00-00')).map((e) => e.id)
 */
export async function backupChain(backupDir: string, id: string): Promise<BackupEntry[]> {
  const chain: BackupEntry[] = []
  let entry = await findBackupEntry(backupDir, id)
  for (;;) {
    if (entry.metadata === undefined) throw new ToolkitError(`le backup ${entry.id} est illisible : ${entry.problem ?? 'métadonnées invalides'}`, { hint: `Lancez \`advanced-backup verify ${entry.id}\`.` })
    chain.unshift(entry)
    const parentId = entry.metadata.incremental ? entry.metadata.parentId : null
    if (parentId === null) break
    if (parentId >= entry.id) throw new ToolkitError(`le backup ${entry.id} nomme un parent (${parentId}) qui n’est pas plus ancien que lui`)
    try {
      entry = await findBackupEntry(backupDir, parentId)
    } catch (error) {
      throw new ToolkitError(`le backup ${chain[0]!.id} est incrémental et il lui faut son parent ${parentId}, absent de ${backupDir}`, {
        hint: 'Restaurez un backup complet, ou remettez le parent dans le dossier des backups.',
        cause: error,
      })
    }
  }
  return chain
}

export interface MaterializeOptions {
  artefact?: string
  pool?: GzipPool
  onProgress?: ProgressListener
  /**
   * How a file of a backup of the chain reaches `dest` (which must not exist): by default extracted
   * and hash-checked; a restore moves the copy its verification already wrote (restore/verify-chain.ts).
   */
  take?: (entry: BackupEntry, path: string, dest: string) => Promise<void>
}

/**
 * Rebuilds the database of backup `id` (a full backup's database.db, or a chain's root with every
 * change set applied in order) into `dest`, which must not exist; every file is hash-checked.
 */
export async function materializeDatabase(chain: readonly BackupEntry[], dest: string, options: MaterializeOptions = {}): Promise<void> {
  const [root, ...incrementals] = chain
  if (root === undefined) throw new ToolkitError('chaîne de backups vide')
  const rootMetadata = root.metadata!
  const artefact = options.artefact ?? DATABASE_FILE
  const file = rootMetadata.files.find((f) => f.path === artefact)
  if (file === undefined) {
    throw new ToolkitError(`le backup ${root.id} ne contient pas de ${artefact === DATABASE_FILE ? 'base SQLite' : artefact} (backup ${rootMetadata.engine})`)
  }
  const total = file.size
  const take =
    options.take ??
    ((entry: BackupEntry, path: string, to: string) =>
      extractBackupFile(entry, entry.metadata!, path, to, {
        pool: options.pool,
        ...(entry === root ? { onBytes: (done: number) => options.onProgress?.({ label: 'extract', done, total, unit: 'bytes' }) } : {}),
      }))
  await take(root, artefact, dest)
  try {
    for (const entry of incrementals) {
      const changes = `${dest}-changes`
      await rm(changes, { force: true })
      await take(entry, CHANGES_FILE, changes)
      try {
        applyChangeSet(dest, changes)
      } finally {
        await rm(changes, { force: true })
      }
      options.onProgress?.({ label: 'apply', done: incrementals.indexOf(entry) + 1, total: incrementals.length, unit: 'steps' })
    }
  } catch (error) {
    await rm(dest, { force: true })
    throw error
  }
}

interface DiffTable {
  name: string
  withoutRowid: boolean
  columns: string[]
  /** WITHOUT ROWID tables: the primary key columns. */
  key: string[]
  /** Columns that may hold both INTEGER and REAL values (not TEXT affinity): compared with their storage class. */
  numeric?: Set<string>
}

/** SQLite's column affinity rules (https://sqlite.org/datatype3.html §3.1), TEXT or not. */
function hasTextAffinity(declared: string): boolean {
  const type = declared.toUpperCase()
  return !type.includes('INT') && (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT'))
}

/** Applies `changes` (a changes.db) to the database file `target`, in one transaction. */
export function applyChangeSet(target: string, changes: string): void {
  const db = new Database(target)
  try {
    db.pragma('foreign_keys = OFF')
    db.pragma('journal_mode = DELETE')
    db.prepare('ATTACH ? AS ch').run(changes)
    const tables = (db.prepare('SELECT name, store, without_rowid AS withoutRowid, columns, key FROM ch.__tables').all() as { name: string; store: string; withoutRowid: number; columns: string; key: string }[]).map(
      (t) => ({ name: t.name, store: t.store, withoutRowid: t.withoutRowid === 1, columns: JSON.parse(t.columns) as string[], key: JSON.parse(t.key) as string[] }),
    )
    const schemaOf = (schema: string) => db.prepare(`SELECT type, name, tbl_name, sql FROM ${schema} WHERE name NOT LIKE 'sqlite\\_autoindex%' ESCAPE '\\' ORDER BY type, name`).all()
    if (JSON.stringify(schemaOf('main.sqlite_master')) !== JSON.stringify(schemaOf('ch.__schema'))) {
      throw new ToolkitError('les changements ont été pris sur un autre schéma que celui de la base où ils s’appliquent')
    }
    const triggers = db.prepare(`SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger'`).all() as { name: string; sql: string }[]
    db.exec('BEGIN')
    for (const trigger of triggers) db.exec(`DROP TRIGGER ${quoteIdentifier(trigger.name)}`)
    for (const table of tables) {
      const t = quoteIdentifier(table.name)
      const c = quoteIdentifier(table.store)
      const cols = table.columns.map(quoteIdentifier)
      if (table.withoutRowid) {
        const key = table.key.map(quoteIdentifier)
        db.exec(`DELETE FROM main.${t} WHERE (${key.join(', ')}) IN (SELECT ${key.join(', ')} FROM ch.${c})`)
        db.exec(`INSERT INTO main.${t} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM ch.${c} WHERE "__op" = 'u'`)
      } else {
        db.exec(`DELETE FROM main.${t} WHERE rowid IN (SELECT "__rowid" FROM ch.${c})`)
        db.exec(`INSERT INTO main.${t} (rowid, ${cols.join(', ')}) SELECT "__rowid", ${cols.join(', ')} FROM ch.${c} WHERE "__op" = 'u' ORDER BY "__rowid"`)
      }
    }
    for (const trigger of triggers) db.exec(trigger.sql)
    db.exec('COMMIT')
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
    db.close()
  }
}

/** The tables to diff: every table of `schema` but SQLite's internal ones (sqlite_sequence included). */
function diffTables(db: Database.Database, schema: string): DiffTable[] {
  const rows = db.prepare(`SELECT name, wr FROM pragma_table_list WHERE schema = ? AND type = 'table' AND (name NOT LIKE 'sqlite\\_%' ESCAPE '\\' OR name = 'sqlite_sequence') ORDER BY name`).all(schema) as { name: string; wr: number }[]
  return rows.map(({ name, wr }) => {
    const info = db.prepare(`SELECT name, type, pk FROM pragma_table_info(?, ?) ORDER BY cid`).all(name, schema) as { name: string; type: string; pk: number }[]
    return {
      name,
      withoutRowid: wr === 1,
      columns: info.map((c) => c.name),
      key: info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name),
      numeric: new Set(info.filter((c) => !hasTextAffinity(c.type)).map((c) => c.name)),
    }
  })
}

export interface DiffResult {
  tables: { name: string; rows: number }[]
  upserts: number
  deletes: number
  newestMigration: string | null
}

/**
 * Writes into `changes` (a new file) what turns the database file `parent` into the source file's
 * current state, reading the source in one transaction.
 */
export function diffDatabases(parent: string, source: string, changes: string): DiffResult {
  const db = new Database(parent)
  try {
    db.pragma('journal_mode = OFF')
    db.prepare('ATTACH ? AS src').run(source)
    db.prepare('ATTACH ? AS ch').run(changes)
    db.exec('PRAGMA ch.journal_mode = DELETE')
    db.exec('BEGIN')
    const schemaOf = (schema: string) => db.prepare(`SELECT type, name, tbl_name, sql FROM ${schema}.sqlite_master WHERE name NOT LIKE 'sqlite\\_autoindex%' ESCAPE '\\' ORDER BY type, name`).all()
    const sourceSchema = schemaOf('src')
    if (JSON.stringify(sourceSchema) !== JSON.stringify(schemaOf('main'))) {
      throw new ToolkitError('le schéma de la base a changé depuis le backup parent (une migration a eu lieu) : un backup incrémental ne peut pas le décrire', {
        hint: 'Faites un backup complet : `advanced-backup create` (sans --incremental).',
      })
    }
    db.exec(`CREATE TABLE ch.__schema (type TEXT, name TEXT, tbl_name TEXT, sql TEXT)`)
    db.exec(`INSERT INTO ch.__schema SELECT type, name, tbl_name, sql FROM src.sqlite_master WHERE name NOT LIKE 'sqlite\\_autoindex%' ESCAPE '\\'`)
    db.exec(`CREATE TABLE ch.__tables (name TEXT PRIMARY KEY, store TEXT, without_rowid INTEGER, columns TEXT, key TEXT, upserts INTEGER, deletes INTEGER)`)
    const result: DiffResult = { tables: [], upserts: 0, deletes: 0, newestMigration: null }
    let index = 0
    for (const table of diffTables(db, 'src')) {
      const t = quoteIdentifier(table.name)
      // The change set's table for it (its own name may be reserved, e.g. sqlite_sequence).
      const store = `t${++index}`
      const c = quoteIdentifier(store)
      const cols = table.columns.map(quoteIdentifier)
      // Same key, same values compared as bytes (whatever the column's collation), same storage class
      // where 5 and 5.0 could meet (IS calls them equal; .dump does not): TEXT-affinity columns hold no numbers.
      const same = table.columns
        .map((name) => {
          const c = quoteIdentifier(name)
          return table.numeric!.has(name) ? `o.${c} IS n.${c} COLLATE BINARY AND typeof(o.${c}) = typeof(n.${c})` : `o.${c} IS n.${c} COLLATE BINARY`
        })
        .join(' AND ')
      db.exec(`CREATE TABLE ch.${c} ("__op" TEXT NOT NULL, "__rowid" INTEGER${cols.map((col) => `, ${col}`).join('')})`)
      let upserts: number
      let deletes: number
      if (table.withoutRowid) {
        const keyMatch = (a: string, b: string) => table.key.map(quoteIdentifier).map((k) => `${a}.${k} IS ${b}.${k} COLLATE BINARY`).join(' AND ')
        upserts = db.prepare(`INSERT INTO ch.${c} SELECT 'u', NULL, ${cols.map((c) => `n.${c}`).join(', ')} FROM src.${t} n WHERE NOT EXISTS (SELECT 1 FROM main.${t} o WHERE ${keyMatch('o', 'n')} AND ${same})`).run().changes
        deletes = db.prepare(`INSERT INTO ch.${c} ("__op", ${table.key.map(quoteIdentifier).join(', ')}) SELECT 'd', ${table.key.map((k) => `o.${quoteIdentifier(k)}`).join(', ')} FROM main.${t} o WHERE NOT EXISTS (SELECT 1 FROM src.${t} n WHERE ${keyMatch('o', 'n')})`).run().changes
      } else {
        upserts = db.prepare(`INSERT INTO ch.${c} SELECT 'u', n.rowid, ${cols.map((c) => `n.${c}`).join(', ')} FROM src.${t} n WHERE NOT EXISTS (SELECT 1 FROM main.${t} o WHERE o.rowid = n.rowid AND ${same})`).run().changes
        deletes = db.prepare(`INSERT INTO ch.${c} ("__op", "__rowid") SELECT 'd', o.rowid FROM main.${t} o WHERE NOT EXISTS (SELECT 1 FROM src.${t} n WHERE n.rowid = o.rowid)`).run().changes
      }
      db.prepare('INSERT INTO ch.__tables VALUES (?, ?, ?, ?, ?, ?, ?)').run(table.name, store, table.withoutRowid ? 1 : 0, JSON.stringify(table.columns), JSON.stringify(table.key), upserts, deletes)
      result.upserts += upserts
      result.deletes += deletes
      if (table.name !== 'sqlite_sequence') result.tables.push({ name: table.name, rows: Number((db.prepare(`SELECT count(*) AS n FROM src.${t}`).get() as { n: number }).n) })
    }
    if (result.tables.some((t) => t.name === '_prisma_migrations')) {
      const row = db.prepare(`SELECT migration_name AS name FROM src._prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name DESC, started_at DESC LIMIT 1`).get() as { name: string } | undefined
      result.newestMigration = row?.name ?? null
    }
    db.exec('COMMIT')
    return result
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
    db.close()
  }
}

/**
 * Takes an incremental backup of a SQLite database: only what changed since its parent.
 * @example const { metadata } = await createIncrementalBackup({ db, backupDir: 'backups', compress: true, verify: true, tool, prismaSchemaSha256 })
 */
export async function createIncrementalBackup(options: IncrementalOptions): Promise<CreateBackupResult> {
  if (options.db.location.engine !== 'sqlite') {
    throw new ToolkitError(`les backups incrémentaux sont réservés aux bases SQLite ; ${options.db.redactedUrl} est ${options.db.engine}`, { hint: 'Faites un backup complet (sans --incremental).' })
  }
  const sourcePath = options.db.location.path
  const now = options.now ?? (() => new Date())
  const started = now()
  const startedAt = performance.now()
  const cleaned = await prepareBackupDir(options.backupDir)
  const parent = options.parentId ? await findBackupEntry(options.backupDir, options.parentId) : await findParent(options.backupDir, options.db)
  const chain = await backupChain(options.backupDir, parent.id)
  const id = await freeId(options.backupDir, started)
  const staging = join(options.backupDir, stagingNameFor(id))
  const base = join(options.backupDir, `${id}${TEMPORARY_MARKER}${process.pid}-base.db`)
  const paths = backupPaths(options.backupDir, id)
  const progress = options.onProgress ?? (() => {})
  const pool = new GzipPool({ threads: options.threads, level: options.compressionLevel })
  let archive: ArchiveWriter | undefined
  let linkedArchive = false
  try {
    await mkdir(staging)
    await materializeDatabase(chain, base, { pool, onProgress: progress })
    const changesPath = join(staging, CHANGES_FILE)
    const diff = diffDatabases(base, sourcePath, changesPath)
    await rm(base, { force: true })
    if (!options.compress) fsyncPath(changesPath)
    const digest = { path: CHANGES_FILE, ...(await hashFile(changesPath)) }
    const files = [digest]
    const draft: MetadataDraft = {
      formatVersion: 1,
      id,
      timestamp: started.toISOString(),
      databasePath: sourcePath,
      size: digest.size,
      hash: manifestHash(files),
      compressed: options.compress,
      incremental: true,
      parentId: parent.id,
      verified: options.verify,
      exportFormats: [],
      engine: 'sqlite',
      source: options.db.redactedUrl,
      tool: options.tool,
      durationMs: 0,
      contentSize: digest.size,
      tables: diff.tables,
      schema: { prismaSchemaSha256: options.prismaSchemaSha256, newestMigration: diff.newestMigration },
      files,
      archive: null,
      warnings: [`incrémental (${diff.upserts} lignes insérées ou modifiées, ${diff.deletes} supprimées depuis ${parent.id}) : sa restauration demande ${chain.map((e) => e.id).join(', ')}`],
    }
    if (!options.compress) {
      if (options.verify) assertVerified(await checkDirectory(staging, files))
      draft.durationMs = Math.round(performance.now() - startedAt)
      const text = serializeMetadata(draft)
      await writeFile(join(staging, METADATA_FILE), text, { flag: 'wx' })
      fsyncPath(join(staging, METADATA_FILE))
      fsyncPath(staging)
      if (existsSync(paths.directory)) throw new ToolkitError(`${paths.directory} est apparu pendant l’écriture du backup`)
      commitRename(staging, paths.directory)
      return { metadata: JSON.parse(text) as BackupMetadata, path: paths.directory, cleaned }
    }
    const mtime = new Date(Math.floor(started.getTime() / 1000) * 1000)
    const archiveFile = join(staging, `${id}${ARCHIVE_SUFFIX}`)
    archive = await ArchiveWriter.create(archiveFile, { pool })
    await archive.addDirectory(id, mtime)
    await archive.addFile(`${id}/${CHANGES_FILE}`, changesPath, mtime)
    draft.durationMs = Math.round(performance.now() - startedAt)
    await writeFile(join(staging, METADATA_FILE), serializeMetadata(draft), { flag: 'wx' })
    await archive.addFile(`${id}/${METADATA_FILE}`, join(staging, METADATA_FILE), mtime)
    const written = await archive.finish()
    archive = undefined
    const outer: MetadataDraft = { ...draft, size: written.size, archive: { path: `${id}${ARCHIVE_SUFFIX}`, ...written } }
    if (options.verify) assertVerified((await checkArchive(archiveFile, id, JSON.parse(serializeMetadata(outer)) as BackupMetadata, { pool })).checks)
    outer.durationMs = Math.round(performance.now() - startedAt)
    await link(archiveFile, paths.archive)
    linkedArchive = true
    fsyncPath(options.backupDir)
    const text = serializeMetadata(outer)
    writeFileAtomic(paths.sidecar, text)
    await rm(staging, { recursive: true, force: true })
    return { metadata: JSON.parse(text) as BackupMetadata, path: paths.archive, cleaned }
  } catch (error) {
    await archive?.abort()
    await rm(staging, { recursive: true, force: true }).catch(() => {})
    await rm(base, { force: true }).catch(() => {})
    if (linkedArchive && !existsSync(paths.sidecar)) await rm(paths.archive, { force: true }).catch(() => {})
    if (error instanceof ToolkitError) throw error
    throw new ToolkitError(`échec du backup incrémental : ${describeError(error)}`, { cause: error })
  } finally {
    await pool.close()
  }
}

