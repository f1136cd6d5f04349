/**
 * Restoring into a SQLite file: the SQLite steps of the one restore flow (backup/restore/flow.ts).
 *   verify   — engine and schema compared with the target's, the target not in use;
 *   safety   — the current database copied to `<db>.before-restore` under a write lock after a
 *              WAL checkpoint (a consistent copy, not a raw copy of a live file), atomically; an
 *              existing `<db>.before-restore` (an earlier run's) is never overwritten: this run's
 *              copy is then `<db>.before-restore-<UTC time>`;
 *   replace  — the backup's database, written beside the target (`<db>.tmp-<pid>-…-verified`) by the
 *              verification as it hashed it (`stagingPath`), renamed to `<db>.tmp-<pid>-…` (changes of an
 *              incremental chain applied there), fsynced; stale `-wal`/`-shm`/`-journal` removed; renamed
 *              over the target; dir fsynced;
 *   check    — opened through Prisma, `PRAGMA integrity_check`, `PRAGMA foreign_key_check`, row
 *              counts equal to the metadata's; on failure the previous database is put back.
 * A dry run rebuilds the database in a scratch folder and checks it there.
 * A target that another process holds open is refused: replacing a file under a live SQLite
 * connection leaves that process writing into the old, unlinked inode (its writes vanish) or
 * corrupting the new one through a stale -wal.
 */
