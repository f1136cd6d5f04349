/**
 * Restoring a backup, whatever the target's engine, in the spec's five steps:
 *   1. verify   — every hash of the backup and of its whole chain (incrementals), the archive's
 *                 entries judged safe, the backup's engine and schema compared with the target's;
 *                 in the same read, the files the restore needs (the engine's artefact, the change
 *                 sets, or data.json across engines) are copied into the scratch folder (an archive
 *                 create verified whole is inflated no further: its SHA-256 proves the rest);
 *   2. safety   — the current database kept (the engine says how: a consistent file copy, or a
 *                 full backup of a server into the backup folder);
 *   3. replace  — the backup's database materialized from those verified copies (moved, not read
 *                 again from the backup) and made the target's (engine part);
 *   4. check    — the target checked (row counts per table against the metadata, and what the
 *                 engine can check more); on failure the previous database is put back (the safety
 *                 copy, or the safety export loaded again; a target that was empty is emptied again);
 *   5. report   — the numbers.
 * A backup of another engine is rebuilt from its logical export in step 1 (logical.ts) as the
 * target engine's artefact; steps 2–5 are the same, step 4 also comparing content checksums.
 * Consent comes before step 2 (`yes` or `confirm`); without either the restore refuses.
 * `dryRun` rebuilds the database in a scratch folder, checks it when the engine can, and touches
 * nothing else; another engine's backup is also checked where it was converted (row counts and
 * content checksums), so a dry run into a server target, which is never loaded, still checks it. Each step is announced through `step(name)` before it runs (history, kill points).
 */
import { mkdir, rm } from 'node:fs/promises'
import { moveFile } from '../../fs/atomic.ts'
import { privateScratchDir } from '../../fs/leftovers.ts'
import { join, resolve } from 'node:path'
import { redactUrl } from '../../db/url.ts'
import { shellWord } from '../../format.ts'
import type { ToolkitEnvironment } from '../../environment.ts'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from '../../errors.ts'
import { engineForUrl, engineLabel, engineNamed } from '../../engines/index.ts'
import type { Engine, RestoreContext, RestoreTarget } from '../../engines/engine.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import type { BackupMetadata } from '../metadata.ts'
import type { BackupEntry } from '../catalog/catalog.ts'
import { JSON_EXPORT_FILE } from '../layout.ts'
import type { ProgressListener } from '../../progress.ts'
import { createBackup } from '../create/create.ts'
import { GzipPool } from '../archive/gzip-blocks.ts'
import { CHANGES_FILE, materializeDatabase } from '../create/incremental.ts'
import { restoreStepRunner, type RestorePlan, type RestoreResult, type RestoreStepName, type RestoreStepResult } from './steps.ts'
import { lockRestoreTarget, type TargetLock } from './target-lock.ts'
import { verifyChain } from './verify-chain.ts'
import { assertLogicalExport, buildCrossEngineArtefact, checkRestoredContents, rehearsedCheck, type CrossEngineArtefact } from './logical.ts'

export interface RestoreBackupOptions {
  backupDir: string
  /** Where a server target's safety export goes (default `backupDir`): a remote restore or a restore to a point in time reads from a scratch folder. */
  safetyDir?: string
  id: string
  /** A SQLite path (relative to `cwd`), or a database URL (file:, postgresql://, d1://). */
  target: string
  dryRun?: boolean
  /** Consent given on the command line (--yes). */
  yes?: boolean
  /** Accept a backup whose schema differs from the target's, and a non-empty server target (--force). */
  force?: boolean
  /** Asks the operator (a TTY); absent without a terminal. */
  confirm?: (plan: RestorePlan) => Promise<boolean>
  /** Called before each step runs: kill points and history hook in here. */
  step?: (name: RestoreStepName) => void | Promise<void>
  /** The toolkit's Prisma schema hashes, per dialect. */
  prismaSchemaSha256: (dialect: 'sqlite' | 'postgres') => string | null
  tool: { name: string; version: string }
  environment: ToolkitEnvironment
  /** Base of a relative target. Default: the environment's working directory. */
  cwd?: string
  onProgress?: ProgressListener
  threads?: number
}

/**
 * The URL of a restore target given as a SQLite path (relative to `cwd`) or as a URL.
 * @example restoreTargetUrl('restored.db', '/srv') // 'file:/srv/restored.db'
 */
