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
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createDataKey, keyIdOf, resolveKeySource, rewrapDataKey, readKeyFile, type KeySource } from '../encryption/keys.ts'
import { openStorage, parseStorageUrl } from '../storage/url.ts'
import type { ObjectStorage } from '../storage/storage.ts'
import { SIDECAR_SUFFIX } from './layout.ts'
import { folderStore, objectStore, storedArchiveName, type BackupStore } from './catalog/store.ts'
import { stageChain, verifyStoredBackup } from './catalog/staged.ts'
import { copyBackup, type OffsiteCopy } from './create/offsite.ts'
import { parseMetadata, serializeMetadata } from './metadata.ts'
import { processIsAlive } from './catalog/catalog.ts'
import { fileURLToPath } from 'node:url'
import { openDatabase } from '../db/open.ts'
import { engineNamed } from '../engines/index.ts'
import { resolveEnvironment, type ToolkitEnvironment } from '../environment.ts'
import { sendAlert } from '../alerts.ts'
import { ToolkitError, describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import type { BackupEntry } from './catalog/catalog.ts'
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_SHRINK_PERCENT, alertText, evaluateBackups, withAlertOutcome, type CheckResult, type CheckThresholds } from './catalog/check.ts'
import { createBackup, type CreateBackupOptions } from './create/create.ts'
import { NoParentError, createIncrementalBackup } from './create/incremental.ts'
import type { RestorePlan, RestoreResult, RestoreStepName } from './restore/steps.ts'
import { restoreBackup } from './restore/flow.ts'
import type { DatabaseHandle } from '../db/connection.ts'
import { EXPORT_FORMATS, type ExportFormat } from './layout.ts'
import { sha256Hex } from './manifest.ts'
import { appendHistory, readHistory, type HistoryOperation } from './catalog/history.ts'
import { killSwitch, type StepListener } from './kill-points.ts'
import type { BackupMetadata } from './metadata.ts'
import { normalisePolicy, planRotation, type RetentionPolicy } from './catalog/rotation.ts'
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
  /** Retention by age (restic's forget policy), per source; `maxBackups` is its keep-last when this is absent. */
  retention?: RetentionPolicy
  /** Where `create` copies each verified backup (`--offsite`; default BACKUP_OFFSITE_URL). */
  offsiteUrl?: string
  /** Seal each new backup (`--encrypt`): a key from `keyFile`, BACKUP_ENCRYPTION_KEY or BACKUP_PASSPHRASE is required. */
  encrypt?: boolean
  /** The key file (`--key-file`) for create --encrypt, verify, restore and rekey. */
  keyFile?: string
}

export interface BackupSummary {
  id: string
  path: string
  form: 'directory' | 'archive'
  /** Where copies exist when an off-site storage is configured (else absent). */
  where?: 'local' | 'off-site' | 'both'
  encrypted: boolean
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
  /** The off-site copy (`--offsite`) and the off-site rotation. */
  offsite?: OffsiteCopy & { rotation: PruneResult }
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
  /** The off-site storage also listed (URL without credentials). */
  offsite?: string
  backups: BackupSummary[]
}

export interface RekeyResult {
  backupDir: string
  /** Backups whose data key was re-wrapped under the new key. */
  rekeyed: string[]
  /** Already under the new key. */
  unchanged: string[]
  /** Not encrypted: nothing to re-wrap. */
  plain: string[]
  newKeyId: string
}

export interface StatsResult extends BackupStats {
  backupDir: string
}

export interface PruneResult {
  dryRun: boolean
  maxBackups: number
  policy: RetentionPolicy
  /** Why each kept backup is kept. */
  reasons: Record<string, string[]>
  /** The source series of each backup (engine and path / redacted URL). */
  sources: Record<string, string>
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
  /** Where the backups of `backupDir` are: the local folder or an object storage. */
  readonly #store: BackupStore
  /** The object storage of `backupDir` when it is a URL. */
  readonly #remoteStorage: ObjectStorage | undefined
  /** history.jsonl's folder: `backupDir`, or the project's backups/ when `backupDir` is a storage URL. */
  readonly #historyDir: string
  readonly #retention: RetentionPolicy
  readonly #offsiteUrl: string | undefined