import { chmodSync, chownSync, existsSync, linkSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs'
import { copyFile, open, rm, stat } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import Database from 'better-sqlite3'
import { DATABASE_FILE } from '../snapshot.ts'
import { MIGRATIONS_DIRS, readMigrations } from '../../db/migrations.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { TEMPORARY_MARKER, commitRename, fsyncPath, temporaryPathFor } from '../../fs/atomic.ts'
import { ownerOfTemporaryName, removeDeadLeftovers } from '../../fs/leftovers.ts'
import { isDiskFull } from '../../fs/errors.ts'
import type { RestoredBackupMetadata, RestoredCheck, RestoreTarget } from '../engine.ts'
import { checkRowCounts } from '../_row-counts.ts'
import { openSqlite } from './connection.ts'
import { integrityOf, referencesOf, sameFile, STAGED_CHECK_PARTS, startStagedCheck, type SqliteQuery, type StagedCheck } from './staged-check.ts'
import { sqliteRealPath } from './url.ts'

export const SAFETY_SUFFIX = '.before-restore'

/** The SQLite file `location` names, ready to be replaced by a backup. */
export async function openSqliteRestoreTarget(location: DatabaseLocation, options: { dryRun: boolean }): Promise<RestoreTarget> {
  if (location.engine !== 'sqlite') throw new Error(`not a SQLite location: ${location.engine}`)
  // A symbolic link (to the file or a folder on its way) is followed: the real file is what gets replaced.
  const target = sqliteRealPath(location.path)
  // Before anything: a target we can write beside, not a directory, not in use.
  if (!existsSync(dirname(target))) {
    throw new ToolkitError(`restauration impossible vers ${target} : le dossier ${dirname(target)} n’existe pas`, { hint: 'Créez d’abord le dossier, ou choisissez un autre chemin --to.' })
  }
  if (existsSync(target) && statSync(target).isDirectory()) throw new ToolkitError(`restauration impossible vers ${target} : c’est un dossier`, { hint: 'Donnez le chemin d’un fichier de base (--to <fichier>).' })
  const targetExists = existsSync(target)
  if (!options.dryRun) removeRestoreLeftovers(target)
  const safetyCopy = targetExists ? freeSafetyCopyName(target) : null
  let early: StagedCheck | undefined
  return {
    display: target,
    noun: 'un fichier',
    exists: targetExists,
    plannedSafetyCopy: safetyCopy,
    scratchName: basename(target),
    rehearsal: {
      safetyDetail: safetyCopy === null ? `simulation: ${basename(target)} n’existe pas, rien à sauvegarder` : `simulation: ${basename(target)} serait copié dans ${basename(safetyCopy)}, rien n’est copié`,
      replaceDetail: `simulation: reconstruite dans un dossier temporaire, ${basename(target)} intact`,
      checks: true,
    },
    // Beside the target (never in a dry run): the verified copy becomes the file without a byte copied,
    // and needs no room in the temporary folder. Its own name: step 3 stages under `temporaryPathFor` too.
    stagingPath: () => (options.dryRun ? null : `${temporaryPathFor(target)}-verified`),
    async assertReplaceable(context) {
      if (!context.force) await assertSameSchema(context.metadata, target, targetExists, context.prismaSchemaSha256)
      if (targetExists && !options.dryRun) assertNotInUse(target)
    },
    async safetyCopy() {
      if (safetyCopy === null) return { path: null, detail: `${basename(target)} n’existe pas: rien à sauvegarder` }
      // Named again now, under the restore's lock: the planned name may have been taken since.
      const kept = freeSafetyCopyName(target)
      await consistentCopy(target, kept)
      return { path: kept, detail: `${basename(target)} -> ${basename(kept)}` }
    },
    async replace(materialize, context) {
      const staged = temporaryPathFor(target)
      try {
        await materialize(staged)
        context.midReplace()
        if (targetExists) keepOwnership(target, staged)
        fsyncPath(staged)
        if (targetExists) assertNotInUse(target)
        await removeSidecars(target)
        commitRename(staged, target)
      } catch (error) {
        await rm(staged, { force: true })
        throw diskFull(error, dirname(target), `la base restaurée (${formatSize(context.metadata.files.find((f) => f.path === DATABASE_FILE)?.size ?? 0)})`) ?? error
      }
      return `${context.metadata.id} -> ${basename(target)} (${formatSize((await stat(target)).size)})`
    },
    checkStaged(staged) {
      early?.cancel()
      early = startStagedCheck(staged)
      // Its writeback starts now too, while step 1 verifies the rest: step 3's fsync (which reports any failure) then has little left to flush.
      void open(staged, 'r').then((handle) => handle.sync().finally(() => handle.close())).catch(() => {})
      return { threads: STAGED_CHECK_PARTS.length, done: early.done }
    },
    check: (path, context) => checkRestored(path ?? target, context.metadata, path === null ? early : undefined),
    undo: (kept) => putPreviousBack(target, kept),
    size: async (path) => (await stat(path ?? target)).size,
    async close() {
      early?.cancel()
    },
  }
}

/**
 * `<db>.before-restore` when free, else `<db>.before-restore-<UTC time>` (`-2`, `-3`… within the
 * same second): an earlier run's copy may be the only one of the database as it was.
 */
export function freeSafetyCopyName(target: string, now = new Date()): string {
  const first = `${target}${SAFETY_SUFFIX}`
  if (!existsSync(first)) return first
  const stamped = `${first}-${now.toISOString().slice(0, 19).replaceAll(/[-:]/g, '')}Z`
  let name = stamped
  for (let n = 2; existsSync(name); n++) name = `${stamped}-${n}`
  return name
}

/** The restored file gets the previous one's permissions and, when allowed, its owner (the app's user must still write it). */
function keepOwnership(previous: string, next: string): void {
  const info = statSync(previous)
  chmodSync(next, info.mode & 0o7777)
  try {
    chownSync(next, info.uid, info.gid)
  } catch {
    // Not root: the file is ours, as the previous one was (or the chmod above is all we can do).
  }
}

/** A "no space left" ToolkitError when the disk is full (anywhere in the cause chain), else undefined. */
function diskFull(error: unknown, dir: string, what: string): ToolkitError | undefined {
  if (!isDiskFull(error)) return undefined
  return new ToolkitError(`plus de place dans ${dir} pour ${what} : rien n’a été remplacé`, { hint: 'Libérez de la place près de la base (il faut la copie de sécurité et le nouveau fichier), puis relancez.', cause: error })
}

function formatSize(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`
}

/** Refuses (unless --force) a backup whose Prisma schema or newest migration is not the target's. */
async function assertSameSchema(metadata: RestoredBackupMetadata, target: string, targetExists: boolean, toolkitSchema: string | null): Promise<void> {
  const differences: string[] = []
  const backupSchema = metadata.schema.prismaSchemaSha256
  if (backupSchema !== null && toolkitSchema !== null && backupSchema !== toolkitSchema) {
    differences.push(`schéma Prisma ${backupSchema.slice(0, 12)}… dans le backup, ${toolkitSchema.slice(0, 12)}… attendu par cet outil`)
  }
  // The target's own history when it has one; otherwise (new or empty file) this toolkit's newest migration.
  let expected = targetExists ? newestMigrationOf(target) : null
  const fromTarget = expected !== null
  if (!fromTarget && metadata.schema.newestMigration !== null) {
    const dir = MIGRATIONS_DIRS.sqlite
    expected = existsSync(dir) ? (readMigrations(dir).at(-1)?.name ?? null) : null
  }
  if ((metadata.schema.newestMigration ?? null) !== expected) {
    differences.push(`dernière migration ${metadata.schema.newestMigration ?? '(aucune)'} dans le backup, ${expected ?? '(aucune)'} ${fromTarget ? `dans ${basename(target)}` : 'dans cet outil'}`)
  }
  if (differences.length > 0) {
    throw new ToolkitError(`le backup ${metadata.id} a été fait avec un autre schéma que celui de la cible : ${differences.join(' ; ')}`, {
      hint: 'Restaurez un backup de la même version du schéma, ou --force puis migrez (`npx prisma migrate deploy`).',
    })
  }
}

function newestMigrationOf(path: string): string | null {
  // Read-write (it only reads): a read-only connection to a WAL database would leave -wal/-shm behind.
  const db = new Database(path, { fileMustExist: true, timeout: 5000 })
  try {
    const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`).get()
    if (!exists) return null
    const row = db.prepare(`SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name DESC, started_at DESC LIMIT 1`).get() as { name: string } | undefined
    return row?.name ?? null
  } catch (error) {
    throw new ToolkitError(`lecture de la cible ${path} impossible : ${describeError(error)}`, { hint: 'Est-ce bien une base SQLite ? Choisissez un autre --to, ou --force.', cause: error })
  } finally {
    db.close()
  }
}

