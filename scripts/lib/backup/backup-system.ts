/**
 * The backup system of the spec: one object configured once, one method per verb. Methods return
 * result objects (the CLI renders them as text or `--json`); they never print or exit.
 *
 * @example
 * const backup = new AdvancedBackupSystem({
 *   databaseUrl: 'file:./prisma/dev.db',
 *   backupDir: './backups',
 *   maxBackups: 10,
 *   compressionEnabled: true,
 *   verifyIntegrity: true,
 *   exportFormats: ['sql', 'json', 'csv'],
 * })
 * const { metadata, rotation } = await backup.create()
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDatabase } from '../db/open.ts'
import { engineNamed } from '../engines/index.ts'
import { resolveEnvironment, type ToolkitEnvironment } from '../environment.ts'
import { sendAlert } from '../alerts.ts'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { listBackupEntries, type BackupEntry } from './catalog/catalog.ts'
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_SHRINK_PERCENT, alertText, evaluateBackups, withAlertOutcome, type CheckResult, type CheckThresholds } from './catalog/check.ts'
import { createBackup } from './create/create.ts'
import { NoParentError, createIncrementalBackup } from './create/incremental.ts'
import type { RestorePlan, RestoreResult, RestoreStepName } from './restore/steps.ts'
import { restoreBackup } from './restore/flow.ts'
import type { DatabaseHandle } from '../db/connection.ts'
import { EXPORT_FORMATS, type ExportFormat } from './layout.ts'
import { sha256Hex } from './manifest.ts'
import { mapFilesystemError } from '../fs/errors.ts'
import { appendHistory, readHistory, type HistoryOperation } from './catalog/history.ts'
import { killSwitch, type StepListener } from './kill-points.ts'
import type { BackupMetadata } from './metadata.ts'
import { planRotation, removeBackup } from './catalog/rotation.ts'
import { backupStats, type BackupStats } from './catalog/stats.ts'
import { verifyBackup, type VerifyReport } from './catalog/verify.ts'

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

export interface AdvancedBackupOptions {
  /** The database to back up; default DATABASE_URL (or file:./prisma/dev.db). */
  databaseUrl?: string
  /** Default ./backups (relative to `cwd`). */
  backupDir?: string
  /** Rotation: how many complete backups to keep. Default 10. */
  maxBackups?: number
  /** Pack each backup as backup-<ts>.tar.gz. Default true. */
  compressionEnabled?: boolean
  /** Read back and check every hash before publishing; only then is `verified` true. Default true. */
  verifyIntegrity?: boolean
  /** Default ['sql', 'json', 'csv']. */
  exportFormats?: ExportFormat[]
  cwd?: string
  environment?: ToolkitEnvironment
  now?: () => Date
  onProgress?: ProgressListener
  /** Compression threads; default one per core. */
  threads?: number
  /** Told what went wrong beside a finished operation (its history line could not be written); the CLI prints it on stderr. */
  onWarning?: (message: string) => void
}

export interface BackupSummary {
  id: string
  path: string
  form: 'directory' | 'archive'
  metadata?: BackupMetadata
  /** Why the backup cannot be described (unreadable or edited metadata). */
  problem?: string
}

export interface CreateResult {
  metadata: BackupMetadata
  path: string
  /** Leftovers of killed runs removed first. */
  cleaned: string[]
  rotation: PruneResult
}

export interface RestoreCommandOptions {
  /** Restore into this SQLite path or database URL instead of the configured database. */
  to?: string
  dryRun?: boolean
  yes?: boolean
  force?: boolean
  confirm?: (plan: RestorePlan) => Promise<boolean>
  step?: (name: RestoreStepName) => void | Promise<void>
}

export interface ListResult {
  backupDir: string
  backups: BackupSummary[]
}

export interface StatsResult extends BackupStats {
  backupDir: string
}

export interface PruneResult {
  dryRun: boolean
  maxBackups: number
  kept: string[]
  removed: string[]
  keptBecauseVerified?: string
  /** Kept beyond maxBackups because a kept incremental backup builds on them. */
  keptForChain?: string[]
}

