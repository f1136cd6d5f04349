/**
 * Restoring a backup into a SQLite file, in the spec's five steps:
 *   1. verify   — every hash of the backup and of its whole chain (incrementals), the archive's
 *                 entries judged safe (extract.ts), engine and schema compared with the target's;
 *   2. safety   — the current database copied to `<db>.before-restore` under a write lock after a
 *                 WAL checkpoint (a consistent copy, not a raw copy of a live file), atomically;
 *   3. replace  — the backup's database written beside the target (`<db>.tmp-<pid>-…`), hash-checked,
 *                 fsynced; stale `-wal`/`-shm`/`-journal` removed; renamed over the target; dir fsynced;
 *   4. check    — opened through Prisma, `PRAGMA integrity_check`, `PRAGMA foreign_key_check`, row
 *                 counts equal to the metadata's; on failure the previous database is put back;
 *   5. report   — the numbers.
 * Consent comes before step 2 (`yes` or `confirm`); without either the restore refuses.
 * `dryRun` runs steps 1 and 4 on a scratch copy in a temporary folder and touches nothing else.
 * A target that another process holds open is refused: replacing a file under a live SQLite
 * connection leaves that process writing into the old, unlinked inode (its writes vanish) or
 * corrupting the new one through a stale -wal.
 *
 * Each step is announced through `step(name)` before it runs (history, crash-test kill points).
 */