  constructor(options: AdvancedBackupOptions = {}) {
    const environment = options.environment ?? resolveEnvironment()
    this.#options = { ...options, environment }
    this.#databaseUrl = options.databaseUrl ?? environment.databaseUrl
    const localDefault = resolve(options.cwd ?? environment.projectRoot, 'backups')
    const remote = options.backupDir !== undefined && parseStorageUrl(options.backupDir).kind !== 'folder'
    // A folder the user names resolves against where they stand; the default lives in the project.
    this.backupDir = options.backupDir === undefined ? localDefault : remote ? options.backupDir : resolve(options.cwd ?? environment.cwd, options.backupDir)
    this.#remoteStorage = remote ? openStorage(this.backupDir, { env: environment.storage }) : undefined
    this.#store = this.#remoteStorage ? objectStore(this.#remoteStorage) : folderStore(this.backupDir)
    this.#historyDir = remote ? (environment.backupHistoryDir !== undefined ? resolve(environment.cwd, environment.backupHistoryDir) : localDefault) : this.backupDir
    this.#offsiteUrl = options.offsiteUrl ?? environment.backupOffsiteUrl
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
    this.#retention = normalisePolicy(options.retention !== undefined && Object.values(options.retention).some((n) => n !== undefined) ? { ...(options.maxBackups !== undefined ? { keepLast: options.maxBackups } : {}), ...options.retention } : this.maxBackups)
    if (options.encrypt && !this.compressionEnabled) {
      throw new ToolkitError('--encrypt demande une sauvegarde compressée', { hint: 'retirez --no-compress : une sauvegarde chiffrée est une seule archive scellée (un dossier en clair exposerait noms et tailles de fichiers)', exitCode: 2 })
    }
  }

  /** The key named by --key-file, BACKUP_ENCRYPTION_KEY or BACKUP_PASSPHRASE, or undefined. */
  #keySource(): KeySource | undefined {
    const environment = this.#options.environment!
    return resolveKeySource({ env: { BACKUP_ENCRYPTION_KEY: environment.backupEncryptionKey, BACKUP_PASSPHRASE: environment.backupPassphrase }, keyFile: this.#options.keyFile })
  }

  #offsiteStorage() {
    return this.#offsiteUrl === undefined ? undefined : openStorage(this.#offsiteUrl, { env: this.#options.environment!.storage, cwd: this.#options.cwd ?? this.#options.environment!.cwd })
  }

