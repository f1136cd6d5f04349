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
 *   environment, // resolved once by the script (environment.ts)
 * })
 * const { metadata, rotation } = await backup.create()
 *
 * Each verb imports its own implementation (restore, drill, verify, alerts, off-site copy…) when it
 * runs: every script start would otherwise load all of them (bench/startup.ts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createDataKey, keyIdOf, resolveKeySource, rewrapDataKey, readKeyFile, unwrapDataKey, type KeySource } from '../encryption/keys.ts'
import { openStorage, parseStorageUrl } from '../storage/url.ts'
import type { ObjectStorage } from '../storage/storage.ts'
import { SIDECAR_SUFFIX, isBackupId } from './layout.ts'
import { folderStore, objectStore, storedArchiveName, type BackupStore } from './catalog/store.ts'
import type { OffsiteCopy } from './create/offsite.ts'
import { parseMetadata, serializeMetadata } from './metadata.ts'
import { privateScratchDir } from '../fs/leftovers.ts'
import { openDatabase, openSqlDatabase } from '../db/open.ts'
import { engineNamed } from '../engines/index.ts'
import { PROJECT_ROOT, type ToolkitEnvironment } from '../environment.ts'
import type { AlertCondition } from '../alerts/alert.ts'
import type { AlertChannel } from '../alerts/channels.ts'
import type { NotifyAlertsResult } from '../alerts/notify.ts'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import type { BackupEntry } from './catalog/catalog.ts'
import type { DrillOptions, DrillResult } from './drill/drill.ts'
import { BACKUP_ALERT_SOURCE, DEFAULT_MAX_AGE_MS, DEFAULT_MAX_DRILL_AGE_MS, DEFAULT_MAX_SHRINK_PERCENT, backupAlertConditions, evaluateBackups, type CheckResult, type CheckThresholds } from './catalog/check.ts'
import type { CreateBackupOptions } from './create/create.ts'
import type { StandaloneExportResult } from './create/export-only.ts'
import type { RestorePlan, RestoreResult, RestoreStepName } from './restore/steps.ts'
import type { RestoreAtTimeOptions, RestoreAtTimeResult } from './restore/at-time.ts'
import type { RestoreTenantResult } from '../tenant-restore/restore.ts'
import type { TenantRestorePlan } from '../tenant-restore/plan.ts'
import type { SqlHandle } from '../db/connection.ts'
import { EXPORT_FORMATS, type ExportFormat } from './layout.ts'
import { sha256Hex } from './manifest.ts'
import { mapFilesystemError } from '../fs/errors.ts'
import { appendHistory, readHistory, type HistoryOperation } from './catalog/history.ts'
import { killSwitch, type StepListener } from './kill-points.ts'
import type { BackupMetadata } from './metadata.ts'
import { normalisePolicy, planRotation, type RetentionPolicy } from './catalog/rotation.ts'
import { backupStats, type BackupStats } from './catalog/stats.ts'
import { CHECK_STATUS_LABELS, type VerifyReport } from './catalog/verify.ts'


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
  /** Resolved once by the script (scripts/lib/environment.ts). */
  environment: ToolkitEnvironment
  now?: () => Date
  onProgress?: ProgressListener
  /** Compression threads; default one per core. */
  threads?: number
  /** gzip level of new archives, 1 (fastest) to 9 (smallest); default 6. */
  compressionLevel?: number
  /** Told what went wrong beside a finished operation (its history line could not be written); the CLI prints it on stderr. */
  onWarning?: (message: string) => void
  /** Where `check` sends its alerts; default the channels the environment configures (alertChannelsFromEnvironment). */
  alertChannels?: AlertChannel[]
  /** The alert state file; default ALERT_STATE_FILE, else `<backupDir>/.alert-state.json`. */
  alertStatePath?: string
  /** Also told every step of create and restore (e.g. the tracing spans); the kill switch is told first. */
  onStep?: StepListener
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