import { chmodSync, chownSync, existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { openDatabase } from '../db/open.ts'
import { MIGRATIONS_DIRS, readMigrations } from '../db/migrations.ts'
import { quoteIdentifier } from '../db/connection.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { TEMPORARY_MARKER, commitRename, fsyncPath, temporaryPathFor } from '../fs/atomic.ts'
import type { ProgressListener } from '../progress.ts'
import { processIsAlive, type BackupEntry } from './catalog.ts'
import { ownerOfTemporaryName } from './layout.ts'
import { unsafeEntries } from './extract.ts'
import { GzipPool } from './gzip-blocks.ts'
import { backupChain, materializeDatabase } from './incremental.ts'
import type { BackupMetadata } from './metadata.ts'
import { verifyBackup, type FileCheck } from './verify.ts'

export const RESTORE_STEPS = ['verify', 'confirm', 'safety-copy', 'replace', 'check', 'report'] as const
export type RestoreStepName = (typeof RESTORE_STEPS)[number]

export const SAFETY_SUFFIX = '.before-restore'

export interface RestorePlan {
  id: string
  /** The backups read, the full one first (more than one for an incremental). */
  chain: string[]
  engine: BackupMetadata['engine']
  target: string
  targetExists: boolean
  /** Where the current database is kept (null when there is none). */
  safetyCopy: string | null
  timestamp: string
  tables: { name: string; rows: number }[]
}

export interface RestoreStepResult {
  step: 1 | 2 | 3 | 4 | 5
  name: 'verify' | 'safety-copy' | 'replace' | 'check' | 'report'
  status: 'ok' | 'skipped' | 'failed'
  detail: string
  durationMs: number
}

/**
 * Runs the steps of a restore: announces each one (kill points, confirmation hooks) before it
 * starts, then records its outcome, detail and duration in `steps`, failed ones included.
 */
export function restoreStepRunner(steps: RestoreStepResult[], announce?: (name: RestoreStepName) => void | Promise<void>) {
  return async <T>(step: RestoreStepResult['step'], name: RestoreStepResult['name'], work: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    await announce?.(name)
    const t0 = performance.now()
    try {
      const { value, detail } = await work()
      steps.push({ step, name, status: 'ok', detail, durationMs: Math.round(performance.now() - t0) })
      return value
    } catch (error) {
      steps.push({ step, name, status: 'failed', detail: describeError(error), durationMs: Math.round(performance.now() - t0) })
      throw error
    }
  }
}

export interface RestoreResult extends RestorePlan {
  dryRun: boolean
  restored: boolean
  steps: RestoreStepResult[]
  /** Per table: rows the metadata records and rows found after the restore. */
  counts: { name: string; expected: number; actual: number | null }[]
  integrity: string
  foreignKeyViolations: number
  /** Bytes of the restored database file. */
  size: number
  durationMs: number
  warnings: string[]
}

export interface SqliteRestoreOptions {
  backupDir: string
  id: string
  /** The SQLite file to restore into (need not exist; its directory must). */
  target: string
  dryRun?: boolean
  /** Consent given on the command line (--yes). */
  yes?: boolean
  /** Accept a backup whose schema differs from the target's (--force). */
  force?: boolean
  /** Asks the operator (a TTY); absent without a terminal. */
  confirm?: (plan: RestorePlan) => Promise<boolean>
  /** Called before each step runs: kill points and history hook in here. */
  step?: (name: RestoreStepName) => void | Promise<void>
  /** The toolkit's Prisma schema hash for SQLite, compared with the backup's. */
  prismaSchemaSha256: string | null
  environment?: ToolkitEnvironment
  onProgress?: ProgressListener
  threads?: number
}

/**
 * Restores backup `id` into a SQLite file.
 * @example const result = await restoreSqlite({ backupDir: 'backups', id, target: 'prisma/dev.db', yes: true, prismaSchemaSha256 })
 */
export async function restoreSqlite(options: SqliteRestoreOptions): Promise<RestoreResult> {
  const startedAt = performance.now()
  // A symbolic link (to the file or a folder on its way) is followed: the real file is what gets replaced.
  const target = existsSync(resolve(options.target)) ? realpathSync(resolve(options.target)) : resolve(options.target)
  const announce = async (name: RestoreStepName) => options.step?.(name)
  const steps: RestoreStepResult[] = []
  const timed = restoreStepRunner(steps, options.step)
  const pool = new GzipPool({ threads: options.threads })
  try {
    // Before anything: a target we can write beside, not a directory, not in use.
    if (!existsSync(dirname(target))) {
      throw new ToolkitError(`cannot restore to ${target}: directory ${dirname(target)} does not exist`, { hint: 'Create the directory first, or choose another --to path.' })
    }
    if (existsSync(target) && statSync(target).isDirectory()) throw new ToolkitError(`cannot restore to ${target}: it is a directory`, { hint: 'Give the path of a database file (--to <file>).' })
    const targetExists = existsSync(target)
    if (!options.dryRun) await removeRestoreLeftovers(target)

    // 1. Verification
    const { chain, metadata } = await timed(1, 'verify', async () => {
      const verified = await verifyChain(options.backupDir, options.id, pool, options.onProgress)
      const last = verified.chain.at(-1)!.metadata!
      if (last.engine !== 'sqlite') {
        throw new ToolkitError(`backup ${options.id} is a ${last.engine === 'd1' ? 'D1' : 'PostgreSQL'} backup and the target is a SQLite file`, {
          hint: `Restore it into a ${last.engine === 'd1' ? 'D1' : 'PostgreSQL'} database (--database <url>), or pick a SQLite backup (\`advanced-backup list\`).`,
        })
      }
      if (!options.force) await assertSameSchema(last, target, targetExists, options.prismaSchemaSha256)
      if (targetExists && !options.dryRun) assertNotInUse(target)
      const files = verified.chain.reduce((n, e) => n + e.metadata!.files.length, 0)
      return {
        value: { chain: verified.chain, metadata: last },
        detail: `${files} fichier(s) vérifié(s)${verified.chain.length > 1 ? ` sur ${verified.chain.length} backups (chaîne incrémentale)` : ''}, hash ${last.hash.slice(0, 12)}…`,
      }
    })
    const plan: RestorePlan = {
      id: options.id,
      chain: chain.map((e) => e.id),
      engine: metadata.engine,
      target,
      targetExists,
      safetyCopy: targetExists ? `${target}${SAFETY_SUFFIX}` : null,
      timestamp: metadata.timestamp,
      tables: metadata.tables,
    }
    const base = { ...plan, steps, warnings: metadata.warnings }

    if (options.dryRun) {
      const scratchDir = await mkdtemp(join(tmpdir(), 'ipm-restore-dry-run-'))
      try {
        const scratch = join(scratchDir, basename(target))
        steps.push({ step: 2, name: 'safety-copy', status: 'skipped', detail: 'simulation: rien n’est copié', durationMs: 0 })
        await materializeDatabase(chain, scratch, { pool, onProgress: options.onProgress })
        steps.push({ step: 3, name: 'replace', status: 'skipped', detail: `simulation: reconstruite dans un dossier temporaire, ${basename(target)} intact`, durationMs: 0 })
        const check = await timed(4, 'check', async () => checkRestored(scratch, metadata, options.environment))
        const size = (await stat(scratch)).size
        steps.push({ step: 5, name: 'report', status: 'ok', detail: 'simulation terminée: la restauration réussirait', durationMs: 0 })
        return { ...base, dryRun: true, restored: false, ...check, size, durationMs: Math.round(performance.now() - startedAt) }
      } finally {
        await rm(scratchDir, { recursive: true, force: true })
      }
    }

    await announce('confirm')
    if (!options.yes) {
      if (options.confirm === undefined) {
        throw new ToolkitError(`restore replaces ${target} and needs a confirmation, but there is no terminal to ask on`, { hint: '--yes (after `restore <id> --dry-run` if in doubt)' })
      }
      if (!(await options.confirm(plan))) throw new ToolkitError('restore cancelled: nothing was changed')
    }

    // 2. Safety copy
    const safetyCopy = plan.safetyCopy
    await timed(2, 'safety-copy', async () => {
      if (safetyCopy === null) return { value: undefined, detail: `${basename(target)} n’existe pas: rien à sauvegarder` }
      await consistentCopy(target, safetyCopy)
      return { value: undefined, detail: `${basename(target)} -> ${basename(safetyCopy)}` }
    })

    // 3. Replace
    const staged = temporaryPathFor(target)
    await timed(3, 'replace', async () => {
      try {
        await materializeDatabase(chain, staged, { pool, onProgress: options.onProgress })
        if (targetExists) keepOwnership(target, staged)
        fsyncPath(staged)
        if (targetExists) assertNotInUse(target)
        await removeSidecars(target)
        commitRename(staged, target)
      } catch (error) {
        await rm(staged, { force: true })
        throw diskFull(error, dirname(target), `the restored database (${formatSize(chain[0]!.metadata!.files.find((f) => f.path === 'database.db')?.size ?? 0)})`) ?? error
      }
      return { value: undefined, detail: `${chain.at(-1)!.id} -> ${basename(target)} (${formatSize((await stat(target)).size)})` }
    })

    // 4. Connection test
    let check: Pick<RestoreResult, 'counts' | 'integrity' | 'foreignKeyViolations'>
    try {
      check = await timed(4, 'check', async () => checkRestored(target, metadata, options.environment))
    } catch (error) {
      const putBack = await putPreviousBack(target, safetyCopy)
      throw new ToolkitError(`the restored database failed its check (${describeError(error)}); ${putBack}`, {
        hint: `Run \`advanced-backup verify ${options.id}\` and restore another backup.`,
        cause: error,
      })
    }
    const size = (await stat(target)).size
    await announce('report')
    const total = check.counts.reduce((n, c) => n + (c.actual ?? 0), 0)
    steps.push({ step: 5, name: 'report', status: 'ok', detail: `base restaurée: ${check.counts.length} tables, ${total.toLocaleString('fr-FR')} lignes`, durationMs: 0 })
    return { ...base, dryRun: false, restored: true, ...check, size, durationMs: Math.round(performance.now() - startedAt) }
  } finally {
    await pool.close()
  }
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
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (['ENOSPC', 'EDQUOT', 'EFBIG', 'SQLITE_FULL'].includes(String((e as NodeJS.ErrnoException).code))) {
      return new ToolkitError(`no space left in ${dir} for ${what}: nothing was replaced`, { hint: 'Free space beside the database (a restore needs room for the safety copy and the new file), then restore again.', cause: error })
    }
  }
  return undefined
}