export function restoreTargetUrl(target: string, cwd: string): string {
  // A URL has a scheme; `C:\\…` (a Windows path) does not count as one.
  const isUrl = /^[a-z][a-z0-9+.-]*:/i.test(target) && !/^[a-z]:[\\/]/i.test(target)
  return isUrl ? target : `file:${resolve(cwd, target)}`
}

/**
 * Step 3's way to a file of a backup: the copy its verification wrote (verify-chain.ts), moved — a
 * hard link on the same filesystem — never read from the backup again.
 */
function takeVerified(copies: ReadonlyMap<string, string>): (entry: BackupEntry, path: string, dest: string) => Promise<void> {
  return async (entry, path, dest) => {
    const copy = copies.get(`${entry.id}/${path}`)
    if (copy === undefined) throw new ToolkitError(`le backup ${entry.id} n’a pas de ${path}`)
    await moveFile(copy, dest)
  }
}

/** A cross-engine restore's content checksums, read from the restored target. */
async function contentsOf(engine: Engine, location: DatabaseLocation, url: string, environment: ToolkitEnvironment, metadata: BackupMetadata): Promise<string> {
  const db = await engine.open(location, { redactedUrl: redactUrl(url), create: false, environment })
  try {
    return await checkRestoredContents(db, metadata)
  } finally {
    await db.close()
  }
}

/**
 * Restores backup `id` into `target`, whatever its engine.
 * @example await restoreBackup({ backupDir: 'backups', id, target: 'postgresql://…/app', yes: true, force: false, prismaSchemaSha256, tool, environment })
 */