export interface RestoreTenantCommandOptions {
  /** The tenant's id, or its name (or slug) as the backup knows it. */
  tenant: string
  /** The live database whose tenant is restored instead of the configured one. */
  to?: string
  /** Print the plan (per table: rows to delete, to insert, unchanged) and write nothing. */
  dryRun?: boolean
  yes?: boolean
  /** Asks the operator once the plan is known (a TTY); without it and without `yes` the restore refuses. */
  confirm?: (plan: TenantRestorePlan) => Promise<boolean>
}

export interface DrillCommandResult extends DrillResult {
  /** What the alert module did (a failed drill fires `backup:drill:<dir>`, a successful one clears it). */
  alert: Pick<NotifyAlertsResult, 'firing' | 'resolved' | 'deliveries' | 'warnings'>
}

/** The alert state of the drills, beside the backups. */
export const ALERT_STATE_FILE = '.alert-state.json'

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
  rtoMs?: number
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

  constructor(options: AdvancedBackupOptions) {
    const environment = options.environment
    this.#options = options
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
    const kill = killSwitch(environment.backupKillAt)
    const listener = options.onStep
    this.#onStep = (step) => {
      kill?.(step)
      listener?.(step)
    }
    const unknown = this.exportFormats.filter((format) => !EXPORT_FORMATS.includes(format))
    if (unknown.length > 0) throw new ToolkitError(`format d’export inconnu : ${unknown.join(', ')}`, { hint: `Formats possibles : ${EXPORT_FORMATS.join(', ')}.`, exitCode: 2 })
    if (!Number.isSafeInteger(this.maxBackups) || this.maxBackups < 1) {
      throw new ToolkitError(`maxBackups doit être un nombre entier ≥ 1, reçu ${this.maxBackups}`, { hint: '--keep 1 ou plus.', exitCode: 2 })
    }
    this.#retention = normalisePolicy(options.retention !== undefined && Object.values(options.retention).some((n) => n !== undefined) ? { ...(options.maxBackups !== undefined ? { keepLast: options.maxBackups } : {}), ...options.retention } : this.maxBackups)
    if (options.encrypt && !this.compressionEnabled) {
      throw new ToolkitError('--encrypt demande une sauvegarde compressée', { hint: 'retirez --no-compress : une sauvegarde chiffrée est une seule archive scellée (un dossier en clair exposerait noms et tailles de fichiers)', exitCode: 2 })
    }
  }

  /** The key named by --key-file, BACKUP_ENCRYPTION_KEY or BACKUP_PASSPHRASE, or undefined. */
  #keySource(): KeySource | undefined {
    const environment = this.#options.environment
    return resolveKeySource({ env: { BACKUP_ENCRYPTION_KEY: environment.backupEncryptionKey, BACKUP_PASSPHRASE: environment.backupPassphrase }, keyFile: this.#options.keyFile })
  }

  #offsiteStorage() {
    return this.#offsiteUrl === undefined ? undefined : openStorage(this.#offsiteUrl, { env: this.#options.environment.storage, cwd: this.#options.cwd ?? this.#options.environment.cwd })
  }

  /**
   * A private scratch folder (mode 0700) for remote and encrypted work, removed by `work`'s end;
   * a killed run's scratch folders (their pid is gone) are removed first.
   */
  async #withScratch<T>(work: (dir: string) => Promise<T>): Promise<T> {
    const dir = await privateScratchDir('ipm-stage-')
    try {
      return await work(dir)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /**
   * Writes the configured export formats of the database into the new folder `dest` (relative to
   * where the user stands): an export, not a backup — no database artefact, no archive, not in the
   * catalog nor the history (create/export-only.ts).
   */
  async exportTo(dest: string): Promise<StandaloneExportResult> {
    const db = await openSqlDatabase(this.#databaseUrl, { cwd: this.#options.cwd, environment: this.#options.environment })
    try {
      const { writeStandaloneExport } = await import('./create/export-only.ts')
      return await writeStandaloneExport({
        db,
        dest: resolve(this.#options.cwd ?? this.#options.environment.cwd, dest),
        formats: this.exportFormats,
        tool: toolIdentity(),
        now: this.#now,
        onProgress: this.#options.onProgress,
      })
    } finally {
      await db.close()
    }
  }

  /** Backs the database up, then rotates (keeps `maxBackups`, never the newest verified one). */
  create(options: { incremental?: boolean } = {}): Promise<CreateResult> {
    return this.#recorded('create', undefined, () => this.#create(options), (result) => ({ id: result.metadata.id, bytes: result.metadata.size }))
  }

  async #create(options: { incremental?: boolean } = {}): Promise<CreateResult> {
    // Real time, not the injected clock: it is compared with the storage's own dates of killed uploads.
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
      if (!this.#store.remote) return await this.#createIn(this.backupDir, options, encryption, offsite)
      if (!this.compressionEnabled) throw new ToolkitError('une sauvegarde sur un stockage objet doit être compressée', { hint: 'retirez --no-compress', exitCode: 2 })
      // --dir <url>: the backup is made and verified in a private scratch folder, then copied like an off-site copy.
      return await this.#withScratch(async (scratch) => {
        // The scratch folder shows the storage's ids as taken, so a second backup of the same second gets its own id.
        for (const entry of await this.#store.list()) mkdirSync(join(scratch, entry.id))
        // …and so do the ids another create is uploading right now (its lease names them).
        const { keysInLeases } = await import('../storage/upload-leases.ts')
        for (const key of await keysInLeases(this.#remoteStorage!)) {
          const id = key.endsWith(SIDECAR_SUFFIX) ? key.slice(0, -SIDECAR_SUFFIX.length) : undefined
          if (id !== undefined && isBackupId(id)) mkdirSync(join(scratch, id), { recursive: true })
        }
        return this.#createIn(scratch, options, encryption, offsite)
      })
    } finally {
      encryption?.dataKey.fill(0)
    }
  }

  async #createIn(dir: string, options: { incremental?: boolean }, encryption: CreateBackupOptions['encryption'], offsite: ObjectStorage | undefined): Promise<CreateResult> {
    const db = await openSqlDatabase(this.#databaseUrl, { cwd: this.#options.cwd, environment: this.#options.environment })
    let created
    try {
      const { createBackup } = await import('./create/create.ts')
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
        compressionLevel: this.#options.compressionLevel,
        onStep: this.#onStep,
      })
    } finally {
      await db.close()
    }
    // Only copies (compressed backups, checked before) need the metadata's exact text.
    const metadataText = () => readFileSync(join(dir, `${created.metadata.id}${SIDECAR_SUFFIX}`), 'utf8')
    let path = created.path
    if (this.#remoteStorage !== undefined) {
      const { copyBackup } = await import('./create/offsite.ts')
      await copyBackup(this.#remoteStorage, { archivePath: created.path, metadataText: metadataText() }, { onStep: this.#onStep })
      path = `${this.backupDir.replace(/\/?$/, '/')}${storedArchiveName(created.metadata)}`
    }
    const rotation = await this.#prune({})
    let offsiteResult: CreateResult['offsite']
    if (offsite !== undefined) {
      const { copyBackup } = await import('./create/offsite.ts')
      const copy = await copyBackup(offsite, { archivePath: created.path, metadataText: metadataText() }, { onStep: this.#onStep })
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
        ...(report.ok ? {} : { failure: `vérification échouée : ${report.checks.filter((c) => c.status !== 'ok').map((c) => `${c.path} ${CHECK_STATUS_LABELS[c.status]}`).join(', ')}` }),
      }),
    )
  }

  async #verify(id: string): Promise<VerifyReport> {
    const entry = await this.#store.find(id)
    if (!this.#store.remote && entry.metadata?.encryption === undefined) return (await import('./catalog/verify.ts')).verifyBackup(this.backupDir, id, { onProgress: this.#options.onProgress })
    const keySource = this.#keySource()
    const { verifyStoredBackup } = await import('./catalog/staged.ts')
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
      const newSource = readKeyFile(resolve(this.#options.cwd ?? this.#options.environment.cwd, options.newKeyFile))
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
   * run (history.jsonl), a size drop beyond `maxShrinkPercent`. With alert channels configured, each
   * problem goes through notifyAlerts (deduplicated, held down, "résolu" when it clears); what the
   * channels were told is in `alerts`, and a channel failure never changes `ok`.
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
      maxDrillAgeMs: thresholds.maxDrillAgeMs ?? DEFAULT_MAX_DRILL_AGE_MS,
      warnings: history.warnings,
    })
    const alerts = await this.#notify(BACKUP_ALERT_SOURCE, backupAlertConditions(result))
    return alerts === undefined ? result : { ...result, alerts }
  }

  /**
   * Sends a source's firing conditions through the configured channels (alerts/), with the state file
   * that deduplicates across runs; undefined when no channel is configured. A misconfigured channel
   * is a warning of the result, never a failure of the operation.
   */
  async #notify(source: string, firing: AlertCondition[]): Promise<NotifyAlertsResult | undefined> {
    const environment = this.#options.environment
    let channels: AlertChannel[]
    try {
      channels = this.#options.alertChannels ?? (await import('../alerts/config.ts')).alertChannelsFromEnvironment(environment.alerts)
    } catch (error) {
      return { firing: [], resolved: [], deliveries: [], warnings: [describeError(error)] }
    }
    if (channels.length === 0) return undefined
    const statePath =
      this.#options.alertStatePath ?? (environment.alertStateFile !== undefined ? resolve(environment.cwd, environment.alertStateFile) : join(this.#historyDir, ALERT_STATE_FILE))
    const { notifyAlerts } = await import('../alerts/notify.ts')
    return notifyAlerts({ source, firing, channels, statePath, now: this.#now })
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
      this.#options.onWarning?.(`${operation} ${told.failure === undefined ? 'a réussi' : 'est terminé'}, mais sa ligne manque dans ${this.#historyDir}/history.jsonl (${why}) : \`advanced-backup check\` le signalera`)
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
        ...(outcome.rtoMs !== undefined ? { rtoMs: outcome.rtoMs } : {}),
      })
    } catch (error) {
      if (options.required) throw error
      // The operation's own error is what matters; a folder that cannot hold the history (it is a file, the disk is full) is reported by it.
    }
  }

  async #createIncremental(db: SqlHandle, dir: string): Promise<Omit<CreateResult, 'rotation'> | undefined> {
    if (this.#store.remote) throw new ToolkitError('--incremental n’est pas possible avec --dir <url> (le parent doit être local)', { hint: 'sauvegardez en local avec --offsite <url>', exitCode: 2 })
    const { NoParentError, createIncrementalBackup } = await import('./create/incremental.ts')
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
        compressionLevel: this.#options.compressionLevel,
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
    return this.#recorded('restore', id, () => this.#restore(id, options), (result) => ({ bytes: result.size }))
  }

  async #restore(id: string, options: RestoreCommandOptions): Promise<RestoreResult> {
    const entry = await this.#store.find(id)
    if (!this.#store.remote && entry.metadata?.encryption === undefined) return this.#restoreFrom(this.backupDir, id, options)
    const keySource = this.#keySource()
    // Copied (and decrypted) chunk by chunk, each checked, into a private folder; then the local restore runs there.
    const { stageChain } = await import('./catalog/staged.ts')
    return this.#withScratch(async (scratch) => {
      await stageChain(this.#store, id, scratch, keySource)
      return this.#restoreFrom(scratch, id, options)
    })
  }

  async #restoreFrom(backupDir: string, id: string, options: RestoreCommandOptions): Promise<RestoreResult> {
    const { restoreBackup } = await import('./restore/flow.ts')
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
        environment: this.#options.environment,
        onProgress: this.#options.onProgress,
        threads: this.#options.threads,
      })
  }

  /**
   * A restore drill (backup/drill/): backup `id` (default: the newest not yet drilled) restored
   * through the same restore as `restore` into a scratch database of its engine, then checked;
   * recorded in history.jsonl with its RTO. A failed drill raises an alert (alerts/, the channels
   * of the environment); a successful one clears it. Never touches the configured database.
   * @example const result = await backup.drill(); if (!result.ok) …
   */
  drill(options: { id?: string; scratchRoot?: string; step?: DrillOptions['step'] } = {}): Promise<DrillCommandResult> {
    return this.#recorded(
      'drill',
      options.id,
      async () => {
        const { chooseDrillBackup, drillBackup } = await import('./drill/drill.ts')
        let chosen: Pick<DrillOptions, 'metadata' | 'chosenBecause'>
        if (options.id !== undefined) {
          const entry = await this.#store.find(options.id)
          if (entry.metadata === undefined) throw new ToolkitError(`le backup ${options.id} n'a pas de métadonnées lisibles : ${entry.problem ?? 'inconnu'}`, { hint: `\`advanced-backup verify ${options.id}\`` })
          chosen = { metadata: entry.metadata, chosenBecause: 'asked' }
        } else {
          chosen = chooseDrillBackup(await this.#store.list(), (await readHistory(this.#historyDir)).records)
        }
        const dialect = engineNamed(chosen.metadata.engine).dialect
        const result = await drillBackup({
          ...chosen,
          restore: (to, beforeCheck) => this.#restore(chosen.metadata.id, { to, yes: true, step: (name) => (name === 'check' ? beforeCheck() : undefined) }),
          serverUrl: this.#databaseUrl,
          environment: this.#options.environment,
          committedMigrations: committedMigrations(dialect),
          ...(options.scratchRoot !== undefined ? { scratchRoot: options.scratchRoot } : {}),
          step: (name) => {
            this.#onStep(name)
            options.step?.(name)
          },
        })
        return { ...result, alert: await this.#drillAlert(result) }
      },
      (result) => ({
        id: result.id,
        bytes: 0,
        ...(result.rtoMs !== null ? { rtoMs: result.rtoMs } : {}),
        ...(result.ok ? {} : { failure: `exercice de restauration échoué : ${result.checks.filter((c) => c.status === 'failed').map((c) => c.detail).join(' ; ')}` }),
      }),
    )
  }

  async #drillAlert(result: DrillResult): Promise<DrillCommandResult['alert']> {
    const failed = result.checks.filter((c) => c.status === 'failed')
    const firing: AlertCondition[] = result.ok
      ? []
      : [{
          key: `backup:drill:${this.backupDir}`,
          severity: 'critical',
          title: `L'exercice de restauration du backup ${result.id} a échoué`,
          details: [...failed.map((c) => `${c.name} : ${c.detail}`), `Dossier des backups : ${this.backupDir}`, `Relancez : advanced-backup drill ${result.id}`],
        }]
    return (await this.#notify('advanced-backup drill', firing)) ?? { firing: [], resolved: [], deliveries: [], warnings: [] }
  }

  /**
   * Restores one tenant (cabinet) of backup `id` into the live database (tenant-restore/): its rows
   * become exactly the backup's, in one transaction, after a safety export written beside the backups;
   * every other tenant and the shared rows stay as they are.
   * @example await backup.restoreTenant('backup-2026-01-21T15-30-00', { tenant: 'Cabinet Demo', yes: true })
   */
  restoreTenant(id: string, options: RestoreTenantCommandOptions): Promise<RestoreTenantResult> {
    const work = async () => {
      if (!options.dryRun && !options.yes && options.confirm === undefined) {
        throw new ToolkitError(`la restauration du cabinet « ${options.tenant} » remplace ses lignes dans la base et demande une confirmation, mais il n'y a pas de terminal pour la demander`, {
          hint: '--yes (après `restore <id> --tenant … --dry-run` en cas de doute)',
        })
      }
      const environment = this.#options.environment
      const [{ restoreTargetUrl }, { restoreTenant }] = await Promise.all([import('./restore/flow.ts'), import('../tenant-restore/restore.ts')])
      const url = restoreTargetUrl(options.to ?? this.#databaseUrl, this.#options.cwd ?? environment.cwd)
      const db = await openDatabase(url, { cwd: this.#options.cwd, environment })
      try {
        const entry = await this.#store.find(id)
        // Off the local folder (object storage) or encrypted, the full path reads a checked, decrypted copy.
        const staged = this.#store.remote || entry.metadata?.encryption !== undefined
        const stage = async () => {
          const dir = await privateScratchDir('ipm-stage-')
          try {
            const { stageChain } = await import('./catalog/staged.ts')
            await stageChain(this.#store, id, dir, this.#keySource())
          } catch (error) {
            await rm(dir, { recursive: true, force: true })
            throw error
          }
          return { backupDir: dir, release: () => rm(dir, { recursive: true, force: true }) }
        }
        return await restoreTenant({
          backup: {
            backupDir: this.backupDir,
            id,
            store: this.#store,
            ...(staged ? { stage } : {}),
            dataKey: async (metadata: BackupMetadata) => {
              const source = this.#keySource()
              if (source === undefined || metadata.encryption === undefined) throw (await import('./catalog/staged.ts')).keyMissing(id, metadata.encryption?.key.kekId ?? '?')
              return unwrapDataKey(metadata.encryption.key, source)
            },
          },
          // A server's safety export goes where backups live on this machine, never into a scratch folder.
          safetyDir: this.#store.remote ? this.#historyDir : this.backupDir,
          target: db,
          tenant: options.tenant,
          dryRun: options.dryRun,
          now: this.#now,
          onStep: (step) => this.#onStep(step),
          ...(options.yes || options.confirm === undefined ? {} : { confirm: options.confirm }),
          onProgress: this.#options.onProgress,
        })
      } finally {
        await db.close()
      }
    }
    // A dry run changes nothing: it is not an operation of the history.
    if (options.dryRun) return work()
    return this.#recorded('restore', id, work, (result) => ({ bytes: result.safetyExport?.bytes ?? 0 }))
  }

  /**
   * Restores the database (or `target`, or one tenant) as it was at `at` (restore/at-time.ts: the
   * engine's state at T, then the same five steps as a backup's restore).
   * @example await backup.restoreAt({ at: parseInstant('2026-03-01T14:05:00+01:00'), replica, keepScratch: false, yes: true })
   */
  restoreAt(options: Omit<RestoreAtTimeOptions, 'databaseUrl' | 'target' | 'backupDir' | 'environment' | 'cwd' | 'prismaSchemaSha256' | 'tool'> & { to?: string }): Promise<RestoreAtTimeResult> {
    return this.#recorded('restore', undefined, async () =>
      (await import('./restore/at-time.ts')).restoreAtTime({
        ...options,
        databaseUrl: this.#databaseUrl,
        target: options.to ?? this.#databaseUrl,
        backupDir: this.backupDir,
        environment: this.#options.environment,
        cwd: this.#options.cwd ?? this.#options.environment.cwd,
        prismaSchemaSha256: prismaSchemaHash,
        tool: toolIdentity(),
        step: (name) => this.#onStep(`restore:${name}`),
      }),
      (result) => ({ bytes: result.restore?.size ?? 0 }),
    )
  }
}

/** The migrations committed in the toolkit for a dialect (prisma/<dialect>/migrations/<name>/), oldest first. */
export function committedMigrations(dialect: 'sqlite' | 'postgres'): string[] {
  const dir = join(PROJECT_ROOT, 'prisma', dialect, 'migrations')
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && /^\d+_/.test(e.name)).map((e) => e.name).sort()
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
    ...(entry.problem ? { problem: entry.problem } : !entry.sealValid ? { problem: 'ses métadonnées ont été modifiées après leur écriture' } : {}),
  }
}

let identity: { name: string; version: string } | undefined

/** This toolkit's name and version, as metadata records them. */
export function toolIdentity(): { name: string; version: string } {
  if (identity === undefined) {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { name: string; version: string }
    identity = { name: pkg.name, version: pkg.version }
  }
  return identity
}

/** SHA-256 of the toolkit's Prisma schema for an engine family, or null when it is not there. */
export function prismaSchemaHash(dialect: 'sqlite' | 'postgres'): string | null {
  const path = join(PROJECT_ROOT, 'prisma', dialect, 'schema.prisma')
  return existsSync(path) ? sha256Hex(readFileSync(path)) : null
}