function formatSize(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`
}

/**
 * Verifies a backup and every backup it depends on; throws a ToolkitError naming each fault and
 * each unsafe archive entry.
 */
export async function verifyChain(backupDir: string, id: string, pool?: GzipPool, onProgress?: ProgressListener): Promise<{ chain: BackupEntry[] }> {
  const chain = await backupChain(backupDir, id)
  for (const entry of [...chain].reverse()) {
    const report = await verifyBackup(backupDir, entry.id, { pool, onProgress, chain: false })
    if (report.ok) continue
    const unsafe = unsafeEntries(report.checks, entry.id)
    const faults = report.checks.filter((c: FileCheck) => c.status !== 'ok').map((c) => `${c.path}: ${c.status}${c.detail ? ` (${c.detail})` : ''}`)
    const whose = entry.id === id ? `backup ${id}` : `backup ${entry.id}, which ${id} needs,`
    if (unsafe.length > 0) {
      throw new ToolkitError(`${whose} is an unsafe archive; nothing was written: ${unsafe.join('; ')}`, { hint: 'Do not restore it; restore another backup (`advanced-backup list`).' })
    }
    throw new ToolkitError(`${whose} fails verification; nothing was written: ${faults.join('; ')}`, { hint: `See \`advanced-backup verify ${entry.id}\`; restore another backup.` })
  }
  return { chain }
}