export async function restoreBackup(options: RestoreBackupOptions): Promise<RestoreResult> {
  const startedAt = performance.now()
  const cwd = options.cwd ?? options.environment.cwd
  const url = restoreTargetUrl(options.target, cwd)
  const engine = engineForUrl(url)
  const location = engine.parseUrl(url, { cwd, d1PersistDir: options.environment.d1PersistDir })
  const steps: RestoreStepResult[] = []
  const timed = restoreStepRunner(steps, options.step)
  const pool = new GzipPool({ threads: options.threads })
  const scratchDir = await privateScratchDir('ipm-restore-')
  // Where verified copies go when the target stages none (servers, dry runs, change sets, data.json, a safety export loaded back).
  const verifiedDir = join(scratchDir, 'verified')
  try {
    await mkdir(verifiedDir)
    // Held from before the target is opened to the end: a second restore of the same file or local D1 refuses
    // (a dry run changes nothing and needs none). PostgreSQL takes its own, an advisory lock.
    const lockFile = options.dryRun ? null : engine.restoreLockFile(location)
    const lock: TargetLock | undefined = lockFile === null ? undefined : lockRestoreTarget(lockFile)
    let target: RestoreTarget
    try {
      target = await engine.openRestoreTarget(location, { environment: options.environment, dryRun: options.dryRun ?? false, redactedUrl: redactUrl(url) })
    } catch (error) {
      lock?.release()
      throw error
    }
    // Step 1's copies (the database's may be beside a file target, outside the scratch folder): removed unless step 3 took them.
    const staged: string[] = []
    try {
      let context!: RestoreContext
      // Another engine's backup: rebuilt from its logical export as the target engine's artefact (logical.ts).
      let crossEngine: CrossEngineArtefact | undefined
      // 1. Verification
      const { chain, metadata, copies } = await timed(1, 'verify', async () => {
        // The copies step 3 (or the cross-engine conversion) needs, another engine's backup being read from its
        // data.json; the database's where the target wants it staged (beside a file target), the rest in the scratch folder.
        let stagedArtefact: string | null = null
        const keep = (entry: BackupEntry, root: boolean) => {
          const m = entry.metadata!
          const path = m.engine !== engine.name ? JSON_EXPORT_FILE : root ? engineNamed(m.engine).restoreArtefact : CHANGES_FILE
          const beside = m.engine === engine.name && root ? target.stagingPath() : null
          const dest = beside ?? join(verifiedDir, `${entry.id}.${path}`)
          // A full backup restored as it is: step 3 renames this very file into place.
          if (beside !== null && entry.id === options.id) stagedArtefact = beside
          staged.push(dest)
          return new Map([[path, dest]])
        }
        const onCopied = (dest: string) => {
          const early = dest === stagedArtefact ? target.checkStaged?.(dest) : undefined
          if (early === undefined) return
          // Its threads take cores that step 1's inflating would otherwise fill: the check is the longer job, and
          // whatever it has left when step 1 ends is time the restore spends waiting on one core.
          pool.limit(pool.size - early.threads)
          void early.done.then(() => pool.limit(pool.size))
        }
        const verified = await verifyChain(options.backupDir, options.id, { pool, onProgress: options.onProgress, keep, onCopied })
        const last = verified.chain.at(-1)!.metadata!
        const sameEngine = last.engine === engine.name
        if (!sameEngine) assertLogicalExport(last, engine)
        context = {
          metadata: last,
          force: options.force ?? false,
          // The backup's schema is compared with this toolkit's schema of the backup's own dialect.
          prismaSchemaSha256: options.prismaSchemaSha256(engineNamed(last.engine).dialect),
          scratchDir,
          midReplace: () => void options.step?.('mid-replace'),
          exportDatabase: async (db) => {
            const safetyDir = options.safetyDir ?? options.backupDir
            const safety = await createBackup({ db, backupDir: safetyDir, formats: ['sql', 'json', 'csv'], compress: true, verify: true, tool: options.tool, prismaSchemaSha256: options.prismaSchemaSha256(engine.dialect) })
            const id = safety.metadata.id
            return {
              id,
              path: safety.path,
              // Verified again when loaded back: it is read after a restore that has just failed.
              materialize: async (dest) => {
                const keep = () => new Map([[engine.restoreArtefact, join(verifiedDir, `${id}.${engine.restoreArtefact}`)]])
                const verified = await verifyChain(safetyDir, id, { pool, keep })
                await materializeDatabase(verified.chain, dest, { artefact: engine.restoreArtefact, take: takeVerified(verified.copies) })
              },
              restoreCommand: `npx tsx scripts/advanced-backup.ts --dir ${shellWord(resolve(safetyDir))} restore ${id} --to ${shellWord(redactUrl(url))} --force --yes`,
            }
          },
        }
        await target.assertReplaceable(context)
        if (!sameEngine) {
          crossEngine = await buildCrossEngineArtefact({ metadata: last, dataJson: verified.copies.get(`${last.id}/${JSON_EXPORT_FILE}`)!, engine, target: location, scratchDir, environment: options.environment, checkContents: options.dryRun ?? false, onProgress: options.onProgress })
          // The new database records the target's own migrations, not the backup's `_prisma_migrations` rows.
          const migrations = crossEngine.migrations
          context.metadata = { ...last, tables: last.tables.map((t) => (t.name === '_prisma_migrations' ? { ...t, rows: migrations } : t)) }
        }
        const files = verified.chain.reduce((n, e) => n + e.metadata!.files.length, 0)
        const converted = crossEngine === undefined ? '' : `, converti de ${engineLabel(last.engine)} vers ${engine.label} depuis data.json (${crossEngine.rows.toLocaleString('fr-FR')} lignes, ${crossEngine.migrations} migration(s) ${engine.label})`
        return {
          value: { chain: verified.chain, metadata: last, copies: verified.copies },
          detail: `${files} fichier(s) vérifié(s)${verified.unread > 0 ? ` (dont ${verified.unread} par le SHA-256 de leur archive, vérifiée en entier à sa création)` : ''}${verified.chain.length > 1 ? ` sur ${verified.chain.length} backups (chaîne incrémentale)` : ''}, hash ${last.hash.slice(0, 12)}…${converted}`,
        }
      })
      const restoreContext = context
      const built = crossEngine
      const materialize = (dest: string) =>
        built === undefined ? materializeDatabase(chain, dest, { artefact: engineNamed(metadata.engine).restoreArtefact, onProgress: options.onProgress, take: takeVerified(copies) }) : moveFile(built.path, dest)
      const plan: RestorePlan = {
        id: options.id,
        chain: chain.map((e) => e.id),
        engine: metadata.engine,
        target: target.display,
        targetExists: target.exists,
        safetyCopy: target.plannedSafetyCopy,
        timestamp: metadata.timestamp,
        tables: metadata.tables,
      }
      const base = { ...plan, steps, warnings: [...metadata.warnings, ...(built?.warnings ?? [])] }

      if (options.dryRun) {
        const scratch = join(scratchDir, target.scratchName)
        steps.push({ step: 2, name: 'safety-copy', status: 'skipped', detail: target.rehearsal.safetyDetail, durationMs: 0 })
        await materialize(scratch)
        steps.push({ step: 3, name: 'replace', status: 'skipped', detail: target.rehearsal.replaceDetail, durationMs: 0 })
        if (!target.rehearsal.checks && built !== undefined) {
          // The target is not loaded in a dry run: the converted database was checked in its scratch place (logical.ts).
          const check = await timed(4, 'check', async () => {
            const checked = rehearsedCheck(built, restoreContext.metadata.tables)
            return { value: checked.counts, detail: checked.detail }
          })
          steps.push({ step: 5, name: 'report', status: 'ok', detail: 'simulation terminée: la restauration réussirait', durationMs: 0 })
          return { ...base, dryRun: true, restored: false, counts: check, integrity: 'non vérifiée (simulation)', foreignKeyViolations: 0, size: 0, durationMs: Math.round(performance.now() - startedAt) }
        }
        if (!target.rehearsal.checks) {
          return { ...base, dryRun: true, restored: false, counts: metadata.tables.map((t) => ({ name: t.name, expected: t.rows, actual: null })), integrity: 'non vérifiée (simulation)', foreignKeyViolations: 0, size: 0, durationMs: Math.round(performance.now() - startedAt) }
        }
        const check = await timed(4, 'check', async () => {
          const checked = await target.check(scratch, restoreContext)
          return built?.contents === undefined ? checked : { ...checked, detail: `${checked.detail}, ${built.contents}` }
        })
        const size = await target.size(scratch, restoreContext)
        steps.push({ step: 5, name: 'report', status: 'ok', detail: 'simulation terminée: la restauration réussirait', durationMs: 0 })
        return { ...base, dryRun: true, restored: false, ...check, size, durationMs: Math.round(performance.now() - startedAt) }
      }

      await options.step?.('confirm')
      if (!options.yes) {
        if (options.confirm === undefined) {
          throw new ToolkitError(`restore remplace ${target.display} et demande une confirmation, mais aucun terminal ne permet de la demander`, { hint: '--yes (après `restore <id> --dry-run` en cas de doute)', exitCode: USAGE_EXIT_CODE })
        }
        if (!(await options.confirm(plan))) throw new ToolkitError('restauration annulée : rien n’a été modifié')
      }

      // 2. Safety copy
      const safetyCopy = await timed(2, 'safety-copy', async () => {
        const kept = await target.safetyCopy(restoreContext)
        return { value: kept.path, detail: kept.detail }
      })
      if (safetyCopy !== null) plan.safetyCopy = safetyCopy
      base.safetyCopy = plan.safetyCopy

      // 3. Replace
      await timed(3, 'replace', async () => ({ value: undefined, detail: await target.replace(materialize, restoreContext) }))

      // 4. Check
      let check: Awaited<ReturnType<typeof target.check>>['value']
      try {
        check = await timed(4, 'check', async () => {
          const checked = await target.check(null, restoreContext)
          if (built === undefined) return checked
          return { ...checked, detail: `${checked.detail}, ${await contentsOf(engine, location, url, options.environment, metadata)}` }
        })
      } catch (error) {
        const putBack = await target.undo(safetyCopy, restoreContext)
        throw new ToolkitError(`la base restaurée a échoué au contrôle (${describeError(error)}) ; ${putBack}`, {
          hint: `Lancez \`advanced-backup verify ${options.id}\` et restaurez un autre backup.`,
          cause: error,
        })
      }
      const size = await target.size(null, restoreContext)
      await options.step?.('report')
      const total = check.counts.reduce((n, c) => n + (c.actual ?? 0), 0)
      steps.push({ step: 5, name: 'report', status: 'ok', detail: `base restaurée: ${check.counts.length} tables, ${total.toLocaleString('fr-FR')} lignes`, durationMs: 0 })
      return { ...base, dryRun: false, restored: true, ...check, size, durationMs: Math.round(performance.now() - startedAt) }
    } finally {
      for (const path of staged) await rm(path, { force: true })
      await target.close()
      lock?.release()
    }
  } finally {
    await rm(scratchDir, { recursive: true, force: true })
    await pool.close()
  }
}