/** The processes (other than this one) that hold `path` or its -wal/-shm/-journal open (Linux /proc). */
export function processesUsing(path: string): { pid: number; command: string }[] {
  // /proc shows the real path: resolve symbolic links in ours first.
  const real = existsSync(path) ? realpathSync(path) : path
  const names = new Set([real, `${real}-wal`, `${real}-shm`, `${real}-journal`])
  const found: { pid: number; command: string }[] = []
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
  } catch {
    return found
  }
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let link: string
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      if (names.has(link)) {
        let command = ''
        try {
          command = readFileSyncSafe(`/proc/${pid}/cmdline`).replaceAll('\0', ' ').trim().slice(0, 80)
        } catch {}
        found.push({ pid: Number(pid), command })
        break
      }
    }
  }
  return found
}

function readFileSyncSafe(path: string): string {
  return readFileSync(path, 'utf8')
}

/**
 * Refuses a target that another process has open, or whose write lock is taken: replacing it
 * would lose that process's writes.
 */
export function assertNotInUse(target: string): void {
  const users = processesUsing(target)
  if (users.length > 0) {
    throw new ToolkitError(`${target} est ouvert par un autre processus (${users.map((u) => `pid ${u.pid}${u.command ? ` ${u.command}` : ''}`).join(', ')}) : restaurer maintenant perdrait ses écritures`, {
      hint: 'Arrêtez l’application (et tout shell sqlite3) qui utilise la base, puis relancez ; ou restaurez ailleurs avec --to <chemin>.',
    })
  }
  let db: Database.Database | undefined
  try {
    db = new Database(target, { fileMustExist: true, timeout: 0 })
    db.exec('BEGIN IMMEDIATE')
    db.exec('ROLLBACK')
  } catch (error) {
    const code = (error as { code?: string }).code ?? ''
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new ToolkitError(`${target} est en cours d’écriture par un autre processus (verrou d’écriture pris) : restaurer maintenant perdrait ses écritures`, {
        hint: 'Arrêtez l’application qui utilise la base, puis relancez ; ou restaurez ailleurs avec --to <chemin>.',
      })
    }
    throw new ToolkitError(`ouverture de la cible ${target} impossible : ${describeError(error)}`, { hint: 'Est-ce bien une base SQLite ? Restaurez ailleurs avec --to <chemin>.', cause: error })
  } finally {
    db?.close()
  }
}

/**
 * A consistent copy of a SQLite file nobody else is using: WAL checkpointed into the file, the
 * write lock held while the bytes are copied, then fsync and link into place (never over an existing file).
 */
async function consistentCopy(source: string, dest: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true, timeout: 0 })
  const temporary = temporaryPathFor(dest)
  try {
    const mode = String(db.pragma('journal_mode', { simple: true }))
    if (mode === 'wal') {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]
      if (result && result.busy !== 0) throw new ToolkitError(`${source} : son WAL n’a pas pu être reporté (une autre connexion lit ou écrit)`)
    }
    db.exec('BEGIN IMMEDIATE')
    await copyFile(source, temporary)
    if (mode === 'wal' && existsSync(`${source}-wal`) && statSync(`${source}-wal`).size > 0) {
      throw new ToolkitError(`${source} : son WAL a grossi pendant la copie`)
    }
    fsyncPath(temporary)
    db.exec('ROLLBACK')
    commitLink(temporary, dest)
  } catch (error) {
    await rm(temporary, { force: true })
    if (error instanceof ToolkitError) throw error
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ToolkitError(`${dest} est apparu pendant la copie de sécurité : il n’a pas été écrasé, rien n’a été remplacé`, { hint: 'Relancez la restauration (une autre copie de sécurité sera nommée).' })
    }
    throw diskFull(error, dirname(dest), `la copie de sécurité (${formatSize(statSync(source).size)})`) ?? new ToolkitError(`échec de la copie de sécurité de ${source} : ${describeError(error)}`, { cause: error })
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
    db.close()
  }
}