/** Refuses (unless --force) a backup whose Prisma schema or newest migration is not the target's. */
async function assertSameSchema(metadata: BackupMetadata, target: string, targetExists: boolean, toolkitSchema: string | null): Promise<void> {
  const differences: string[] = []
  const backupSchema = metadata.schema.prismaSchemaSha256
  if (backupSchema !== null && toolkitSchema !== null && backupSchema !== toolkitSchema) {
    differences.push(`Prisma schema ${backupSchema.slice(0, 12)}… in the backup, ${toolkitSchema.slice(0, 12)}… expected by this toolkit`)
  }
  // The target's own history when it has one; otherwise (new or empty file) this toolkit's newest migration.
  let expected = targetExists ? newestMigrationOf(target) : null
  const fromTarget = expected !== null
  if (!fromTarget && metadata.schema.newestMigration !== null) {
    const dir = MIGRATIONS_DIRS.sqlite
    expected = existsSync(dir) ? (readMigrations(dir).at(-1)?.name ?? null) : null
  }
  if ((metadata.schema.newestMigration ?? null) !== expected) {
    differences.push(`newest migration ${metadata.schema.newestMigration ?? '(none)'} in the backup, ${expected ?? '(none)'} ${fromTarget ? `in ${basename(target)}` : 'in this toolkit'}`)
  }
  if (differences.length > 0) {
    throw new ToolkitError(`backup ${metadata.id} was made with another schema than the target's: ${differences.join('; ')}`, {
      hint: 'Restore a backup of the same schema version, or --force and then migrate (`npx prisma migrate deploy`).',
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
    throw new ToolkitError(`cannot read the target ${path}: ${describeError(error)}`, { hint: 'Is it a SQLite database? Use --to another path, or --force.', cause: error })
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
    throw new ToolkitError(`${target} is open by another process (${users.map((u) => `pid ${u.pid}${u.command ? ` ${u.command}` : ''}`).join(', ')}): restoring now would lose its writes`, {
      hint: 'Stop the application (and any sqlite3 shell) using the database, then run the restore again; or restore elsewhere with --to <path>.',
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
      throw new ToolkitError(`${target} is being written by another process (its write lock is taken): restoring now would lose its writes`, {
        hint: 'Stop the application using the database, then run the restore again; or restore elsewhere with --to <path>.',
      })
    }
    throw new ToolkitError(`cannot open the target ${target}: ${describeError(error)}`, { hint: 'Is it a SQLite database? Restore elsewhere with --to <path>.', cause: error })
  } finally {
    db?.close()
  }
}

/**
 * A consistent copy of a SQLite file nobody else is using: WAL checkpointed into the file, the
 * write lock held while the bytes are copied, then fsync and rename into place.
 */
async function consistentCopy(source: string, dest: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true, timeout: 0 })
  const temporary = temporaryPathFor(dest)
  try {
    const mode = String(db.pragma('journal_mode', { simple: true }))
    if (mode === 'wal') {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]
      if (result && result.busy !== 0) throw new ToolkitError(`${source}: its WAL could not be checkpointed (another connection is reading or writing)`)
    }
    db.exec('BEGIN IMMEDIATE')
    await copyFile(source, temporary)
    if (mode === 'wal' && existsSync(`${source}-wal`) && statSync(`${source}-wal`).size > 0) {
      throw new ToolkitError(`${source}: its WAL grew while it was being copied`)
    }
    fsyncPath(temporary)
    db.exec('ROLLBACK')
    commitRename(temporary, dest)
  } catch (error) {
    await rm(temporary, { force: true })
    if (error instanceof ToolkitError) throw error
    throw diskFull(error, dirname(dest), `the safety copy (${formatSize(statSync(source).size)})`) ?? new ToolkitError(`safety copy of ${source} failed: ${describeError(error)}`, { cause: error })
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
    db.close()
  }
}