/** What a finished operation tells its history line; `failure` for results that report a fault without throwing. */
interface Outcome {
  id?: string
  bytes?: number
  failure?: string
}

export class AdvancedBackupSystem {
  readonly backupDir: string
  readonly maxBackups: number
  readonly compressionEnabled: boolean
  readonly verifyIntegrity: boolean
  readonly exportFormats: ExportFormat[]
  readonly #databaseUrl: string
  readonly #options: AdvancedBackupOptions
  readonly #now: () => Date
  /** Steps of the operations (kill points for crash tests, from IPM_BACKUP_KILL_AT). */
  readonly #onStep: StepListener

  constructor(options: AdvancedBackupOptions = {}) {
    const environment = options.environment ?? resolveEnvironment()
    this.#options = { ...options, environment }
    this.#databaseUrl = options.databaseUrl ?? environment.databaseUrl
    // A folder the user names resolves against where they stand; the default lives in the project.
    this.backupDir = options.backupDir === undefined ? resolve(options.cwd ?? environment.projectRoot, 'backups') : resolve(options.cwd ?? environment.cwd, options.backupDir)
    this.maxBackups = options.maxBackups ?? 10
    this.compressionEnabled = options.compressionEnabled ?? true
    this.verifyIntegrity = options.verifyIntegrity ?? true
    this.exportFormats = options.exportFormats ?? [...EXPORT_FORMATS]
    this.#now = options.now ?? (() => new Date())
    this.#onStep = killSwitch(environment.backupKillAt) ?? (() => {})
    const unknown = this.exportFormats.filter((format) => !EXPORT_FORMATS.includes(format))
    if (unknown.length > 0) throw new ToolkitError(`unknown export format ${unknown.join(', ')}`, { hint: `Use ${EXPORT_FORMATS.join(', ')}.`, exitCode: 2 })
    if (!Number.isSafeInteger(this.maxBackups) || this.maxBackups < 1) {
      throw new ToolkitError(`maxBackups must be a whole number ≥ 1, got ${this.maxBackups}`, { hint: 'Use --keep 1 or more.', exitCode: 2 })
    }
  }

  /** Backs the database up, then rotates (keeps `maxBackups`, never the newest verified one). */
  create(options: { incremental?: boolean } = {}): Promise<CreateResult> {
    return this.#recorded('create', undefined, () => this.#create(options), (result) => ({ id: result.metadata.id, bytes: result.metadata.size }))
  }