  /**
   * A private scratch folder (mode 0700) for remote and encrypted work, removed by `work`'s end;
   * a killed run's scratch folders (their pid is gone) are removed first.
   */
  async #withScratch<T>(work: (dir: string) => Promise<T>): Promise<T> {
    const base = tmpdir()
    for (const name of readdirSync(base)) {
      const pid = Number(/^ipm-stage-(\d+)-/.exec(name)?.[1])
      if (pid > 0 && pid !== process.pid && !processIsAlive(pid)) rmSync(join(base, name), { recursive: true, force: true })
    }
    const dir = await mkdtemp(join(base, `ipm-stage-${process.pid}-`))
    try {
      return await work(dir)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** Backs the database up, then rotates (keeps `maxBackups`, never the newest verified one). */
  create(options: { incremental?: boolean } = {}): Promise<CreateResult> {
    return this.#recorded('create', undefined, () => this.#create(options), (result) => ({ id: result.metadata.id, bytes: result.metadata.size }))
  }

  async #create(options: { incremental?: boolean } = {}): Promise<CreateResult> {
    // Real time, not the injected clock: it is compared with the storage's own dates of killed uploads.
    const runStart = new Date()
    // Fail closed: the key and the off-site storage are resolved before anything is written.
    let encryption: { dataKey: Buffer; record: Awaited<ReturnType<typeof createDataKey>>['record'] } | undefined
    if (this.#options.encrypt) {
      const source = this.#keySource()
      if (source === undefined) throw new ToolkitError('--encrypt sans clé : rien n’a été écrit', { hint: 'fournissez --key-file <chemin> (créé par « advanced-backup keygen »), BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE', exitCode: 2 })
      encryption = await createDataKey(source)
      if (options.incremental) throw new ToolkitError('--incremental et --encrypt ne vont pas encore ensemble : rien n’a été écrit', { hint: 'faites une sauvegarde complète chiffrée (sans --incremental)', exitCode: 2 })
    }
    const offsite = this.#offsiteStorage()
    if (offsite !== undefined && !this.compressionEnabled) throw new ToolkitError('--offsite demande une sauvegarde compressée', { hint: 'retirez --no-compress', exitCode: 2 })
    try {
      if (!this.#store.remote) return await this.#createIn(this.backupDir, options, encryption, offsite, runStart)
      if (!this.compressionEnabled) throw new ToolkitError('une sauvegarde sur un stockage objet doit être compressée', { hint: 'retirez --no-compress', exitCode: 2 })
      // --dir <url>: the backup is made and verified in a private scratch folder, then copied like an off-site copy.
      return await this.#withScratch(async (scratch) => {
        // The scratch folder shows the storage's ids as taken, so a second backup of the same second gets its own id.
        for (const entry of await this.#store.list()) mkdirSync(join(scratch, entry.id))
        return this.#createIn(scratch, options, encryption, offsite, runStart)
      })
    } finally {
      encryption?.dataKey.fill(0)
    }
  }