/**
 * Removes the target's -wal, -shm and -journal before the new file takes its name: a stale WAL
 * would be replayed into the new database. Refuses a WAL that still holds frames.
 */
async function removeSidecars(target: string): Promise<void> {
  const wal = `${target}-wal`
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new ToolkitError(`${wal} still holds changes that are not in ${basename(target)}`, { hint: 'Open the database once with sqlite3 (it checkpoints) with the app stopped, then restore again.' })
  }
  for (const suffix of ['-wal', '-shm', '-journal']) await rm(`${target}${suffix}`, { force: true })
  fsyncPath(dirname(target))
}

/**
 * Removes what a killed restore left beside the target (`<db>.tmp-<pid>-…`, `<db>.before-restore.tmp-<pid>-…`,
 * `…-changes`), when the process that made it is gone.
 */
export async function removeRestoreLeftovers(target: string): Promise<string[]> {
  const removed: string[] = []
  const prefixes = [`${basename(target)}${TEMPORARY_MARKER}`, `${basename(target)}${SAFETY_SUFFIX}${TEMPORARY_MARKER}`]
  for (const name of readdirSync(dirname(target))) {
    if (!prefixes.some((prefix) => name.startsWith(prefix))) continue
    const pid = ownerOfTemporaryName(name)
    if (pid === undefined || pid === process.pid || processIsAlive(pid)) continue
    await rm(join(dirname(target), name), { force: true })
    removed.push(name)
  }
  return removed
}

/** Puts the safety copy back over a restored database that failed its check (or removes it when there was none). */
async function putPreviousBack(target: string, safetyCopy: string | null): Promise<string> {
  try {
    for (const suffix of ['-wal', '-shm', '-journal']) await rm(`${target}${suffix}`, { force: true })
    if (safetyCopy === null) {
      await rm(target, { force: true })
      fsyncPath(dirname(target))
      return `${basename(target)} was removed (there was no database before)`
    }
    const temporary = temporaryPathFor(target)
    await copyFile(safetyCopy, temporary)
    fsyncPath(temporary)
    commitRename(temporary, target)
    return `the previous database was put back (from ${basename(safetyCopy)})`
  } catch (error) {
    return `putting the previous database back FAILED (${describeError(error)}): copy ${safetyCopy} over ${target} by hand`
  }
}

/** Step 4: open through Prisma, integrity_check, foreign_key_check, row counts against the metadata. */
async function checkRestored(path: string, metadata: BackupMetadata, environment?: ToolkitEnvironment): Promise<{ value: Pick<RestoreResult, 'counts' | 'integrity' | 'foreignKeyViolations'>; detail: string }> {
  const db = await openDatabase(`file:${path}`, { environment })
  try {
    await db.prisma.$queryRawUnsafe('SELECT count(*) FROM sqlite_master')
    const integrity = (await db.sql.query<{ integrity_check: string }>('PRAGMA integrity_check')).map((r) => r.integrity_check).join('; ')
    if (integrity !== 'ok') throw new ToolkitError(`PRAGMA integrity_check: ${integrity.slice(0, 300)}`)
    const violations = (await db.sql.query('PRAGMA foreign_key_check')).length
    if (violations > 0) throw new ToolkitError(`PRAGMA foreign_key_check: ${violations} row(s) point to missing rows`)
    const present = new Set((await db.sql.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`)).map((r) => r.name))
    const counts: RestoreResult['counts'] = []
    for (const table of metadata.tables) {
      const actual = present.has(table.name) ? Number((await db.sql.query<{ n: number | bigint }>(`SELECT count(*) AS n FROM ${quoteIdentifier(table.name)}`))[0]!.n) : null
      counts.push({ name: table.name, expected: table.rows, actual })
    }
    const wrong = counts.filter((c) => c.actual !== c.expected)
    if (wrong.length > 0) throw new ToolkitError(`row counts differ from the metadata: ${wrong.map((c) => `${c.name} ${c.actual ?? 'missing'} instead of ${c.expected}`).join(', ')}`)
    const total = counts.reduce((n, c) => n + c.expected, 0)
    return {
      value: { counts, integrity, foreignKeyViolations: violations },
      detail: `Prisma connecté, integrity_check ok, 0 clé étrangère orpheline, ${counts.length} tables / ${total.toLocaleString('fr-FR')} lignes = métadonnées`,
    }
  } finally {
    await db.close()
  }
}