/** Links a complete, fsynced file to `dest` (failing with EEXIST when `dest` exists), then drops the temporary name. */
function commitLink(temporary: string, dest: string): void {
  linkSync(temporary, dest)
  rmSync(temporary)
  fsyncPath(dirname(dest))
}

/**
 * Removes the target's -wal, -shm and -journal before the new file takes its name: a stale WAL
 * would be replayed into the new database. Refuses a WAL that still holds frames.
 */
async function removeSidecars(target: string): Promise<void> {
  const wal = `${target}-wal`
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new ToolkitError(`${wal} contient encore des changements absents de ${basename(target)}`, { hint: 'Ouvrez une fois la base avec sqlite3 (qui reporte le WAL), application arrêtée, puis relancez.' })
  }
  for (const suffix of ['-wal', '-shm', '-journal']) await rm(`${target}${suffix}`, { force: true })
  fsyncPath(dirname(target))
}

/**
 * Removes what a killed restore left beside the target (`<db>.tmp-<pid>-…`, `<db>.before-restore.tmp-<pid>-…`,
 * `…-changes`), when the process that made it is gone (the lock's own leftovers are the lock's: backup/restore/target-lock.ts).
 */
export function removeRestoreLeftovers(target: string): string[] {
  const prefixes = [`${basename(target)}${TEMPORARY_MARKER}`, `${basename(target)}${SAFETY_SUFFIX}`]
  return removeDeadLeftovers(dirname(target), (name) => (prefixes.some((prefix) => name.startsWith(prefix)) ? ownerOfTemporaryName(name) : undefined))
}

/** Puts the safety copy back over a restored database that failed its check (or removes it when there was none). */
async function putPreviousBack(target: string, safetyCopy: string | null): Promise<string> {
  try {
    for (const suffix of ['-wal', '-shm', '-journal']) await rm(`${target}${suffix}`, { force: true })
    if (safetyCopy === null) {
      await rm(target, { force: true })
      fsyncPath(dirname(target))
      return `${basename(target)} a été supprimé (il n’y avait pas de base avant)`
    }
    const temporary = temporaryPathFor(target)
    await copyFile(safetyCopy, temporary)
    fsyncPath(temporary)
    commitRename(temporary, target)
    return `la base précédente a été remise en place (depuis ${basename(safetyCopy)})`
  } catch (error) {
    return `la remise en place de la base précédente a ÉCHOUÉ (${describeError(error)}) : copiez ${safetyCopy} sur ${target} à la main`
  }
}

/**
 * Step 4: open through Prisma, integrity_check, foreign_key_check, row counts against the metadata.
 * The last three are taken from `early` (staged-check.ts) when it ran them on this same file, unchanged.
 */
async function checkRestored(path: string, metadata: RestoredBackupMetadata, early?: StagedCheck): Promise<{ value: RestoredCheck; detail: string }> {
  const db = await openSqlite({ path, redactedUrl: `file:${path}`, create: false })
  try {
    await db.prisma.$queryRawUnsafe('SELECT count(*) FROM sqlite_master')
    const found = early !== undefined && sameFile(early, path) ? await early.result() : undefined
    const ahead = found !== undefined && !('skipped' in found) ? found : undefined
    const query: SqliteQuery = (sql) => db.sql.query(sql)
    const integrity = ahead?.integrity ?? (await integrityOf(query))
    if (integrity !== 'ok') throw new ToolkitError(`PRAGMA integrity_check: ${integrity.slice(0, 300)}`)
    const { foreignKeyViolations: violations, rows } = ahead ?? (await referencesOf(query))
    if (violations > 0) throw new ToolkitError(`PRAGMA foreign_key_check: ${violations} row(s) point to missing rows`)
    const counts = await checkRowCounts(metadata.tables, async (name) => rows.get(name) ?? null)
    const total = counts.reduce((n, c) => n + c.expected, 0)
    const when = ahead !== undefined ? ' (contrôlés sur ce même fichier dès sa copie vérifiée)' : ''
    return {
      value: { counts, integrity, foreignKeyViolations: violations },
      detail: `Prisma connecté, integrity_check ok, 0 clé étrangère orpheline, ${counts.length} tables / ${total.toLocaleString('fr-FR')} lignes = métadonnées${when}`,
    }
  } finally {
    await db.close()
  }
}