  async #createIn(dir: string, options: { incremental?: boolean }, encryption: CreateBackupOptions['encryption'], offsite: ObjectStorage | undefined, runStart: Date): Promise<CreateResult> {
    const db = await openDatabase(this.#databaseUrl, { cwd: this.#options.cwd, environment: this.#options.environment })
    let created
    try {
      // --incremental: only what changed since the newest backup of this database (a full one when there is none).
      created = (options.incremental ? await this.#createIncremental(db, dir) : undefined) ?? await createBackup({
        db,
        backupDir: dir,
        ...(encryption ? { encryption } : {}),
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
    // Only copies (compressed backups, checked before) need the metadata's exact text.
    const metadataText = () => readFileSync(join(dir, `${created.metadata.id}${SIDECAR_SUFFIX}`), 'utf8')
    let path = created.path
    if (this.#remoteStorage !== undefined) {
      await copyBackup(this.#remoteStorage, { archivePath: created.path, metadataText: metadataText() }, { startedBefore: runStart, onStep: this.#onStep })
      path = `${this.backupDir.replace(/\/?$/, '/')}${storedArchiveName(created.metadata)}`
    }
    const rotation = await this.#prune({})
    let offsiteResult: CreateResult['offsite']
    if (offsite !== undefined) {
      const copy = await copyBackup(offsite, { archivePath: created.path, metadataText: metadataText() }, { startedBefore: runStart, onStep: this.#onStep })
      offsiteResult = { ...copy, rotation: await this.#pruneStore(objectStore(offsite), {}) }
    }
    this.#onStep('create:before-history')
    return { ...created, path, rotation, ...(offsiteResult ? { offsite: offsiteResult } : {}) }
  }

  /** The complete backups, newest first; partial ones never appear. */
  async list(): Promise<ListResult> {
    const entries = await this.#store.list()
    const offsite = this.#offsiteStorage()
    if (offsite === undefined) return { backupDir: this.backupDir, backups: entries.map((entry) => summary(entry)) }
    const remote = await objectStore(offsite).list()
    const here = new Set(entries.map((entry) => entry.id))
    const there = new Set(remote.map((entry) => entry.id))
    const all = [...entries, ...remote.filter((entry) => !here.has(entry.id))].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    return {
      backupDir: this.backupDir,
      offsite: offsite.location,
      backups: all.map((entry) => summary(entry, here.has(entry.id) && there.has(entry.id) ? 'both' : here.has(entry.id) ? 'local' : 'off-site')),
    }
  }

  /** Recomputes every hash of one backup; `ok` is false on any fault. */
  verify(id: string): Promise<VerifyReport> {
    return this.#recorded(
      'verify',
      id,
      () => this.#verify(id),
      (report) => ({
        bytes: report.metadata?.size ?? 0,
        ...(report.ok ? {} : { failure: `verification failed: ${report.checks.filter((c) => c.status !== 'ok').map((c) => `${c.path} ${c.status}`).join(', ')}` }),
      }),
    )
  }

  async #verify(id: string): Promise<VerifyReport> {
    const entry = await this.#store.find(id)
    if (!this.#store.remote && entry.metadata?.encryption === undefined) return verifyBackup(this.backupDir, id, { onProgress: this.#options.onProgress })
    const keySource = this.#keySource()
    return this.#withScratch((scratchDir) => verifyStoredBackup(this.#store, id, { scratchDir, keySource, ...(this.#options.onProgress ? { onProgress: this.#options.onProgress } : {}) }))
  }

  async stats(): Promise<StatsResult> {
    return { backupDir: this.backupDir, ...backupStats(await this.#store.list(), this.#now()) }
  }

  /**
   * Re-wraps the data key of every encrypted backup of `backupDir` under `newKeyFile` (the current
   * key from --key-file, BACKUP_ENCRYPTION_KEY or BACKUP_PASSPHRASE); only the metadata is
   * rewritten (and resealed), never an archive. A backup already under the new key is left as is.
   * @example await backup.rekey({ newKeyFile: '/etc/ipm/backup-2027.key' })
   */
  rekey(options: { newKeyFile: string }): Promise<RekeyResult> {
    return this.#recorded('rekey', undefined, async () => {
      const newSource = readKeyFile(resolve(this.#options.cwd ?? this.#options.environment!.cwd, options.newKeyFile))
      const oldSource = this.#keySource()
      const result: RekeyResult = { backupDir: this.backupDir, rekeyed: [], unchanged: [], plain: [], newKeyId: keyIdOfSource(newSource) }
      for (const entry of await this.#store.list()) {
        const metadata = entry.metadata
        if (metadata === undefined) throw new ToolkitError(`sauvegarde ${entry.id} illisible (${entry.problem ?? '?'}) : rekey arrêté`, { hint: 'réparez ou retirez cette sauvegarde puis relancez ; les précédentes sont déjà re-chiffrées' })
        if (metadata.encryption === undefined) {
          result.plain.push(entry.id)
          continue
        }
        if (metadata.encryption.key.kekId === result.newKeyId) {
          result.unchanged.push(entry.id)
          continue
        }
        if (oldSource === undefined) throw new ToolkitError('rekey demande la clé actuelle', { hint: 'fournissez-la par --key-file, BACKUP_ENCRYPTION_KEY ou BACKUP_PASSPHRASE', exitCode: 2 })
        // The seal must stay valid: re-read the exact text, change only the record, serialize anew.
        const { metadata: current, sealValid } = parseMetadata(await this.#store.metadataText(entry), entry.paths.sidecar)
        if (!sealValid) throw new ToolkitError(`la métadonnée de ${entry.id} a été modifiée après écriture : rekey refusé`, { hint: `vérifiez-la (« verify ${entry.id} »)` })
        const key = await rewrapDataKey(current.encryption!.key, oldSource, newSource)
        const { metadataSha256: _seal, ...draft } = current
        await this.#store.writeMetadata(entry, serializeMetadata({ ...draft, encryption: { ...current.encryption!, key } }))
        result.rekeyed.push(entry.id)
      }
      return result
    })
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

  #prune(options: { dryRun?: boolean; maxBackups?: number }): Promise<PruneResult> {
    return this.#pruneStore(this.#store, options)
  }

  async #pruneStore(store: BackupStore, options: { dryRun?: boolean; maxBackups?: number }): Promise<PruneResult> {
    const maxBackups = options.maxBackups ?? this.maxBackups
    const policy = options.maxBackups !== undefined ? normalisePolicy(options.maxBackups) : this.#retention
    const plan = planRotation(await store.list(), policy)
    if (!options.dryRun) {
      for (const entry of plan.remove) {
        this.#onStep('create:before-rotation-delete')
        await store.remove(entry)
      }
    }
    return {
      dryRun: options.dryRun ?? false,
      maxBackups,
      policy,
      reasons: plan.reasons,
      sources: plan.sourceOf,
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
    const entries = await this.#store.list()
    const history = await readHistory(this.#historyDir)
    const offsite = this.#offsiteStorage()
    const result = evaluateBackups(entries, history.records, {
      ...(offsite !== undefined ? { offsite: { location: offsite.location, entries: await objectStore(offsite).list() } } : {}),
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
   * A line that cannot be written fails a successful operation (the monitoring would be blind) but
   * never replaces the error of a failed one.
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
      this.#appendHistory(operation, { ...(id !== undefined ? { id } : {}), failure: describeError(error) }, start, startedAt)
      throw error
    }
    try {
      this.#appendHistory(operation, { ...(id !== undefined ? { id } : {}), ...told }, start, startedAt, { required: true })
    } catch (error) {
      throw new ToolkitError(`${operation} ${told.failure === undefined ? 'succeeded' : 'finished'} but its line could not be added to ${this.#historyDir}/history.jsonl: ${describeError(error)}`, {
        hint: 'Check the backup folder (space, permissions): `advanced-backup check` reads that file.',
        cause: error,
      })
    }
    return result
  }

  #appendHistory(operation: HistoryOperation, outcome: Outcome, start: Date, startedAt: number, options: { required?: boolean } = {}): void {
    try {
      // create makes the folder anyway; the other verbs leave a missing folder missing.
      if (operation === 'create') mkdirSync(this.#historyDir, { recursive: true })
      else if (!statSync(this.#historyDir, { throwIfNoEntry: false })?.isDirectory()) return
      const end = new Date()
      appendHistory(this.#historyDir, {
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

  async #createIncremental(db: DatabaseHandle, dir: string): Promise<Omit<CreateResult, 'rotation'> | undefined> {
    if (this.#store.remote) throw new ToolkitError('--incremental n’est pas possible avec --dir <url> (le parent doit être local)', { hint: 'sauvegardez en local avec --offsite <url>', exitCode: 2 })
    try {
      return await createIncrementalBackup({
        db,
        backupDir: dir,
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
    return this.#recorded('restore', id, async () => {
      const entry = await this.#store.find(id)
      if (!this.#store.remote && entry.metadata?.encryption === undefined) return this.#restoreFrom(this.backupDir, id, options)
      const keySource = this.#keySource()
      // Copied (and decrypted) chunk by chunk, each checked, into a private folder; then the local restore runs there.
      return this.#withScratch(async (scratch) => {
        await stageChain(this.#store, id, scratch, keySource)
        return this.#restoreFrom(scratch, id, options)
      })
    }, (result) => ({ bytes: result.size }))
  }

  #restoreFrom(backupDir: string, id: string, options: RestoreCommandOptions): Promise<RestoreResult> {
    return restoreBackup({
        backupDir,
        // A server's safety export goes where backups live on this machine, never into a scratch folder.
        safetyDir: this.#store.remote || backupDir !== this.backupDir ? this.#historyDir : this.backupDir,
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
      })
  }
}

/** The key id of a key source that is a key (a passphrase's id depends on each backup's salt). */
function keyIdOfSource(source: KeySource): string {
  return source.kind === 'key' ? keyIdOf(source.key) : 'phrase de passe'
}

function summary(entry: BackupEntry, where?: BackupSummary['where']): BackupSummary {
  const path = entry.form === 'archive' ? entry.paths.archive : entry.paths.directory
  return {
    id: entry.id,
    path,
    form: entry.form,
    ...(where ? { where } : {}),
    encrypted: entry.metadata?.encryption !== undefined,
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