  async #create(options: { incremental?: boolean } = {}): Promise<CreateResult> {
    const db = await openDatabase(this.#databaseUrl, { cwd: this.#options.cwd, environment: this.#options.environment })
    let created
    try {
      // --incremental: only what changed since the newest backup of this database (a full one when there is none).
      created = (options.incremental ? await this.#createIncremental(db) : undefined) ?? await createBackup({
        db,
        backupDir: this.backupDir,
        formats: this.exportFormats,
        compress: this.compressionEnabled,
        verify: this.verifyIntegrity,
        tool: toolIdentity(),
        prismaSchemaSha256: prismaSchemaHash(engineNamed(db.engine).dialect),
        now: this.#now,
        onProgress: this.#options.onProgress,
        threads: this.#options.threads,
        onStep: this.#onStep,
      })
    } finally {
      await db.close()
    }
    const rotation = await this.#prune({})
    this.#onStep('create:before-history')
    return { ...created, rotation }
  }

  /** The complete backups, newest first; partial ones never appear. */
  async list(): Promise<ListResult> {
    const entries = await listBackupEntries(this.backupDir)
    return { backupDir: this.backupDir, backups: entries.map(summary) }
  }

  /** Recomputes every hash of one backup; `ok` is false on any fault. */
  verify(id: string): Promise<VerifyReport> {
    return this.#recorded(
      'verify',
      id,
      () => verifyBackup(this.backupDir, id, { onProgress: this.#options.onProgress }),
      (report) => ({
        bytes: report.metadata?.size ?? 0,
        ...(report.ok ? {} : { failure: `verification failed: ${report.checks.filter((c) => c.status !== 'ok').map((c) => `${c.path} ${c.status}`).join(', ')}` }),
      }),
    )
  }

  async stats(): Promise<StatsResult> {
    return { backupDir: this.backupDir, ...backupStats(await listBackupEntries(this.backupDir), this.#now()) }
  }

  /**
   * Keeps the `maxBackups` newest complete backups (plus the newest verified one); `dryRun`
   * returns the plan without deleting anything.
   */
  prune(options: { dryRun?: boolean; maxBackups?: number } = {}): Promise<PruneResult> {
    // A dry run changes nothing: it is not an operation of the history.
    if (options.dryRun) return this.#prune(options)
    return this.#recorded('prune', undefined, () => this.#prune(options))
  }

  async #prune(options: { dryRun?: boolean; maxBackups?: number }): Promise<PruneResult> {
    const maxBackups = options.maxBackups ?? this.maxBackups
    const plan = planRotation(await listBackupEntries(this.backupDir), maxBackups)
    if (!options.dryRun) {
      for (const entry of plan.remove) {
        this.#onStep('create:before-rotation-delete')
        await removeBackup(this.backupDir, entry)
      }
    }
    return {
      dryRun: options.dryRun ?? false,
      maxBackups,
      kept: plan.keep.map((entry) => entry.id),
      removed: plan.remove.map((entry) => entry.id),
      ...(plan.keptBecauseVerified ? { keptBecauseVerified: plan.keptBecauseVerified } : {}),
      ...(plan.keptForChain ? { keptForChain: plan.keptForChain } : {}),
    }
  }

  /**
   * Are the backups still working? Problems: no verified backup newer than `maxAgeMs`, a failed last
   * run (history.jsonl), a size drop beyond `maxShrinkPercent`. With problems and ALERT_WEBHOOK_URL
   * set, POSTs one alert listing them; a webhook failure is reported in `alert`, never instead of them.
   * @example const result = await backup.check({ maxAgeMs: 26 * 3_600_000 }); if (!result.ok) …
   */
  async check(thresholds: Partial<CheckThresholds> = {}): Promise<CheckResult> {
    const entries = await listBackupEntries(this.backupDir)
    const history = await readHistory(this.backupDir)
    const result = evaluateBackups(entries, history.records, {
      backupDir: this.backupDir,
      now: this.#now(),
      maxAgeMs: thresholds.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
      maxShrinkPercent: thresholds.maxShrinkPercent ?? DEFAULT_MAX_SHRINK_PERCENT,
      warnings: history.warnings,
    })
    const webhook = this.#options.environment!.alertWebhookUrl
    if (result.ok || webhook === undefined) return result
    try {
      await sendAlert(webhook, { source: 'advanced-backup check', text: alertText(result), details: { backupDir: result.backupDir, problems: result.problems } })
      return withAlertOutcome(result)
    } catch (error) {
      return withAlertOutcome(result, error)
    }
  }

  /**
   * Runs one operation and appends its line to `<backupDir>/history.jsonl` (history.ts), success or
   * failure. Every verb that changes or judges backups goes through here (restore too).
   * The operation's result decides its outcome: a line that cannot be written (a read-only folder)
   * is a warning through `onWarning`, and `check` sees the gap later; it never replaces the error of
   * a failed operation either.
   */
  async #recorded<T>(operation: HistoryOperation, id: string | undefined, work: () => Promise<T>, outcome: (result: T) => Outcome = () => ({})): Promise<T> {
    const start = new Date()
    const startedAt = performance.now()
    let result: T
    let told: Outcome
    try {
      result = await work()
      told = outcome(result)
    } catch (error) {
      // A usage error (a mistyped id, a missing --yes) means the operation never started: not a failure for `check` to alert on.
      if (!(error instanceof ToolkitError && error.exitCode === USAGE_EXIT_CODE)) {
        this.#appendHistory(operation, { ...(id !== undefined ? { id } : {}), failure: describeError(error) }, start, startedAt)
      }
      throw error
    }
    try {
      this.#appendHistory(operation, { ...(id !== undefined ? { id } : {}), ...told }, start, startedAt, { required: true })
    } catch (error) {
      const why = mapFilesystemError(error, 'l’historique')?.message ?? describeError(error)
      this.#options.onWarning?.(`${operation} ${told.failure === undefined ? 'a réussi' : 'est terminé'}, mais sa ligne manque dans ${this.backupDir}/history.jsonl (${why}) : \`advanced-backup check\` le signalera`)
    }
    return result
  }

  #appendHistory(operation: HistoryOperation, outcome: Outcome, start: Date, startedAt: number, options: { required?: boolean } = {}): void {
    try {
      // create makes the folder anyway; the other verbs leave a missing folder missing.
      if (operation === 'create') mkdirSync(this.backupDir, { recursive: true })
      else if (!statSync(this.backupDir, { throwIfNoEntry: false })?.isDirectory()) return
      const end = new Date()
      appendHistory(this.backupDir, {
        version: 1,
        operation,
        ...(outcome.id !== undefined ? { id: outcome.id } : {}),
        start: start.toISOString(),
        end: end.toISOString(),
        durationMs: Math.max(0, Math.round(performance.now() - startedAt)),
        bytes: outcome.bytes ?? 0,
        result: outcome.failure === undefined ? 'success' : 'failure',
        ...(outcome.failure !== undefined ? { error: outcome.failure } : {}),
      })
    } catch (error) {
      if (options.required) throw error
      // The operation's own error is what matters; a folder that cannot hold the history (it is a file, the disk is full) is reported by it.
    }
  }

  async #createIncremental(db: DatabaseHandle): Promise<Omit<CreateResult, 'rotation'> | undefined> {
    try {
      return await createIncrementalBackup({
        db,
        backupDir: this.backupDir,
        compress: this.compressionEnabled,
        verify: this.verifyIntegrity,
        tool: toolIdentity(),
        prismaSchemaSha256: prismaSchemaHash('sqlite'),
        now: this.#now,
        onProgress: this.#options.onProgress,
        threads: this.#options.threads,
      })
    } catch (error) {
      if (error instanceof NoParentError) return undefined
      throw error
    }
  }

  /**
   * Restores backup `id` (restore.ts: verify, safety copy, atomic replace, check, report) into the
   * database (`to`: another SQLite path or database URL). Steps are announced as `restore:<step>`.
   * @example await backup.restore('backup-2026-01-21T15-30-00', { yes: true })
   */
  restore(id: string, options: RestoreCommandOptions = {}): Promise<RestoreResult> {
    return this.#recorded('restore', id, () =>
      restoreBackup({
        backupDir: this.backupDir,
        id,
        target: options.to ?? this.#databaseUrl,
        dryRun: options.dryRun,
        yes: options.yes,
        force: options.force,
        confirm: options.confirm,
        step: (name) => {
          this.#onStep(`restore:${name}`)
          return options.step?.(name)
        },
        prismaSchemaSha256: prismaSchemaHash,
        tool: toolIdentity(),
        cwd: this.#options.cwd,
        environment: this.#options.environment!,
        onProgress: this.#options.onProgress,
        threads: this.#options.threads,
      }),
      (result) => ({ bytes: result.size }),
    )
  }
}

function summary(entry: BackupEntry): BackupSummary {
  const path = entry.form === 'archive' ? entry.paths.archive : entry.paths.directory
  return {
    id: entry.id,
    path,
    form: entry.form,
    ...(entry.metadata ? { metadata: entry.metadata } : {}),
    ...(entry.problem ? { problem: entry.problem } : !entry.sealValid ? { problem: 'its metadata was edited after it was written' } : {}),
  }
}

let identity: { name: string; version: string } | undefined

/** This toolkit's name and version, as metadata records them. */
export function toolIdentity(): { name: string; version: string } {
  if (identity === undefined) {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string }
    identity = { name: pkg.name, version: pkg.version }
  }
  return identity
}

/** SHA-256 of the toolkit's Prisma schema for an engine family, or null when it is not there. */
export function prismaSchemaHash(dialect: 'sqlite' | 'postgres'): string | null {
  const path = join(REPO_ROOT, 'prisma', dialect, 'schema.prisma')
  return existsSync(path) ? sha256Hex(readFileSync(path)) : null
}
